//! `http-probe`: exits 0 when a GET answers 2xx, 1 otherwise. For distroless images.
//!
//! Usage: `http-probe http://127.0.0.1:8080/readyz`
//!    or: `http-probe --listen-env GATEWAY_LISTEN /readyz` (address read from the variable,
//!        so a Dockerfile HEALTHCHECK follows a changed port)
//!    or: `http-probe --body http://127.0.0.1:9090/metrics` (also prints the body: what an
//!        operator reads inside a container with no shell and no curl).

use std::{io::Write, process::ExitCode, time::Duration};

use deploy_check::probe;

/// Below the 3 s healthcheck timeouts used in deploy/, so the probe reports its own reason.
const TIMEOUT: Duration = Duration::from_millis(2500);

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let print_body = args.first().is_some_and(|a| a == "--body");
    if print_body {
        args.remove(0);
    }
    let url = match args.as_slice() {
        [url] if url.starts_with("http://") => Ok(url.clone()),
        [flag, var, path] if flag == "--listen-env" => {
            probe::url_from_listen(var, std::env::var(var).ok().as_deref(), path)
        }
        _ => {
            eprintln!("usage: http-probe [--body] URL | http-probe [--body] --listen-env VAR PATH");
            return ExitCode::from(2);
        }
    };
    let answer = url.and_then(|url| {
        let (status, body) = if print_body {
            probe::get_body(&url, TIMEOUT)?
        } else {
            (probe::get(&url, TIMEOUT)?, Vec::new())
        };
        // Printed whatever the status: an error's body says why.
        std::io::stdout().write_all(&body).ok();
        Ok((status, url))
    });
    match answer {
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
