//! A real browser: Debian's headless Chromium, driven by playwright-core, signs up on Better
//! Auth from the demo page's own origin, fetches a JWT and manages tasks through the gateway
//! cross-origin, proving CORS, preflight and the token flow. Leaves a screenshot in
//! `target/e2e/demo.png`.

use std::process::Command;

use e2e::stack::{repo_root, Stack, StackOptions};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_page_manages_tasks_cross_origin_in_headless_chromium() {
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)"
    );
    let demo_dir = repo_root().join("deploy/demo");
    assert!(
        demo_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in deploy/demo (scripts/test.sh does)"
    );
    let mut options = StackOptions::new("EdDSA");
    options.demo = true;
    let stack = Stack::start("browser", options).await;
    let screenshot = repo_root().join("target/e2e/demo.png");

    let stack_ref = &stack;
    let output = tokio::task::spawn_blocking({
        let auth = stack_ref.auth_url.clone();
        let api = stack_ref.gateway_url.clone();
        let demo = format!(
            "{}/",
            stack_ref.demo_url.clone().expect("demo page started")
        );
        let screenshot = screenshot.clone();
        move || {
            Command::new("node")
                .arg("browser-test.mjs")
                .current_dir(&demo_dir)
                .env("AUTH_URL", auth)
                .env("API_URL", api)
                .env("DEMO_URL", demo)
                .env("SCREENSHOT", screenshot)
                .env("CHROMIUM", CHROMIUM)
                .output()
                .expect("run node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("PASS"),
        "the browser test failed:\n{stdout}\n{stderr}\n{}",
        stack.logs()
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
}
