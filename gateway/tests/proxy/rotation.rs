//! Key rotation while bots flood the gateway with tokens naming made-up key ids: a token from
//! a freshly published key is accepted within 5 s, and the issuer sees at most one key-set
//! fetch per cooldown (3 s by default) however fast the flood comes.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use gateway::auth::Algorithm;
use gateway::jwks::JwksConfig;
use serde_json::json;

use crate::{
    helpers::{detail, spawn_gateway_with},
    support::issuer::{b64, Issuer},
};

/// A token naming `kid`, which nobody published; its signature is never checked.
fn token_with_kid(issuer: &Issuer, kid: &str) -> String {
    let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(issuer.claims("user-1").to_string()),
        b64([7u8; 64])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_accepted_within_5_s_while_unknown_kids_flood_and_fetches_stay_bounded() {
    // The default concurrency limit: requests waiting for a key-set fetch hold a slot each.
    let gateway =
        spawn_gateway_with(|settings| settings.limits.max_concurrent_requests = 1024).await;
    let cooldown = JwksConfig::DEFAULT_UNKNOWN_KID_COOLDOWN;
    assert_eq!(
        gateway.issuer.auth_config().jwks.unknown_kid_cooldown,
        cooldown,
        "the test runs with the default cooldown"
    );

    let window_start = Instant::now();
    let fetches_before = gateway.issuer.fetches();
    // The flood: 4 bots each starting a request with a new made-up kid every 5 ms, without
    // waiting for the answers (up to 100 open), so requests keep arriving while earlier ones
    // wait.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..4)
        .map(|bot| {
            let url = gateway.url("/api/user-1/tasks");
            let http = gateway.http.clone();
            let tokens: Vec<String> = (0..3_000)
                .map(|n| token_with_kid(&gateway.issuer, &format!("bot-{bot}-{n}")))
                .collect();
            let (stop, sent, unexpected) = (stop.clone(), sent.clone(), unexpected.clone());
            tokio::spawn(async move {
                let mut requests = tokio::task::JoinSet::new();
                for token in tokens.into_iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Each bot keeps at most 100 requests open (64 may wait for a fetch): on
                    // a slow machine the flood must not outgrow what the gateway can take
                    // and queue the honest request behind thousands of its own.
                    if requests.len() >= 100 {
                        requests.join_next().await.unwrap().unwrap();
                    }
                    let (http, url, unexpected) = (http.clone(), url.clone(), unexpected.clone());
                    requests.spawn(async move {
                        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
                        // Anything but "unknown key" (503 for overload, say) is a failure.
                        let status = response.status();
                        if status != 401 || detail(response).await != "Invalid token: unknown key" {
                            unexpected.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    sent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                while let Some(done) = requests.join_next().await {
                    done.unwrap();
                }
            })
        })
        .collect();
    // Well into the flood: its first kid has caused a fetch and the cooldown is running.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sent.load(Ordering::Relaxed) > 0, "the flood is running");

    let new_key = gateway.issuer.add_key(Algorithm::EdDsa);
    let published = Instant::now();
    let honest = new_key.mint(&new_key.header(), &gateway.issuer.claims("user-1"));
    let mut attempts = 0;
    let accepted_after = loop {
        attempts += 1;
        let response = gateway
            .http
            .get(gateway.url("/api/user-1/tasks"))
            .bearer_auth(&honest)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break published.elapsed();
        }
        assert!(
            published.elapsed() < Duration::from_secs(5),
            "a token from the new key was still refused 5 s after publication ({attempts} tries)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        accepted_after < Duration::from_secs(5),
        "{accepted_after:?}"
    );

    // Keep flooding for a few more cooldowns, then count what the issuer saw.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.unwrap();
    }
    let window = window_start.elapsed();
    let fetches = gateway.issuer.fetches() - fetches_before;
    let sent = sent.load(Ordering::Relaxed);
    // At most one fetch per cooldown, plus the one the flood's first kid asked for at once.
    let bound = (window.as_secs_f64() / cooldown.as_secs_f64()).floor() as usize + 1;
    assert!(
        fetches <= bound,
        "{fetches} fetches in {window:?} with a {cooldown:?} cooldown (bound {bound})"
    );
    assert!(fetches >= 2, "the flood and the new key were fetched for");
    assert_eq!(
        unexpected.load(Ordering::Relaxed),
        0,
        "of {sent} flood requests"
    );
    eprintln!(
        "flood: {sent} requests in {window:?}; issuer fetches: {fetches}; new key accepted \
         after {accepted_after:?} ({attempts} tries)"
    );
}
