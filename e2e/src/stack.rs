//! The whole stack as separate processes: a real Better Auth server (Node), tasks-service and
//! the gateway (the binaries `cargo test --workspace` built), optionally the demo page; each
//! on a free port with its own databases, each awaited ready. Dropping the stack stops them
//! and drops the databases.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::process::{free_port, Process};

/// What varies between end-to-end scenarios.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// `JWT_ALG` of the Better Auth server: EdDSA, ES256, RS256, PS256 or ES512.
    pub alg: &'static str,
    /// `JWT_EXPIRATION` of the Better Auth server, e.g. `15m` or `3s`.
    pub jwt_expiration: &'static str,
    /// `(JWKS_ROTATION_INTERVAL, JWKS_GRACE_PERIOD)` in seconds, to let Better Auth rotate.
    pub rotation: Option<(u32, u32)>,
    /// Extra gateway environment, e.g. `("JWT_LEEWAY_SECS", "0")`.
    pub gateway_env: Vec<(&'static str, String)>,
    /// Also serve `deploy/demo/` on its own origin.
    pub demo: bool,
    /// More browser origins (e.g. a Next.js app's) that Better Auth trusts and the gateway
    /// allows with CORS.
    pub extra_origins: Vec<String>,
}

impl StackOptions {
    /// Defaults for algorithm `alg`: 15-minute tokens, no rotation, no demo page.
    pub fn new(alg: &'static str) -> Self {
        Self {
            alg,
            jwt_expiration: "15m",
            rotation: None,
            gateway_env: Vec::new(),
            demo: false,
            extra_origins: Vec::new(),
        }
    }
}

/// A running stack. URLs have no trailing slash.
#[derive(Debug)]
pub struct Stack {
    pub auth_url: String,
    pub tasks_url: String,
    pub gateway_url: String,
    pub demo_url: Option<String>,
    pub better_auth: Process,
    pub tasks_service: Process,
    pub gateway: Process,
    pub demo: Option<Process>,
    databases: Vec<String>,
}

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Stack {
    /// Starts every part for the scenario `name` (used for database and log names).
    pub async fn start(name: &str, options: StackOptions) -> Self {
        let root = repo_root();
        let log_dir = root.join("target/e2e/logs").join(name);
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let auth_db = format!("e2e_auth_{}", &suffix[..12]);
        let tasks_db = format!("e2e_tasks_{}", &suffix[..12]);
        create_database(&tasks_db).await;

        let [auth_port, tasks_port, gateway_port, demo_port] = [(); 4].map(|()| free_port());
        let auth_url = format!("http://127.0.0.1:{auth_port}");
        let tasks_url = format!("http://127.0.0.1:{tasks_port}");
        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        let demo_url = format!("http://127.0.0.1:{demo_port}");
        let identity_keys = format!("gateway:{}", random_secret());

        let better_auth_dir = root.join("deploy/better-auth");
        assert!(
            better_auth_dir.join("node_modules/better-auth").is_dir(),
            "Better Auth's npm packages are missing: run `npm ci` in deploy/better-auth (scripts/test.sh does)"
        );
        let mut auth = node(&better_auth_dir, "server.mjs");
        auth.env("PORT", auth_port.to_string())
            .env("HOST", "127.0.0.1")
            .env("BETTER_AUTH_URL", &auth_url)
            .env("BETTER_AUTH_SECRET", random_secret())
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{auth_db}"),
            )
            .env("JWT_ALG", options.alg)
            .env("JWT_EXPIRATION", options.jwt_expiration)
            .env("RATE_LIMIT", "off")
            .env(
                "TRUSTED_ORIGINS",
                [&demo_url, &gateway_url]
                    .into_iter()
                    .chain(&options.extra_origins)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        if let Some((interval, grace)) = options.rotation {
            auth.env("JWKS_ROTATION_INTERVAL", interval.to_string())
                .env("JWKS_GRACE_PERIOD", grace.to_string());
        }
        let mut better_auth = Process::spawn("better-auth", auth, &log_dir);

        let mut tasks = binary("tasks-service");
        tasks
            .env("TASKS_LISTEN", format!("127.0.0.1:{tasks_port}"))
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{tasks_db}"),
            )
            .env("IDENTITY_KEYS", &identity_keys)
            .env("LOG_FORMAT", "json");
        let mut tasks_service = Process::spawn("tasks-service", tasks, &log_dir);

        // The gateway starts only once Better Auth serves its JWKS, as in the compose file.
        better_auth
            .wait_ready(&format!("{auth_url}/healthz"), READY_TIMEOUT)
            .await;
        let mut gw = binary("gateway");
        gw.env("GATEWAY_LISTEN", format!("127.0.0.1:{gateway_port}"))
            // The admin listener on a port of the kernel's choice: stacks run side by side,
            // and nothing here scrapes /metrics.
            .env("ADMIN_LISTEN", "127.0.0.1:0")
            .env("TASKS_SERVICE_URL", &tasks_url)
            .env("BETTER_AUTH_URL", &auth_url)
            .env("PUBLIC_ROUTES", format!("/api/auth/={auth_url}"))
            .env(
                "CORS_ALLOWED_ORIGINS",
                std::iter::once(&demo_url)
                    .chain(&options.extra_origins)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .env("IDENTITY_KEYS", &identity_keys)
            .env("LOG_FORMAT", "json");
        for (key, value) in &options.gateway_env {
            gw.env(key, value);
        }
        let mut gateway = Process::spawn("gateway", gw, &log_dir);

        tasks_service
            .wait_ready(&format!("{tasks_url}/readyz"), READY_TIMEOUT)
            .await;
        gateway
            .wait_ready(&format!("{gateway_url}/readyz"), READY_TIMEOUT)
            .await;

        let demo = if options.demo {
            let demo_dir = root.join("deploy/demo");
            let mut serve = node(&demo_dir, "serve.mjs");
            serve.env("DEMO_PORT", demo_port.to_string());
            let mut demo = Process::spawn("demo", serve, &log_dir);
            demo.wait_ready(&format!("{demo_url}/"), READY_TIMEOUT)
                .await;
            Some(demo)
        } else {
            None
        };

        Self {
            auth_url,
            tasks_url,
            gateway_url,
            demo_url: options.demo.then_some(demo_url),
            better_auth,
            tasks_service,
            gateway,
            demo,
            databases: vec![auth_db, tasks_db],
        }
    }

    /// The logs of every part, for a failure message.
    pub fn logs(&self) -> String {
        [&self.better_auth, &self.tasks_service, &self.gateway]
            .iter()
            .map(|p| p.log_tail())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Stop the servers before their databases go away; Process::drop would do it later.
        for process in [
            &mut self.gateway,
            &mut self.tasks_service,
            &mut self.better_auth,
        ] {
            process.terminate();
        }
        self.demo.take();
        for database in &self.databases {
            let _ = Command::new("psql")
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                ])
                .arg(format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                ))
                .output();
        }
    }
}

/// The workspace root (this crate lives in `e2e/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_path_buf()
}

/// A workspace binary from the same profile directory as the running test.
fn binary(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build -p {name}` (`cargo test --workspace` and scripts/test.sh do)",
        path.display()
    );
    let mut command = Command::new(path);
    clean_env(&mut command);
    command
}

/// `node script` in `dir`, with a clean environment (see [`clean_env`]).
pub fn node(dir: &Path, script: &str) -> Command {
    let mut command = Command::new("node");
    command.arg(script).current_dir(dir);
    clean_env(&mut command);
    command
}

/// Each part gets exactly the configuration the scenario gives it, whatever the CI's
/// environment holds (a stray DATABASE_URL must not point a test at the wrong database).
pub fn clean_env(command: &mut Command) {
    command.env_clear();
    for key in ["PATH", "HOME", "TMPDIR", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    command.env("RUST_LOG", "info");
}

async fn create_database(name: &str) {
    let (client, connection) = tokio_postgres::connect(ADMIN_URL, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {ADMIN_URL} ({e}): start it with scripts/ensure-postgres.sh")
        });
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create a database for the scenario");
}

/// 48 random URL-safe characters: long enough for every secret the parts require.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
