//! Several workers behave as one gateway, in every runtime layout: the thread-per-core ones
//! (`RUNTIME_LAYOUT=per-core`, each worker accepting on its own `SO_REUSEPORT` listener, and
//! `per-core-shared-accept`, all accepting from one) and the work-stealing default (`shared`,
//! on a multi-threaded runtime as in production): every listener is served, the token cache
//! and metrics are shared, and shutdown drains every worker.

use std::time::Duration;

use gateway::config::RuntimeLayout;

use crate::helpers::{spawn_gateway_with, TestGateway};

const WORKERS: usize = 4;

const LAYOUTS: [RuntimeLayout; 2] = [RuntimeLayout::PerCore, RuntimeLayout::PerCoreSharedAccept];

async fn gateway_with_workers(layout: RuntimeLayout) -> TestGateway {
    spawn_gateway_with(|s| {
        s.runtime_layout = layout;
        s.worker_threads = WORKERS;
        s.limits.upstream_timeout = Duration::from_secs(10);
    })
    .await
}

/// A client that opens a fresh connection per request, so the kernel picks a listener for each.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The value of a counter on the `/metrics` page.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[tokio::test]
async fn every_worker_serves_its_connections_and_the_token_cache_is_shared() {
    for layout in LAYOUTS {
        every_worker_serves(layout).await;
    }
}

async fn every_worker_serves(layout: RuntimeLayout) {
    let gateway = gateway_with_workers(layout).await;
    let http = fresh_connections();
    let token = gateway.token("alice");
    // 40 connections over 4 listeners: the chance that the kernel's hash leaves one listener
    // without any is (3/4)^40, about 1e-5, and a connection on a listener nobody serves would
    // hang until the timeout below. (With one shared listener, this checks the workers serve
    // whatever they accept.)
    for _ in 0..40 {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            http.get(gateway.url("/api/alice/tasks"))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{layout:?}: every worker accepts"))
        .unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = gateway.upstream.seen();
    assert_eq!(seen.len(), 40);
    assert!(seen.iter().all(|s| s.headers["x-user-id"] == "alice"));
    // One verification for all the workers: they share the one cache.
    let metrics = gateway.metrics().await;
    assert_eq!(counter(&metrics, "gateway_token_cache_misses_total"), 1);
    assert_eq!(counter(&metrics, "gateway_token_cache_hits_total"), 39);
}

/// The `shared` layout runs on the runtime it is given: here, as in production, a
/// multi-threaded one with a thread per worker, whose threads take each other's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_layout_serves_from_every_thread_and_drains_every_request() {
    every_worker_serves(RuntimeLayout::Shared).await;
    shutdown_drains_every_worker(RuntimeLayout::Shared).await;
}

#[tokio::test]
async fn shutdown_closes_every_listener_and_waits_for_in_flight_requests() {
    for layout in LAYOUTS {
        shutdown_drains_every_worker(layout).await;
    }
}

async fn shutdown_drains_every_worker(layout: RuntimeLayout) {
    let mut gateway = gateway_with_workers(layout).await;
    let http = fresh_connections();
    // Held requests on several connections, so that more than one worker has one in flight.
    let held: Vec<_> = (0..8)
        .map(|_| {
            let request = http.get(gateway.url("/api/auth/hold"));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status(), response.text().await.unwrap())
            })
        })
        .collect();
    gateway.upstream.wait_for_arrivals(8).await;

    let stopped = gateway.shut_down();
    // Refused only once no listener of the group is left open.
    gateway.wait_until_not_accepting().await;
    assert!(
        !stopped.is_finished(),
        "must wait for the in-flight requests"
    );

    gateway.upstream.release();
    for request in held {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, "held and released");
    }
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the gateway stops once every worker drained")
        .unwrap();
}
