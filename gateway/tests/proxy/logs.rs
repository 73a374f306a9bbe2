//! One log line per request, with what an operator needs and never a token.

use crate::{helpers::spawn_gateway, support::logs::Captured};

// A current-thread runtime (tokio::test's default) runs the gateway's tasks on this thread,
// so the thread-local subscriber sees their events.
#[tokio::test]
async fn each_request_logs_id_route_status_and_reason_but_never_the_token() {
    let captured = Captured::default();
    let _guard = captured.install("gateway=info");

    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    let forbidden = gateway
        .http
        .get(gateway.url("/api/bob/tasks"))
        .bearer_auth(&token)
        .header("x-request-id", "log-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let forged = format!("{token}x");
    gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&forged)
        .header("x-request-id", "log-test-2")
        .send()
        .await
        .unwrap();

    let text = captured.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["message"] == "request")
        .collect();
    let line = |id: &str| {
        lines
            .iter()
            .find(|line| line["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line for {id} in {text}"))
            .clone()
    };
    let first = line("log-test-1");
    assert_eq!(first["route"], "api");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 403);
    assert_eq!(first["reason"], "forbidden_user");
    assert!(first["latency_ms"].is_number());
    let second = line("log-test-2");
    assert_eq!(second["status"], 401);
    assert_eq!(second["reason"], "bad_signature");
    assert!(
        !text.contains(&token[20..]),
        "a token reached the log:\n{text}"
    );
    assert!(!text.to_ascii_lowercase().contains("bearer "), "{text}");
}

#[tokio::test]
async fn a_wrong_issuer_is_logged_with_the_issuer_the_gateway_expects() {
    let captured = Captured::default();
    let _guard = captured.install("gateway=info");

    let gateway = spawn_gateway().await;
    let key = gateway.issuer.key(gateway::auth::Algorithm::EdDsa);
    let mut claims = gateway.issuer.claims("alice");
    let expected = claims["iss"].clone();
    claims["iss"] = serde_json::json!("https://elsewhere.example");
    let token = key.mint(&key.header(), &claims);
    let response = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let text = captured.text();
    let line = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "token refused: wrong issuer")
        .unwrap_or_else(|| panic!("no wrong-issuer line in {text}"));
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["expected"], expected);
    assert!(
        line["found"]
            .as_str()
            .is_some_and(|found| found.contains("https://elsewhere.example")),
        "{line}"
    );
}
