//! The rules: what a manifest may set, must set, probe, publish and point at.
//!
//! Input is the binaries' own env lists and the parsed [`Manifests`]; output is every
//! [`Problem`], each naming the file and object to fix. Rules only read, never guess: a value
//! the check cannot determine (a listen address from a Secret) is itself a problem.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    compose::Service,
    env_list::EnvList,
    k8s::Cluster,
    workload::{split_url, urls_in, Listen, Placement, PortRef, ProbeTarget, Workload},
};

/// In a pod these binaries listen on loopback only: the gateway sidecar is their one client.
pub const LOOPBACK_ONLY_IN_POD: &[&str] = &["tasks-service"];
/// In compose only these services publish ports on the host; the rest stay on the network.
pub const PUBLISHED_IN_COMPOSE: &[&str] = &["gateway"];

/// One disagreement between a manifest and a binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// File and object, e.g. `deploy/compose.yaml: service gateway`.
    pub origin: String,
    /// What is wrong and what the binary says instead.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Everything parsed from deploy/.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Compose services of every compose file.
    pub compose: Vec<Service>,
    /// Kubernetes objects of every file under deploy/k8s.
    pub cluster: Cluster,
}

impl Manifests {
    /// Every workload, compose first.
    pub fn workloads(&self) -> impl Iterator<Item = &Workload> {
        self.compose
            .iter()
            .map(|s| &s.workload)
            .chain(&self.cluster.workloads)
    }

    /// The paths each binary's probes request, for the live check.
    pub fn probe_paths(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for w in self.workloads() {
            let Some(binary) = &w.binary else { continue };
            for probe in &w.probes {
                let path = match &probe.target {
                    ProbeTarget::HttpGet { path, .. } => Some(path.clone()),
                    ProbeTarget::Url(url) => split_url(url).map(|(_, _, p)| p),
                    ProbeTarget::Other(_) => None,
                };
                out.entry(binary.clone()).or_default().extend(path);
            }
        }
        out
    }
}

/// Runs every rule; an empty result means deploy/ agrees with the binaries.
pub fn check_all(manifests: &Manifests, binaries: &BTreeMap<String, EnvList>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |origin: &str, message: String| {
        problems.push(Problem {
            origin: origin.to_owned(),
            message,
        })
    };
    let listens: BTreeMap<&str, Listen> = manifests
        .workloads()
        .filter_map(|w| {
            let env = binaries.get(w.binary.as_deref()?)?;
            Some((w.origin.as_str(), listen_of(w, env).ok()?))
        })
        .collect();
    for w in manifests.workloads() {
        let Some(binary) = &w.binary else { continue };
        let Some(env) = binaries.get(binary) else {
            report(
                &w.origin,
                format!(
                    "runs {binary}, for which no env list is known (known: {})",
                    binaries.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            continue;
        };
        workload_rules(w, binary, env, &mut report);
        let listen = listens.get(w.origin.as_str());
        if let Some(listen) = listen {
            placement_rules(w, binary, listen, &mut report);
            probe_rules(w, listen, &mut report);
        }
        if w.complete {
            required_probe_rules(w, &mut report);
        }
        url_rules(w, manifests, &listens, &mut report);
    }
    compose_rules(manifests, &mut report);
    service_rules(&manifests.cluster, binaries, &listens, &mut report);
    for (origin, secret, key) in &manifests.cluster.secret_refs {
        let known = manifests.cluster.secret_keys.get(secret);
        if !known.is_some_and(|keys| keys.contains(key)) {
            report(origin, format!("reads key {key} of Secret {secret}, which no Secret, template or secretGenerator under deploy/k8s provides"));
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

fn workload_rules(
    w: &Workload,
    binary: &str,
    env: &EnvList,
    report: &mut impl FnMut(&str, String),
) {
    for name in w.env.keys() {
        if env.get(name).is_none() {
            report(
                &w.origin,
                format!(
                    "sets {name}, which {binary} does not read (it reads: {})",
                    env.names()
                ),
            );
        }
    }
    if w.complete {
        for var in env.required() {
            if !w.env.contains_key(&var.name) {
                report(
                    &w.origin,
                    format!("does not set {}, which {binary} requires", var.name),
                );
            }
        }
    }
    for bulk in &w.env_from {
        report(
            &w.origin,
            format!("uses {bulk}; list each variable under env/environment so it can be checked"),
        );
    }
    if (w.complete || !w.ports.is_empty()) && listen_of(w, env).is_err() {
        report(&w.origin, listen_of(w, env).unwrap_err());
    }
}

/// The address a workload's binary listens on: its `*_LISTEN` variable, or `HOST` + `PORT`.
pub fn listen_of(w: &Workload, env: &EnvList) -> Result<Listen, String> {
    let value = |name: &str| -> Result<String, String> {
        match w.env.get(name) {
            Some(Some(v)) => Ok(v.clone()),
            Some(None) => Err(format!("sets {name} from a reference; give it a literal value so its address can be checked")),
            None => env.get(name).and_then(|v| v.default.clone()).ok_or_else(|| {
                format!("does not set {name} and the binary reports no default for it; set it explicitly")
            }),
        }
    };
    let listen_vars: Vec<&str> = env
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| n.ends_with("_LISTEN"))
        .collect();
    let raw = match listen_vars.as_slice() {
        [one] => value(one)?,
        [] if env.get("HOST").is_some() && env.get("PORT").is_some() => {
            format!("{}:{}", value("HOST")?, value("PORT")?)
        }
        _ => {
            return Err(format!(
                "cannot tell which variable sets the listen address (reads: {})",
                env.names()
            ))
        }
    };
    Listen::parse(&raw).ok_or_else(|| format!("listen address {raw:?} is not host:port"))
}

fn placement_rules(
    w: &Workload,
    binary: &str,
    listen: &Listen,
    report: &mut impl FnMut(&str, String),
) {
    for port in &w.ports {
        if port.number != listen.port {
            report(
                &w.origin,
                format!(
                    "declares container port {}, but {binary} listens on {}:{}",
                    port.number, listen.host, listen.port
                ),
            );
        }
    }
    let loopback_only = w.placement == Placement::Pod && LOOPBACK_ONLY_IN_POD.contains(&binary);
    if loopback_only {
        if !listen.is_loopback() {
            report(&w.origin, format!("{binary} must listen on 127.0.0.1 in the pod (only the sidecar reaches it), not {}", listen.host));
        }
        if !w.ports.is_empty() {
            report(&w.origin, format!("{binary} listens on loopback only; declaring container ports would invite a Service to target it"));
        }
    } else if !listen.is_wildcard() && (w.placement == Placement::Compose || !w.ports.is_empty()) {
        report(
            &w.origin,
            format!(
                "listens on {}:{}, which other containers cannot reach; use 0.0.0.0",
                listen.host, listen.port
            ),
        );
    }
    if w.placement == Placement::Compose
        && w.ports.iter().any(|p| p.published)
        && !PUBLISHED_IN_COMPOSE.contains(&w.name.as_str())
    {
        report(
            &w.origin,
            format!(
                "publishes a port on the host; only {} may, the rest stay on the compose network",
                PUBLISHED_IN_COMPOSE.join(", ")
            ),
        );
    }
}

fn probe_rules(w: &Workload, listen: &Listen, report: &mut impl FnMut(&str, String)) {
    for probe in &w.probes {
        match &probe.target {
            ProbeTarget::Url(url) => match split_url(url) {
                Some((host, port, _)) => {
                    let port = port.unwrap_or(80);
                    if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") {
                        report(&w.origin, format!("{} requests {url}; a check run inside the container should use 127.0.0.1", probe.kind));
                    }
                    if port != listen.port {
                        report(
                            &w.origin,
                            format!(
                                "{} requests port {port}, but the binary listens on {}",
                                probe.kind, listen.port
                            ),
                        );
                    }
                }
                None => report(
                    &w.origin,
                    format!("{} URL {url:?} cannot be read", probe.kind),
                ),
            },
            ProbeTarget::HttpGet { port, .. } => {
                let number = match port {
                    PortRef::Number(n) => Some(*n),
                    PortRef::Name(name) => w
                        .ports
                        .iter()
                        .find(|p| p.name.as_deref() == Some(name))
                        .map(|p| p.number),
                };
                match number {
                    Some(n) if n != listen.port => report(
                        &w.origin,
                        format!(
                            "{} targets port {n}, but the binary listens on {}",
                            probe.kind, listen.port
                        ),
                    ),
                    None => report(
                        &w.origin,
                        format!(
                            "{} targets port {port:?}, which no container port names",
                            probe.kind
                        ),
                    ),
                    _ => {}
                }
                if listen.is_loopback() {
                    report(&w.origin, format!("{} is an httpGet, but the kubelet cannot reach {}:{}; use an exec probe (http-probe)", probe.kind, listen.host, listen.port));
                }
            }
            ProbeTarget::Other(command) => report(
                &w.origin,
                format!(
                    "{} requests no http:// URL ({command}); its path cannot be checked",
                    probe.kind
                ),
            ),
        }
    }
}

fn required_probe_rules(w: &Workload, report: &mut impl FnMut(&str, String)) {
    let has = |kind: &str| w.probes.iter().any(|p| p.kind == kind);
    let needed: &[&str] = match w.placement {
        Placement::Compose => &["healthcheck"],
        Placement::Pod => &["readinessProbe", "livenessProbe"],
    };
    for kind in needed.iter().filter(|k| !has(k)) {
        report(&w.origin, format!("has no {kind}"));
    }
}

/// URLs in env values that point at a sibling must hit the port the sibling listens on.
fn url_rules(
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

fn compose_rules(m: &Manifests, report: &mut impl FnMut(&str, String)) {
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

fn service_rules(
    c: &Cluster,
    binaries: &BTreeMap<String, EnvList>,
    listens: &BTreeMap<&str, Listen>,
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
