//! Reads Kubernetes manifests and kustomizations into what the checks need: one
//! [`Workload`] per container of each Deployment (or Deployment patch), the Services, and
//! the Secret keys that manifests, templates and secret generators provide.
//!
//! A Deployment with `spec.selector` is complete; one without is an overlay patch, checked
//! only for what it sets.

use std::{collections::BTreeMap, path::Path};

use serde_norway::Value;

use crate::{
    compose::command_target,
    workload::{Mount, Placement, Port, PortRef, Probe, ProbeTarget, Workload},
    yaml::{self, scalar},
};

/// Everything read from the Kubernetes files.
#[derive(Debug, Default)]
pub struct Cluster {
    /// One per container.
    pub workloads: Vec<Workload>,
    /// Pod template labels of each complete Deployment, by group (`file: Deployment name`).
    pub pod_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Services.
    pub services: Vec<ServiceDef>,
    /// Secret name to the keys some Secret, template or generator provides.
    pub secret_keys: BTreeMap<String, Vec<String>>,
    /// `(origin, secret, key)` for every `secretKeyRef`.
    pub secret_refs: Vec<(String, String, String)>,
    /// `terminationGracePeriodSeconds` of each complete Deployment (Kubernetes' 30 when
    /// unset), by group: how long its containers get between SIGTERM and SIGKILL.
    pub stop_grace: BTreeMap<String, u64>,
}

/// A Service: what it selects and which ports it targets.
#[derive(Debug, Clone)]
pub struct ServiceDef {
    /// `file: Service name`.
    pub origin: String,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// `targetPort` of each port (defaults to `port`).
    pub target_ports: Vec<PortRef>,
}

impl Cluster {
    /// Adds every document of one file; `dir` resolves a kustomization's `envs` files.
    pub fn add(&mut self, file: &str, dir: &Path, docs: &[Value]) -> Result<(), String> {
        for doc in docs {
            match yaml::str_at(doc, &["kind"]) {
                Some("Deployment") => self.add_deployment(file, doc)?,
                Some("Service") => self.add_service(file, doc),
                Some("Secret") => {
                    let name = yaml::str_at(doc, &["metadata", "name"]).unwrap_or_default();
                    let keys = ["data", "stringData"]
                        .iter()
                        .filter_map(|f| yaml::at(doc, &[f]).and_then(Value::as_mapping))
                        .flat_map(|m| m.keys().filter_map(Value::as_str).map(str::to_owned));
                    self.secret_keys
                        .entry(name.to_owned())
                        .or_default()
                        .extend(keys);
                }
                Some("Kustomization") => self.add_generators(file, dir, doc)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn add_deployment(&mut self, file: &str, doc: &Value) -> Result<(), String> {
        let name = yaml::str_at(doc, &["metadata", "name"]).unwrap_or("<unnamed>");
        let group = format!("{file}: Deployment {name}");
        let complete = yaml::at(doc, &["spec", "selector"]).is_some();
        if complete {
            let labels = string_map(yaml::at(doc, &["spec", "template", "metadata", "labels"]));
            self.pod_labels.insert(group.clone(), labels);
            let grace = yaml::at(
                doc,
                &["spec", "template", "spec", "terminationGracePeriodSeconds"],
            );
            self.stop_grace
                .insert(group.clone(), grace.and_then(Value::as_u64).unwrap_or(30));
        }
        // The pod's user, which a container's own securityContext overrides.
        let pod_user = yaml::at(
            doc,
            &["spec", "template", "spec", "securityContext", "runAsUser"],
        )
        .and_then(Value::as_u64);
        for container in yaml::seq_at(doc, &["spec", "template", "spec", "containers"]) {
            let cname = yaml::str_at(container, &["name"]).unwrap_or("<unnamed>");
            let origin = format!("{group} container {cname}");
            let mut env = BTreeMap::new();
            for var in yaml::seq_at(container, &["env"]) {
                let Some(var_name) = yaml::str_at(var, &["name"]) else {
                    return Err(format!("{origin}: an env entry has no name"));
                };
                if let (Some(secret), Some(key)) = (
                    yaml::str_at(var, &["valueFrom", "secretKeyRef", "name"]),
                    yaml::str_at(var, &["valueFrom", "secretKeyRef", "key"]),
                ) {
                    self.secret_refs
                        .push((origin.clone(), secret.to_owned(), key.to_owned()));
                }
                env.insert(
                    var_name.to_owned(),
                    yaml::at(var, &["value"]).and_then(scalar),
                );
            }
            let env_from = yaml::seq_at(container, &["envFrom"])
                .iter()
                .map(|e| format!("envFrom {e:?}"))
                .collect();
            let ports = yaml::seq_at(container, &["ports"])
                .iter()
                .filter_map(|p| {
                    Some(Port {
                        number: u16::try_from(yaml::at(p, &["containerPort"])?.as_u64()?).ok()?,
                        name: yaml::str_at(p, &["name"]).map(str::to_owned),
                        published: false,
                    })
                })
                .collect();
            let probes = ["readinessProbe", "livenessProbe", "startupProbe"]
                .iter()
                .filter_map(|kind| {
                    let probe = yaml::at(container, &[kind])?;
                    Some(Probe {
                        kind: (*kind).to_owned(),
                        target: probe_target(probe),
                    })
                })
                .collect();
            let mounts = yaml::seq_at(container, &["volumeMounts"])
                .iter()
                .filter_map(|m| {
                    Some(Mount {
                        volume: yaml::str_at(m, &["name"])?.to_owned(),
                        path: yaml::str_at(m, &["mountPath"])?.to_owned(),
                    })
                })
                .collect();
            self.workloads.push(Workload {
                origin,
                name: cname.to_owned(),
                binary: binary_of(container),
                placement: Placement::Pod,
                group: group.clone(),
                env,
                env_from,
                env_written: BTreeMap::new(),
                complete,
                ports,
                probes,
                mounts,
                run_as_user: yaml::at(container, &["securityContext", "runAsUser"])
                    .and_then(Value::as_u64)
                    .or(pod_user),
            });
        }
        Ok(())
    }

    fn add_service(&mut self, file: &str, doc: &Value) {
        let name = yaml::str_at(doc, &["metadata", "name"]).unwrap_or("<unnamed>");
        let target_ports = yaml::seq_at(doc, &["spec", "ports"])
            .iter()
            .filter_map(|p| port_ref(yaml::at(p, &["targetPort"]).or(yaml::at(p, &["port"]))?))
            .collect();
        self.services.push(ServiceDef {
            origin: format!("{file}: Service {name}"),
            selector: string_map(yaml::at(doc, &["spec", "selector"])),
            target_ports,
        });
    }

    /// `secretGenerator` entries: keys from `literals` and from `envs` files (or, when a
    /// file is kept out of git, its committed `.example`).
    fn add_generators(&mut self, file: &str, dir: &Path, doc: &Value) -> Result<(), String> {
        for generator in yaml::seq_at(doc, &["secretGenerator"]) {
            let name = yaml::str_at(generator, &["name"])
                .unwrap_or_default()
                .to_owned();
            let mut keys: Vec<String> = yaml::seq_at(generator, &["literals"])
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|l| Some(l.split_once('=')?.0.to_owned()))
                .collect();
            for envs in yaml::seq_at(generator, &["envs"])
                .iter()
                .filter_map(Value::as_str)
            {
                let path = dir.join(envs);
                let example = dir.join(format!("{envs}.example"));
                let text = std::fs::read_to_string(&path)
                    .or_else(|_| std::fs::read_to_string(&example))
                    .map_err(|e| format!("{file}: secretGenerator {name}: cannot read {envs} or {envs}.example: {e}"))?;
                keys.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .filter_map(|l| Some(l.split_once('=')?.0.trim().to_owned())),
                );
            }
            self.secret_keys.entry(name).or_default().extend(keys);
        }
        Ok(())
    }
}

fn probe_target(probe: &Value) -> ProbeTarget {
    if let Some(get) = yaml::at(probe, &["httpGet"]) {
        return match yaml::at(get, &["port"]).and_then(port_ref) {
            Some(port) => ProbeTarget::HttpGet {
                port,
                path: yaml::str_at(get, &["path"]).unwrap_or("/").to_owned(),
            },
            None => ProbeTarget::Other(format!("httpGet without a port: {get:?}")),
        };
    }
    let command: Vec<String> = yaml::seq_at(probe, &["exec", "command"])
        .iter()
        .filter_map(scalar)
        .collect();
    if !command.is_empty() {
        return command_target(&command.join(" "));
    }
    ProbeTarget::Other(format!("{probe:?}"))
}

fn port_ref(value: &Value) -> Option<PortRef> {
    match value {
        Value::Number(n) => Some(PortRef::Number(u16::try_from(n.as_u64()?).ok()?)),
        Value::String(s) => Some(match s.parse() {
            Ok(n) => PortRef::Number(n),
            Err(_) => PortRef::Name(s.clone()),
        }),
        _ => None,
    }
}

fn binary_of(container: &Value) -> Option<String> {
    let known = |n: &str| matches!(n, "gateway" | "tasks-service" | "better-auth");
    let from_image = yaml::str_at(container, &["image"]).and_then(|i| {
        i.rsplit('/')
            .next()?
            .split([':', '@'])
            .next()
            .map(str::to_owned)
    });
    match from_image {
        Some(image) if known(&image) => Some(image),
        // An image we do not build (a patch may omit the image: then the name decides).
        Some(_) => None,
        None => yaml::str_at(container, &["name"])
            .filter(|n| known(n))
            .map(str::to_owned),
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?)))
                .collect()
        })
        .unwrap_or_default()
}
