//! Filters that turn a matched request into trusted values: the verified identity, the path
//! user checked against it, the task id, the list query and size-limited JSON bodies.
//! Each rejects with an [`ApiError`]; `error::recover` answers it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, Method};
use proto_shared::{
    identity::{unix_now, Version},
    BodyDigest, FieldError, IdentityError, TaskId, UserId, UserIdError,
};
use warp::{Filter, Rejection};

use crate::{
    domain::{parse_task_id, Completion, ListParams, NewTask, TaskChanges},
    error::ApiError,
    state::{AppState, RequestTarget},
};

/// Bodies over the limit are still read and discarded up to this much, so the client gets
/// the 413 instead of a connection reset; beyond it the connection is simply closed.
const DRAIN_CAP: u64 = 1024 * 1024;

/// A request whose identity holds: the user a credential vouched for, and the body that
/// credential was signed with (read whole, at most `MAX_BODY_BYTES`, since its digest must
/// be checked before the user is trusted).
#[derive(Debug)]
pub struct Identified {
    user: UserId,
    body: Bytes,
    /// Whether the body is declared JSON.
    json: bool,
}

impl Identified {
    /// The user the credential vouched for.
    pub fn user(&self) -> &UserId {
        &self.user
    }
}

/// The user the gateway (or an in-cluster caller) vouched for with a valid credential, and
/// the body it vouched for. No identity at all: 401 "Not authenticated"; a refused
/// credential: 401 (429 when its user holds its share of the replay memory, 503 when the
/// memory is full), logged and counted. The head is
/// judged before any body byte is read; the body, waited for no longer than the credential
/// stays fresh, is then checked against the signed digest, and only then is the credential
/// spent.
pub fn identity(
    state: AppState,
) -> impl Filter<Extract = (Identified,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and(warp::ext::get::<RequestTarget>())
        .and(warp::body::stream())
        .and_then(
            move |method: Method, headers: HeaderMap, target: RequestTarget, body| {
                let state = state.clone();
                async move {
                    identify(&state, &method, &headers, &target, body)
                        .await
                        .map_err(Rejection::from)
                }
            },
        )
}

async fn identify<S, B>(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    target: &RequestTarget,
    body: S,
) -> Result<Identified, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let refused = |error: IdentityError| {
        if let IdentityError::UserShareFull { .. } = error {
            // A signed-in user sending too fast, through the gateway: thousands a second of
            // these would flood the log. The metric counts every one.
            tracing::debug!(reason = error.reason(), "identity credential refused");
        } else {
            tracing::warn!(reason = error.reason(), "identity credential refused");
        }
        state.metrics.record_identity_refusal(error.reason());
        ApiError::BadCredential(error)
    };
    let verifier = &state.verifier;
    let vouched = match verifier.verify_head(method, &target.0, headers, unix_now()) {
        Ok(Some(vouched)) => vouched,
        Ok(None) => {
            state.metrics.record_identity_refusal("no_identity");
            return Err(ApiError::NotAuthenticated);
        }
        Err(error) => return Err(refused(error)),
    };
    let version = vouched.version();
    // A body still missing when the credential goes stale can never be confirmed: stop
    // waiting for it then, or one captured credential could hold any number of connections
    // open (its nonce is only spent once a body arrives).
    let fresh_until =
        UNIX_EPOCH + Duration::from_secs(u64::try_from(vouched.expires() + 1).unwrap_or(0));
    let wait = fresh_until
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let body = tokio::time::timeout(wait, read_body(body, state.max_body_bytes))
        .await
        .map_err(|_| refused(IdentityError::Stale))??;
    let user = verifier
        .confirm(vouched, BodyDigest::of(&body), unix_now())
        .map_err(refused)?;
    if version == Version::V1 {
        state.metrics.record_identity_v1_accepted();
    }
    Ok(Identified {
        user,
        body,
        json: is_json(headers),
    })
}

/// The path's `{user_id}` must decode to a valid id (else 422) equal to the verified one
/// (else 403).
pub async fn authorize(raw_user: String, who: Identified) -> Result<UserId, Rejection> {
    check_path_user(&raw_user, who.user).map_err(Rejection::from)
}

/// [`authorize`], then the body as `T` (415 unless declared JSON, 422 if invalid).
pub async fn authorize_with<T: JsonBody>(
    raw_user: String,
    who: Identified,
) -> Result<(UserId, T), Rejection> {
    let body = parse_body(&who);
    let user = check_path_user(&raw_user, who.user)?;
    Ok((user, body?))
}

/// [`authorize`], then the `{id}` segment as a task id (422 if not a positive i64).
pub async fn authorize_task(
    raw_user: String,
    raw_id: String,
    who: Identified,
) -> Result<(UserId, TaskId), Rejection> {
    let user = check_path_user(&raw_user, who.user)?;
    let id = parse_task_id(&raw_id).map_err(ApiError::Validation)?;
    Ok((user, id))
}

/// [`authorize_task`], then the body as `T`. A bad task id and a bad body are reported
/// together, path first, as FastAPI lists every field it could not validate.
pub async fn authorize_task_with<T: JsonBody>(
    raw_user: String,
    raw_id: String,
    who: Identified,
) -> Result<(UserId, TaskId, T), Rejection> {
    let body = parse_body(&who);
    let user = check_path_user(&raw_user, who.user)?;
    match (parse_task_id(&raw_id), body) {
        (Ok(id), body) => Ok((user, id, body?)),
        (Err(mut errors), Err(ApiError::Validation(body_errors))) => {
            errors.extend(body_errors);
            Err(ApiError::Validation(errors).into())
        }
        (Err(errors), _) => Err(ApiError::Validation(errors).into()),
    }
}

/// A request body the task endpoints take as JSON.
pub trait JsonBody: Sized {
    /// Parses the body, or says which fields are wrong.
    fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>>;
}

impl JsonBody for NewTask {
    fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        NewTask::from_json(body)
    }
}

impl JsonBody for TaskChanges {
    fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        TaskChanges::from_json(body)
    }
}

impl JsonBody for Completion {
    fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        Completion::from_json(body)
    }
}

/// The body as `T`: 415 unless a non-empty body is declared JSON (an empty one is passed on
/// so the parser can say which field is missing), 422 if invalid. Callers answer path errors
/// (403, 422) first.
fn parse_body<T: JsonBody>(who: &Identified) -> Result<T, ApiError> {
    if !who.body.is_empty() && !who.json {
        return Err(ApiError::UnsupportedMediaType);
    }
    T::from_json(&who.body).map_err(ApiError::Validation)
}

fn check_path_user(raw_user: &str, verified: UserId) -> Result<UserId, ApiError> {
    let claimed = UserId::from_encoded(raw_user).map_err(|e| {
        let kind = match e {
            UserIdError::Empty => "string_too_short",
            UserIdError::TooLong => "string_too_long",
            UserIdError::ControlCharacter | UserIdError::BadEncoding | UserIdError::DotSegment => {
                "value_error"
            }
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

/// The raw body, at most `limit` bytes (else 413).
async fn read_body<S, B>(stream: S, limit: u64) -> Result<Bytes, ApiError>
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
        return Err(ApiError::PayloadTooLarge);
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
}
