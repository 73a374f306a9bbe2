//! Who the client is, as far as the gateway can tell: the one address it sends upstream in
//! `X-Forwarded-For`. An `X-Forwarded-For` a client sends is its own word, not an
//! observation, and upstreams take an address there for the client's (Better Auth does, for
//! its per-address rate limits on sign-in and the address it stores with a session). So a
//! chain is believed only from a peer in `TRUSTED_PROXIES` (an ingress or load balancer in
//! front of the gateway), and only as far back as it runs through trusted proxies; from any
//! other peer the client is the peer.
//!
//! One address, not a chain: it is what the gateway vouches for, and what an upstream
//! configured with no proxies of its own reads as the client (Better Auth 1.7 believes a
//! single-address header only, and puts every request with a chain into one shared bucket).

use std::net::IpAddr;

use http::HeaderValue;
use ipnet::IpNet;

use super::ClientAddr;

/// The widest networks [`TrustedProxies::parse`] accepts, as prefix lengths: IPv4's widest
/// private range is `10.0.0.0/8`; in IPv6 a `/32` is a whole provider's allocation, wide
/// enough for any operator's own network, except within the private (`fc00::/7`) and
/// link-local (`fe80::/10`) ranges, which may be listed whole.
const MIN_PREFIX_LEN_V4: u8 = 8;
const MIN_PREFIX_LEN_V6: u8 = 32;

/// Whether `network` lies within IPv6's private (`fc00::/7`) or link-local (`fe80::/10`)
/// range.
fn is_private_v6(network: ipnet::Ipv6Net) -> bool {
    ["fc00::/7", "fe80::/10"]
        .iter()
        .filter_map(|range| range.parse::<ipnet::Ipv6Net>().ok())
        .any(|range| range.contains(&network))
}

/// The networks whose `X-Forwarded-For` the gateway believes (`TRUSTED_PROXIES`): empty by
/// default, which is right wherever clients reach the gateway directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses entries such as `10.0.0.0/8`, `fd00::/8` or a single address; blank entries are
    /// skipped. A network wider than the widest private range is refused: `0.0.0.0/0` (or
    /// half of it) would let any client name its own address, and with it escape Better
    /// Auth's per-address limits on password guessing.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{entry:?} is not an address or a network like 10.0.0.0/8"))?;
            let widest = match network {
                IpNet::V4(_) => MIN_PREFIX_LEN_V4,
                IpNet::V6(v6) if v6.addr().to_ipv4_mapped().is_some() => {
                    // Matching reads a mapped client address as IPv4, which an IPv6
                    // network never contains: such an entry would trust no one, silently.
                    return Err(format!(
                        "{entry:?} is an IPv4-mapped network; write it as IPv4 ({})",
                        "e.g. 10.0.0.0/8"
                    ));
                }
                IpNet::V6(v6) if is_private_v6(v6.trunc()) => 7,
                IpNet::V6(_) => MIN_PREFIX_LEN_V6,
            };
            if network.prefix_len() < widest {
                return Err(format!(
                    "{entry:?} trusts every client on a /{} (anyone could choose the address \
                     upstreams see); list the networks of the proxies in front of the gateway, \
                     /{widest} or narrower",
                    network.prefix_len()
                ));
            }
            networks.push(network.trunc());
        }
        Ok(Self(networks))
    }

    /// Whether `ip` is a trusted proxy's (an IPv4 address mapped into IPv6 counts as itself).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The `X-Forwarded-For` value for a request from `client` that carried the chain
    /// `sent` (its header values, in order): the client's address. From an untrusted peer,
    /// the peer's. From a trusted one, the chain is read from its end for as long as each
    /// address is a trusted proxy's, and the first that is not is the client's (all trusted:
    /// the first). An entry that is not an address ends the reading, and the last trusted
    /// hop read stands for the client: a shared address, never one a client chose.
    pub fn forwarded_for<'h>(
        &self,
        sent: impl IntoIterator<Item = &'h [u8]>,
        client: &ClientAddr,
    ) -> HeaderValue {
        if !self.contains(client.ip()) {
            return client.forwarded_for().clone();
        }
        let sent: Vec<&[u8]> = sent.into_iter().collect();
        let entries = sent
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(|&byte| byte == b','));
        let mut found = None;
        for entry in entries {
            let Some(ip) = std::str::from_utf8(entry)
                .ok()
                .and_then(|text| text.trim().parse::<IpAddr>().ok())
            else {
                break;
            };
            found = Some(ip);
            if !self.contains(ip) {
                break;
            }
        }
        match found {
            // An address's text is a valid header value.
            Some(ip) => HeaderValue::from_str(&ip.to_string()).expect("an address is text"),
            None => client.forwarded_for().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &str) -> TrustedProxies {
        TrustedProxies::parse(entries.split(',')).unwrap()
    }

    fn client_of(proxies: &TrustedProxies, peer: &str, sent: &[&str]) -> String {
        let client = ClientAddr::new(format!("{peer}:4000").parse().unwrap());
        let value = proxies.forwarded_for(sent.iter().map(|s| s.as_bytes()), &client);
        value.to_str().unwrap().to_owned()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let none = TrustedProxies::default();
        assert_eq!(client_of(&none, "127.0.0.1", &["203.0.113.9"]), "127.0.0.1");
        let some = trusted("10.0.0.0/8");
        assert_eq!(
            client_of(&some, "192.0.2.7", &["203.0.113.9, 10.0.0.1"]),
            "192.0.2.7"
        );
        assert_eq!(client_of(&some, "192.0.2.7", &[]), "192.0.2.7");
    }

    #[test]
    fn a_trusted_peers_chain_is_believed_back_to_the_first_untrusted_address() {
        let proxies = trusted("10.0.0.0/8, 192.0.2.1");
        // An ingress (10.0.0.5) that appended what it saw to what the client sent.
        assert_eq!(
            client_of(&proxies, "10.0.0.5", &["6.6.6.6, 203.0.113.9"]),
            "203.0.113.9"
        );
        // Through two trusted hops, over two header lines.
        assert_eq!(
            client_of(
                &proxies,
                "10.0.0.5",
                &["6.6.6.6, 203.0.113.9", "192.0.2.1, 10.9.9.9"]
            ),
            "203.0.113.9"
        );
        // Every hop trusted: the first one stands for the client.
        assert_eq!(
            client_of(&proxies, "10.0.0.5", &["10.1.1.1, 10.2.2.2"]),
            "10.1.1.1"
        );
        // No chain: the trusted peer itself.
        assert_eq!(client_of(&proxies, "10.0.0.5", &[]), "10.0.0.5");
    }

    #[test]
    fn the_reading_stops_at_an_entry_that_is_no_address() {
        let proxies = trusted("10.0.0.0/8");
        for sent in ["203.0.113.9, unknown", "203.0.113.9,", "1.2.3.4:80"] {
            assert_eq!(
                client_of(&proxies, "10.0.0.5", &[sent]),
                "10.0.0.5",
                "{sent}"
            );
        }
        assert_eq!(
            client_of(&proxies, "10.0.0.5", &["garbage, 10.0.0.9"]),
            "10.0.0.9"
        );
        // Written as an address, not as the client's spelling.
        assert_eq!(
            client_of(&proxies, "10.0.0.5", &["  2001:DB8::1 "]),
            "2001:db8::1"
        );
    }

    #[test]
    fn networks_and_addresses_parse_and_match_canonically() {
        let proxies = trusted(" 10.0.0.0/8 ,, fd00::/8,192.0.2.1");
        assert!(proxies.contains("10.200.0.1".parse().unwrap()));
        assert!(proxies.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(proxies.contains("fd12::1".parse().unwrap()));
        assert!(proxies.contains("192.0.2.1".parse().unwrap()));
        assert!(!proxies.contains("192.0.2.2".parse().unwrap()));
        assert_eq!(trusted("10.1.2.3/8"), trusted("10.0.0.0/8"));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0/8"] {
            assert!(TrustedProxies::parse([bad]).is_err(), "{bad}");
        }
        // Networks that would let any client choose its address.
        for everyone in [
            "0.0.0.0/0",
            "::/0",
            "0.0.0.0/1",
            "128.0.0.0/7",
            "8000::/1",
            // A public /7 of IPv6 (most of two registries' space), and a whole /16.
            "2600::/7",
            "2a00::/16",
        ] {
            let refused = TrustedProxies::parse(["10.0.0.0/8", everyone]).unwrap_err();
            assert!(
                refused.contains("trusts every client"),
                "{everyone}: {refused}"
            );
        }
        assert!(TrustedProxies::parse([
            "10.0.0.0/8",
            "fc00::/7",
            "fe80::/10",
            "2001:db8::/32",
            "::1/128"
        ])
        .is_ok());
        // A mapped IPv4 network would match no client (they are read as IPv4).
        let mapped = TrustedProxies::parse(["::ffff:10.0.0.0/104"]).unwrap_err();
        assert!(mapped.contains("write it as IPv4"), "{mapped}");
        assert_eq!(
            TrustedProxies::parse([""; 2]),
            Ok(TrustedProxies::default())
        );
    }
}
