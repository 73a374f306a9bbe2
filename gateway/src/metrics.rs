//! The gateway's own Prometheus metrics: requests by route class and status, refusals by
//! reason, upstream latency and requests in flight. The JWKS and token-cache metrics are
//! registered by `auth.rs` in the same registry. Labels are fixed words, never raw paths or
//! user input, so a client cannot grow the series count.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

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

/// Handles to every gateway metric. Cheap to clone: each field is an `Arc` inside.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    upstream_latency: Family<UpstreamLabels, Histogram>,
    in_flight: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under the `gateway` prefix.
    pub fn register(registry: &mut Registry) -> Self {
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
        metrics
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    /// Counts one refusal.
    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&RefusalLabels { reason }).inc();
    }

    /// Records how long an upstream took to send its response headers.
    pub fn upstream_latency(&self, route: &'static str, seconds: f64) {
        self.upstream_latency
            .get_or_create(&UpstreamLabels { route })
            .observe(seconds);
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

/// Decrements the in-flight gauge when dropped, i.e. when the response body is done.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
