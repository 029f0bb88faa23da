//! IP address pseudonyms: a keyed, prefix-preserving permutation (Crypto-PAn-like,
//! built on HMAC-SHA256) that keeps what an address *is*.
//!
//! Every address falls in one class (first match in [`V4_CLASSES`] / [`V6_CLASSES`]):
//!
//! - `Keep`: unchanged (0.0.0.0/8, loopback, multicast, 240/4 incl. broadcast, the
//!   documentation and protocol-assignment /24s, a few well-known addresses, ::, ::1,
//!   ff00::/8);
//! - `Prefix(n)`: the first `n` bits (the range's defining prefix: 10/8, 172.16/12,
//!   192.168/16, 100.64/10, 169.254/16, fc00::/8 …) are kept, the bits after them are
//!   permuted up to the last octet (IPv4) or last 16 bits (IPv6), which are kept so that
//!   .0/.1/.255 and ::1-style gateways keep their meaning;
//! - `Embedded`: IPv4-mapped and NAT64 IPv6 addresses map their IPv4 part.
//!
//! Public IPv4 is `Prefix(0)`. Bit `i` of the output is bit `i` of the input XOR a
//! keyed function of the input's first `i` bits, so two addresses sharing a k-bit
//! prefix share exactly a k-bit prefix afterwards (pod CIDR members stay in the
//! mapped pod CIDR, service and node ranges stay apart). When an address lands in
//! another class (a public address permuted into 10/8, say), the permutation is
//! applied again until it is back in its own class (cycle walking), which keeps the
//! mapping a bijection of every class onto itself: public stays public, private stays
//! private, and no two addresses ever share a pseudonym.

use crate::key::{Prf, RedactKey};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the mapping does to the addresses of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Unchanged.
    Keep,
    /// The first `n` bits are kept, the rest permuted (up to the kept last octet / hextet).
    Prefix(u8),
    /// IPv6 whose last 32 bits are an IPv4 address: that address is mapped.
    Embedded,
}

/// The kind of an address, for tests and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpClass {
    /// Kept as is (loopback, unspecified, multicast, documentation …).
    Unchanged,
    /// Private or otherwise special range whose defining prefix is kept.
    Special,
    /// Globally routable unicast.
    Public,
}

/// A class's range; checked when the tables are compiled.
const fn v4net(addr: Ipv4Addr, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(addr, len)
}

const fn v6net(addr: Ipv6Addr, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(addr, len)
}

/// IPv4 classes, first match wins (so single addresses come before their range).
pub const V4_CLASSES: &[(Ipv4Net, Rule)] = &[
    (v4net(Ipv4Addr::new(0, 0, 0, 0), 8), Rule::Keep),
    (v4net(Ipv4Addr::new(127, 0, 0, 0), 8), Rule::Keep),
    (v4net(Ipv4Addr::new(224, 0, 0, 0), 4), Rule::Keep),
    (v4net(Ipv4Addr::new(240, 0, 0, 0), 4), Rule::Keep),
    (v4net(Ipv4Addr::new(192, 0, 0, 0), 24), Rule::Keep),
    (v4net(Ipv4Addr::new(192, 0, 2, 0), 24), Rule::Keep),
    (v4net(Ipv4Addr::new(198, 51, 100, 0), 24), Rule::Keep),
    (v4net(Ipv4Addr::new(203, 0, 113, 0), 24), Rule::Keep),
    // Cloud metadata and NodeLocal DNSCache: well known, not identifying.
    (v4net(Ipv4Addr::new(169, 254, 169, 254), 32), Rule::Keep),
    (v4net(Ipv4Addr::new(169, 254, 20, 10), 32), Rule::Keep),
    // The only public address that is also a netmask (/1).
    (v4net(Ipv4Addr::new(128, 0, 0, 0), 32), Rule::Keep),
    (v4net(Ipv4Addr::new(10, 0, 0, 0), 8), Rule::Prefix(8)),
    (v4net(Ipv4Addr::new(172, 16, 0, 0), 12), Rule::Prefix(12)),
    (v4net(Ipv4Addr::new(192, 168, 0, 0), 16), Rule::Prefix(16)),
    (v4net(Ipv4Addr::new(100, 64, 0, 0), 10), Rule::Prefix(10)),
    (v4net(Ipv4Addr::new(169, 254, 0, 0), 16), Rule::Prefix(16)),
    (v4net(Ipv4Addr::new(198, 18, 0, 0), 15), Rule::Prefix(15)),
    (v4net(Ipv4Addr::new(0, 0, 0, 0), 0), Rule::Prefix(0)),
];

/// IPv6 classes, first match wins.
pub const V6_CLASSES: &[(Ipv6Net, Rule)] = &[
    (v6net(Ipv6Addr::UNSPECIFIED, 128), Rule::Keep),
    (v6net(Ipv6Addr::LOCALHOST, 128), Rule::Keep),
    (
        v6net(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
        Rule::Keep,
    ),
    (
        v6net(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
        Rule::Embedded,
    ),
    (
        v6net(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96),
        Rule::Embedded,
    ),
    (
        v6net(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        Rule::Prefix(64),
    ),
    (
        v6net(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        Rule::Prefix(8),
    ),
    (
        v6net(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
        Rule::Prefix(32),
    ),
    (
        v6net(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
        Rule::Prefix(32),
    ),
    (
        v6net(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
        Rule::Prefix(16),
    ),
    (
        v6net(Ipv6Addr::new(0x0100, 0, 0, 0, 0, 0, 0, 0), 64),
        Rule::Prefix(64),
    ),
    (
        v6net(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3),
        Rule::Prefix(3),
    ),
    (v6net(Ipv6Addr::UNSPECIFIED, 0), Rule::Prefix(8)),
];

/// Bits that are permuted end here: the last octet / last 16 bits are kept.
const V4_PERMUTED_END: u8 = 24;
const V6_PERMUTED_END: u8 = 112;

/// Cycle walking leaves a class only with negligible probability per step; this
/// bound is never reached in practice (for IPv4 the cycle is at most 2^24 long).
const V6_MAX_WALK: usize = 1 << 16;

/// Flip-bit cache entries before the cache is dropped (bounds memory on huge tables).
const FLIP_CACHE_MAX: usize = 1 << 20;

fn v4_class(a: u32) -> usize {
    let a = Ipv4Addr::from(a);
    V4_CLASSES
        .iter()
        .position(|(net, _)| net.contains(&a))
        .unwrap_or(V4_CLASSES.len() - 1)
}

fn v6_class(a: u128) -> usize {
    let a = Ipv6Addr::from(a);
    V6_CLASSES
        .iter()
        .position(|(net, _)| net.contains(&a))
        .unwrap_or(V6_CLASSES.len() - 1)
}

/// `ip/len` names a network: its host bits are zero (`10.0.0.0/8`, not `10.0.0.1/8`).
/// A prefix longer than the address has no host bits.
pub fn is_network_address(ip: IpAddr, len: u8) -> bool {
    IpNet::new(ip, len).map_or(true, |n| n.network() == ip)
}

/// The class of an address.
pub fn class(ip: IpAddr) -> IpClass {
    match ip {
        IpAddr::V4(a) => match V4_CLASSES[v4_class(u32::from(a))].1 {
            Rule::Keep => IpClass::Unchanged,
            Rule::Prefix(0) => IpClass::Public,
            _ => IpClass::Special,
        },
        IpAddr::V6(a) => {
            let i = v6_class(u128::from(a));
            match V6_CLASSES[i].1 {
                Rule::Keep => IpClass::Unchanged,
                Rule::Embedded => match class(IpAddr::V4(v4_tail(a))) {
                    IpClass::Public => IpClass::Public,
                    IpClass::Unchanged => IpClass::Unchanged,
                    IpClass::Special => IpClass::Special,
                },
                // 2000::/3 is global unicast.
                Rule::Prefix(3) => IpClass::Public,
                Rule::Prefix(_) => IpClass::Special,
            }
        }
    }
}

fn v4_tail(a: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(a) & 0xffff_ffff) as u32)
}

/// Consistent address pseudonyms under one key, with a cache of what was mapped.
pub struct IpMapper {
    prf: Prf,
    flips: HashMap<(u8, u8, u128), bool>,
    v4: HashMap<Ipv4Addr, Ipv4Addr>,
    v6: HashMap<Ipv6Addr, Ipv6Addr>,
}

impl IpMapper {
    pub fn new(key: &RedactKey) -> IpMapper {
        IpMapper {
            prf: key.prf("ip"),
            flips: HashMap::new(),
            v4: HashMap::new(),
            v6: HashMap::new(),
        }
    }

    pub fn map(&mut self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => IpAddr::V4(self.map_v4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.map_v6(a)),
        }
    }

    /// The pseudonym of network `ip/len`: the mapped address with host bits cleared,
    /// which is the common prefix of every mapped member of the network.
    pub fn map_network(&mut self, ip: IpAddr, len: u8) -> IpAddr {
        let mapped = self.map(ip);
        let len = len.min(IpNet::from(mapped).max_prefix_len());
        IpNet::new(mapped, len).map_or(mapped, |n| n.network())
    }

    pub fn map_v4(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        if let Some(m) = self.v4.get(&a) {
            return *m;
        }
        let x = u32::from(a);
        let class = v4_class(x);
        let out = match V4_CLASSES[class].1 {
            Rule::Keep | Rule::Embedded => x,
            Rule::Prefix(keep) => {
                let mut y = x;
                // Terminates: the permutation's cycle through `x` returns to `x`'s class.
                loop {
                    y = self.permute(4, u128::from(y), keep, V4_PERMUTED_END, 32) as u32;
                    if v4_class(y) == class {
                        break y;
                    }
                }
            }
        };
        let out = Ipv4Addr::from(out);
        self.v4.insert(a, out);
        out
    }

    pub fn map_v6(&mut self, a: Ipv6Addr) -> Ipv6Addr {
        if let Some(m) = self.v6.get(&a) {
            return *m;
        }
        let x = u128::from(a);
        let class = v6_class(x);
        let out = match V6_CLASSES[class].1 {
            Rule::Keep => x,
            Rule::Embedded => {
                let tail = self.map_v4(v4_tail(a));
                (x & !0xffff_ffff) | u128::from(u32::from(tail))
            }
            Rule::Prefix(keep) => {
                let mut y = x;
                let mut walked = 0;
                loop {
                    y = self.permute(6, y, keep, V6_PERMUTED_END, 128);
                    walked += 1;
                    // Past the bound (never seen) the last step is used as is.
                    if v6_class(y) == class || walked >= V6_MAX_WALK {
                        break y;
                    }
                }
            }
        };
        let out = Ipv6Addr::from(out);
        self.v6.insert(a, out);
        out
    }

    /// The raw prefix-preserving permutation of bits `keep..end` of a `width`-bit
    /// value (no classes, no cycle walking). Public for property tests.
    pub fn permute_bits(&mut self, family: u8, x: u128, keep: u8, end: u8, width: u32) -> u128 {
        self.permute(family, x, keep, end, width)
    }

    fn permute(&mut self, family: u8, x: u128, keep: u8, end: u8, width: u32) -> u128 {
        let mut out = x;
        for i in keep..end {
            let prefix = if i == 0 {
                0
            } else {
                x >> (width - u32::from(i))
            };
            if self.flip(family, i, prefix) {
                out ^= 1u128 << (width - 1 - u32::from(i));
            }
        }
        out
    }

    /// The keyed bit for depth `i` under `prefix` (the input's first `i` bits).
    fn flip(&mut self, family: u8, i: u8, prefix: u128) -> bool {
        if let Some(b) = self.flips.get(&(family, i, prefix)) {
            return *b;
        }
        let d = self
            .prf
            .digest(&[&[family, i], prefix.to_be_bytes().as_slice()]);
        let b = d[0] & 1 == 1;
        if self.flips.len() >= FLIP_CACHE_MAX {
            self.flips.clear();
        }
        self.flips.insert((family, i, prefix), b);
        b
    }

    /// Every address mapped so far, in no particular order.
    pub fn mapped(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        self.v4
            .iter()
            .map(|(a, b)| (IpAddr::V4(*a), IpAddr::V4(*b)))
            .chain(
                self.v6
                    .iter()
                    .map(|(a, b)| (IpAddr::V6(*a), IpAddr::V6(*b))),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_addresses_have_no_host_bits() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(is_network_address(ip("10.0.0.0"), 8));
        assert!(!is_network_address(ip("10.0.0.1"), 8));
        assert!(is_network_address(ip("10.0.0.1"), 32));
        assert!(is_network_address(ip("fd00::"), 64));
        assert!(!is_network_address(ip("fd00::1"), 64));
        assert!(is_network_address(ip("0.0.0.0"), 0));
    }

    fn mapper() -> IpMapper {
        IpMapper::new(&RedactKey::from_bytes([3u8; 32]))
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn classes_of_well_known_addresses() {
        assert_eq!(class("127.0.0.53".parse().unwrap()), IpClass::Unchanged);
        assert_eq!(class("10.244.1.5".parse().unwrap()), IpClass::Special);
        assert_eq!(class("8.8.8.8".parse().unwrap()), IpClass::Public);
        assert_eq!(class("fd00:10:96::a".parse().unwrap()), IpClass::Special);
        assert_eq!(class("2a00:1450::1".parse().unwrap()), IpClass::Public);
        assert_eq!(class("::ffff:8.8.8.8".parse().unwrap()), IpClass::Public);
        assert_eq!(class("ff02::1".parse().unwrap()), IpClass::Unchanged);
    }

    #[test]
    fn keeps_prefix_and_last_octet() {
        let mut m = mapper();
        let a = m.map_v4(v4("10.244.1.5"));
        assert_eq!(a.octets()[0], 10);
        assert_eq!(a.octets()[3], 5);
        let b = m.map_v4(v4("10.244.1.6"));
        assert_eq!(a.octets()[..3], b.octets()[..3]);
        let p = m.map_v4(v4("192.168.49.2"));
        assert_eq!(p.octets()[..2], [192, 168]);
        assert_eq!(m.map_v4(v4("127.0.0.1")), v4("127.0.0.1"));
        assert_eq!(m.map_v4(v4("255.255.255.255")), v4("255.255.255.255"));
        assert_eq!(m.map_v4(v4("169.254.169.254")), v4("169.254.169.254"));
    }

    #[test]
    fn public_stays_public() {
        let mut m = mapper();
        for i in 0..2000u32 {
            let a = Ipv4Addr::from(0x0800_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761)));
            if class(IpAddr::V4(a)) != IpClass::Public {
                continue;
            }
            let b = m.map_v4(a);
            assert_eq!(class(IpAddr::V4(b)), IpClass::Public, "{a} -> {b}");
        }
    }

    #[test]
    fn networks_are_canonical() {
        let mut m = mapper();
        let net = m.map_network("10.244.0.0".parse().unwrap(), 16);
        let member = m.map("10.244.77.9".parse().unwrap());
        let IpAddr::V4(n) = net else { panic!() };
        let IpAddr::V4(x) = member else { panic!() };
        assert_eq!(n.octets()[2..], [0, 0]);
        assert_eq!(n.octets()[..2], x.octets()[..2]);
    }
}
