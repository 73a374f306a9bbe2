//! Scenarios that run the same against any stack: processes started by [`crate::stack`] or
//! the containers compose started, reached only through the gateway's URL.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    api::{Answer, Api},
    better_auth::{decode_unverified, Session},
};

/// Two users sign up through the gateway's public route and drive all six endpoints; each
/// sees only their own tasks. `alg` is what Better Auth is configured to sign with; `logs`
/// adds the stack's logs to a failure message.
pub async fn two_users_drive_all_six_endpoints_and_stay_isolated(
    gateway_url: &str,
    alg: &str,
    logs: &dyn Fn() -> String,
) {
    // Sign-up through the gateway's public route, as a one-origin frontend does.
    let alice = Session::sign_up(gateway_url, "alice").await;
    let bob = Session::sign_up(gateway_url, "bob").await;

    let alice_token = alice.token().await;
    let (header, claims) = decode_unverified(&alice_token);
    assert_eq!(
        header["alg"], alg,
        "Better Auth signed with the configured algorithm"
    );
    assert_eq!(claims["sub"], alice.user_id.as_str());
    let alice_api = Api::new(gateway_url, &alice_token);
    let bob_api = Api::new(gateway_url, &bob.token().await);
    let a = format!("/api/{}/tasks", alice.user_id);
    let b = format!("/api/{}/tasks", bob.user_id);

    // Create, read, list.
    let created = alice_api
        .call(
            Method::POST,
            &a,
            Some(json!({"title": "  Buy milk  ", "description": "2 litres"})),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{:?}\n{}",
        created.body,
        logs()
    );
    assert_eq!(created.body["title"], "Buy milk");
    assert_eq!(created.body["user_id"], alice.user_id.as_str());
    assert_eq!(created.body["completed"], false);
    let id = created.body["id"].as_i64().expect("an integer id");
    let one = format!("{a}/{id}");
    expect(
        alice_api.call(Method::GET, &one, None).await,
        StatusCode::OK,
    );
    let list = expect(alice_api.call(Method::GET, &a, None).await, StatusCode::OK);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));

    // The JWT from the set-auth-jwt header works as well as the one from /token.
    let header_api = alice_api.with_token(&alice.session_header_token().await);
    expect(
        header_api.call(Method::GET, &one, None).await,
        StatusCode::OK,
    );

    // Update, toggle, set.
    let updated = expect(
        alice_api
            .call(
                Method::PUT,
                &one,
                Some(json!({"title": "Buy oat milk", "description": null})),
            )
            .await,
        StatusCode::OK,
    );
    assert_eq!(updated.body["title"], "Buy oat milk");
    assert_eq!(updated.body["description"], serde_json::Value::Null);
    let toggled = expect(
        alice_api
            .call(Method::PATCH, &format!("{one}/complete"), None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(toggled.body["completed"], true);
    let set = expect(
        alice_api
            .call(
                Method::PATCH,
                &format!("{one}/complete"),
                Some(json!({"completed": true})),
            )
            .await,
        StatusCode::OK,
    );
    assert_eq!(set.body["completed"], true, "setting is idempotent");

    // Bob can neither see nor touch Alice's task, and his list holds none of hers.
    expect(
        bob_api
            .call(Method::POST, &b, Some(json!({"title": "Bob's own"})))
            .await,
        StatusCode::CREATED,
    );
    for (method, path, body) in [
        (Method::GET, format!("{b}/{id}"), None),
        (
            Method::PUT,
            format!("{b}/{id}"),
            Some(json!({"title": "hijacked"})),
        ),
        (Method::PATCH, format!("{b}/{id}/complete"), None),
        (Method::DELETE, format!("{b}/{id}"), None),
    ] {
        let answer = bob_api.call(method.clone(), &path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "Bob {method} {path}: {:?}",
            answer.body
        );
    }
    let bobs = expect(bob_api.call(Method::GET, &b, None).await, StatusCode::OK);
    let titles: Vec<_> = bobs
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].clone())
        .collect();
    assert_eq!(titles, vec![json!("Bob's own")]);
    // Bob's token on Alice's paths is refused outright.
    for (method, path) in [
        (Method::GET, a.clone()),
        (Method::GET, one.clone()),
        (Method::DELETE, one.clone()),
    ] {
        let answer = bob_api.call(method.clone(), &path, None).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "Bob {method} {path}: {:?}",
            answer.body
        );
    }
    let after = expect(
        alice_api.call(Method::GET, &one, None).await,
        StatusCode::OK,
    );
    assert_eq!(
        after.body["title"], "Buy oat milk",
        "Bob's attempts changed nothing"
    );

    // Delete.
    let deleted = alice_api.call(Method::DELETE, &one, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    expect(
        alice_api.call(Method::GET, &one, None).await,
        StatusCode::NOT_FOUND,
    );

    // No token, or a garbage one: 401 with the RFC 6750 challenge.
    let anonymous = Api::new(gateway_url, "not-a-jwt")
        .call(Method::GET, &a, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous
        .www_authenticate
        .unwrap_or_default()
        .contains("invalid_token"));
}

/// Asserts the status, showing the body when it is wrong, and passes the answer on.
pub fn expect(answer: Answer, status: StatusCode) -> Answer {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    answer
}
