//! Test support shared by every gateway test binary (`tests/auth`, `tests/proxy`):
//! include it with `#[path = "../support/mod.rs"] mod support;`.

pub mod issuer;
// Not every test binary runs an upstream of its own.
#[allow(dead_code)]
pub mod listener;
pub mod logs;
