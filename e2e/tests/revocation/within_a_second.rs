//! 50 trials over every way a session ends, each token polled at two replicas: p50/p99 of
//! the delay from Better Auth answering to each replica's first refusal, p99 within the
//! promise; other sessions keep working; metrics count `revoked`; no token in a log.

use std::time::Instant;

use e2e::{
    better_auth::Session,
    revocation::{assert_accepted_everywhere, connect, refusals, times_to_refusal, Delays},
    stack::Stack,
};
use serde_json::json;

use crate::helpers::{admin, ban_by_row, replicated, session_token, tasks_of, POLL_LIMIT, PROMISE};

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
        ban_by_row(&db, &victim.user_id).await;
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
