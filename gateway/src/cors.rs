//! CORS for browser frontends. The gateway alone answers preflights (no token needed) and
//! decides the CORS headers of every response; upstream CORS headers are dropped in
//! `request/headers.rs`. Only exactly listed origins get any CORS header, and with them
//! `Access-Control-Allow-Credentials: true`; every response varies on `Origin`.

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::request::{list_items, ClientHead};

/// Request headers a browser may send cross-origin; anything else requested is left out of
/// the preflight answer (the browser then refuses the request itself).
const ALLOWED_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "x-request-id",
    "accept",
    "accept-language",
];
const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE");
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
const TRUE: HeaderValue = HeaderValue::from_static("true");
/// Response headers a cross-origin page may read: the request id, a list's total and paging
/// links (tasks-service's `X-Total-Count` and `Link`), which table components read, and the
/// JWT Better Auth's `get-session` answers with (`set-auth-jwt`, which Better Auth exposes
/// itself; the gateway replaces every upstream's `Access-Control-*`, so it must name it too).
const EXPOSE: HeaderValue =
    HeaderValue::from_static("x-request-id, x-total-count, link, set-auth-jwt");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
const VARY_PREFLIGHT: HeaderValue =
    HeaderValue::from_static("Access-Control-Request-Method, Access-Control-Request-Headers");

/// The CORS policy: which origins are trusted.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    allowed_origins: Vec<HeaderValue>,
}

/// A preflight's answer, or why there is none.
#[derive(Debug)]
pub enum Preflight {
    /// Not a preflight: handle the request as usual.
    NotPreflight,
    /// A preflight from a listed origin: answer it with this response (204).
    Allowed(Response<()>),
    /// A preflight from an unlisted origin.
    Refused,
}

impl Cors {
    /// A policy trusting exactly `origins` (e.g. `https://app.example.com`).
    pub fn new(origins: &[String]) -> Self {
        Self {
            allowed_origins: origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
        }
    }

    /// The listed origin that `origin`, a request's `Origin` value, names, if any.
    pub fn allowed(&self, origin: Option<&[u8]>) -> Option<HeaderValue> {
        let origin = origin?;
        self.allowed_origins
            .iter()
            .find(|allowed| allowed.as_bytes() == origin)
            .cloned()
    }

    /// Answers a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    pub fn preflight(&self, head: &impl ClientHead) -> Preflight {
        let origin = head.value(header::ORIGIN);
        let is_preflight = head.method() == Method::OPTIONS
            && origin.is_some()
            && head.value(header::ACCESS_CONTROL_REQUEST_METHOD).is_some();
        if !is_preflight {
            return Preflight::NotPreflight;
        }
        let Some(origin) = self.allowed(origin) else {
            return Preflight::Refused;
        };
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        if let Some(allowed) = allowed_request_headers(head) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        Preflight::Allowed(response)
    }

    /// Adds the CORS headers of an actual response (or a preflight's `Vary`) to `response`;
    /// `allowed` is the listed origin the request came from ([`Cors::allowed`]).
    pub fn decorate(
        &self,
        allowed: Option<&HeaderValue>,
        is_preflight: bool,
        response: &mut HeaderMap,
    ) {
        response.append(header::VARY, VARY_ORIGIN);
        if is_preflight {
            response.append(header::VARY, VARY_PREFLIGHT);
            return; // the preflight answer carries its own CORS headers
        }
        if let Some(origin) = allowed {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE);
        }
    }
}

/// The requested headers that are on the allowlist, lower-cased, or `None` if none are.
fn allowed_request_headers(head: &impl ClientHead) -> Option<HeaderValue> {
    let requested: Vec<&str> = head
        .values(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .flat_map(list_items)
        .filter_map(|name| {
            ALLOWED_HEADERS
                .into_iter()
                .find(|allowed| name.eq_ignore_ascii_case(allowed.as_bytes()))
        })
        .collect();
    if requested.is_empty() {
        return None;
    }
    HeaderValue::from_str(&requested.join(", ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_head(origin: &str, requested: &str) -> http::request::Parts {
        let request = http::Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/u1/tasks")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, requested);
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn preflight_echoes_only_allowlisted_headers() {
        let cors = Cors::new(&["https://app.example".into()]);
        let head = preflight_head("https://app.example", "Authorization, X-Evil, Accept");
        let Preflight::Allowed(response) = cors.preflight(&head) else {
            panic!("listed origin should be allowed");
        };
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, accept"
        );
        let other = preflight_head("https://evil.example", "authorization");
        assert!(matches!(cors.preflight(&other), Preflight::Refused));
    }
}
