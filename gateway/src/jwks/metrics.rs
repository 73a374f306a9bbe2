//! Prometheus metrics of the JWKS cache: fetches by result, failures, unknown-`kid` fetches,
//! key count, and the key set's age, computed when scraped so it is never out of date.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::JwksCache;

/// Label of [`JwksMetrics::fetches`]: `ok` or a [`super::fetch::FetchError::label`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    pub result: &'static str,
}

/// Counters and gauges updated by the cache and its refresher.
#[derive(Debug, Default)]
pub struct JwksMetrics {
    pub fetches: Family<FetchLabels, Counter>,
    pub failures: Counter,
    pub unknown_kid_fetches: Counter,
    pub unknown_kid_refused: Counter,
    pub keys: Gauge,
}

/// Seconds since the current key set was fetched; absent until one is loaded.
#[derive(Debug)]
struct KeySetAge(JwksCache);

impl EncodeMetric for KeySetAge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let age = self.0.age().map_or(0.0, |age| age.as_secs_f64());
        encoder.encode_gauge(&age)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        self.0.age().is_none()
    }
}

/// Registers the cache's metrics (names prefixed `jwks_`).
pub fn register(registry: &mut Registry, cache: &JwksCache) {
    let m = &cache.shared.metrics;
    registry.register(
        "jwks_fetches",
        "JWKS fetches by result (ok, timeout, network, http_status, too_large, invalid)",
        m.fetches.clone(),
    );
    registry.register(
        "jwks_fetch_failures",
        "JWKS fetches that failed, for any reason",
        m.failures.clone(),
    );
    registry.register(
        "jwks_unknown_kid_fetches",
        "Early JWKS fetches asked for by tokens naming an unknown key id, or one whose keys do \
         not verify them (a key replaced under its id): at most one per cooldown",
        m.unknown_kid_fetches.clone(),
    );
    registry.register(
        "jwks_unknown_kid_refused",
        "Unknown key ids refused without waiting for a fetch, as too many were already waiting",
        m.unknown_kid_refused.clone(),
    );
    registry.register(
        "jwks_keys",
        "Usable keys in the current set",
        m.keys.clone(),
    );
    registry.register_with_unit(
        "jwks_key_set_age",
        "Time since the current key set was fetched",
        Unit::Seconds,
        KeySetAge(cache.clone()),
    );
}
