//! `/healthz` (the process answers), `/readyz` (the database answers) and `/metrics`.
//! None needs an identity: they reveal nothing about any user.
//!
//! Liveness, `/healthz`: 200 whenever the process serves HTTP, whatever the database does;
//! restarting the pod would not bring the database back.
//!
//! Readiness, `/readyz`: 200 when this instance can serve requests, 503 when it cannot
//! (Kubernetes then stops routing to it). 200 when a pooled connection answers `SELECT 1`
//! now, and also when the pool is merely busy, every connection it may open being open and
//! in use by requests: taking a busy pod out of the Service would only push its load onto
//! the others. 503 on a connect or query error, a probe timeout, or no connection at all
//! (see [`crate::store::Store::readiness`] for why busy cannot mask a dead database for long),
//! when row-level security on `tasks` is no longer enabled and forced or its policy is gone
//! (an operator's `ALTER TABLE`: the second line of isolation lost), and while the system
//! clock is behind the one the memory of spent credentials judges by by more than the
//! allowed skew (it stepped back), when every credential would be refused.

use http::{header, HeaderValue, StatusCode};
use proto_shared::{identity::unix_now, ErrorBody};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    error::json_response,
    metrics::PoolUse,
    state::{with_state, AppState},
    store::Readiness,
};

/// The three operational endpoints.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})));
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_state(state.clone()))
        .then(readyz);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state))
        .map(metrics);
    healthz.or(readyz).unify().or(metrics).unify().boxed()
}

async fn readyz(state: AppState) -> Response {
    // A clock that stepped back past the allowed skew has every credential refused until it
    // catches up: other instances serve meanwhile.
    if let Some(behind_secs) = state.verifier.clock_behind(unix_now()) {
        tracing::warn!(
            behind_secs,
            "not ready: the system clock is behind the latest time credentials were checked \
             at by more than IDENTITY_MAX_SKEW_SECS; every credential is refused until it \
             catches up"
        );
        return not_ready();
    }
    match state.store.readiness().await {
        Ok(Readiness::Unguarded(lapse)) => {
            tracing::error!(
                reason = %lapse,
                "not ready: row-level security on table tasks is not in force"
            );
            not_ready()
        }
        Ok(readiness) => {
            if readiness == Readiness::Busy {
                tracing::debug!("ready: every pooled connection is in use");
            }
            json_response(StatusCode::OK, &serde_json::json!({"status": "ready"}))
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            not_ready()
        }
    }
}

/// `/readyz`'s one answer for not ready, whatever the reason (the log says which).
fn not_ready() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &ErrorBody::message("Service unavailable"),
    )
}

fn metrics(state: AppState) -> Response {
    let status = state.store.pool().status();
    let text = state.metrics.render(PoolUse {
        size: status.size,
        available: status.available,
        waiting: status.waiting,
    });
    let mut response = Response::new(text.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
