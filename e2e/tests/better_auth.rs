//! The bridge against the real issuer: a Better Auth server (npm `better-auth`, JWT plugin)
//! signs users up and in over HTTP; their JWTs drive all six endpoints through the gateway
//! into tasks-service, for every algorithm Better Auth can sign with.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use e2e::{
    api::Api,
    better_auth::{decode_unverified, Session},
    scenarios::{expect, two_users_drive_all_six_endpoints_and_stay_isolated},
    stack::{Stack, StackOptions},
};
use reqwest::{header, Method, StatusCode};
use serde_json::json;

macro_rules! for_every_algorithm {
    ($($test:ident => $alg:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            let stack = Stack::start(&format!("algorithm-{}", $alg), StackOptions::new($alg)).await;
            two_users_drive_all_six_endpoints_and_stay_isolated(&stack.gateway_url, $alg, &|| {
                stack.logs()
            })
            .await;
        }
    )*};
}

for_every_algorithm! {
    eddsa_tokens_drive_the_task_api => "EdDSA",
    es256_tokens_drive_the_task_api => "ES256",
    rs256_tokens_drive_the_task_api => "RS256",
    ps256_tokens_drive_the_task_api => "PS256",
    es512_tokens_drive_the_task_api => "ES512",
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_keys_are_picked_up_without_a_restart_and_old_ones_work_until_withdrawn() {
    // Better Auth rotates every 3 s and keeps an expired key published for 15 s more; the
    // gateway refreshes its key set every second so the withdrawal shows quickly.
    let mut options = StackOptions::new("EdDSA");
    options.rotation = Some((3, 15));
    options.gateway_env.push(("JWKS_REFRESH_SECS", "1".into()));
    let stack = Stack::start("rotation", options).await;
    let alice = Session::sign_up(&stack.gateway_url, "alice").await;
    let tasks = format!("/api/{}/tasks", alice.user_id);

    let old_token = alice.token().await;
    let old_kid = decode_unverified(&old_token).0["kid"].clone();
    let old_api = Api::new(&stack.gateway_url, &old_token);
    expect(
        old_api.call(Method::GET, &tasks, None).await,
        StatusCode::OK,
    );

    // Better Auth rotates lazily: a token signed after the interval carries a new key.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_token = loop {
        let token = alice.token().await;
        if decode_unverified(&token).0["kid"] != old_kid {
            break token;
        }
        assert!(
            Instant::now() < deadline,
            "Better Auth did not rotate its key within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let new_api = Api::new(&stack.gateway_url, &new_token);
    let answer = new_api.call(Method::GET, &tasks, None).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "new key accepted: {:?}\n{}",
        answer.body,
        stack.logs()
    );
    assert!(
        published_kids(&stack).await.contains(&old_kid),
        "the grace period keeps the old key published"
    );
    let answer = old_api.call(Method::GET, &tasks, None).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "old key still published, still accepted: {:?}",
        answer.body
    );

    // Once Better Auth withdraws the old key, the gateway stops accepting its tokens, even
    // though the token itself has not expired and was verified (and cached) before.
    let deadline = Instant::now() + Duration::from_secs(60);
    while published_kids(&stack).await.contains(&old_kid) {
        assert!(
            Instant::now() < deadline,
            "Better Auth still publishes the old key after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(25);
    let refused = loop {
        let answer = old_api.call(Method::GET, &tasks, None).await;
        if answer.status != StatusCode::OK {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "a token of a withdrawn key was still accepted after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        refused.body
    );

    // Meanwhile Better Auth has rotated again. The gateway spent its one unknown-kid fetch
    // per cooldown (30 s) on the first new key, so a second new key is refused until the
    // periodic refresh (every second here) brings it in: flood protection, by design.
    let fresh = Api::new(&stack.gateway_url, &alice.token().await);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fresh.call(Method::GET, &tasks, None).await.status != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the newest key was not picked up within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `kid`s Better Auth publishes right now.
async fn published_kids(stack: &Stack) -> Vec<serde_json::Value> {
    let jwks: serde_json::Value = reqwest::get(format!("{}/api/auth/jwks", stack.auth_url))
        .await
        .expect("reach Better Auth")
        .json()
        .await
        .expect("JWKS is JSON");
    jwks["keys"]
        .as_array()
        .expect("a keys array")
        .iter()
        .map(|k| k["kid"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_better_auth_token_is_refused() {
    let mut options = StackOptions::new("EdDSA");
    // Short, yet long enough for sign-up's token to reach the gateway (which first fetches
    // the key Better Auth made for it) before it expires on a loaded machine.
    options.jwt_expiration = "10s";
    options.gateway_env.push(("JWT_LEEWAY_SECS", "0".into()));
    let stack = Stack::start("expiry", options).await;
    let alice = Session::sign_up(&stack.gateway_url, "alice").await;
    let tasks = format!("/api/{}/tasks", alice.user_id);
    let token = alice.token().await;
    let exp = decode_unverified(&token).1["exp"].as_i64().expect("exp");
    let api = Api::new(&stack.gateway_url, &token);
    expect(api.call(Method::GET, &tasks, None).await, StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(25);
    let refused = loop {
        let answer = api.call(Method::GET, &tasks, None).await;
        if answer.status != StatusCode::OK {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "a 10-second token was still accepted after 25 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        now >= exp,
        "refused only once expired (now {now}, exp {exp})"
    );
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("expired"),
        "{:?}",
        refused.body
    );
    assert!(refused
        .www_authenticate
        .unwrap_or_default()
        .contains("invalid_token"));

    // A fresh token from the same session works again.
    expect(
        Api::new(&stack.gateway_url, &alice.token().await)
            .call(Method::GET, &tasks, None)
            .await,
        StatusCode::OK,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_out_user_gets_no_token_until_signing_in_again() {
    let stack = Stack::start("sign-out", StackOptions::new("EdDSA")).await;
    let alice = Session::sign_up(&stack.gateway_url, "alice").await;
    let tasks = format!("/api/{}/tasks", alice.user_id);
    expect(
        Api::new(&stack.gateway_url, &alice.token().await)
            .call(Method::POST, &tasks, Some(json!({"title": "kept"})))
            .await,
        StatusCode::CREATED,
    );

    alice.sign_out().await;
    assert_eq!(
        alice.try_token().await,
        Err(StatusCode::UNAUTHORIZED),
        "a signed-out session yields no JWT"
    );

    let again = Session::sign_in(&stack.gateway_url, &alice.email).await;
    assert_eq!(again.user_id, alice.user_id);
    let list = expect(
        Api::new(&stack.gateway_url, &again.token().await)
            .call(Method::GET, &tasks, None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        list.body[0]["title"], "kept",
        "the user's tasks survive signing out"
    );
}

/// Better Auth limits sign-in attempts per client address (3 in 10 s), the address it reads
/// in the gateway's `X-Forwarded-For`: a client that names a new address on every attempt is
/// still the one client the gateway saw, and a client that names an address of its own (as
/// one behind a forward proxy does) is not counted with others. Clients connect from
/// different loopback addresses, which the gateway sees as different peers.
#[tokio::test(flavor = "multi_thread")]
async fn better_auths_sign_in_limit_counts_the_clients_the_gateway_saw() {
    let mut options = StackOptions::new("EdDSA");
    options.auth_rate_limit = true;
    let stack = Stack::start("sign-in-limit", options).await;
    let from = |address: &str| {
        reqwest::Client::builder()
            .local_address(address.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let attempt = |client: &reqwest::Client, forwarded_for: String| {
        client
            .post(format!("{}/api/auth/sign-in/email", stack.gateway_url))
            .header(header::ORIGIN, &stack.gateway_url)
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": "nobody@example.test", "password": "not-the-password"}))
            .send()
    };

    let mallory = from("127.0.0.2");
    let mut statuses = Vec::new();
    for n in 1..=4 {
        let response = attempt(&mallory, format!("198.51.100.{n}")).await.unwrap();
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "a new X-Forwarded-For on each attempt got past the limit\n{}",
        stack.logs()
    );
    let alice = from("127.0.0.3");
    let status = attempt(&alice, "203.0.113.7".to_owned())
        .await
        .unwrap()
        .status();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a client of its own was counted with another\n{}",
        stack.logs()
    );
}

/// The issuer refuses to start on a secret anyone can read, before it touches a database:
/// one too short (the env template's `REPLACE-ME`), and the one an earlier
/// `deploy/.env.example` published as a working example.
#[test]
fn the_issuer_refuses_published_and_placeholder_secrets_at_start() {
    let dir = e2e::stack::repo_root().join("deploy/better-auth");
    assert!(
        dir.join("node_modules/better-auth").is_dir(),
        "Better Auth's npm packages are missing: run `npm ci` in deploy/better-auth (scripts/test.sh does)"
    );
    for (secret, says) in [
        ("REPLACE-ME", "too short"),
        (
            "INSECURE-EXAMPLE-SECRET-for-ci-only-do-not-use",
            "an earlier deploy/.env.example published",
        ),
    ] {
        let out = e2e::stack::node(&dir, "server.mjs")
            .env("BETTER_AUTH_SECRET", secret)
            .env("BETTER_AUTH_URL", "http://127.0.0.1:1")
            // Nothing listens here: a server that got past its checks would fail differently.
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/better_auth")
            .output()
            .expect("node runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("BETTER_AUTH_SECRET") && stderr.contains(says),
            "{stderr}"
        );
        assert!(
            !stderr.contains(secret),
            "the secret is not echoed: {stderr}"
        );
    }
}
