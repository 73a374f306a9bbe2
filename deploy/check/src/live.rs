//! Asks a running binary whether it serves the paths the manifests probe.
//!
//! Each binary is started on a free loopback port with the least configuration it accepts
//! (generated test keys, the local PostgreSQL, an issuer URL nobody answers on), then each
//! probe path is requested without credentials, exactly as an orchestrator would. A path
//! counts as served when it answers 200 or 503 (serving, but not ready: the test issuer is
//! unreachable). Anything else (404, 401, 405) means a probe would never pass.

use std::{
    fs::File,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{probe, EnvList};

/// Statuses a probe path may answer without credentials.
pub const SERVED: &[u16] = &[200, 503];

/// A binary started for the check; killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: PathBuf,
}

impl Running {
    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Requests `path` and returns the status code.
    pub fn status(&self, path: &str) -> Result<u16, String> {
        probe::get(&format!("{}{path}", self.base), Duration::from_secs(5))
            .map_err(|e| e.to_string())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A port nobody listens on right now (bound then released; the window is tiny).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A value unique to this run, for generated keys and database names.
fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}{nanos:x}", std::process::id())
}

/// The environment to start `binary` with on `port`, for the variables its list names.
/// Fails on a required variable this module does not know how to fill.
pub fn env_for(binary: &str, list: &EnvList, port: u16) -> Result<Vec<(String, String)>, String> {
    let unreachable_issuer = format!("http://127.0.0.1:{}", free_port());
    let mut env = Vec::new();
    for var in list.iter() {
        let value = match var.name.as_str() {
            // The operators' listener on a port of the kernel's choice: the live check
            // probes the main one.
            "ADMIN_LISTEN" => "127.0.0.1:0".into(),
            n if n.ends_with("_LISTEN") => format!("127.0.0.1:{port}"),
            "PORT" => port.to_string(),
            "HOST" => "127.0.0.1".into(),
            // Test-only keys made per run: they protect nothing and are never logged here.
            "IDENTITY_KEYS" => format!("deploy-check:{}{}", nonce(), "x".repeat(32)),
            // Fixed, not per run: Better Auth encrypts its stored signing keys with it and
            // refuses a different one on the next run. Guards only the check's own database.
            "BETTER_AUTH_SECRET" => "deploy-check-only-not-a-secret-0000000000".into(),
            "BETTER_AUTH_URL" if binary != "better-auth" => unreachable_issuer.clone(),
            "JWKS_URL" => format!("{unreachable_issuer}/api/auth/jwks"),
            // Better Auth creates its database itself; tasks-service expects one to exist.
            "DATABASE_URL" if binary == "better-auth" => {
                "postgres://postgres@127.0.0.1:5432/deploy_check_better_auth".into()
            }
            "DATABASE_URL" => {
                ensure_database("deploy_check_tasks")?;
                "postgres://postgres@127.0.0.1:5432/deploy_check_tasks".into()
            }
            _ if var.required => {
                return Err(format!("{binary} requires {}, which the live check does not know how to fill; teach deploy/check/src/live.rs", var.name))
            }
            _ => continue,
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// Creates a database on the local PostgreSQL unless it exists (with psql, as
/// scripts/lib/common.sh does; a concurrent creator winning the race is fine).
pub fn ensure_database(name: &str) -> Result<(), String> {
    let psql = |sql: &str| {
        crate::binaries::run_with_deadline(
            Command::new("psql").args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-tAc",
                sql,
            ]),
            Duration::from_secs(20),
        )
        .map_err(|e| format!("cannot run psql ({e}); install the PostgreSQL client"))
    };
    let exists = format!("SELECT 1 FROM pg_database WHERE datname = '{name}'");
    let (ok, out, err) = psql(&exists)?;
    if !ok {
        return Err(format!("psql cannot reach PostgreSQL on 127.0.0.1:5432 (start it: scripts/ensure-postgres.sh): {}", err.trim()));
    }
    if out.trim() == "1" {
        return Ok(());
    }
    let (_, _, err) = psql(&format!("CREATE DATABASE \"{name}\""))?;
    match psql(&exists)? {
        (true, out, _) if out.trim() == "1" => Ok(()),
        _ => Err(format!("cannot create database {name}: {}", err.trim())),
    }
}

/// Starts `program args` with exactly `env` (plus PATH) and waits until `port` accepts.
pub fn start(
    name: &str,
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(String, String)],
    port: u16,
) -> Result<Running, String> {
    let log = std::env::temp_dir().join(format!("deploy-check-{name}-{}.log", nonce()));
    let file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err_file = file.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file);
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut running = Running {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    // Node runs its migrations before listening; a minute covers a cold PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(running);
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            return Err(format!(
                "{name} exited ({status}) before listening on {port}; its output:\n{}",
                running.log()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name} did not listen on {port} within 60 s; its output:\n{}",
                running.log()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
