//! The feed's connections cut (and kept out) while sessions end and a user is banned:
//! once the feed is back, every one of those revocations is applied at every replica.

use std::time::{Duration, Instant};

use e2e::{
    better_auth::Session,
    revocation::{assert_accepted_everywhere, connect, times_to_refusal},
    stack::{RevocationFeed, Stack},
};

use crate::helpers::{
    ban_by_row, feed_connections, replicated, tasks_of, wait_for_feed, TempRole, POLL_LIMIT,
};

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
    ban_by_row(&db, &bob.user_id).await;
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
