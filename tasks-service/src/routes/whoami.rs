//! `GET /whoami`: the user a credential vouches for, and nothing else. Signers use it to
//! prove that this service accepts their credentials (the gateway's readiness probe does, at
//! start and periodically) without reading or writing anyone's tasks or the database.

use http::StatusCode;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::extract::{self, Identified};
use crate::{error::json_response, state::AppState};

/// `GET /whoami` → 200 `{"user_id": ...}`, or the identity refusals of every task route.
pub fn whoami(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("whoami")
        .and(warp::get())
        .and(extract::identity(state))
        .map(|who: Identified| {
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "user_id": who.user().as_str() }),
            )
        })
        .boxed()
}
