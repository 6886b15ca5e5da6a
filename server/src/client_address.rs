//! Whose request it is, by network address: the address sign-in limits count against.
//!
//! The connection's peer is the client unless the peer is a trusted proxy (a load balancer
//! or reverse proxy in front of the app). A proxy appends the address it received the
//! request from to `X-Forwarded-For`, so the list is read from the right: every entry a
//! trusted proxy added is skipped, and the first one that is not a trusted proxy is the
//! client. Entries further left were written by the client itself and prove nothing.
//!
//! A proxy whose own address is not fixed (CloudFront in front of a Lambda function URL)
//! vouches for a request instead with a shared secret in [`PROXY_SECRET_HEADER`]; the
//! function URL is public, so without the secret its forwarded entries are not believed.

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A single address or a CIDR range (`10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, canonical(ip)) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address arriving as IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let base = canonical(IpAddr::from_str(address).map_err(|_| {
            format!("{raw:?} is not an address or range such as 10.0.0.0/8 or ::1")
        })?);
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{raw:?}: the prefix length must be 0 to {bits}"))?,
        };
        Ok(Self { base, prefix })
    }
}

/// The header in which a proxy in front vouches for a request with the shared secret.
pub const PROXY_SECRET_HEADER: &str = "x-engage-proxy-secret";

/// The proxies whose `X-Forwarded-For` entries are believed: those at these addresses, and
/// any that sends the secret.
#[derive(Clone, Default)]
pub struct TrustedProxies {
    pub ranges: Vec<IpRange>,
    pub secret: Option<String>,
    /// Answer only requests that carry the secret (the app is reachable only through
    /// the proxy).
    pub only_through_proxy: bool,
}

impl std::fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedProxies")
            .field("ranges", &self.ranges)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .field("only_through_proxy", &self.only_through_proxy)
            .finish()
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|range| range.contains(ip))
    }

    /// Whether a request may be answered: always, unless the app is to be reached only
    /// through the proxy and the request does not carry its secret.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        !self.only_through_proxy || self.vouched(headers)
    }

    /// Whether the request carries the proxy's secret (compared in constant time).
    fn vouched(&self, headers: &HeaderMap) -> bool {
        let (Some(secret), Some(sent)) = (self.secret.as_deref(), headers.get(PROXY_SECRET_HEADER))
        else {
            return false;
        };
        let (secret, sent) = (secret.as_bytes(), sent.as_bytes());
        secret.len() == sent.len()
            && secret
                .iter()
                .zip(sent)
                .fold(0u8, |differ, (a, b)| differ | (a ^ b))
                == 0
    }

    /// The client's address, given the connection's `peer` (none when the transport does
    /// not say, as in tests that call the router directly).
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !(self.trusts(peer) || self.vouched(headers)) {
            return Some(peer);
        }
        let mut client = peer;
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            // An entry that is no address: the proxy that wrote it is as far as we can see.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            // The proxy's own address, if something behind it wrote it down, is no client.
            if !(self.trusts(ip) || ip == peer) {
                break;
            }
        }
        Some(client)
    }

    /// The client's address for `request`, its peer read from the connection info.
    pub fn client_of<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        self.client(peer, request.headers())
    }
}

/// The address a limit counts against: an IPv4 address as it is, an IPv6 address as its
/// /64 (one subscriber's network: someone holding a /64 has 2^64 addresses to rotate
/// through).
pub fn limit_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{network}/64")
        }
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    IpAddr::from_str(hop)
        .or_else(|_| SocketAddr::from_str(hop).map(|s| s.ip()))
        .ok()
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies {
            ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
            secret: None,
            only_through_proxy: false,
        }
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().unwrap())
    }

    #[test]
    fn ranges_parse_and_match() {
        let ten: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(ten.contains("10.200.3.4".parse().unwrap()));
        assert!(ten.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        let one: IpRange = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let everyone: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(everyone.contains("203.0.113.9".parse().unwrap()));
        let fd: IpRange = "fd00::/8".parse().unwrap();
        assert!(fd.contains("fd12::1".parse().unwrap()));
        assert!(!fd.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            let error = bad.parse::<IpRange>().unwrap_err();
            assert!(error.contains(bad.trim()), "{error}");
        }
    }

    #[test]
    fn a_peer_that_is_no_trusted_proxy_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["127.0.0.1"]);
        assert_eq!(
            trusted.client(ip("203.0.113.7"), &forwarded(&["198.51.100.1"])),
            ip("203.0.113.7")
        );
        assert_eq!(trusted.client(None, &forwarded(&["198.51.100.1"])), None);
    }

    #[test]
    fn behind_a_trusted_proxy_the_entry_it_appended_counts_not_the_first() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // The client claims to be 1.1.1.1; the proxy appended what it saw.
        let headers = forwarded(&["1.1.1.1, 203.0.113.7"]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &headers), ip("203.0.113.7"));
        // Two trusted hops (a load balancer, then a proxy on the host), over two headers.
        let headers = forwarded(&["6.6.6.6, 203.0.113.8", "10.1.2.3"]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &headers), ip("203.0.113.8"));
        // With ports, and IPv6 in brackets.
        let headers = forwarded(&["[2001:db8::5]:4711"]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &headers), ip("2001:db8::5"));
        // No header: the proxy itself is all we know.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        // Garbage where an address should be stops the walk at the last address seen.
        let headers = forwarded(&["203.0.113.9, not-an-address, 10.0.0.2"]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &headers), ip("10.0.0.2"));
    }

    #[test]
    fn limits_count_an_ipv6_network_as_one_address() {
        let key = |raw: &str| limit_key(raw.parse().unwrap());
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn a_proxy_at_any_address_is_believed_when_it_sends_the_secret() {
        let mut trusted = TrustedProxies {
            ranges: Vec::new(),
            secret: Some("s".repeat(40)),
            only_through_proxy: false,
        };
        let edge = ip("130.176.1.1");
        let mut headers = forwarded(&["1.1.1.1, 203.0.113.7, 130.176.1.1"]);
        assert_eq!(trusted.client(edge, &headers), edge, "no secret: the peer");
        headers.insert(
            PROXY_SECRET_HEADER,
            HeaderValue::from_str(&"s".repeat(39)).unwrap(),
        );
        assert_eq!(
            trusted.client(edge, &headers),
            edge,
            "a wrong secret: the peer"
        );
        headers.insert(
            PROXY_SECRET_HEADER,
            HeaderValue::from_str(&"s".repeat(40)).unwrap(),
        );
        assert_eq!(
            trusted.client(edge, &headers),
            ip("203.0.113.7"),
            "the entry the proxy appended, past its own address"
        );
        let debug = format!("{trusted:?}");
        assert!(
            !debug.contains("sss"),
            "the secret stays out of logs: {debug}"
        );
        assert!(trusted.admits(&HeaderMap::new()), "not required: everyone");
        trusted.only_through_proxy = true;
        assert!(trusted.admits(&headers));
        assert!(!trusted.admits(&forwarded(&["203.0.113.7"])));
    }

    #[test]
    fn with_no_trusted_proxy_forwarded_headers_are_ignored() {
        let trusted = TrustedProxies::default();
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &forwarded(&["203.0.113.7"])),
            ip("127.0.0.1")
        );
    }
}
