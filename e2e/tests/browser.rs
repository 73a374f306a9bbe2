//! A real browser: Debian's headless Chromium, driven by playwright-core, signs up on Better
//! Auth from the demo page's own origin, fetches a JWT and manages tasks through the gateway
//! cross-origin, proving CORS, preflight and the token flow. Leaves a screenshot in
//! `target/e2e/demo.png`.

use e2e::{
    browser::{run_browser_test, BrowserTarget},
    stack::{repo_root, Stack, StackOptions},
};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_page_manages_tasks_cross_origin_in_headless_chromium() {
    let mut options = StackOptions::new("EdDSA");
    options.demo = true;
    let stack = Stack::start("browser", options).await;
    let target = BrowserTarget {
        auth_url: stack.auth_url.clone(),
        api_url: stack.gateway_url.clone(),
        demo_url: format!("{}/", stack.demo_url.clone().expect("demo page started")),
    };
    let screenshot = repo_root().join("target/e2e/demo.png");
    run_browser_test(target, &screenshot, &|| stack.logs()).await;
}
