//! Rules about how workloads refer to each other: URLs between siblings (over TCP, or a Unix
//! socket in a shared volume), compose `depends_on`, and Services selecting pods and
//! targeting their ports.

use std::collections::BTreeMap;

use crate::{
    env_list::EnvList,
    k8s::Cluster,
    workload::{split_url, urls_in, Listen, Placement, PortRef, Workload},
};

use super::Manifests;

/// URLs in env values that point at a sibling must hit the port the sibling listens on.
pub(super) fn url_rules(
    w: &Workload,
    m: &Manifests,
    listens: &BTreeMap<&str, Listen>,
    report: &mut impl FnMut(&str, String),
) {
    for (name, value) in &w.env {
        for url in value.iter().flat_map(|v| urls_in(v)) {
            let Some((host, port, _)) = split_url(&url) else {
                continue;
            };
            let port = port.unwrap_or(80);
            let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost");
            let siblings: Vec<&Workload> = m
                .workloads()
                .filter(|s| s.group == w.group && s.origin != w.origin)
                .filter(|s| match w.placement {
                    Placement::Compose => s.name == host,
                    Placement::Pod => loopback,
                    Placement::Image => false,
                })
                .collect();
            if siblings.is_empty() {
                if w.placement == Placement::Pod && loopback && w.complete {
                    report(&w.origin, format!("{name} points at {url}, but no other container in the pod listens there"));
                }
                continue;
            }
            let hit = siblings.iter().any(|s| {
                listens
                    .get(s.origin.as_str())
                    .is_some_and(|l| l.port == port)
            });
            // Third-party siblings (PostgreSQL) have no known listen address: not ours to check.
            let checkable = siblings
                .iter()
                .any(|s| listens.contains_key(s.origin.as_str()));
            if checkable && !hit {
                report(
                    &w.origin,
                    format!(
                        "{name} points at {url}, but {} does not listen on port {port}",
                        siblings
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
}

/// A `unix:<path>` value (the gateway's `TASKS_SERVICE_URL`) must name a socket a sibling
/// makes (its `TASKS_SOCKET`), in a volume both containers mount at the same place: else
/// every forwarded request fails to connect while the pod reports ready.
pub(super) fn socket_rules(w: &Workload, m: &Manifests, report: &mut impl FnMut(&str, String)) {
    if w.placement == Placement::Image {
        return;
    }
    for (name, value) in &w.env {
        let Some(path) = value
            .as_deref()
            .and_then(|v| v.trim().strip_prefix("unix:"))
        else {
            continue;
        };
        let makers: Vec<&Workload> = m
            .workloads()
            .filter(|s| s.group == w.group && s.origin != w.origin)
            .filter(|s| s.env.get("TASKS_SOCKET").and_then(Option::as_deref) == Some(path))
            .collect();
        if makers.is_empty() {
            if w.complete {
                report(
                    &w.origin,
                    format!(
                        "{name} points at unix:{path}, but no sibling sets TASKS_SOCKET={path}"
                    ),
                );
            }
            continue;
        }
        for maker in makers {
            let shared = match (w.mount_holding(path), maker.mount_holding(path)) {
                (Some(here), Some(there)) => here == there,
                _ => false,
            };
            if !shared {
                report(
                    &w.origin,
                    format!(
                        "{name} points at unix:{path}, but {} and {} do not mount one volume at its directory",
                        w.name, maker.name
                    ),
                );
            }
        }
    }
}

pub(super) fn compose_rules(m: &Manifests, report: &mut impl FnMut(&str, String)) {
    for service in &m.compose {
        for (target, condition) in &service.depends_on {
            let found = m
                .compose
                .iter()
                .find(|s| &s.workload.name == target && s.workload.group == service.workload.group);
            match found {
                None => report(
                    &service.workload.origin,
                    format!("depends on {target}, which is not a service"),
                ),
                Some(t) if condition == "service_healthy" && t.workload.probes.is_empty() => {
                    report(
                        &service.workload.origin,
                        format!("waits for {target} to be healthy, but it has no healthcheck"),
                    )
                }
                _ => {}
            }
        }
    }
}

pub(super) fn service_rules(
    c: &Cluster,
    binaries: &BTreeMap<String, EnvList>,
    listens: &BTreeMap<&str, Listen>,
    admins: &BTreeMap<&str, Listen>,
    report: &mut impl FnMut(&str, String),
) {
    for svc in &c.services {
        let groups: Vec<&String> = c
            .pod_labels
            .iter()
            .filter(|(_, labels)| {
                !svc.selector.is_empty()
                    && svc.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(g, _)| g)
            .collect();
        if groups.is_empty() {
            report(&svc.origin, "selects no Deployment's pods".into());
            continue;
        }
        for target in &svc.target_ports {
            let hits: Vec<&Workload> = c
                .workloads
                .iter()
                .filter(|w| groups.contains(&&w.group))
                .filter(|w| {
                    w.ports.iter().any(|p| match target {
                        PortRef::Number(n) => p.number == *n,
                        PortRef::Name(name) => p.name.as_deref() == Some(name),
                    })
                })
                .collect();
            if hits.is_empty() {
                report(
                    &svc.origin,
                    format!(
                        "targets port {target:?}, which no container of the selected pods declares"
                    ),
                );
            }
            for w in &hits {
                let admin_port = admins.get(w.origin.as_str()).map(|admin| admin.port);
                let targets_admin = w.ports.iter().any(|p| {
                    Some(p.number) == admin_port
                        && match target {
                            PortRef::Number(n) => p.number == *n,
                            PortRef::Name(name) => p.name.as_deref() == Some(name),
                        }
                });
                if targets_admin {
                    report(
                        &svc.origin,
                        format!("targets the admin listener of {} ({}): /metrics would be served to whoever reaches the Service", w.name, super::ADMIN_LISTEN),
                    );
                }
            }
            for w in hits {
                let loopback = listens
                    .get(w.origin.as_str())
                    .is_some_and(Listen::is_loopback);
                if loopback && w.binary.as_ref().is_some_and(|b| binaries.contains_key(b)) {
                    report(
                        &svc.origin,
                        format!("targets {}, which listens on loopback only", w.name),
                    );
                }
            }
        }
    }
}
