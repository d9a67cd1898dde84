//! The client's address behind reverse proxies. A proxy appends the address it saw to
//! `X-Forwarded-For`; whatever a client sent before that is the client's to invent. So the
//! address is read from the right: skip the entries the trusted proxies added, take the next.
//!
//! `LOQUAT_TRUSTED_PROXIES` says which entries those are: a count of proxies in front of Loquat
//! (`1`: the rightmost entry is the client), or the proxies' addresses and networks
//! (`10.0.0.0/8,192.0.2.7`): starting from the peer, each address that is a trusted proxy hands
//! over to the entry on its left.

use std::net::IpAddr;

/// Which `X-Forwarded-For` entries to believe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// The header is ignored: the peer address is the client.
    #[default]
    None,
    /// This many proxies stand in front of Loquat; the entry they were given is the client.
    Hops(usize),
    /// The proxies' addresses or networks.
    Networks(Vec<Network>),
}

/// An address with a prefix length (`10.0.0.0/8`, `2001:db8::/32`; a bare address is `/32` or
/// `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { address, prefix })
    }

    fn contains(&self, candidate: IpAddr) -> bool {
        match (self.address, canonical(candidate)) {
            (IpAddr::V4(network), IpAddr::V4(candidate)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(network) & mask == u32::from(candidate) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(candidate)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(network) & mask == u128::from(candidate) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// Reads the setting: empty (none), a count, or a comma-separated list of addresses and
    /// networks. `Err` names the item that does not parse.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::None);
        }
        if let Ok(hops) = text.parse::<usize>() {
            return Ok(if hops == 0 { Self::None } else { Self::Hops(hops) });
        }
        let networks = text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Network::parse(item).ok_or_else(|| item.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Networks(networks))
    }

    /// The client's address for a request from `peer` carrying these `X-Forwarded-For` values
    /// (every header, in order). An entry that is not an address ends the walk at the last
    /// good one: garbage never becomes the client's address.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let entries = || forwarded_for.iter().flat_map(|value| value.split(',')).map(str::trim);
        match self {
            Self::None => peer,
            Self::Hops(hops) => {
                let entries: Vec<&str> = entries().collect();
                // Fewer entries than proxies: the leftmost was still added by one of them.
                let index = entries.len().saturating_sub(*hops);
                entries.get(index).and_then(|entry| parse_entry(entry)).unwrap_or(peer)
            }
            Self::Networks(networks) => {
                let trusted = |address: IpAddr| networks.iter().any(|network| network.contains(address));
                let mut client = peer;
                let entries: Vec<&str> = entries().collect();
                for entry in entries.iter().rev() {
                    if !trusted(client) {
                        break;
                    }
                    match parse_entry(entry) {
                        Some(address) => client = address,
                        None => break,
                    }
                }
                client
            }
        }
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`192.0.2.1:4711`, `[2001:db8::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    entry.parse::<std::net::SocketAddr>().ok().map(|socket| canonical(socket.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_setting_parses() {
        assert_eq!(TrustedProxies::parse(""), Ok(TrustedProxies::None));
        assert_eq!(TrustedProxies::parse("0"), Ok(TrustedProxies::None));
        assert_eq!(TrustedProxies::parse(" 2 "), Ok(TrustedProxies::Hops(2)));
        assert!(matches!(TrustedProxies::parse("10.0.0.0/8, ::1"), Ok(TrustedProxies::Networks(n)) if n.len() == 2));
        assert_eq!(TrustedProxies::parse("10.0.0.0/33"), Err("10.0.0.0/33".to_owned()));
        assert_eq!(TrustedProxies::parse("proxy.lan"), Err("proxy.lan".to_owned()));
    }

    #[test]
    fn hops_count_from_the_right() {
        let peer = ip("10.0.0.2");
        let one = TrustedProxies::Hops(1);
        // The client prepended a spoofed entry; the proxy appended what it saw.
        assert_eq!(one.client(peer, &["6.6.6.6, 203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(one.client(peer, &["6.6.6.6", "203.0.113.9"]), ip("203.0.113.9"), "several headers");
        let two = TrustedProxies::Hops(2);
        assert_eq!(two.client(peer, &["6.6.6.6, 203.0.113.9, 10.0.0.1"]), ip("203.0.113.9"));
        assert_eq!(two.client(peer, &["203.0.113.9"]), ip("203.0.113.9"), "fewer entries than proxies");
        assert_eq!(one.client(peer, &[]), peer, "no header");
        assert_eq!(one.client(peer, &["6.6.6.6, garbage"]), peer, "garbage is not an address");
        assert_eq!(one.client(peer, &["203.0.113.9:4711"]), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::None.client(peer, &["6.6.6.6"]), peer);
    }

    #[test]
    fn networks_walk_from_the_peer() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 2001:db8::/32").expect("parses");
        let from_proxy = ip("10.1.2.3");
        assert_eq!(proxies.client(from_proxy, &["6.6.6.6, 203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(proxies.client(from_proxy, &["6.6.6.6, 203.0.113.9, 10.9.9.9"]), ip("203.0.113.9"));
        // A peer that is not a proxy is the client, whatever it claims.
        assert_eq!(proxies.client(ip("198.51.100.4"), &["10.0.0.1"]), ip("198.51.100.4"));
        // All entries trusted: the leftmost is as far as anyone can see.
        assert_eq!(proxies.client(from_proxy, &["10.0.0.5"]), ip("10.0.0.5"));
        assert_eq!(proxies.client(ip("::ffff:10.0.0.1"), &["203.0.113.9"]), ip("203.0.113.9"), "mapped peer");
        assert_eq!(proxies.client(ip("2001:db8::7"), &["[2001:db9::1]:80"]), ip("2001:db9::1"));
    }
}
