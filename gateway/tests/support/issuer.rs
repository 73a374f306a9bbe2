//! A fake Better Auth issuer for gateway tests: serves `/api/auth/jwks` over a real socket on
//! port 0, counts fetches, and can rotate or remove keys, publish an empty set, fail, answer
//! garbage, an endless body or too many keys, stall or answer slowly. It also mints tokens with
//! any header and claims for any of its keys, for every algorithm including ES512.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of it

mod keys;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gateway::auth::{Algorithm, AuthConfig};
use gateway::jwks::JwksConfig;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use keys::{b64, signing_input, SigningKey};

/// The JWKS path Better Auth serves.
pub const JWKS_PATH: &str = "/api/auth/jwks";
/// The `sub` of [`Issuer::token`].
pub const DEFAULT_SUB: &str = "user-1";
/// Lifetime of minted tokens: Better Auth's default of 15 minutes.
pub const TOKEN_LIFETIME: i64 = 15 * 60;

/// How the JWKS endpoint answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with the published keys (the default).
    Serve,
    /// This status with a small JSON error body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a chunked body that never ends (no Content-Length).
    Endless,
    /// 200 with `n` valid Ed25519 keys.
    ManyKeys(usize),
    /// Accepts the request and never answers.
    Stall,
    /// Answers normally after this delay.
    Slow(Duration),
    /// Answers normally once the test releases the gate (sends `true`), so a test decides
    /// exactly how long a fetch stays in flight instead of guessing with a delay.
    Held(tokio::sync::watch::Receiver<bool>),
    /// Holds the fetch like `Held`, then answers with this status: a fetch in flight that fails
    /// when the test says.
    HeldThenStatus(tokio::sync::watch::Receiver<bool>, u16),
}

struct State {
    keys: Vec<SigningKey>,
    /// JWKs published verbatim after the keys (odd or broken ones, for parsing tests).
    raw: Vec<Value>,
    behaviour: Behaviour,
    cache_control: Option<String>,
}

/// The running fake issuer. Stops serving when dropped.
pub struct Issuer {
    base_url: String,
    state: Arc<Mutex<State>>,
    fetches: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

impl Issuer {
    /// Starts an issuer publishing one key per algorithm (`Issuer::key(alg)`).
    pub async fn start() -> Self {
        Self::start_with_keys(Algorithm::ALL.map(SigningKey::generate).to_vec()).await
    }

    /// Starts an issuer publishing exactly `keys`.
    pub async fn start_with_keys(keys: Vec<SigningKey>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            keys,
            raw: Vec::new(),
            behaviour: Behaviour::Serve,
            cache_control: None,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(listener, state.clone(), fetches.clone()));
        Self {
            base_url: format!("http://{addr}"),
            state,
            fetches,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`: the `BETTER_AUTH_URL`, default `iss` and `aud`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.base_url)
    }

    /// Gateway auth settings for this issuer: Better Auth defaults with a long refresh
    /// interval, so only what a test causes fetches. Timeouts of 10 s: a fetch from this
    /// in-process issuer that timed out on a loaded machine after being counted would add a
    /// retry to the counts tests assert; a test about timeouts sets its own.
    pub fn auth_config(&self) -> AuthConfig {
        let mut config = AuthConfig::better_auth(&self.base_url);
        config.jwks = JwksConfig {
            connect_timeout: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(10),
            ..JwksConfig::for_url(self.jwks_url())
        };
        config
    }

    /// Number of JWKS requests received so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Waits (polling, up to 10 s) until at least `n` fetches were received.
    pub async fn wait_for_fetches(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.fetches() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "issuer saw {} JWKS fetches, expected {n}",
                self.fetches()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The first published key for `alg`.
    pub fn key(&self, alg: Algorithm) -> SigningKey {
        let state = self.state.lock().unwrap();
        state
            .keys
            .iter()
            .find(|key| key.alg == alg)
            .cloned()
            .unwrap_or_else(|| panic!("issuer publishes no {alg} key"))
    }

    /// Every published key.
    pub fn keys(&self) -> Vec<SigningKey> {
        self.state.lock().unwrap().keys.clone()
    }

    /// Publishes a new key for `alg` and returns it.
    pub fn add_key(&self, alg: Algorithm) -> SigningKey {
        let key = SigningKey::generate(alg);
        self.publish(key.clone());
        key
    }

    /// Publishes `key` in addition to the others.
    pub fn publish(&self, key: SigningKey) {
        self.state.lock().unwrap().keys.push(key);
    }

    /// Publishes a JWK verbatim, after the keys.
    pub fn publish_jwk(&self, jwk: Value) {
        self.state.lock().unwrap().raw.push(jwk);
    }

    /// Stops publishing the key named `kid`.
    pub fn remove_key(&self, kid: &str) {
        self.state.lock().unwrap().keys.retain(|key| key.kid != kid);
    }

    /// Rotation: publishes a new key for `alg`, withdraws the old ones of that algorithm.
    pub fn rotate(&self, alg: Algorithm) -> SigningKey {
        let key = SigningKey::generate(alg);
        let mut state = self.state.lock().unwrap();
        state.keys.retain(|old| old.alg != alg);
        state.keys.push(key.clone());
        key
    }

    /// Publishes `{"keys": []}`, as Better Auth may between rotations.
    pub fn publish_empty(&self) {
        let mut state = self.state.lock().unwrap();
        state.keys.clear();
        state.raw.clear();
    }

    /// Changes how the endpoint answers from the next request on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    /// Sends this `Cache-Control` with successful answers (Better Auth sends none).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.state.lock().unwrap().cache_control = value.map(str::to_owned);
    }

    /// Claims of a valid API token for `sub`: `iss`/`aud` this issuer, `iat` now, `exp` in 15 min.
    pub fn claims(&self, sub: &str) -> Value {
        let now = unix_now();
        json!({
            "iss": self.base_url, "aud": self.base_url, "sub": sub,
            "iat": now, "exp": now + TOKEN_LIFETIME,
        })
    }

    /// A valid token for [`DEFAULT_SUB`], signed with the published key for `alg`.
    pub fn token(&self, alg: Algorithm) -> String {
        self.token_for(alg, DEFAULT_SUB)
    }

    /// A valid token for `sub`, signed with the published key for `alg`.
    pub fn token_for(&self, alg: Algorithm, sub: &str) -> String {
        let key = self.key(alg);
        key.mint(&key.header(), &self.claims(sub))
    }

    /// `Bearer <token>` as a header value.
    pub fn bearer(token: &str) -> http::HeaderValue {
        http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
    }
}

/// Seconds since the Unix epoch: the same clock the credential and claims checks use.
pub use proto_shared::identity::unix_now;

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>, fetches: Arc<AtomicUsize>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let fetches = fetches.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                let fetches = fetches.clone();
                async move { Ok::<_, Infallible>(answer(request, &state, &fetches).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `status` with a small JSON error body.
fn failure(status: u16) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(r#"{"message":"internal error"}"#))
        .unwrap()
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    fetches: &AtomicUsize,
) -> Response<Body> {
    if request.uri().path() != JWKS_PATH {
        return Response::builder().status(404).body(full("")).unwrap();
    }
    fetches.fetch_add(1, Ordering::SeqCst);
    let behaviour = state.lock().unwrap().behaviour.clone();
    match behaviour {
        Behaviour::Serve => {}
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Held(mut gate) => {
            let _ = gate.wait_for(|released| *released).await;
        }
        Behaviour::Stall => std::future::pending::<()>().await,
        Behaviour::Status(status) => return failure(status),
        Behaviour::HeldThenStatus(mut gate, status) => {
            let _ = gate.wait_for(|released| *released).await;
            return failure(status);
        }
        Behaviour::Garbage => {
            return Response::new(full("<html>not a key set</html>"));
        }
        Behaviour::Endless => {
            let chunk = Bytes::from(format!("{{\"keys\":[{}", " ".repeat(16 * 1024)));
            let stream = futures_util::stream::repeat_with(move || {
                Ok::<_, Infallible>(Frame::data(chunk.clone()))
            });
            return Response::new(StreamBody::new(stream).boxed());
        }
        Behaviour::ManyKeys(n) => {
            let key = SigningKey::generate(Algorithm::EdDsa);
            let keys: Vec<Value> = (0..n)
                .map(|i| key.renamed(format!("many-{i}")).jwk())
                .collect();
            return Response::new(full(json!({ "keys": keys }).to_string()));
        }
    }
    let (body, cache_control) = {
        let state = state.lock().unwrap();
        let keys: Vec<Value> = state
            .keys
            .iter()
            .map(SigningKey::jwk)
            .chain(state.raw.iter().cloned())
            .collect();
        (
            json!({ "keys": keys }).to_string(),
            state.cache_control.clone(),
        )
    };
    let mut response = Response::builder().header("content-type", "application/json");
    if let Some(value) = cache_control {
        response = response.header("cache-control", value);
    }
    response.body(full(body)).unwrap()
}
