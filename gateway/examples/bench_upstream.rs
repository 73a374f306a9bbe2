//! The benchmark's upstream: answers every request with the same small JSON task list, over
//! HTTP/1.1 keep-alive, on one thread. Usage: `bench_upstream 127.0.0.1:9001 [socket path]`:
//! with a path, it answers on that Unix socket too (a sidecar's `TASKS_SERVICE_URL=unix:...`).

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::either::Either;

const BODY: &[u8] = br#"[{"id":1,"title":"Write the benchmark","description":null,"completed":false,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}]"#;

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let socket = std::env::args().nth(2);
    // One thread, so the upstream costs the same whichever proxy is in front of it.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, socket))
}

async fn serve(listen: String, socket: Option<String>) -> std::io::Result<()> {
    let listener = TcpListener::bind(&listen).await?;
    eprintln!("bench_upstream listening on {}", listener.local_addr()?);
    let unix = socket.map(UnixListener::bind).transpose()?;
    loop {
        let stream = match &unix {
            None => Either::Left(listener.accept().await?.0),
            Some(unix) => tokio::select! {
                tcp = listener.accept() => Either::Left(tcp?.0),
                unix = unix.accept() => Either::Right(unix?.0),
            },
        };
        if let Either::Left(tcp) = &stream {
            let _ = tcp.set_nodelay(true);
        }
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
