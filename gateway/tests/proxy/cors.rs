//! CORS: preflights answered by the gateway, credentials only for listed origins, `Vary`.

use crate::helpers::{spawn_gateway, ALLOWED_ORIGIN};

#[tokio::test]
async fn a_preflight_from_a_listed_origin_is_answered_without_a_token() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .request(reqwest::Method::OPTIONS, gateway.url("/api/alice/tasks"))
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "Authorization, Content-Type, X-Evil",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert!(headers.get("access-control-max-age").is_some());
    let vary: Vec<_> = headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(vary.contains(&"Origin"), "{vary:?}");
    assert!(
        vary.iter()
            .any(|v| v.contains("Access-Control-Request-Method")),
        "{vary:?}"
    );
    assert!(
        gateway.upstream.seen().is_empty(),
        "preflights stay at the gateway"
    );
}

#[tokio::test]
async fn a_preflight_from_an_unlisted_origin_gets_no_cors_headers() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .request(reqwest::Method::OPTIONS, gateway.url("/api/alice/tasks"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(response
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn actual_responses_allow_listed_origins_only_and_always_vary_on_origin() {
    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    let listed = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&token)
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        ALLOWED_ORIGIN
    );
    assert_eq!(listed.headers()["access-control-allow-credentials"], "true");
    assert_eq!(
        listed.headers()["access-control-expose-headers"],
        "x-request-id, x-total-count, link, set-auth-jwt"
    );
    assert_eq!(vary(&listed), ["accept", "Origin"]);

    let unlisted = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(unlisted.status(), 200);
    assert!(unlisted
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(vary(&unlisted), ["accept", "Origin"]);

    // A refusal a browser must be able to read carries the CORS headers too.
    let refused = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        ALLOWED_ORIGIN
    );
}

/// The response's `Vary` values: the test upstream's own, then the gateway's.
fn vary(response: &reqwest::Response) -> Vec<&str> {
    response
        .headers()
        .get_all("vary")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect()
}
