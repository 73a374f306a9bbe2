//! The whole stack as separate processes: a real Better Auth server (Node), tasks-service and
//! one or more gateway replicas (the binaries `cargo test --workspace` built), optionally the
//! demo page; each on a free port with its own databases, each awaited ready. Dropping the
//! stack stops them and drops the databases.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::process::{free_port, free_ports, Process};

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
    /// How many gateway replicas share the Better Auth server and tasks-service.
    pub gateway_replicas: usize,
    /// Better Auth's rate limits (`RATE_LIMIT`), off unless a scenario is about them: the
    /// other scenarios sign in more often than its limit on sign-in allows.
    pub auth_rate_limit: bool,
    /// Point every replica's revocation feed (`REVOCATION_DATABASE_URL`) at Better Auth's
    /// database, as the given role (`None`: `postgres`).
    pub revocation: Option<RevocationFeed>,
    /// The Better Auth server to run, a script in `deploy/better-auth/`: the project's
    /// `server.mjs`, or an app set up as users set up their own.
    pub better_auth_script: &'static str,
    /// Runs with Better Auth's database URL once Better Auth is ready and before any gateway
    /// starts, e.g. to apply SQL the way an operator would.
    pub before_gateways: Option<BeforeGateways>,
}

/// A step between Better Auth being ready and the gateways starting.
#[derive(Clone)]
pub struct BeforeGateways(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for BeforeGateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeGateways(..)")
    }
}

/// How the gateways read the revocation feed.
#[derive(Debug, Clone, Default)]
pub struct RevocationFeed {
    /// The PostgreSQL role in `REVOCATION_DATABASE_URL`; `None` for `postgres`.
    pub role: Option<String>,
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
            gateway_replicas: 1,
            auth_rate_limit: false,
            revocation: None,
            better_auth_script: "server.mjs",
            before_gateways: None,
        }
    }
}

/// One gateway process and where it answers.
#[derive(Debug)]
pub struct Gateway {
    /// The public listener.
    pub url: String,
    /// The operators' listener (`/metrics`, `/healthz`).
    pub admin_url: String,
    pub process: Process,
}

/// A running stack. URLs have no trailing slash.
#[derive(Debug)]
pub struct Stack {
    pub auth_url: String,
    /// Better Auth's PostgreSQL database, as the `postgres` role.
    pub auth_database_url: String,
    pub tasks_url: String,
    /// The first gateway replica's public URL.
    pub gateway_url: String,
    pub demo_url: Option<String>,
    pub better_auth: Process,
    pub tasks_service: Process,
    /// Every replica, `gateways[0]` answering at `gateway_url`.
    pub gateways: Vec<Gateway>,
    pub demo: Option<Process>,
    /// What every replica was started with, to start one again.
    gateway_env: Vec<(String, String)>,
    log_dir: PathBuf,
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
        // server.mjs creates its own database; an app set up as users set theirs up expects
        // one to exist.
        if options.better_auth_script != "server.mjs" {
            create_database(&auth_db).await;
        }

        let mut ports = free_ports(3 + options.gateway_replicas.max(1));
        let gateway_ports = ports.split_off(3);
        let [auth_port, tasks_port, demo_port] = [ports[0], ports[1], ports[2]];
        let auth_url = format!("http://127.0.0.1:{auth_port}");
        let auth_database_url = format!("postgres://postgres@127.0.0.1:5432/{auth_db}");
        let tasks_url = format!("http://127.0.0.1:{tasks_port}");
        let gateway_urls: Vec<String> = gateway_ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect();
        let demo_url = format!("http://127.0.0.1:{demo_port}");
        let identity_keys = format!("gateway:{}", random_secret());

        let better_auth_dir = root.join("deploy/better-auth");
        assert!(
            better_auth_dir.join("node_modules/better-auth").is_dir(),
            "Better Auth's npm packages are missing: run `npm ci` in deploy/better-auth (scripts/test.sh does)"
        );
        let mut auth = node(&better_auth_dir, options.better_auth_script);
        auth.env("PORT", auth_port.to_string())
            .env("HOST", "127.0.0.1")
            .env("BETTER_AUTH_URL", &auth_url)
            .env("BETTER_AUTH_SECRET", random_secret())
            .env("DATABASE_URL", &auth_database_url)
            .env("JWT_ALG", options.alg)
            .env("JWT_EXPIRATION", options.jwt_expiration)
            .env(
                "RATE_LIMIT",
                if options.auth_rate_limit { "on" } else { "off" },
            )
            .env(
                "TRUSTED_ORIGINS",
                std::iter::once(&demo_url)
                    .chain(&gateway_urls)
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

        // scripts/test.sh's second run also puts the gateways on tasks-service's Unix socket,
        // as deploy/k8s does (E2E_TASKS_SOCKET=1); the TCP listener stays for direct callers.
        let tasks_socket = std::env::var_os("E2E_TASKS_SOCKET")
            .map(|_| std::env::temp_dir().join(format!("e2e-tasks-{}.sock", &suffix[..12])));
        let gateway_upstream = match &tasks_socket {
            Some(path) => format!("unix:{}", path.display()),
            None => tasks_url.clone(),
        };
        let mut tasks = binary("tasks-service");
        if let Some(path) = &tasks_socket {
            tasks.env("TASKS_SOCKET", path);
        }
        tasks
            .env("TASKS_LISTEN", format!("127.0.0.1:{tasks_port}"))
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{tasks_db}"),
            )
            .env("IDENTITY_KEYS", &identity_keys)
            .env("LOG_FORMAT", "json");
        let mut tasks_service = Process::spawn("tasks-service", tasks, &log_dir);

        // The gateways start only once Better Auth serves its JWKS, as in the compose file.
        better_auth
            .wait_ready(&format!("{auth_url}/healthz"), READY_TIMEOUT)
            .await;
        if let Some(BeforeGateways(step)) = &options.before_gateways {
            step(&auth_database_url);
        }
        let mut gateway_env: Vec<(String, String)> = vec![
            ("TASKS_SERVICE_URL".into(), gateway_upstream),
            ("BETTER_AUTH_URL".into(), auth_url.clone()),
            ("PUBLIC_ROUTES".into(), format!("/api/auth/={auth_url}")),
            (
                "CORS_ALLOWED_ORIGINS".into(),
                std::iter::once(&demo_url)
                    .chain(&options.extra_origins)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("IDENTITY_KEYS".into(), identity_keys.clone()),
            ("LOG_FORMAT".into(), "json".into()),
        ];
        // scripts/test.sh runs the suite once more with the gateway on another runtime
        // layout and worker count: how its workers share the load must change nothing
        // anyone can see.
        if let Ok(layout) = std::env::var("E2E_RUNTIME_LAYOUT") {
            gateway_env.push(("RUNTIME_LAYOUT".into(), layout));
        }
        if let Ok(workers) = std::env::var("E2E_WORKER_THREADS") {
            gateway_env.push(("WORKER_THREADS".into(), workers));
        }
        if let Some(feed) = &options.revocation {
            let role = feed.role.as_deref().unwrap_or("postgres");
            gateway_env.push((
                "REVOCATION_DATABASE_URL".into(),
                format!("postgres://{role}@127.0.0.1:5432/{auth_db}"),
            ));
        }
        gateway_env.extend(
            options
                .gateway_env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone())),
        );
        let gateways: Vec<Gateway> = gateway_ports
            .iter()
            .enumerate()
            .map(|(index, port)| spawn_gateway(&replica_name(index), *port, &gateway_env, &log_dir))
            .collect();

        tasks_service
            .wait_ready(&format!("{tasks_url}/readyz"), READY_TIMEOUT)
            .await;
        let mut gateways = gateways;
        for gateway in &mut gateways {
            let ready = format!("{}/readyz", gateway.url);
            gateway.process.wait_ready(&ready, READY_TIMEOUT).await;
        }

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
            auth_database_url,
            tasks_url,
            gateway_url: gateway_urls[0].clone(),
            demo_url: options.demo.then_some(demo_url),
            better_auth,
            tasks_service,
            gateways,
            demo,
            gateway_env,
            log_dir,
            databases: vec![auth_db, tasks_db],
        }
    }

    /// Every gateway replica's public URL.
    pub fn gateway_urls(&self) -> Vec<String> {
        self.gateways.iter().map(|g| g.url.clone()).collect()
    }

    /// Stops replica `index` (SIGTERM), returning once it has exited; panics if it does not
    /// exit cleanly within 10 s.
    pub fn stop_gateway(&mut self, index: usize) {
        let gateway = &mut self.gateways[index];
        assert!(
            gateway.process.terminate(),
            "{} did not stop cleanly:\n{}",
            gateway.url,
            gateway.process.log_tail()
        );
    }

    /// Starts replica `index` again with the same configuration and waits until it reports
    /// ready. It listens on a new port (see `gateways[index].url`): the old one may have been
    /// handed to another test's server while the replica was down.
    pub async fn start_gateway(&mut self, index: usize) {
        // A log of its own: the first run's log stays readable.
        let name = format!("{}-restarted", replica_name(index));
        let mut gateway = spawn_gateway(&name, free_port(), &self.gateway_env, &self.log_dir);
        let ready = format!("{}/readyz", gateway.url);
        gateway.process.wait_ready(&ready, READY_TIMEOUT).await;
        if index == 0 {
            self.gateway_url = gateway.url.clone();
        }
        self.gateways[index] = gateway;
    }

    /// The logs of every part, for a failure message.
    pub fn logs(&self) -> String {
        [&self.better_auth, &self.tasks_service]
            .into_iter()
            .chain(self.gateways.iter().map(|g| &g.process))
            .map(Process::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Starts a gateway replica named `name` (its log file) on `port` with `env`; its admin
/// listener on a free port, so a test can read its metrics.
fn spawn_gateway(name: &str, port: u16, env: &[(String, String)], log_dir: &Path) -> Gateway {
    let admin_port = free_port();
    let mut command = binary("gateway");
    command
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"));
    for (key, value) in env {
        command.env(key, value);
    }
    Gateway {
        url: format!("http://127.0.0.1:{port}"),
        admin_url: format!("http://127.0.0.1:{admin_port}"),
        process: Process::spawn(name, command, log_dir),
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Stop the servers before their databases go away; Process::drop would do it later.
        for gateway in &mut self.gateways {
            gateway.process.terminate();
        }
        for process in [&mut self.tasks_service, &mut self.better_auth] {
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

/// `gateway` for the first replica (as before there were several), `gateway-2` and on after.
fn replica_name(index: usize) -> String {
    if index == 0 {
        "gateway".to_owned()
    } else {
        format!("gateway-{}", index + 1)
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
