//! A replica that was down while a session ended refuses its token from its first answer:
//! ready means the recent revocations are loaded.

use std::time::Instant;

use e2e::{
    better_auth::Session,
    revocation::{assert_accepted_everywhere, time_to_refusal, times_to_refusal, verdict, Verdict},
    stack::Stack,
};

use crate::helpers::{replicated, tasks_of, POLL_LIMIT};

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
    let late_signed_out = Instant::now();
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
    // The replica that stayed up learns of the second revocation too, from the feed: polled
    // until it refuses, since nothing above waited for its NOTIFY to arrive.
    time_to_refusal(
        &http,
        &gateways[0],
        &path,
        &late_token,
        late_signed_out,
        Instant::now() + POLL_LIMIT,
    )
    .await;
}
