//! Properties of the address mapping: injective, class-preserving and
//! prefix-preserving; and rewriting never panics on arbitrary input.

use netsnap_redact::ip::{class, IpClass, IpMapper};
use netsnap_redact::{RedactKey, Redactor};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn mapper(seed: u8) -> IpMapper {
    IpMapper::new(&RedactKey::from_bytes([seed; 32]))
}

fn cpl(a: u128, b: u128, width: u32) -> u32 {
    ((a ^ b).leading_zeros())
        .saturating_sub(128 - width)
        .min(width)
}

/// Addresses from everywhere, biased towards the special ranges.
fn any_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x0a00_0000 | (x & 0x00ff_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xc0a8_0000 | (x & 0xffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xa9fe_0000 | (x & 0xffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x6440_0000 | (x & 0x003f_ffff))),
    ]
}

fn any_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        any::<u128>().prop_map(|x| Ipv6Addr::from((0xfdu128 << 120) | (x >> 8))),
        any::<u128>().prop_map(|x| Ipv6Addr::from((0x2u128 << 125) | (x >> 3))),
        any::<u32>().prop_map(|x| Ipv6Addr::from((0xffffu128 << 32) | u128::from(x))),
        any::<u64>().prop_map(|x| Ipv6Addr::from((0xfe80u128 << 112) | u128::from(x))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mapping_is_injective_and_keeps_classes(
        v4 in prop::collection::btree_set(any_v4(), 1..300),
        v6 in prop::collection::btree_set(any_v6(), 1..150),
        seed in any::<u8>(),
    ) {
        let mut m = mapper(seed);
        let all: BTreeSet<IpAddr> = v4.iter().map(|a| IpAddr::V4(*a))
            .chain(v6.iter().map(|a| IpAddr::V6(*a))).collect();
        let mut seen: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
        for a in &all {
            let b = m.map(*a);
            prop_assert_eq!(class(b), class(*a), "{} -> {}", a, b);
            if let Some(prev) = seen.insert(b, *a) {
                prop_assert!(false, "{} and {} both map to {}", prev, a, b);
            }
            // Stable.
            prop_assert_eq!(m.map(*a), b);
            if class(*a) == IpClass::Unchanged {
                prop_assert_eq!(b, *a);
            }
        }
    }

    #[test]
    fn private_ranges_preserve_prefixes_exactly(a in any::<u32>(), b in any::<u32>(), seed in any::<u8>()) {
        let mut m = mapper(seed);
        for (net, host_bits) in [(0x0a00_0000u32, 24), (0xc0a8_0000, 16), (0xac10_0000, 20)] {
            let mask = (1u32 << host_bits) - 1;
            let (x, y) = (net | (a & mask), net | (b & mask));
            let (mx, my) = (u32::from(m.map_v4(x.into())), u32::from(m.map_v4(y.into())));
            prop_assert_eq!(cpl(x.into(), y.into(), 32), cpl(mx.into(), my.into(), 32));
            prop_assert_eq!(mx & !mask, net, "defining prefix kept");
            prop_assert_eq!(mx & 0xff, x & 0xff, "last octet kept");
        }
    }

    #[test]
    fn ula_preserves_prefixes_exactly(a in any::<u128>(), b in any::<u128>(), seed in any::<u8>()) {
        let mut m = mapper(seed);
        let (x, y) = ((0xfdu128 << 120) | (a >> 8), (0xfdu128 << 120) | (b >> 8));
        let mx = u128::from(m.map_v6(x.into()));
        let my = u128::from(m.map_v6(y.into()));
        prop_assert_eq!(cpl(x, y, 128), cpl(mx, my, 128));
        prop_assert_eq!(mx & 0xffff, x & 0xffff);
    }

    #[test]
    fn raw_permutation_preserves_prefixes(a in any::<u32>(), b in any::<u32>(), seed in any::<u8>()) {
        // Public addresses use this permutation from bit 0 (then cycle-walk).
        let mut m = mapper(seed);
        let pa = m.permute_bits(4, a.into(), 0, 24, 32);
        let pb = m.permute_bits(4, b.into(), 0, 24, 32);
        prop_assert_eq!(cpl(a.into(), b.into(), 32), cpl(pa, pb, 32));
    }

    #[test]
    fn networks_contain_their_members(a in any::<u32>(), len in 8u8..=32, seed in any::<u8>()) {
        let mut m = mapper(seed);
        let x = 0x0a00_0000 | (a & 0x00ff_ffff);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let net = m.map_network(IpAddr::V4(Ipv4Addr::from(x & mask)), len);
        let member = m.map(IpAddr::V4(Ipv4Addr::from(x)));
        let (IpAddr::V4(net), IpAddr::V4(member)) = (net, member) else { unreachable!() };
        prop_assert_eq!(u32::from(member) & mask, u32::from(net));
    }

    #[test]
    fn rewriting_arbitrary_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..400),
                                              text in "[ -~\n]{0,300}") {
        let mut r = Redactor::new(&RedactKey::from_bytes([1; 32]));
        r.add_name("web");
        for path in ["netfilter/iptables-nft-save.txt", "ipvs/ip_vs.txt", "ipvs/ip_vs_conn.txt",
                     "netns/x/links.json", "host/kmsg.txt"] {
            let _ = r.rewrite_entry(path, &data);
            let out = r.rewrite_entry(path, text.as_bytes());
            // Only ASCII is replaced by ASCII: UTF-8 stays UTF-8.
            prop_assert!(String::from_utf8(out).is_ok());
        }
    }
}
