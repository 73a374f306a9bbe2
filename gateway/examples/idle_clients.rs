//! The idle-connection benchmark's client (`bench/gateway/idle.sh`): opens N keep-alive
//! HTTP/1.1 connections to a proxy, sends one request on each (authenticated when a token is
//! given) and reads its whole answer, then leaves every connection open and idle. Prints
//! `opened N` once all are idle; at a line (or end of input) on stdin it checks that each is
//! still open, prints `still open M`, and exits. Not a load generator: wrk does that.
//!
//! With `H2=1` in the environment it speaks HTTP/2 with prior knowledge instead (hyper's
//! client), one request per connection the same way.
//!
//! Usage: `idle_clients <addr> <count> <path> [token file]`.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Semaphore,
};

/// Connections being opened at once: enough to open thousands in a second or two, few enough
/// not to overflow the listener's accept backlog.
const OPENING_AT_ONCE: usize = 128;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: idle_clients <addr> <count> <path> [token file]";
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let count: usize = args.next().ok_or(usage)?.parse()?;
    let path = args.next().ok_or(usage)?;
    let token = match args.next() {
        Some(file) => Some(std::fs::read_to_string(file)?.trim().to_owned()),
        None => None,
    };
    let h2 = std::env::var_os("H2").is_some_and(|v| v == "1");
    let authorization = token.map(|token| format!("Bearer {token}"));
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(authorization) = &authorization {
        request.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    let request: Arc<[u8]> = request.into_bytes().into();
    let target = Arc::new((format!("http://{addr}{path}"), authorization));

    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let opening = opening.clone();
            let request = request.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let _permit = opening.acquire_owned().await.expect("never closed");
                let opened = async {
                    if h2 {
                        open_h2(addr, &target.0, target.1.as_deref()).await
                    } else {
                        open(addr, &request).await.map(Idle::H1)
                    }
                };
                tokio::time::timeout(Duration::from_secs(30), opened).await?
            })
        })
        .collect();
    let mut connections = Vec::with_capacity(count);
    for task in tasks {
        connections.push(task.await??);
    }
    println!("opened {}", connections.len());

    // Off the runtime, which keeps serving the HTTP/2 connections (pings) meanwhile.
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await??;
    let open = connections.iter().filter(|c| is_open(c)).count();
    println!("still open {open}");
    Ok(())
}

/// An open, idle client connection.
enum Idle {
    H1(TcpStream),
    /// The connection itself runs in a task of its own; this handle closes with it.
    H2(http2::SendRequest<Empty<Bytes>>),
}

/// An HTTP/2 connection that has carried one request and read its 200 answer whole.
async fn open_h2(addr: SocketAddr, uri: &str, authorization: Option<&str>) -> io::Result<Idle> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(connection);
    let mut request = http::Request::get(uri);
    if let Some(authorization) = authorization {
        request = request.header(http::header::AUTHORIZATION, authorization);
    }
    let request = request.body(Empty::new()).map_err(io::Error::other)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    if response.status() != 200 {
        return Err(io::Error::other(format!("status {}", response.status())));
    }
    response
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?;
    Ok(Idle::H2(sender))
}

/// A connection that has carried one request and read its 200 answer whole.
async fn open(addr: SocketAddr, request: &[u8]) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::other("closed before the answer was complete"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) =
            response.parse(&buf).map_err(io::Error::other)?
        else {
            continue;
        };
        if response.code != Some(200) {
            return Err(io::Error::other(format!("status {:?}", response.code)));
        }
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .ok_or_else(|| io::Error::other("answer without Content-Length"))?;
        if buf.len() >= head_len + length {
            return Ok(stream);
        }
    }
}

/// Open and idle: nothing to read and no end of stream.
fn is_open(connection: &Idle) -> bool {
    match connection {
        Idle::H1(stream) => {
            let mut probe = [0; 1];
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
        Idle::H2(sender) => !sender.is_closed(),
    }
}
