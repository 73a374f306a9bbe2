//! A deliberately dumb HTTP/1.1 client over a raw socket, for what real clients will not send:
//! mixed-case and underscore header names, `Connection` games, oversized or unfinished heads,
//! pipelined requests, and responses read one at a time off a kept-alive connection.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

/// A response read to the end of the connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines as sent, name lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The bytes after the head exactly as they arrived (chunk framing included).
    pub wire: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (which should say `Connection: close`) and reads until the server closes.
pub async fn send(address: SocketAddr, request: &str) -> RawResponse {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the server should answer and close within 10 s")
        .expect("read");
    parse(&String::from_utf8_lossy(&raw))
}

fn parse(raw: &str) -> RawResponse {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
        wire: body.as_bytes().to_vec(),
    }
}

/// True when the server closes the connection (EOF or reset) within `within`.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

/// How long [`RawConnection`] waits for bytes it expects before the test fails.
const READ_GUARD: Duration = Duration::from_secs(5);

/// A POST of `body` (framed by its length) to `path` with `token` as its bearer token, as the
/// bytes a client writes.
pub fn post_with_token(path: &str, token: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One kept-alive connection: requests are written as given, responses read one at a time by
/// their own framing (`Content-Length`, chunked, or until close), so several exchanges, or
/// pipelined ones, can share it. `S` is a `TcpStream`, or just its read half.
pub struct RawConnection<S = TcpStream> {
    pub stream: S,
    /// Bytes read but not yet part of a response.
    buf: Vec<u8>,
}

impl RawConnection {
    pub async fn open(address: SocketAddr) -> Self {
        Self::over(TcpStream::connect(address).await.expect("connect"))
    }
}

impl<S> RawConnection<S> {
    pub fn over(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }
}

impl<S: AsyncWrite + Unpin> RawConnection<S> {
    pub async fn write(&mut self, request: impl AsRef<[u8]>) {
        self.stream
            .write_all(request.as_ref())
            .await
            .expect("write");
    }
}

impl<S: AsyncRead + Unpin> RawConnection<S> {
    /// Reads the next response, with a body unless its status forbids one.
    pub async fn read_response(&mut self) -> RawResponse {
        self.read(false).await
    }

    /// Reads the next response to a HEAD request: a head alone.
    pub async fn read_head_response(&mut self) -> RawResponse {
        self.read(true).await
    }

    async fn read(&mut self, head_only: bool) -> RawResponse {
        let head_len = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if !self.fill().await {
                panic!(
                    "the connection ended before a response head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_len).collect();
        let mut response = parse(&String::from_utf8_lossy(&head));
        let no_body = head_only || matches!(response.status, 100..=199 | 204 | 304);
        let (wire, body) = if no_body {
            (Vec::new(), Vec::new())
        } else if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            self.read_chunked().await
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().expect("a numeric Content-Length");
            while self.buf.len() < length {
                assert!(
                    self.fill().await,
                    "the connection ended {} bytes into a {length}-byte body",
                    self.buf.len()
                );
            }
            let body: Vec<u8> = self.buf.drain(..length).collect();
            (body.clone(), body)
        } else {
            while self.fill().await {}
            let body = std::mem::take(&mut self.buf);
            (body.clone(), body)
        };
        response.body = String::from_utf8_lossy(&body).into_owned();
        response.wire = wire;
        response
    }

    /// A chunked body, decoded strictly: bare hex sizes only, CRLF everywhere. Returns the
    /// bytes as framed on the wire and the data.
    async fn read_chunked(&mut self) -> (Vec<u8>, Vec<u8>) {
        loop {
            if let Some((used, data)) = decode_chunked(&self.buf) {
                let wire = self.buf.drain(..used).collect();
                return (wire, data);
            }
            assert!(
                self.fill().await,
                "the connection ended inside a chunked body: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// True when the connection ends (EOF or reset) within `within`; bytes before the end
    /// are read and dropped.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    /// What arrives until the connection ends or at least `at_least` bytes are here
    /// (within [`READ_GUARD`]).
    pub async fn read_some(&mut self, at_least: usize) -> Vec<u8> {
        while self.buf.len() < at_least && self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Reads more; false at the end of the connection (a reset counts as an end).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(READ_GUARD, self.stream.read(&mut chunk)).await {
            Err(_) => panic!(
                "no bytes within {READ_GUARD:?}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
}

/// A whole chunked body at the start of `buf`: (bytes it takes, its data), or `None` while
/// incomplete. Panics on anything but plain `size CRLF data CRLF` chunks and trailer lines.
fn decode_chunked(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    let mut at = 0;
    let mut data = Vec::new();
    loop {
        let line_end = at + find(&buf[at..], b"\r\n")?;
        let line = std::str::from_utf8(&buf[at..line_end]).expect("an ASCII size line");
        let size = usize::from_str_radix(line, 16)
            .unwrap_or_else(|_| panic!("not a bare hex chunk size: {line:?}"));
        at = line_end + 2;
        if size == 0 {
            // Trailer lines, if any, then the empty line.
            loop {
                let end = at + find(&buf[at..], b"\r\n")?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some((at, data));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        data.extend_from_slice(&buf[at..at + size]);
        assert_eq!(
            &buf[at + size..at + size + 2],
            b"\r\n",
            "chunk data without CRLF"
        );
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
