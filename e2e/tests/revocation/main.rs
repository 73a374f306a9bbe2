//! Issue 13, sign-out that signs out: when a session ends in the real Better Auth server
//! (sign-out, revoke one, revoke others, revoke all, an admin's ban), every gateway replica
//! refuses that session's tokens within a second, and a user-wide revocation refuses every
//! older token of that user. The feed is Better Auth's own PostgreSQL database
//! (deploy/better-auth/revocation.sql): a replica started after a revocation, or one whose
//! feed connection was cut while revocations happened, still refuses those tokens. An existing
//! Better Auth app turns it on the way the README says.

mod announced;
mod existing_app;
mod feed_cut;
mod helpers;
mod payload;
mod restart;
mod within_a_second;
