//! The Next.js example (examples/nextjs), built with `next build` and served with `next
//! start`, in headless Chromium against the real stack: one build served twice, with the
//! browser calling through the app's own origin and calling the gateway cross-origin. Two
//! users, each seeing only their own tasks in the browser and server-rendered; sign-out ends
//! access. Screenshots in `target/e2e/nextjs/`.

use std::{path::Path, process::Command, time::Duration};

use e2e::{
    browser::{assert_png, remove_stale},
    process::{free_ports, Process},
    stack::{node, repo_root, RevocationFeed, Stack, StackOptions},
};

const CHROMIUM: &str = "/usr/bin/chromium";

/// `next start` of the built example on `port`, calling the gateway at `gateway`.
fn next_start(app: &Path, port: u16, gateway: &str, browser_calls: &str) -> Command {
    let mut command = node(app, "node_modules/next/dist/bin/next");
    command
        .args(["start", "--hostname", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .env("GATEWAY_URL", gateway)
        .env("BROWSER_CALLS", browser_calls)
        .env("NEXT_TELEMETRY_DISABLED", "1");
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nextjs_example_works_same_origin_and_cross_origin_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; scripts/test.sh does)"
    );
    let app = repo_root().join("examples/nextjs");
    assert!(
        app.join("node_modules/next").is_dir() && app.join("node_modules/playwright-core").is_dir(),
        "the example's npm packages are missing: run `npm ci` in examples/nextjs (scripts/test.sh does)"
    );
    assert!(
        app.join(".next/BUILD_ID").is_file(),
        "the example is not built: run `npm run build` in examples/nextjs (scripts/test.sh does)"
    );
    let ports = free_ports(2);
    let (same_port, cross_port) = (ports[0], ports[1]);
    let same = format!("http://127.0.0.1:{same_port}");
    let cross = format!("http://127.0.0.1:{cross_port}");
    let mut options = StackOptions::new("EdDSA");
    // Better Auth trusts both apps' origins; the gateway allows the cross-origin one.
    options.extra_origins = vec![same.clone(), cross.clone()];
    // The gateway listens for revocations, so sign-out ends a copied token's access too.
    options.revocation = Some(RevocationFeed::default());
    let stack = Stack::start("nextjs", options).await;

    let logs = repo_root().join("target/e2e/logs/nextjs");
    let mut apps = Vec::new();
    for (name, port, url, calls) in [
        ("next-same-origin", same_port, &same, "same-origin"),
        ("next-cross-origin", cross_port, &cross, "cross-origin"),
    ] {
        let command = next_start(&app, port, &stack.gateway_url, calls);
        let mut process = Process::spawn(name, command, &logs);
        process.wait_ready(url, Duration::from_secs(60)).await;
        apps.push(process);
    }

    let screenshots = repo_root().join("target/e2e/nextjs");
    const SHOTS: [&str; 4] = [
        "alice-same-origin.png",
        "alice-server-rendered.png",
        "bob-cross-origin.png",
        "alice-signed-out.png",
    ];
    for shot in SHOTS {
        remove_stale(&screenshots.join(shot));
    }
    let output = tokio::task::spawn_blocking({
        let gateway = stack.gateway_url.clone();
        let screenshots = screenshots.clone();
        move || {
            Command::new("node")
                .arg("browser-test.mjs")
                .current_dir(&app)
                .env("SAME_ORIGIN_URL", same)
                .env("CROSS_ORIGIN_URL", cross)
                .env("GATEWAY_URL", gateway)
                .env("SCREENSHOTS", screenshots)
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
    let app_logs: Vec<String> = apps.iter().map(Process::log_tail).collect();
    assert!(
        output.status.success() && stdout.contains("PASS"),
        "the Next.js browser test failed:\n{stdout}\n{stderr}\n{}\n{}",
        app_logs.join("\n"),
        stack.logs()
    );
    for shot in SHOTS {
        assert_png(&screenshots.join(shot));
    }
}
