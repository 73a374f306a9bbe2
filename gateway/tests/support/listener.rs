//! Where a test upstream listens: loopback TCP on port 0, or a Unix socket in a fresh
//! temporary directory (as a sidecar reaches tasks-service, `TASKS_SERVICE_URL=unix:...`),
//! with the URL the gateway's settings take for it. The directory goes with the listener.

use std::{net::SocketAddr, path::PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::either::Either;

/// A bound listener of either kind.
pub struct TestListener {
    listener: Either<TcpListener, UnixListener>,
    url: String,
    /// The directory holding the socket, removed on drop.
    socket_dir: Option<PathBuf>,
    /// Connections accepted over the socket so far, which numbers their peers.
    unix_accepted: u16,
}

impl TestListener {
    /// On 127.0.0.1, port 0: `http://127.0.0.1:<port>`.
    pub async fn tcp() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        Self {
            listener: Either::Left(listener),
            url,
            socket_dir: None,
            unix_accepted: 0,
        }
    }

    /// On `http.sock` in a new temporary directory: `unix:<path>`.
    pub fn unix() -> Self {
        let dir = std::env::temp_dir().join(format!("upstream-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("http.sock");
        let listener = UnixListener::bind(&path).expect("bind a Unix socket");
        Self {
            listener: Either::Right(listener),
            url: format!("unix:{}", path.display()),
            socket_dir: Some(dir),
            unix_accepted: 0,
        }
    }

    /// The URL the gateway's settings take for it.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The next connection and its far end: the TCP peer, or, over the socket (which gives
    /// the connecting side no address), `0.0.0.0` and the connection's number as the port.
    pub async fn accept(&mut self) -> std::io::Result<(Either<TcpStream, UnixStream>, SocketAddr)> {
        match &self.listener {
            Either::Left(tcp) => {
                let (stream, peer) = tcp.accept().await?;
                Ok((Either::Left(stream), peer))
            }
            Either::Right(unix) => {
                let (stream, _) = unix.accept().await?;
                self.unix_accepted += 1;
                let peer = SocketAddr::from(([0, 0, 0, 0], self.unix_accepted));
                Ok((Either::Right(stream), peer))
            }
        }
    }
}

impl Drop for TestListener {
    fn drop(&mut self) {
        if let Some(dir) = &self.socket_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
