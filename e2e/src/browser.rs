//! The demo page's browser test (deploy/demo/browser-test.mjs) in Debian's headless Chromium,
//! against any stack: Better Auth and the gateway at whatever URLs the caller names.

use std::{path::Path, process::Command};

use crate::stack::repo_root;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the page and the browser find each part.
#[derive(Debug, Clone)]
pub struct BrowserTarget {
    /// Better Auth's base URL (direct, or the gateway's public `/api/auth/` route).
    pub auth_url: String,
    /// The gateway.
    pub api_url: String,
    /// The demo page, ending in `/`.
    pub demo_url: String,
}

/// Runs the browser test and asserts it passed and left `screenshot`; `logs` adds the
/// stack's logs to a failure message.
pub async fn run_browser_test(target: BrowserTarget, screenshot: &Path, logs: &dyn Fn() -> String) {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; scripts/test.sh does)"
    );
    let demo_dir = repo_root().join("deploy/demo");
    assert!(
        demo_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in deploy/demo (scripts/test.sh does)"
    );
    let output = tokio::task::spawn_blocking({
        let screenshot = screenshot.to_path_buf();
        move || {
            Command::new("node")
                .arg("browser-test.mjs")
                .current_dir(&demo_dir)
                .env("AUTH_URL", target.auth_url)
                .env("API_URL", target.api_url)
                .env("DEMO_URL", target.demo_url)
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
        logs()
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
}
