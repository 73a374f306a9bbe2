//! `http-probe`: exits 0 when a GET answers 2xx, 1 otherwise. For distroless images.
//!
//! Usage: `http-probe http://127.0.0.1:8080/readyz`
//!    or: `http-probe --listen-env GATEWAY_LISTEN /readyz` (address read from the variable,
//!        so a Dockerfile HEALTHCHECK follows a changed port).

use std::{process::ExitCode, time::Duration};

use deploy_check::probe;

/// Below the 3 s healthcheck timeouts used in deploy/, so the probe reports its own reason.
const TIMEOUT: Duration = Duration::from_millis(2500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = match args.as_slice() {
        [url] if url.starts_with("http://") => Ok(url.clone()),
        [flag, var, path] if flag == "--listen-env" => {
            probe::url_from_listen(var, std::env::var(var).ok().as_deref(), path)
        }
        _ => {
            eprintln!("usage: http-probe URL | http-probe --listen-env VAR PATH");
            return ExitCode::from(2);
        }
    };
    match url.and_then(|url| Ok((probe::get(&url, TIMEOUT)?, url))) {
        Ok((status, _)) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok((status, url)) => {
            eprintln!("http-probe: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("http-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
