//! Load generator for bench/tasks/run.sh. Not a test: it prints figures, it asserts nothing.
//!
//! `loadgen seed  BASE KEY USER COUNT`            create COUNT tasks for USER
//! `loadgen http  BASE KEY USER list|create|toggle SECONDS CONCURRENCY`
//! `loadgen db    DATABASE_URL USER SECONDS CONCURRENCY ROUNDS`
//!
//! `http` signs every request afresh (as the gateway does) and prints one row:
//! `name  requests  req/s  p50_us  p99_us  errors`; requests, req/s and the percentiles
//! (nearest rank) count the successful requests only (`http`: 2xx; `db`: the user's 20 rows),
//! `errors` the others. With `LOADGEN_CREDENTIAL=v1` it signs v1
//! credentials (for a service with IDENTITY_ACCEPT_V1), so one run can compare v1 with v2;
//! the row's name then ends in ` v1`. With `LOADGEN_USERS=<file>` (lines `user` or
//! `user token`), `list` goes round those users, one per request; a user with a token is sent
//! as `Authorization: Bearer <token>` unsigned (through the gateway, which signs), one
//! without is signed as above (tasks-service reached directly): bench/e2e/share.sh runs the
//! same load both ways. `LOADGEN_LABEL` names the row instead. `db` runs the list statement of the store
//! straight against PostgreSQL, in the store's transaction shape, to isolate what row-level
//! security costs: `rls` = as tasks_rls with set_config (the service's path), `owner-scoped` =
//! as the superuser (policy bypassed) with the same set_config, `owner-plain` = superuser,
//! no set_config (no RLS machinery at all). The three variants run interleaved, ROUNDS times
//! SECONDS each, and each row pools its rounds, so drift in machine load hits all alike.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http::Method;
use proto_shared::{identity::unix_now, Audience, BodyDigest, KeyRing, Signer, UserId};

const LIST_SQL: &str = "SELECT id, user_id, title, description, completed, created_at, updated_at \
    FROM tasks WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2) \
    ORDER BY created_at, id LIMIT $3 OFFSET $4";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| usage());
    match arg(0) {
        "seed" => {
            seed(
                arg(1),
                arg(2),
                arg(3),
                arg(4).parse().unwrap_or_else(|_| usage()),
            )
            .await
        }
        "http" => {
            let (secs, conc) = numbers(arg(5), arg(6));
            http(arg(1), arg(2), arg(3), arg(4), secs, conc).await
        }
        "db" => {
            let (secs, conc) = numbers(arg(3), arg(4));
            let rounds = arg(5).parse().unwrap_or_else(|_| usage());
            db(arg(1), arg(2), secs, conc, rounds).await
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: see the doc comment of tasks-service/examples/loadgen.rs");
    std::process::exit(2)
}

fn numbers(secs: &str, conc: &str) -> (u64, usize) {
    (
        secs.parse().unwrap_or_else(|_| usage()),
        conc.parse().unwrap_or_else(|_| usage()),
    )
}

struct Caller {
    http: reqwest::Client,
    base: String,
    signer: Signer,
    /// Signs v1 credentials instead (LOADGEN_CREDENTIAL=v1).
    v1: bool,
    user: UserId,
    /// LOADGEN_USERS: the users `list` goes round, and the next one's index.
    accounts: Vec<Account>,
    next: AtomicUsize,
}

/// One user of LOADGEN_USERS: its list path, and its bearer token if it has one.
struct Account {
    user: UserId,
    path: String,
    bearer: Option<String>,
}

fn accounts() -> Vec<Account> {
    let Ok(file) = std::env::var("LOADGEN_USERS") else {
        return Vec::new();
    };
    let lines = std::fs::read_to_string(&file).expect("LOADGEN_USERS is a readable file");
    lines
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut fields = line.split_whitespace();
            let user = UserId::parse(fields.next().unwrap_or_default()).expect("a valid user id");
            Account {
                path: format!("/api/{}/tasks", user.to_path_segment()),
                user,
                bearer: fields.next().map(|token| format!("Bearer {token}")),
            }
        })
        .collect()
}

/// Whether this run signs v1 credentials.
fn signs_v1() -> bool {
    std::env::var("LOADGEN_CREDENTIAL").is_ok_and(|v| v == "v1")
}

impl Caller {
    fn new(base: &str, key: &str, user: &str) -> Self {
        let ring: KeyRing = key.parse().expect("KEY is key_id:secret");
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            signer: Signer::new(&ring, Audience::default()),
            v1: signs_v1(),
            user: UserId::parse(user).expect("a valid user id"),
            accounts: accounts(),
            next: AtomicUsize::new(0),
        }
    }

    /// A list request as the next user of LOADGEN_USERS, or as USER without that file.
    async fn list(&self) -> (u16, bytes::Bytes) {
        if self.accounts.is_empty() {
            return self.send(Method::GET, &self.tasks_path(), None).await;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.accounts.len();
        let account = &self.accounts[index];
        match &account.bearer {
            Some(bearer) => {
                let request = self
                    .http
                    .get(format!("{}{}", self.base, account.path))
                    .header("authorization", bearer);
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        (status, response.bytes().await.unwrap_or_default())
                    }
                    Err(_) => (0, bytes::Bytes::new()),
                }
            }
            None => {
                self.send_as(&account.user, Method::GET, &account.path, None)
                    .await
            }
        }
    }

    fn tasks_path(&self) -> String {
        format!("/api/{}/tasks", self.user.to_path_segment())
    }

    async fn send(&self, method: Method, path: &str, body: Option<String>) -> (u16, bytes::Bytes) {
        self.send_as(&self.user, method, path, body).await
    }

    async fn send_as(
        &self,
        user: &UserId,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, bytes::Bytes) {
        let digest = body
            .as_deref()
            .map_or(BodyDigest::EMPTY, |body| BodyDigest::of(body.as_bytes()));
        let identity = if self.v1 {
            self.signer.sign_v1(&method, path, user, unix_now())
        } else {
            self.signer.sign(&method, path, user, digest, unix_now())
        };
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-user-id", identity.user_id)
            .header("x-identity-credential", identity.credential);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.bytes().await.unwrap_or_default())
            }
            Err(_) => (0, bytes::Bytes::new()),
        }
    }
}

async fn seed(base: &str, key: &str, user: &str, count: usize) {
    let caller = Caller::new(base, key, user);
    for i in 0..count {
        let body = format!(r#"{{"title":"Seeded task {i}","description":"for the benchmark"}}"#);
        let (status, _) = caller
            .send(Method::POST, &caller.tasks_path(), Some(body))
            .await;
        assert_eq!(status, 201, "seeding failed");
    }
}

async fn http(base: &str, key: &str, user: &str, scenario: &str, secs: u64, conc: usize) {
    let caller = Arc::new(Caller::new(base, key, user));
    // Toggle: each worker flips its own task, so workers do not queue on one row lock.
    let (_, listed) = caller.send(Method::GET, &caller.tasks_path(), None).await;
    let ids: Vec<i64> = serde_json::from_slice::<Vec<serde_json::Value>>(&listed)
        .map(|tasks| tasks.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default();
    if scenario == "toggle" && ids.is_empty() {
        panic!("toggle needs seeded tasks");
    }
    let scenario: &'static str = Box::leak(scenario.to_owned().into_boxed_str());
    let deadline = Instant::now() + Duration::from_secs(secs);
    // Collected, so that every worker is spawned before any is awaited.
    let workers: Vec<_> = (0..conc)
        .map(|w| {
            let caller = caller.clone();
            let id = ids.get(w % ids.len().max(1)).copied().unwrap_or(1);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let (status, _) = match scenario {
                        "list" => caller.list().await,
                        "create" => {
                            let body =
                                r#"{"title":"Benchmark task","description":null}"#.to_owned();
                            caller
                                .send(Method::POST, &caller.tasks_path(), Some(body))
                                .await
                        }
                        "toggle" => {
                            let path = format!("{}/{id}/complete", caller.tasks_path());
                            caller.send(Method::PATCH, &path, None).await
                        }
                        _ => usage(),
                    };
                    if (200..300).contains(&status) {
                        latencies.push(started.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, errs) = worker.await.expect("worker");
        all.extend(latencies);
        errors += errs;
    }
    report(&format!("http {scenario}"), secs, all, errors);
}

async fn db(url: &str, user: &str, secs: u64, conc: usize, rounds: u64) {
    let variants = ["rls", "owner-scoped", "owner-plain"];
    let mut pooled: Vec<(Vec<u64>, u64)> = vec![(Vec::new(), 0); variants.len()];
    for _ in 0..rounds {
        for (i, variant) in variants.iter().enumerate() {
            let (latencies, errors) = db_variant(url, user, variant, secs, conc).await;
            pooled[i].0.extend(latencies);
            pooled[i].1 += errors;
        }
    }
    for (variant, (latencies, errors)) in variants.iter().zip(pooled) {
        report(
            &format!("db list {variant}"),
            secs * rounds,
            latencies,
            errors,
        );
    }
}

async fn db_variant(
    url: &str,
    user: &str,
    variant: &'static str,
    secs: u64,
    conc: usize,
) -> (Vec<u64>, u64) {
    let user: Arc<str> = user.into();
    let mut clients = Vec::new();
    for _ in 0..conc {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to DATABASE_URL");
        tokio::spawn(connection);
        if variant == "rls" {
            client.batch_execute("SET ROLE tasks_rls").await.unwrap();
        }
        clients.push(client);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let user = user.clone();
            tokio::spawn(async move {
                let user: &str = &user;
                let scope = client
                    .prepare("SELECT set_config('app.user_id', $1, true)")
                    .await
                    .unwrap();
                let list = client.prepare(LIST_SQL).await.unwrap();
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let tx = client.transaction().await.unwrap();
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                        [&user, &None::<bool>, &100i64, &0i64];
                    let scope_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&user];
                    let rows = if variant == "owner-plain" {
                        tx.query(&list, &params).await
                    } else {
                        // The store's shape: set_config pipelined with the statement.
                        tokio::try_join!(
                            tx.execute(&scope, &scope_params),
                            tx.query(&list, &params)
                        )
                        .map(|(_, rows)| rows)
                    };
                    tx.commit().await.unwrap();
                    // Every variant must see exactly the user's 20 tasks.
                    if rows.map(|r| r.len()).unwrap_or(0) == 20 {
                        latencies.push(started.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, errs) = worker.await.expect("worker");
        all.extend(latencies);
        errors += errs;
    }
    (all, errors)
}

/// Prints `name  requests  req/s  p50_us  p99_us  errors`, `all` the successful requests'
/// latencies.
fn report(name: &str, secs: u64, mut all: Vec<u64>, errors: u64) {
    let name = if let Ok(label) = std::env::var("LOADGEN_LABEL") {
        label
    } else if signs_v1() {
        format!("{name} v1")
    } else {
        name.to_owned()
    };
    all.sort_unstable();
    // Nearest rank: the smallest latency with at least `percent` % of them at or below it,
    // the ceil(n * percent / 100)-th (integer arithmetic: no rounding pushes it a rank up).
    let pct = |percent: usize| {
        let rank = (all.len() * percent)
            .div_ceil(100)
            .clamp(1, all.len().max(1));
        all.get(rank - 1).copied().unwrap_or(0)
    };
    println!(
        "{name}\t{}\t{:.0}\t{}\t{}\t{errors}",
        all.len(),
        all.len() as f64 / secs as f64,
        pct(50),
        pct(99)
    );
}
