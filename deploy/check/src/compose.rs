//! Reads a compose file into [`Workload`]s: one per service.
//!
//! Which binary a service runs comes from its Dockerfile (`deploy/docker/Dockerfile.<binary>`)
//! or, without a build, from its image's last path segment; other images (PostgreSQL) are
//! third-party and get `binary: None`.

use serde_norway::Value;

use crate::{
    workload::{numeric_user, Mount, Placement, Port, Probe, ProbeTarget, Workload},
    yaml::{self, interpolate_defaults, scalar},
};

/// A compose service as the checks see it, plus what only compose has.
#[derive(Debug, Clone)]
pub struct Service {
    /// The workload view shared with Kubernetes.
    pub workload: Workload,
    /// Services this one waits for, with the condition (`service_healthy`...).
    pub depends_on: Vec<(String, String)>,
}

/// Parses one compose file.
pub fn parse(file: &str, doc: &Value) -> Result<Vec<Service>, String> {
    let services = yaml::at(doc, &["services"])
        .and_then(Value::as_mapping)
        .ok_or_else(|| format!("{file}: no `services:` mapping"))?;
    let mut out = Vec::new();
    for (name, service) in services {
        let name = name
            .as_str()
            .ok_or_else(|| format!("{file}: a service name is not a string"))?;
        let origin = format!("{file}: service {name}");
        let written = environment(service);
        let workload = Workload {
            binary: binary_of(service),
            placement: Placement::Compose,
            group: file.to_owned(),
            env: written
                .iter()
                .map(|(k, v)| (k.clone(), v.as_deref().and_then(interpolate_defaults)))
                .collect(),
            env_written: written
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect(),
            env_from: yaml::at(service, &["env_file"])
                .map(|v| format!("env_file {}", scalar(v).unwrap_or_else(|| "[...]".into())))
                .into_iter()
                .collect(),
            complete: true,
            ports: ports(service).map_err(|e| format!("{origin}: {e}"))?,
            probes: healthcheck(service).into_iter().collect(),
            mounts: mounts(service),
            run_as_user: yaml::at(service, &["user"])
                .and_then(scalar)
                .as_deref()
                .and_then(numeric_user),
            name: name.to_owned(),
            origin,
        };
        out.push(Service {
            depends_on: depends_on(service),
            workload,
        });
    }
    Ok(out)
}

fn binary_of(service: &Value) -> Option<String> {
    let dockerfile = yaml::str_at(service, &["build", "dockerfile"]);
    if let Some(binary) = dockerfile.and_then(|d| d.rsplit('/').next()?.strip_prefix("Dockerfile."))
    {
        return Some(binary.to_owned());
    }
    if yaml::at(service, &["build"]).is_some() {
        // A build we cannot name is still ours: report it rather than skip it.
        return Some(format!(
            "<unknown build {:?}>",
            dockerfile.unwrap_or("Dockerfile")
        ));
    }
    let image = yaml::str_at(service, &["image"])?;
    let last = image.rsplit('/').next()?.split([':', '@']).next()?;
    matches!(last, "gateway" | "tasks-service" | "better-auth").then(|| last.to_owned())
}

/// `environment:` in either syntax, each value as written (`None`: a bare name, no value).
fn environment(service: &Value) -> std::collections::BTreeMap<String, Option<String>> {
    let mut env = std::collections::BTreeMap::new();
    match yaml::at(service, &["environment"]) {
        Some(Value::Mapping(map)) => {
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    env.insert(k.to_owned(), scalar(v));
                }
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items.iter().filter_map(Value::as_str) {
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                env.insert(k.to_owned(), Some(v.to_owned()));
            }
        }
        _ => {}
    }
    env
}

/// `ports:` (published) and `expose:` entries, short and long syntax, container side only.
fn ports(service: &Value) -> Result<Vec<Port>, String> {
    let mut out = Vec::new();
    for (key, published) in [("ports", true), ("expose", false)] {
        for entry in yaml::seq_at(service, &[key]) {
            let number = match entry {
                Value::Mapping(_) => yaml::at(entry, &["target"]).and_then(scalar),
                other => scalar(other)
                    .and_then(|raw| interpolate_defaults(&raw))
                    .and_then(|s| s.rsplit(':').next().map(str::to_owned)),
            };
            let number = number
                .map(|n| n.split('/').next().unwrap_or_default().to_owned())
                .and_then(|n| n.parse::<u16>().ok())
                .ok_or_else(|| {
                    format!("cannot read the container port of {key} entry {entry:?}")
                })?;
            out.push(Port {
                number,
                name: None,
                published,
            });
        }
    }
    Ok(out)
}

/// `volumes:` entries, short (`source:target[:mode]`) or long (`{ source, target }`).
fn mounts(service: &Value) -> Vec<Mount> {
    yaml::seq_at(service, &["volumes"])
        .iter()
        .filter_map(|entry| {
            let (volume, path) = match scalar(entry) {
                Some(short) => {
                    let mut parts = short.split(':');
                    (parts.next()?.to_owned(), parts.next()?.to_owned())
                }
                None => (
                    yaml::str_at(entry, &["source"])?.to_owned(),
                    yaml::str_at(entry, &["target"])?.to_owned(),
                ),
            };
            Some(Mount { volume, path })
        })
        .collect()
}

fn healthcheck(service: &Value) -> Option<Probe> {
    let test = yaml::at(service, &["healthcheck", "test"])?;
    let command = match test {
        Value::Sequence(parts) => parts
            .iter()
            .filter_map(scalar)
            .collect::<Vec<_>>()
            .join(" "),
        other => scalar(other)?,
    };
    Some(Probe {
        kind: "healthcheck".into(),
        target: command_target(&command),
    })
}

/// The URL a probe command requests, if it names one.
pub fn command_target(command: &str) -> ProbeTarget {
    match crate::workload::urls_in(command).into_iter().next() {
        Some(url) => ProbeTarget::Url(url),
        None => ProbeTarget::Other(command.to_owned()),
    }
}

fn depends_on(service: &Value) -> Vec<(String, String)> {
    match yaml::at(service, &["depends_on"]) {
        Some(Value::Sequence(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .map(|n| (n.to_owned(), "service_started".to_owned()))
            .collect(),
        Some(Value::Mapping(map)) => map
            .iter()
            .filter_map(|(k, v)| {
                let condition = yaml::str_at(v, &["condition"]).unwrap_or("service_started");
                Some((k.as_str()?.to_owned(), condition.to_owned()))
            })
            .collect(),
        _ => Vec::new(),
    }
}
