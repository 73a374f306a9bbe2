//! The issuer server's own unit tests, run here so the suite holds them: the JWT payload Better
//! Auth signs for a session (deploy/better-auth/payload.mjs) takes no registered claim (`iat`,
//! `exp`, `iss`, ...) from the user row, which Better Auth's signJWT would otherwise obey, and
//! no guide teaches otherwise; the server refuses a bad `DATABASE_URL` without printing its
//! password (server.test.mjs).

#[test]
fn the_issuer_servers_unit_tests_pass() {
    let dir = e2e::stack::repo_root().join("deploy/better-auth");
    let out = e2e::stack::node(&dir, "--test")
        .args(["payload.test.mjs", "server.test.mjs"])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node --test payload.test.mjs server.test.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
