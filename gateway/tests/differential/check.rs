//! What the differential suite asserts. `compare`: both engines gave the client the same
//! status classes and sent the upstreams the same requests. `invariants`, for each engine on
//! every input: a request reaches the task API only with the gateway's fresh credential for
//! the token's user and at that user's path, and without the client's `Authorization` or
//! `Cookie`; no client identity header reaches any upstream,
//! nothing reaches the public upstream outside its prefix, the upstreams never see more
//! requests than the client got answers, and the gateway never hangs.

use http::Method;
use proto_shared::{headers::is_identity_header, identity::unix_now};

use crate::{
    corpus::Case,
    harness::{Observed, Side, USER},
    recorder::Seen,
};

/// A request as the comparison sees it: the values that differ by nature between two runs
/// (the credential's nonce and time, a generated request id) masked, header lines sorted
/// (hyper groups lines by name; both orders say the same).
fn normalised(seen: &Seen) -> String {
    if let Some(garbage) = &seen.garbage {
        return format!("<garbage {}>", crate::client::escape(garbage));
    }
    let mut headers: Vec<String> = seen
        .headers
        .iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "x-identity-credential" => "<signed>".to_owned(),
                "x-request-id" => "<id>".to_owned(),
                // Each engine's upstreams listen on ports of their own.
                "host" => "<upstream>".to_owned(),
                _ => String::from_utf8_lossy(value).into_owned(),
            };
            format!("{name}: {value}")
        })
        .collect();
    headers.sort();
    format!(
        "{} {} [{}] body {}",
        seen.method,
        seen.target,
        headers.join(" | "),
        crate::client::escape(&seen.body)
    )
}

/// `None` when both engines did the same, else what differed.
pub fn compare(lean: &Observed, hyper: &Observed) -> Option<String> {
    let classes = |o: &Observed| {
        o.received
            .answers
            .iter()
            .map(|a| {
                format!(
                    "{}xx{}",
                    a.status / 100,
                    if a.truncated { " cut" } else { "" }
                )
            })
            .collect::<Vec<_>>()
    };
    let mut differences = Vec::new();
    if classes(lean) != classes(hyper) {
        differences.push(format!(
            "status classes differ: lean {:?}, hyper {:?}",
            classes(lean),
            classes(hyper)
        ));
    }
    if lean.received.hung != hyper.received.hung {
        differences.push("only one engine hung".to_owned());
    }
    for (label, l, h) in [
        ("api", &lean.protected, &hyper.protected),
        ("public", &lean.public, &hyper.public),
    ] {
        let l: Vec<_> = l.iter().map(normalised).collect();
        let h: Vec<_> = h.iter().map(normalised).collect();
        if l != h {
            differences.push(format!(
                "{label} upstream saw different requests:\n      lean:  {l:?}\n      hyper: {h:?}"
            ));
        }
    }
    (!differences.is_empty()).then(|| differences.join("\n  - "))
}

/// Every invariant `observed` breaks on `side`'s engine.
pub fn invariants(observed: &Observed, side: &Side, case: &Case) -> Vec<String> {
    let engine = side.engine;
    let mut broken = Vec::new();
    let mut fail = |what: String| broken.push(format!("{engine:?}: {what}"));
    if observed.received.hung {
        fail("the gateway neither answered nor closed".to_owned());
    }
    let seen = observed.protected.len() + observed.public.len();
    let answered = observed.received.answers.len() + usize::from(case.upstream_breaks);
    if seen > answered {
        fail(format!(
            "upstreams saw {seen} requests, the client got {} answers",
            observed.received.answers.len()
        ));
    }
    for request in &observed.protected {
        if request.garbage.is_some() {
            fail("the task API got bytes that are no request".to_owned());
            continue;
        }
        let identity: Vec<&str> = request
            .headers
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| is_identity_header(name))
            .collect();
        if identity != ["x-user-id", "x-identity-credential"] {
            fail(format!(
                "task API request with identity headers {identity:?}"
            ));
        }
        // The client's credentials stay at the gateway (`FORWARD_AUTHORIZATION` is off here):
        // the signed identity alone says who asks.
        if let Some((name, _)) = request
            .headers
            .iter()
            .find(|(name, _)| name == "authorization" || name == "cookie")
        {
            fail(format!("task API request carried the client's {name:?}"));
        }
        let path = request.target.split('?').next().unwrap_or_default();
        let own = format!("/api/{USER}");
        if path != own && !path.starts_with(&format!("{own}/")) {
            fail(format!("task API request at {:?}", request.target));
        }
        let method = Method::from_bytes(request.method.as_bytes());
        let verdict = method.map_err(|e| e.to_string()).and_then(|method| {
            side.verifier
                .verify(
                    &method,
                    &request.target,
                    &request.header_map(),
                    &request.body,
                    unix_now(),
                )
                .map_err(|e| e.to_string())
        });
        match verdict {
            Ok(Some(user)) if user.as_str() == USER => {}
            other => fail(format!(
                "task API request {} {} without a fresh credential for {USER}: {other:?}",
                request.method, request.target
            )),
        }
    }
    for request in &observed.public {
        if request.garbage.is_some() {
            fail("the public upstream got bytes that are no request".to_owned());
            continue;
        }
        if let Some((name, _)) = request.headers.iter().find(|(n, _)| is_identity_header(n)) {
            fail(format!(
                "public request carried the identity header {name:?}"
            ));
        }
        if !request.target.starts_with("/api/auth/") {
            fail(format!("public request at {:?}", request.target));
        }
    }
    if let Some(expect) = &case.expect {
        let statuses: Vec<u16> = observed.received.answers.iter().map(|a| a.status).collect();
        if let Err(why) = expect(observed) {
            fail(format!("expectation failed ({why}); statuses {statuses:?}"));
        }
    }
    broken
}
