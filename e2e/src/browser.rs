//! The demo page's browser test (deploy/demo/browser-test.mjs) in Debian's headless Chromium,
//! against any stack: Better Auth and the gateway at whatever URLs the caller names.

use std::{path::Path, process::Command};

use crate::stack::repo_root;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The first eight bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Removes `path` if an earlier run left it there, so that finding it afterwards shows this
/// run wrote it.
pub fn remove_stale(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove the old {}: {e}", path.display()),
    }
}

/// Asserts `path` holds a PNG: its signature and something after it.
#[track_caller]
pub fn assert_png(path: &Path) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => panic!("no screenshot at {}: {e}", path.display()),
    };
    assert!(
        bytes.starts_with(PNG_SIGNATURE) && bytes.len() > PNG_SIGNATURE.len(),
        "{} is not a PNG image: {} bytes starting {:02x?}",
        path.display(),
        bytes.len(),
        &bytes[..bytes.len().min(PNG_SIGNATURE.len())]
    );
}

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

/// Runs the browser test and asserts it passed and wrote a PNG to `screenshot`; `logs` adds the
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
    remove_stale(screenshot);
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
    assert_png(screenshot);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `bytes` in the temporary directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(bytes: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("e2e-png-{}.png", uuid::Uuid::new_v4()));
            std::fs::write(&path, bytes).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_png_passes() {
        assert_png(&TempFile::with(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").0);
    }

    #[test]
    #[should_panic(expected = "is not a PNG")]
    fn text_is_not_a_png() {
        assert_png(&TempFile::with(b"<html>an error page</html>").0);
    }

    #[test]
    #[should_panic(expected = "is not a PNG")]
    fn a_signature_alone_is_not_a_png() {
        assert_png(&TempFile::with(PNG_SIGNATURE).0);
    }

    #[test]
    #[should_panic(expected = "no screenshot")]
    fn a_removed_file_is_no_screenshot() {
        let file = TempFile::with(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        remove_stale(&file.0);
        remove_stale(&file.0); // Already gone: not an error.
        assert_png(&file.0);
    }
}
