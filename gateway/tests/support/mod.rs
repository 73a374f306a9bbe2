//! Test support shared by every gateway test binary (`tests/auth`, `tests/proxy`):
//! include it with `#[path = "../support/mod.rs"] mod support;`.

pub mod issuer;
pub mod logs;
