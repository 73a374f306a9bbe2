//! The one place where anything that stops a request becomes a response: a status code, a
//! JSON `{"detail": ...}` body that names the general reason and no internals, and for token
//! refusals the RFC 6750 `WWW-Authenticate` challenge. Every refusal also has a short stable
//! `reason()` for the log line and the refusals metric.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use proto_shared::ErrorBody;

use crate::auth::AuthError;

/// Why the gateway answered instead of the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the path names another user")]
    ForbiddenUser,
    #[error("origin not allowed")]
    CorsOriginNotAllowed,
    #[error("no such route")]
    NotFound,
    #[error("the request path is not acceptable")]
    BadPath,
    #[error("the Host header is missing, repeated or not a host")]
    BadHost,
    #[error("the Connection header is too long")]
    ConnectionTooLong,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("CONNECT is not relayed")]
    MethodNotRelayed,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("the request head could not be read")]
    MalformedHead,
    #[error("the request target is too long")]
    TargetTooLong,
    #[error("the request's HTTP version is not supported")]
    VersionNotSupported,
    #[error("the request body ended early or was malformed")]
    IncompleteBody,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("too many concurrent requests")]
    Overloaded,
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    #[error("upstream timed out")]
    UpstreamTimeout,
}

impl GatewayError {
    /// A short stable label for logs and the refusals metric.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Auth(error) => error.reason(),
            Self::ForbiddenUser => "forbidden_user",
            Self::CorsOriginNotAllowed => "cors_origin_not_allowed",
            Self::NotFound => "not_found",
            Self::BadPath => "bad_path",
            Self::BadHost => "bad_host",
            Self::ConnectionTooLong => "connection_too_long",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MethodNotRelayed => "method_not_relayed",
            Self::BodyTooLarge => "body_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::MalformedHead => "malformed_head",
            Self::TargetTooLong => "target_too_long",
            Self::VersionNotSupported => "version_not_supported",
            Self::IncompleteBody => "incomplete_body",
            Self::BodyTimeout => "body_timeout",
            Self::Overloaded => "overloaded",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The status code this refusal is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Auth(AuthError::KeysUnavailable | AuthError::RevocationUnavailable) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::ForbiddenUser | Self::CorsOriginNotAllowed => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadPath
            | Self::BadHost
            | Self::ConnectionTooLong
            | Self::IncompleteBody
            | Self::MalformedHead => StatusCode::BAD_REQUEST,
            Self::TargetTooLong => StatusCode::URI_TOO_LONG,
            Self::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            // 501, not 405: refused for every resource, so there is no `Allow` list to give.
            Self::MethodNotRelayed => StatusCode::NOT_IMPLEMENTED,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// What the client reads in `detail`: the general reason, never a token or an internal cause.
    fn detail(self) -> &'static str {
        match self {
            Self::Auth(AuthError::Missing) => "Not authenticated: no bearer token",
            Self::Auth(AuthError::Malformed) => "Invalid token: malformed",
            Self::Auth(AuthError::Expired) => "Invalid token: expired",
            Self::Auth(AuthError::NotYetValid) => "Invalid token: not yet valid",
            Self::Auth(AuthError::BadSignature) => "Invalid token: bad signature",
            // Told apart from a bad signature so that a client holding a token from a key
            // the gateway has not fetched yet (a rotation) can tell that a retry may help.
            // It reveals only which key ids exist, which the public JWKS says anyway.
            Self::Auth(AuthError::UnknownKey) => "Invalid token: unknown key",
            Self::Auth(AuthError::DisallowedAlgorithm) => "Invalid token: algorithm not allowed",
            Self::Auth(AuthError::WrongIssuer) => "Invalid token: wrong issuer",
            Self::Auth(AuthError::WrongAudience | AuthError::WrongTokenType) => {
                "Invalid token: wrong audience"
            }
            Self::Auth(AuthError::InvalidSubject) => "Invalid token: invalid subject",
            Self::Auth(AuthError::KeysUnavailable) => {
                "Authentication temporarily unavailable: signing keys not loaded"
            }
            Self::Auth(AuthError::Revoked) => "Invalid token: revoked",
            Self::Auth(AuthError::OutlivesRevocation) => {
                "Invalid token: lives longer than sign-out can reach"
            }
            Self::Auth(AuthError::RevocationUnavailable) => {
                "Authentication temporarily unavailable: revocations cannot be checked"
            }
            Self::Auth(AuthError::NoSession) => {
                "Invalid token: names no session (sid), so signing out could not end it"
            }
            Self::ForbiddenUser => "Forbidden: the path names another user",
            Self::CorsOriginNotAllowed => "Forbidden: origin not allowed",
            Self::NotFound => "Not Found",
            Self::BadPath => "Bad request: path contains dot segments",
            Self::BadHost => "Bad request: missing, repeated or invalid Host header",
            Self::ConnectionTooLong => "Bad request: the Connection header is too long",
            Self::MethodNotAllowed => "Method Not Allowed",
            Self::MethodNotRelayed => "Not implemented: the gateway does not relay CONNECT",
            Self::BodyTooLarge => "Request body too large",
            Self::HeadersTooLarge => "Request header fields too large",
            Self::MalformedHead => "Bad request: the request head is malformed",
            Self::TargetTooLong => "Request target too long",
            Self::VersionNotSupported => "HTTP version not supported",
            Self::IncompleteBody => "Bad request: the body ended early or was malformed",
            Self::BodyTimeout => "Request timeout: the body did not arrive in time",
            Self::Overloaded => "Service overloaded, retry later",
            Self::UpstreamUnavailable => "Bad gateway: upstream unavailable",
            Self::UpstreamTimeout => "Gateway timeout: upstream did not answer in time",
        }
    }

    /// The response for this refusal.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = json_response(self.status(), &ErrorBody::message(self.detail()));
        let headers = response.headers_mut();
        match self {
            // RFC 6750 §3.1: no error code when the request carried no credentials at all.
            Self::Auth(AuthError::Missing) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Auth(AuthError::KeysUnavailable | AuthError::RevocationUnavailable)
            | Self::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // Only the gateway's own endpoints (/healthz, /readyz, /metrics) answer 405 here;
            // RFC 9110 requires the methods they do answer.
            Self::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            Self::Auth(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
            }
            _ => {}
        }
        response
    }
}

/// A JSON response; the only place the gateway serialises a body.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).expect("plain data serialises");
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_refusals_carry_the_bearer_challenge() {
        let missing = GatewayError::Auth(AuthError::Missing).into_response();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(missing.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let expired = GatewayError::Auth(AuthError::Expired).into_response();
        assert_eq!(
            expired.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        let unavailable = GatewayError::Auth(AuthError::KeysUnavailable).into_response();
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(unavailable
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .is_none());
    }
}
