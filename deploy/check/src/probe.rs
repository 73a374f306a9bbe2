//! A minimal HTTP/1.1 health probe over std sockets, for images without a shell or curl.
//!
//! Only what a container healthcheck needs: one GET to a plain `http://` URL on the same
//! host, a deadline, and the status code; the body too when asked (an operator reading
//! `/metrics` inside a distroless container). No TLS, no redirects, no chunked bodies.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
};

use crate::workload::{split_url, Listen};

/// Why a probe got no status code.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("not an http://host:port/path URL: {0:?}")]
    BadUrl(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("request to {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer with an HTTP status line")]
    BadResponse { addr: String },
    #[error("{var} is not set or not host:port")]
    BadListenEnv { var: String },
    #[error("{addr} sent a chunked or unterminated body, which the probe does not decode")]
    UnreadableBody { addr: String },
}

/// Most of a body the probe reads: `/metrics` is tens of kilobytes.
const MAX_BODY: usize = 4 << 20;

/// Sends `GET url` and returns the response status code, all within `timeout`.
pub fn get(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    exchange(url, timeout, false).map(|(status, _)| status)
}

/// Sends `GET url` and returns the status code and the whole body, all within `timeout`.
/// The body must have a `Content-Length` or end with the connection (the probe asks for
/// `Connection: close`).
pub fn get_body(url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), ProbeError> {
    exchange(url, timeout, true)
}

/// The request both of the above send; reads only the status line unless `whole`.
fn exchange(url: &str, timeout: Duration, whole: bool) -> Result<(u16, Vec<u8>), ProbeError> {
    let deadline = Instant::now() + timeout;
    let (host, port, _) = split_url(url).ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    // The path with its query, as split_url drops the query.
    let target = url["http://".len()..]
        .find('/')
        .map(|i| &url["http://".len() + i..])
        .unwrap_or("/");
    let port = port.unwrap_or(80);
    let addr = format!("{host}:{port}");
    let resolved = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ProbeError::Resolve(addr.clone()))?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream =
        TcpStream::connect_timeout(&resolved, left()).map_err(|source| ProbeError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let io = |source| ProbeError::Io {
        addr: addr.clone(),
        source,
    };
    stream.set_write_timeout(Some(left())).map_err(io)?;
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: http-probe\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    // Read until the status line is complete (or, for the body, until the server closes);
    // the rest of the response does not matter to a healthcheck.
    let mut answer = Vec::with_capacity(64);
    let mut buf = [0u8; 4096];
    let enough = |answer: &[u8]| {
        if whole {
            answer.len() > MAX_BODY
        } else {
            answer.contains(&b'\n') || answer.len() >= 4096
        }
    };
    while !enough(&answer) {
        stream.set_read_timeout(Some(left())).map_err(io)?;
        match stream.read(&mut buf).map_err(io)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(answer.split(|&b| b == b'\n').next().unwrap_or_default());
    let mut parts = line.split_whitespace();
    let status = match (
        parts.next(),
        parts.next().and_then(|s| s.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code,
        _ => return Err(ProbeError::BadResponse { addr }),
    };
    if !whole {
        return Ok((status, Vec::new()));
    }
    body_of(&answer)
        .map(|body| (status, body.to_vec()))
        .ok_or(ProbeError::UnreadableBody { addr })
}

/// The body of a whole HTTP/1.1 answer read until the connection closed: as long as its
/// `Content-Length` says, or everything after the head without one; `None` if chunked, cut
/// short or longer than [`MAX_BODY`].
fn body_of(answer: &[u8]) -> Option<&[u8]> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let body = &answer[end..];
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    if field("transfer-encoding:").is_some() || body.len() > MAX_BODY {
        return None;
    }
    match field("content-length:") {
        Some(length) => body.get(..length.parse().ok()?),
        None => Some(body),
    }
}

/// Builds the URL to probe from a listen variable's value (`GATEWAY_LISTEN=0.0.0.0:8080`):
/// a wildcard host becomes loopback, as the probe runs inside the same container.
pub fn url_from_listen(var: &str, value: Option<&str>, path: &str) -> Result<String, ProbeError> {
    let listen = value
        .and_then(Listen::parse)
        .ok_or_else(|| ProbeError::BadListenEnv {
            var: var.to_owned(),
        })?;
    let host = if listen.is_wildcard() {
        "127.0.0.1".to_owned()
    } else {
        listen.host
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(format!("http://{host}:{}{path}", listen.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_values_become_loopback_urls() {
        assert_eq!(
            url_from_listen("GATEWAY_LISTEN", Some("0.0.0.0:8080"), "/healthz").unwrap(),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            url_from_listen("X", Some("[::]:9000"), "readyz").unwrap(),
            "http://127.0.0.1:9000/readyz"
        );
        assert!(url_from_listen("X", None, "/healthz").is_err());
        assert!(url_from_listen("X", Some("nope"), "/healthz").is_err());
    }

    #[test]
    fn a_body_is_what_its_length_says_and_a_chunked_one_is_refused() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more";
        assert_eq!(body_of(ok), Some(&b"hello"[..]));
        let until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it";
        assert_eq!(body_of(until_close), Some(&b"all of it"[..]));
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort";
        assert_eq!(body_of(cut), None);
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(body_of(chunked), None);
        assert_eq!(body_of(b"HTTP/1.1 200 OK\r\n"), None, "no end of head");
    }

    #[test]
    fn refuses_urls_it_cannot_request() {
        assert!(matches!(
            get("https://x/", Duration::from_secs(1)),
            Err(ProbeError::BadUrl(_))
        ));
    }
}
