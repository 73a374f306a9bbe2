//! A minimal HTTP/1.1 health probe over std sockets, for images without a shell or curl.
//!
//! Only what a container healthcheck needs: one GET to a plain `http://` URL on the same
//! host, a deadline, and the status code. No TLS, no redirects, no body.

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
}

/// Sends `GET url` and returns the response status code, all within `timeout`.
pub fn get(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
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
    // Read until the status line is complete; the rest of the response does not matter.
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        stream.set_read_timeout(Some(left())).map_err(io)?;
        match stream.read(&mut buf).map_err(io)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(ProbeError::BadResponse { addr }),
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
    fn refuses_urls_it_cannot_request() {
        assert!(matches!(
            get("https://x/", Duration::from_secs(1)),
            Err(ProbeError::BadUrl(_))
        ));
    }
}
