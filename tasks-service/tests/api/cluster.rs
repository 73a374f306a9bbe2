//! A throw-away PostgreSQL cluster (initdb + pg_ctl on a free port) for tests that must stop
//! the database or change cluster-wide roles, which the machine's shared server must never see,
//! or that need TLS, which it does not serve.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throw-away PostgreSQL cluster; stopped and deleted on drop.
pub struct PrivateCluster {
    dir: PathBuf,
    port: u16,
    /// Extra `postgres` options (`-c ssl=on ...`), kept so a restart keeps them.
    extra_options: String,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let path = format!("{PG_BIN}/{tool}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install PostgreSQL 15 server binaries (apt-get install postgresql-15)"
    );
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(&path)
    };
    command.args(args).output().expect("run a PostgreSQL tool")
}

/// Runs the openssl CLI in `dir`, failing with what to install when it is missing.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install it (apt-get install openssl)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throw-away CA (`ca.pem`) and a server certificate it signed for localhost and 127.0.0.1,
/// in `dir`; returns the options that make PostgreSQL serve TLS with them.
fn make_certificates(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let new_p256_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let ca = format!("req -x509 {new_p256_key} -keyout ca.key -out ca.pem -days 2");
    let ca: Vec<&str> = ca
        .split(' ')
        .chain(["-subj", "/CN=tasks test CA"])
        .collect();
    openssl(dir, &ca);
    let csr = format!("req {new_p256_key} -keyout server.key -out server.csr -subj /CN=localhost");
    openssl(dir, &csr.split(' ').collect::<Vec<_>>());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &"x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
          -extfile server.ext -out server.crt"
            .split_whitespace()
            .collect::<Vec<_>>(),
    );
    let key = dir.join("server.key");
    // PostgreSQL refuses a key file others can read.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "chown the certificates to postgres");
    }
    format!(
        " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        dir.join("server.crt").display(),
        key.display()
    )
}

impl PrivateCluster {
    pub fn start() -> Self {
        Self::init(false)
    }

    /// A cluster serving TLS (and plain TCP) with a certificate from a throw-away CA, whose
    /// certificate is at [`PrivateCluster::ca_file`].
    pub fn start_with_tls() -> Self {
        Self::init(true)
    }

    /// The CA that signed the server certificate of a [`PrivateCluster::start_with_tls`].
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls").join("ca.pem")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn init(tls: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("tasks-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let data = dir.join("data");
        let out = pg_tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let extra_options = if tls {
            make_certificates(&dir.join("tls"))
        } else {
            String::new()
        };
        let cluster = Self {
            dir,
            port,
            extra_options,
        };
        cluster.pg_ctl_start();
        cluster
    }

    pub fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1{}",
            self.port,
            self.dir.display(),
            self.extra_options
        );
        let log = self.dir.join("log");
        let data = self.data();
        let out = pg_tool(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop_immediately(&self) {
        let out = pg_tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = pg_tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
