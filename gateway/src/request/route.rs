//! Which way a request goes, decided from its path alone: the gateway's own `/healthz` and
//! `/readyz` (`/metrics` is on the admin listener), a public prefix (longest wins, matched
//! before `/api/`), the protected task API, or nothing.

use crate::upstream::Upstream;

/// A path prefix forwarded without a token, e.g. `/api/auth/` to Better Auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRoute {
    pub prefix: String,
    pub upstream: Upstream,
}

impl PublicRoute {
    /// Parses `prefix=http://host:port`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (prefix, upstream) = raw
            .split_once('=')
            .ok_or_else(|| format!("{raw:?} is not of the form /prefix/=http://host:port"))?;
        let prefix = prefix.trim();
        if !prefix.starts_with('/') || prefix.contains(['?', '#', '%']) || prefix.contains("/.") {
            return Err(format!(
                "{prefix:?} is not a plain path prefix starting with /"
            ));
        }
        // Public prefixes are matched before the protected API, so one that is a prefix of
        // `/api/` (`/`, `/a`, `/api`, `/api/`) would send every task route, token or not, to
        // its upstream: a typo that removes authentication, refused here so it cannot start.
        // `/healthz` and `/readyz` need no such check: they are matched exactly, first.
        if API_PREFIX.starts_with(prefix) {
            return Err(format!(
                "{prefix:?} would make the protected task routes ({API_PREFIX}{{user_id}}/tasks) \
                 public; give a prefix below {API_PREFIX}, such as {API_PREFIX}auth/"
            ));
        }
        // Below `/api/`, the first segment is a user id: a prefix must claim it whole, or
        // `/api/auth` would also take the task routes of every user whose id begins with
        // `auth` (`/api/authz1/tasks`) to its upstream, unauthenticated, and out of reach.
        if prefix
            .strip_prefix(API_PREFIX)
            .is_some_and(|rest| !rest.contains('/'))
        {
            return Err(format!(
                "{prefix:?} would also take the task routes of every user id beginning with \
                 {:?}; end it with / (a whole path segment), such as {prefix}/",
                &prefix[API_PREFIX.len()..]
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            upstream: Upstream::parse(upstream)?,
        })
    }
}

/// The route class: the metrics label and log field, never the raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Health,
    Public,
    Api,
    NotFound,
}

impl RouteClass {
    /// Every class, in declaration order (`class as usize` indexes this).
    pub const ALL: [Self; 4] = [Self::Health, Self::Public, Self::Api, Self::NotFound];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Public => "public",
            Self::Api => "api",
            Self::NotFound => "not_found",
        }
    }
}

/// Where one request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Healthz,
    Readyz,
    Public(&'a Upstream),
    Api,
    NotFound,
}

impl Route<'_> {
    /// The class of this route.
    pub fn class(self) -> RouteClass {
        match self {
            Self::Healthz | Self::Readyz => RouteClass::Health,
            Self::Public(_) => RouteClass::Public,
            Self::Api => RouteClass::Api,
            Self::NotFound => RouteClass::NotFound,
        }
    }
}

/// The routing table, built once at start.
#[derive(Debug, Clone)]
pub struct Router {
    /// Longest prefix first, so the first match is the most specific.
    public: Vec<PublicRoute>,
}

/// The prefix of the protected task API.
pub const API_PREFIX: &str = "/api/";

impl Router {
    /// A router over `public` prefixes.
    pub fn new(mut public: Vec<PublicRoute>) -> Self {
        public.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Self { public }
    }

    /// Routes `path` (without the query).
    pub fn route(&self, path: &str) -> Route<'_> {
        match path {
            "/healthz" => return Route::Healthz,
            "/readyz" => return Route::Readyz,
            _ => {}
        }
        if let Some(public) = self.public.iter().find(|r| path.starts_with(&r.prefix)) {
            return Route::Public(&public.upstream);
        }
        if path.starts_with(API_PREFIX) {
            return Route::Api;
        }
        Route::NotFound
    }
}

/// True when `path` holds a `.` or `..` segment, raw or percent-encoded. Upstreams may
/// normalise those away after the gateway has routed, so `/api/auth/../u1/tasks` could reach
/// a protected route through a public prefix; such paths are refused instead. Segments end
/// at `/` and also at what some servers take for one after decoding or on Windows' rules
/// (`%2F`, `\`, `%5C`), so `/api/auth/..%2Fu1` is found as well.
pub fn has_dot_segment(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Most paths have neither a dot nor an escape: one quick pass settles those.
    if !bytes.iter().any(|&byte| byte == b'.' || byte == b'%') {
        return false;
    }
    // Per segment: how many dots (`.` or `%2e`), and whether anything else is in it. No
    // decoding allocation: this runs on every request.
    let (mut dots, mut other) = (0, false);
    let mut rest = bytes;
    loop {
        let (separator, tail) = match rest {
            [] => (true, rest),
            [b'/' | b'\\', tail @ ..] => (true, tail),
            [b'%', b'2', b'f' | b'F', tail @ ..] | [b'%', b'5', b'c' | b'C', tail @ ..] => {
                (true, tail)
            }
            [b'.', tail @ ..] | [b'%', b'2', b'e' | b'E', tail @ ..] => {
                dots += 1;
                (false, tail)
            }
            [_, tail @ ..] => {
                other = true;
                (false, tail)
            }
        };
        if separator {
            if !other && (1..=2).contains(&dots) {
                return true;
            }
            if rest.is_empty() {
                return false;
            }
            (dots, other) = (0, false);
        }
        rest = tail;
    }
}

/// The user id segment of `/api/{user_id}/...`, still percent-encoded.
pub fn api_user_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(API_PREFIX)?;
    // A byte search: `split('/')`'s char searcher cost more than the rest of the check.
    Some(match rest.bytes().position(|byte| byte == b'/') {
        Some(end) => &rest[..end],
        None => rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(vec![
            PublicRoute::parse("/api/auth/=http://127.0.0.1:1").unwrap(),
            PublicRoute::parse("/api/auth/sign-in/=http://127.0.0.1:2").unwrap(),
        ])
    }

    #[test]
    fn longest_public_prefix_wins_before_the_api() {
        let router = router();
        let Route::Public(upstream) = router.route("/api/auth/sign-in/email") else {
            panic!("public route expected");
        };
        assert_eq!(upstream.authority.port_u16(), Some(2));
        assert_eq!(Router::new(vec![]).route("/api/u1/tasks"), Route::Api);
        assert_eq!(Router::new(vec![]).route("/apix"), Route::NotFound);
        assert_eq!(Router::new(vec![]).route("/healthz"), Route::Healthz);
    }

    #[test]
    fn dot_segments_are_found_raw_and_encoded() {
        assert!(has_dot_segment("/api/auth/../u1"));
        assert!(has_dot_segment("/api/auth/%2E%2e/u1"));
        assert!(has_dot_segment("/api/./u1"));
        assert!(!has_dot_segment("/api/u1/tasks/a..b"));
        assert!(!has_dot_segment("/api/u1/.../x"));
        assert!(!has_dot_segment("/api/u1/.hidden"));
        assert!(!has_dot_segment("/"));
        // Separators some upstreams see after decoding, or on Windows' rules.
        assert!(has_dot_segment("/api/auth/..%2Fu1/tasks"));
        assert!(has_dot_segment("/api/auth/..%2fu1/tasks"));
        assert!(has_dot_segment("/api/auth/%2e%2e%5Cu1"));
        assert!(has_dot_segment("/api/auth/..\\u1"));
        assert!(has_dot_segment("/api/auth/.."));
        assert!(!has_dot_segment("/api/u%2F1/tasks"));
        assert!(!has_dot_segment("/api/u1/a.b%2Fc.d"));
    }

    #[test]
    fn user_segment_is_the_first_after_api() {
        assert_eq!(api_user_segment("/api/u%201/tasks"), Some("u%201"));
        assert_eq!(api_user_segment("/api/u1"), Some("u1"));
        assert_eq!(api_user_segment("/api/"), Some(""));
        assert_eq!(api_user_segment("/other"), None);
    }

    #[test]
    fn upstreams_are_plain_http_origins() {
        assert!(Upstream::parse("http://127.0.0.1:8081/").is_ok());
        assert!(Upstream::parse("https://x").is_err());
        assert!(Upstream::parse("http://x/base").is_err());
        assert!(PublicRoute::parse("api/auth=http://x").is_err());
    }

    #[test]
    fn a_public_prefix_covering_the_protected_api_is_refused() {
        for prefix in ["/", "/a", "/ap", "/api", "/api/"] {
            let error = PublicRoute::parse(&format!("{prefix}=http://x")).unwrap_err();
            assert!(error.contains(&format!("{prefix:?}")), "{error}");
        }
        for prefix in [
            "/api/auth/",
            "/api/auth/sign-in/",
            "/apix",
            "/b",
            "/healthz",
        ] {
            assert!(
                PublicRoute::parse(&format!("{prefix}=http://x")).is_ok(),
                "{prefix}"
            );
        }
    }

    #[test]
    fn a_public_prefix_below_the_api_claims_its_first_segment_whole() {
        for prefix in ["/api/a", "/api/auth"] {
            let error = PublicRoute::parse(&format!("{prefix}=http://x")).unwrap_err();
            assert!(error.contains(&format!("{prefix}/")), "{error}");
        }
        let router = Router::new(vec![PublicRoute::parse("/api/auth/=http://x").unwrap()]);
        assert_eq!(router.route("/api/authz1/tasks"), Route::Api);
    }
}
