//! What a manifest says about one running binary, whatever file format said it.
//!
//! [`crate::compose`] and [`crate::k8s`] turn their YAML into [`Workload`]s; [`crate::checks`]
//! only ever sees these, so every rule is written once for both formats.

use std::collections::BTreeMap;

/// Where a workload runs, which decides who must be able to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A compose service: its own container, reached over the compose network.
    Compose,
    /// A container of a Kubernetes pod: siblings reach it over the pod's loopback.
    Pod,
    /// An image's own defaults (Dockerfile runtime stage): run anywhere, so reachable.
    Image,
}

/// One binary as a manifest runs it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Where it was read, e.g. `deploy/compose.yaml: service gateway`.
    pub origin: String,
    /// The compose service or container name.
    pub name: String,
    /// Which binary runs: `gateway`, `tasks-service`, `better-auth`; `None` for third-party
    /// images (PostgreSQL) that are not ours to check.
    pub binary: Option<String>,
    /// Compose service or Kubernetes pod.
    pub placement: Placement,
    /// Groups workloads that see each other: the compose file, or the pod's Deployment.
    pub group: String,
    /// Variables set, with their literal value when the manifest gives one (`None` when the
    /// value comes from a Secret or is interpolated without a default).
    pub env: BTreeMap<String, Option<String>>,
    /// Compose only: each value as written, before `${...}` interpolation, so a rule can read
    /// the parts no variable fills (the login of `postgres://user:${PASSWORD}@...`). Empty
    /// elsewhere, where `env` holds values as written.
    pub env_written: BTreeMap<String, String>,
    /// Variables provided in bulk (`envFrom`), which no check can see into.
    pub env_from: Vec<String>,
    /// `false` for a patch (an overlay's partial Deployment): only what it sets is checked.
    pub complete: bool,
    /// Container ports the manifest publishes, exposes or declares.
    pub ports: Vec<Port>,
    /// Health checks pointed at the workload.
    pub probes: Vec<Probe>,
    /// Volumes mounted into the container: compose `volumes`, Kubernetes `volumeMounts`.
    pub mounts: Vec<Mount>,
    /// The numeric user id the process runs as, when the manifest says: Kubernetes
    /// `securityContext.runAsUser` of the container, else of the pod; compose `user:`;
    /// Dockerfile `USER`. `None` when unset or given as a name (the image's user then
    /// decides, which a manifest alone cannot tell).
    pub run_as_user: Option<u64>,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The volume's name (a compose named volume or host path; a pod's `volumes[].name`).
    pub volume: String,
    /// Where it appears inside the container.
    pub path: String,
}

impl Workload {
    /// The mount that holds `path` inside this container (the deepest, as the kernel picks).
    pub fn mount_holding(&self, path: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .filter(|m| {
                let dir = m.path.trim_end_matches('/');
                path.strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|m| m.path.len())
    }
}

/// The user id of a `user[:group]` as compose's `user:` and Dockerfile's `USER` write it;
/// `None` for a name, which only the image's /etc/passwd resolves.
pub fn numeric_user(spec: &str) -> Option<u64> {
    spec.trim().split(':').next()?.parse().ok()
}

/// A port a manifest says the container listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The container-side port number.
    pub number: u16,
    /// The port's name (Kubernetes `containerPorts[].name`).
    pub name: Option<String>,
    /// `true` when published on the host (compose `ports:`), not only exposed.
    pub published: bool,
}

/// One health check: compose `healthcheck`, Kubernetes readiness/liveness/startup probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `healthcheck`, `readinessProbe`, `livenessProbe`, `startupProbe`.
    pub kind: String,
    /// What it requests.
    pub target: ProbeTarget,
}

/// What a probe requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    /// Kubernetes `httpGet`: the kubelet connects to the pod IP, never to loopback.
    HttpGet { port: PortRef, path: String },
    /// A command run inside the container that requests a URL (http-probe, node fetch).
    Url(String),
    /// A command with no URL in it (e.g. `pg_isready`), or a TCP check.
    Other(String),
}

/// A port given by number or by the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// The address a binary listens on, once its env and defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Host part: `0.0.0.0`, `127.0.0.1`, `::`...
    pub host: String,
    /// Port number.
    pub port: u16,
}

impl Listen {
    /// `true` for addresses only the same network namespace can reach.
    pub fn is_loopback(&self) -> bool {
        matches!(
            self.host.trim_matches(['[', ']']),
            "127.0.0.1" | "::1" | "localhost"
        ) || self.host.starts_with("127.")
    }

    /// `true` for the wildcard addresses every interface answers on.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.trim_matches(['[', ']']), "0.0.0.0" | "::")
    }

    /// Parses `host:port`, `[v6]:port`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (host, port) = raw.trim().rsplit_once(':')?;
        Some(Self {
            host: host.to_owned(),
            port: port.parse().ok()?,
        })
    }
}

/// The host and port of an `http://host:port/...` URL, and its path.
pub fn split_url(url: &str) -> Option<(String, Option<u16>, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, Some(p.parse().ok()?)),
        _ => (authority, None),
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Some((host.to_owned(), port, path.to_owned()))
}

/// Every `http://...` URL inside a text (a command line, a route table), cut at characters
/// that cannot be part of one.
pub fn urls_in(text: &str) -> Vec<String> {
    text.match_indices("http://")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"'\"`,;()+".contains(*c))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8081/readyz?x=1"),
            Some(("127.0.0.1".into(), Some(8081), "/readyz".into()))
        );
        assert_eq!(
            split_url("http://better-auth:3000"),
            Some(("better-auth".into(), Some(3000), "/".into()))
        );
        assert_eq!(split_url("https://x"), None);
    }

    #[test]
    fn finds_urls_in_commands() {
        assert_eq!(
            urls_in("fetch('http://127.0.0.1:3000/healthz').then(r=>1)"),
            vec!["http://127.0.0.1:3000/healthz".to_string()]
        );
    }

    #[test]
    fn reads_numeric_users_only() {
        assert_eq!(numeric_user("65532:65532"), Some(65532));
        assert_eq!(numeric_user(" 1000 "), Some(1000));
        assert_eq!(numeric_user("postgres"), None);
        assert_eq!(numeric_user("nonroot:nonroot"), None);
    }

    #[test]
    fn tells_loopback_from_wildcard() {
        assert!(Listen::parse("127.0.0.1:8081").unwrap().is_loopback());
        assert!(Listen::parse("[::]:8080").unwrap().is_wildcard());
        assert!(!Listen::parse("0.0.0.0:8080").unwrap().is_loopback());
    }
}
