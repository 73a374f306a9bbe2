//! Identity: only a valid credential from a key the service holds makes a request someone's.

use http::Method;
use proto_shared::{
    client::TasksClient, identity::unix_now, Audience, BodyDigest, CreateTask, Signer, UserId,
    Verifier,
};
use serde_json::json;

use crate::helpers::{
    ring, spawn_app, spawn_app_with, test_settings, url_for, Answer, ADMIN_URL, GATEWAY_KEY,
    REPORTS_KEY,
};

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    Answer::from(request.send().await.unwrap()).await
}

#[tokio::test]
async fn no_identity_is_401_not_authenticated() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/api/alice/tasks"),
        (Method::POST, "/api/alice/tasks"),
        (Method::GET, "/api/alice/tasks/1"),
        (Method::PUT, "/api/alice/tasks/1"),
        (Method::DELETE, "/api/alice/tasks/1"),
        (Method::PATCH, "/api/alice/tasks/1/complete"),
    ] {
        let answer = answer(app.raw(method.clone(), path)).await;
        assert_eq!(answer.status, 401, "{method} {path}");
        assert_eq!(answer.detail(), "Not authenticated");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn a_spoofed_user_header_without_credential_is_401_and_never_used() {
    let app = spawn_app().await;
    let spoofed = answer(
        app.raw(Method::POST, "/api/alice/tasks")
            .header("x-user-id", "alice")
            .json(&json!({"title": "planted"})),
    )
    .await;
    assert_eq!(spoofed.status, 401);
    assert_eq!(spoofed.detail(), "Not authenticated");
    // Foreign identity headers mean nothing here.
    let foreign = answer(
        app.raw(Method::GET, "/api/alice/tasks")
            .header("x-forwarded-user", "alice")
            .header("remote-user", "alice"),
    )
    .await;
    assert_eq!(foreign.status, 401);
    assert_eq!(
        app.user("alice").list("").await.body,
        json!([]),
        "nothing was planted"
    );
}

#[tokio::test]
async fn unknown_keys_wrong_secrets_and_stale_credentials_are_401() {
    let now = unix_now();
    // As if the service had run for a minute: a credential signed before it started is
    // refused for another reason (`a_credential_spent_before_a_restart_is_refused_after_it`).
    let app = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = s.verifier.clone().remembering_since(now - 60)
    })
    .await;
    let path = "/api/alice/tasks";
    // Offsets from the clock at signing time, 15 s clear of the 30 s window's edges: the
    // service reads its own clock later, and a slow CI machine must not move a case across
    // an edge (the edges themselves are unit-tested against a fixed clock in proto-shared).
    let cases = [
        (
            "unknown key",
            "intruder:intruder-secret-0123456789abcdef-01",
            0,
        ),
        (
            "wrong secret",
            "gateway:not-the-gateway-secret-0123456789abcdef",
            0,
        ),
        ("expired", GATEWAY_KEY, -45),
        ("from the future", GATEWAY_KEY, 45),
    ];
    for (case, key, offset) in cases {
        let signed = app.signed_with(key, Method::GET, path, "alice", unix_now() + offset);
        let answer = answer(signed).await;
        assert_eq!(answer.status, 401, "{case}");
        assert_eq!(answer.detail(), "Not authenticated", "{case}");
    }
    let within = app.signed_with(GATEWAY_KEY, Method::GET, path, "alice", unix_now() - 15);
    assert_eq!(answer(within).await.status, 200, "within the window");
    let metrics = app.metrics_text().await;
    for line in [
        r#"tasks_identity_refusals_total{reason="unknown_key"} 1"#,
        r#"tasks_identity_refusals_total{reason="bad_signature"} 1"#,
        r#"tasks_identity_refusals_total{reason="stale"} 2"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(!metrics.contains("gateway-secret"));
}

#[tokio::test]
async fn a_credential_is_bound_to_method_path_query_and_user() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("mine").await;
    let task_path = format!("/api/alice/tasks/{id}");
    let sign = |method: Method, path: &str, user: &str| {
        Signer::new(&ring(GATEWAY_KEY), Audience::default()).sign(
            &method,
            path,
            &UserId::parse(user).unwrap(),
            BodyDigest::EMPTY,
            unix_now(),
        )
    };
    let send = |method: Method, path: &str, identity: proto_shared::IdentityHeaders| {
        app.raw(method, path)
            .header("x-user-id", identity.user_id)
            .header("x-identity-credential", identity.credential)
    };
    // Signed for GET, sent as DELETE.
    let answer1 = answer(send(
        Method::DELETE,
        &task_path,
        sign(Method::GET, &task_path, "alice"),
    ))
    .await;
    assert_eq!(answer1.status, 401);
    // Signed for one path, sent to another.
    let other = "/api/alice/tasks/999";
    assert_eq!(
        answer(send(
            Method::GET,
            other,
            sign(Method::GET, &task_path, "alice")
        ))
        .await
        .status,
        401
    );
    // Query string added after signing.
    let listed = "/api/alice/tasks";
    let with_query = "/api/alice/tasks?status=completed";
    assert_eq!(
        answer(send(
            Method::GET,
            with_query,
            sign(Method::GET, listed, "alice")
        ))
        .await
        .status,
        401
    );
    // User header swapped after signing.
    let mut identity = sign(Method::GET, "/api/bob/tasks", "alice");
    identity.user_id = http::HeaderValue::from_static("bob");
    assert_eq!(
        answer(send(Method::GET, "/api/bob/tasks", identity))
            .await
            .status,
        401
    );
    // Identity headers sent twice.
    let identity = sign(Method::GET, listed, "alice");
    let doubled = send(Method::GET, listed, identity.clone()).header("x-user-id", "alice");
    assert_eq!(answer(doubled).await.status, 401);

    assert_eq!(alice.get(id).await.status, 200, "the task is untouched");
}

#[tokio::test]
async fn in_cluster_callers_sign_with_their_own_key() {
    let app = spawn_app().await;
    let now = unix_now();
    let created = answer(
        app.signed_body_with(
            REPORTS_KEY,
            Method::POST,
            "/api/alice/tasks",
            "alice",
            json!({"title": "from reports"}).to_string().into_bytes(),
            now,
        )
        .header("content-type", "application/json"),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        app.user("alice").list("").await.body[0]["title"],
        "from reports"
    );
}

#[tokio::test]
async fn rotated_keys_keep_working_until_removed() {
    const NEW: &str = "gw-2:second-gateway-secret-0123456789abcdef";
    // During rotation the service accepts both keys.
    let both = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = Verifier::new(
            ring(&format!("{NEW},{GATEWAY_KEY}")),
            30,
            Audience::default(),
        )
    })
    .await;
    for key in [NEW, GATEWAY_KEY] {
        let request = both.signed_with(key, Method::GET, "/api/alice/tasks", "alice", unix_now());
        assert_eq!(answer(request).await.status, 200, "{key}");
    }
    // After it, the old key is refused.
    let rotated = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = Verifier::new(ring(NEW), 30, Audience::default())
    })
    .await;
    let old = rotated.signed_with(
        GATEWAY_KEY,
        Method::GET,
        "/api/alice/tasks",
        "alice",
        unix_now(),
    );
    assert_eq!(answer(old).await.status, 401);
    let new = rotated.signed_with(NEW, Method::GET, "/api/alice/tasks", "alice", unix_now());
    assert_eq!(answer(new).await.status, 200);
}

/// One request as it left a signer: what an eavesdropper between caller and service sees.
struct Captured {
    method: Method,
    target: String,
    user_id: String,
    credential: String,
    body: Vec<u8>,
}

impl Captured {
    /// The captured request sent to `app` again, with `body` in place of its own.
    fn replay(&self, app: &crate::helpers::TestApp, body: &[u8]) -> reqwest::RequestBuilder {
        app.raw(self.method.clone(), &self.target)
            .header("x-user-id", &self.user_id)
            .header("x-identity-credential", &self.credential)
            .header("content-type", "application/json")
            .body(body.to_vec())
    }
}

/// A listener standing in for the service, as a wiretap would: it keeps the first request
/// sent to it and answers 503 so the caller gives up.
struct Wiretap(tokio::net::TcpListener);

impl Wiretap {
    async fn bind() -> Self {
        Self(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    /// Runs `calls` and returns the first request they sent here.
    async fn capture(self, calls: impl std::future::Future<Output = ()>) -> Captured {
        let (captured, ()) = tokio::join!(self.accept_one(), calls);
        captured
    }

    async fn accept_one(self) -> Captured {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = self.0.accept().await.unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head_len, body_len) = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the caller hung up before sending a whole head");
            bytes.extend_from_slice(&chunk[..n]);
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                break (end + 4, length);
            }
        };
        while bytes.len() < head_len + body_len {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the caller hung up before sending its whole body");
            bytes.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let head = String::from_utf8(bytes[..head_len].to_vec()).unwrap();
        let mut request_line = head.lines().next().unwrap().split(' ');
        let method = Method::from_bytes(request_line.next().unwrap().as_bytes()).unwrap();
        let target = request_line.next().unwrap().to_owned();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("no {name} header in\n{head}"))
        };
        Captured {
            method,
            target,
            user_id: header("x-user-id"),
            credential: header("x-identity-credential"),
            body: bytes[head_len..].to_vec(),
        }
    }
}

#[tokio::test]
async fn a_captured_credential_cannot_be_replayed_re_aimed_or_given_another_body() {
    let app = spawn_app().await;
    // Another service that holds the same key but is another audience.
    let billing = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = Verifier::new(
            ring(&format!("{GATEWAY_KEY},{REPORTS_KEY}")),
            30,
            Audience::parse("billing").unwrap(),
        )
    })
    .await;

    // The typed in-cluster client sends a create; a wiretap keeps a copy.
    let tap = Wiretap::bind().await;
    let client = TasksClient::new(
        &tap.url(),
        Signer::new(&ring(REPORTS_KEY), Audience::default()),
    )
    .unwrap();
    let alice = UserId::parse("alice").unwrap();
    let new_task = CreateTask {
        title: "pay rent".into(),
        description: None,
    };
    let captured = tap
        .capture(async {
            let refused = client.create(&alice, &new_task).await;
            assert!(refused.is_err(), "the wiretap answers 503");
        })
        .await;
    assert!(
        captured.credential.starts_with("v2;"),
        "{}",
        captured.credential
    );

    // Delivered once, as sent: it is honoured.
    let original = captured.body.clone();
    assert_eq!(answer(captured.replay(&app, &original)).await.status, 201);

    // With another body.
    let forged = answer(captured.replay(&app, br#"{"title":"wire money to mallory"}"#)).await;
    assert_eq!((forged.status, forged.detail()), (401, "Not authenticated"));
    // To another service that shares the key.
    let re_aimed = answer(captured.replay(&billing, &original)).await;
    assert_eq!(
        (re_aimed.status, re_aimed.detail()),
        (401, "Not authenticated")
    );
    // A second time, exactly as captured.
    let replayed = answer(captured.replay(&app, &original)).await;
    assert_eq!(
        (replayed.status, replayed.detail()),
        (401, "Not authenticated")
    );

    let metrics = app.metrics_text().await;
    for line in [
        r#"tasks_identity_refusals_total{reason="body_mismatch"} 1"#,
        r#"tasks_identity_refusals_total{reason="replayed"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    let billing_metrics = billing.metrics_text().await;
    let line = r#"tasks_identity_refusals_total{reason="wrong_audience"} 1"#;
    assert!(
        billing_metrics.contains(line),
        "missing {line} in\n{billing_metrics}"
    );
    let titles = app.user("alice").list("").await.body;
    assert_eq!(
        titles.as_array().unwrap().len(),
        1,
        "one task, not three: {titles}"
    );
    assert_eq!(titles[0]["title"], "pay rent");
}

#[tokio::test]
async fn one_user_spending_credentials_fast_is_told_to_wait_and_no_one_else_is() {
    let app = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = s.verifier.clone().replay_per_user(3);
    })
    .await;
    let mallory = app.user("mallory");
    for _ in 0..3 {
        assert_eq!(mallory.list("").await.status, 200);
    }
    let refused = app
        .signed(Method::GET, "/api/mallory/tasks", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    // The freshness window (30 s here): by then the user's oldest credentials have expired.
    assert_eq!(refused.headers()["retry-after"], "30");
    let refused = Answer::from(refused).await;
    assert_eq!(refused.detail(), "Too many requests");
    // Everyone else still gets in: one user cannot spend the memory that guards them all.
    assert_eq!(app.user("alice").list("").await.status, 200);
    assert!(app.user("bob").create_titled("mine").await > 0);

    let counted = r#"tasks_identity_refusals_total{reason="user_share_full"} 1"#;
    let metrics = app.metrics_text().await;
    assert!(metrics.contains(counted), "missing {counted} in\n{metrics}");
}

#[tokio::test]
async fn v1_credentials_are_refused_unless_allowed_for_an_upgrade_and_then_counted() {
    let strict = spawn_app().await;
    let lenient = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = s.verifier.clone().accept_v1(true);
    })
    .await;
    let path = "/api/alice/tasks";
    for (app, status) in [(&strict, 401), (&lenient, 200)] {
        let (user_id, credential) = v1_credential(GATEWAY_KEY, path, "alice", unix_now());
        let sent = app
            .raw(Method::GET, path)
            .header("x-user-id", user_id)
            .header("x-identity-credential", credential);
        assert_eq!(answer(sent).await.status, status);
    }
    let refused = r#"tasks_identity_refusals_total{reason="version_refused"} 1"#;
    assert!(strict.metrics_text().await.contains(refused));
    let counted = "tasks_identity_v1_accepted_total 1";
    assert!(lenient.metrics_text().await.contains(counted));
}

/// A v1 credential as signers before v2 wrote it, for GET `path`.
fn v1_credential(key: &str, path: &str, user: &str, ts: i64) -> (String, String) {
    let user = UserId::parse(user).unwrap();
    let identity =
        Signer::new(&ring(key), Audience::default()).sign_v1(&Method::GET, path, &user, ts);
    (
        identity.user_id.to_str().unwrap().to_owned(),
        identity.credential.to_str().unwrap().to_owned(),
    )
}

/// Headers of a bodiless request signed by the gateway key at `ts`, as raw header lines.
fn signed_lines(method: &Method, target: &str, user: &str, ts: i64) -> String {
    let identity = Signer::new(&ring(GATEWAY_KEY), Audience::default()).sign(
        method,
        target,
        &UserId::parse(user).unwrap(),
        BodyDigest::EMPTY,
        ts,
    );
    format!(
        "{}: {}\r\n{}: {}\r\n",
        proto_shared::headers::USER_ID,
        identity.user_id.to_str().unwrap(),
        proto_shared::headers::IDENTITY_CREDENTIAL,
        identity.credential.to_str().unwrap(),
    )
}

/// Waits (polling the clock, no fixed sleep) until the Unix second is past `ts`.
async fn until_past(ts: i64) {
    while unix_now() <= ts {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_copy_whose_body_arrives_after_the_window_closed_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A five-second window: short, so the test waits at most about six, yet long enough
    // that the real request (a committed write) and the copy's head both fit in it on a
    // loaded machine.
    const WINDOW: i64 = 5;
    let app = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = Verifier::new(ring(GATEWAY_KEY), WINDOW as u32, Audience::default())
    })
    .await;
    let alice = app.user("alice");
    let id = alice.create_titled("toggled once").await;
    let target = format!("/api/alice/tasks/{id}/complete");
    let ts = unix_now();
    let lines = signed_lines(&Method::PATCH, &target, "alice", ts);

    // The real request, as the gateway sent it.
    let mut real = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!("PATCH {target} HTTP/1.1\r\nhost: t\r\n{lines}content-length: 0\r\n\r\n");
    real.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = real.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    // A captured copy: its head arrives inside the window, its (empty, chunked) body only
    // once the window has closed, when the memory may have forgotten the first use.
    let mut copy = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head =
        format!("PATCH {target} HTTP/1.1\r\nhost: t\r\n{lines}transfer-encoding: chunked\r\n\r\n");
    copy.write_all(head.as_bytes()).await.unwrap();
    until_past(ts + WINDOW).await;
    copy.write_all(b"0\r\n\r\n").await.unwrap();
    let n = copy.read(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");

    assert_eq!(
        alice.get(id).await.body["completed"],
        true,
        "toggled once only"
    );
    assert!(
        app.metrics_text()
            .await
            .contains(r#"tasks_identity_refusals_total{reason="stale"} 1"#),
        "the refusal is counted as stale"
    );
}

#[tokio::test]
async fn a_body_that_never_comes_is_waited_for_only_while_the_credential_is_fresh() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const WINDOW: i64 = 2;
    let app = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = Verifier::new(ring(GATEWAY_KEY), WINDOW as u32, Audience::default())
    })
    .await;
    let target = "/api/alice/tasks";
    let ts = unix_now();
    let lines = signed_lines(&Method::POST, target, "alice", ts);
    // A head with a fresh credential that announces a body and never sends it.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!("POST {target} HTTP/1.1\r\nhost: t\r\n{lines}content-length: 5\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    // Fresh until the end of second ts + WINDOW: at most three seconds from now, then 401.
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the service still waits for a body whose credential went stale")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(
        unix_now() > ts + WINDOW,
        "refused while still fresh: {text}"
    );
    assert!(
        app.metrics_text()
            .await
            .contains(r#"tasks_identity_refusals_total{reason="stale"} 1"#),
        "the refusal is counted as stale"
    );
    assert_eq!(app.user("alice").list("").await.body, json!([]));
}

#[tokio::test]
async fn a_credential_spent_before_a_restart_is_refused_after_it() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("toggled once").await;
    let target = format!("/api/alice/tasks/{id}/complete");
    let ts = unix_now();
    let original = || app.signed_with(GATEWAY_KEY, Method::PATCH, &target, "alice", ts);
    assert_eq!(answer(original()).await.status, 200);

    // The service restarts within the credential's window: a new process on the same
    // database, whose memory of spent nonces begins now.
    until_past(ts).await;
    let restarted =
        tasks_service::Application::build(test_settings(&url_for(ADMIN_URL, &app.db_name)))
            .await
            .expect("the service starts again");
    let addr = restarted.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(restarted.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let replay = original()
        .build()
        .map(|mut request| {
            let url = format!("http://{addr}{target}").parse().unwrap();
            *request.url_mut() = url;
            request
        })
        .unwrap();
    let replayed = Answer::from(app.http.execute(replay).await.unwrap()).await;
    assert_eq!(
        (replayed.status, replayed.detail()),
        (401, "Not authenticated")
    );
    let metrics = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tasks_identity_refusals_total{reason="signed_before_start"} 1"#),
        "{metrics}"
    );

    let _ = stop.send(());
    server.await.unwrap();
    assert_eq!(
        alice.get(id).await.body["completed"],
        true,
        "toggled once only"
    );
}

#[tokio::test]
async fn a_clock_that_stepped_back_past_the_skew_is_unready_until_it_catches_up() {
    // The memory of spent credentials has judged one at 40 s from now, past the 30 s skew:
    // to this instance, its clock has stepped back by that much.
    let ahead = unix_now() + 40;
    let app = spawn_app_with(ADMIN_URL, |settings| {
        let mut headers = http::HeaderMap::new();
        Signer::new(&ring(GATEWAY_KEY), Audience::default())
            .sign(
                &Method::GET,
                "/",
                &UserId::parse("alice").unwrap(),
                BodyDigest::EMPTY,
                ahead,
            )
            .insert_into(&mut headers);
        settings
            .verifier
            .verify(&Method::GET, "/", &headers, b"", ahead)
            .unwrap();
    })
    .await;
    let ready = answer(app.raw(Method::GET, "/readyz")).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    // Every fresh credential is refused meanwhile: the instance is rightly out of rotation.
    let refused = answer(app.signed(Method::GET, "/api/alice/tasks", "alice")).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    // Once the clock is within the skew again (in about 10 s), ready and serving.
    app.until_readyz(
        200,
        std::time::Duration::from_secs(30),
        "not ready once the clock caught up",
    )
    .await;
    let served = answer(app.signed(Method::GET, "/api/alice/tasks", "alice")).await;
    assert_eq!(served.status, 200, "{served:?}");
}
