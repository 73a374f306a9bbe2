//! The typed client against hand-written HTTP peers: what it does when the answer is a
//! redirect, or never comes. (Against the real service: tasks-service/tests/api/client.rs.)

use std::time::{Duration, Instant};

use proto_shared::{
    client::{ClientError, ListParams, TasksClient},
    headers, Audience, CreateTask, KeyRing, Signer, UserId,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

fn signer() -> Signer {
    let ring: KeyRing = "reports:a-secret-of-at-least-32-bytes-long"
        .parse()
        .unwrap();
    Signer::new(&ring, Audience::default())
}

/// Reads one request, head and `Content-Length` body, and returns it as text.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return String::from_utf8_lossy(&buf).into_owned();
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A peer that answers every request with `response`, sending each request it read to the
/// returned channel first.
async fn answering(response: String) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let request = read_request(&mut stream).await;
            let _ = seen.send(request);
            stream.write_all(response.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
        }
    });
    (url, requests)
}

/// A 307 from the base URL is where the signed request ends: the credential, the user id and
/// the body are not re-sent to the host `Location` names (reqwest keeps custom headers when
/// it follows a redirect to another host), and the caller gets the 307. Also when the
/// caller's builder asks for redirects to be followed.
#[tokio::test]
async fn a_redirect_is_an_error_and_is_not_followed() {
    // Where the redirect points: would answer 201 with a task, as a replaying attacker might.
    let (elsewhere, mut stolen) = answering(
        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
         connection: close\r\n\r\n{}"
            .into(),
    )
    .await;
    let (base, mut received) = answering(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/api/alice/tasks\r\n\
         content-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;

    let clients = [
        ("new", TasksClient::new(&base, signer()).unwrap()),
        (
            "with_client_builder(redirect limited(10))",
            TasksClient::with_client_builder(
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(10)),
                &base,
                signer(),
            )
            .unwrap(),
        ),
    ];
    let alice = UserId::parse("alice").unwrap();
    for (how, client) in clients {
        let task = CreateTask {
            title: "pay rent".into(),
            description: None,
        };
        match client.create(&alice, &task).await {
            Err(ClientError::Api { status, .. }) => assert_eq!(status, 307, "{how}"),
            other => panic!("{how}: expected the 307 as an API error, got {other:?}"),
        }
        let sent = received.try_recv().expect("the base URL got the request");
        let sent = sent.to_ascii_lowercase();
        assert!(
            sent.contains(headers::IDENTITY_CREDENTIAL.as_str()),
            "{how}: {sent}"
        );
        // The client call has returned: had it followed the redirect, the request would
        // already be here.
        assert!(
            stolen.try_recv().is_err(),
            "{how}: the credential went to the redirect target"
        );
    }
}

/// A peer that accepts the connection and never answers costs the caller the request
/// timeout, then a timeout error; not forever.
#[tokio::test]
async fn a_silent_service_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.push(stream); // open, silent
        }
    });
    let timeout = Duration::from_millis(300);
    let clients = [
        ("new", TasksClient::new(&base, signer()).unwrap()),
        // A bare builder, or one with a longer timeout, still gets the client's deadline.
        (
            "with_client_builder(timeout 1 h)",
            TasksClient::with_client_builder(
                reqwest::Client::builder().timeout(Duration::from_secs(3600)),
                &base,
                signer(),
            )
            .unwrap(),
        ),
    ];
    let alice = UserId::parse("alice").unwrap();
    for (how, client) in clients {
        let client = client.with_request_timeout(timeout);
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            client.list(&alice, &ListParams::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("{how}: still waiting after 10 s"));
        match outcome {
            Err(ClientError::Transport(e)) => assert!(e.is_timeout(), "{how}: {e:?}"),
            other => panic!("{how}: expected a timeout, got {other:?}"),
        }
        assert!(
            started.elapsed() >= timeout,
            "{how}: {:?}",
            started.elapsed()
        );
    }
}
