//! HTTP/2 clients (cleartext, prior knowledge) are served and forwarded upstream as HTTP/1.1.

use crate::helpers::spawn_gateway;

#[tokio::test]
async fn an_http2_prior_knowledge_client_is_proxied() {
    let gateway = spawn_gateway().await;
    let http2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = http2
        .get(gateway.url("/api/alice/tasks?x=1"))
        .bearer_auth(gateway.token("alice"))
        .header("x-user-id", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-request-id").is_some());
    let seen = gateway.upstream.only();
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.target, "/api/alice/tasks?x=1");
    assert_eq!(seen.headers["x-user-id"], "alice");
    assert_eq!(
        seen.headers["x-forwarded-host"],
        gateway.address.to_string().as_str()
    );

    let missing = http2.get(gateway.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}
