//! The generator's bundles read back with the schema reader, parse without a single
//! unrecognised line, hold the sizes asked for, are byte-identical per seed, and show
//! the analyzer exactly the planted faults.

use netsnap_analyzer::check::{Selection, Severity, Thresholds};
use netsnap_analyzer::parse::{
    conntrack::parse_conntrack, ct_stat::parse_ct_stat, iptables::parse_iptables, iptables::Target,
    ipvs::parse_ipvs, nft::parse_kube_proxy_chain, nft::parse_nft, resolv::parse_resolv, Coverage,
};
use netsnap_scale::{write_bundle, Output, Plan, ProxyMode, Size, Spec, Written};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::NetnsIndex;
use netsnap_schema::{Bundle, ReadLimits};
use std::collections::BTreeSet;
use std::path::Path;

fn generate(spec: &Spec, dir: &Path, name: &str) -> Written {
    let plan = Plan::new(spec).expect("valid spec");
    write_bundle(&plan, &Output::Archive(dir.join(name))).expect("bundle written")
}

fn complete(c: &Coverage) {
    assert!(
        c.is_complete() && c.recognised > 0,
        "{}: {} recognised, unrecognised: {:?}",
        c.path,
        c.recognised,
        &c.unrecognised[..c.unrecognised.len().min(5)]
    );
}

fn text<'b>(b: &'b Bundle, path: &str) -> std::borrow::Cow<'b, str> {
    b.text(path)
        .unwrap_or_else(|| panic!("{path} missing from the bundle"))
}

/// (service ports, endpoints) as the iptables save shows them: KUBE-SVC chains plus
/// `has no endpoints` rejects, and DNAT rules.
fn iptables_counts(b: &Bundle) -> (usize, usize) {
    let parsed = parse_iptables(
        layout::IPTABLES_NFT_SAVE,
        &text(b, layout::IPTABLES_NFT_SAVE),
    );
    complete(&parsed.coverage);
    let rs = parsed.model;
    let nat = rs
        .tables
        .iter()
        .find(|t| t.name == "nat")
        .expect("nat table");
    let filter = rs
        .tables
        .iter()
        .find(|t| t.name == "filter")
        .expect("filter table");
    let svc = nat
        .chains
        .iter()
        .filter(|c| c.name.starts_with("KUBE-SVC-"))
        .count();
    let rejects = filter
        .rules
        .iter()
        .filter(|r| matches!(r.target, Some(Target::Reject { .. })))
        .count();
    let dnat = nat
        .rules
        .iter()
        .filter(|r| matches!(r.target, Some(Target::Dnat(_))))
        .count();
    (svc + rejects, dnat)
}

#[test]
fn small_bundle_reads_back_and_every_line_parses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Spec::preset(Size::Small);
    let w = generate(&spec, dir.path(), "small.netsnap.tar.zst");
    let b = Bundle::open(&w.bundle, &ReadLimits::default()).expect("reader accepts it");

    let (services, endpoints) = iptables_counts(&b);
    assert_eq!(services, spec.services);
    assert_eq!(endpoints, (spec.services - 1) * spec.endpoints);

    let ct = parse_conntrack(
        layout::CONNTRACK_ENTRIES,
        &text(&b, layout::CONNTRACK_ENTRIES),
    );
    complete(&ct.coverage);
    assert_eq!(ct.model.entries.len() as u64, spec.conntrack);
    // Every DNATed entry goes to a VIP; tuples never repeat.
    let tuples: BTreeSet<_> = ct
        .model
        .entries
        .iter()
        .map(|e| {
            (
                e.protonum,
                e.original.src,
                e.original.sport,
                e.original.dst,
                e.original.dport,
            )
        })
        .collect();
    assert_eq!(tuples.len(), ct.model.entries.len());

    let stat = parse_ct_stat(layout::CONNTRACK_STAT, &text(&b, layout::CONNTRACK_STAT));
    complete(&stat.coverage);
    assert!(stat
        .model
        .totals
        .iter()
        .any(|(k, v)| k == "entries" && *v == spec.conntrack));

    let v6 = parse_iptables(
        layout::IP6TABLES_NFT_SAVE,
        &text(&b, layout::IP6TABLES_NFT_SAVE),
    );
    complete(&v6.coverage);
    let nft = parse_nft(layout::NFT_JSON, &text(&b, layout::NFT_JSON));
    complete(&nft.coverage);

    let index: NetnsIndex = b
        .json(layout::NETNS_INDEX)
        .expect("index parses")
        .expect("index present");
    assert_eq!(index.netns.len(), spec.pods + 1);
    for ns in index.netns.iter().filter(|n| !n.is_root) {
        let path = layout::netns_path(&ns.id, NetnsFile::ResolvConf);
        complete(&parse_resolv(&path, &text(&b, &path)).coverage);
        for f in NetnsFile::ALL {
            assert!(b.file(&layout::netns_path(&ns.id, f)).is_some());
        }
    }

    // planted.json sits beside the bundle, not in it, and says what was built.
    assert!(w.planted_path.exists());
    assert_eq!(w.planted_path.parent(), w.bundle.parent());
    assert!(b.paths().all(|p| !p.contains("planted")));
    let c = &w.planted.counts;
    assert_eq!(
        (c.services, c.endpoints, c.pods, c.netns, c.conntrack),
        (
            spec.services,
            endpoints,
            spec.pods,
            spec.pods + 1,
            spec.conntrack
        )
    );
}

#[test]
fn nftables_mode_parses_and_holds_every_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = Spec::preset(Size::Small);
    spec.proxy = ProxyMode::Nftables;
    spec.services = 40;
    let w = generate(&spec, dir.path(), "nft.netsnap.tar.zst");
    let b = Bundle::open(&w.bundle, &ReadLimits::default()).expect("reader accepts it");
    let nft = parse_nft(layout::NFT_JSON, &text(&b, layout::NFT_JSON));
    complete(&nft.coverage);
    let kinds: Vec<String> = nft
        .model
        .chains
        .iter()
        .filter_map(|c| parse_kube_proxy_chain(&c.name))
        .map(|k| k.kind)
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("service"), spec.services - 1);
    assert_eq!(count("endpoint"), (spec.services - 1) * spec.endpoints);
    // The iptables saves hold kubelet's chains only, and still parse completely.
    let save = parse_iptables(
        layout::IPTABLES_NFT_SAVE,
        &text(&b, layout::IPTABLES_NFT_SAVE),
    );
    complete(&save.coverage);
    assert!(save
        .model
        .tables
        .iter()
        .all(|t| t.chains.iter().all(|c| !c.name.starts_with("KUBE-SVC-"))));
}

#[test]
fn custom_sizes_are_honoured() {
    let spec = Spec {
        services: 120,
        endpoints: 4,
        pods: 30,
        conntrack: 7_000,
        label: "custom".into(),
        ..Spec::preset(Size::Small)
    };
    let plan = Plan::new(&spec).expect("valid spec");
    assert_eq!(plan.services.len(), 120);
    assert_eq!(plan.endpoint_count(), 119 * 4);
    assert_eq!(plan.pods.len(), 30);
    let mut ct = Vec::new();
    plan.write_conntrack(&mut ct).expect("render");
    let ct = parse_conntrack("ct", &String::from_utf8_lossy(&ct));
    complete(&ct.coverage);
    assert_eq!(ct.model.entries.len(), 7_000);
    let mut vs = Vec::new();
    plan.write_ip_vs(&mut vs).expect("render");
    let vs = parse_ipvs("ip_vs", &String::from_utf8_lossy(&vs));
    complete(&vs.coverage);
    assert_eq!(vs.model.services.len(), 120);
    // Healthy: no faults, every service has its endpoints.
    let healthy = Plan::new(&Spec {
        faults: false,
        ..spec.clone()
    })
    .expect("valid spec");
    assert!(healthy.faults.is_empty());
    assert_eq!(healthy.endpoint_count(), 120 * 4);
    // Nonsense sizes are refused, not clamped.
    for bad in [
        Spec {
            services: 2,
            ..spec.clone()
        },
        Spec {
            pods: 0,
            ..spec.clone()
        },
        Spec {
            conntrack: 30 * 28_001,
            ..spec.clone()
        },
    ] {
        assert!(Plan::new(&bad).is_err());
    }
}

#[test]
fn same_seed_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Spec {
        services: 60,
        pods: 12,
        conntrack: 3_000,
        ..Spec::preset(Size::Small)
    };
    let read = |w: &Written| std::fs::read(&w.bundle).expect("read bundle");
    let a = generate(&spec, dir.path(), "a.netsnap.tar.zst");
    let b = generate(&spec, dir.path(), "b.netsnap.tar.zst");
    assert!(read(&a) == read(&b), "same seed, different bytes");
    assert_eq!(a.planted.faults, b.planted.faults);
    assert_eq!(a.planted.counts, b.planted.counts);
    // The unpacked form holds the same files (fixtures are directories).
    let plan = Plan::new(&spec).expect("valid spec");
    let d = write_bundle(&plan, &Output::Dir(dir.path().join("unpacked"))).expect("dir");
    assert_eq!(
        d.planted_path.file_name().and_then(|n| n.to_str()),
        Some("unpacked.planted.json")
    );
    let (x, y) = (
        Bundle::open(&a.bundle, &ReadLimits::default()).expect("archive"),
        Bundle::open(&d.bundle, &ReadLimits::default()).expect("directory"),
    );
    assert_eq!(x.manifest, y.manifest);
    assert!(x.paths().eq(y.paths()));
    let c = generate(
        &Spec {
            seed: 2,
            ..spec.clone()
        },
        dir.path(),
        "c.netsnap.tar.zst",
    );
    assert!(read(&a) != read(&c), "another seed, same bytes");
}

/// The analyzer raises every planted fault, and nothing else at warning or above.
fn analyzer_sees_exactly_the_planted_faults(proxy: ProxyMode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Spec {
        proxy,
        ..Spec::preset(Size::Small)
    };
    let w = generate(&spec, dir.path(), "faults.netsnap.tar.zst");
    let b = Bundle::open(&w.bundle, &ReadLimits::default()).expect("reader accepts it");
    let a = netsnap_analyzer::report::analyze(&b, &Thresholds::default(), &Selection::default());
    let found: BTreeSet<(String, String)> = a
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| (f.id.to_string(), f.subject.clone()))
        .collect();
    let planted: BTreeSet<(String, String)> = w
        .planted
        .faults
        .iter()
        .map(|f| (f.finding.clone(), f.subject.clone()))
        .collect();
    assert_eq!(planted.len(), 5);
    assert_eq!(found, planted);
}

#[test]
fn analyzer_finds_the_planted_faults_iptables() {
    analyzer_sees_exactly_the_planted_faults(ProxyMode::Iptables);
}

#[test]
fn analyzer_finds_the_planted_faults_nftables() {
    analyzer_sees_exactly_the_planted_faults(ProxyMode::Nftables);
}

/// Nodes of one generated cluster (`--node-index`): each node shows the analyzer its
/// own planted faults and nothing else; as one cluster the only cluster finding is the
/// planted stale endpoint in node 0's pod CIDR (CLU003, from the other nodes): no
/// overlapping CIDRs, no kube-proxy drift, no pod IP on two nodes.
#[test]
fn cluster_nodes_differ_only_where_nodes_do() {
    use netsnap_analyzer::cluster::{self, NodeSummary};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut summaries = Vec::new();
    let mut cidrs = BTreeSet::new();
    for i in 0..3u32 {
        let spec = Spec {
            node_index: Some(i),
            hostname: format!("scale-small-{i}"),
            ..Spec::preset(Size::Small)
        };
        let plan = Plan::new(&spec).expect("valid spec");
        assert!(cidrs.insert(plan.pod_cidr), "node {i}: pod CIDR reused");
        let w = write_bundle(
            &plan,
            &Output::Archive(dir.path().join(format!("n{i}.tar.zst"))),
        )
        .expect("bundle written");
        let b = Bundle::open(&w.bundle, &ReadLimits::default()).expect("reader accepts it");
        let sel = Selection::default();
        let a = netsnap_analyzer::report::analyze(&b, &Thresholds::default(), &sel);
        let found: BTreeSet<(String, String)> = a
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| (f.id.to_string(), f.subject.clone()))
            .collect();
        let planted: BTreeSet<(String, String)> = w
            .planted
            .faults
            .iter()
            .map(|f| (f.finding.clone(), f.subject.clone()))
            .collect();
        // Node 0 owns the stale endpoint's CIDR (SVC002); the others see it as remote.
        assert_eq!(planted.len(), if i == 0 { 5 } else { 4 }, "node {i}");
        assert_eq!(found, planted, "node {i}");
        summaries.push(NodeSummary::of(&a));
    }
    let findings = cluster::check(&summaries, &Selection::default());
    let ids: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f.finding.id.to_string(), f.finding.subject.clone()))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].0, "CLU003", "{ids:?}");
    assert_eq!(
        findings[0].nodes,
        ["scale-small-1", "scale-small-2", "scale-small-0"],
        "programmed by nodes 1 and 2, owned by node 0"
    );
}
