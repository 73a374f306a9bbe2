//! What the revocation tests share: the promise and deadlines, a stack of replicas reading
//! the feed, an admin, a ban written to the user row, a session's raw token, and a
//! PostgreSQL role of the test's own.

use std::time::{Duration, Instant};

use e2e::{
    better_auth::Session,
    revocation::connect,
    stack::{RevocationFeed, Stack, StackOptions},
};
use tokio_postgres::Client;

/// The promise: p99 of the time from Better Auth answering to a replica refusing.
pub const PROMISE: Duration = Duration::from_secs(1);
/// How long a poll waits before calling a token "still accepted": long enough that a slow,
/// shared CI machine reports a measured delay rather than a timeout.
pub const POLL_LIMIT: Duration = Duration::from_secs(10);
/// How long a NOTIFY may take to reach a listener.
pub const WAKE: Duration = Duration::from_secs(5);

/// Options for `replicas` gateways, each reading the revocation feed as `postgres`.
pub fn replicated(replicas: usize) -> StackOptions {
    let mut options = StackOptions::new("EdDSA");
    options.gateway_replicas = replicas;
    options.revocation = Some(RevocationFeed::default());
    options
}

/// The user's task list: the protected route the tests poll.
pub fn tasks_of(session: &Session) -> String {
    format!("/api/{}/tasks", session.user_id)
}

/// Bans `user_id` the way another tool or a console does: in the user row alone, no session
/// deleted by Better Auth (the triggers of `revocation.sql` do the rest).
pub async fn ban_by_row(db: &Client, user_id: &str) {
    db.execute(
        r#"UPDATE "user" SET banned = true WHERE id = $1"#,
        &[&user_id],
    )
    .await
    .expect("ban by row");
}

/// A user made an admin the way an operator makes the first one: `role` set in the database.
pub async fn admin(stack: &Stack, db: &Client) -> Session {
    let admin = Session::sign_up(&stack.auth_url, "admin").await;
    let changed = db
        .execute(
            r#"UPDATE "user" SET role = 'admin' WHERE id = $1"#,
            &[&admin.user_id],
        )
        .await
        .expect("make the admin");
    assert_eq!(changed, 1);
    admin
}

/// The raw session token of the session `sid`, from `list-sessions` of another session.
pub async fn session_token(of: &Session, sid: &str) -> String {
    let sessions = of.list_sessions().await;
    let session = sessions
        .iter()
        .find(|s| s["id"] == sid)
        .unwrap_or_else(|| panic!("session {sid} not listed: {sessions:?}"));
    session["token"].as_str().expect("a token").to_owned()
}

/// A PostgreSQL role that exists for one test; dropped after the stack (declare it first).
pub struct TempRole(pub String);

impl TempRole {
    pub async fn create(grants: &str) -> Self {
        let name = format!(
            "e2e_feed_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let admin = connect("postgres://postgres@127.0.0.1:5432/postgres").await;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN; {}",
                grants.replace("{role}", &name)
            ))
            .await
            .expect("create the feed's role");
        Self(name)
    }
}

impl Drop for TempRole {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
            ])
            .arg(format!("DROP ROLE IF EXISTS {}", self.0))
            .output();
    }
}

/// How many connections `role` holds to `db`'s database, and how many of them are named
/// `gateway-revocation` (the gateway's feed connection).
pub async fn feed_connections(db: &Client, role: &str) -> (i64, i64) {
    let row = db
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE application_name = 'gateway-revocation') \
             FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()",
            &[&role],
        )
        .await
        .expect("read pg_stat_activity");
    (row.get(0), row.get(1))
}

/// Polls until `check` holds for the feed connections of `role`, or panics with `what`.
pub async fn wait_for_feed(
    db: &Client,
    role: &str,
    what: &str,
    check: impl Fn((i64, i64)) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = feed_connections(db, role).await;
        if check(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: connections (all, feed) = {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
