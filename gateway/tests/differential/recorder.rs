//! A raw upstream (TCP, or a Unix socket) that records every request exactly as it parsed it (method, target,
//! header lines in order, decoded body) and answers each with scripted bytes, so the tests see
//! what the gateway really put on the wire and can answer with framing no HTTP library would
//! write. Not for: judging what it records (`check.rs`).

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    task::JoinHandle,
};

use crate::support::listener::TestListener;

/// How the upstream answers every request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// These bytes, then keep the connection.
    Keep(Vec<u8>),
    /// These bytes, then close.
    Close(Vec<u8>),
}

impl Reply {
    pub fn ok() -> Self {
        Self::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Keep(bytes) | Self::Close(bytes) => bytes,
        }
    }
}

/// One request as it reached the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Header lines as sent, names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Set when the bytes did not parse as a request: the gateway sent something broken.
    pub garbage: Option<Vec<u8>>,
}

impl Seen {
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

struct State {
    seen: Vec<Seen>,
    reply: Reply,
    /// Counts resets: a connection accepted for an earlier case records nothing later.
    generation: u64,
}

/// The running upstream; stops when dropped.
pub struct Recorder {
    url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// On 127.0.0.1, port 0.
    pub async fn start() -> Self {
        Self::serving(TestListener::tcp().await)
    }

    /// On a Unix socket in a fresh temporary directory (`unix:<path>`).
    pub fn start_unix() -> Self {
        Self::serving(TestListener::unix())
    }

    fn serving(mut listener: TestListener) -> Self {
        let state = Arc::new(Mutex::new(State {
            seen: Vec::new(),
            reply: Reply::ok(),
            generation: 0,
        }));
        let shared = state.clone();
        let url = listener.url();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self { url, state, task }
    }

    /// `http://127.0.0.1:<port>` or `unix:<path>`, as the gateway's settings take it.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Forgets what was seen and answers with `reply` from now on.
    pub fn reset(&self, reply: Reply) {
        let mut state = self.state.lock().unwrap();
        state.seen.clear();
        state.reply = reply;
        state.generation += 1;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, state: Arc<Mutex<State>>) {
    let generation = state.lock().unwrap().generation;
    let mut buf = Vec::new();
    loop {
        let (seen, used) = match next_request(&mut stream, &mut buf).await {
            Some(parsed) => parsed,
            None => return,
        };
        buf.drain(..used);
        let broken = seen.garbage.is_some();
        let reply = {
            let mut state = state.lock().unwrap();
            if state.generation != generation {
                return;
            }
            state.seen.push(seen);
            state.reply.clone()
        };
        if broken {
            return;
        }
        if stream.write_all(reply.bytes()).await.is_err() {
            return;
        }
        if let Reply::Close(_) = reply {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Reads one whole request (head and body) from `stream`; `None` when it closed first.
async fn next_request(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> Option<(Seen, usize)> {
    loop {
        if !buf.is_empty() {
            match parse(buf) {
                Parsed::Done(seen, used) => return Some((seen, used)),
                Parsed::Broken => {
                    let garbage = Seen {
                        method: String::new(),
                        target: String::new(),
                        headers: Vec::new(),
                        body: Vec::new(),
                        garbage: Some(buf.clone()),
                    };
                    return Some((garbage, buf.len()));
                }
                Parsed::More => {}
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

enum Parsed {
    Done(Seen, usize),
    More,
    Broken,
}

/// Strictly: httparse for the head, then a `Content-Length` or chunked body (never both).
fn parse(buf: &[u8]) -> Parsed {
    let mut lines = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut lines);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::More,
        Err(_) => return Parsed::Broken,
    };
    let headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|line| (line.name.to_ascii_lowercase(), line.value.to_vec()))
        .collect();
    let values = |name: &'static str| headers.iter().filter(move |(n, _)| n == name);
    let lengths: Vec<_> = values("content-length").collect();
    let chunked = values("transfer-encoding").count();
    let rest = &buf[head_len..];
    let (body, body_len) = match (lengths.as_slice(), chunked) {
        ([], 0) => (Vec::new(), 0),
        ([(_, value)], 0) => {
            let Some(len) = std::str::from_utf8(value)
                .ok()
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
            else {
                return Parsed::Broken;
            };
            if rest.len() < len {
                return Parsed::More;
            }
            (rest[..len].to_vec(), len)
        }
        ([], 1) if values("transfer-encoding").all(|(_, v)| v == b"chunked") => {
            match crate::client::decode_chunked(rest) {
                Some(Ok(decoded)) => decoded,
                Some(Err(())) => return Parsed::Broken,
                None => return Parsed::More,
            }
        }
        _ => return Parsed::Broken,
    };
    let seen = Seen {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers,
        body,
        garbage: None,
    };
    Parsed::Done(seen, head_len + body_len)
}
