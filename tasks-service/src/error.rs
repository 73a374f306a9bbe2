//! The one place errors become HTTP responses. Handlers and filters return [`ApiError`]; the
//! single [`recover`] turns it, or warp's own routing rejections, into a status and a
//! FastAPI-shaped `{"detail": ...}` body. Internal causes are logged here, never sent.

use std::convert::Infallible;

use http::{header, HeaderValue, StatusCode};
use proto_shared::{ErrorBody, FieldError, IdentityError};
use warp::{reject::Reject, reply::Response, Rejection};

use crate::store::StoreError;

/// Everything a request to the task API can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request carries no identity")]
    NotAuthenticated,
    #[error("the identity credential was refused: {0}")]
    BadCredential(#[from] IdentityError),
    #[error("the path names another user than the verified one")]
    Forbidden,
    #[error("the task does not exist or belongs to another user")]
    TaskNotFound,
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("the body is not JSON")]
    UnsupportedMediaType,
    #[error("the body is larger than the limit")]
    PayloadTooLarge,
    #[error("the body could not be read")]
    BodyRead,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Reject for ApiError {}

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            // The verifier's memory of spent credentials is full: its limit, not the caller's
            // fault, and the request may succeed once old credentials expire.
            Self::BadCredential(IdentityError::ReplayCapacity) => StatusCode::SERVICE_UNAVAILABLE,
            // This user holds its share of that memory: its own rate, which waiting mends.
            Self::BadCredential(IdentityError::UserShareFull { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::NotAuthenticated | Self::BadCredential(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TaskNotFound => StatusCode::NOT_FOUND,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(StoreError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response: status, JSON body and, for 401, a `WWW-Authenticate` challenge.
    pub fn to_response(&self) -> Response {
        let body = match self {
            Self::NotAuthenticated => ErrorBody::message("Not authenticated"),
            // Same body as no identity (specs/identity.md): the reason is logged and counted, not told.
            Self::BadCredential(IdentityError::ReplayCapacity) => {
                ErrorBody::message("Service unavailable")
            }
            Self::BadCredential(IdentityError::UserShareFull { .. }) => {
                ErrorBody::message("Too many requests")
            }
            Self::BadCredential(_) => ErrorBody::message("Not authenticated"),
            Self::Forbidden => ErrorBody::message("Not authorized to access this user's tasks"),
            Self::TaskNotFound => ErrorBody::message("Task not found"),
            Self::Validation(errors) => ErrorBody::fields(errors.clone()),
            Self::UnsupportedMediaType => {
                ErrorBody::message("Unsupported media type: send Content-Type: application/json")
            }
            Self::PayloadTooLarge => ErrorBody::message("Request body too large"),
            Self::BodyRead => ErrorBody::message("Request body could not be read"),
            Self::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "database unavailable");
                ErrorBody::message("Service unavailable")
            }
            Self::Store(StoreError::Internal(cause)) => {
                tracing::error!(error = %cause, "database error");
                ErrorBody::message("Internal Server Error")
            }
        };
        let mut response = json_response(self.status(), &body);
        if self.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::BadCredential(IdentityError::UserShareFull { retry_after_secs }) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

/// A JSON response with `status`.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("response bodies always serialize");
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Turns every rejection into a response. Route filters match path before method before
/// identity, and warp prefers a custom rejection over 405 over 404 when combining the
/// rejections of all routes, so the most specific answer wins.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(error) = rejection.find::<ApiError>() {
        return Ok(error.to_response());
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &ErrorBody::message("Method Not Allowed"),
        ));
    }
    if rejection.is_not_found() {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            &ErrorBody::message("Not Found"),
        ));
    }
    // No filter of ours rejects with anything else; if warp does, refuse without detail.
    tracing::error!(?rejection, "unexpected rejection");
    Ok(json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &ErrorBody::message("Internal Server Error"),
    ))
}
