//! Which addresses a user-supplied provider URL may not reach: every range that is not the
//! public internet (loopback, private, link-local, CGNAT, multicast, documentation, reserved…),
//! the cloud metadata services, and the IPv6 forms that embed such an IPv4 address
//! (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 `64:ff9b::/96`, 6to4, Teredo).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of a forbidden address, for the log and the user's error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenRange {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8`.
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `100.64/10`.
    SharedAddressSpace,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`.
    Benchmarking,
    /// `240/4`, `192.0.0/24`, site-local `fec0::/10`, discard `100::/64`, local NAT64
    /// `64:ff9b:1::/48`.
    Reserved,
    /// A cloud provider's instance metadata or platform service.
    Metadata,
}

impl ForbiddenRange {
    pub fn describe(self) -> &'static str {
        match self {
            ForbiddenRange::Unspecified => "unspecified address",
            ForbiddenRange::ThisNetwork => "\"this network\" range",
            ForbiddenRange::Loopback => "loopback",
            ForbiddenRange::Private => "private network",
            ForbiddenRange::LinkLocal => "link-local",
            ForbiddenRange::SharedAddressSpace => "carrier-grade NAT range",
            ForbiddenRange::Multicast => "multicast",
            ForbiddenRange::Broadcast => "broadcast",
            ForbiddenRange::Documentation => "documentation range",
            ForbiddenRange::Benchmarking => "benchmarking range",
            ForbiddenRange::Reserved => "reserved range",
            ForbiddenRange::Metadata => "cloud metadata service",
        }
    }
}

/// Cloud metadata and platform services: AWS, GCP, Azure, Oracle and others at
/// `169.254.169.254`; AWS ECS task metadata `169.254.170.2`; Alibaba Cloud `100.100.100.200`;
/// Azure's WireServer `168.63.129.16` (a public address, reachable only from inside Azure);
/// Oracle Cloud's older `192.0.0.192`.
const METADATA_V4: [Ipv4Addr; 5] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
    Ipv4Addr::new(192, 0, 0, 192),
];

/// AWS's IPv6 instance metadata endpoint.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// Whether a guarded request may not connect to `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    forbidden_range(ip).is_some()
}

/// The forbidden range `ip` is in, if any.
pub fn forbidden_range(ip: IpAddr) -> Option<ForbiddenRange> {
    match ip {
        IpAddr::V4(ip) => v4_range(ip),
        IpAddr::V6(ip) => v6_range(ip),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<ForbiddenRange> {
    let [a, b, c, _] = ip.octets();
    let range = if METADATA_V4.contains(&ip) {
        ForbiddenRange::Metadata
    } else if ip.is_unspecified() {
        ForbiddenRange::Unspecified
    } else if a == 0 {
        ForbiddenRange::ThisNetwork
    } else if ip.is_loopback() {
        ForbiddenRange::Loopback
    } else if ip.is_private() {
        ForbiddenRange::Private
    } else if ip.is_link_local() {
        ForbiddenRange::LinkLocal
    } else if a == 100 && (b & 0b1100_0000) == 64 {
        ForbiddenRange::SharedAddressSpace
    } else if ip.is_broadcast() {
        ForbiddenRange::Broadcast
    } else if ip.is_multicast() {
        ForbiddenRange::Multicast
    } else if ip.is_documentation() {
        ForbiddenRange::Documentation
    } else if a == 198 && (b & 0xfe) == 18 {
        ForbiddenRange::Benchmarking
    } else if a >= 240 || (a == 192 && b == 0 && c == 0) {
        ForbiddenRange::Reserved
    } else {
        return None;
    };
    Some(range)
}

fn v6_range(ip: Ipv6Addr) -> Option<ForbiddenRange> {
    if ip == METADATA_V6 {
        return Some(ForbiddenRange::Metadata);
    }
    if ip.is_unspecified() {
        return Some(ForbiddenRange::Unspecified);
    }
    if ip.is_loopback() {
        return Some(ForbiddenRange::Loopback);
    }
    if let Some(embedded) = embedded_v4(ip) {
        return v4_range(embedded);
    }
    let s = ip.segments();
    let range = if ip.is_multicast() {
        ForbiddenRange::Multicast
    } else if ip.is_unique_local() {
        ForbiddenRange::Private
    } else if ip.is_unicast_link_local() {
        ForbiddenRange::LinkLocal
    } else if (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
    {
        ForbiddenRange::Reserved
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        ForbiddenRange::Documentation
    } else {
        return None;
    };
    Some(range)
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = Ipv4Addr::from_bits(ip.to_bits() as u32);
    match s {
        // IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible `::a.b.c.d` (deprecated).
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] => Some(last),
        // IPv4-translated `::ffff:0:a.b.c.d` (RFC 2765).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(last),
        // NAT64's well-known prefix `64:ff9b::/96`.
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        // 6to4 `2002:AABB:CCDD::/48`.
        [0x2002, high, low, ..] => Some(Ipv4Addr::from_bits((u32::from(high) << 16) | u32::from(low))),
        // Teredo `2001:0::/32`: the client's address, inverted, in the last 32 bits.
        [0x2001, 0, ..] => Some(Ipv4Addr::from_bits(!last.to_bits())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Option<ForbiddenRange> {
        forbidden_range(text.parse().expect("a valid address"))
    }

    #[test]
    fn every_forbidden_class_is_refused_in_v4_and_v6() {
        use ForbiddenRange::*;
        let cases: &[(&str, ForbiddenRange)] = &[
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("0.255.255.255", ThisNetwork),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("10.0.0.5", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fc00::1", Private),
            ("fd12:3456:789a::1", Private),
            ("169.254.0.1", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("240.0.0.1", Reserved),
            ("254.1.2.3", Reserved),
            ("192.0.0.8", Reserved),
            ("fec0::1", Reserved),
            ("100::1", Reserved),
            ("64:ff9b:1::1", Reserved),
        ];
        for (address, expected) in cases {
            assert_eq!(range(address), Some(*expected), "{address}");
        }
    }

    #[test]
    fn each_metadata_address_is_refused_as_metadata() {
        for address in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "168.63.129.16",
            "192.0.0.192",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:100.100.100.200",
        ] {
            assert_eq!(range(address), Some(ForbiddenRange::Metadata), "{address}");
        }
    }

    #[test]
    fn v6_forms_embedding_a_forbidden_v4_are_refused() {
        use ForbiddenRange::*;
        let cases: &[(&str, ForbiddenRange)] = &[
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:192.168.0.1", Private),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("::0.0.0.2", ThisNetwork),
            ("::ffff:0:127.0.0.1", Loopback),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("64:ff9b::10.0.0.1", Private),
            ("2002:7f00:0001::1", Loopback),
            ("2002:a9fe:a9fe::", Metadata),
            ("2002:c0a8:0101::1", Private),
            // Teredo: the client 127.0.0.1 inverted is 128.255.255.254.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Loopback),
        ];
        for (address, expected) in cases {
            assert_eq!(range(address), Some(*expected), "{address}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "104.18.32.7",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.255.255",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(range(address), None, "{address}");
            assert!(!is_forbidden(address.parse().expect("a valid address")), "{address}");
        }
    }
}
