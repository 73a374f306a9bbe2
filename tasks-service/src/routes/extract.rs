//! Filters that turn a matched request into trusted values: the verified identity, the path
//! user checked against it, the task id, the list query and size-limited JSON bodies.
//! Each rejects with an [`ApiError`]; `error::recover` answers it.

use std::{convert::Infallible, sync::Arc};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, Method};
use proto_shared::{identity::unix_now, FieldError, TaskId, UserId, UserIdError};
use warp::{Filter, Rejection};

use crate::{
    domain::{parse_task_id, Completion, ListParams, NewTask, TaskChanges},
    error::ApiError,
    startup::AppState,
};

/// The request target (path and query) exactly as received, which the credential signs.
/// Inserted by `server.rs` before warp sees the request.
#[derive(Debug, Clone)]
pub struct RequestTarget(pub Arc<str>);

impl RequestTarget {
    /// The raw query string, empty if none.
    pub fn query(&self) -> &str {
        self.0.split_once('?').map_or("", |(_, query)| query)
    }
}

/// Bodies over the limit are still read and discarded up to this much, so the client gets
/// the 413 instead of a connection reset; beyond it the connection is simply closed.
const DRAIN_CAP: u64 = 1024 * 1024;

/// The shared state, for handlers.
pub fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The user the gateway (or an in-cluster caller) vouched for with a valid credential.
/// No identity at all: 401 "Not authenticated"; a refused credential: 401, logged and counted.
pub fn identity(state: AppState) -> impl Filter<Extract = (UserId,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and(warp::ext::get::<RequestTarget>())
        .and_then(
            move |method: Method, headers: HeaderMap, target: RequestTarget| {
                let state = state.clone();
                async move {
                    match state
                        .verifier
                        .verify(&method, &target.0, &headers, unix_now())
                    {
                        Ok(Some(user)) => Ok(user),
                        Ok(None) => {
                            state.metrics.record_identity_refusal("no_identity");
                            Err(ApiError::NotAuthenticated.into())
                        }
                        Err(e) => {
                            tracing::warn!(reason = e.reason(), "identity credential refused");
                            state.metrics.record_identity_refusal(e.reason());
                            Err(Rejection::from(ApiError::BadCredential(e)))
                        }
                    }
                }
            },
        )
}

/// The path's `{user_id}` must decode to a valid id (else 422) equal to the verified one
/// (else 403).
pub async fn authorize(raw_user: String, verified: UserId) -> Result<UserId, Rejection> {
    check_path_user(&raw_user, verified).map_err(Rejection::from)
}

/// [`authorize`], then the `{id}` segment as a task id (422 if not a positive i64).
pub async fn authorize_task(
    raw_user: String,
    raw_id: String,
    verified: UserId,
) -> Result<(UserId, TaskId), Rejection> {
    let user = check_path_user(&raw_user, verified)?;
    let id = parse_task_id(&raw_id).map_err(ApiError::Validation)?;
    Ok((user, id))
}

fn check_path_user(raw_user: &str, verified: UserId) -> Result<UserId, ApiError> {
    let claimed = UserId::from_encoded(raw_user).map_err(|e| {
        let kind = match e {
            UserIdError::Empty => "string_too_short",
            UserIdError::TooLong => "string_too_long",
            UserIdError::ControlCharacter | UserIdError::BadEncoding => "value_error",
        };
        ApiError::Validation(vec![FieldError::new(
            &["path", "user_id"],
            kind,
            e.to_string(),
        )])
    })?;
    if claimed != verified {
        tracing::warn!("path user id differs from the verified user");
        return Err(ApiError::Forbidden);
    }
    Ok(verified)
}

/// The list's query parameters (422 with `loc: ["query", name]` when invalid).
pub fn list_params() -> impl Filter<Extract = (ListParams,), Error = Rejection> + Clone {
    warp::ext::get::<RequestTarget>().and_then(|target: RequestTarget| async move {
        ListParams::from_query(target.query())
            .map_err(|errors| Rejection::from(ApiError::Validation(errors)))
    })
}

/// A create body.
pub fn new_task(limit: u64) -> impl Filter<Extract = (NewTask,), Error = Rejection> + Clone {
    body(limit).and_then(|bytes: Bytes| async move {
        NewTask::from_json(&bytes).map_err(|e| Rejection::from(ApiError::Validation(e)))
    })
}

/// An update body.
pub fn task_changes(
    limit: u64,
) -> impl Filter<Extract = (TaskChanges,), Error = Rejection> + Clone {
    body(limit).and_then(|bytes: Bytes| async move {
        TaskChanges::from_json(&bytes).map_err(|e| Rejection::from(ApiError::Validation(e)))
    })
}

/// The optional completion body.
pub fn completion(limit: u64) -> impl Filter<Extract = (Completion,), Error = Rejection> + Clone {
    body(limit).and_then(|bytes: Bytes| async move {
        Completion::from_json(&bytes).map_err(|e| Rejection::from(ApiError::Validation(e)))
    })
}

/// The raw body, at most `limit` bytes (else 413). A non-empty body must be declared JSON
/// (else 415); an empty one is passed on so the parser can say which field is missing.
fn body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .and_then(move |headers: HeaderMap, stream| read_body(headers, stream, limit))
}

async fn read_body<S, B>(headers: HeaderMap, stream: S, limit: u64) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut kept = BytesMut::new();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| ApiError::BodyRead)?;
        total += chunk.remaining() as u64;
        if total <= limit {
            while chunk.has_remaining() {
                let part = chunk.chunk();
                kept.extend_from_slice(part);
                let n = part.len();
                chunk.advance(n);
            }
        } else if total > limit + DRAIN_CAP {
            break;
        }
    }
    if total > limit {
        return Err(ApiError::PayloadTooLarge.into());
    }
    if !kept.is_empty() && !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType.into());
    }
    Ok(kept.freeze())
}

/// `application/json` or `application/<anything>+json`, with any parameters, any case.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }

    #[test]
    fn query_is_whatever_follows_the_first_question_mark() {
        assert_eq!(RequestTarget("/a?b=1?c".into()).query(), "b=1?c");
        assert_eq!(RequestTarget("/a".into()).query(), "");
    }
}
