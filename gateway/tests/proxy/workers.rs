//! Several workers behave as one gateway, in every runtime layout: the thread-per-core ones
//! (`RUNTIME_LAYOUT=per-core`, each worker accepting on its own `SO_REUSEPORT` listener;
//! `balanced`, the same with connections moved between workers by load; and
//! `per-core-shared-accept`, all accepting from one) and the work-stealing one (`shared`, on a
//! multi-threaded runtime as in production): every listener is served, the token cache and
//! metrics are shared, and shutdown drains every worker. In the `balanced` layout, connections
//! gather on one worker while the load is light and spread when it saturates, every request
//! answered, for its own user, across the moves.

use std::time::Duration;

use gateway::config::{Http1Engine, RuntimeLayout};

use crate::{
    helpers::{spawn_gateway_with, TestGateway},
    raw::RawConnection,
};

const WORKERS: usize = 4;

const LAYOUTS: [RuntimeLayout; 3] = [
    RuntimeLayout::PerCore,
    RuntimeLayout::Balanced,
    RuntimeLayout::PerCoreSharedAccept,
];

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

/// A gateway of `workers` workers in the balanced layout, on the lean engine: the connections
/// that move are the lean engine's (in the hyper suite too).
async fn balanced_gateway(workers: usize) -> TestGateway {
    spawn_gateway_with(|s| {
        s.runtime_layout = RuntimeLayout::Balanced;
        s.worker_threads = workers;
        s.http1_engine = Http1Engine::Lean;
    })
    .await
}

/// A kept-alive connection of one user: requests its own tasks, one at a time.
struct UserConnection {
    user: String,
    token: String,
    connection: RawConnection,
}

impl UserConnection {
    async fn open(gateway: &TestGateway, user: String) -> Self {
        Self {
            token: gateway.token(&user),
            connection: RawConnection::open(gateway.address).await,
            user,
        }
    }

    /// One request on the connection; its answer must be 200.
    async fn request(&mut self) {
        let request = format!(
            "GET /api/{}/tasks HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\n\r\n",
            self.user, self.token
        );
        self.connection.write(request).await;
        let response =
            tokio::time::timeout(Duration::from_secs(10), self.connection.read_response())
                .await
                .unwrap_or_else(|_| panic!("{}: no answer within 10 s", self.user));
        assert_eq!(response.status, 200, "{}: {response:?}", self.user);
        // The answer to this connection's own request, made for its own user.
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(sent, _)| sent == name)
                .map(|(_, value)| value.as_str())
        };
        let target = format!("/api/{}/tasks", self.user);
        assert_eq!(
            header("x-seen-target"),
            Some(target.as_str()),
            "{response:?}"
        );
        assert_eq!(
            header("x-seen-user"),
            Some(self.user.as_str()),
            "{response:?}"
        );
    }
}

/// The connections in use on each of the first `workers` workers, as the balancer last saw
/// them (one scrape, so one tick of the balancer).
async fn in_use(gateway: &TestGateway, workers: usize) -> Vec<f64> {
    let metrics = gateway.metrics().await;
    (0..workers)
        .map(|worker| {
            let series = format!("gateway_worker_connections{{worker=\"{worker}\"}} ");
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(&series)?.parse().ok())
                .unwrap_or(0.0)
        })
        .collect()
}

/// Every request the upstream saw carried the identity of the user whose path it asked for:
/// no request took another connection's identity across a move.
fn every_request_was_its_own_users(gateway: &TestGateway, requests: usize) {
    let seen = gateway.upstream.seen();
    assert_eq!(seen.len(), requests);
    for request in seen {
        let user = request.target.split('/').nth(2).unwrap();
        assert_eq!(request.headers["x-user-id"], user, "{}", request.target);
    }
}

/// Keeps a light load coming on `connections`, a round of one request each every 100 ms, until
/// worker 0 of `workers` serves them all and the others none (a connection moves between two
/// of its requests). Returns how many requests that took.
async fn gather(
    gateway: &TestGateway,
    workers: usize,
    connections: &mut [UserConnection],
) -> usize {
    gather_pausing(gateway, workers, connections, Duration::from_millis(100)).await
}

/// [`gather`], with `pause` between rounds.
async fn gather_pausing(
    gateway: &TestGateway,
    workers: usize,
    connections: &mut [UserConnection],
    pause: Duration,
) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut gathered = vec![0.0; workers];
    gathered[0] = connections.len() as f64;
    let mut requests = 0;
    loop {
        for connection in connections.iter_mut() {
            connection.request().await;
            requests += 1;
        }
        // Two of the balancer's ticks (50 ms), so that the count it last published is of
        // this round.
        tokio::time::sleep(Duration::from_millis(120)).await;
        if in_use(gateway, workers).await == gathered {
            return requests;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connections did not gather on worker 0 in 20 s:\n{}",
            gateway.metrics().await
        );
        // Light: a few milliseconds of work a round, far under half a CPU even when the
        // machine is busy and this test's worker is descheduled often.
        tokio::time::sleep(pause).await;
    }
}

async fn user_connections(gateway: &TestGateway, count: usize) -> Vec<UserConnection> {
    let mut connections = Vec::new();
    for i in 0..count {
        connections.push(UserConnection::open(gateway, format!("user{i}")).await);
    }
    connections
}

#[tokio::test]
async fn light_load_gathers_every_connection_on_one_worker_and_each_is_still_served() {
    let gateway = balanced_gateway(WORKERS).await;
    // The kernel spreads 16 connections over 4 listeners (all on worker 0: a chance of 4^-16).
    let mut connections = user_connections(&gateway, 16).await;
    let mut requests = gather(&gateway, WORKERS, &mut connections).await;
    let moved = gateway.metric("gateway_connections_moved_total").await;
    assert!(moved.is_some_and(|moved| moved >= 1.0), "{moved:?}");
    // Served where they now are, each as its own user.
    for connection in &mut connections {
        connection.request().await;
        requests += 1;
    }
    every_request_was_its_own_users(&gateway, requests);
}

#[tokio::test]
async fn connections_that_wait_over_a_second_between_requests_gather_too() {
    let gateway = balanced_gateway(WORKERS).await;
    let mut connections = user_connections(&gateway, 8).await;
    // Longer than a connection stays in use after its request (a second): between two
    // requests each goes idle, and it can move only as it wakes for the next one. With the
    // gather order sized by the connections in use, which is none by then, they stayed put.
    let requests = gather_pausing(
        &gateway,
        WORKERS,
        &mut connections,
        Duration::from_millis(1300),
    )
    .await;
    every_request_was_its_own_users(&gateway, requests);
}

#[tokio::test]
async fn a_saturated_worker_hands_connections_to_an_idle_one() {
    let gateway = balanced_gateway(2).await;
    let mut connections = user_connections(&gateway, 8).await;
    let mut requests = gather(&gateway, 2, &mut connections).await;
    // Now every connection is on worker 0, which is this test's runtime: with eight clients
    // on it, each sending its next request as soon as its answer is in, it is saturated and
    // worker 1 idle. Only a move can give worker 1 a connection.
    let enough = tokio_util::sync::CancellationToken::new();
    let clients: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let enough = enough.clone();
            tokio::spawn(async move {
                let mut requests = 0;
                while !enough.is_cancelled() {
                    connection.request().await;
                    requests += 1;
                }
                requests
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while in_use(&gateway, 2).await[1] == 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection moved to worker 1 in 30 s:\n{}",
            gateway.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    enough.cancel();
    for client in clients {
        requests += client.await.unwrap();
    }
    every_request_was_its_own_users(&gateway, requests);
}
