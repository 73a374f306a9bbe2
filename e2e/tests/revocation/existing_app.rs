//! An existing Better Auth app (only the JWT plugin) turned revocable the way the README
//! says: the definePayload line, revocation.sql applied with psql, a role with only
//! SELECT on auth_revocation for the gateways.

use std::{sync::Arc, time::Instant};

use e2e::{
    better_auth::{decode_unverified, Session},
    revocation::{assert_accepted_everywhere, connect, times_to_refusal},
    stack::{repo_root, BeforeGateways, RevocationFeed, Stack},
};

use crate::helpers::{replicated, tasks_of, TempRole, POLL_LIMIT};

/// What README.md tells an existing app to do, read from the README itself.
const README: &str = "deploy/better-auth/README.md";
/// The README's `definePayload` (the user row less the registered claims, plus `sid`) and
/// its `no-store` line, as the example app has them.
const DEFINE_PAYLOAD: [&str; 4] = [
    r#"const REGISTERED = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];"#,
    "...Object.fromEntries(Object.entries(user).filter(([name]) => !REGISTERED.includes(name))),",
    "sid: session.id,",
    r#"res.setHeader("Cache-Control", "no-store");"#,
];
const GRANT: &str = "GRANT SELECT ON auth_revocation TO";

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_better_auth_app_gets_revocation_the_way_the_readme_says() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join(README)).expect("read the README");
    let app = std::fs::read_to_string(root.join("deploy/better-auth/examples/existing-app.mjs"))
        .expect("read the example app");
    for step in DEFINE_PAYLOAD.into_iter().chain([
        GRANT,
        "psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -f revocation.sql",
    ]) {
        assert!(readme.contains(step), "{README} no longer says {step:?}");
    }
    for line in DEFINE_PAYLOAD {
        assert!(app.contains(line), "the app uses the README's {line:?}");
    }

    // The gateway reads as a role with only what the README grants.
    let role = TempRole::create("").await;
    let grant_to = role.0.clone();
    let mut options = replicated(2);
    options.better_auth_script = "examples/existing-app.mjs";
    options.revocation = Some(RevocationFeed {
        role: Some(role.0.clone()),
    });
    // The operator's step, once the app's own migrations ran and before the gateways start.
    options.before_gateways = Some(BeforeGateways(Arc::new(move |database_url: &str| {
        let sql = repo_root().join("deploy/better-auth/revocation.sql");
        for args in [
            vec!["-f".to_owned(), sql.display().to_string()],
            vec!["-c".to_owned(), format!("{GRANT} {grant_to}")],
        ] {
            let out = std::process::Command::new("psql")
                .arg(database_url)
                .args(["-q", "-v", "ON_ERROR_STOP=1"])
                .args(&args)
                .output()
                .expect("psql is installed (it comes with PostgreSQL's client package)");
            assert!(
                out.status.success(),
                "psql {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })));
    let stack = Stack::start("revocation-existing-app", options).await;
    let gateways = stack.gateway_urls();
    // One client for the whole test: warm connections, so a delay measures the gateway.
    let http = reqwest::Client::new();
    let auth = stack.auth_url.as_str();

    // Sign-out is refused at both replicas.
    let alice = Session::sign_up(auth, "alice").await;
    let path = tasks_of(&alice);
    let token = alice.token().await;
    assert_eq!(
        decode_unverified(&token).1["sid"],
        alice.session_id().await.as_str()
    );
    assert_accepted_everywhere(&http, &gateways, &path, &token, "a live session").await;
    alice.sign_out().await;
    let delays =
        times_to_refusal(&http, &gateways, &path, &token, Instant::now(), POLL_LIMIT).await;
    println!("existing app: sign-out refused at the replicas in {delays:?}");

    // Without the admin plugin there is no ban, but deleting a user refuses all its tokens.
    let bob = Session::sign_up(auth, "bob").await;
    let (bob_token, bob_path) = (bob.token().await, tasks_of(&bob));
    assert_accepted_everywhere(&http, &gateways, &bob_path, &bob_token, "a live session").await;
    let db = connect(&stack.auth_database_url).await;
    db.execute(r#"DELETE FROM "user" WHERE id = $1"#, &[&bob.user_id])
        .await
        .expect("delete the user");
    times_to_refusal(
        &http,
        &gateways,
        &bob_path,
        &bob_token,
        Instant::now(),
        POLL_LIMIT,
    )
    .await;
    drop(stack);
}
