//! The analyzer on the hand-made fixture bundles (fixtures/analyzer/*): snapshots of
//! every output format, the exact set of findings, exit codes, determinism across
//! thread counts, and the other subcommands.

use netsnap_scale::fixture;

use netsnap_analyzer::check::{Selection, Severity, Thresholds};
use netsnap_analyzer::render;
use netsnap_analyzer::report::{self, BundleReport, Report};
use netsnap_schema::{Bundle, ReadLimits};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/analyzer")
        .join(name)
}

fn report_of(name: &str) -> Report {
    let b = Bundle::open(&fixture(name), &ReadLimits::default()).expect("fixture opens");
    let a = report::analyze(&b, &Thresholds::default(), &Selection::default());
    Report::new(vec![BundleReport::new(
        &format!("fixtures/analyzer/{name}"),
        &a,
    )])
}

fn ids(r: &Report, min: Severity) -> BTreeSet<String> {
    r.bundles[0]
        .findings
        .iter()
        .filter(|f| f.severity >= min)
        .map(|f| f.id.to_string())
        .collect()
}

fn netsnap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("run netsnap")
}

#[test]
fn healthy_node_has_no_warning_or_critical() {
    let r = report_of("healthy");
    assert!(
        ids(&r, Severity::Warning).is_empty(),
        "{:#?}",
        r.bundles[0].findings
    );
    assert_eq!(r.bundles[0].coverage.unrecognised_lines, 0);
}

#[test]
fn faulty_node_shows_every_injected_fault() {
    let r = report_of("faulty");
    let want: BTreeSet<String> = [
        "SVC001", "SVC002", "SVC003", "SVC005", "LNK001", "LNK003", "LNK004", "LNK005", "LNK006",
        "LNK007", "LNK008", "NF001", "NF002", "NF003", "NF004", "NF005", "NF006", "CT001", "CT002",
        "CT003", "CT004", "CT005", "CT006", "CT007", "DNS001", "DNS002", "DNS004", "DNS005",
        "NB001", "BND001", "PRS001",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ids(&r, Severity::Info), want);
}

#[test]
fn ipvs_node_checks_on_kernel_format() {
    let r = report_of("ipvs");
    let f = &r.bundles[0].findings;
    let svc006: Vec<&str> = f
        .iter()
        .filter(|f| f.id == "SVC006")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(svc006.len(), 4, "{svc006:#?}");
    assert!(svc006
        .iter()
        .any(|m| m.contains("weight 0") && m.contains("10.244.1.12:8080")));
    assert!(svc006.iter().any(|m| m.contains("not bound to kube-ipvs0")));
    assert!(svc006
        .iter()
        .any(|m| m.contains("10.96.44.44:80 is in ipset")));
    assert!(f
        .iter()
        .any(|f| f.id == "SVC001" && f.subject == "service 10.96.33.33:80/tcp"));
}

#[test]
fn snapshots_of_every_format() {
    for name in ["healthy", "faulty", "ipvs"] {
        let r = report_of(name);
        insta::assert_snapshot!(format!("{name}_text"), render::text::render(&r, false));
        insta::assert_snapshot!(format!("{name}_json"), render::json::render(&r));
        insta::assert_snapshot!(format!("{name}_markdown"), render::markdown::render(&r));
    }
}

#[test]
fn exit_codes() {
    let code = |args: &[&str]| netsnap(args).status.code();
    assert_eq!(code(&["analyze", "fixtures/analyzer/healthy"]), Some(0));
    assert_eq!(
        code(&["analyze", "fixtures/analyzer/healthy", "--fail-on", "info"]),
        Some(1)
    );
    assert_eq!(code(&["analyze", "fixtures/analyzer/faulty"]), Some(1));
    assert_eq!(
        code(&["analyze", "fixtures/analyzer/faulty", "--only", "SVC001"]),
        Some(1)
    );
    assert_eq!(
        code(&["analyze", "fixtures/analyzer/faulty", "--only", "SVC004"]),
        Some(0)
    );
    assert_eq!(
        code(&[
            "analyze",
            "fixtures/analyzer/faulty",
            "--skip",
            "SVC",
            "--skip",
            "LNK",
            "--skip",
            "NF",
            "--skip",
            "CT",
            "--skip",
            "DNS",
            "--skip",
            "NB",
            "--skip",
            "BND",
            "--skip",
            "PRS",
            "--skip",
            "TRC"
        ]),
        Some(0)
    );
    assert_eq!(
        code(&["analyze", "fixtures/analyzer/ipvs", "--fail-on", "critical"]),
        Some(1)
    );
    assert_eq!(
        code(&[
            "analyze",
            "fixtures/analyzer/healthy",
            "fixtures/analyzer/faulty"
        ]),
        Some(1)
    );
    // Usage and input errors.
    assert_eq!(code(&["analyze", "fixtures/analyzer/missing"]), Some(2));
    assert_eq!(
        code(&["analyze", "fixtures/analyzer/healthy", "--only", "NOPE1"]),
        Some(2)
    );
    assert_eq!(
        code(&["analyze", "fixtures/analyzer/healthy", "--fail-on", "loud"]),
        Some(2)
    );
    assert_eq!(
        code(&[
            "analyze",
            "fixtures/analyzer/healthy",
            "--threshold",
            "bogus=1"
        ]),
        Some(2)
    );
    assert_eq!(code(&["analyze"]), Some(2));
}

#[test]
fn thresholds_from_flags_and_config() {
    // 970/1000 is critical by default; with critical at 0.99 it is a warning.
    let out = netsnap(&[
        "analyze",
        "fixtures/analyzer/faulty",
        "--only",
        "CT001",
        "--format",
        "json",
        "--threshold",
        "conntrack_critical=0.99",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["bundles"][0]["findings"][0]["severity"], "warning");
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("t.toml");
    std::fs::write(
        &cfg,
        "conntrack_warning = 0.99\nconntrack_critical = 0.995\n",
    )
    .expect("write");
    let out = netsnap(&[
        "analyze",
        "fixtures/analyzer/faulty",
        "--only",
        "CT001",
        "--config",
        cfg.to_str().expect("utf8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A node with 30 000 conntrack entries (several parse chunks) and many netns.
fn big_bundle(dir: &Path) -> PathBuf {
    let mut n = fixture::Node::healthy("node-big");
    for i in 0..30_000u32 {
        let (a, b) = ((i / 250) % 250, i % 250);
        n.conntrack.push(fixture::ct_tcp(
            &format!("10.244.{a}.{b}"),
            10_000 + (i % 50_000) as u16,
            "10.96.12.34",
            80,
            if i % 2 == 0 {
                "10.244.1.11"
            } else {
                "10.244.1.12"
            },
            8080,
            "ESTABLISHED",
        ));
    }
    n.conntrack_count = 30_004;
    for i in 0..40 {
        n.pods.push(fixture::Pod::new(
            "load",
            &format!("pod-{i}"),
            &format!("10.244.1.{}", 100 + i),
        ));
    }
    let p = dir.join("big");
    n.write(&p).expect("fixture node writes");
    p
}

#[test]
fn json_is_identical_with_one_and_two_threads() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = big_bundle(dir.path());
    let run = |threads: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "analyze",
                "--format",
                "json",
                "fixtures/analyzer/faulty",
                "fixtures/analyzer/ipvs",
            ])
            .arg(&big)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let one = run("1");
    let two = run("2");
    assert!(one == two, "JSON differs between RAYON_NUM_THREADS=1 and 2");
    let v: serde_json::Value = serde_json::from_slice(&one).expect("json");
    assert_eq!(v["bundles"][2]["counts"]["conntrack_entries"], 30_004);
    // The graph too.
    let graph = |threads: &str| {
        Command::new(env!("CARGO_BIN_EXE_netsnap"))
            .env("RAYON_NUM_THREADS", threads)
            .args(["graph", "--format", "json"])
            .arg(&big)
            .output()
            .expect("run")
            .stdout
    };
    assert!(graph("1") == graph("2"));
}

#[test]
fn graph_show_inspect_and_checks() {
    let out = netsnap(&["graph", "fixtures/analyzer/healthy"]);
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(
        dot.starts_with("digraph netsnap {") && dot.contains("label=\"veth\""),
        "{dot}"
    );
    let out = netsnap(&["graph", "--format", "json", "fixtures/analyzer/healthy"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("graph json");
    let edges = v["edges"].as_array().expect("edges");
    assert!(edges.iter().any(|e| e["type"] == "veth_peer"));
    assert!(edges
        .iter()
        .any(|e| e["type"] == "balances" && e["to"] == "ep:10.244.1.11:8080"));
    assert!(edges.iter().any(|e| e["type"] == "flows"));
    let show = |args: &[&str]| {
        let out = netsnap(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pods = show(&["show", "fixtures/analyzer/healthy", "pods"]);
    assert!(
        pods.contains("default/web-7f9c6b5d4-x2k8p") && pods.contains("eth0@veth"),
        "{pods}"
    );
    let svcs = show(&[
        "show",
        "fixtures/analyzer/healthy",
        "services",
        "--filter",
        "kube-dns",
    ]);
    assert!(
        svcs.contains("-> 10.244.1.10:53") && !svcs.contains("web"),
        "{svcs}"
    );
    let links = show(&[
        "show",
        "fixtures/analyzer/healthy",
        "links",
        "--netns",
        "root",
    ]);
    assert!(links.contains("cni0") && !links.contains("ino-"), "{links}");
    let routes = show(&[
        "show",
        "fixtures/analyzer/healthy",
        "routes",
        "--netns",
        "root",
    ]);
    assert!(routes.contains("default via 10.0.0.1 dev eth0"), "{routes}");
    let ct = show(&[
        "show",
        "fixtures/analyzer/faulty",
        "conntrack",
        "--filter",
        "10.96.0.10",
    ]);
    assert!(ct.contains("10.244.1.9:53"), "{ct}");
    let src = show(&["show", "fixtures/analyzer/faulty", "sources"]);
    assert!(
        src.contains("ip6tables-legacy-save") && src.contains("failed"),
        "{src}"
    );
    assert_eq!(
        netsnap(&[
            "show",
            "fixtures/analyzer/healthy",
            "links",
            "--netns",
            "nope"
        ])
        .status
        .code(),
        Some(2)
    );
    let ins = show(&["inspect", "fixtures/analyzer/faulty"]);
    assert!(
        ins.contains("Parse coverage") && ins.contains("line 96"),
        "{ins}"
    );
    let checks = show(&["checks"]);
    assert!(checks.contains("PRS001"));
}

#[test]
fn archive_bundles_work_too() {
    // The same fixture as a .tar.zst gives the same findings.
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("n.netsnap.tar.zst");
    let mut w = netsnap_schema::BundleWriter::new(dir.path());
    let b = Bundle::open(&fixture("healthy"), &ReadLimits::default()).expect("open");
    for s in &b.manifest.sources {
        match &s.path {
            Some(p) => w
                .add_bytes(s.clone(), b.file(p).expect("content"))
                .expect("add"),
            None => w.add_record(s.clone()).expect("add"),
        }
    }
    w.write_archive(b.manifest.clone(), &out).expect("archive");
    let o = netsnap(&["analyze", "--format", "json", out.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn demo_bundle_shows_its_injected_faults() {
    let r = report_of("../demo");
    let got = ids(&r, Severity::Warning);
    for id in [
        "SVC001", "SVC002", "CT005", "DNS001", "LNK005", "LNK006", "NF001",
    ] {
        assert!(got.contains(id), "demo lacks {id}: {got:?}");
    }
    let subjects: Vec<&str> = r.bundles[0]
        .findings
        .iter()
        .map(|f| f.subject.as_str())
        .collect();
    for s in [
        "service default/svc-0:http",
        "pod default/web-1",
        "pod default/web-2",
        "pod default/web-4",
        "service default/svc-3:echo -> 10.244.1.9",
    ] {
        assert!(
            subjects.contains(&s),
            "demo lacks subject {s}: {subjects:?}"
        );
    }
}

#[test]
fn invalid_json_source_is_a_prs_finding_not_a_silent_gap() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("bad");
    let b = Bundle::open(&fixture("healthy"), &ReadLimits::default()).expect("open");
    let mut w = netsnap_schema::BundleWriter::new(dir.path());
    let bad_path = "netns/root/sockets.json";
    for s in &b.manifest.sources {
        match &s.path {
            Some(p) if p == bad_path => w
                .add_bytes(s.clone(), b"[\n  {\"proto\": \"tcp\",\n  oops\n]\n")
                .expect("add"),
            Some(p) => w
                .add_bytes(s.clone(), b.file(p).expect("content"))
                .expect("add"),
            None => w.add_record(s.clone()).expect("add"),
        }
    }
    w.write_dir(b.manifest.clone(), &out).expect("write");
    let bad = Bundle::open(&out, &ReadLimits::default()).expect("open bad");
    let a = report::analyze(&bad, &Thresholds::default(), &Selection::default());
    let prs: Vec<_> = a.findings.iter().filter(|f| f.id == "PRS001").collect();
    assert_eq!(prs.len(), 1, "{:#?}", a.findings);
    assert_eq!(prs[0].subject, format!("file {bad_path}"));
    assert_eq!(prs[0].evidence[0].line, Some(3));
    assert!(
        prs[0].message.contains("invalid JSON"),
        "{}",
        prs[0].message
    );
    // The node's sockets are unknown, so no SVC003 is claimed for host-network endpoints.
    assert!(!a.findings.iter().any(|f| f.id == "SVC003"));
}

/// Odd but valid bundles: nothing but a manifest; netns files without an index;
/// garbage in every text source. The analyzer reports what it can and never panics.
#[test]
fn odd_bundles_do_not_panic() {
    use netsnap_schema::{Manifest, SourceRecord, SourceStatus};
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, files: &[(&str, &str)]| {
        let mut w = netsnap_schema::BundleWriter::new(dir.path());
        for (path, content) in files {
            let mut r = SourceRecord::new(*path, SourceStatus::Ok);
            r.path = Some(path.to_string());
            w.add_bytes(r, content.as_bytes()).expect("add");
        }
        let out = dir.path().join(name);
        w.write_dir(
            Manifest::new("0", "odd", "6.18", "2026-11-21T00:00:00Z", 0),
            &out,
        )
        .expect("write");
        Bundle::open(&out, &ReadLimits::default()).expect("open")
    };
    let garbage = "\u{0}\u{7f} not a thing\n-A\n*nat\nCOMMIT\nipv4 2 tcp\n[[[\n";
    let bundles = [
        write("empty", &[]),
        write(
            "no-index",
            &[
                ("netns/x/links.json", "[{\"ifindex\": 2, \"name\": \"eth0\", \"kind\": \"veth\", \"mtu\": 1500, \"state\": \"up\", \"link\": 9, \"link_netnsid\": 4}]"),
                ("netns/x/addrs.json", "[]"),
            ],
        ),
        write(
            "garbage",
            &[
                ("netfilter/iptables-nft-save.txt", garbage),
                ("netfilter/nft.json", garbage),
                ("ipvs/ip_vs.txt", garbage),
                ("netfilter/ipset.txt", garbage),
                ("conntrack/nf_conntrack.txt", garbage),
                ("conntrack/stat.txt", garbage),
                ("host/kmsg.txt", garbage),
                ("host/resolv.conf", garbage),
                ("host/sysctl.json", "{\"net.ipv4.ip_forward\": \"yes\", \"net.ipv4.ip_local_port_range\": \"9 1\"}"),
                ("conntrack/sysctl.json", "{\"node\": {\"net.netfilter.nf_conntrack_max\": \"0\"}}"),
                ("netns/index.json", "{\"netns\": [{\"id\": \"a\", \"inode\": 1, \"dev\": 1, \"is_root\": true, \"found_by\": []}, {\"id\": \"b\", \"inode\": 2, \"dev\": 1, \"is_root\": true, \"found_by\": []}]}"),
            ],
        ),
    ];
    for b in &bundles {
        let a = report::analyze(b, &Thresholds::default(), &Selection::default());
        let r = Report::new(vec![BundleReport::new("odd", &a)]);
        let _ = (
            render::text::render(&r, true),
            render::json::render(&r),
            render::markdown::render(&r),
        );
        let _ = render::dot::render_dot(&a.graph);
    }
    let a = report::analyze(&bundles[2], &Thresholds::default(), &Selection::default());
    let prs: BTreeSet<String> = a
        .findings
        .iter()
        .filter(|f| f.id == "PRS001")
        .map(|f| f.subject.clone())
        .collect();
    for p in [
        "netfilter/iptables-nft-save.txt",
        "conntrack/nf_conntrack.txt",
        "host/resolv.conf",
    ] {
        assert!(prs.contains(&format!("file {p}")), "{p}: {prs:?}");
    }
}
