//! The typed client with a proxy named in the environment: its own test binary, since the
//! environment is the whole process's.

use proto_shared::{
    client::{ListParams, TasksClient},
    Audience, KeyRing, Signer, UserId,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// `TasksClient::new` goes to the service itself, never through `HTTP_PROXY`/`ALL_PROXY`: a
/// proxy would see every credential before the service spends it.
#[tokio::test]
async fn the_default_client_ignores_proxies_named_in_the_environment() {
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY"] {
        std::env::set_var(name, &proxy_url);
    }
    let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", service.local_addr().unwrap());
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
                   connection: close\r\n\r\n[]";
    let serve = |listener: TcpListener| async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        // A GET: its head is the whole request.
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            if stream.read(&mut byte).await.unwrap() == 0 {
                return;
            }
            request.push(byte[0]);
        }
        stream.write_all(answer).await.unwrap();
        stream.shutdown().await.unwrap();
    };
    let reached_service = tokio::spawn(serve(service));
    let reached_proxy = tokio::spawn(serve(proxy));

    let ring: KeyRing = "reports:a-secret-of-at-least-32-bytes-long"
        .parse()
        .unwrap();
    let client = TasksClient::new(&base, Signer::new(&ring, Audience::default())).unwrap();
    let user = UserId::parse("alice").unwrap();
    let tasks = client.list(&user, &ListParams::default()).await.unwrap();
    assert!(tasks.is_empty());
    // The answer came from one of the two; it was the service's if the service was reached
    // (a client that went through the proxy leaves the service's accept waiting).
    let served = tokio::time::timeout(std::time::Duration::from_secs(5), reached_service).await;
    assert!(
        served.is_ok_and(|task| task.is_ok()),
        "the service was never reached: the request went through HTTP_PROXY"
    );
    reached_proxy.abort();
}
