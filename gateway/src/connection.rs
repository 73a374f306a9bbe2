//! What a client connection is, below the accept loop (`server.rs`) and the engines that serve
//! it (`http1.rs`, hyper): its place under `MAX_CONNECTIONS` (`connection/cap.rs`: admitted,
//! busy or idle, asked to close) and its first bytes, read to tell HTTP/1 from HTTP/2 and
//! replayed to whoever serves it (`connection/first_bytes.rs`); and, in the `balanced` layout,
//! its move to another worker between requests (`connection/handoff.rs`). Shared vocabulary, so that
//! the engines need nothing from the accept loop that runs them.

mod cap;
pub mod first_bytes;
mod handoff;

pub use cap::{Admitted, Busy, Connections, Slot, CLOSING_GRACE};
pub use first_bytes::Replay;
pub use handoff::{Counted, Handoff, Handoffs, Inbox, Moved, OwnHandoff};
