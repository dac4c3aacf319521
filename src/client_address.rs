//! Who a request comes from, for the per-client rules (login blocking, the share of password
//! checks, connections per client; `docs/security.md`): the peer's address, or behind proxies
//! the operator trusts, the address they forwarded. And the key a client counts under: an
//! IPv6 client by its /64, since one host is given a whole /64 and would otherwise have
//! endless fresh counters.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

/// The header in which trusted proxies name the client (`--forwarded-header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` (the `for` parameter of each element).
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// A network given as `--trusted-proxy`: CIDR (`10.0.0.0/8`, `fd00::/8`) or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(IpNet);

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.parse::<IpNet>() {
            Ok(net) => Ok(Self(net.trunc())),
            Err(_) => text
                .parse::<IpAddr>()
                .map(|ip| Self(IpNet::from(ip.to_canonical())))
                .map_err(|_| format!("{text:?} is neither a CIDR network nor an IP address")),
        }
    }
}

/// The proxies whose forwarding header is believed, and which header that is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<ProxyNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<ProxyNet>, header: ForwardedHeader) -> Self {
        Self { nets, header }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|ProxyNet(net)| net.contains(&ip))
    }

    /// The header to read.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// The client of a request from `peer` that carried `values` of the forwarding header
    /// (each occurrence, in the order received). From a peer that is not a trusted proxy:
    /// the peer. Otherwise the right-most entry that is not a trusted proxy: entries further
    /// left were written by whoever sent the request to that hop, and can be anything. When
    /// every entry is a trusted proxy, the left-most; an entry that is no address ends the
    /// walk at the trusted hop that passed it on.
    pub fn client<'a>(&self, peer: IpAddr, values: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let entries: Vec<&str> = values.into_iter().flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for entry in entries.into_iter().rev() {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => parse_node(entry),
                ForwardedHeader::Forwarded => forwarded_for(entry).and_then(parse_node),
            };
            let Some(ip) = parsed else { return client };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// The `for` parameter of one element of a `Forwarded` header (RFC 7239 §4).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| value.trim())
    })
}

/// An address as a forwarding header writes it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally quoted. `unknown` and obfuscated names are no address.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let host = match node.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => node.rsplit_once(':').map_or(node, |(host, _port)| host),
    };
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The key a client address counts under: an IPv4 address as it is, an IPv6 address by the
/// /64 network it is in. Its `Display` form is what counters and logs show
/// (`192.0.2.1`, `2001:db8:1:2::/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(network)))
            }
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("a network")).collect(), header)
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("198.51.100.7"), ["203.0.113.9"]), ip("198.51.100.7"));
        let some = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(some.client(ip("198.51.100.7"), ["203.0.113.9"]), ip("198.51.100.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1"], ForwardedHeader::XForwardedFor);
        let peer = ip("10.1.2.3");
        // A client-written entry on the left is skipped: only what the proxies appended counts.
        let header = ["6.6.6.6, 203.0.113.9, 192.168.1.1"];
        assert_eq!(trusted.client(peer, header), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        assert_eq!(trusted.client(peer, ["6.6.6.6", "203.0.113.9", "10.9.9.9"]), ip("203.0.113.9"));
        // Every entry trusted: the left-most.
        assert_eq!(trusted.client(peer, ["10.0.0.5, 10.0.0.6"]), ip("10.0.0.5"));
        // No header: the proxy itself.
        assert_eq!(trusted.client(peer, []), peer);
        // Garbage where the real client should be: the hop that passed it on.
        assert_eq!(trusted.client(peer, ["203.0.113.9, garbage, 10.0.0.6"]), ip("10.0.0.6"));
        // Ports, brackets, IPv4-mapped IPv6.
        assert_eq!(trusted.client(peer, ["203.0.113.9:4711"]), ip("203.0.113.9"));
        assert_eq!(trusted.client(peer, ["[2001:db8::1]:4711"]), ip("2001:db8::1"));
        assert_eq!(
            trusted.client(ip("::ffff:10.0.0.1"), ["::ffff:203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_by_its_for_parameters() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let header = [r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, For=10.0.0.2"#];
        assert_eq!(trusted.client(ip("10.0.0.1"), header), ip("2001:db8:cafe::17"));
        assert_eq!(trusted.client(ip("10.0.0.1"), ["for=unknown, for=10.0.0.2"]), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_ipv4_alone() {
        let a = ClientKey::of(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let other = ClientKey::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(ClientKey::of(ip("::ffff:192.0.2.1")).to_string(), "192.0.2.1");
        assert_ne!(ClientKey::of(ip("192.0.2.1")), ClientKey::of(ip("192.0.2.2")));
    }

    #[test]
    fn proxy_networks_parse_from_cidr_or_one_address() {
        assert!("10.0.0.0/8".parse::<ProxyNet>().is_ok());
        assert!("fd00::/8".parse::<ProxyNet>().is_ok());
        let one: ProxyNet = "192.0.2.1".parse().expect("an address");
        let trusted = TrustedProxies::new(vec![one], ForwardedHeader::XForwardedFor);
        assert!(trusted.contains(ip("192.0.2.1")) && !trusted.contains(ip("192.0.2.2")));
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("proxy.example".parse::<ProxyNet>().is_err());
    }
}
