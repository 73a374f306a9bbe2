//! Finds the truth the checks compare against, and the files they check.
//!
//! Rust binaries are built with the same cargo that runs the tests (`$CARGO build
//! --message-format=json`, which names each executable wherever the target dir is) and asked
//! `--list-env` with an empty environment, so nothing in the caller's shell can make a
//! variable look optional. Cargo releases its build lock while tests run, so this nested
//! build does not deadlock; it waits, like any build, while another one holds the lock.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{checks::Manifests, compose, k8s::Cluster, yaml, EnvList};

/// The Rust binaries deploy/ runs, by package (each package's binary has the same name).
pub const RUST_BINARIES: &[&str] = &["gateway", "tasks-service"];

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the Rust binaries and returns each executable's path.
pub fn build_rust_binaries() -> Result<BTreeMap<String, PathBuf>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root()).args([
        "build",
        "--message-format=json-render-diagnostics",
        "--bins",
    ]);
    for p in RUST_BINARIES {
        cmd.args(["-p", p]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo build -p {}` failed ({}); see the compiler output above",
            RUST_BINARIES.join(" -p "),
            out.status
        ));
    }
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(exe), Some(name)) = (msg["executable"].as_str(), msg["target"]["name"].as_str())
        else {
            continue;
        };
        if RUST_BINARIES.contains(&name) {
            found.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    for name in RUST_BINARIES {
        if !found.contains_key(*name) {
            return Err(format!("cargo built no `{name}` binary: the package must have a bin target named {name} (src/main.rs)"));
        }
    }
    Ok(found)
}

/// Runs `<exe> --list-env` with an empty environment and parses what it prints.
pub fn list_env(name: &str, exe: &Path) -> Result<EnvList, String> {
    let mut command = Command::new(exe);
    command.arg("--list-env").env_clear();
    run_list_env(name, command)
}

/// The Better Auth server's variables, from `node server.mjs --list-env` (its declared
/// `ENV` table, which its own `env()` accessor enforces).
pub fn better_auth_env() -> Result<EnvList, String> {
    let dir = workspace_root().join("deploy/better-auth");
    if !dir.join("node_modules/better-auth").is_dir() {
        return Err(
            "deploy/better-auth has no node_modules: run `npm ci` there (scripts/test.sh does)"
                .into(),
        );
    }
    let mut command = Command::new("node");
    command
        .args(["server.mjs", "--list-env"])
        .current_dir(dir)
        .env_clear()
        // Only to find `node`; the server itself sees no other variable.
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    run_list_env("better-auth", command)
}

fn run_list_env(name: &str, mut command: Command) -> Result<EnvList, String> {
    let missing = |why: String| {
        format!("{name} does not support `--list-env` yet ({why}); it must print one line per env variable, NAME<TAB>required|optional<TAB>default, and exit 0")
    };
    let (status, stdout, stderr) = run_with_deadline(&mut command, Duration::from_secs(20))
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    if !status {
        return Err(missing(format!(
            "it exited with an error: {}",
            stderr.trim()
        )));
    }
    EnvList::parse(&stdout).map_err(|e| missing(format!("its output is not the format: {e}")))
}

/// Every binary's env list, or every reason one could not be had.
pub fn all_env_lists() -> Result<BTreeMap<String, EnvList>, String> {
    let exes = build_rust_binaries()?;
    let mut lists = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, exe) in &exes {
        match list_env(name, exe) {
            Ok(list) => {
                lists.insert(name.clone(), list);
            }
            Err(e) => errors.push(e),
        }
    }
    match better_auth_env() {
        Ok(list) => {
            lists.insert("better-auth".into(), list);
        }
        Err(e) => errors.push(e),
    }
    if errors.is_empty() {
        Ok(lists)
    } else {
        Err(errors.join("\n"))
    }
}

/// Parses every compose file (`deploy/compose*.yaml`), every YAML under `deploy/k8s` and
/// every `deploy/docker/Dockerfile.<binary>`.
pub fn load_manifests() -> Result<(Manifests, Vec<String>), String> {
    let root = workspace_root();
    let mut manifests = Manifests::default();
    let mut files = Vec::new();
    let deploy = root.join("deploy");
    let mut compose_files: Vec<PathBuf> = std::fs::read_dir(&deploy)
        .map_err(|e| format!("cannot list deploy/: {e}"))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("compose") && (n.ends_with(".yaml") || n.ends_with(".yml"))
            })
        })
        .collect();
    compose_files.sort();
    for path in compose_files {
        let shown = shown(&root, &path);
        for doc in yaml::load(&path, &shown).map_err(|e| e.to_string())? {
            manifests.compose.extend(compose::parse(&shown, &doc)?);
        }
        files.push(shown);
    }
    let mut k8s_files = Vec::new();
    walk(&deploy.join("k8s"), &mut k8s_files)
        .map_err(|e| format!("cannot list deploy/k8s: {e}"))?;
    k8s_files.sort();
    let mut cluster = Cluster::default();
    for path in k8s_files {
        let shown = shown(&root, &path);
        let docs = yaml::load(&path, &shown).map_err(|e| e.to_string())?;
        cluster.add(&shown, path.parent().unwrap_or(&deploy), &docs)?;
        files.push(shown);
    }
    manifests.cluster = cluster;
    let mut dockerfiles: Vec<PathBuf> = std::fs::read_dir(deploy.join("docker"))
        .map_err(|e| format!("cannot list deploy/docker: {e}"))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("Dockerfile."))
        })
        .collect();
    dockerfiles.sort();
    for path in dockerfiles {
        let shown = shown(&root, &path);
        let binary = shown
            .rsplit("Dockerfile.")
            .next()
            .unwrap_or_default()
            .to_owned();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        manifests
            .images
            .push(crate::dockerfile::parse(&shown, &binary, &text)?);
        files.push(shown);
    }
    Ok((manifests, files))
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs a command to completion or kills it at the deadline: (success, stdout, stderr).
pub fn run_with_deadline(
    cmd: &mut Command,
    limit: Duration,
) -> std::io::Result<(bool, String, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, mut stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if status.is_none() {
        stderr.push_str(&format!("\n(killed: still running after {limit:?})"));
    }
    Ok((status.is_some_and(|s| s.success()), stdout, stderr))
}
