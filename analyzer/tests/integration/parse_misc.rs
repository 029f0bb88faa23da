//! resolv.conf, sysctl, ipset save, kernel log and CNI configuration parsers.

use std::net::IpAddr;

use netsnap_analyzer::parse::cni::{parse_cni, CniConfigs, CniFile, CniFileKind};
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
        include_str!("data/cni-bridge.conflist"),
        include_str!("data/cni-kindnet.conflist"),
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
        for name in ["f.conflist", "f.conf", "f.txt"] {
            let c = cni::parse_cni("f", name, text).coverage;
            assert!(c.total() <= 1 + text.matches('"').count(), "{c:?}");
            assert!(c
                .unrecognised
                .iter()
                .all(|u| u.line >= 1 && u.line <= lines.max(1)));
        }
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

fn cni(file: &str, text: &str) -> CniFile {
    let p = parse_cni(&format!("host/cni/{file}"), file, text);
    assert!(p.coverage.is_complete(), "{file}: {:?}", p.coverage);
    assert_eq!(p.coverage.recognised, 1);
    p.model
}

#[test]
fn cni_bridge_conflist_with_host_local_and_portmap() {
    let f = cni(
        "10-containerd-net.conflist",
        include_str!("data/cni-bridge.conflist"),
    );
    assert_eq!(f.kind, CniFileKind::Conflist);
    let c = f.config.unwrap();
    assert_eq!(c.name.as_deref(), Some("containerd-net"));
    assert_eq!(c.cni_version.as_deref(), Some("1.0.0"));
    let types: Vec<_> = c.plugins.iter().map(|p| p.plugin_type.as_deref()).collect();
    assert_eq!(types, [Some("bridge"), Some("portmap")]);
    let bridge = &c.plugins[0];
    assert_eq!(bridge.bridge.as_deref(), Some("cni0"));
    assert_eq!(
        (
            bridge.mtu,
            bridge.hairpin_mode,
            bridge.ip_masq,
            bridge.is_gateway
        ),
        (Some(1450), Some(true), Some(true), Some(true))
    );
    // Unknown fields are kept as written.
    assert_eq!(bridge.extra.get("promiscMode"), Some(&true.into()));
    let ipam = bridge.ipam.as_ref().unwrap();
    assert_eq!(ipam.ipam_type.as_deref(), Some("host-local"));
    assert_eq!(ipam.data_dir.as_deref(), Some("/run/cni-ipam-state"));
    let subnets: Vec<_> = ipam
        .ranges
        .iter()
        .flatten()
        .map(|r| r.subnet.as_deref())
        .collect();
    assert_eq!(subnets, [Some("10.88.0.0/16"), Some("2001:4860:4860::/64")]);
    let dsts: Vec<_> = ipam.routes.iter().map(|r| r.dst.as_deref()).collect();
    assert_eq!(dsts, [Some("0.0.0.0/0"), Some("::/0")]);
    assert!(c.plugins[1].extra.contains_key("capabilities"));
}

#[test]
fn cni_single_plugin_conf() {
    let f = cni("10-mynet.conf", include_str!("data/cni-bridge.conf"));
    assert_eq!(f.kind, CniFileKind::Conf);
    let c = f.config.unwrap();
    assert_eq!(c.name.as_deref(), Some("mynet"));
    assert_eq!(c.cni_version.as_deref(), Some("0.2.0"));
    assert_eq!(c.plugins.len(), 1);
    let p = &c.plugins[0];
    assert_eq!(p.plugin_type.as_deref(), Some("bridge"));
    assert_eq!(p.bridge.as_deref(), Some("cni0"));
    assert!(p.extra.is_empty(), "{:?}", p.extra);
    let ipam = p.ipam.as_ref().unwrap();
    assert_eq!(ipam.subnet.as_deref(), Some("10.22.0.0/16"));
    assert_eq!(ipam.routes[0].gw.as_deref(), Some("10.22.0.1"));
}

#[test]
fn cni_flannel_delegate() {
    let f = cni(
        "10-flannel.conflist",
        include_str!("data/cni-flannel.conflist"),
    );
    let c = f.config.unwrap();
    assert_eq!(c.name.as_deref(), Some("cbr0"));
    let flannel = &c.plugins[0];
    assert_eq!(flannel.plugin_type.as_deref(), Some("flannel"));
    let d = flannel.delegate.as_deref().unwrap();
    assert_eq!(d.hairpin_mode, Some(true));
    assert_eq!(d.is_default_gateway, Some(true));
    assert_eq!(d.plugin_type, None);
    assert!(flannel.extra.is_empty());
}

#[test]
fn cni_calico_cilium_and_kindnet() {
    let calico = cni(
        "10-calico.conflist",
        include_str!("data/cni-calico.conflist"),
    )
    .config
    .unwrap();
    let types: Vec<_> = calico
        .plugins
        .iter()
        .map(|p| p.plugin_type.as_deref())
        .collect();
    assert_eq!(types, [Some("calico"), Some("portmap"), Some("bandwidth")]);
    let c = &calico.plugins[0];
    assert_eq!(c.mtu, Some(0));
    let ipam = c.ipam.as_ref().unwrap();
    assert_eq!(ipam.ipam_type.as_deref(), Some("calico-ipam"));
    assert_eq!(ipam.extra.get("assign_ipv4"), Some(&"true".into()));
    for key in ["nodename", "policy", "kubernetes", "datastore_type"] {
        assert!(c.extra.contains_key(key), "{key}");
    }

    let cilium = cni(
        "05-cilium.conflist",
        include_str!("data/cni-cilium.conflist"),
    )
    .config
    .unwrap();
    assert_eq!(cilium.plugins.len(), 1);
    assert_eq!(cilium.plugins[0].plugin_type.as_deref(), Some("cilium-cni"));
    assert_eq!(
        cilium.plugins[0].extra.get("log-file"),
        Some(&"/var/run/cilium/cilium-cni.log".into())
    );

    let kindnet = cni(
        "10-kindnet.conflist",
        include_str!("data/cni-kindnet.conflist"),
    )
    .config
    .unwrap();
    let ptp = &kindnet.plugins[0];
    assert_eq!(ptp.plugin_type.as_deref(), Some("ptp"));
    assert_eq!((ptp.ip_masq, ptp.mtu), (Some(false), Some(1500)));
    let ipam = ptp.ipam.as_ref().unwrap();
    assert_eq!(ipam.ranges[0][0].subnet.as_deref(), Some("10.244.0.0/24"));
}

#[test]
fn cni_invalid_json_is_a_miss_on_its_line() {
    let text = "{\n  \"name\": \"cbr0\",\n  \"plugins\": [\n    {\"type\": \"flannel\",}\n  ]\n}\n";
    let p = parse_cni("host/cni/10-flannel.conflist", "10-flannel.conflist", text);
    assert_eq!(p.model.config, None);
    assert_eq!(p.coverage.recognised, 0);
    assert_eq!(p.coverage.unrecognised.len(), 1);
    let miss = &p.coverage.unrecognised[0];
    assert_eq!(miss.line, 4);
    assert!(miss.reason.starts_with("invalid JSON"), "{}", miss.reason);
    assert!(miss.text.contains("flannel"), "{}", miss.text);
    // Not even JSON, or not an object: a miss too, never a panic.
    for bad in ["", "\u{0}\u{ff}", "[]", "42", "{\"plugins\": 3}"] {
        let p = parse_cni("host/cni/x.conflist", "x.conflist", bad);
        assert!(!p.coverage.is_complete(), "{bad:?}");
    }
}

#[test]
fn cni_runtime_uses_the_first_usable_file_in_lexical_order() {
    let file = |name: &str, text: &str| parse_cni(&format!("host/cni/{name}"), name, text).model;
    let flannel = include_str!("data/cni-flannel.conflist");
    let cilium = include_str!("data/cni-cilium.conflist");
    let configs = CniConfigs::new(vec![
        file("10-flannel.conflist", flannel),
        file("05-cilium.conflist", cilium),
        // Sorted first, but the runtime skips what it cannot load or use.
        file("00-broken.conflist", "{"),
        file("01-empty.conflist", r#"{"name": "x", "plugins": []}"#),
        file("02-untyped.conf", r#"{"name": "x"}"#),
        file("00-notes.conflist.bak", flannel),
    ]);
    let names: Vec<&str> = configs.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        names,
        [
            "00-broken.conflist",
            "00-notes.conflist.bak",
            "01-empty.conflist",
            "02-untyped.conf",
            "05-cilium.conflist",
            "10-flannel.conflist"
        ]
    );
    assert_eq!(configs.files[1].kind, CniFileKind::Ignored);
    assert_eq!(configs.files[1].config, None);
    assert_eq!(
        configs.in_use().map(|f| f.file.as_str()),
        Some("05-cilium.conflist")
    );
    assert_eq!(CniConfigs::new(Vec::new()).in_use(), None);
}

/// A bundle directory holding `files` (each with a true manifest record).
fn bundle_of(dir: &std::path::Path, files: &[(&str, &str)]) -> netsnap_schema::Bundle {
    use netsnap_schema::{BundleWriter, Manifest, ReadLimits, SourceRecord, SourceStatus};
    let mut w = BundleWriter::new(dir);
    for (path, text) in files {
        let mut r = SourceRecord::new(*path, SourceStatus::Ok);
        r.path = Some((*path).into());
        w.add_bytes(r, text.as_bytes()).unwrap();
    }
    let m = Manifest::new("0.0.0-test", "node-1", "6.18.0", "2026-12-04T00:00:00Z", 0);
    let out = dir.join("bundle");
    w.write_dir(m, &out).unwrap();
    netsnap_schema::Bundle::open(&out, &ReadLimits::default()).unwrap()
}

#[test]
fn cni_files_reach_the_model_and_show_cni() {
    use netsnap_analyzer::{model, show, sources};
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle_of(
        tmp.path(),
        &[
            (
                "host/cni/10-flannel.conflist",
                include_str!("data/cni-flannel.conflist"),
            ),
            (
                "host/cni/05-cilium.conflist",
                include_str!("data/cni-cilium.conflist"),
            ),
            (
                "host/cni/99-kindnet.conflist",
                include_str!("data/cni-kindnet.conflist"),
            ),
            ("host/cni/00-broken.conflist", "{\n  \"name\": \n"),
        ],
    );
    let mut src = sources::parse_all(&b);
    let m = model::build(&mut src);
    let files: Vec<&str> = m.cni.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "00-broken.conflist",
            "05-cilium.conflist",
            "10-flannel.conflist",
            "99-kindnet.conflist"
        ]
    );
    assert_eq!(
        m.cni.in_use().map(|f| f.file.as_str()),
        Some("05-cilium.conflist")
    );
    // The broken file is in the coverage with its line, the others fully understood.
    let broken = src
        .coverage
        .iter()
        .find(|c| c.path == "host/cni/00-broken.conflist")
        .unwrap();
    assert_eq!(broken.unrecognised.len(), 1);
    // serde_json names the line after the last; the miss names the last one.
    assert_eq!(broken.unrecognised[0].line, 2);
    let good = src
        .coverage
        .iter()
        .filter(|c| c.path.starts_with("host/cni/"));
    assert_eq!(good.filter(|c| c.is_complete()).count(), 3);

    let text = show::cni(&m.cni, &show::Filters::default());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "host/cni/00-broken.conflist");
    assert!(lines[1].contains("not valid JSON"), "{text}");
    assert_eq!(lines[2], "host/cni/05-cilium.conflist  (in use)");
    assert!(text.contains("network cbr0 cniVersion 0.3.1"), "{text}");
    assert!(
        text.contains("delegate: ? hairpinMode=true isDefaultGateway=true"),
        "{text}"
    );
    assert!(
        text.contains("ptp mtu=1500 ipMasq=false ipam=[host-local subnets 10.244.0.0/24 dataDir /run/cni-ipam-state routes 0.0.0.0/0]"),
        "{text}"
    );
    let only = show::Filters {
        filter: Some("kindnet".into()),
        ..show::Filters::default()
    };
    let filtered = show::cni(&m.cni, &only);
    assert!(
        filtered.starts_with("host/cni/99-kindnet.conflist\n"),
        "{filtered}"
    );
    assert!(!filtered.contains("cilium"), "{filtered}");
}

#[test]
fn unregistered_paths_are_kept_raw_and_reported() {
    use netsnap_analyzer::sources;
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle_of(
        tmp.path(),
        &[
            ("host/resolv.conf", "nameserver 10.96.0.10\n"),
            ("host/future-source.txt", "something new\n"),
            ("ipvs/ip_vs_stats.txt", "garbage that is never parsed\n"),
        ],
    );
    let src = sources::parse_all(&b);
    let paths: Vec<&str> = src.coverage.iter().map(|c| c.path.as_str()).collect();
    // A registered raw-only source has no coverage; an unknown path has a miss.
    assert_eq!(paths, ["host/future-source.txt", "host/resolv.conf"]);
    let unknown = &src.coverage[0];
    assert_eq!(unknown.unrecognised.len(), 1);
    assert_eq!(unknown.unrecognised[0].reason, sources::UNKNOWN_SOURCE);
    assert!(b.file("host/future-source.txt").is_some());
}

#[test]
fn netsnap_show_cni_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    bundle_of(
        tmp.path(),
        &[
            (
                "host/cni/10-flannel.conflist",
                include_str!("data/cni-flannel.conflist"),
            ),
            (
                "host/cni/10-calico.conflist",
                include_str!("data/cni-calico.conflist"),
            ),
        ],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("show")
        .arg(tmp.path().join("bundle"))
        .arg("cni")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("host/cni/10-calico.conflist  (in use)\n"),
        "{text}"
    );
    assert!(text.contains("\nhost/cni/10-flannel.conflist\n"), "{text}");
    assert!(
        text.contains("  - calico mtu=0 ipam=[calico-ipam] (also "),
        "{text}"
    );
}

/// The processes whose netns the collector could not open, with their cgroups, reach
/// the model from `netns/index.json` (BND001 reads them: a pod cgroup makes it a
/// warning); an index without them (older bundles) gives none.
#[test]
fn inaccessible_processes_reach_the_model() {
    use netsnap_analyzer::{model, sources};
    let tmp = tempfile::tempdir().unwrap();
    let index = r#"{"netns": [{"id": "root", "inode": 1, "dev": 4, "is_root": true, "found_by": []}],
  "inaccessible": [{"pid": 10, "cgroup": "0::/system.slice/sshd.service"},
                   {"pid": 11, "cgroup": "0::/kubepods.slice/kubepods-pod1f2e3d4c_aaaa_bbbb_cccc_0123456789ab.slice/cri-containerd-0a1b.scope"},
                   {"pid": 12}]}"#;
    let b = bundle_of(tmp.path(), &[("netns/index.json", index)]);
    let m = model::build(&mut sources::parse_all(&b));
    let got: Vec<(u32, bool)> = m
        .inaccessible
        .iter()
        .map(|p| (p.pid, p.could_be_pod()))
        .collect();
    assert_eq!(got, [(10, false), (11, true), (12, false)]);
    let tmp = tempfile::tempdir().unwrap();
    let old =
        r#"{"netns": [{"id": "root", "inode": 1, "dev": 4, "is_root": true, "found_by": []}]}"#;
    let b = bundle_of(tmp.path(), &[("netns/index.json", old)]);
    assert!(model::build(&mut sources::parse_all(&b))
        .inaccessible
        .is_empty());
}
