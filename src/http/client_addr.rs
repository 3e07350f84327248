//! Which address a request comes from, for the rate limiter. Pure.
//!
//! The TCP peer is the client unless it is a trusted proxy
//! (`PARPARCHIK_TRUSTED_PROXIES`, a CIDR list). Then `X-Forwarded-For` is read from the
//! right: each hop appends the address it received from, so the right-most address that
//! is not itself a trusted proxy is the first one no trusted party can have forged.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `address/prefix` network.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask_v4(a: Ipv4Addr, prefix: u8) -> u32 {
    let bits = u32::from(a);
    if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask_v6(a: Ipv6Addr, prefix: u8) -> u128 {
    let bits = u128::from(a);
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports) is
/// the IPv4 address it carries.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a single host).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?} has a prefix length outside 0..={max}"))?,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask_v4(n, self.prefix) == mask_v4(a, self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask_v6(n, self.prefix) == mask_v6(a, self.prefix),
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty = believe none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    /// A comma-separated list of CIDR networks or addresses.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

/// One `X-Forwarded-For` element: an address, possibly with a port (`1.2.3.4:80`,
/// `[::1]:80`), as some proxies write it.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    text.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// The client's address: `peer` itself unless `peer` is a trusted proxy; then the
/// right-most `X-Forwarded-For` hop that is not a trusted proxy. `forwarded` are the
/// values of every `X-Forwarded-For` header, in order. A hop that is not an address ends
/// the walk at the last trusted hop: what lies left of it cannot be vouched for.
pub(crate) fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut client = canonical(peer);
    if trusted.0.is_empty() || !trusted.contains(client) {
        return client;
    }
    for value in forwarded.rev() {
        let Ok(value) = std::str::from_utf8(value) else {
            return client;
        };
        for hop in value.rsplit(',') {
            if hop.trim().is_empty() {
                continue;
            }
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !trusted.contains(ip) {
                return client;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(s: &str) -> TrustedProxies {
        TrustedProxies::parse(s).unwrap()
    }

    fn client(peer: &str, xff: &[&str], t: &TrustedProxies) -> IpAddr {
        client_address(ip(peer), xff.iter().map(|v| v.as_bytes()), t)
    }

    #[test]
    fn cidr_membership_v4_and_v6() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(
            c.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(!c.contains(ip("::1")));
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("10.1.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        let host = Cidr::parse(" 192.168.0.7 ").unwrap();
        assert!(host.contains(ip("192.168.0.7")) && !host.contains(ip("192.168.0.8")));
        assert!(Cidr::parse("10.0.0.1/32").unwrap().contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::1/128").unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_lists_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "example.com",
            "10.0.0.0/-1",
            "10.0.0.0/",
            "1.2.3.4, nope",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TrustedProxies::parse(" , ").unwrap(),
            TrustedProxies::default()
        );
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, fd00::/8,127.0.0.1")
                .unwrap()
                .0
                .len(),
            3
        );
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let t = trusted("10.0.0.0/8");
        // An untrusted peer's header is ignored: it could say anything.
        assert_eq!(client("203.0.113.9", &["1.1.1.1"], &t), ip("203.0.113.9"));
        // No list: never believed.
        assert_eq!(
            client("10.0.0.1", &["1.1.1.1"], &TrustedProxies::default()),
            ip("10.0.0.1")
        );
        // A trusted peer: the right-most hop that is not trusted.
        assert_eq!(
            client("10.0.0.1", &["6.6.6.6, 1.1.1.1, 10.0.0.2"], &t),
            ip("1.1.1.1")
        );
        // Several headers are one list, in order.
        assert_eq!(
            client("10.0.0.1", &["6.6.6.6", "1.1.1.1", "10.0.0.9"], &t),
            ip("1.1.1.1")
        );
        // Ports and brackets, IPv6, mapped addresses.
        assert_eq!(client("10.0.0.1", &["1.1.1.1:4711"], &t), ip("1.1.1.1"));
        assert_eq!(
            client("10.0.0.1", &["[2001:db8::1]:80"], &t),
            ip("2001:db8::1")
        );
        assert_eq!(
            client("::ffff:10.0.0.1", &["2001:db8::2"], &t),
            ip("2001:db8::2")
        );
        // No header, or nothing but trusted hops: the left-most known address.
        assert_eq!(client("10.0.0.1", &[], &t), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1", &["10.0.0.3, 10.0.0.2"], &t),
            ip("10.0.0.3")
        );
        // Garbage stops the walk at the last address a trusted hop vouched for.
        assert_eq!(client("10.0.0.1", &["1.1.1.1, junk"], &t), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1", &["junk, 1.1.1.1, 10.0.0.2"], &t),
            ip("1.1.1.1")
        );
        assert_eq!(client("10.0.0.1", &[" , ,1.1.1.1, "], &t), ip("1.1.1.1"));
    }
}
