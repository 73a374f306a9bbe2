//! The gateway's own endpoints: `/healthz` (the process answers), `/readyz` (signing keys are
//! loaded, tasks-service has not refused the gateway's credential and the gateway is not
//! draining) and `/metrics` (Prometheus text format, served on the admin listener only, see
//! `admin.rs`).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use prometheus_client::registry::Registry;
use proto_shared::ErrorBody;
use serde_json::json;

use crate::error::json_response;

/// Why the gateway is not ready, if it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    KeysNotLoaded,
    /// tasks-service refuses the gateway's identity credential (`upstream_probe.rs`).
    UpstreamRefusesIdentity,
    /// The revocation feed was never loaded, or has been lost past its stale bound.
    RevocationFeedDown,
    /// Ready, but the revocation feed was lost this many seconds ago (still within bound).
    RevocationFeedLost {
        for_secs: i64,
    },
    ShuttingDown,
}

/// `/healthz`: 200 whenever the process can answer at all.
pub fn healthz() -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `/readyz`: 200 when ready, else 503 saying why, so a load balancer stops sending traffic.
pub fn readyz(readiness: Readiness) -> Response<Full<Bytes>> {
    match readiness {
        Readiness::Ready => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Readiness::RevocationFeedLost { for_secs } => json_response(
            StatusCode::OK,
            &json!({
                "status": "ready",
                "detail": format!(
                    "revocation feed lost {for_secs} s ago, reconnecting; protected requests \
                     get 503 once it has been lost for REVOCATION_STALE_SECS"
                ),
            }),
        ),
        Readiness::RevocationFeedDown => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &ErrorBody::message(
                "Not ready: the revocation feed (REVOCATION_DATABASE_URL) is not loaded or has \
                 been lost for longer than REVOCATION_STALE_SECS",
            ),
        ),
        Readiness::KeysNotLoaded => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &ErrorBody::message("Not ready: signing keys not loaded"),
        ),
        Readiness::UpstreamRefusesIdentity => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &ErrorBody::message(
                "Not ready: tasks-service refuses the gateway's identity credential \
                 (IDENTITY_KEYS or IDENTITY_AUDIENCE differ between the two, or their clocks \
                 disagree by more than IDENTITY_MAX_SKEW_SECS)",
            ),
        ),
        Readiness::ShuttingDown => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &ErrorBody::message("Not ready: shutting down"),
        ),
    }
}

/// `/metrics`: every registered metric in the Prometheus text format.
pub fn metrics(registry: &Registry) -> Response<Full<Bytes>> {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(%error, "encoding metrics failed");
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &ErrorBody::message("metrics unavailable"),
        );
    }
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
