//! The gateway's own Prometheus metrics: requests by route class and status, refusals by
//! reason, upstream latency, requests in flight, open and shed client connections, and
//! answers cut short by the stall limit; in the `balanced` layout, each worker's connections
//! and busy share, and connections moved between workers. The JWKS and token-cache metrics are
//! registered by `auth.rs` in the same registry. Labels are fixed words, never raw paths or
//! user input, so a client cannot grow the series count.

use std::{
    ops::Range,
    sync::{atomic::AtomicU64, Arc, OnceLock},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::request::RouteClass;

/// `route` and `status` of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

/// Why a request was refused (`AuthError::reason()` or the gateway's own reasons).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub reason: &'static str,
}

/// Which upstream answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub route: &'static str,
}

/// Why a client connection was closed at `MAX_CONNECTIONS`: `idle` (the longest-idle one,
/// closed to make room) or `refused` (the new one, every other being mid-request).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    pub reason: &'static str,
}

/// Which worker of the `balanced` layout, by index (0 runs the admin listener too).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: usize,
}

/// Why an answer was cut short: it made no progress for the stall limit
/// (`UPSTREAM_TIMEOUT_SECS`), and its connection was closed or, on HTTP/2, its stream reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    /// The client read nothing the gateway wrote (its socket stayed full); on HTTP/2 that may
    /// also be a frame of no answer (a PING's acknowledgement), and each of the connection's
    /// streams then waiting for window may be counted as [`Stalled::Window`] besides.
    Client,
    /// An HTTP/2 client granted a stream less than 16 KiB of flow-control window in the limit.
    Window,
    /// The upstream gave none of its body.
    Upstream,
}

impl Stalled {
    const ALL: [Self; 3] = [Self::Client, Self::Window, Self::Upstream];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client_stalled",
            Self::Window => "window_withheld",
            Self::Upstream => "upstream_stalled",
        }
    }
}

/// Why an answer was cut short ([`Stalled`]).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StalledLabels {
    pub reason: &'static str,
}

/// Handles to every gateway metric. Cheap to clone: each field is an `Arc` inside.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    upstream_latency: Family<UpstreamLabels, Histogram>,
    in_flight: Gauge,
    connections_open: Gauge,
    connections_idle: Gauge,
    connections_shed: Family<ShedLabels, Counter>,
    connections_moved: Counter,
    worker_connections: Family<WorkerLabels, Gauge>,
    worker_busy: Family<WorkerLabels, Gauge<f64, AtomicU64>>,
    /// By [`Stalled`], in its order; every reason exposed from the start, at zero.
    stalled: [Counter; Stalled::ALL.len()],
    resolved: Arc<Resolved>,
}

/// The statuses whose request counters are kept at hand.
const STATUSES: Range<u16> = 100..600;

/// Series of the per-request metrics, each looked up in its family once, at its first use,
/// and kept: a family lookup hashes the labels and takes a lock, on every request. A series
/// appears in the exposition only once used, as before.
#[derive(Debug)]
struct Resolved {
    /// By route class, then status (`STATUSES`).
    requests: Box<[OnceLock<Counter>]>,
    /// By route class.
    upstream_latency: [OnceLock<Histogram>; RouteClass::ALL.len()],
}

impl Metrics {
    /// Creates the metrics and registers them under the `gateway` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let stalled = Family::<StalledLabels, Counter>::default();
        let metrics = Self {
            requests: Family::default(),
            refusals: Family::default(),
            upstream_latency: Family::new_with_constructor(|| {
                // 0.5 ms to ~16 s: loopback upstreams answer in well under a millisecond.
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    0.0005, 2.0, 16,
                ))
            }),
            in_flight: Gauge::default(),
            connections_open: Gauge::default(),
            connections_idle: Gauge::default(),
            connections_shed: Family::default(),
            connections_moved: Counter::default(),
            worker_connections: Family::default(),
            worker_busy: Family::default(),
            stalled: Stalled::ALL.map(|reason| {
                stalled.get_or_create_owned(&StalledLabels {
                    reason: reason.as_str(),
                })
            }),
            resolved: Arc::new(Resolved {
                requests: (0..RouteClass::ALL.len() * STATUSES.len())
                    .map(|_| OnceLock::new())
                    .collect(),
                upstream_latency: Default::default(),
            }),
        };
        let registry = registry.sub_registry_with_prefix("gateway");
        registry.register(
            "requests",
            "Requests answered, by route class and status",
            metrics.requests.clone(),
        );
        registry.register(
            "refusals",
            "Requests refused, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a request upstream to its response headers",
            metrics.upstream_latency.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being handled now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open on the public listener",
            metrics.connections_open.clone(),
        );
        registry.register(
            "connections_idle",
            "HTTP/1.1 client connections waiting for their next request with their buffers \
             and upstream connections given back (no request for a second; lean engine)",
            metrics.connections_idle.clone(),
        );
        registry.register(
            "connections_shed",
            "Client connections closed at MAX_CONNECTIONS, by reason (idle: the longest-idle \
             one, to make room; refused: the new one, every other being mid-request)",
            metrics.connections_shed.clone(),
        );
        registry.register(
            "connections_moved",
            "Client connections moved to another worker between requests (RUNTIME_LAYOUT=balanced)",
            metrics.connections_moved.clone(),
        );
        registry.register(
            "worker_connections",
            "HTTP/1.1 client connections in use on each worker (a request within the last \
             second; RUNTIME_LAYOUT=balanced), as last seen by the balancer",
            metrics.worker_connections.clone(),
        );
        registry.register(
            "worker_busy_ratio",
            "Share of the balancer's last tick each worker spent running tasks \
             (RUNTIME_LAYOUT=balanced)",
            metrics.worker_busy.clone(),
        );
        registry.register(
            "answers_cut",
            "Answers cut short after making no progress for the stall limit, by reason \
             (client_stalled: the client read nothing the gateway wrote, its connection \
             closed; window_withheld: an HTTP/2 client granted a stream less than 16 KiB of \
             window, the stream reset; upstream_stalled: the upstream gave none of its body)",
            stalled,
        );
        metrics
    }

    /// Counts a client connection opened.
    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    /// Counts a client connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// Counts a client connection closed at the cap, for `reason` (`idle` or `refused`).
    pub fn connection_shed(&self, reason: &'static str) {
        self.connections_shed
            .get_or_create(&ShedLabels { reason })
            .inc();
    }

    /// Counts a client connection moved to another worker.
    pub fn connection_moved(&self) {
        self.connections_moved.inc();
    }

    /// Records how worker `worker` stood at the balancer's last tick.
    pub fn worker_load(&self, worker: usize, busy: f64, connections: usize) {
        let labels = WorkerLabels { worker };
        self.worker_busy.get_or_create(&labels).set(busy);
        self.worker_connections
            .get_or_create(&labels)
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
    }

    /// Counts one answered request.
    pub fn request(&self, class: RouteClass, status: u16) {
        let labels = || RequestLabels {
            route: class.as_str(),
            status,
        };
        if !STATUSES.contains(&status) {
            self.requests.get_or_create(&labels()).inc();
            return;
        }
        let slot = class as usize * STATUSES.len() + usize::from(status - STATUSES.start);
        self.resolved.requests[slot]
            .get_or_init(|| self.requests.get_or_create(&labels()).clone())
            .inc();
    }

    /// Counts an answer cut short, and says why in the log.
    pub fn stalled(&self, why: Stalled) {
        record_stall(why, &self.stalled[why as usize]);
    }

    /// What counts answers cut short for `why`, for a part that keeps it at hand.
    pub fn stall_recorder(&self, why: Stalled) -> StallRecorder {
        StallRecorder {
            why,
            counter: self.stalled[why as usize].clone(),
        }
    }

    /// Counts one refusal.
    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&RefusalLabels { reason }).inc();
    }

    /// Records how long an upstream took to send its response headers.
    pub fn upstream_latency(&self, class: RouteClass, seconds: f64) {
        self.resolved.upstream_latency[class as usize]
            .get_or_init(|| {
                let route = class.as_str();
                self.upstream_latency
                    .get_or_create(&UpstreamLabels { route })
                    .clone()
            })
            .observe(seconds);
    }

    /// Counts a client connection as idle (its buffers given back) until the returned guard
    /// is dropped. Once per idle spell of a second or more, not per request.
    pub fn connection_idle(&self) -> IdleConnection<'_> {
        self.connections_idle.inc();
        IdleConnection(&self.connections_idle)
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        let before = self.in_flight.inc();
        InFlight {
            gauge: self.in_flight.clone(),
            others: usize::try_from(before).unwrap_or(0),
        }
    }
}

/// A client connection counted as idle ([`Metrics::connection_idle`]) until dropped, also
/// when its task is dropped mid-wait (a shed connection is).
#[derive(Debug)]
pub struct IdleConnection<'m>(&'m Gauge);

impl Drop for IdleConnection<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts, and logs, answers cut short for one reason ([`Metrics::stall_recorder`]).
#[derive(Debug, Clone)]
pub struct StallRecorder {
    why: Stalled,
    counter: Counter,
}

impl StallRecorder {
    /// Counts one answer cut short.
    pub fn record(&self) {
        record_stall(self.why, &self.counter);
    }
}

fn record_stall(why: Stalled, counter: &Counter) {
    tracing::info!(
        reason = why.as_str(),
        "answer cut short: no progress for the stall limit"
    );
    counter.inc();
}

/// A request in flight: counted in the in-flight gauge until dropped, i.e. until its
/// response body is done. The gauge is also the count `MAX_CONCURRENT_REQUESTS` limits
/// (`Proxy::prepare` refuses past it): one atomic that every request touches on both CPUs,
/// where a separate semaphore would be a second (and its release a lock).
#[derive(Debug)]
pub struct InFlight {
    gauge: Gauge,
    /// Requests already in flight when this one began.
    others: usize,
}

impl InFlight {
    /// How many requests were in flight when this one began, itself not included.
    pub fn others(&self) -> usize {
        self.others
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_kept_at_hand_are_the_exposed_ones() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        for status in [200, 200, 999] {
            metrics.request(RouteClass::Api, status);
        }
        metrics.request(RouteClass::Public, 200);
        metrics.upstream_latency(RouteClass::Api, 0.001);
        metrics.upstream_latency(RouteClass::Api, 0.002);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for sample in [
            r#"gateway_requests_total{route="api",status="200"} 2"#,
            r#"gateway_requests_total{route="api",status="999"} 1"#,
            r#"gateway_requests_total{route="public",status="200"} 1"#,
            r#"gateway_upstream_latency_seconds_count{route="api"} 2"#,
        ] {
            assert!(text.contains(sample), "{sample} missing from:\n{text}");
        }
        assert!(
            !text.contains(r#"route="health""#),
            "unused series stay out"
        );
    }

    #[test]
    fn every_stall_reason_is_exposed_from_the_start_and_counted_once_per_cut() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.stalled(Stalled::Client);
        metrics.stall_recorder(Stalled::Upstream).record();
        metrics.stall_recorder(Stalled::Upstream).record();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for sample in [
            r#"gateway_answers_cut_total{reason="client_stalled"} 1"#,
            r#"gateway_answers_cut_total{reason="window_withheld"} 0"#,
            r#"gateway_answers_cut_total{reason="upstream_stalled"} 2"#,
        ] {
            assert!(text.contains(sample), "{sample} missing from:\n{text}");
        }
    }
}
