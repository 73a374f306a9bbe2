//! Revocation seen from the outside: the `auth_revocation` feed in Better Auth's database (a
//! LISTEN client and the rows), a token polled at every gateway replica until it is refused,
//! and the delays that polling measures. Knows nothing about how the gateway implements it.

use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The NOTIFY channel revocation.sql announces on.
pub const CHANNEL: &str = "auth_revocation";

/// One announcement: `{"kind": "session"|"user", "subject": ..., "at": <epoch seconds>}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Announcement {
    pub kind: String,
    pub subject: String,
    pub at: i64,
}

/// A connection to a database, driven in the background.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable ({e}): start it with scripts/ensure-postgres.sh")
        });
    tokio::spawn(connection);
    client
}

/// A client LISTENing on [`CHANNEL`], as a gateway does.
#[derive(Debug)]
pub struct Listener {
    _client: Client,
    received: mpsc::UnboundedReceiver<Announcement>,
}

impl Listener {
    /// Connects to `url` and LISTENs; announcements after this returns are received.
    pub async fn start(url: &str) -> Self {
        let (client, mut connection) =
            tokio_postgres::connect(url, NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                    "PostgreSQL is not reachable ({e}): start it with scripts/ensure-postgres.sh"
                )
                });
        let (send, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // Polling the connection both drives the client's queries and yields NOTIFYs.
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        let announcement = serde_json::from_str(n.payload()).unwrap_or_else(|e| {
                            panic!(
                                "an announcement is not the agreed JSON ({e}): {}",
                                n.payload()
                            )
                        });
                        let _ = send.send(announcement);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .expect("LISTEN");
        Self {
            _client: client,
            received,
        }
    }

    /// Waits up to `within` for announcements until every one of `expected` (kind, subject)
    /// has arrived; returns all received meanwhile. Panics naming what is missing.
    pub async fn expect(
        &mut self,
        expected: &[(&str, &str)],
        within: Duration,
    ) -> Vec<Announcement> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while !expected.iter().all(|(kind, subject)| {
            seen.iter()
                .any(|a: &Announcement| a.kind == *kind && a.subject == *subject)
        }) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.received.recv()).await {
                Ok(Some(announcement)) => seen.push(announcement),
                Ok(None) => panic!("the LISTEN connection closed"),
                Err(_) => panic!(
                    "within {within:?} expected announcements {expected:?}, received only {seen:?}"
                ),
            }
        }
        seen
    }
}

/// Whether a replica lets a token through or refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
}

/// Asks `gateway` for `path` with `token` once: 200 is accepted, 401 with the RFC 6750
/// `invalid_token` challenge is refused; anything else fails the test.
pub async fn verdict(http: &reqwest::Client, gateway: &str, path: &str, token: &str) -> Verdict {
    let response = http
        .get(format!("{gateway}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("reach the gateway");
    match response.status() {
        StatusCode::OK => Verdict::Accepted,
        StatusCode::UNAUTHORIZED => {
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "a refusal carries the invalid_token challenge, got {challenge:?}"
            );
            Verdict::Refused
        }
        other => panic!(
            "{gateway}{path} answered {other}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// Polls `gateway` until it refuses `token`, every 5 ms; the time from `since` to the first
/// refusal (zero when it came before `since`). Panics if `deadline` passes first.
pub async fn time_to_refusal(
    http: &reqwest::Client,
    gateway: &str,
    path: &str,
    token: &str,
    since: Instant,
    deadline: Instant,
) -> Duration {
    loop {
        if verdict(http, gateway, path, token).await == Verdict::Refused {
            return Instant::now().saturating_duration_since(since);
        }
        assert!(
            Instant::now() < deadline,
            "{gateway} still accepted a revoked token {:?} after the revocation",
            deadline.saturating_duration_since(since)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// [`time_to_refusal`] at every replica at once: one delay per replica, in order. `http` is
/// shared so its connections are warm: a new client's set-up would be measured too.
pub async fn times_to_refusal(
    http: &reqwest::Client,
    gateways: &[String],
    path: &str,
    token: &str,
    since: Instant,
    within: Duration,
) -> Vec<Duration> {
    let deadline = since + within;
    let polls: Vec<_> = gateways
        .iter()
        .map(|gateway| {
            let (gateway, path, token) = (gateway.clone(), path.to_owned(), token.to_owned());
            let http = http.clone();
            tokio::spawn(async move {
                time_to_refusal(&http, &gateway, &path, &token, since, deadline).await
            })
        })
        .collect();
    let mut delays = Vec::with_capacity(polls.len());
    for poll in polls {
        delays.push(
            poll.await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        );
    }
    delays
}

/// Asserts every replica lets `token` through now.
pub async fn assert_accepted_everywhere(
    http: &reqwest::Client,
    gateways: &[String],
    path: &str,
    token: &str,
    what: &str,
) {
    for gateway in gateways {
        assert_eq!(
            verdict(http, gateway, path, token).await,
            Verdict::Accepted,
            "{gateway}: {what}"
        );
    }
}

/// Delays from a revocation returning to a replica's first refusal, with their percentiles.
#[derive(Debug, Default, Clone)]
pub struct Delays(Vec<Duration>);

impl Delays {
    pub fn extend(&mut self, delays: impl IntoIterator<Item = Duration>) {
        self.0.extend(delays);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank percentile `p` (0 < p <= 100).
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

/// The value of `gateway_refusals_total{reason="<reason>"}` in a Prometheus text exposition
/// (0 when the series is absent).
pub fn refusals(metrics: &str, reason: &str) -> f64 {
    let series = format!(r#"gateway_refusals_total{{reason="{reason}"}}"#);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
