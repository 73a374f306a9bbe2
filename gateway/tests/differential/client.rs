//! The client side: raw bytes written to a gateway, the write side closed, and every answer
//! read back until the gateway closes, parsed by its framing. Not for: judging the answers.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Only a gateway that hangs waits this long; every case ends well before.
const GUARD: Duration = Duration::from_secs(10);

/// One final answer the client got.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// What the client saw on its connection.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Final answers, in order (1xx skipped).
    pub answers: Vec<Answer>,
    /// Interim (1xx) statuses seen.
    pub interim: Vec<u16>,
    /// Bytes after the last whole answer that do not parse as one.
    pub trailing: Vec<u8>,
    /// The gateway neither answered nor closed within the guard.
    pub hung: bool,
}

/// Sends `request` (then closes the write side, unless `keep_open`) and reads until the
/// gateway closes. `head_requests` tells which answers have no body (HEAD).
pub async fn exchange(address: SocketAddr, request: &[u8], keep_open: bool) -> Received {
    let mut stream = TcpStream::connect(address).await.unwrap();
    // A gateway may close and reset before all is written; what it answered is still read.
    let _ = stream.write_all(request).await;
    if !keep_open {
        let _ = stream.shutdown().await;
    }
    let mut wire = Vec::new();
    let hung = tokio::time::timeout(GUARD, async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => wire.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_err();
    let mut received = parse_answers(&wire, &head_methods(request));
    received.hung = hung;
    received
}

/// For each request in `raw` that starts a line with `HEAD `, in order: whether it is HEAD.
/// Only the corpus's own requests begin that way, so a count of request lines is enough.
fn head_methods(raw: &[u8]) -> Vec<bool> {
    let mut methods = Vec::new();
    let mut at_line_start = true;
    for (i, &byte) in raw.iter().enumerate() {
        if at_line_start {
            let rest = &raw[i..];
            for method in ["GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "OPTIONS ", "HEAD "] {
                if rest.starts_with(method.as_bytes()) {
                    methods.push(method == "HEAD ");
                }
            }
        }
        at_line_start = byte == b'\n';
    }
    methods
}

fn parse_answers(mut wire: &[u8], heads: &[bool]) -> Received {
    let mut received = Received::default();
    while !wire.is_empty() {
        let mut lines = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut lines);
        let Ok(httparse::Status::Complete(head_len)) = response.parse(wire) else {
            break;
        };
        let status = response.code.unwrap_or(0);
        let headers: Vec<(String, Vec<u8>)> = response
            .headers
            .iter()
            .map(|line| (line.name.to_ascii_lowercase(), line.value.to_vec()))
            .collect();
        let rest = &wire[head_len..];
        if (100..200).contains(&status) {
            received.interim.push(status);
            wire = rest;
            continue;
        }
        let is_head = heads.get(received.answers.len()).copied().unwrap_or(false);
        let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let (body, used) = if is_head || status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if find("transfer-encoding").is_some() {
            match decode_chunked(rest) {
                Some(Ok(decoded)) => decoded,
                _ => break,
            }
        } else if let Some(length) = find("content-length") {
            let Some(len) = std::str::from_utf8(length)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            else {
                break;
            };
            if rest.len() < len {
                break;
            }
            (rest[..len].to_vec(), len)
        } else {
            (rest.to_vec(), rest.len())
        };
        received.answers.push(Answer {
            status,
            headers,
            body,
        });
        wire = &rest[used..];
    }
    received.trailing = wire.to_vec();
    received
}

/// Decodes a chunked body at the start of `buf`: `Some(Ok((body, bytes used)))`,
/// `Some(Err(()))` when it is malformed, `None` when it is not complete yet. Trailers are
/// read and dropped.
pub fn decode_chunked(buf: &[u8]) -> Option<Result<(Vec<u8>, usize), ()>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = find(&buf[at..], b"\r\n")? + at;
        let line = &buf[at..line_end];
        let size_part = line.split(|&b| b == b';').next().unwrap_or_default();
        let Some(size) = std::str::from_utf8(size_part)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
        else {
            return Some(Err(()));
        };
        at = line_end + 2;
        if size == 0 {
            // Trailer lines up to the blank line.
            loop {
                let end = find(&buf[at..], b"\r\n")? + at;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(Ok((body, at)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Some(Err(()));
        }
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Bytes as a Rust byte-string literal body, for reproduction.
pub fn escape(bytes: &[u8]) -> String {
    let escaped: String = bytes.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect();
    format!("b\"{escaped}\"")
}
