//! Sign-out that signs out: the gateway listening to a real PostgreSQL for revocations, as
//! Better Auth's triggers write them (a row in `auth_revocation` and a notification in one
//! transaction; `deploy/better-auth/revocation.sql`). The triggers themselves are tested
//! end to end in `e2e/tests/revocation.rs`.

use std::time::Duration;

use gateway::{auth::Algorithm, revocation::RevocationConfig};
use serde_json::{json, Value};

use crate::{
    helpers::{readyz, spawn_gateway_with, start_gateway, TestGateway},
    support::{issuer::Issuer, logs::Captured},
};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {url} ({error}); start it with: \
                 pg_ctlcluster --skip-systemctl-redirect 15 main start"
            )
        });
    tokio::spawn(connection);
    client
}

/// A fresh database standing in for Better Auth's, with the revocation table.
struct AuthDb {
    name: String,
    client: tokio_postgres::Client,
    /// The server's `postgres` database, for what a database's own connection cannot do.
    admin: String,
    /// The server's port on 127.0.0.1.
    port: u16,
}

impl AuthDb {
    /// On the machine's PostgreSQL.
    async fn create() -> Self {
        Self::create_on(ADMIN_URL, 5432).await
    }

    /// On the server whose `postgres` database is `admin`, listening on `port` of 127.0.0.1.
    async fn create_on(admin: &str, port: u16) -> Self {
        let name = format!("gw_revocation_{}", uuid::Uuid::new_v4().simple());
        connect(admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let client = connect(&format!("postgres://postgres@127.0.0.1:{port}/{name}")).await;
        client
            .batch_execute(
                "CREATE TABLE auth_revocation (
                   id bigserial PRIMARY KEY,
                   kind text NOT NULL CHECK (kind IN ('session', 'user')),
                   subject text NOT NULL,
                   revoked_at timestamptz NOT NULL DEFAULT clock_timestamp())",
            )
            .await
            .unwrap();
        Self {
            name,
            client,
            admin: admin.to_owned(),
            port,
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name)
    }

    /// Revokes as the triggers do: the durable row and the notification, in one transaction.
    /// Returns the revocation's second.
    async fn revoke(&self, kind: &str, subject: &str) -> i64 {
        let row = self
            .client
            .query_one(
                "WITH revoked AS (
                   INSERT INTO auth_revocation (kind, subject) VALUES ($1, $2)
                   RETURNING kind, subject, floor(extract(epoch FROM revoked_at))::bigint AS at)
                 SELECT at, pg_notify('auth_revocation',
                   json_build_object('kind', kind, 'subject', subject, 'at', at)::text)::text
                 FROM revoked",
                &[&kind, &subject],
            )
            .await
            .unwrap();
        row.get(0)
    }

    /// A notification on the triggers' channel with no row behind it, as any login to the
    /// database can send: `{"kind", "subject", "at"}`.
    async fn announce(&self, kind: &str, subject: &str, at: i64) {
        let payload = json!({"kind": kind, "subject": subject, "at": at}).to_string();
        self.client
            .execute("SELECT pg_notify('auth_revocation', $1)", &[&payload])
            .await
            .unwrap();
    }

    /// A revocation made `secs` seconds ago, as the table holds it (no notification: only a
    /// gateway that loads the table learns of it).
    async fn revoked_ago(&self, kind: &str, subject: &str, secs: f64) {
        self.client
            .execute(
                "INSERT INTO auth_revocation (kind, subject, revoked_at) \
                 VALUES ($1, $2, clock_timestamp() - $3 * interval '1 second')",
                &[&kind, &subject, &secs],
            )
            .await
            .unwrap();
    }

    /// Ends the gateway's feed connection, as a network cut or a database restart would.
    async fn cut_feed(&self) -> u64 {
        let admin = connect(&self.admin).await;
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'gateway-revocation' AND datname = $1",
                &[&self.name],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) as u64
    }

    /// Lets no new connection in (or lets them in again).
    async fn allow_connections(&self, allow: bool) {
        connect(&self.admin)
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allow}",
                self.name
            ))
            .await
            .unwrap();
    }

    async fn drop(self) {
        drop(self.client);
        let _ = connect(&self.admin)
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// A PostgreSQL proxy that counts the notifications it sees, and passes them on as `notices`
/// says. Queries always work.
struct PgProxy {
    address: std::net::SocketAddr,
    notifications: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Which notifications a [`PgProxy`] passes on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Notices {
    /// All of them.
    Passed,
    /// None: a path that never delivers them.
    Dropped,
    /// Only those that arrive while the client has a statement out, between its message and
    /// the server's ReadyForQuery: what a transaction-pooling proxy (PgBouncer) amounts to for
    /// a `LISTEN`, which runs on a server connection it lends and takes back. A session's own
    /// notifications, sent before its statement ends, come back; other sessions', sent while
    /// it is idle, are dropped (PgBouncer: "got packet 'A' from server when not linked").
    WhileLent,
}

impl PgProxy {
    /// A proxy that passes everything.
    async fn start() -> Self {
        Self::start_with(Notices::Passed, 0, Duration::ZERO).await
    }

    /// Like [`PgProxy::start`], but the first `silent` connections are accepted and then
    /// neither answered nor closed (a wedged pooler, or a path gone half-open), and each
    /// notification passed on `notification_delay` after the one before (a slow path).
    async fn start_with(notices: Notices, silent: usize, notification_delay: Duration) -> Self {
        Self::start_full(notices, silent, notification_delay, false).await
    }

    /// Passes everything, and closes each connection right after its first notification
    /// (the feed's first ping back, on its listening connection): a path that drops a
    /// connection as soon as it is set up.
    async fn closing_after_a_notification() -> Self {
        Self::start_full(Notices::Passed, 0, Duration::ZERO, true).await
    }

    async fn start_full(
        notices: Notices,
        silent: usize,
        notification_delay: Duration,
        close_after_a_notification: bool,
    ) -> Self {
        use std::sync::{
            atomic::{AtomicBool, Ordering},
            Arc,
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let notifications = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = notifications.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepting = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                accepting.fetch_add(1, Ordering::SeqCst);
                if held.len() < silent {
                    held.push(client);
                    continue;
                }
                let server = tokio::net::TcpStream::connect("127.0.0.1:5432")
                    .await
                    .unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                // Whether the client has a statement out (set before its bytes go on).
                let lent = Arc::new(AtomicBool::new(false));
                let lending = lent.clone();
                tokio::spawn(async move {
                    let mut chunk = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut chunk).await {
                        lending.store(true, Ordering::SeqCst);
                        if to_server.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let counted = counted.clone();
                tokio::spawn(async move {
                    // Server messages are a type byte and a big-endian length that counts
                    // itself; NotificationResponse is type 'A'.
                    let mut pending = Vec::new();
                    let mut chunk = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut chunk).await {
                        pending.extend_from_slice(&chunk[..n]);
                        while pending.len() >= 5 {
                            let len = u32::from_be_bytes(pending[1..5].try_into().unwrap());
                            let whole = 1 + len as usize;
                            if pending.len() < whole {
                                break;
                            }
                            let message: Vec<u8> = pending.drain(..whole).collect();
                            if message[0] == b'A' {
                                counted.fetch_add(1, Ordering::SeqCst);
                                let passed = match notices {
                                    Notices::Passed => true,
                                    Notices::Dropped => false,
                                    Notices::WhileLent => lent.load(Ordering::SeqCst),
                                };
                                if !passed {
                                    continue;
                                }
                                if !notification_delay.is_zero() {
                                    tokio::time::sleep(notification_delay).await;
                                }
                            }
                            if to_client.write_all(&message).await.is_err() {
                                return;
                            }
                            if message[0] == b'A' && close_after_a_notification {
                                return;
                            }
                            if message[0] == b'Z' {
                                lent.store(false, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        Self {
            address,
            notifications,
            accepted,
        }
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@{}/{database}?sslmode=disable",
            self.address
        )
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn notifications(&self) -> usize {
        self.notifications.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn revocation(db: &AuthDb, stale: Duration) -> RevocationConfig {
    RevocationConfig {
        database_url: db.url(),
        window: Duration::from_secs(15 * 60 + 30),
        leeway: Duration::from_secs(30),
        stale_after: stale,
        require_session: true,
        tls: proto_shared::postgres_tls::Tls::Plain,
    }
}

async fn gateway_on(db: &AuthDb, stale: Duration) -> TestGateway {
    gateway_with(revocation(db, stale)).await
}

/// A gateway on `db` whose leeway is one second, so that a token issued "after" a user
/// revocation needs no half-minute wait: such a revocation also refuses tokens issued up to
/// a leeway after it (an issuer clock ahead).
async fn gateway_with_a_leeway_of_one_second(db: &AuthDb) -> TestGateway {
    gateway_with(RevocationConfig {
        leeway: Duration::from_secs(1),
        ..revocation(db, Duration::from_secs(30))
    })
    .await
}

/// A gateway with this revocation feed, once it is ready.
async fn gateway_with(config: RevocationConfig) -> TestGateway {
    spawn_gateway_with(move |s| s.auth.revocation = Some(config)).await
}

/// A gateway with this revocation feed, not waited for: one whose feed is not expected to
/// come up (or not at once) is never ready.
async fn gateway_starting(config: RevocationConfig) -> TestGateway {
    start_gateway(Issuer::start().await, move |s| {
        s.auth.revocation = Some(config)
    })
    .await
}

/// A token for `sub` in session `sid`, issued `iat_offset` seconds from now.
fn token(gateway: &TestGateway, sub: &str, sid: &str, iat_offset: i64) -> String {
    token_living(gateway, sub, sid, iat_offset, None)
}

/// The same, living `lifetime` seconds from its `iat` when given (else the issuer's `exp`).
fn token_living(
    gateway: &TestGateway,
    sub: &str,
    sid: &str,
    iat_offset: i64,
    lifetime: Option<i64>,
) -> String {
    let issuer = &gateway.issuer;
    let key = issuer.key(Algorithm::EdDsa);
    let mut claims: Value = issuer.claims(sub);
    let iat = claims["iat"].as_i64().unwrap() + iat_offset;
    claims["iat"] = json!(iat);
    if let Some(lifetime) = lifetime {
        claims["exp"] = json!(iat + lifetime);
    }
    claims["sid"] = json!(sid);
    key.mint(&key.header(), &claims)
}

async fn get(
    gateway: &TestGateway,
    sub: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = gateway
        .http
        .get(gateway.url(&format!("/api/{sub}/tasks")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Polls until `token` gets `status` (5 s deadline); returns how long that took.
async fn until_status(gateway: &TestGateway, sub: &str, token: &str, status: u16) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        if get(gateway, sub, token).await.0 == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{sub}'s token never got {status} within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn metric(gateway: &TestGateway, series: &str) -> Option<f64> {
    gateway
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn until_metric(gateway: &TestGateway, series: &str, holds: impl Fn(f64) -> bool) {
    until_metric_within(gateway, series, holds, Duration::from_secs(10)).await;
}

async fn until_metric_within(
    gateway: &TestGateway,
    series: &str,
    holds: impl Fn(f64) -> bool,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !metric(gateway, series).await.is_some_and(&holds) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never reached the expected value:\n{}",
            gateway.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_revoked_session_is_refused_even_when_remembered_and_the_users_other_session_is_not() {
    let db = AuthDb::create().await;
    let gateway = gateway_on(&db, Duration::from_secs(30)).await;
    let laptop = token(&gateway, "alice", "session-laptop", 0);
    let phone = token(&gateway, "alice", "session-phone", 0);
    // Both verified, cached, and the laptop's remembered by a kept-alive connection.
    assert_eq!(get(&gateway, "alice", &laptop).await.0, 200);
    assert_eq!(get(&gateway, "alice", &phone).await.0, 200);
    let mut kept = crate::raw::RawConnection::open(gateway.address).await;
    let request = format!(
        "GET /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {laptop}\r\n\r\n"
    );
    kept.write(&request).await;
    assert_eq!(kept.read_response().await.status, 200);

    db.revoke("session", "session-laptop").await;
    until_status(&gateway, "alice", &laptop, 401).await;
    let (status, headers, body) = get(&gateway, "alice", &laptop).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(body["detail"], "Invalid token: revoked");
    kept.write(&request).await;
    assert_eq!(
        kept.read_response().await.status,
        401,
        "the connection's memory too"
    );
    assert_eq!(
        get(&gateway, "alice", &phone).await.0,
        200,
        "her other session"
    );
    assert!(
        metric(&gateway, r#"gateway_refusals_total{reason="revoked"}"#)
            .await
            .is_some_and(|n| n >= 3.0)
    );
    db.drop().await;
}

#[tokio::test]
async fn a_user_revocation_refuses_every_token_issued_before_it_and_none_after() {
    let db = AuthDb::create().await;
    let gateway = gateway_with_a_leeway_of_one_second(&db).await;
    let before = token(&gateway, "bob", "s1", -5);
    let other_session = token(&gateway, "bob", "s2", -1);
    assert_eq!(get(&gateway, "bob", &before).await.0, 200);
    db.revoke("user", "bob").await;
    until_status(&gateway, "bob", &before, 401).await;
    assert_eq!(get(&gateway, "bob", &other_session).await.0, 401);
    // Signed in again (or unbanned) after: a token issued past the revocation's second and
    // the leeway.
    let after = token(&gateway, "bob", "s3", 3);
    assert_eq!(get(&gateway, "bob", &after).await.0, 200);
    assert_eq!(
        get(&gateway, "alice", &token(&gateway, "alice", "s4", -5))
            .await
            .0,
        200
    );
    db.drop().await;
}

/// `NOTIFY` needs no privilege: any login to Better Auth's database, the gateways' read-only
/// one included, can announce a revocation. An announcement with no row behind it changes
/// nothing (here one dated centuries ahead, which would have refused the user at every
/// replica until each restarted), and one with a row is applied as the row dates it.
#[tokio::test]
async fn an_announcement_is_applied_as_the_table_has_it() {
    let db = AuthDb::create().await;
    let gateway = gateway_with_a_leeway_of_one_second(&db).await;
    // Dated centuries ahead.
    const AHEAD: i64 = 9_000_000_000_000_000_000;
    let carol = token(&gateway, "carol", "c1", -5);
    assert_eq!(get(&gateway, "carol", &carol).await.0, 200);
    db.announce("user", "carol", AHEAD).await;
    db.announce("session", "c1", AHEAD).await;
    // A real revocation behind them, on the same connection: once it is applied, so are the
    // announcements before it.
    let dave = token(&gateway, "dave", "d1", -5);
    db.revoke("session", "d1").await;
    until_status(&gateway, "dave", &dave, 401).await;
    assert_eq!(get(&gateway, "carol", &carol).await.0, 200);

    // Carol is banned now (the row), and someone announces it dated centuries ahead: her
    // tokens issued before the ban are refused, and one issued after it is served.
    db.revoked_ago("user", "carol", 0.0).await;
    db.announce("user", "carol", AHEAD).await;
    until_status(&gateway, "carol", &carol, 401).await;
    let after = token(&gateway, "carol", "c2", 3);
    assert_eq!(get(&gateway, "carol", &after).await.0, 200);
    db.drop().await;
}

#[tokio::test]
async fn a_gateway_started_after_a_revocation_loads_it_before_serving() {
    let db = AuthDb::create().await;
    db.revoke("session", "gone").await;
    let gateway = gateway_on(&db, Duration::from_secs(30)).await;
    assert_eq!(
        get(&gateway, "carol", &token(&gateway, "carol", "gone", -5))
            .await
            .0,
        401
    );
    assert_eq!(
        get(&gateway, "carol", &token(&gateway, "carol", "kept", -5))
            .await
            .0,
        200
    );
    assert_eq!(
        metric(&gateway, "gateway_revocation_entries").await,
        Some(1.0)
    );
    db.drop().await;
}

#[tokio::test]
async fn a_gateway_loads_every_revocation_whose_tokens_it_would_still_accept() {
    // Dora's session ended 950 s ago, later than the 930 s a token may live. A token minted
    // just before that by an issuer whose clock ran 25 s ahead says it was issued 925 s ago,
    // lives the whole window and is accepted for 5 s more plus the leeway: the gateway must
    // still know that its session ended (it loaded only the last 930 s before).
    let db = AuthDb::create().await;
    db.revoked_ago("session", "ended", 950.0).await;
    let gateway = gateway_on(&db, Duration::from_secs(30)).await;
    let minted = |sid: &str| token_living(&gateway, "dora", sid, -925, Some(930));
    assert_eq!(get(&gateway, "dora", &minted("ended")).await.0, 401);
    assert_eq!(
        get(&gateway, "dora", &minted("another")).await.0,
        200,
        "the same token for a session that did not end is served"
    );
    db.drop().await;
}

#[tokio::test]
async fn revocations_made_while_the_feed_was_cut_are_all_applied_once_it_is_back() {
    // A current-thread runtime (tokio::test's default): the feed's task logs on this thread.
    let captured = Captured::default();
    let _guard = captured.install("gateway=warn");
    let db = AuthDb::create().await;
    let gateway = gateway_on(&db, Duration::from_secs(30)).await;
    let tokens: Vec<String> = (0..5)
        .map(|i| token(&gateway, "dave", &format!("cut-{i}"), -5))
        .collect();
    for token in &tokens {
        assert_eq!(get(&gateway, "dave", token).await.0, 200);
    }
    // Cut the feed and keep it out while the revocations happen: none is notified to it.
    db.allow_connections(false).await;
    assert_eq!(db.cut_feed().await, 1, "the gateway's feed connection");
    until_metric(&gateway, "gateway_revocation_feed_up", |v| v == 0.0).await;
    for i in 0..5 {
        db.revoke("session", &format!("cut-{i}")).await;
    }
    // Within the stale bound the gateway keeps serving, and says why in /readyz.
    let (status, ready) = readyz(&gateway).await;
    assert_eq!(status, 200);
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains("revocation feed lost"),
        "{ready}"
    );

    db.allow_connections(true).await;
    until_metric(&gateway, "gateway_revocation_feed_up", |v| v == 1.0).await;
    for token in &tokens {
        assert_eq!(get(&gateway, "dave", token).await.0, 401);
    }
    assert_eq!(
        metric(&gateway, "gateway_revocation_feed_losses_total").await,
        Some(1.0)
    );
    // The operator reads which database the feed lost (never its login).
    let logs = captured.text();
    let lost: Value = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("revocation feed lost"))
        })
        .unwrap_or_else(|| panic!("no feed-lost line in:\n{logs}"));
    assert_eq!(
        lost["span"]["database"],
        format!("127.0.0.1:5432/{}", db.name),
        "{lost}"
    );
    assert!(!logs.contains("postgres@"), "{logs}");
    db.drop().await;
}

#[tokio::test]
async fn a_feed_lost_past_its_bound_fails_closed_until_it_is_back() {
    let db = AuthDb::create().await;
    let gateway = gateway_on(&db, Duration::from_secs(1)).await;
    let token = token(&gateway, "erin", "s1", -5);
    assert_eq!(get(&gateway, "erin", &token).await.0, 200);
    db.allow_connections(false).await;
    db.cut_feed().await;
    let (status, headers, body) = loop {
        let answer = get(&gateway, "erin", &token).await;
        if answer.0 != 200 {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        body["detail"],
        "Authentication temporarily unavailable: revocations cannot be checked"
    );
    assert_eq!(readyz(&gateway).await.0, 503);
    db.allow_connections(true).await;
    until_status(&gateway, "erin", &token, 200).await;
    db.drop().await;
}

/// A lookup of announced revocations that never comes back (here the table is locked, as a
/// migration's `DROP TRIGGER` would lock it; a connection gone half-open looks the same)
/// counts as a silent feed: lost, and past its bound failing closed, rather than a feed that
/// looks up forever while its health says up.
#[tokio::test]
async fn a_lookup_that_never_comes_back_counts_as_a_lost_feed() {
    let db = AuthDb::create().await;
    let gateway = gateway_on(&db, Duration::from_secs(1)).await;
    let token = token(&gateway, "erin", "s1", -5);
    assert_eq!(get(&gateway, "erin", &token).await.0, 200);
    let mut locker = connect(&db.url()).await;
    let held = locker.transaction().await.unwrap();
    held.batch_execute("LOCK TABLE auth_revocation IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    db.announce("session", "s9", 0).await;
    until_metric_within(
        &gateway,
        "gateway_revocation_feed_losses_total",
        |v| v >= 1.0,
        Duration::from_secs(10),
    )
    .await;
    until_status(&gateway, "erin", &token, 503).await;
    held.rollback().await.unwrap();
    until_status(&gateway, "erin", &token, 200).await;
    db.drop().await;
}

#[tokio::test]
async fn without_the_revocation_table_nothing_protected_is_served() {
    let db = AuthDb::create().await;
    db.client
        .batch_execute("DROP TABLE auth_revocation")
        .await
        .unwrap();
    let config = revocation(&db, Duration::from_secs(30));
    let gateway = gateway_starting(config).await;
    let token = token(&gateway, "frank", "s1", -5);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Keys load, the feed never does: 503, and /readyz says which.
    loop {
        let (status, _, body) = get(&gateway, "frank", &token).await;
        if body["detail"] == "Authentication temporarily unavailable: revocations cannot be checked"
        {
            assert_eq!(status, 503);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, ready) = readyz(&gateway).await;
    assert_eq!(status, 503);
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains("revocation feed"),
        "{ready}"
    );
    db.drop().await;
}

/// A feed through a proxy that passes notifications as `notices` says, none of its pings
/// among them: it connects, listens and loads, but is never up, and nothing protected is
/// served meanwhile. With the default bound: a deaf connection must not pass for a live one,
/// whose loss clock each reconnection would reset (every 30 s, as long as the bound), so that
/// it never failed closed.
async fn a_deaf_feed_fails_closed(notices: Notices, user: &str) {
    let db = AuthDb::create().await;
    let proxy = PgProxy::start_with(notices, 0, Duration::ZERO).await;
    let config = RevocationConfig {
        database_url: proxy.url(&db.name),
        ..revocation(&db, Duration::from_secs(30))
    };
    let gateway = gateway_starting(config).await;
    let token = token(&gateway, user, "s1", -5);
    until_metric(&gateway, "gateway_revocation_feed_losses_total", |v| {
        v >= 1.0
    })
    .await;
    assert!(
        proxy.notifications() >= 1,
        "the ping was notified and kept from the listening session"
    );
    assert_eq!(get(&gateway, user, &token).await.0, 503);
    assert_eq!(readyz(&gateway).await.0, 503);
    assert_eq!(
        metric(&gateway, "gateway_revocation_feed_up").await,
        Some(0.0)
    );
    db.drop().await;
}

/// Its own ping never comes back (a revocation would not either).
#[tokio::test]
async fn a_feed_whose_connection_delivers_no_notifications_fails_closed() {
    a_deaf_feed_fails_closed(Notices::Dropped, "gina").await;
}

/// Behind a transaction-mode pooler (PgBouncer, a managed database's `-pooler` host) a
/// session hears notifications only while the pooler lends it the server connection: its own
/// come back, other sessions' (every sign-out) are dropped. The feed's pings come from another
/// session of its own, as sign-outs do, so such a feed is never up; pinged from the listening
/// session itself, it came up and missed every sign-out.
#[tokio::test]
async fn a_feed_behind_a_transaction_pooler_fails_closed() {
    a_deaf_feed_fails_closed(Notices::WhileLent, "pia").await;
}

/// A path that drops the feed's connection as soon as it is set up (an idle-session timeout
/// shorter than the pings, a proxy that closes idle clients): each loss waits its turn, so the
/// window is not reloaded back to back. Retries 0.1, 0.2, 0.4, 0.8 and 1.6 s apart: five or
/// six connections in three seconds, each of two sessions (listening, pinging); with no wait
/// after a closed connection, nineteen here, more on a faster machine.
#[tokio::test]
async fn a_feed_dropped_as_soon_as_it_is_set_up_is_retried_with_backoff() {
    let db = AuthDb::create().await;
    let proxy = PgProxy::closing_after_a_notification().await;
    let config = RevocationConfig {
        database_url: proxy.url(&db.name),
        ..revocation(&db, Duration::from_secs(30))
    };
    let gateway = gateway_starting(config).await;
    until_metric(&gateway, "gateway_revocation_feed_losses_total", |v| {
        v >= 1.0
    })
    .await;
    let first = proxy.accepted();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let more = proxy.accepted() - first;
    assert!(more <= 2 * 7, "{more} connections in 3 s");
    assert!(more >= 2, "retried at all");
    db.drop().await;
}

#[tokio::test]
async fn tokens_without_a_session_are_refused_since_sign_out_cannot_end_them() {
    let db = AuthDb::create().await;
    let gateway = gateway_on(&db, Duration::from_secs(30)).await;
    let series = "gateway_revocation_tokens_without_session_total";
    assert_eq!(metric(&gateway, series).await, Some(0.0));
    let with_sid = token(&gateway, "hana", "s1", -5);
    assert_eq!(get(&gateway, "hana", &with_sid).await.0, 200);
    assert_eq!(metric(&gateway, series).await, Some(0.0));
    // Better Auth's JWT plugin leaves `sid` out unless told to put it in.
    let without_sid = gateway.issuer.token_for(Algorithm::EdDsa, "hana");
    for _ in 0..2 {
        let (status, _, body) = get(&gateway, "hana", &without_sid).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            body["detail"],
            "Invalid token: names no session (sid), so signing out could not end it"
        );
    }
    assert_eq!(metric(&gateway, series).await, Some(2.0));
    assert_eq!(
        metric(&gateway, r#"gateway_refusals_total{reason="no_session"}"#).await,
        Some(2.0)
    );
    db.drop().await;
}

#[tokio::test]
async fn tokens_without_a_session_are_served_and_counted_where_the_operator_allows_them() {
    let db = AuthDb::create().await;
    let config = RevocationConfig {
        require_session: false,
        ..revocation(&db, Duration::from_secs(30))
    };
    let gateway = gateway_with(config).await;
    let without_sid = gateway.issuer.token_for(Algorithm::EdDsa, "hana");
    for _ in 0..2 {
        assert_eq!(get(&gateway, "hana", &without_sid).await.0, 200);
    }
    let series = "gateway_revocation_tokens_without_session_total";
    assert_eq!(metric(&gateway, series).await, Some(2.0));
    // Only the user's revocation reaches it.
    db.revoke("user", "hana").await;
    until_status(&gateway, "hana", &without_sid, 401).await;
    db.drop().await;
}

#[tokio::test]
async fn a_gateway_without_a_feed_says_so_in_a_gauge() {
    // A misspelt REVOCATION_DATABASE_URL looks like this: tokens outlive sign-out.
    let gateway = spawn_gateway_with(|_| {}).await;
    assert_eq!(
        metric(&gateway, "gateway_revocation_enabled").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn a_feed_login_that_can_do_more_than_read_is_flagged() {
    let db = AuthDb::create().await;
    // The tests' superuser: flagged.
    let gateway = gateway_on(&db, Duration::from_secs(30)).await;
    let series = "gateway_revocation_login_privileged";
    assert_eq!(metric(&gateway, series).await, Some(1.0));
    assert_eq!(
        metric(&gateway, "gateway_revocation_enabled").await,
        Some(1.0)
    );
    // The role the README asks for, SELECT on the table and nothing else: not flagged.
    let role = format!("gw_reader_{}", uuid::Uuid::new_v4().simple());
    db.client
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT ON auth_revocation TO {role}"
        ))
        .await
        .unwrap();
    let config = RevocationConfig {
        database_url: format!("postgres://{role}@127.0.0.1:5432/{}", db.name),
        ..revocation(&db, Duration::from_secs(30))
    };
    let reader = gateway_with(config.clone()).await;
    assert_eq!(metric(&reader, series).await, Some(0.0));
    drop((gateway, reader));
    // The same role once it may also read Better Auth's sessions (tokens that sign in) or
    // accounts (password hashes), as a reused owner login could: flagged.
    for table in ["session", "account"] {
        db.client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" (id text); \
                 GRANT SELECT ON \"{table}\" TO {role}"
            ))
            .await
            .unwrap();
        let reader = gateway_with(config.clone()).await;
        assert_eq!(metric(&reader, series).await, Some(1.0), "{table}");
        db.client
            .batch_execute(&format!("REVOKE SELECT ON \"{table}\" FROM {role}"))
            .await
            .unwrap();
    }
    db.drop().await;
    let _ = connect(ADMIN_URL)
        .await
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
}

/// LISTENs on `channel` of `url`; every payload notified there arrives on the receiver.
async fn listen(url: &str, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    let (send, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Polling the connection both drives the client's queries and yields NOTIFYs.
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = send.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    // The connection lives as long as its task polls it; the client may go.
    std::mem::forget(client);
    received
}

/// Many sessions ended at once: their notifications take longer to arrive than the feed
/// waits between pings, and its ping's answer comes behind them. A connection delivering
/// revocations is not deaf: the feed stays up through the burst.
#[tokio::test]
async fn a_burst_of_revocations_slower_than_the_pings_keeps_the_feed_up() {
    let db = AuthDb::create().await;
    // 1,500 notifications at 4 ms each: 6 s, three ping intervals.
    let proxy = PgProxy::start_with(Notices::Passed, 0, Duration::from_millis(4)).await;
    let gateway = gateway_with(RevocationConfig {
        database_url: proxy.url(&db.name),
        ..revocation(&db, Duration::from_secs(30))
    })
    .await;
    // As the triggers would for one statement ending 1,500 sessions.
    db.client
        .batch_execute(
            "WITH revoked AS (
               INSERT INTO auth_revocation (kind, subject)
               SELECT 'session', 'burst-' || n FROM generate_series(1, 1500) AS n
               RETURNING kind, subject, floor(extract(epoch FROM revoked_at))::bigint AS at)
             SELECT count(pg_notify('auth_revocation',
               json_build_object('kind', kind, 'subject', subject, 'at', at)::text))
             FROM revoked",
        )
        .await
        .unwrap();
    until_metric_within(
        &gateway,
        "gateway_revocation_events_total",
        |v| v >= 1500.0,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        metric(&gateway, "gateway_revocation_feed_losses_total").await,
        Some(0.0),
        "the feed was dropped as deaf while revocations were arriving"
    );
    db.drop().await;
}

#[tokio::test]
async fn each_replica_pings_where_only_it_listens() {
    let db = AuthDb::create().await;
    // Everything notified on the channel the triggers use, seen from outside.
    let mut shared = listen(&db.url(), "auth_revocation").await;
    let proxies = [PgProxy::start().await, PgProxy::start().await];
    let mut gateways = Vec::new();
    for proxy in &proxies {
        let config = RevocationConfig {
            database_url: proxy.url(&db.name),
            ..revocation(&db, Duration::from_secs(30))
        };
        gateways.push(gateway_with(config).await);
    }
    // Two pings each have gone round (one every 2 s), every one of them heard by its sender.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while proxies.iter().any(|p| p.notifications() < 2) {
        assert!(tokio::time::Instant::now() < deadline, "no pings came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Notifications reach a listener in commit order: had any ping gone to the shared
    // channel, it would be heard before this revocation.
    db.revoke("session", "s-after-the-pings").await;
    let first = tokio::time::timeout(Duration::from_secs(10), shared.recv())
        .await
        .expect("the revocation is announced")
        .unwrap();
    assert!(first.contains("s-after-the-pings"), "heard first: {first}");
    for gateway in &gateways {
        assert_eq!(
            metric(gateway, "gateway_revocation_feed_losses_total").await,
            Some(0.0),
            "the pings came back: no connection was dropped as deaf"
        );
    }
    db.drop().await;
}

#[tokio::test]
async fn the_feed_speaks_tls_to_a_server_signed_by_the_configured_ca_and_refuses_it_without() {
    use proto_shared::postgres_tls::{parse_url, Tls, TrustedCas};
    let cluster = crate::cluster::PrivateCluster::start_with_tls();
    let db = AuthDb::create_on(&cluster.admin_url(), cluster.port()).await;
    // By host name, so the certificate's name is verified too.
    let url = format!(
        "postgres://postgres@localhost:{}/{}?sslmode=verify-full",
        cluster.port(),
        db.name
    );
    let over_tls = |cas: Option<&TrustedCas>| RevocationConfig {
        database_url: url.clone(),
        tls: Tls::for_config(&parse_url(&url).unwrap(), cas).unwrap(),
        ..revocation(&db, Duration::from_secs(1))
    };

    let cas = TrustedCas::from_pem_file(&cluster.ca_file()).expect("the test CA loads");
    let config = over_tls(Some(&cas));
    let gateway = gateway_with(config).await;
    until_metric(&gateway, "gateway_revocation_feed_up", |v| v == 1.0).await;
    let signed_in = token(&gateway, "tess", "s1", -5);
    assert_eq!(get(&gateway, "tess", &signed_in).await.0, 200);
    db.revoke("session", "s1").await;
    until_status(&gateway, "tess", &signed_in, 401).await;
    // Seen from the server: the feed's connection is TLS.
    let encrypted: Vec<bool> = connect(&db.admin)
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'gateway-revocation' AND a.datname = $1",
            &[&db.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(encrypted, [true], "one feed connection, over TLS");

    // Trusting only the webpki roots, the privately signed server is refused: the feed never
    // comes up and protected requests are refused, not served unchecked.
    let config = over_tls(None);
    let untrusting = gateway_starting(config).await;
    // A connection attempt has failed (a feed that connected would never count a loss)...
    until_metric(&untrusting, "gateway_revocation_feed_losses_total", |v| {
        v >= 1.0
    })
    .await;
    // ...and nothing protected is served meanwhile.
    let other = token(&untrusting, "tess", "s2", -5);
    assert_eq!(get(&untrusting, "tess", &other).await.0, 503);
    assert_eq!(readyz(&untrusting).await.0, 503);
    assert_eq!(
        metric(&untrusting, "gateway_revocation_feed_up").await,
        Some(0.0)
    );
    db.drop().await;
}

#[tokio::test]
async fn a_database_that_accepts_and_then_says_nothing_is_given_up_on_and_tried_again() {
    let db = AuthDb::create().await;
    // The feed's first connection is accepted and never answered; later ones pass through.
    let proxy = PgProxy::start_with(Notices::Passed, 1, Duration::ZERO).await;
    let config = RevocationConfig {
        database_url: proxy.url(&db.name),
        ..revocation(&db, Duration::from_secs(1))
    };
    let gateway = gateway_starting(config).await;
    let signed_in = token(&gateway, "sam", "s1", -5);
    assert_eq!(
        get(&gateway, "sam", &signed_in).await.0,
        503,
        "nothing loaded yet"
    );
    // Set-up is bounded (10 s), so the stalled connection is dropped and the next one loads;
    // before, the feed waited on it for good and every protected request got 503.
    until_metric_within(
        &gateway,
        "gateway_revocation_feed_up",
        |v| v == 1.0,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        metric(&gateway, "gateway_revocation_feed_losses_total").await,
        Some(1.0),
        "the stalled set-up counted as a loss"
    );
    assert_eq!(get(&gateway, "sam", &signed_in).await.0, 200);
    db.drop().await;
}
