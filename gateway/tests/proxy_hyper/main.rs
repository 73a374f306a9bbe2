//! The proxy suite (`tests/proxy`) once more, with hyper serving every HTTP/1.1 request
//! instead of the lean engine, so that every HTTP/1.1 test runs on both engines: the same files,
//! only the default engine differs (`helpers::ENGINE` reads this binary's name). A test that
//! needs one engine, or compares both, sets `http1_engine` itself.

#[path = "../support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../../../tasks-service/tests/api/cluster.rs"]
mod cluster;

#[path = "../proxy/admin.rs"]
mod admin;
#[path = "../proxy/connections.rs"]
mod connections;
#[path = "../proxy/cors.rs"]
mod cors;
#[path = "../proxy/headers.rs"]
mod headers;
#[path = "../proxy/helpers.rs"]
mod helpers;
#[path = "../proxy/http1.rs"]
mod http1;
#[path = "../proxy/http2.rs"]
mod http2;
#[path = "../proxy/identity.rs"]
mod identity;
#[path = "../proxy/limits.rs"]
mod limits;
#[path = "../proxy/logs.rs"]
mod logs;
#[path = "../proxy/raw.rs"]
mod raw;
#[path = "../proxy/revocation.rs"]
mod revocation;
#[path = "../proxy/rotation.rs"]
mod rotation;
#[path = "../proxy/routes.rs"]
mod routes;
#[path = "../proxy/shutdown.rs"]
mod shutdown;
#[path = "../proxy/startup.rs"]
mod startup;
#[path = "../proxy/streaming.rs"]
mod streaming;
#[path = "../proxy/tasks.rs"]
mod tasks;
#[path = "../proxy/tokens.rs"]
mod tokens;
#[path = "../proxy/upstream.rs"]
mod upstream;
#[path = "../proxy/upstream_errors.rs"]
mod upstream_errors;
#[path = "../proxy/workers.rs"]
mod workers;

/// Every module of the proxy suite is here too, so none runs on one engine only.
#[test]
fn every_proxy_test_module_runs_on_hyper_too() {
    let suite = include_str!("../proxy/main.rs");
    let here = include_str!("main.rs");
    for line in suite.lines().filter(|line| line.starts_with("mod ")) {
        assert!(
            here.contains(line),
            "tests/proxy_hyper/main.rs lacks `{line}`"
        );
    }
}
