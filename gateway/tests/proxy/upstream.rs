//! An in-process upstream on port 0 (or on a Unix socket, `start_unix`) that records what
//! reached it. Behaviour by path:
//! - `.../hang`: never answers;
//! - `.../reset`: drops the connection without answering;
//! - `.../hold`: reports its arrival, then answers once the test releases it;
//! - `.../echo`: streams the request body back as the response body;
//! - `.../first-chunk`: reports the first body bytes as they arrive, then counts the rest;
//! - `.../drip`: sends one response chunk, then the rest once the test releases it;
//! - anything else: reads the whole body, answers 200 JSON with hop-by-hop and CORS headers
//!   of its own (which the gateway must not pass on), and with `x-seen-target` and
//!   `x-seen-user`: the target and the user id it was given.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::{body::Frame, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::{sync::Notify, task::JoinHandle};

use crate::support::listener::TestListener;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// The request target exactly as received, e.g. `/api/u1/tasks?x=1`.
    pub target: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    /// Body bytes received (for paths that read the whole body).
    pub body_len: usize,
    /// The body received (for paths that read the whole body).
    pub body: Vec<u8>,
    /// The far end of the connection it came over (the gateway's side): requests with the
    /// same `peer` shared one upstream connection. Over a Unix socket, which gives the
    /// gateway's end no address, `0.0.0.0` and the connection's number as the port.
    pub peer: SocketAddr,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    arrived: Notify,
    arrivals: Mutex<usize>,
    release: Notify,
    first_chunk: Notify,
    /// Connections open now, and a wake-up whenever one closes.
    open: Mutex<usize>,
    closed: Notify,
}

/// The running upstream; stops when dropped.
pub struct EchoUpstream {
    url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl EchoUpstream {
    /// Starts on 127.0.0.1 port 0.
    pub async fn start() -> Self {
        Self::serving(TestListener::tcp().await)
    }

    /// Starts on a Unix socket in a fresh temporary directory.
    pub async fn start_unix() -> Self {
        Self::serving(TestListener::unix())
    }

    fn serving(listener: TestListener) -> Self {
        let shared = Arc::new(Shared::default());
        let url = listener.url();
        let server = tokio::spawn(serve(listener, shared.clone()));
        Self {
            url,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, or `unix:<path>` for one started with `start_unix`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The only request received so far.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(
            seen.len(),
            1,
            "expected exactly one upstream request: {seen:#?}"
        );
        seen.into_iter().next().unwrap()
    }

    /// Waits (up to 10 s) until `n` requests have reached a `hold` path.
    pub async fn wait_for_arrivals(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.arrived.notified();
            if *self.shared.arrivals.lock().unwrap() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "only {} of {n} held requests arrived upstream",
                    *self.shared.arrivals.lock().unwrap()
                );
            }
        }
    }

    /// How many connections to the upstream are open now.
    pub fn open_connections(&self) -> usize {
        *self.shared.open.lock().unwrap()
    }

    /// Waits (up to 10 s) until at most `n` connections to the upstream are open.
    pub async fn wait_for_open_at_most(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.closed.notified();
            let open = *self.shared.open.lock().unwrap();
            if open <= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{open} connections to the upstream still open, expected at most {n}");
            }
        }
    }

    /// Lets every waiting `hold` or `drip` request finish.
    pub fn release(&self) {
        self.shared.release.notify_waiters();
    }

    /// Completes when a `first-chunk` request's first body bytes have arrived (10 s deadline).
    pub fn first_chunk(&self) -> impl std::future::Future<Output = ()> + '_ {
        let notified = self.shared.first_chunk.notified();
        async move {
            tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .expect("the upstream never received the first chunk");
        }
    }
}

async fn serve(mut listener: TestListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        *shared.open.lock().unwrap() += 1;
        tokio::spawn(async move {
            let counted = shared.clone();
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move {
                    if request.uri().path().ends_with("/reset") {
                        // A service error makes hyper close the connection with no response.
                        return Err("reset by the test upstream");
                    }
                    Ok(answer(request, shared, peer).await)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            *counted.open.lock().unwrap() -= 1;
            counted.closed.notify_waiters();
        });
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
    peer: SocketAddr,
) -> Response<Body> {
    let (head, body) = request.into_parts();
    let path = head.uri.path().to_owned();
    let mut seen = Seen {
        method: head.method.clone(),
        target: head
            .uri
            .path_and_query()
            .map_or("/".into(), |pq| pq.to_string()),
        version: head.version,
        headers: head.headers.clone(),
        body_len: 0,
        body: Vec::new(),
        peer,
    };
    if path.ends_with("/hang") {
        shared.seen.lock().unwrap().push(seen);
        return std::future::pending().await;
    }
    if path.ends_with("/hold") {
        let released = shared.release.notified();
        shared.seen.lock().unwrap().push(seen);
        *shared.arrivals.lock().unwrap() += 1;
        shared.arrived.notify_waiters();
        released.await;
        return Response::new(full("held and released"));
    }
    if path.ends_with("/echo") {
        shared.seen.lock().unwrap().push(seen);
        return Response::new(body.map_err(Into::into).boxed());
    }
    if path.ends_with("/drip") {
        shared.seen.lock().unwrap().push(seen);
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let shared = shared.clone();
        tokio::spawn(async move {
            // Registered before the first chunk goes out, so a release after it is not missed.
            let released = shared.release.notified();
            let _ = tx.send(Bytes::from_static(b"first;")).await;
            released.await;
            let _ = tx.send(Bytes::from_static(b"rest")).await;
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(chunk)),
                rx,
            ))
        });
        return Response::new(BodyExt::boxed(StreamBody::new(stream)));
    }
    let first_chunk = path.ends_with("/first-chunk");
    let mut body = body;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    if first_chunk && seen.body_len == 0 && !data.is_empty() {
                        shared.first_chunk.notify_waiters();
                    }
                    seen.body_len += data.len();
                    seen.body.extend_from_slice(data);
                }
            }
            Err(_) => {
                seen.body_len = usize::MAX; // marks an aborted body
                break;
            }
        }
    }
    let body_len = seen.body_len;
    // What this answer is for, so that a client can tell it got its own: the target and the
    // identity the upstream was given.
    let target = seen.target.clone();
    let user = seen.headers.get("x-user-id").cloned();
    shared.seen.lock().unwrap().push(seen);
    let mut response = Response::builder();
    if let Some(user) = user {
        response = response.header("x-seen-user", user);
    }
    response
        .header("x-seen-target", target)
        .header("content-type", "application/json")
        .header("connection", "x-upstream-private")
        .header("x-upstream-private", "secret")
        .header("keep-alive", "timeout=5")
        .header("access-control-allow-origin", "*")
        .header("x-request-id", "chosen-by-the-upstream")
        .header("vary", "accept")
        .body(full(json!({"ok": true, "received": body_len}).to_string()))
        .unwrap()
}
