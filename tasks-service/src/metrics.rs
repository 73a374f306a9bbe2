//! Prometheus metrics: requests by route template and status, latency, identity refusals and
//! pool use. Labels are route templates (`/api/{user_id}/tasks/{id}`), never raw paths, so
//! user ids cannot leak into metrics and cardinality stays fixed.

use std::sync::Arc;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Every metric the service exports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    identity_refusals: Family<ReasonLabels, Counter>,
    identity_v1_accepted: Counter,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
}

/// Pool figures at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~4 s, doubling.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the `tasks_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tasks");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let identity_refusals = Family::<ReasonLabels, Counter>::default();
        let identity_v1_accepted = Counter::default();
        let (pool_size, pool_available, pool_waiting) = Default::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request received to response head, by route template",
            latency.clone(),
        );
        registry.register(
            "identity_refusals",
            "Requests whose identity credential was refused, by reason",
            identity_refusals.clone(),
        );
        registry.register(
            "identity_v1_accepted",
            "Requests accepted on a v1 credential (IDENTITY_ACCEPT_V1, for a rolling upgrade)",
            identity_v1_accepted.clone(),
        );
        registry.register(
            "db_pool_size",
            "Open database connections",
            Gauge::clone(&pool_size),
        );
        registry.register(
            "db_pool_available",
            "Idle database connections",
            Gauge::clone(&pool_available),
        );
        registry.register(
            "db_pool_waiting",
            "Requests waiting for a database connection",
            Gauge::clone(&pool_waiting),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                identity_refusals,
                identity_v1_accepted,
                pool_size,
                pool_available,
                pool_waiting,
            }),
        }
    }

    /// Counts one answered request and its latency.
    pub fn record_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner
            .latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// Counts a refused identity credential.
    pub fn record_identity_refusal(&self, reason: &'static str) {
        self.inner
            .identity_refusals
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts a request accepted on a v1 credential.
    pub fn record_identity_v1_accepted(&self) {
        self.inner.identity_v1_accepted.inc();
    }

    /// The text exposition, with pool gauges set from `pool` first.
    pub fn render(&self, pool: PoolUse) -> String {
        let gauge = |g: &Gauge, v: usize| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.inner.pool_size, pool.size);
        gauge(&self.inner.pool_available, pool.available);
        gauge(&self.inner.pool_waiting, pool.waiting);
        let mut out = String::new();
        encode(&mut out, &self.inner.registry).expect("writing to a String cannot fail");
        out
    }
}
