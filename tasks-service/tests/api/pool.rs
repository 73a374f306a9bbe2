//! The pool under trouble that PostgreSQL itself does not report: connections that stop
//! answering without closing (a failover, a network blackhole, a hung server), a schema change
//! that invalidates cached statements, and a pool merely busy, which is no reason to be taken
//! out of service.

use std::{net::SocketAddr, time::Duration};

use http::Method;
use serde_json::json;
use tasks_service::Settings;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

use crate::helpers::{
    admin_client, ids, spawn_app_on, spawn_app_with, until_waiting_on_locks, url_for, TestApp,
    ADMIN_URL,
};

/// A TCP proxy to the machine's PostgreSQL that can freeze every connection it carries: it
/// then forwards nothing more on them, either way, but keeps their sockets open, as a peer
/// gone silent does. Connections opened after a freeze are forwarded as usual.
struct FreezingProxy {
    addr: SocketAddr,
    /// Incremented by each freeze; a connection opened at generation `g` is frozen once the
    /// generation passes `g`.
    generation: watch::Sender<u64>,
    /// The accept loop, which owns every connection's task: aborted (sockets closed) on drop.
    accept: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (generation, _) = watch::channel(0u64);
        let frozen = generation.subscribe();
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let born = *frozen.borrow();
                connections.spawn(forward(client, frozen.clone(), born));
                // Reap the finished ones as we go.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            generation,
            accept,
        }
    }

    /// Freezes every connection open now.
    fn freeze(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Freezes every connection open now and every one opened from now on: a database that
    /// accepts connections and never answers.
    fn go_silent(&self) {
        self.generation.send_replace(BLACKHOLE);
    }

    /// A URL to `db_name` through the proxy.
    fn url(&self, db_name: &str) -> String {
        format!("postgres://postgres@{}/{db_name}", self.addr)
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The generation from which on every connection is frozen, new ones included.
const BLACKHOLE: u64 = u64::MAX;

/// Forwards `client` to PostgreSQL both ways until either side closes or the generation moves
/// past `born`; then holds both sockets open, forwarding nothing, until aborted.
async fn forward(mut client: TcpStream, mut generation: watch::Receiver<u64>, born: u64) {
    if born == BLACKHOLE {
        std::future::pending::<()>().await;
    }
    let Ok(mut upstream) = TcpStream::connect("127.0.0.1:5432").await else {
        return;
    };
    let frozen = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let both_ways = async {
            tokio::try_join!(
                tokio::io::copy(&mut client_read, &mut upstream_write),
                tokio::io::copy(&mut upstream_read, &mut client_write),
            )
        };
        tokio::select! {
            _ = both_ways => false,
            _ = generation.wait_for(|g| *g > born) => true,
        }
    };
    if frozen {
        // Silent, not closed: the sockets stay open for as long as the proxy lives.
        std::future::pending::<()>().await;
    }
    drop((client, upstream));
}

/// Short timeouts through the proxy: an operation gives up after 0.3 + 1 + 1 s = 2.3 s.
fn short_timeouts(settings: &mut Settings) {
    settings.db.pool_size = 2;
    settings.db.acquire_timeout = Duration::from_millis(300);
    settings.db.statement_timeout = Duration::from_millis(1000);
    settings.db.connect_timeout = Duration::from_millis(1500);
}

/// The service through a fresh proxy, its pool holding two connections (both through it).
async fn spawn_behind_proxy() -> (FreezingProxy, TestApp) {
    let proxy = FreezingProxy::start().await;
    let app = spawn_app_on(ADMIN_URL, |db_name| proxy.url(db_name), short_timeouts).await;
    // Open both connections the pool may hold, then hand them back.
    let pool = app.state.store.pool();
    let first = pool.get().await.unwrap();
    let second = pool.get().await.unwrap();
    drop((first, second));
    assert_eq!(pool.status().size, 2);
    (proxy, app)
}

/// Sends `request()` one at a time until three answers in a row are 200, at most `limit`
/// times; returns how many answers were not 200, or panics with the statuses seen.
async fn answers_until_three_oks(
    limit: usize,
    mut request: impl AsyncFnMut() -> reqwest::Response,
) -> usize {
    let mut statuses = Vec::new();
    let mut in_a_row = 0;
    for _ in 0..limit {
        // The service bounds each answer by its operation timeout; this bounds the test.
        let response = tokio::time::timeout(Duration::from_secs(15), request())
            .await
            .expect("an answer within the operation timeout");
        let status = response.status().as_u16();
        statuses.push(status);
        assert!(matches!(status, 200 | 503), "{statuses:?}");
        in_a_row = if status == 200 { in_a_row + 1 } else { 0 };
        if in_a_row == 3 {
            return statuses.iter().filter(|s| **s != 200).count();
        }
    }
    panic!("no three 200s in a row after {limit} requests: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_recover_once_the_connections_they_used_go_silent() {
    let (proxy, app) = spawn_behind_proxy().await;
    let alice = app.user("alice");
    alice.create_titled("before the freeze").await;

    proxy.freeze();
    // Each frozen connection may cost one request its timeout (503); then it is closed and a
    // new one, which the proxy forwards, serves every request after.
    let failed = answers_until_three_oks(8, async || {
        alice
            .app
            .signed(Method::GET, &alice.path(""), &alice.user)
            .send()
            .await
            .unwrap()
    })
    .await;
    assert!(
        failed <= 2,
        "{failed} requests failed for 2 frozen connections"
    );
    let listed = alice.list("").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_recovers_once_the_connections_it_pinged_go_silent() {
    let (proxy, app) = spawn_behind_proxy().await;

    proxy.freeze();
    let failed = answers_until_three_oks(8, async || {
        app.raw(Method::GET, "/readyz").send().await.unwrap()
    })
    .await;
    assert!(
        failed <= 2,
        "{failed} probes failed for 2 frozen connections"
    );
}

#[tokio::test]
async fn a_column_type_change_does_not_break_cached_statements() {
    let app = spawn_app_with(ADMIN_URL, |_| {}).await;
    let alice = app.user("alice");
    let first = alice.create_titled("first").await;
    let second = alice.create_titled("second").await;
    // Every route twice, so that each of its statements is prepared and cached.
    for _ in 0..2 {
        assert_eq!(alice.list("").await.status, 200);
        assert_eq!(alice.get(first).await.status, 200);
        let updated = alice
            .update(first, json!({"description": "described"}))
            .await;
        assert_eq!(updated.status, 200, "{:?}", updated.body);
        assert_eq!(alice.complete(first, None).await.status, 200);
        let doomed = alice.create_titled("doomed").await;
        assert_eq!(alice.delete(doomed).await.status, 204);
    }

    // In this test's own database, dropped with the app.
    admin_client(&url_for(ADMIN_URL, &app.db_name))
        .await
        .batch_execute("ALTER TABLE tasks ALTER COLUMN description TYPE varchar(1000)")
        .await
        .unwrap();

    let listed = alice.list("").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let got = alice.get(first).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["description"], "described");
    let updated = alice
        .update(second, json!({"description": "now varchar"}))
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["description"], "now varchar");
    let completed = alice
        .complete(second, Some(json!({"completed": true})))
        .await;
    assert_eq!(completed.status, 200, "{:?}", completed.body);
    let created = alice
        .create(json!({"title": "after", "description": "new"}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let after = created.body["id"].as_i64().unwrap();
    assert_eq!(alice.delete(after).await.status, 204);

    // A retried write was applied once: the two tasks from before, nothing else.
    let listed = alice.list("").await;
    let mut listed_ids = ids(&listed.body);
    listed_ids.sort_unstable();
    assert_eq!(listed_ids, [first, second]);
    assert_eq!(listed.headers["x-total-count"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_busy_with_requests_waiting_on_a_lock_is_still_ready() {
    // Requests may wait on the lock far longer than the probe does.
    let app = spawn_app_with(ADMIN_URL, |settings| {
        settings.db.pool_size = 2;
        settings.db.acquire_timeout = Duration::from_millis(500);
        settings.db.statement_timeout = Duration::from_secs(30);
    })
    .await;
    let alice = app.user("alice");
    let id = alice.create_titled("contended").await;

    // Another session holds the row's lock in an open transaction.
    let db_url = url_for(ADMIN_URL, &app.db_name);
    let mut locker = admin_client(&db_url).await;
    let lock = locker.transaction().await.unwrap();
    lock.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .unwrap();

    // Two updates of that row take both pooled connections and wait for the lock.
    let mut waiting = JoinSet::new();
    for i in 0..2 {
        let request = app
            .signed_body(
                Method::PUT,
                &alice.path(&format!("/{id}")),
                "alice",
                json!({"title": format!("update {i}")}).to_string(),
            )
            .header("content-type", "application/json");
        waiting.spawn(async move { request.send().await.unwrap().status() });
    }
    let observer = admin_client(&db_url).await;
    until_waiting_on_locks(&observer, 2, Duration::from_secs(20), "the two updates").await;
    let status = app.state.store.pool().status();
    assert_eq!((status.size, status.available), (2, 0), "{status:?}");

    let ready = app.raw(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a busy pool is not a reason to be unready"
    );

    // Released, the updates go through and the probe finds a connection as ever.
    lock.rollback().await.unwrap();
    while let Some(status) = waiting.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let ready = app.raw(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_busy_on_a_silent_database_turns_unready_within_the_operation_timeout() {
    let (proxy, app) = spawn_behind_proxy().await;
    let alice = app.user("alice");
    alice.create_titled("before the silence").await;

    proxy.go_silent();
    // Two requests take both (now silent) connections and wait on them.
    let mut waiting = JoinSet::new();
    for _ in 0..2 {
        let request = app.signed(Method::GET, &alice.path(""), "alice");
        waiting.spawn(async move { request.send().await.unwrap().status() });
    }
    let pool = app.state.store.pool();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.status().available > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requests never took the connections: {:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Busy may pass for ready only while those requests' operations last (2.3 s): once they
    // time out their connections are closed, and a probe finds no connection that answers
    // (within its own 2 s). A second of slack on top, for a busy test machine.
    let bound = Duration::from_millis(2_300) + tasks_service::store::READY_TIMEOUT;
    app.until_readyz(
        503,
        bound + Duration::from_secs(1),
        &format!("still ready {bound:?} (and a second) after the database went silent"),
    )
    .await;
    while let Some(status) = waiting.join_next().await {
        assert_eq!(status.unwrap(), 503);
    }
}
