//! The gateway binary refusing a configuration that would open the boundary, or missing a
//! required setting, with a message naming the variable and the value to fix, and warning
//! when the operator opts in to a plain-http key set. Runs the real binary: exit status and stderr are what an operator sees.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

const BINARY: &str = env!("CARGO_BIN_EXE_gateway");

/// A gateway process with `env` on top of a minimal valid configuration.
fn start(env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut command = Command::new(BINARY);
    configured(&mut command);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the gateway binary starts");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, received)
}

/// `command` (the gateway, or a shell that execs it) with a minimal valid configuration and
/// nothing else from the test's environment, its JSON logs on a pipe.
fn configured(command: &mut Command) {
    command
        .env_clear()
        .env("IDENTITY_KEYS", crate::helpers::IDENTITY_KEYS)
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .env("ADMIN_LISTEN", "127.0.0.1:0")
        // Nothing listens there: the key fetch fails at once, which these tests ignore.
        .env("BETTER_AUTH_URL", "http://127.0.0.1:9")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
}

/// The process's exit status once it exits within `within`; else it is killed and `None`.
fn exited_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a gateway that must refuse to start: its exit code and stderr.
fn refused(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (mut child, lines) = start(env);
    let Some(status) = exited_within(&mut child, Duration::from_secs(10)) else {
        panic!(
            "the gateway started with {env:?}: {:?}",
            lines.try_iter().collect::<Vec<_>>()
        );
    };
    // The reader thread ends when the process's stderr closes.
    let stderr: Vec<String> = lines.iter().collect();
    (status.code(), stderr.join("\n"))
}

#[test]
fn a_public_route_covering_the_task_api_stops_the_gateway_at_start() {
    for route in ["/", "/api", "/api/"] {
        let routes = format!("/api/auth/=http://127.0.0.1:3000,{route}=http://127.0.0.1:3000");
        let (code, stderr) = refused(&[("PUBLIC_ROUTES", &routes)]);
        assert_eq!(code, Some(2), "{route}: {stderr}");
        assert!(
            stderr.contains("invalid configuration: PUBLIC_ROUTES:"),
            "{stderr}"
        );
        assert!(stderr.contains(&format!("{route:?}")), "{stderr}");
    }
}

#[test]
fn plain_http_key_sets_beyond_loopback_need_the_opt_in() {
    for (variable, env) in [
        (
            "BETTER_AUTH_URL",
            [("BETTER_AUTH_URL", "http://auth.internal:3000")],
        ),
        (
            "JWKS_URL",
            [("JWKS_URL", "http://auth.internal:3000/api/auth/jwks")],
        ),
        ("JWT_ISSUER", [("JWT_ISSUER", "http://auth.internal:3000")]),
    ] {
        let (code, stderr) = refused(&env);
        assert_eq!(code, Some(2), "{variable}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid configuration: {variable}:")),
            "{stderr}"
        );
        assert!(stderr.contains("JWKS_ALLOW_INSECURE_HTTP"), "{stderr}");
    }
}

#[test]
fn the_plain_http_opt_in_is_logged_as_a_warning_at_start() {
    let (mut child, lines) = start(&[
        ("BETTER_AUTH_URL", "http://auth.internal:9"),
        ("JWKS_ALLOW_INSECURE_HTTP", "true"),
    ]);
    let mut seen = Vec::new();
    let warned = loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) else {
            break false;
        };
        let warning = line.contains(r#""level":"WARN""#)
            && line.contains("JWKS_ALLOW_INSECURE_HTTP")
            && line.contains(r#""variable":"BETTER_AUTH_URL""#);
        seen.push(line);
        if warning {
            break true;
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(warned, "no warning in {seen:#?}");
}

#[test]
fn a_missing_identity_keys_is_reported_by_its_variable_not_as_flag_usage() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("BETTER_AUTH_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "gateway: invalid configuration: IDENTITY_KEYS: required, not set \
         (set the variable, or pass --identity-keys)"
    );
}

#[test]
fn the_log_filter_flag_is_rust_log_as_in_tasks_service() {
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--rust-log <RUST_LOG>"), "{help}");
}

/// A proxy named in the environment never stands between the gateway and its key set: over
/// plain http it could publish a key of its own. The key fetch reaches the issuer's own
/// address; a listener in `HTTP_PROXY` and `ALL_PROXY` sees no connection.
#[test]
fn the_key_fetch_ignores_proxies_named_in_the_environment() {
    let issuer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let issuer_url = format!("http://{}", issuer.local_addr().unwrap());
    let (mut child, _lines) = start(&[
        ("BETTER_AUTH_URL", &issuer_url),
        ("HTTP_PROXY", &proxy_url),
        ("http_proxy", &proxy_url),
        ("ALL_PROXY", &proxy_url),
    ]);
    // The first fetch at start: wait for it where the issuer listens (the test's deadline is
    // the accept's own: a gateway that sent it to the proxy leaves this accept waiting).
    let (accepted, received) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = accepted.send(issuer.accept().map(|(socket, _)| socket));
    });
    let fetched = received.recv_timeout(Duration::from_secs(10));
    let through_proxy = proxy.accept().is_ok();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        fetched.is_ok_and(|socket| socket.is_ok()),
        "the key fetch never reached the issuer (through the proxy: {through_proxy})"
    );
    assert!(!through_proxy, "the key fetch went through HTTP_PROXY");
}

/// A listener that cannot be opened is named by its variable and address: "address in use"
/// alone does not say whether the public or the admin listener collided.
#[test]
fn a_taken_address_is_reported_with_the_variable_that_asked_for_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    for variable in ["GATEWAY_LISTEN", "ADMIN_LISTEN"] {
        let (code, stderr) = refused(&[(variable, &address)]);
        assert_eq!(code, Some(1), "{variable}: {stderr}");
        assert!(
            stderr.contains(&format!("{variable}: cannot listen on {address}")),
            "{variable}: {stderr}"
        );
    }
}

/// Started under a soft open-file limit of 1024 (a login shell's, systemd's default), the
/// gateway raises it to the hard limit before it derives its connection cap from it, and
/// logs the cap: under 1024 it would be 384.
#[test]
fn the_soft_open_file_limit_is_raised_before_the_connection_cap_is_derived() {
    let hard: u64 = String::from_utf8(
        Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap_or(u64::MAX); // "unlimited"
    assert!(
        hard > 2048,
        "this test needs a hard open-file limit above 2048 (ulimit -Hn says {hard})"
    );
    let mut command = Command::new("sh");
    command.args(["-c", "ulimit -Sn 1024 && exec \"$0\"", BINARY]);
    configured(&mut command);
    let mut child = command.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let cap = stderr
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("connection cap"))
        .and_then(|line| {
            let after = line.split("\"max_connections\":").nth(1)?;
            after
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        });
    child.kill().unwrap();
    child.wait().unwrap();
    let cap = cap.expect("the gateway logs its connection cap at start");
    assert!(
        cap > (1024 - 256) / 2,
        "the cap ({cap}) follows the soft limit of 1024, not the hard one ({hard})"
    );
}

#[test]
fn a_log_filter_that_would_hide_the_logs_stops_the_gateway_at_start() {
    for (filter, directive) in [
        ("verbose", "\"verbose\""),
        ("gateway=verbose", "\"gateway=verbose\""),
    ] {
        let (code, stderr) = refused(&[("RUST_LOG", filter)]);
        assert_eq!(code, Some(2), "{filter}: {stderr}");
        assert!(
            stderr.contains("invalid configuration: RUST_LOG: "),
            "{stderr}"
        );
        assert!(stderr.contains(directive), "{stderr}");
    }
}

/// The first stop signal is honoured slowly on purpose (`SHUTDOWN_DELAY_SECS`, then
/// draining). A second one within a second is the same request delivered twice (Ctrl-C
/// reaches the whole process group, a wrapper may forward it) and changes nothing; one after
/// that, from an operator pressing Ctrl-C again or an orchestrator that gave up, ends the
/// process at once.
#[test]
fn a_second_stop_signal_ends_the_gateway_at_once() {
    let (child, lines) = start(&[("SHUTDOWN_DELAY_SECS", "300")]);
    let mut child = KillOnDrop(child);
    let until_logged = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("the gateway did not log {needle:?} within 10 s"),
            }
        }
    };
    until_logged("gateway listening");
    let pid = child.0.id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success());
    };
    signal("-TERM");
    until_logged("still accepting for SHUTDOWN_DELAY_SECS");
    // The gateway logs that after it took the first signal's time: a second from here is
    // past its window whatever the delay in between.
    let first = std::time::Instant::now();
    signal("-INT");
    until_logged("SIGINT received");
    // Past the second in which a repeat is ignored: the repeat was heard, and ignored.
    std::thread::sleep(proto_shared::shutdown::SECOND_SIGNAL_AFTER.saturating_sub(first.elapsed()));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "a repeat within a second ended the gateway"
    );
    signal("-INT");
    let status = exited_within(&mut child.0, Duration::from_secs(10))
        .expect("a second signal left the gateway running out its 300 s delay");
    assert_eq!(status.code(), Some(130));
    until_logged("second stop signal");
}

/// A child process killed when the test that started it ends, failed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
