//! End-to-end harness: starts the real parts as separate processes on free ports and talks to
//! them over HTTP, the way a browser and an operator would.
//!
//! - [`process`]: a child process with its log in a file, killed when dropped.
//! - [`stack`]: Better Auth + tasks-service + gateway replicas (+ the demo page), each awaited
//!   ready.
//! - [`api`]: the task API through the gateway with a bearer token.
//! - [`better_auth`]: a user's session with Better Auth: sign up, sign in, sign out, tokens.
//! - [`revocation`]: the revocation feed in Better Auth's database, and tokens polled at every
//!   replica until refused.
//! - [`scenarios`]: the API scenario any stack must pass, given only the gateway's URL.
//! - [`browser`]: the demo page's Chromium test against any stack.
//!
//! Nothing here is a fake: the issuer is the `better-auth` npm package, the binaries are the
//! ones `cargo test --workspace` just built.

pub mod api;
pub mod better_auth;
pub mod browser;
pub mod process;
pub mod revocation;
pub mod scenarios;
pub mod stack;
