//! Test bundles in real formats: the analyzer's captured parser inputs (iptables-save
//! of both backends, nft JSON of kube-proxy, ip_vs hex, conntrack, resolv.conf, ipset,
//! kmsg) plus netlink JSON and a netns index with pod identities, written with the
//! schema's BundleWriter exactly as the collector would.

#![allow(dead_code)]

use netsnap_redact::{redact, RedactKey, RedactionMap};
use netsnap_schema::model::*;
use netsnap_schema::Bundle;
use netsnap_schema::{layout, BundleWriter, Manifest, ReadLimits, SourceRecord, SourceStatus};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const NODE_HOSTNAME: &str = "node-7.corp.example";
pub const WEB_UID: &str = "5f3c8a21-9b7e-4d2a-8c61-0e4f2a9b7c13";
pub const DNS_UID: &str = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";
pub const BOOT_ID: &str = "838350a9-e83c-4a98-bc11-fa85b1dcefde";
pub const WEB_POD: &str = "web-5d9c7-x2b4k";
pub const LOCAL_POD: &str = "webshop-local-7f9b";
pub const NODE_MAC: &str = "52:54:00:ab:cd:ef";
pub const POD_MAC: &str = "5e:4a:3b:2e:13:a3";
pub const VETH_MAC: &str = "ae:12:34:56:78:9a";
pub const GW_MAC: &str = "00:1b:21:3c:4d:5e";
pub const PUBLIC_IP: &str = "34.117.59.81";
pub const PUBLIC_IP2: &str = "34.117.59.200";

pub fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../analyzer/tests/integration/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn rec(path: &str) -> SourceRecord {
    let mut r = SourceRecord::new(path, SourceStatus::Ok);
    r.path = Some(path.into());
    r
}

fn netns_rec(id: &str, file: layout::NetnsFile) -> SourceRecord {
    let mut r = SourceRecord::new(file.source_name(), SourceStatus::Ok).in_netns(id);
    r.path = Some(layout::netns_path(id, file));
    r
}

fn link(ifindex: u32, name: &str, kind: Option<&str>, mac: &str) -> Link {
    Link {
        kind: kind.map(Into::into),
        ..Link::new(ifindex, name, 1500)
            .with_state(LinkState::Up)
            .with_flags(&["UP", "BROADCAST", "LOWER_UP"])
            .with_mac(mac)
    }
}

fn addr(ifindex: u32, family: &str, address: &str, prefix_len: u8) -> Addr {
    Addr {
        family: family.into(),
        ..Addr::new(ifindex, address, prefix_len)
    }
}

fn route(dst: &str, gateway: Option<&str>, oif: u32) -> Route {
    Route {
        gateway: gateway.map(Into::into),
        ..Route::new(dst).dev(oif)
    }
}

fn pod_entry(id: &str, inode: u64, nsid: i32, ns: &str, name: &str, uid: &str) -> NetnsEntry {
    NetnsEntry {
        id: id.into(),
        inode,
        dev: 4,
        is_root: false,
        found_by: vec![
            Discovery::RunNetns {
                path: format!("/run/netns/{id}"),
            },
            Discovery::Proc { pid: 4242 },
        ],
        nsid: Some(nsid),
        pids: vec![4242],
        hostname: Some(name.into()),
        pod: Some(PodIdentity {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            source: PodIdentitySource::CgroupAndPodLogs,
            tried: vec![PodIdentitySource::CgroupAndPodLogs],
        }),
    }
}

/// Which nft ruleset a test bundle carries (kube-proxy's two nftables forms).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nft {
    Vmap,
    Direct,
}

/// Writes a bundle directory at `dir` and returns its path.
pub fn build_bundle(dir: &Path, nft: Nft) -> PathBuf {
    let out = dir.join(match nft {
        Nft::Vmap => "a",
        Nft::Direct => "b",
    });
    let (w, manifest) = build_writer(dir, nft);
    w.write_dir(manifest, &out).unwrap();
    out
}

/// The sources of a test bundle in a writer, as the collector holds them before
/// writing, and the manifest to write them with.
pub fn build_writer(dir: &Path, nft: Nft) -> (BundleWriter, Manifest) {
    let mut w = BundleWriter::new(dir);
    let mut manifest = Manifest::new(
        "0.0.0-test",
        NODE_HOSTNAME,
        "6.18.0",
        "2026-11-21T00:00:00Z",
        1_795_219_200,
    );
    manifest
        .options
        .insert("node_netns".into(), "/run/netns/cni-podnet".into());

    let facts = HostFacts {
        hostname: NODE_HOSTNAME.into(),
        kernel_release: "6.18.0".into(),
        kernel_version: "#1 SMP PREEMPT_DYNAMIC".into(),
        machine: "x86_64".into(),
        boot_id: Some(BOOT_ID.into()),
        cpus: 2,
        memory_bytes: 1 << 33,
        uptime_secs: 1000,
        collected_as_root: true,
        kube_proxy: KubeProxyHints {
            kube_ipvs0: false,
            ip_vs: true,
            legacy_tables: vec!["filter".into(), "nat".into()],
            legacy6_tables: vec![],
        },
    };
    w.add_json(rec(layout::HOST_FACTS), &facts).unwrap();
    let mut sysctl = BTreeMap::new();
    sysctl.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
    sysctl.insert("net.ipv4.conf.eth0.rp_filter".to_string(), "0".to_string());
    sysctl.insert(
        "net.ipv4.conf.vethweb01.rp_filter".to_string(),
        "2".to_string(),
    );
    w.add_json(rec(layout::HOST_SYSCTL), &sysctl).unwrap();
    w.add_bytes(rec(layout::HOST_RESOLV_CONF), &data("resolv-node.conf"))
        .unwrap();
    let mut kmsg = data("kmsg.txt");
    kmsg.extend_from_slice(
        format!(
            "4,1200,5300000000,-;IN=eth0 OUT= MAC=52:54:00:ab:cd:ef:{GW_MAC}:08:00 SRC={PUBLIC_IP} DST=192.168.49.2 LEN=60\n"
        )
        .as_bytes(),
    );
    w.add_bytes(rec(layout::HOST_KMSG), &kmsg).unwrap();

    let index = NetnsIndex {
        netns: vec![
            NetnsEntry {
                id: "root".into(),
                inode: 4_026_531_840,
                dev: 4,
                is_root: true,
                found_by: vec![Discovery::Node {
                    path: "/proc/1/ns/net".into(),
                }],
                nsid: None,
                pids: vec![1],
                hostname: Some(NODE_HOSTNAME.into()),
                pod: None,
            },
            pod_entry("cni-podnet", 4_026_532_245, 1, "ns1", WEB_POD, WEB_UID),
            pod_entry(
                "ino-4026532300",
                4_026_532_300,
                2,
                "kube-system",
                "coredns-5d78c9869d-abcde",
                DNS_UID,
            ),
            {
                let mut e = pod_entry("shopnet", 4_026_532_301, 3, "ns2", LOCAL_POD, WEB_UID);
                e.pod = e.pod.map(|mut p| {
                    p.uid = Some("0f1e2d3c-4b5a-4968-8776-655443322110".into());
                    p
                });
                e.found_by.push(Discovery::Runtime {
                    path: format!(
                        "/var/log/pods/ns2_{LOCAL_POD}_0f1e2d3c-4b5a-4968-8776-655443322110"
                    ),
                });
                e
            },
        ],
    };
    w.add_json(rec(layout::NETNS_INDEX), &index).unwrap();

    // Node netns.
    use layout::NetnsFile::*;
    let mut bridge = link(3, "cni0", Some("bridge"), "0a:58:0a:f4:01:01");
    bridge.flags.push("PROMISC".into());
    let mut veth = link(4, "vethweb01", Some("veth"), VETH_MAC);
    veth.master = Some(3);
    veth.link = Some(2);
    veth.link_netnsid = Some(1);
    let links = vec![link(2, "eth0", None, NODE_MAC), bridge, veth];
    w.add_json(netns_rec("root", Links), &links).unwrap();
    let addrs = vec![
        addr(2, "inet", "192.168.49.2", 24),
        addr(2, "inet6", "2a00:1450:4001:82a::2", 64),
        addr(3, "inet", "10.244.1.1", 24),
        addr(3, "inet6", "fe80::858:aff:fef4:101", 64),
    ];
    w.add_json(netns_rec("root", Addrs), &addrs).unwrap();
    let routes = RouteTable {
        routes: vec![
            route("default", Some("192.168.49.1"), 2),
            route("10.244.1.0/24", None, 3),
            route("10.244.2.0/24", Some("192.168.49.3"), 2),
            route("2a00:1450:4001:82a::/64", None, 2),
        ],
        rules: vec![],
    };
    w.add_json(netns_rec("root", Routes), &routes).unwrap();
    let neigh = NeighTable {
        neighbours: vec![netsnap_schema::model::Neigh {
            ifindex: 2,
            family: "inet".into(),
            dst: "192.168.49.1".into(),
            lladdr: Some(GW_MAC.into()),
            state: "REACHABLE".into(),
        }],
        fdb: vec![FdbEntry {
            ifindex: 4,
            mac: POD_MAC.into(),
            master: Some(3),
            vlan: None,
            state: "REACHABLE".into(),
        }],
    };
    w.add_json(netns_rec("root", Neigh), &neigh).unwrap();
    let sockets = vec![Socket {
        inode: 1,
        ..Socket::new(SocketProto::Tcp, "192.168.49.2", 10250)
    }];
    w.add_json(netns_rec("root", Sockets), &sockets).unwrap();

    // Pod netns.
    let id = "cni-podnet";
    let mut eth0 = link(2, "eth0", Some("veth"), POD_MAC);
    eth0.link = Some(4);
    eth0.link_netnsid = Some(0);
    w.add_json(netns_rec(id, Links), &vec![eth0]).unwrap();
    w.add_json(
        netns_rec(id, Addrs),
        &vec![addr(2, "inet", "10.244.1.5", 24)],
    )
    .unwrap();
    let pod_routes = RouteTable {
        routes: vec![
            route("default", Some("10.244.1.1"), 2),
            route("10.244.1.0/24", None, 2),
        ],
        rules: vec![],
    };
    w.add_json(netns_rec(id, Routes), &pod_routes).unwrap();
    let pod_sockets = vec![Socket {
        inode: 2,
        ..Socket::new(SocketProto::Tcp, "0.0.0.0", 8080)
    }];
    w.add_json(netns_rec(id, Sockets), &pod_sockets).unwrap();
    w.add_bytes(netns_rec(id, ResolvConf), &data("resolv-pod.conf"))
        .unwrap();
    let shop_resolv = format!(
        "# pod ns2/{LOCAL_POD}\nsearch ns2.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    );
    w.add_bytes(netns_rec("shopnet", ResolvConf), shop_resolv.as_bytes())
        .unwrap();

    // Netfilter, IPVS, conntrack.
    let mut iptables = data("iptables-nft-save.txt");
    iptables.extend_from_slice(
        format!("# Generated by iptables-nft-save v1.8.9 (nf_tables) on Sat Nov 21 17:44:41 2026\n*filter\n:INPUT ACCEPT [0:0]\n[0:0] -A INPUT -s {PUBLIC_IP}/32 -m comment --comment \"ns2/webshop:https allow partner\" -j ACCEPT\nCOMMIT\n").as_bytes(),
    );
    w.add_bytes(rec(layout::IPTABLES_NFT_SAVE), &iptables)
        .unwrap();
    w.add_bytes(
        rec(layout::IPTABLES_LEGACY_SAVE),
        &data("iptables-legacy-save.txt"),
    )
    .unwrap();
    w.add_bytes(
        rec(layout::IP6TABLES_NFT_SAVE),
        &data("ip6tables-nft-save.txt"),
    )
    .unwrap();
    let nft_file = match nft {
        Nft::Vmap => "nft-kube-proxy-vmap.json",
        Nft::Direct => "nft-kube-proxy-direct.json",
    };
    w.add_bytes(rec(layout::NFT_JSON), &data(nft_file)).unwrap();
    w.add_bytes(rec(layout::IPSET), &data("ipset-save.txt"))
        .unwrap();
    w.add_bytes(rec(layout::IPVS), &data("ip_vs.txt")).unwrap();
    w.add_bytes(rec(layout::IPVS_STATS), &data("ip_vs_stats.txt"))
        .unwrap();
    w.add_bytes(rec(layout::IPVS_CONN), &data("ip_vs_conn.txt"))
        .unwrap();
    let mut ct = data("proc-nf_conntrack.txt");
    ct.extend_from_slice(format!("ipv4     2 tcp      6 431998 ESTABLISHED src={PUBLIC_IP2} dst=192.168.49.2 sport=40000 dport=30080 packets=3 bytes=180 src=10.244.1.5 dst={PUBLIC_IP2} sport=8080 dport=40000 packets=2 bytes=120 [ASSURED] mark=0 zone=0 use=2\n").as_bytes());
    w.add_bytes(rec(layout::CONNTRACK_ENTRIES), &ct).unwrap();
    w.add_bytes(rec(layout::CONNTRACK_STAT), &data("stat-nf_conntrack.txt"))
        .unwrap();
    let mut count_by_netns = BTreeMap::new();
    count_by_netns.insert("root".to_string(), 11u64);
    count_by_netns.insert("cni-podnet".to_string(), 2u64);
    let mut node = BTreeMap::new();
    node.insert(
        "net.netfilter.nf_conntrack_max".to_string(),
        "262144".to_string(),
    );
    node.insert(
        "net.netfilter.nf_conntrack_count".to_string(),
        "12".to_string(),
    );
    w.add_json(
        rec(layout::CONNTRACK_SYSCTL),
        &ConntrackSysctl {
            node,
            count_by_netns,
        },
    )
    .unwrap();
    let mut failed = SourceRecord::new("netns/sockets", SourceStatus::Failed)
        .in_netns("shopnet")
        .with_error("permission denied reading /proc/4242/net/tcp in shopnet (webshop-local-7f9b)");
    failed.note = Some(format!("pod ns2/{LOCAL_POD} at 10.244.2.9"));
    w.add_record(failed).unwrap();
    (w, manifest)
}

pub fn open(path: &Path) -> Bundle {
    Bundle::open(path, &ReadLimits::default()).unwrap()
}

pub fn test_key(seed: u8) -> RedactKey {
    RedactKey::from_bytes([seed; 32])
}

/// Redacts `bundle` with `key` into `dir/name` (a directory bundle).
pub fn redact_to(
    bundle: &Bundle,
    key: &RedactKey,
    dir: &Path,
    name: &str,
) -> (Bundle, RedactionMap) {
    let out = dir.join(name);
    let mut w = BundleWriter::new(dir);
    let (manifest, map) = redact(bundle, key, &mut w).unwrap();
    w.write_dir(manifest, &out).unwrap();
    (open(&out), map)
}

/// Every entry of a bundle (manifest included) with its path, as bytes.
pub fn all_bytes(bundle: &Bundle) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = bundle
        .paths()
        .map(|p| (p.to_string(), bundle.file(p).unwrap_or_default().to_vec()))
        .collect();
    v.push((
        "manifest.json".into(),
        serde_json::to_vec_pretty(&bundle.manifest).unwrap(),
    ));
    // Entry paths themselves carry netns ids.
    let paths = bundle.paths().collect::<Vec<_>>().join("\n");
    v.push(("(paths)".into(), paths.into_bytes()));
    v
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Occurrences of `needle` in `hay` (ASCII case-insensitive) not glued to a letter or
/// digit on either side.
pub fn find_word(hay: &[u8], needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    if n.is_empty() || hay.len() < n.len() {
        return None;
    }
    (0..=hay.len() - n.len()).find(|&i| {
        hay[i..i + n.len()].eq_ignore_ascii_case(n)
            && (i == 0 || !is_word_byte(hay[i - 1]))
            && hay.get(i + n.len()).is_none_or(|b| !is_word_byte(*b))
    })
}

/// Asserts that no `needle` survives anywhere in `bundle`.
pub fn assert_absent(bundle: &Bundle, what: &str, needles: &[String]) {
    let entries = all_bytes(bundle);
    let mut leaks = Vec::new();
    for needle in needles {
        for (path, bytes) in &entries {
            if let Some(at) = find_word(bytes, needle) {
                let from = at.saturating_sub(40);
                let to = (at + needle.len() + 40).min(bytes.len());
                leaks.push(format!(
                    "{what} {needle:?} in {path}: …{}…",
                    String::from_utf8_lossy(&bytes[from..to])
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "originals survived:\n{}",
        leaks.join("\n")
    );
}

/// Every IP address in a bundle, found independently of the redactor: std parsing of
/// every run of address characters, plus the analyzer's ip_vs parsers for hex forms.
pub fn original_ips(bundle: &Bundle) -> std::collections::BTreeSet<std::net::IpAddr> {
    use netsnap_analyzer::parse::ipvs::{parse_ipvs, parse_ipvs_conn};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut ips = std::collections::BTreeSet::new();
    for (_, bytes) in all_bytes(bundle) {
        let text = String::from_utf8_lossy(&bytes);
        for run in text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.')) {
            let run = run.trim_matches(|c| c == '.' || c == ':');
            if let Ok(a) = run.parse::<Ipv6Addr>() {
                ips.insert(IpAddr::V6(a));
            }
            for part in run.split(':') {
                if let Ok(a) = part.parse::<Ipv4Addr>() {
                    ips.insert(IpAddr::V4(a));
                }
            }
        }
    }
    if let Some(t) = bundle.text(layout::IPVS) {
        for s in parse_ipvs(layout::IPVS, &t).model.services {
            ips.extend(s.addr);
            ips.extend(s.destinations.iter().map(|d| d.addr));
        }
    }
    if let Some(t) = bundle.text(layout::IPVS_CONN) {
        for c in parse_ipvs_conn(layout::IPVS_CONN, &t).model.conns {
            ips.extend([c.client.0, c.virtual_addr.0, c.dest.0]);
        }
    }
    ips
}

/// The ways an address is written in a bundle.
pub fn ip_forms(ip: std::net::IpAddr) -> Vec<String> {
    match ip {
        std::net::IpAddr::V4(a) => vec![a.to_string(), format!("{:08X}", u32::from(a))],
        std::net::IpAddr::V6(a) => vec![
            a.to_string(),
            a.segments()
                .iter()
                .map(|s| format!("{s:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ],
    }
}

/// Words of free text that name something: not allowlisted, not numbers, not
/// address fragments.
pub fn name_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .map(|w| w.trim_matches('-'))
        .filter(|w| w.len() >= 2)
        .filter(|w| w.bytes().any(|b| b.is_ascii_alphabetic()))
        .filter(|w| !(w.len() <= 4 && w.bytes().all(|b| b.is_ascii_hexdigit())))
        .filter(|w| !w.starts_with("0x"))
        .filter(|w| !netsnap_redact::allowlist::is_allowlisted(w))
        .map(str::to_string)
        .collect()
}

/// Names in a bundle's structured places, found with the analyzer's parsers and
/// the schema types: hostnames, pod identities, netns ids, comments (iptables, ipset,
/// nft), kube-proxy nft chain names, search domains.
pub fn original_names(bundle: &Bundle) -> std::collections::BTreeSet<String> {
    use netsnap_analyzer::parse::iptables::{parse_iptables, Match};
    use netsnap_analyzer::parse::nft::{parse_kube_proxy_chain, parse_nft};
    use netsnap_analyzer::parse::resolv::parse_resolv;
    let mut names = std::collections::BTreeSet::new();
    let mut add = |text: &str| names.extend(name_words(text));
    add(&bundle.manifest.hostname);
    if let Ok(Some(facts)) = bundle.json::<HostFacts>(layout::HOST_FACTS) {
        add(&facts.hostname);
    }
    if let Ok(Some(index)) = bundle.json::<NetnsIndex>(layout::NETNS_INDEX) {
        for e in &index.netns {
            if !e.id.starts_with("ino-") {
                add(&e.id);
            }
            add(e.hostname.as_deref().unwrap_or(""));
            if let Some(p) = &e.pod {
                add(p.namespace.as_deref().unwrap_or(""));
                add(p.name.as_deref().unwrap_or(""));
            }
        }
    }
    for path in bundle.paths() {
        let Some(text) = bundle.text(path) else {
            continue;
        };
        if path.ends_with("-save.txt") {
            for t in parse_iptables(path, &text).model.tables {
                for r in t.rules {
                    for m in r.matches {
                        if let Match::Comment(c) = m {
                            add(&c);
                        }
                    }
                }
            }
        }
        if path.ends_with("resolv.conf") {
            for d in parse_resolv(path, &text).model.search {
                add(&d);
            }
        }
        if path == layout::IPSET {
            for line in text.lines().filter(|l| l.starts_with("add ")) {
                if let Some((_, c)) = line.split_once(" comment ") {
                    add(c);
                }
            }
        }
        if path == layout::NFT_JSON {
            let nft = parse_nft(path, &text).model;
            let chain_names = nft.chains.iter().map(|c| c.name.clone());
            let set_names = nft.sets.iter().map(|s| s.name.clone());
            for name in chain_names.chain(set_names) {
                if let Some(k) = parse_kube_proxy_chain(&name) {
                    add(&k.namespace);
                    add(&k.service);
                    add(&k.port_name);
                }
            }
            for c in nft.chains.iter().filter_map(|c| c.comment.as_deref()) {
                add(c);
            }
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let mut stack = vec![&v];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::Object(m) => {
                        if let Some(serde_json::Value::String(c)) = m.get("comment") {
                            add(c);
                        }
                        stack.extend(m.values());
                    }
                    serde_json::Value::Array(a) => stack.extend(a),
                    _ => {}
                }
            }
        }
    }
    names
}

/// UUIDs of a bundle (pod uids, boot id), in both separator forms.
pub fn original_uuids(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(Some(facts)) = bundle.json::<HostFacts>(layout::HOST_FACTS) {
        v.extend(facts.boot_id);
    }
    if let Ok(Some(index)) = bundle.json::<NetnsIndex>(layout::NETNS_INDEX) {
        v.extend(
            index
                .netns
                .iter()
                .filter_map(|e| e.pod.as_ref()?.uid.clone()),
        );
    }
    let underscored: Vec<String> = v.iter().map(|u| u.replace('-', "_")).collect();
    v.extend(underscored);
    v
}

/// MACs of a bundle's netlink JSON (links, neighbours, fdb).
pub fn original_macs(bundle: &Bundle) -> Vec<String> {
    let mut macs = Vec::new();
    for path in bundle.paths() {
        match layout::parse_netns_path(path) {
            Some((_, layout::NetnsFile::Links)) => {
                if let Ok(Some(links)) = bundle.json::<Vec<Link>>(path) {
                    macs.extend(links.into_iter().filter_map(|l| l.mac));
                }
            }
            Some((_, layout::NetnsFile::Neigh)) => {
                if let Ok(Some(n)) = bundle.json::<NeighTable>(path) {
                    macs.extend(n.neighbours.into_iter().filter_map(|x| x.lladdr));
                    macs.extend(n.fdb.into_iter().map(|x| x.mac));
                }
            }
            _ => {}
        }
    }
    macs.retain(|m| m != "00:00:00:00:00:00" && m != "ff:ff:ff:ff:ff:ff");
    macs.sort();
    macs.dedup();
    macs
}

fn is_base32(h: &str) -> bool {
    h.bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// kube-proxy's hashes (base32) in iptables chain names (16) and nft chain names (8).
pub fn original_hashes(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for (_, bytes) in all_bytes(bundle) {
        let text = String::from_utf8_lossy(&bytes);
        for w in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            for prefix in [
                "KUBE-SVC-",
                "KUBE-SEP-",
                "KUBE-EXT-",
                "KUBE-SVL-",
                "KUBE-FW-",
            ] {
                if let Some(h) = w.strip_prefix(prefix) {
                    if h.len() == 16 && is_base32(h) {
                        v.push(h.to_string());
                    }
                }
            }
            for prefix in ["service-", "endpoint-", "external-", "affinity-"] {
                if let Some(rest) = w.strip_prefix(prefix) {
                    if rest.len() > 9 && rest.as_bytes()[8] == b'-' && is_base32(&rest[..8]) {
                        v.push(rest[..8].to_string());
                    }
                }
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// A finding as text, rewritten through the redaction when `r` is given.
pub fn normalise_finding(
    f: &netsnap_analyzer::check::Finding,
    r: Option<&mut netsnap_redact::Redactor>,
) -> String {
    let mut f = f.clone();
    if let Some(r) = r {
        f.subject = r.rewrite_text(&f.subject);
        f.message = r.rewrite_text(&f.message);
        for e in &mut f.evidence {
            // Evidence is a line of the entry (or a summary of a JSON object): the
            // entry's own rules rewrite it (ip_vs lines are hex).
            let excerpt = r.rewrite_entry(&e.path, e.excerpt.as_bytes());
            e.excerpt = String::from_utf8_lossy(&excerpt).into_owned();
            e.path = r.rewrite_path(&e.path);
        }
    }
    // Lists inside a message follow the order of the (now different) addresses.
    let mut words: Vec<&str> = f
        .message
        .split([' ', ',', '(', ')'])
        .map(|w| w.trim_end_matches([':', '.', ';']))
        .collect();
    words.sort_unstable();
    let mut evidence: Vec<String> = f
        .evidence
        .iter()
        .map(|e| format!("{}:{:?}: {}", e.path, e.line, trim_excerpt(&e.excerpt)))
        .collect();
    evidence.sort();
    // So do pairs in a subject (`ip X in pod A and pod B`).
    let mut subject: Vec<&str> = f.subject.split(' ').collect();
    subject.sort_unstable();
    format!(
        "{} {:?} {} | {} | {}",
        f.id,
        f.severity,
        subject.join(" "),
        words.join(" "),
        evidence.join(" ; ")
    )
}

/// Excerpts are capped at 200 bytes; pseudonyms change lengths, so compare less.
fn trim_excerpt(e: &str) -> &str {
    let e = e.trim_end_matches('…');
    let mut end = e.len().min(120);
    while !e.is_char_boundary(end) {
        end -= 1;
    }
    &e[..end]
}
