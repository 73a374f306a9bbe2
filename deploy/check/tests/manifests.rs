//! deploy/ against the real binaries: every compose and Kubernetes file parses, sets only
//! variables the binaries read, sets every one they require, publishes and probes the ports
//! they listen on, and probes paths they really serve.
//!
//! Needs: the workspace to build (the test builds gateway and tasks-service itself), both
//! binaries to support `--list-env`, PostgreSQL on 127.0.0.1:5432 and, for the Better Auth
//! server, `npm ci` in deploy/better-auth. A missing piece fails with what to do, never skips.

use std::{collections::BTreeMap, sync::OnceLock};

use deploy_check::{
    binaries::{self, all_env_lists, load_manifests},
    check_all, live, EnvList,
};

/// Built and asked once per test binary: the nested cargo build is the slow part.
fn env_lists() -> &'static BTreeMap<String, EnvList> {
    static LISTS: OnceLock<Result<BTreeMap<String, EnvList>, String>> = OnceLock::new();
    match LISTS.get_or_init(all_env_lists) {
        Ok(lists) => lists,
        Err(e) => panic!("cannot learn what the binaries read:\n{e}"),
    }
}

#[test]
fn every_compose_kubernetes_and_docker_file_parses() {
    let (manifests, files) = load_manifests().unwrap_or_else(|e| panic!("{e}"));
    for expected in [
        "deploy/compose.yaml",
        "deploy/k8s/base/deployment.yaml",
        "deploy/k8s/base/kustomization.yaml",
        "deploy/k8s/overlays/dev/kustomization.yaml",
        "deploy/docker/Dockerfile.gateway",
        "deploy/docker/Dockerfile.tasks-service",
        "deploy/docker/Dockerfile.better-auth",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} was not read; read: {files:?}"
        );
    }
    let names: Vec<_> = manifests.workloads().map(|w| w.origin.clone()).collect();
    for binary in ["gateway", "tasks-service", "better-auth"] {
        assert!(
            manifests
                .workloads()
                .any(|w| w.binary.as_deref() == Some(binary) && w.complete),
            "no complete workload runs {binary}: {names:?}"
        );
    }
}

#[test]
fn manifests_agree_with_what_the_binaries_read_and_listen_on() {
    let lists = env_lists();
    let (manifests, _) = load_manifests().unwrap_or_else(|e| panic!("{e}"));
    let problems = check_all(&manifests, lists);
    assert!(
        problems.is_empty(),
        "deploy/ disagrees with the binaries:\n{}",
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_probed_path_is_served_by_the_running_binary() {
    let lists = env_lists();
    let (manifests, _) = load_manifests().unwrap_or_else(|e| panic!("{e}"));
    let exes = binaries::build_rust_binaries().unwrap_or_else(|e| panic!("{e}"));
    let root = binaries::workspace_root();
    let mut failures = Vec::new();
    let paths = manifests.probe_paths();
    assert!(
        paths.contains_key("gateway") && paths.contains_key("tasks-service"),
        "no probes found: {paths:?}"
    );
    for (binary, paths) in &paths {
        let port = live::free_port();
        let env = live::env_for(binary, &lists[binary], port).unwrap_or_else(|e| panic!("{e}"));
        let running = match binary.as_str() {
            "better-auth" => {
                let dir = root.join("deploy/better-auth");
                assert!(
                    dir.join("node_modules/better-auth").is_dir(),
                    "deploy/better-auth/node_modules is missing: run `npm ci` in deploy/better-auth"
                );
                live::start(binary, "node".as_ref(), &["server.mjs"], &dir, &env, port)
            }
            name => {
                let exe = exes
                    .get(name)
                    .unwrap_or_else(|| panic!("no executable for {name}"));
                live::start(binary, exe, &[], &root, &env, port)
            }
        };
        let running = match running {
            Ok(running) => running,
            Err(e) => {
                failures.push(format!("cannot start {binary} for the probe check (is PostgreSQL up on 127.0.0.1:5432?): {e}"));
                continue;
            }
        };
        for path in paths {
            match running.status(path) {
                Ok(status) if live::SERVED.contains(&status) => {}
                Ok(status) => failures.push(format!("{binary} answers {path} with {status}; a probe needs 200 (or 503 while not ready)")),
                Err(e) => failures.push(format!("{binary} {path}: {e}\n{}", running.log())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "probes point at paths the binaries do not serve:\n{}",
        failures.join("\n")
    );
}

/// The two Rust images share one builder: byte-identical chef/planner/builder stages that
/// build both services, so the image built second finds every builder layer cached and the
/// workspace compiles once (scripts/test-containers.sh counts the compilations).
#[test]
fn both_rust_dockerfiles_share_one_builder_stage_that_builds_both_services() {
    let root = binaries::workspace_root();
    let builder = |file: &str| {
        let text = std::fs::read_to_string(root.join("deploy/docker").join(file))
            .unwrap_or_else(|e| panic!("read deploy/docker/{file}: {e}"));
        let start = text
            .find("ARG RUST_IMAGE=")
            .unwrap_or_else(|| panic!("{file} takes no RUST_IMAGE argument"));
        let end = text
            .find("FROM ${RUNTIME_IMAGE} AS runtime")
            .unwrap_or_else(|| panic!("{file} has no runtime stage on RUNTIME_IMAGE"));
        text[start..end].to_owned()
    };
    let gateway = builder("Dockerfile.gateway");
    assert_eq!(
        gateway,
        builder("Dockerfile.tasks-service"),
        "the builder stages differ, so each image would compile the workspace on its own"
    );
    assert!(
        gateway.contains("--bin gateway --bin tasks-service --bin http-probe"),
        "the shared builder must build both services:\n{gateway}"
    );
}
