//! resolv.conf, sysctl, ipset save and kernel log parsers.

use std::net::IpAddr;

use netsnap_analyzer::parse::ipset::parse_ipset;
use netsnap_analyzer::parse::kmsg::{parse_kmsg, KmsgKind};
use netsnap_analyzer::parse::resolv::parse_resolv;
use netsnap_analyzer::parse::sysctl::{parse_sysctl_json, parse_sysctl_text};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn pod_resolv_conf() {
    let p = parse_resolv("netns/p1/resolv.conf", include_str!("data/resolv-pod.conf"));
    assert!(p.coverage.is_complete());
    let r = p.model;
    assert_eq!(r.nameservers.len(), 1);
    assert_eq!(
        (r.nameservers[0].addr, r.nameservers[0].line),
        (ip("10.96.0.10"), 3)
    );
    assert_eq!(
        r.search,
        [
            "ns1.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "example.internal"
        ]
    );
    assert_eq!(r.search_line, Some(2));
    assert_eq!(r.ndots(), 5);
    assert_eq!(r.search_chars(), 70);
}

#[test]
fn node_resolv_conf_glibc_semantics() {
    let p = parse_resolv("host/resolv.conf", include_str!("data/resolv-node.conf"));
    let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
    assert_eq!(lines, vec![10, 11]); // `lookup` keyword, bad nameserver address
    let r = p.model;
    assert_eq!(r.nameservers.len(), 4);
    assert_eq!(r.used_nameservers().len(), 3);
    assert_eq!(r.nameservers[0].addr, ip("127.0.0.53"));
    assert_eq!(r.nameservers[2].addr, ip("fe80::1"));
    assert_eq!(r.nameservers[2].text, "fe80::1%eth0");
    // `search` came after `domain`: it wins.
    assert_eq!(r.search.len(), 7);
    assert_eq!(r.search_line, Some(8));
    assert!(!r.search_from_domain);
    assert_eq!(r.search_lines, vec![7, 8]);
    let o = &r.options;
    assert!(o.edns0 && o.trust_ad && o.rotate);
    assert_eq!(
        (o.timeout, o.attempts, o.ndots),
        (Some(2), Some(5), Some(15))
    );
    assert_eq!(o.unknown, ["frobnicate"]);
}

#[test]
fn domain_after_search_wins() {
    let r = parse_resolv("x", "search a b c\ndomain d.example e\n").model;
    assert_eq!(r.search, ["d.example"]);
    assert!(r.search_from_domain);
}

#[test]
fn sysctl_text_real_output() {
    let p = parse_sysctl_text("sysctl-a.txt", include_str!("data/sysctl-a.txt"));
    assert!(p.coverage.is_complete(), "{:?}", p.coverage.unrecognised);
    let s = p.model;
    assert_eq!(s.get_i64("net.ipv4.ip_forward"), Some(0));
    assert_eq!(s.get_i64("net/netfilter/nf_conntrack_max"), Some(262144));
    assert_eq!(
        s.get_list("net.ipv4.ip_local_port_range"),
        Some(vec![32768, 60999])
    );
    assert_eq!(
        s.get("net.netfilter.nf_conntrack_buckets").map(|x| x.line),
        Some(6)
    );
    let bad = parse_sysctl_text("x", "a.b = 1\nsysctl: permission denied on key 'x'\n");
    assert_eq!(bad.coverage.unrecognised[0].line, 2);
}

#[test]
fn sysctl_json_with_lines() {
    let text = "{\n  \"net.ipv4.ip_forward\": \"1\",\n  \"net.netfilter.nf_conntrack_max\": 262144,\n  \"net.bridge.bridge-nf-call-iptables\": {\"x\": 1}\n}\n";
    let p = parse_sysctl_json("host/sysctl.json", text);
    assert_eq!(p.coverage.recognised, 2);
    assert_eq!(p.coverage.unrecognised[0].line, 4);
    let s = p.model;
    assert_eq!(
        s.get("net.ipv4.ip_forward")
            .map(|x| (x.value.as_str(), x.line)),
        Some(("1", 2))
    );
    assert_eq!(s.get_i64("net.netfilter.nf_conntrack_max"), Some(262144));
    let broken = parse_sysctl_json("x", "{\n\"a\": \"1\",\n oops\n}");
    assert_eq!(broken.coverage.unrecognised[0].line, 3);
}

#[test]
fn ipset_save_real_output() {
    let p = parse_ipset("netfilter/ipset.txt", include_str!("data/ipset-save.txt"));
    assert!(p.coverage.is_complete(), "{:?}", p.coverage.unrecognised);
    let s = p.model;
    assert_eq!(s.sets.len(), 5);
    let lb = s.set("KUBE-LOOP-BACK").expect("set");
    assert_eq!(lb.kind, "hash:ip,port,ip");
    assert_eq!(lb.family.as_deref(), Some("inet"));
    assert!(lb.options.contains(&("comment".into(), String::new())));
    assert_eq!(lb.entries[0].value, "10.244.1.5,tcp:8080,10.244.1.5");
    assert_eq!(lb.entries[0].comment.as_deref(), Some("ns1/web:http"));
    let ci = s.set("KUBE-CLUSTER-IP").expect("set");
    let mut vals: Vec<&str> = ci.entries.iter().map(|e| e.value.as_str()).collect();
    vals.sort();
    assert_eq!(vals, ["10.96.0.1,tcp:443", "10.96.0.10,udp:53"]);
    let bad = parse_ipset(
        "x",
        "add NOPE 1.2.3.4\ncreate S hash:ip\nadd S 1.2.3.4 timeout x\nfoo\n",
    );
    let lines: Vec<usize> = bad.coverage.unrecognised.iter().map(|u| u.line).collect();
    assert_eq!(lines, vec![1, 3, 4]);
}

#[test]
fn kmsg_records_and_classification() {
    let p = parse_kmsg("host/kmsg.txt", include_str!("data/kmsg.txt"));
    let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
    assert_eq!(lines, vec![17]);
    let k = p.model;
    assert_eq!(k.records.len(), 14);
    let full: Vec<(usize, Option<u64>)> = k
        .conntrack_full()
        .map(|r| match r.kind {
            KmsgKind::ConntrackTableFull { netns } => (r.line, netns),
            _ => (0, None),
        })
        .collect();
    assert_eq!(full, vec![(9, None), (10, Some(4026532417)), (14, None)]);
    let r = k.records.iter().find(|r| r.line == 9).expect("line 9");
    assert_eq!(
        (r.level, r.facility, r.seq, r.usec),
        (Some(4), Some(0), Some(1100), Some(5123000000))
    );
    let r = k.records.iter().find(|r| r.line == 11).expect("line 11");
    assert_eq!(
        r.kind,
        KmsgKind::NeighbourTableOverflow {
            table: Some("arp_cache".into())
        }
    );
    let r = k.records.iter().find(|r| r.line == 15).expect("line 15");
    assert_eq!(r.usec, Some(5301_500000));
    assert!(
        matches!(&r.kind, KmsgKind::NeighbourTableOverflow { table: Some(t) } if t == "ndisc_cache")
    );
    let r = k.records.iter().find(|r| r.line == 8).expect("line 8");
    assert_eq!(
        r.kind,
        KmsgKind::BridgePortState {
            bridge: "cni0".into(),
            port: 2,
            ifname: "veth3f9a1c2b".into(),
            state: "forwarding".into()
        }
    );
    let r = k.records.iter().find(|r| r.line == 7).expect("line 7");
    assert_eq!(
        r.kind,
        KmsgKind::Veth {
            ifname: "veth3f9a1c2b".into(),
            event: "link becomes ready".into()
        }
    );
    let r = k.records.iter().find(|r| r.line == 13).expect("line 13");
    assert!(matches!(&r.kind, KmsgKind::Veth { event, .. } if event == "left promiscuous mode"));
    assert!(
        matches!(&k.records.last().map(|r| r.kind.clone()), Some(KmsgKind::BridgePortState { bridge, .. }) if bridge == "docker0")
    );
}

mod fuzz {
    //! Every parser, on arbitrary text and on damaged real lines: no panic, and every
    //! line is accounted for exactly once.

    use netsnap_analyzer::parse::*;
    use proptest::prelude::*;

    const REAL: &[&str] = &[
        include_str!("data/iptables-nft-save.txt"),
        include_str!("data/kube-proxy-restore.txt"),
        include_str!("data/proc-nf_conntrack.txt"),
        include_str!("data/conntrack-L.txt"),
        include_str!("data/stat-nf_conntrack.txt"),
        include_str!("data/ip_vs.txt"),
        include_str!("data/ipvsadm-Ln.txt"),
        include_str!("data/ip_vs_conn.txt"),
        include_str!("data/ip_vs_stats.txt"),
        include_str!("data/ipset-save.txt"),
        include_str!("data/kmsg.txt"),
        include_str!("data/resolv-node.conf"),
        include_str!("data/sysctl-a.txt"),
    ];

    fn all_parsers(text: &str) {
        let lines = text.lines().count();
        let line_based = [
            iptables::parse_iptables("f", text).coverage,
            conntrack::parse_conntrack("f", text).coverage,
            ct_stat::parse_ct_stat("f", text).coverage,
            ipvs::parse_ipvs("f", text).coverage,
            ipvs::parse_ipvs_stats("f", text).coverage,
            ipvs::parse_ipvs_conn("f", text).coverage,
            ipset::parse_ipset("f", text).coverage,
            kmsg::parse_kmsg("f", text).coverage,
            resolv::parse_resolv("f", text).coverage,
            sysctl::parse_sysctl_text("f", text).coverage,
        ];
        for c in line_based {
            assert_eq!(c.total(), lines, "{c:?}");
            assert!(c
                .unrecognised
                .iter()
                .all(|u| u.line >= 1 && u.line <= lines));
        }
        let _ = nft::parse_nft("f", text);
        let _ = sysctl::parse_sysctl_json("f", text);
    }

    /// Real lines, each cut at a random point and shuffled with others.
    fn damaged() -> impl Strategy<Value = String> {
        let pool: Vec<&'static str> = REAL.iter().flat_map(|t| t.lines()).collect();
        prop::collection::vec(
            (prop::sample::select(pool), any::<prop::sample::Index>()),
            0..20,
        )
        .prop_map(|picks| {
            let mut out = String::new();
            for (line, cut) in picks {
                let mut end = cut.index(line.len() + 1);
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&line[..end]);
                out.push('\n');
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_text(text in "(?s).{0,400}") {
            all_parsers(&text);
        }

        #[test]
        fn damaged_real_lines(text in damaged()) {
            all_parsers(&text);
        }
    }

    #[test]
    fn real_files_through_every_parser() {
        for t in REAL {
            all_parsers(t);
        }
    }
}
