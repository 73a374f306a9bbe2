//! What the head targets' references share: the hop-by-hop names and list splitting, written
//! here from RFC 9110 (§7.6.1, §5.6.1) rather than taken from the gateway, so that a property
//! judges the gateway by an independent reading of the RFC.

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the customary extras).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Whether the header name `name` is `known`, in any letter case.
pub fn is(name: &[u8], known: &str) -> bool {
    name.eq_ignore_ascii_case(known.as_bytes())
}

/// Comma-separated list items, trimmed, empty ones skipped (RFC 9110 §5.6.1).
pub fn items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|item| item.trim_ascii())
        .filter(|item| !item.is_empty())
}
