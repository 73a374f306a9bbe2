//! What a request takes upstream, in the order that makes spoofing impossible: every
//! identity header the client sent is dropped, and so are hop-by-hop headers (including those
//! its `Connection` header names) and anything named like a header the gateway sets; then the
//! gateway's own headers, the signed identity last, are added after the client's. One rule
//! ([`Forwarding`]) decides which client lines travel, whichever engine writes them.

use http::{header, request, HeaderMap, HeaderName, HeaderValue, Version};
use proto_shared::{headers::is_identity_header, IdentityHeaders, RequestId};

use crate::request::{
    connection_may_drop, is_hop_by_hop, list_items, ClientAddr, ClientHead, TrustedProxies,
};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// What the gateway does to a request head on its way upstream, decided by the request
/// steps: which of the client's header lines travel on (one rule, which the lean engine
/// applies through [`Forwarding::forwarded_lines`] and hyper's path through
/// [`Forwarding::apply`]) and which headers the gateway sets itself
/// ([`Forwarding::own_headers`]). The upstream's `Host` is the engine's to add.
#[derive(Debug)]
pub struct Forwarding {
    keep_credentials: bool,
    /// The client's `Content-Length` as the number it parsed to, written in place of the
    /// client's spelling (`005` goes as `5`): the upstream reads the length the gateway
    /// framed the body by, with nothing left to read differently. `None` without one (or,
    /// on hyper's path, with one hyper accepted but that is no plain number: then the
    /// client's line travels as hyper framed it).
    content_length: Option<HeaderValue>,
    forwarded_for: HeaderValue,
    request_id: HeaderValue,
    identity: Option<IdentityHeaders>,
}

// Statics, not consts, so that lending one out costs no copy and no drop.
static CONTENT_LENGTH: HeaderName = header::CONTENT_LENGTH;
static FORWARDED_FOR: HeaderName = X_FORWARDED_FOR;
static FORWARDED_PROTO: HeaderName = X_FORWARDED_PROTO;
static FORWARDED_HOST: HeaderName = X_FORWARDED_HOST;
static REQUEST_ID: HeaderName = proto_shared::headers::REQUEST_ID;
static USER_ID: HeaderName = proto_shared::headers::USER_ID;
static IDENTITY_CREDENTIAL: HeaderName = proto_shared::headers::IDENTITY_CREDENTIAL;

static FORWARDED: HeaderName = header::FORWARDED;
static REAL_IP: HeaderName = X_REAL_IP;

/// The headers the gateway sets on every forwarded request, besides the identity ones, and
/// the other spellings of the client's address (`Forwarded`, `X-Real-IP`), which the gateway
/// states in `X-Forwarded-For` alone (`request/forwarded_for.rs`): a client's are dropped,
/// so the gateway's replace them, never add to them.
static SET_BY_GATEWAY: [&HeaderName; 6] = [
    &FORWARDED_FOR,
    &FORWARDED_PROTO,
    &FORWARDED_HOST,
    &REQUEST_ID,
    &FORWARDED,
    &REAL_IP,
];

impl Forwarding {
    /// How `head`, from `client`, is to be forwarded: its credentials (`Authorization` and
    /// `Cookie`) travel on only when `keep_credentials`; its `X-Forwarded-For` is believed as
    /// `proxies` say.
    pub fn new(
        head: &impl ClientHead,
        client: &ClientAddr,
        proxies: &TrustedProxies,
        request_id: &RequestId,
        keep_credentials: bool,
    ) -> Self {
        Self {
            keep_credentials,
            content_length: head
                .value(header::CONTENT_LENGTH)
                .and_then(crate::request::decimal_length)
                .map(HeaderValue::from),
            forwarded_for: proxies.forwarded_for(head.values(X_FORWARDED_FOR), client),
            request_id: request_id.header_value().clone(),
            identity: None,
        }
    }

    /// Adds the signed identity, which no client header can remove or replace.
    pub fn sign(&mut self, identity: IdentityHeaders) {
        self.identity = Some(identity);
    }

    /// Whether the client's header line `name` (in any letter case) travels upstream. Not:
    /// identity headers, hop-by-hop headers and those the head's `Connection` header names,
    /// the headers the gateway sets itself, `Host` (the upstream's own authority goes there;
    /// the client's travels on as `X-Forwarded-Host`), `Transfer-Encoding` (the engine frames
    /// the body), and `Authorization` and `Cookie` unless credentials are to be kept: behind
    /// the gateway a protected upstream needs neither (the signed identity says who asks), and
    /// Better Auth's session cookie outlives the token by days and mints new ones, so a
    /// service that held it could act as the user long after the request. `connection` tells whether the
    /// head has a `Connection` header at all, so a head without one is not searched for it.
    ///
    /// `Content-Length` always travels ([`connection_may_drop`]): the body follows it, and
    /// without it the upstream would read that body as the next request. A name with `_` is
    /// judged as read with `-` as well, since some servers read it so (CGI-style environments
    /// do): a `Content_Length` or `Transfer_Encoding` could frame the body otherwise there.
    fn forwards(&self, head: &impl ClientHead, connection: bool, name: &[u8]) -> bool {
        let is = |known: &HeaderName| name.eq_ignore_ascii_case(known.as_str().as_bytes());
        if name.contains(&b'_') {
            let dashed: Vec<u8> = name
                .iter()
                .map(|&byte| if byte == b'_' { b'-' } else { byte })
                .collect();
            let framing = dashed.eq_ignore_ascii_case(header::CONTENT_LENGTH.as_str().as_bytes());
            if framing || !self.forwards(head, connection, &dashed) {
                return false;
            }
        }
        let dropped = is_identity_header(name)
            || is_hop_by_hop(name)
            || SET_BY_GATEWAY.into_iter().any(is)
            || is(&header::HOST)
            || is(&header::TRANSFER_ENCODING)
            || (self.content_length.is_some() && is(&header::CONTENT_LENGTH))
            || (!self.keep_credentials && (is(&header::AUTHORIZATION) || is(&header::COOKIE)))
            || (connection
                && connection_may_drop(name)
                && head
                    .values(header::CONNECTION)
                    .flat_map(list_items)
                    .any(|named| named.eq_ignore_ascii_case(name)));
        !dropped
    }

    /// The client's header lines that travel upstream, in order.
    pub fn forwarded_lines<'h, H: ClientHead>(
        &'h self,
        head: &'h H,
    ) -> impl Iterator<Item = (&'h [u8], &'h [u8])> {
        let connection = head.value(header::CONNECTION).is_some();
        head.lines()
            .filter(move |(name, _)| self.forwards(head, connection, name))
    }

    /// Calls `visit` with each header the gateway adds after the client's forwarded lines of
    /// `head`, in order: the body's `Content-Length` as a number, `X-Forwarded-For`,
    /// `-Proto`, `-Host` (the host the client addressed), the request id and, last, the
    /// signed identity. A visitor rather than an iterator: this runs for every request, and
    /// the chained iterator showed in its profile.
    pub fn own_headers<'h>(
        &'h self,
        head: &'h impl ClientHead,
        mut visit: impl FnMut(&'static HeaderName, &'h [u8]),
    ) {
        if let Some(length) = &self.content_length {
            visit(&CONTENT_LENGTH, length.as_bytes());
        }
        visit(&FORWARDED_FOR, self.forwarded_for.as_bytes());
        visit(&FORWARDED_PROTO, b"http");
        if let Some(host) = head.host() {
            visit(&FORWARDED_HOST, host);
        }
        visit(&REQUEST_ID, self.request_id.as_bytes());
        if let Some(identity) = &self.identity {
            visit(&USER_ID, identity.user_id.as_bytes());
            visit(&IDENTITY_CREDENTIAL, identity.credential.as_bytes());
        }
    }

    /// Applies the rule to a head hyper parsed: the lines that do not travel are removed,
    /// then the gateway's own headers are set.
    pub fn apply(self, head: &mut request::Parts) {
        let mut own = Vec::with_capacity(7);
        self.own_headers(&*head, |name, value| {
            // Each value is a header value already (or an address, or a URI authority).
            if let Ok(value) = HeaderValue::from_bytes(value) {
                own.push((name, value));
            }
        });
        let connection = head.headers.contains_key(header::CONNECTION);
        let dropped: Vec<HeaderName> = head
            .headers
            .keys()
            .filter(|name| !self.forwards(&*head, connection, name.as_str().as_bytes()))
            .cloned()
            .collect();
        for name in dropped {
            head.headers.remove(name);
        }
        for (name, value) in own {
            head.headers.insert(name, value);
        }
        if head.version == Version::HTTP_2 {
            join_cookies(&mut head.headers);
        }
    }
}

/// RFC 9113 §8.2.3: an HTTP/2 client may send each cookie pair as a field of its own, and
/// they must be joined with "; " before the request travels on as HTTP/1.1, where a server
/// expects one `Cookie` line (many read only the first).
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::COOKIE).iter();
    if values.next().is_none() || values.next().is_none() {
        return;
    }
    let joined = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    // Each part was a valid value, and "; " is too.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Request};

    fn head(lines: &[(&str, &str)]) -> request::Parts {
        let mut request = Request::builder().uri("/api/u1/tasks");
        for (name, value) in lines {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn forward(head: request::Parts, keep_credentials: bool) -> HeaderMap {
        forward_from(head, keep_credentials, &TrustedProxies::default())
    }

    /// As forwarded from a client at 10.0.0.7, with `proxies` trusted.
    fn forward_from(
        mut head: request::Parts,
        keep_credentials: bool,
        proxies: &TrustedProxies,
    ) -> HeaderMap {
        let id = RequestId::from_value(Some(b"req-1"));
        let client = ClientAddr::new("10.0.0.7:5000".parse().unwrap());
        Forwarding::new(&head, &client, proxies, &id, keep_credentials).apply(&mut head);
        head.headers
    }

    #[test]
    fn connection_cannot_remove_what_the_gateway_sets() {
        let headers = forward(
            head(&[
                ("connection", "x-forwarded-proto, x-request-id, x-secret"),
                ("x-secret", "s"),
                ("x_user_id", "mallory"),
                ("x-forwarded-for", "1.2.3.4"),
                ("host", "gw.example"),
                ("x-forwarded-host", "evil.example"),
                ("authorization", "Bearer t"),
                ("content-type", "application/json"),
            ]),
            false,
        );
        assert!(headers.get("x-secret").is_none());
        assert!(headers.get("x_user_id").is_none());
        assert!(headers.get(header::CONNECTION).is_none());
        assert!(headers.get(header::AUTHORIZATION).is_none());
        assert!(
            headers.get(header::HOST).is_none(),
            "the engine sets the upstream's"
        );
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[proto_shared::headers::REQUEST_ID], "req-1");
        assert_eq!(headers[X_FORWARDED_FOR], "10.0.0.7");
        assert_eq!(headers.get_all(X_FORWARDED_HOST).iter().count(), 1);
        assert_eq!(headers[X_FORWARDED_HOST], "gw.example");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }

    /// The client's address travels in one header, the gateway's: a client's `Forwarded`
    /// and `X-Real-IP` never do, and its `X-Forwarded-For` is believed only from a trusted
    /// proxy (`request/forwarded_for.rs` has the chain's rules).
    #[test]
    fn the_clients_address_is_the_gateways_to_state() {
        let lines = [
            ("x-forwarded-for", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("x_real_ip", "1.2.3.4"),
        ];
        let untrusted = forward(head(&lines), false);
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let trusted = forward_from(head(&lines), false, &proxies);
        for (headers, forwarded_for) in [(untrusted, "10.0.0.7"), (trusted, "1.2.3.4")] {
            assert_eq!(headers.get_all(X_FORWARDED_FOR).iter().count(), 1);
            assert_eq!(headers[X_FORWARDED_FOR], forwarded_for);
            for dropped in ["forwarded", "x-real-ip", "x_real_ip"] {
                assert!(headers.get(dropped).is_none(), "{dropped} travelled");
            }
        }
    }

    #[test]
    fn connection_cannot_remove_the_body_length() {
        let headers = forward(
            head(&[
                ("connection", "Content-Length, x-secret"),
                ("content-length", "81"),
                ("x-secret", "s"),
            ]),
            false,
        );
        assert_eq!(headers[header::CONTENT_LENGTH], "81");
        assert!(headers.get("x-secret").is_none());
    }

    #[test]
    fn names_that_read_as_dropped_or_framing_ones_with_dashes_are_dropped() {
        let headers = forward(
            head(&[
                ("content_length", "99"),
                ("Transfer_Encoding", "chunked"),
                ("x_forwarded_host", "evil.example"),
                ("connection", "x-secret"),
                ("x_secret", "s"),
                ("proxy_authorization", "Basic x"),
                ("x_custom_header", "kept"),
            ]),
            false,
        );
        for dropped in [
            "content_length",
            "transfer_encoding",
            "x_forwarded_host",
            "x_secret",
            "proxy_authorization",
        ] {
            assert!(headers.get(dropped).is_none(), "{dropped} travelled");
        }
        assert_eq!(headers["x_custom_header"], "kept");
    }

    #[test]
    fn the_body_length_travels_as_the_number_it_parsed_to() {
        let headers = forward(head(&[("content-length", "005")]), false);
        assert_eq!(headers.get_all(header::CONTENT_LENGTH).iter().count(), 1);
        assert_eq!(headers[header::CONTENT_LENGTH], "5");
    }

    #[test]
    fn credentials_travel_only_when_kept() {
        let lines = [
            ("authorization", "Bearer t"),
            ("cookie", "better-auth.session_token=s"),
            ("cookie", "theme=dark"),
        ];
        let kept = forward(head(&lines), true);
        assert_eq!(kept[header::AUTHORIZATION], "Bearer t");
        assert_eq!(kept.get_all(header::COOKIE).iter().count(), 2);
        let dropped = forward(head(&lines), false);
        assert!(dropped.get(header::AUTHORIZATION).is_none());
        assert!(dropped.get(header::COOKIE).is_none());
        // The lean engine's rule, on raw names in any case.
        let head = head(&[]);
        let id = RequestId::generate();
        let client = ClientAddr::new("10.0.0.7:5000".parse().unwrap());
        let forwarding = Forwarding::new(&head, &client, &TrustedProxies::default(), &id, false);
        for name in ["COOKIE", "CoOkIe", "Authorization", "AUTHORIZATION"] {
            assert!(
                !forwarding.forwards(&head, false, name.as_bytes()),
                "{name}"
            );
        }
        assert!(forwarding.forwards(&head, false, b"Accept"));
    }

    #[test]
    fn the_signed_identity_comes_last_and_alone() {
        let head = head(&[
            ("X-User-Id", "mallory"),
            ("x-identity-credential", "forged"),
        ]);
        let id = RequestId::generate();
        let client = ClientAddr::new("10.0.0.7:5000".parse().unwrap());
        let mut forwarding =
            Forwarding::new(&head, &client, &TrustedProxies::default(), &id, false);
        forwarding.sign(IdentityHeaders {
            user_id: HeaderValue::from_static("alice"),
            credential: HeaderValue::from_static("v1;sig"),
        });
        assert_eq!(forwarding.forwarded_lines(&head).count(), 0);
        let mut own = Vec::new();
        forwarding.own_headers(&head, |name, value| own.push((name, value)));
        let last = own.last().unwrap();
        assert_eq!((last.0, last.1), (&IDENTITY_CREDENTIAL, &b"v1;sig"[..]));
        let users: Vec<_> = own.iter().filter(|(name, _)| **name == USER_ID).collect();
        assert_eq!(users, [&(&USER_ID, &b"alice"[..])]);
    }
}
