//! The contract is what is served: schemathesis runs every phase (examples, coverage,
//! fuzzing, stateful) and every check of specs/contracts/openapi.yaml against the gateway in
//! front of the real tasks-service, with a token from the real Better Auth, and must find
//! nothing. Its JUnit report is kept in `target/e2e/schemathesis/`.

use std::{path::PathBuf, process::Command};

use e2e::{
    better_auth::Session,
    stack::{repo_root, Stack, StackOptions},
};

/// Where scripts/test.sh installs schemathesis (pinned in specs/contracts/schemathesis/).
fn schemathesis() -> PathBuf {
    let st = repo_root().join("target/schemathesis/bin/st");
    assert!(
        st.is_file(),
        "{} is missing: install it with `python3 -m venv target/schemathesis && \
         target/schemathesis/bin/pip install -r specs/contracts/schemathesis/requirements.txt` \
         (scripts/test.sh does)",
        st.display()
    );
    st
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_difference_between_the_contract_and_the_stack() {
    let st = schemathesis();
    let stack = Stack::start("contract", StackOptions::new("EdDSA")).await;
    // Signed up through the gateway's public /api/auth route, as a browser would be.
    let user = Session::sign_up(&stack.gateway_url, "contract").await;
    let token = user.token().await;
    let reports = repo_root().join("target/e2e/schemathesis");

    let run = || {
        let gateway = stack.gateway_url.clone();
        let user_id = user.user_id.clone();
        let (st, token, reports) = (st.clone(), token.clone(), reports.clone());
        tokio::task::spawn_blocking(move || {
            let root = repo_root();
            Command::new(st)
                .current_dir(&root)
                .arg("--config-file")
                .arg(root.join("specs/contracts/schemathesis/schemathesis.toml"))
                .args(["--no-color", "run"])
                .arg(root.join("specs/contracts/openapi.yaml"))
                .args(["--report", "junit", "--report-dir"])
                .arg(reports)
                .env("GATEWAY_URL", gateway)
                .env("API_TOKEN", token)
                .env("API_USER_ID", user_id)
                .output()
                .expect("run schemathesis")
        })
    };
    let mut output = run().await.unwrap();
    // Hypothesis (under schemathesis) now and then crashes inside itself while building its
    // generators ("AST constructor recursion depth mismatch", CPython's `ast.parse` called
    // from Hypothesis's lambda descriptions), which schemathesis reports as a Runtime Error
    // with no check failed. That says nothing about the stack, so such a run, and only such
    // a run, is repeated, up to twice (it crashed two runs in a row once in CI, 2026-12-04);
    // any failed check fails the test at once.
    let crashed_only =
        |stdout: &str| stdout.contains("Runtime Error") && !stdout.contains("Failures:");
    for _ in 0..2 {
        if output.status.success() || !crashed_only(&String::from_utf8_lossy(&output.stdout)) {
            break;
        }
        println!(
            "schemathesis crashed inside its generator, with no check failed; running it again"
        );
        output = run().await.unwrap();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary: phases, counts and the verdict line.
    let summary = stdout
        .find("API Operations:")
        .map_or(&*stdout, |start| &stdout[start..]);
    println!("{summary}");
    assert!(
        output.status.success() && stdout.contains("No issues found"),
        "schemathesis found differences between the contract and the stack:\n{stdout}\n{stderr}\n{}",
        stack.logs()
    );
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(
            stdout.contains(&format!("✅ {phase}")),
            "the {phase} phase did not run and pass:\n{summary}"
        );
    }
}
