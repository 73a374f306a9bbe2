//! Issue 13, sign-out that signs out: when a session ends in the real Better Auth server
//! (sign-out, revoke one, revoke others, revoke all, an admin's ban), every gateway replica
//! refuses that session's tokens within a second, and a user-wide revocation refuses every
//! older token of that user. The feed is Better Auth's own PostgreSQL database
//! (deploy/better-auth/revocation.sql): a replica started after a revocation, or one whose
//! feed connection was cut while revocations happened, still refuses those tokens. An existing
//! Better Auth app turns it on the way the README says.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use e2e::{
    better_auth::{decode_unverified, Session},
    revocation::{
        assert_accepted_everywhere, connect, refusals, times_to_refusal, verdict, Delays, Listener,
        Verdict,
    },
    stack::{repo_root, BeforeGateways, RevocationFeed, Stack, StackOptions},
};
use serde_json::json;
use tokio_postgres::Client;

/// The promise: p99 of the time from Better Auth answering to a replica refusing.
const PROMISE: Duration = Duration::from_secs(1);
/// How long a poll waits before calling a token "still accepted": long enough that a slow,
/// shared CI machine reports a measured delay rather than a timeout.
const POLL_LIMIT: Duration = Duration::from_secs(10);
/// How long a NOTIFY may take to reach a listener.
const WAKE: Duration = Duration::from_secs(5);

/// Options for `replicas` gateways, each reading the revocation feed as `postgres`.
fn replicated(replicas: usize) -> StackOptions {
    let mut options = StackOptions::new("EdDSA");
    options.gateway_replicas = replicas;
    options.revocation = Some(RevocationFeed::default());
    options
}

fn tasks_of(session: &Session) -> String {
    format!("/api/{}/tasks", session.user_id)
}

/// A user made an admin the way an operator makes the first one: `role` set in the database.
async fn admin(stack: &Stack, db: &Client) -> Session {
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
async fn session_token(of: &Session, sid: &str) -> String {
    let sessions = of.list_sessions().await;
    let session = sessions
        .iter()
        .find(|s| s["id"] == sid)
        .unwrap_or_else(|| panic!("session {sid} not listed: {sessions:?}"));
    session["token"].as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_better_auth_ends_a_session_is_recorded_and_announced() {
    let stack = Stack::start("revocation-feed", StackOptions::new("EdDSA")).await;
    let auth = stack.auth_url.as_str();
    let db = connect(&stack.auth_database_url).await;
    let mut feed = Listener::start(&stack.auth_database_url).await;
    let admin = admin(&stack, &db).await;
    let mut announced = Vec::new();

    // Tokens name their session, and keep every claim they had.
    let alice = Session::sign_up(auth, "alice").await;
    let sid = alice.session_id().await;
    let claims = decode_unverified(&alice.token().await).1;
    assert_eq!(claims["sid"], sid.as_str(), "{claims}");
    assert_eq!(claims["sub"], alice.user_id.as_str());
    for claim in [
        "id",
        "name",
        "email",
        "emailVerified",
        "createdAt",
        "iat",
        "exp",
        "iss",
        "aud",
    ] {
        assert!(claims.get(claim).is_some(), "{claim} kept: {claims}");
    }

    // Sign-out.
    alice.sign_out().await;
    announced.extend(feed.expect(&[("session", &sid)], WAKE).await);

    // Revoke one session from another.
    let phone = Session::sign_in(auth, &alice.email).await;
    let laptop = Session::sign_in(auth, &alice.email).await;
    let phone_sid = phone.session_id().await;
    let token = session_token(&laptop, &phone_sid).await;
    laptop
        .expect_post("revoke-session", json!({ "token": token }))
        .await;
    announced.extend(feed.expect(&[("session", &phone_sid)], WAKE).await);

    // Revoke the others, then all.
    let tablet = Session::sign_in(auth, &alice.email).await;
    let tablet_sid = tablet.session_id().await;
    laptop.expect_post("revoke-other-sessions", json!({})).await;
    announced.extend(feed.expect(&[("session", &tablet_sid)], WAKE).await);
    let laptop_sid = laptop.session_id().await;
    laptop.expect_post("revoke-sessions", json!({})).await;
    announced.extend(feed.expect(&[("session", &laptop_sid)], WAKE).await);

    // An admin revokes one of Bob's sessions, then all, then bans him.
    let bob = Session::sign_up(auth, "bob").await;
    let bob_sid = bob.session_id().await;
    let token = session_token(&bob, &bob_sid).await;
    admin
        .expect_post(
            "admin/revoke-user-session",
            json!({ "sessionToken": token }),
        )
        .await;
    announced.extend(feed.expect(&[("session", &bob_sid)], WAKE).await);
    let bob = Session::sign_in(auth, &bob.email).await;
    let bob_sid = bob.session_id().await;
    admin
        .expect_post(
            "admin/revoke-user-sessions",
            json!({ "userId": bob.user_id }),
        )
        .await;
    announced.extend(feed.expect(&[("session", &bob_sid)], WAKE).await);
    let bob = Session::sign_in(auth, &bob.email).await;
    let bob_sid = bob.session_id().await;
    admin
        .expect_post("admin/ban-user", json!({ "userId": bob.user_id }))
        .await;
    announced.extend(
        feed.expect(&[("user", &bob.user_id), ("session", &bob_sid)], WAKE)
            .await,
    );

    // An admin deletes Carol: her user and her session.
    let carol = Session::sign_up(auth, "carol").await;
    let carol_sid = carol.session_id().await;
    admin
        .expect_post("admin/remove-user", json!({ "userId": carol.user_id }))
        .await;
    announced.extend(
        feed.expect(&[("user", &carol.user_id), ("session", &carol_sid)], WAKE)
            .await,
    );

    // A ban written straight to the user row (another tool, a console): the same trigger.
    // Setting it again is no new ban and announces nothing.
    let dave = Session::sign_up(auth, "dave").await;
    for _ in 0..2 {
        db.execute(
            r#"UPDATE "user" SET banned = true WHERE id = $1"#,
            &[&dave.user_id],
        )
        .await
        .expect("ban by row");
    }
    announced.extend(feed.expect(&[("user", &dave.user_id)], WAKE).await);

    // Every announcement is a durable row, stamped now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    for a in &announced {
        assert!((now - 120..=now + 1).contains(&a.at), "{a:?} at {now}");
    }
    let rows: Vec<(String, String)> = db
        .query("SELECT kind, subject FROM auth_revocation", &[])
        .await
        .expect("read auth_revocation")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for a in &announced {
        assert!(
            rows.contains(&(a.kind.clone(), a.subject.clone())),
            "{a:?} announced but not stored: {rows:?}"
        );
    }
    let daves = rows.iter().filter(|(_, s)| *s == dave.user_id).count();
    assert_eq!(daves, 1, "banning a banned user again records nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_a_session_ends_is_refused_at_both_replicas_within_a_second() {
    let stack = Stack::start("revocation-delay", replicated(2)).await;
    let auth = stack.auth_url.as_str();
    let gateways = stack.gateway_urls();
    // One client for the whole test: warm connections, so a delay measures the gateway.
    let http = reqwest::Client::new();
    let db = connect(&stack.auth_database_url).await;
    let admin = admin(&stack, &db).await;
    let mut delays = Delays::default();
    let mut trials = 0;
    let mut tokens = Vec::new();

    // Sign-out: 20 trials, one user signing in and out again.
    let alice = Session::sign_up(auth, "alice").await;
    let path = tasks_of(&alice);
    for _ in 0..20 {
        let session = Session::sign_in(auth, &alice.email).await;
        let token = session.token().await;
        assert_accepted_everywhere(&http, &gateways, &path, &token, "a live session's token").await;
        session.sign_out().await;
        let since = Instant::now();
        delays.extend(times_to_refusal(&http, &gateways, &path, &token, since, POLL_LIMIT).await);
        trials += 1;
        tokens.push(token);
    }

    // Revoke one session from another: 10 trials; the other keeps working.
    for _ in 0..10 {
        let phone = Session::sign_in(auth, &alice.email).await;
        let laptop = Session::sign_in(auth, &alice.email).await;
        let (phone_token, laptop_token) = (phone.token().await, laptop.token().await);
        assert_accepted_everywhere(&http, &gateways, &path, &phone_token, "the phone's token")
            .await;
        let session_token = session_token(&laptop, &phone.session_id().await).await;
        laptop
            .expect_post("revoke-session", json!({ "token": session_token }))
            .await;
        let since = Instant::now();
        delays.extend(
            times_to_refusal(&http, &gateways, &path, &phone_token, since, POLL_LIMIT).await,
        );
        assert_accepted_everywhere(
            &http,
            &gateways,
            &path,
            &laptop_token,
            "the laptop keeps working",
        )
        .await;
        trials += 1;
        tokens.extend([phone_token, laptop_token]);
    }

    // Revoke the other sessions: 5 trials; the one asking keeps working.
    for _ in 0..5 {
        let phone = Session::sign_in(auth, &alice.email).await;
        let laptop = Session::sign_in(auth, &alice.email).await;
        let (phone_token, laptop_token) = (phone.token().await, laptop.token().await);
        assert_accepted_everywhere(&http, &gateways, &path, &phone_token, "the phone's token")
            .await;
        laptop.expect_post("revoke-other-sessions", json!({})).await;
        let since = Instant::now();
        delays.extend(
            times_to_refusal(&http, &gateways, &path, &phone_token, since, POLL_LIMIT).await,
        );
        assert_accepted_everywhere(
            &http,
            &gateways,
            &path,
            &laptop_token,
            "the laptop keeps working",
        )
        .await;
        trials += 1;
        tokens.extend([phone_token, laptop_token]);
    }

    // Revoke all sessions: 5 trials, both sessions' tokens refused.
    for _ in 0..5 {
        let phone = Session::sign_in(auth, &alice.email).await;
        let laptop = Session::sign_in(auth, &alice.email).await;
        let (phone_token, laptop_token) = (phone.token().await, laptop.token().await);
        assert_accepted_everywhere(&http, &gateways, &path, &phone_token, "the phone's token")
            .await;
        assert_accepted_everywhere(&http, &gateways, &path, &laptop_token, "the laptop's token")
            .await;
        laptop.expect_post("revoke-sessions", json!({})).await;
        let since = Instant::now();
        for token in [&phone_token, &laptop_token] {
            delays
                .extend(times_to_refusal(&http, &gateways, &path, token, since, POLL_LIMIT).await);
        }
        trials += 1;
        tokens.extend([phone_token, laptop_token]);
    }

    // Banned by an admin (the session rows go too): 5 trials; the admin keeps working.
    let admin_token = admin.token().await;
    for _ in 0..5 {
        let victim = Session::sign_up(auth, "banned").await;
        let (token, path) = (victim.token().await, tasks_of(&victim));
        assert_accepted_everywhere(&http, &gateways, &path, &token, "before the ban").await;
        admin
            .expect_post("admin/ban-user", json!({ "userId": victim.user_id }))
            .await;
        let since = Instant::now();
        delays.extend(times_to_refusal(&http, &gateways, &path, &token, since, POLL_LIMIT).await);
        trials += 1;
        tokens.push(token);
    }
    assert_accepted_everywhere(
        &http,
        &gateways,
        &tasks_of(&admin),
        &admin_token,
        "the admin",
    )
    .await;

    // Banned in the user row only (no session deleted): the user-wide rule alone, which
    // refuses every token of the user issued up to the ban. 5 trials.
    for _ in 0..5 {
        let victim = Session::sign_up(auth, "row-banned").await;
        let (token, path) = (victim.token().await, tasks_of(&victim));
        assert_accepted_everywhere(&http, &gateways, &path, &token, "before the ban").await;
        db.execute(
            r#"UPDATE "user" SET banned = true WHERE id = $1"#,
            &[&victim.user_id],
        )
        .await
        .expect("ban by row");
        let since = Instant::now();
        delays.extend(times_to_refusal(&http, &gateways, &path, &token, since, POLL_LIMIT).await);
        trials += 1;
        tokens.push(token);
    }

    let (p50, p99) = (delays.percentile(50.0), delays.percentile(99.0));
    println!(
        "revocation to refusal at {} replicas: {trials} trials, {} delays, p50 {p50:?}, p99 {p99:?}, max {:?}",
        gateways.len(),
        delays.len(),
        delays.max()
    );
    assert!(trials >= 50);
    assert!(p99 <= PROMISE, "p99 {p99:?} breaks the {PROMISE:?} promise");

    // Each replica counts its refusals as `revoked`, and no token reaches a log.
    for gateway in &stack.gateways {
        let metrics = http
            .get(format!("{}/metrics", gateway.admin_url))
            .send()
            .await
            .expect("reach the admin listener")
            .text()
            .await
            .expect("metrics text");
        assert!(
            refusals(&metrics, "revoked") >= trials as f64,
            "{}: gateway_refusals_total{{reason=\"revoked\"}} counts every trial",
            gateway.url
        );
        let log = gateway.process.log_text();
        assert!(
            log.contains("revoked"),
            "{}: the reason is logged",
            gateway.url
        );
        for token in &tokens {
            assert!(!log.contains(token.as_str()), "a token reached a log");
            let signature = token.rsplit('.').next().expect("a JWT");
            assert!(
                !log.contains(signature),
                "a token's signature reached a log"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_started_after_a_revocation_refuses_the_token_from_its_first_answer() {
    let mut stack = Stack::start("revocation-restart", replicated(2)).await;
    let auth = stack.auth_url.as_str().to_owned();
    let gateways = stack.gateway_urls();
    // One client for the whole test: warm connections, so a delay measures the gateway.
    let http = reqwest::Client::new();
    let alice = Session::sign_up(&auth, "alice").await;
    let path = tasks_of(&alice);
    let early = Session::sign_in(&auth, &alice.email).await;
    let late = Session::sign_in(&auth, &alice.email).await;
    let (early_token, late_token) = (early.token().await, late.token().await);
    let live_token = alice.token().await;
    for token in [&early_token, &late_token, &live_token] {
        assert_accepted_everywhere(&http, &gateways, &path, token, "before any revocation").await;
    }

    // One revocation while both run, one while the second replica is down.
    early.sign_out().await;
    times_to_refusal(
        &http,
        &gateways,
        &path,
        &early_token,
        Instant::now(),
        POLL_LIMIT,
    )
    .await;
    stack.stop_gateway(1);
    late.sign_out().await;
    stack.start_gateway(1).await;
    let gateways = stack.gateway_urls();

    // Ready means loaded: its very first answer to either token is a refusal.
    let restarted = &gateways[1];
    for token in [&early_token, &late_token] {
        assert_eq!(
            verdict(&http, restarted, &path, token).await,
            Verdict::Refused,
            "a restarted replica let a token revoked before it started through\n{}",
            stack.logs()
        );
    }
    assert_accepted_everywhere(
        &http,
        &gateways,
        &path,
        &live_token,
        "a live session still works",
    )
    .await;
    // The replica that stayed up learned of the second revocation too.
    assert_eq!(
        verdict(&http, &gateways[0], &path, &late_token).await,
        Verdict::Refused
    );
}

/// A PostgreSQL role that exists for one test; dropped after the stack (declare it first).
struct TempRole(String);

impl TempRole {
    async fn create(grants: &str) -> Self {
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

/// How many connections `role` holds to `database`, and how many of them are named
/// `gateway-revocation` (the gateway's feed connection).
async fn feed_connections(db: &Client, role: &str) -> (i64, i64) {
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
async fn wait_for_feed(db: &Client, role: &str, what: &str, check: impl Fn((i64, i64)) -> bool) {
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

#[tokio::test(flavor = "multi_thread")]
async fn revocations_made_while_the_feed_is_cut_are_applied_once_it_is_back() {
    // The feed reads as a role of its own, so the test can keep it out while Better Auth
    // (as `postgres`) goes on ending sessions.
    let role = TempRole::create("GRANT pg_read_all_data TO {role};").await;
    let mut options = replicated(2);
    options.revocation = Some(RevocationFeed {
        role: Some(role.0.clone()),
    });
    let stack = Stack::start("revocation-feed-cut", options).await;
    let auth = stack.auth_url.as_str();
    let gateways = stack.gateway_urls();
    // One client for the whole test: warm connections, so a delay measures the gateway.
    let http = reqwest::Client::new();
    let db = connect(&stack.auth_database_url).await;
    wait_for_feed(&db, &role.0, "both replicas LISTEN", |(_, feed)| feed >= 2).await;

    let alice = Session::sign_up(auth, "alice").await;
    let path = tasks_of(&alice);
    let mut sessions = Vec::new();
    for _ in 0..5 {
        let session = Session::sign_in(auth, &alice.email).await;
        let token = session.token().await;
        assert_accepted_everywhere(&http, &gateways, &path, &token, "before the cut").await;
        sessions.push((session, token));
    }
    let bob = Session::sign_up(auth, "bob").await;
    let bob_token = bob.token().await;
    assert_accepted_everywhere(
        &http,
        &gateways,
        &tasks_of(&bob),
        &bob_token,
        "before the cut",
    )
    .await;

    // Cut: no new logins for the feed's role, its connections terminated.
    db.batch_execute(&format!("ALTER ROLE {} NOLOGIN", role.0))
        .await
        .expect("refuse the feed's logins");
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        &[&role.0],
    )
    .await
    .expect("terminate the feed");
    wait_for_feed(&db, &role.0, "the feed is cut", |(all, _)| all == 0).await;

    // Meanwhile: five sign-outs and a user-wide ban.
    for (session, _) in &sessions {
        session.sign_out().await;
    }
    db.execute(
        r#"UPDATE "user" SET banned = true WHERE id = $1"#,
        &[&bob.user_id],
    )
    .await
    .expect("ban by row");
    assert_eq!(
        feed_connections(&db, &role.0).await.1,
        0,
        "the feed stayed cut while revocations happened"
    );

    // Restored: every revocation made meanwhile is applied at every replica.
    db.batch_execute(&format!("ALTER ROLE {} LOGIN", role.0))
        .await
        .expect("let the feed in again");
    let since = Instant::now();
    wait_for_feed(&db, &role.0, "both replicas LISTEN again", |(_, feed)| {
        feed >= 2
    })
    .await;
    let within = Duration::from_secs(30);
    for (_, token) in &sessions {
        times_to_refusal(&http, &gateways, &path, token, since, within).await;
    }
    times_to_refusal(&http, &gateways, &tasks_of(&bob), &bob_token, since, within).await;
    // And the feed is live again: a sign-out now is refused promptly.
    let fresh = Session::sign_in(auth, &alice.email).await;
    let token = fresh.token().await;
    assert_accepted_everywhere(&http, &gateways, &path, &token, "after recovery").await;
    fresh.sign_out().await;
    let delays =
        times_to_refusal(&http, &gateways, &path, &token, Instant::now(), POLL_LIMIT).await;
    println!("after the feed came back: a sign-out refused in {delays:?}");
    drop(stack);
}

/// What README.md tells an existing app to do, read from the README itself.
const README: &str = "deploy/better-auth/README.md";
const DEFINE_PAYLOAD: &str = "definePayload: ({ user, session }) => ({ ...user, sid: session.id })";
const GRANT: &str = "GRANT SELECT ON auth_revocation TO";

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_better_auth_app_gets_revocation_the_way_the_readme_says() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join(README)).expect("read the README");
    let app = std::fs::read_to_string(root.join("deploy/better-auth/examples/existing-app.mjs"))
        .expect("read the example app");
    for step in [
        DEFINE_PAYLOAD,
        GRANT,
        "psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -f revocation.sql",
    ] {
        assert!(readme.contains(step), "{README} no longer says {step:?}");
    }
    assert!(
        app.contains(DEFINE_PAYLOAD),
        "the app uses the README's line"
    );

    // The gateway reads as a role with only what the README grants.
    let role = TempRole::create("").await;
    let grant_to = role.0.clone();
    let mut options = replicated(2);
    options.better_auth_script = "examples/existing-app.mjs";
    options.revocation = Some(RevocationFeed {
        role: Some(role.0.clone()),
    });
    // The operator's step, once the app's own migrations ran and before the gateways start.
    options.before_gateways = Some(BeforeGateways(Arc::new(move |database_url: &str| {
        let sql = repo_root().join("deploy/better-auth/revocation.sql");
        for args in [
            vec!["-f".to_owned(), sql.display().to_string()],
            vec!["-c".to_owned(), format!("{GRANT} {grant_to}")],
        ] {
            let out = std::process::Command::new("psql")
                .arg(database_url)
                .args(["-q", "-v", "ON_ERROR_STOP=1"])
                .args(&args)
                .output()
                .expect("psql is installed (it comes with PostgreSQL's client package)");
            assert!(
                out.status.success(),
                "psql {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })));
    let stack = Stack::start("revocation-existing-app", options).await;
    let gateways = stack.gateway_urls();
    // One client for the whole test: warm connections, so a delay measures the gateway.
    let http = reqwest::Client::new();
    let auth = stack.auth_url.as_str();

    // Sign-out is refused at both replicas.
    let alice = Session::sign_up(auth, "alice").await;
    let path = tasks_of(&alice);
    let token = alice.token().await;
    assert_eq!(
        decode_unverified(&token).1["sid"],
        alice.session_id().await.as_str()
    );
    assert_accepted_everywhere(&http, &gateways, &path, &token, "a live session").await;
    alice.sign_out().await;
    let delays =
        times_to_refusal(&http, &gateways, &path, &token, Instant::now(), POLL_LIMIT).await;
    println!("existing app: sign-out refused at the replicas in {delays:?}");

    // Without the admin plugin there is no ban, but deleting a user refuses all its tokens.
    let bob = Session::sign_up(auth, "bob").await;
    let (bob_token, bob_path) = (bob.token().await, tasks_of(&bob));
    assert_accepted_everywhere(&http, &gateways, &bob_path, &bob_token, "a live session").await;
    let db = connect(&stack.auth_database_url).await;
    db.execute(r#"DELETE FROM "user" WHERE id = $1"#, &[&bob.user_id])
        .await
        .expect("delete the user");
    times_to_refusal(
        &http,
        &gateways,
        &bob_path,
        &bob_token,
        Instant::now(),
        POLL_LIMIT,
    )
    .await;
    drop(stack);
}
