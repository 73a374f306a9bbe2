//! The JWT payload Better Auth signs for a session (deploy/better-auth/payload.mjs): node's
//! own unit test, run here so the suite holds it. It takes no registered claim (`iat`, `exp`,
//! `iss`, ...) from the user row, which Better Auth's signJWT would otherwise obey.

#[test]
fn the_session_payload_takes_no_registered_claim_from_the_user_row() {
    let dir = e2e::stack::repo_root().join("deploy/better-auth");
    let out = e2e::stack::node(&dir, "--test")
        .arg("payload.test.mjs")
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node --test payload.test.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
