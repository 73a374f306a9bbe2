//! Where the service takes connections: its TCP address, and, when `TASKS_SOCKET` is set, a
//! Unix domain socket as well, for a gateway sidecar in the same pod (its
//! `TASKS_SERVICE_URL=unix:<path>`). Over the socket a request skips the kernel's TCP path on
//! both sides (specs/research.md measures what that saves), and only a process that may open
//! the file reaches the service that way: it is made owner and group only (0660).
//!
//! Either way a request still needs the gateway's identity credential: the socket is a
//! shorter road to the same door, not a way around it.
//!
//! Not for: what is done with a connection once accepted (`server.rs`).

use std::{
    fs,
    io::{self, ErrorKind},
    net::SocketAddr,
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::either::Either;

/// An accepted connection's bytes: over TCP or over the Unix socket.
pub type Connection = Either<TcpStream, UnixStream>;

/// Who may connect to the socket: the owner and its group (a sidecar running as the same
/// user, or sharing the pod's `fsGroup`), nobody else.
const SOCKET_MODE: u32 = 0o660;

/// Why a listener could not be opened. Each message names the variable to look at.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("TASKS_LISTEN: cannot listen on {addr}: {source}")]
    Tcp { addr: SocketAddr, source: io::Error },
    #[error("TASKS_SOCKET: cannot listen on {}: {problem}", path.display())]
    Unix { path: PathBuf, problem: String },
}

/// The bound listeners, served together.
#[derive(Debug)]
pub struct Listeners {
    tcp: TcpListener,
    unix: Option<UnixSocket>,
}

/// The Unix socket and its file, removed when the service stops.
#[derive(Debug)]
struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The file's device and inode at bind: the file is removed at the end only if it is
    /// still the one this process made.
    made: (u64, u64),
}

impl Listeners {
    /// Binds `listen`, and `socket` when given. A socket file left by a process that has
    /// gone is replaced; one a live process serves on, or any file that is not a socket, is
    /// left alone and refused.
    pub async fn bind(listen: SocketAddr, socket: Option<&Path>) -> Result<Self, BindError> {
        let tcp = TcpListener::bind(listen)
            .await
            .map_err(|source| BindError::Tcp {
                addr: listen,
                source,
            })?;
        let unix = match socket {
            Some(path) => {
                Some(
                    UnixSocket::bind(path)
                        .await
                        .map_err(|problem| BindError::Unix {
                            path: path.to_owned(),
                            problem,
                        })?,
                )
            }
            None => None,
        };
        Ok(Self { tcp, unix })
    }

    /// The bound TCP address (useful when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// The Unix socket's path, when there is one.
    pub fn socket_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|unix| unix.path.as_path())
    }

    /// The next connection, from whichever listener has one first.
    pub async fn accept(&self) -> io::Result<Connection> {
        match &self.unix {
            None => Ok(Either::Left(self.tcp.accept().await?.0)),
            Some(unix) => tokio::select! {
                tcp = self.tcp.accept() => Ok(Either::Left(tcp?.0)),
                unix = unix.listener.accept() => Ok(Either::Right(unix?.0)),
            },
        }
    }
}

impl UnixSocket {
    async fn bind(path: &Path) -> Result<Self, String> {
        match fs::symlink_metadata(path) {
            Ok(found) if !found.file_type().is_socket() => {
                return Err("the path exists and is not a socket; not removing it".into());
            }
            Ok(_) => match UnixStream::connect(path).await {
                Ok(_) => return Err("another process is serving on this socket".into()),
                // Refused: the file outlived its process (a crash, a kill -9). Replace it.
                Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
                    fs::remove_file(path)
                        .map_err(|error| format!("cannot remove the stale socket: {error}"))?;
                    tracing::info!(path = %path.display(), "replaced a stale socket file");
                }
                Err(error) => return Err(format!("cannot tell whether it is in use: {error}")),
            },
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(error.to_string()),
        }
        let listener = UnixListener::bind(path).map_err(|error| error.to_string())?;
        // Between bind and this chmod the socket has the umask's mode; a connection made in
        // that instant still needs the gateway's credential for anything but health checks.
        fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(|error| format!("cannot restrict its mode to 0660: {error}"))?;
        let made = fs::metadata(path)
            .map(|meta| (meta.dev(), meta.ino()))
            .map_err(|error| error.to_string())?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            made,
        })
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let ours = fs::metadata(&self.path).is_ok_and(|meta| (meta.dev(), meta.ino()) == self.made);
        if ours {
            if let Err(error) = fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), %error, "cannot remove the socket file");
            }
        }
    }
}
