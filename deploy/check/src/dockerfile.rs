//! Reads the runtime stage of a `Dockerfile.<binary>` into a [`Workload`]: its `ENV`
//! variables, `EXPOSE`d ports, `HEALTHCHECK` and `USER`, so an image is held to the same rules as
//! the manifests that run it. Only the last stage counts: it is what ships.

use std::collections::BTreeMap;

use crate::{
    compose::command_target,
    probe,
    workload::{numeric_user, Placement, Port, Probe, ProbeTarget, Workload},
};

/// Parses a Dockerfile's last stage; `binary` comes from the file name.
pub fn parse(file: &str, binary: &str, text: &str) -> Result<Workload, String> {
    // Join continuation lines, drop comments, keep instructions of the last stage only.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .filter_map(|l| {
            let (op, rest) = l.trim().split_once(char::is_whitespace)?;
            Some((op.to_ascii_uppercase(), rest.trim().to_owned()))
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .ok_or_else(|| format!("{file}: no FROM"))?;
    let mut env = BTreeMap::new();
    let mut ports = Vec::new();
    let mut healthcheck = None;
    let mut user = None;
    for (op, rest) in &instructions[last_from..] {
        match op.as_str() {
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (k, v) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("{file}: write ENV as KEY=value, not {rest:?}"))?;
                    env.insert(k.to_owned(), Some(v.trim_matches('"').to_owned()));
                }
            }
            "EXPOSE" => {
                for p in rest.split_whitespace() {
                    let number = p.split('/').next().and_then(|n| n.parse().ok());
                    let number =
                        number.ok_or_else(|| format!("{file}: EXPOSE {p} is not a port"))?;
                    ports.push(Port {
                        number,
                        name: None,
                        published: false,
                    });
                }
            }
            "HEALTHCHECK" => healthcheck = Some(rest.clone()),
            // The last USER wins; a name leaves the user unknown.
            "USER" => user = numeric_user(rest),
            _ => {}
        }
    }
    let probes = healthcheck
        .filter(|h| !h.eq_ignore_ascii_case("NONE"))
        .map(|h| Probe {
            kind: "HEALTHCHECK".into(),
            target: healthcheck_target(&h, &env),
        })
        .into_iter()
        .collect();
    Ok(Workload {
        origin: format!("{file}: runtime stage"),
        name: binary.to_owned(),
        binary: Some(binary.to_owned()),
        placement: Placement::Image,
        group: file.to_owned(),
        env,
        env_from: Vec::new(),
        env_written: BTreeMap::new(),
        // An image need not carry required variables: the deployment supplies them.
        complete: false,
        ports,
        probes,
        // Nothing is mounted into an image by itself.
        mounts: Vec::new(),
        run_as_user: user,
    })
}

/// `http-probe --listen-env VAR PATH` is resolved against the image's own `ENV VAR=...`,
/// so its port and path are checked like a literal URL.
fn healthcheck_target(command: &str, env: &BTreeMap<String, Option<String>>) -> ProbeTarget {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || "[],\"".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(i) = words.iter().position(|w| *w == "--listen-env") {
        let (Some(var), Some(path)) = (words.get(i + 1), words.get(i + 2)) else {
            return ProbeTarget::Other(command.to_owned());
        };
        let value = env.get(*var).cloned().flatten();
        return match probe::url_from_listen(var, value.as_deref(), path) {
            Ok(url) => ProbeTarget::Url(url),
            Err(e) => ProbeTarget::Other(format!("{command} ({e} in this image's ENV)")),
        };
    }
    command_target(command)
}
