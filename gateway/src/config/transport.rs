//! Which issuer URLs may be plain http. The JWKS decides which signatures the gateway trusts,
//! so whoever can change it in transit can mint any user's token: it must come over https,
//! or over http only where no one else is on the path (loopback), unless the operator says
//! the network in between is private (`JWKS_ALLOW_INSECURE_HTTP`). The issuer follows the
//! same rule, as it names the same server; an issuer that is not an http URL is an opaque
//! identifier, compared verbatim, and not judged here.

use std::net::IpAddr;

use crate::jwks::loggable_url;

/// True when `url` is http:// to a host that is not loopback: allowed only by opt-in.
pub fn needs_opt_in(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    uri.scheme_str()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http"))
        && !uri.host().is_some_and(is_loopback)
}

/// The configuration problem for such a URL, without any `user:password@` in it: start-up
/// errors end up in logs that more people read than the secret's owners.
pub fn refusal(url: &str) -> String {
    let url = loggable_url(url);
    format!(
        "{url:?} is plain http to a host that is not loopback, so anyone on the path could \
         swap the signing keys; use https://, or set JWKS_ALLOW_INSECURE_HTTP=true if the \
         network in between is private"
    )
}

/// 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_beyond_loopback_needs_the_opt_in() {
        for url in [
            "https://auth.example/api/auth/jwks",
            "http://127.0.0.1:3000/api/auth/jwks",
            "http://127.8.9.10/jwks",
            "http://localhost:3000",
            "HTTP://LOCALHOST/jwks",
            "http://[::1]:3000/jwks",
            "http://[::ffff:127.0.0.1]/jwks",
            "better-auth",
        ] {
            assert!(!needs_opt_in(url), "{url}");
        }
        for url in [
            "http://better-auth:3000/api/auth/jwks",
            "http://10.0.0.5/jwks",
            "http://[::2]/jwks",
            "http://localhost.evil.example/jwks",
            "http://128.0.0.1/jwks",
        ] {
            assert!(needs_opt_in(url), "{url}");
        }
    }
}
