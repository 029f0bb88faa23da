//! Redaction of bundles built from real-format sources: nothing original survives,
//! pseudonyms are consistent and keep structure, and the result reads back and
//! parses exactly like the original.

use crate::support;

use netsnap_analyzer::sources::parse_all;
use netsnap_redact::ip::{class, IpClass};
use netsnap_redact::{RedactionMap, Redactor, REDACTED_OPTION};
use netsnap_schema::{Bundle, BundleWriter};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use support::*;

/// Every written form of every address pseudonym.
fn pseudonym_texts(map: &RedactionMap) -> BTreeSet<String> {
    let cidr_addrs = map.cidrs.values().filter_map(|v| v.split('/').next());
    map.ips
        .values()
        .map(String::as_str)
        .chain(cidr_addrs)
        .filter_map(|t| t.parse::<IpAddr>().ok())
        .flat_map(ip_forms)
        .collect()
}

/// (a) grep every entry, path and the manifest for every original.
fn assert_nothing_survives(original: &Bundle, redacted: &Bundle, map: &RedactionMap) {
    let pseudonyms = pseudonym_texts(map);
    let ips: Vec<String> = original_ips(original)
        .into_iter()
        .filter(|ip| class(*ip) != IpClass::Unchanged)
        .flat_map(ip_forms)
        // A prefix-preserving map of a small range can send a value to itself or to
        // another original: that text is then a pseudonym, not a survivor.
        .filter(|t| !pseudonyms.contains(t))
        .collect();
    assert!(ips.len() > 20, "too few addresses found: {ips:?}");
    assert_absent(redacted, "address", &ips);

    let names: Vec<String> = original_names(original).into_iter().collect();
    assert!(names.len() > 8, "too few names found: {names:?}");
    assert_absent(redacted, "name", &names);
    assert_absent(redacted, "uuid", &original_uuids(original));
    let mut macs = original_macs(original);
    // Multicast group MACs derive from public group addresses and are kept.
    macs.retain(|m| {
        let bytes: Vec<u8> = m
            .split(':')
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        !netsnap_redact::mac::is_kept(&bytes)
    });
    assert!(macs.len() >= 3, "{macs:?}");
    assert_absent(redacted, "mac", &macs);
    let hashes = original_hashes(original);
    assert_absent(redacted, "kube-proxy hash", &hashes);
}

#[test]
fn no_original_survives_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    for nft in [Nft::Vmap, Nft::Direct] {
        let original = open(&build_bundle(dir.path(), nft));
        let name = if nft == Nft::Vmap { "ra" } else { "rb" };
        let (redacted, map) = redact_to(&original, &test_key(1), dir.path(), name);
        assert_nothing_survives(&original, &redacted, &map);
        // The names the test looked for are the ones a reader would recognise.
        let names = original_names(&original);
        for n in [
            "ns1", "ns2", "web", "empty", "node-7", "corp", WEB_POD, "partner", "say",
        ] {
            assert!(names.contains(n), "{n} not among {names:?}");
        }
        assert!(redacted.manifest.options[REDACTED_OPTION].contains(&test_key(1).fingerprint()));
    }
}

#[test]
fn no_original_survives_in_the_demo_fixture() {
    let original = open(&fixture("demo"));
    let dir = tempfile::tempdir().unwrap();
    let (redacted, map) = redact_to(&original, &test_key(2), dir.path(), "demo");
    assert_nothing_survives(&original, &redacted, &map);
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mapped(map: &RedactionMap, s: &str) -> IpAddr {
    map.ips
        .get(s)
        .unwrap_or_else(|| panic!("{s} not in map"))
        .parse()
        .unwrap()
}

/// Every pseudonym of `map` appears where its original did, in every file.
fn assert_consistent_in_files(original: &Bundle, redacted: &Bundle, map: &RedactionMap) {
    let red = all_bytes(redacted);
    let find = |needle: &str| {
        red.iter()
            .filter(|(_, b)| find_word(b, needle).is_some())
            .count()
    };
    for (orig, pseudo) in [
        ("10.244.1.5", mapped(map, "10.244.1.5").to_string()),
        ("192.168.49.2", mapped(map, "192.168.49.2").to_string()),
    ] {
        let files_with_original = all_bytes(original)
            .iter()
            .filter(|(_, b)| find_word(b, orig).is_some())
            .count();
        assert!(files_with_original >= 4, "{orig}");
        assert!(find(&pseudo) >= files_with_original, "{orig} -> {pseudo}");
    }
    // Hex form in ip_vs: the same pseudonym as the dotted one.
    let IpAddr::V4(p) = mapped(map, "10.244.1.5") else {
        panic!()
    };
    let hex = format!("{:08X}", u32::from(p));
    let ipvs = redacted.file("ipvs/ip_vs.txt").unwrap();
    assert!(find_word(ipvs, &hex).is_some(), "{hex} not in ip_vs");
    // Names: the same pseudonym in iptables, nft, ipset and resolv.conf.
    let ns1 = &map.names["ns1"];
    for path in [
        "netfilter/iptables-nft-save.txt",
        "netfilter/nft.json",
        "netns/index.json",
    ] {
        assert!(
            find_word(redacted.file(path).unwrap(), ns1).is_some(),
            "{ns1} in {path}"
        );
    }
    let web = &map.names["web"];
    assert!(find_word(redacted.file("netfilter/ipset.txt").unwrap(), web).is_some());
}

#[test]
fn pseudonyms_are_consistent_across_files_and_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&build_bundle(dir.path(), Nft::Vmap));
    let b = open(&build_bundle(dir.path(), Nft::Direct));
    let (ra, map_a) = redact_to(&a, &test_key(1), dir.path(), "ra");
    let (rb, map_b) = redact_to(&b, &test_key(1), dir.path(), "rb");
    assert_consistent_in_files(&a, &ra, &map_a);
    assert_consistent_in_files(&b, &rb, &map_b);

    // One key: one pseudonym per original, whichever bundle it came from.
    for (kind, ma, mb) in [
        ("ips", &map_a.ips, &map_b.ips),
        ("names", &map_a.names, &map_b.names),
        ("macs", &map_a.macs, &map_b.macs),
        ("hashes", &map_a.hashes, &map_b.hashes),
        ("ids", &map_a.ids, &map_b.ids),
    ] {
        let shared: Vec<_> = ma.keys().filter(|k| mb.contains_key(*k)).collect();
        assert!(shared.len() >= 3, "{kind}: {shared:?}");
        for k in shared {
            assert_eq!(ma[k], mb[k], "{kind} {k}");
        }
    }
    assert_eq!(map_a.key_fingerprint, map_b.key_fingerprint);

    // The same bundle redacted twice with the same key gives the same bytes.
    let (ra2, map_a2) = redact_to(&a, &test_key(1), dir.path(), "ra2");
    assert_eq!(map_a, map_a2);
    for p in ra.paths() {
        assert_eq!(ra.file(p), ra2.file(p), "{p}");
    }

    // Another key: other pseudonyms.
    let (_, other) = redact_to(&a, &test_key(9), dir.path(), "ra-other");
    assert_ne!(map_a.key_fingerprint, other.key_fingerprint);
    let differ = |m1: &BTreeMap<String, String>, m2: &BTreeMap<String, String>| {
        m1.iter()
            .filter(|(k, v)| m2.get(*k).is_some_and(|w| w != *v))
            .count()
    };
    let changed_ips = map_a.ips.iter().filter(|(k, v)| k != v).count();
    assert!(differ(&map_a.ips, &other.ips) * 10 >= changed_ips * 8);
    assert_eq!(differ(&map_a.names, &other.names), map_a.names.len());
    assert_eq!(differ(&map_a.macs, &other.macs), map_a.macs.len());
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("{a} is not IPv4"),
    }
}

#[test]
fn subnet_structure_and_classes_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let original = open(&build_bundle(dir.path(), Nft::Vmap));
    let (_, map) = redact_to(&original, &test_key(1), dir.path(), "r");

    // Same /24 stays the same /24, same /16 the same /16; last octet kept.
    let (a, b, c) = (
        v4(mapped(&map, "10.244.1.5")),
        v4(mapped(&map, "10.244.1.6")),
        v4(mapped(&map, "10.244.2.9")),
    );
    assert_eq!(a[..3], b[..3]);
    assert_eq!(a[..2], c[..2]);
    assert_ne!(a[..3], c[..3]);
    assert_eq!((a[3], b[3], c[3]), (5, 6, 9));
    // Services (10.96/12) and pods (10.244/16) stay apart, both inside 10/8.
    let svc = v4(mapped(&map, "10.96.0.10"));
    assert_eq!(svc[0], 10);
    assert_ne!(svc[..2], a[..2]);

    // A pod IP stays inside the mapped pod CIDR.
    let cidr = &map.cidrs["10.244.0.0/16"];
    let (net, len) = cidr.split_once('/').unwrap();
    assert_eq!(len, "16");
    let net: Ipv4Addr = net.parse().unwrap();
    assert_eq!(net.octets()[..2], a[..2]);
    assert_eq!(net.octets()[2..], [0, 0]);
    let pod24 = &map.cidrs["10.244.1.0/24"];
    assert_eq!(pod24, &format!("{}.{}.{}.0/24", a[0], a[1], a[2]));

    // Private stays private (same defining prefix), public stays public.
    let node = v4(mapped(&map, "192.168.49.2"));
    assert_eq!(node[..2], [192, 168]);
    let docker = v4(mapped(&map, "172.17.0.2"));
    assert_eq!(docker[0], 172);
    assert!((16..32).contains(&docker[1]));
    for p in [PUBLIC_IP, PUBLIC_IP2, "2a00:1450:4001:82a::2"] {
        let m = mapped(&map, p);
        assert_ne!(m, ip(p));
        assert_eq!(class(m), IpClass::Public, "{p} -> {m}");
    }
    // Two public addresses of one /24 share the mapped /24 (unless cycle-walked).
    let (p1, p2) = (v4(mapped(&map, PUBLIC_IP)), v4(mapped(&map, PUBLIC_IP2)));
    assert_eq!(p1[..3], p2[..3]);
    let ula = mapped(&map, "fd00:10:244::2");
    assert_eq!(class(ula), IpClass::Special);
    assert!(ula.to_string().starts_with("fd"));
    // Loopback, unspecified, broadcast, multicast, link-local well-knowns unchanged.
    for kept in ["127.0.0.1", "0.0.0.0", "255.255.255.255"] {
        assert_eq!(map.ips.get(kept).map(String::as_str), Some(kept), "{kept}");
    }
    // Gateway .1 stays .1 and network .0 stays .0.
    assert_eq!(v4(mapped(&map, "10.244.1.1"))[3], 1);
    assert_eq!(v4(mapped(&map, "192.168.49.1"))[..3], node[..3]);
}

/// Coverage per (redacted) path: recognised and unrecognised line counts.
fn coverage(b: &Bundle) -> BTreeMap<String, (usize, usize)> {
    parse_all(b)
        .coverage
        .into_iter()
        .map(|c| (c.path, (c.recognised, c.unrecognised.len())))
        .collect()
}

fn assert_same_coverage(original: &Bundle, redacted: &Bundle, r: &mut Redactor) {
    let before = coverage(original);
    let after = coverage(redacted);
    let expected: BTreeMap<String, (usize, usize)> = before
        .into_iter()
        .map(|(p, c)| (r.rewrite_path(&p), c))
        .collect();
    assert_eq!(expected, after);
}

#[test]
fn redacted_bundle_reads_back_and_parses_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    for (i, source) in [
        build_bundle(dir.path(), Nft::Vmap),
        build_bundle(dir.path(), Nft::Direct),
        fixture("demo"),
        fixture("analyzer/faulty"),
        fixture("analyzer/ipvs"),
    ]
    .iter()
    .enumerate()
    {
        let original = open(source);
        let mut r = Redactor::new(&test_key(3));
        r.collect(&original);
        let mut w = BundleWriter::new(dir.path());
        let manifest = r.redact_into(&original, &mut w).unwrap();
        // As an archive this time: the reader verifies every size and sha256.
        let out = dir.path().join(format!("r{i}.netsnap.tar.zst"));
        w.write_archive(manifest, &out).unwrap();
        let redacted = open(&out);
        assert_eq!(redacted.manifest.format_version, 1);
        assert_eq!(
            redacted.manifest.sources.len(),
            original.manifest.sources.len()
        );
        assert_eq!(redacted.paths().count(), original.paths().count());
        assert_same_coverage(&original, &redacted, &mut r);
    }
}
