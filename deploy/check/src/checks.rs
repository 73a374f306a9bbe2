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
    workload::{split_url, Listen, Placement, ProbeTarget, Workload},
};

mod links;
mod workload;

use links::{compose_rules, service_rules, socket_rules, url_rules};
pub use workload::{admin_listen_of, listen_of, ADMIN_LISTEN};
use workload::{
    placement_rules, probe_rules, required_probe_rules, stop_rules, user_rules, workload_rules,
};

/// In a pod these binaries listen on loopback only: the gateway sidecar is their one client.
pub const LOOPBACK_ONLY_IN_POD: &[&str] = &["tasks-service"];
/// In a pod these binaries need a user id no other container of the pod has: the gateway
/// opens one `SO_REUSEPORT` listener per worker, and Linux admits into such a group any
/// socket of the same user, which then gets a share of new connections. The containers
/// share the pod's network namespace, so a sibling running as the same user could bind
/// the gateway's address and read clients' bearer tokens and passwords.
pub const OWN_USER_IN_POD: &[&str] = &["gateway"];
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
    /// The runtime stage of every deploy/docker/Dockerfile.<binary>.
    pub images: Vec<Workload>,
}

impl Manifests {
    /// Every workload, compose first.
    pub fn workloads(&self) -> impl Iterator<Item = &Workload> {
        self.compose
            .iter()
            .map(|s| &s.workload)
            .chain(&self.cluster.workloads)
            .chain(&self.images)
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
    let admins: BTreeMap<&str, Listen> = manifests
        .workloads()
        .filter_map(|w| {
            let env = binaries.get(w.binary.as_deref()?)?;
            Some((w.origin.as_str(), admin_listen_of(w, env)?))
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
            let admin = admins.get(w.origin.as_str());
            placement_rules(w, binary, listen, admin, &mut report);
            probe_rules(w, listen, &mut report);
        }
        if w.complete || w.placement == Placement::Image {
            required_probe_rules(w, &mut report);
        }
        if let Some(&grace) = manifests.cluster.stop_grace.get(&w.group) {
            stop_rules(w, env, grace, &mut report);
        }
        if w.placement == Placement::Pod && w.complete && OWN_USER_IN_POD.contains(&binary.as_str())
        {
            user_rules(w, binary, manifests, &mut report);
        }
        url_rules(w, manifests, &listens, &mut report);
        socket_rules(w, manifests, &mut report);
    }
    compose_rules(manifests, &mut report);
    service_rules(&manifests.cluster, binaries, &listens, &admins, &mut report);
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
