//! Rules about one workload on its own: the variables it sets, the address it listens on,
//! the ports it declares, where its probes point and the user it runs as.

use crate::{
    env_list::EnvList,
    workload::{split_url, Listen, Placement, PortRef, ProbeTarget, Workload},
};

use super::{Manifests, LOOPBACK_ONLY_IN_POD, PUBLISHED_IN_COMPOSE};

pub(super) fn workload_rules(
    w: &Workload,
    binary: &str,
    env: &EnvList,
    report: &mut impl FnMut(&str, String),
) {
    // A variable only there to be expanded into another (`$(POD_NAME)` in Kubernetes) is
    // read through the one that names it.
    let expanded = |name: &str| {
        let reference = format!("$({name})");
        w.env
            .values()
            .flatten()
            .any(|value| value.contains(&reference))
    };
    for name in w.env.keys() {
        if env.get(name).is_none() && !expanded(name) {
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
    for (name, value) in &w.env {
        let written = w.env_written.get(name).map(String::as_str);
        let login = written.or(value.as_deref()).and_then(database_login);
        if name.ends_with("DATABASE_URL") && login == Some("postgres") {
            report(
                &w.origin,
                format!(
                    "sets {name} to log in as the superuser postgres, whom no row-level \
                     security binds and no grant limits; give it a login of its own \
                     (deploy/postgres/roles.sh)"
                ),
            );
        }
    }
    if let Some(Some(filter)) = w.env.get("RUST_LOG") {
        if lets_tokio_postgres_debug(filter) {
            report(
                &w.origin,
                format!(
                    "sets RUST_LOG={filter:?}, at which tokio_postgres logs every statement's \
                     parameters (user ids, task titles); add tokio_postgres=info"
                ),
            );
        }
    }
}

/// Whether a `RUST_LOG` filter lets tokio_postgres log at debug or trace, where it writes
/// each statement with its parameters: user data in the log. Decided as tracing's `EnvFilter`
/// does: the directive whose target is the longest prefix of `tokio_postgres` (none: the
/// global level), and any directive for a module inside it counts on its own.
fn lets_tokio_postgres_debug(filter: &str) -> bool {
    const CRATE: &str = "tokio_postgres";
    // (target length, verbose) of the directive deciding for the crate as a whole.
    let mut deciding: Option<(usize, bool)> = None;
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (target, verbose) = match directive.rsplit_once('=') {
            Some((target, level)) => match verbose_level(level) {
                Some(verbose) => (target, verbose),
                // Not a level: the binaries refuse such a filter at start
                // (`proto_shared::telemetry`), so it never decides what is logged.
                None => continue,
            },
            None => match verbose_level(directive) {
                Some(verbose) => ("", verbose),
                // A bare target enables everything in it.
                None => (directive, true),
            },
        };
        // Span and field filters (`target[span{field=value}]`) narrow a directive, but not
        // which targets it can reach.
        let target = target.split('[').next().unwrap_or_default();
        if CRATE.starts_with(target) && deciding.is_none_or(|(length, _)| target.len() >= length) {
            deciding = Some((target.len(), verbose));
        } else if verbose && target.starts_with(CRATE) {
            return true;
        }
    }
    deciding.is_some_and(|(_, verbose)| verbose)
}

/// The user a `postgres://user[:password]@host/...` URL logs in as, if it names one.
fn database_login(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (userinfo, _) = rest.split_once('@')?;
    let user = userinfo.split(':').next()?;
    (!user.is_empty()).then_some(user)
}

/// `Some(true)` for debug and trace, `Some(false)` for a quieter level, `None` for no level.
fn verbose_level(level: &str) -> Option<bool> {
    match level.trim().to_ascii_lowercase().as_str() {
        "debug" | "trace" | "4" | "5" => Some(true),
        "off" | "error" | "warn" | "info" | "0" | "1" | "2" | "3" => Some(false),
        _ => None,
    }
}

/// The variable of an operators' listener (`/metrics`), beside the main `*_LISTEN` one.
pub const ADMIN_LISTEN: &str = "ADMIN_LISTEN";

/// The address a workload's binary listens on: its `*_LISTEN` variable (other than
/// [`ADMIN_LISTEN`]), or `HOST` + `PORT`.
pub fn listen_of(w: &Workload, env: &EnvList) -> Result<Listen, String> {
    let listen_vars: Vec<&str> = env
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| n.ends_with("_LISTEN") && *n != ADMIN_LISTEN)
        .collect();
    let raw = match listen_vars.as_slice() {
        [one] => value_of(w, env, one)?,
        [] if env.get("HOST").is_some() && env.get("PORT").is_some() => {
            format!(
                "{}:{}",
                value_of(w, env, "HOST")?,
                value_of(w, env, "PORT")?
            )
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

/// The address of the binary's operators' listener, if it has one ([`ADMIN_LISTEN`]).
pub fn admin_listen_of(w: &Workload, env: &EnvList) -> Option<Listen> {
    env.get(ADMIN_LISTEN)?;
    Listen::parse(&value_of(w, env, ADMIN_LISTEN).ok()?)
}

/// The value `w` gives `name`, else the binary's default.
fn value_of(w: &Workload, env: &EnvList, name: &str) -> Result<String, String> {
    match w.env.get(name) {
        Some(Some(v)) => Ok(v.clone()),
        Some(None) => Err(format!("sets {name} from a reference; give it a literal value so its address can be checked")),
        None => env.get(name).and_then(|v| v.default.clone()).ok_or_else(|| {
            format!("does not set {name} and the binary reports no default for it; set it explicitly")
        }),
    }
}

/// A container of a pod must be done stopping before the kubelet kills it: after SIGTERM the
/// binaries keep accepting for `SHUTDOWN_DELAY_SECS`, then drain for up to
/// `SHUTDOWN_GRACE_SECS`; a pod's `terminationGracePeriodSeconds` (`grace`) shorter than both
/// cuts requests off mid-answer at every rollout.
pub(super) fn stop_rules(
    w: &Workload,
    env: &EnvList,
    grace: u64,
    report: &mut impl FnMut(&str, String),
) {
    const DELAY: &str = "SHUTDOWN_DELAY_SECS";
    const DRAIN: &str = "SHUTDOWN_GRACE_SECS";
    let secs = |name: &str| -> Option<u64> {
        env.get(name)?;
        value_of(w, env, name).ok()?.parse().ok()
    };
    let Some(drain) = secs(DRAIN) else { return };
    let delay = secs(DELAY).unwrap_or(0);
    if delay + drain > grace {
        report(
            &w.origin,
            format!(
                "may take {DELAY} + {DRAIN} = {delay} + {drain} s to stop, longer than the pod's \
                 terminationGracePeriodSeconds ({grace}): the kubelet would kill it mid-drain"
            ),
        );
    }
}

pub(super) fn placement_rules(
    w: &Workload,
    binary: &str,
    listen: &Listen,
    admin: Option<&Listen>,
    report: &mut impl FnMut(&str, String),
) {
    for port in &w.ports {
        if let Some(admin) = admin.filter(|admin| admin.port == port.number) {
            // A declared admin port is for a scraper in the cluster: it must be reachable
            // there, and never published on a host.
            if port.published {
                report(&w.origin, format!("publishes port {} of the admin listener ({ADMIN_LISTEN}): /metrics would be public", port.number));
            } else if !admin.is_wildcard() {
                report(&w.origin, format!("declares port {} for the admin listener, which listens on {}:{} where nothing outside the container reaches it", port.number, admin.host, admin.port));
            }
            continue;
        }
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
    } else if !listen.is_wildcard() && (w.placement != Placement::Pod || !w.ports.is_empty()) {
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

pub(super) fn probe_rules(w: &Workload, listen: &Listen, report: &mut impl FnMut(&str, String)) {
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

pub(super) fn required_probe_rules(w: &Workload, report: &mut impl FnMut(&str, String)) {
    let has = |kind: &str| w.probes.iter().any(|p| p.kind == kind);
    let needed: &[&str] = match w.placement {
        Placement::Compose => &["healthcheck"],
        Placement::Pod => &["readinessProbe", "livenessProbe"],
        Placement::Image => &["HEALTHCHECK"],
    };
    for kind in needed.iter().filter(|k| !has(k)) {
        report(&w.origin, format!("has no {kind}"));
    }
}

/// A binary of [`super::OWN_USER_IN_POD`] must run as a user id that the manifest names and
/// that no other container of its pod runs as: Linux lets any socket of the same user join
/// its `SO_REUSEPORT` listeners and take a share of their connections. A sibling whose user
/// the manifest leaves to its image cannot be told apart, so that is reported too.
pub(super) fn user_rules(
    w: &Workload,
    binary: &str,
    m: &Manifests,
    report: &mut impl FnMut(&str, String),
) {
    const WHY: &str = "it listens with SO_REUSEPORT, and Linux admits any socket of the same \
                       user into its listeners, handing it a share of the clients' connections \
                       (bearer tokens, passwords)";
    let Some(user) = w.run_as_user else {
        report(
            &w.origin,
            format!(
                "sets no runAsUser (container or pod securityContext), so which user {binary} \
                 runs as is the image's to say: give it a numeric user no other container of \
                 the pod has; {WHY}"
            ),
        );
        return;
    };
    let siblings = m.workloads().filter(|s| {
        s.group == w.group && s.origin != w.origin && s.placement == Placement::Pod && s.complete
    });
    for sibling in siblings {
        match sibling.run_as_user {
            Some(other) if other == user => report(
                &w.origin,
                format!(
                    "runs as user {user}, as does container {} of the same pod, which could \
                     bind {binary}'s address: give {binary} a securityContext.runAsUser of its \
                     own; {WHY}",
                    sibling.name
                ),
            ),
            Some(_) => {}
            None => report(
                &w.origin,
                format!(
                    "cannot tell whether container {} of the same pod runs as user {user} too \
                     (it and the pod set no runAsUser): set one; {WHY}",
                    sibling.name
                ),
            ),
        }
    }
}
