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
    /// The head arrived but the connection ended before the body its framing announced.
    pub truncated: bool,
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
/// gateway closes.
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
    let mut received = parse_answers(&wire, has_head(request));
    received.hung = hung;
    received
}

/// Whether some line of `raw` starts a HEAD request.
fn has_head(raw: &[u8]) -> bool {
    raw.starts_with(b"HEAD ") || raw.windows(6).any(|w| w == b"\nHEAD ")
}

fn parse_answers(mut wire: &[u8], any_head: bool) -> Received {
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
        // An answer to HEAD announces a body it does not carry. Which request an answer is
        // for is not known here (mangled request lines make any count unreliable), so: an
        // answer followed at once by the next one's head, or the last one with nothing after
        // it when some request was a HEAD, has no body.
        let is_head = rest.starts_with(b"HTTP/1.") || (rest.is_empty() && any_head);
        let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let length = find("content-length").map(|length| {
            std::str::from_utf8(length)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
        });
        let body = if is_head || status == 204 || status == 304 {
            Some((Vec::new(), 0))
        } else if find("transfer-encoding").is_some() {
            decode_chunked(rest).and_then(Result::ok)
        } else if let Some(length) = length {
            length
                .filter(|&len| rest.len() >= len)
                .map(|len| (rest[..len].to_vec(), len))
        } else {
            Some((rest.to_vec(), rest.len()))
        };
        let Some((body, used)) = body else {
            // Cut short (or unreadable): an answer all the same, and the last one.
            received.answers.push(Answer {
                status,
                headers,
                body: rest.to_vec(),
                truncated: true,
            });
            wire = &[];
            break;
        };
        received.answers.push(Answer {
            status,
            headers,
            body,
            truncated: false,
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

/// Bytes as a Rust byte-string literal, for reproduction; long runs of one byte shortened.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::from("b\"");
    let mut rest = bytes;
    while let Some(&first) = rest.first() {
        let run = rest.iter().take_while(|&&b| b == first).count();
        let escaped: String = std::ascii::escape_default(first).map(char::from).collect();
        if run > 16 {
            out.push_str(&format!("\" + &[b'{escaped}'; {run}] + b\""));
        } else {
            out.push_str(&escaped.repeat(run));
        }
        rest = &rest[run..];
    }
    out.push('"');
    out
}
