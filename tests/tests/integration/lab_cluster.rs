//! The multi-node lab (`netsnap_tests::lab::cluster`): three nodes joined by a
//! Flannel-style VXLAN overlay through one underlay, pods on each, kube-proxy rules
//! from one service list whose endpoints span the nodes. Real requests cross between
//! every pair of nodes; every node is collected healthy, then with each cluster fault
//! injected (CLU001–CLU006), whose kernel-level facts are asserted here; the cluster
//! checks run on the collected bundles at [`assert_cluster_findings`]. The nodes are left to
//! the stale-lab cleanup at the end (owner records of a dead process): every node
//! must go, with nothing left.

use netsnap_analyzer::check::Selection;
use netsnap_analyzer::cluster;
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::datapath_check as dc;
use netsnap_tests::lab::cluster::{rp_filter, ClusterFault, LabCluster};
use netsnap_tests::lab::flannel::{tcp_listener, OVERLAY_MTU, VXLAN_DEVICE};
use netsnap_tests::lab::{assert_no_leaks, cleanup_stale, ok_json, ok_stdout, require_lab};
use netsnap_tests::lab::{CniMode, Lab};
use netsnap_tests::notice;
use std::path::PathBuf;

/// One collected bundle per node: (node lab name, bundle path).
type NodeBundles = Vec<(String, PathBuf)>;

/// Analyses `bundles` as one cluster (each node on its own, reduced to its summary,
/// then the cluster checks CLU001–CLU006, nodes named by their lab names) and asserts:
/// with no `faults`, no cluster finding; else, for each fault, a finding with its ID
/// that involves its node and whose subject names its subject. Returns the per-node
/// finding counts.
fn assert_cluster_findings(bundles: &NodeBundles, faults: &[ClusterFault]) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut summaries = Vec::new();
    for (_, path) in bundles {
        let b = dc::open(path);
        let a = dc::analyze(&b);
        counts.push(a.findings.len());
        summaries.push(cluster::NodeSummary::of(&a));
    }
    let names: Vec<String> = bundles.iter().map(|(n, _)| n.clone()).collect();
    let found = cluster::check_named(&summaries, &names, &Selection::default());
    let described = found
        .iter()
        .map(|c| {
            let f = &c.finding;
            format!(
                "{} {:?} [{}] on {:?}: {}",
                f.id, f.severity, f.subject, c.nodes, f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    if faults.is_empty() {
        assert!(
            found.is_empty(),
            "healthy cluster has cluster findings:\n{described}"
        );
    }
    let missing: Vec<String> = faults
        .iter()
        .filter(|f| {
            !found.iter().any(|c| {
                c.finding.id.as_str() == f.finding
                    && c.nodes.contains(&f.node)
                    && c.finding.subject.contains(&f.subject)
            })
        })
        .map(|f| format!("{} {} on {} [{}]", f.finding, f.kind, f.node, f.subject))
        .collect();
    assert!(
        missing.is_empty(),
        "cluster faults not reported: {missing:#?}\ncluster findings:\n{described}"
    );
    counts
}

/// Collects every node under `label`.
fn collect_all(c: &LabCluster, label: &str) -> NodeBundles {
    c.nodes
        .iter()
        .map(|lab| (lab.name().to_string(), collect_lab(lab, label, &[])))
        .collect()
}

/// Each node's overlay: an FDB entry, neighbour and route per other node, MTU 1450.
fn check_overlay(c: &LabCluster) {
    for (i, lab) in c.nodes.iter().enumerate() {
        let fdb = ok_stdout(&lab.node(&["bridge", "fdb", "show", "dev", VXLAN_DEVICE]));
        for (j, peer) in c.vteps.iter().enumerate().filter(|(j, _)| *j != i) {
            let entry = format!("{} dst {} self permanent", peer.mac, peer.node_ip);
            assert!(
                fdb.contains(&entry),
                "node {i}: {entry} (node {j}) missing:\n{fdb}"
            );
            let route = ok_stdout(&lab.node(&["ip", "route", "show", &peer.subnet.to_string()]));
            assert!(route.contains(VXLAN_DEVICE), "node {i} → node {j}: {route}");
        }
        assert_eq!(overlay_mtu(lab), OVERLAY_MTU);
    }
}

fn overlay_mtu(lab: &Lab) -> u32 {
    let link = ok_json(&lab.node(&["ip", "-j", "link", "show", "dev", VXLAN_DEVICE]));
    link[0]["mtu"].as_u64().expect("mtu") as u32
}

/// Every live workload pod of each node requests a listening pod of every other node.
fn cross_node_requests(c: &LabCluster) -> usize {
    let mut n = 0;
    for from in &c.nodes {
        for to in c.nodes.iter().filter(|l| l.name() != from.name()) {
            let (pi, target) = tcp_listener(to).expect("a listening pod");
            for i in (0..from.config().pods).filter(|&i| !from.pods()[i].deleted) {
                let reply = from.tcp_request(i, target).expect("cross-node request");
                assert_eq!(reply, to.pods()[pi].name, "{} → {target}", from.name());
                n += 1;
            }
        }
    }
    n
}

/// What the kernel of each node shows after the faults (see `inject`).
fn check_fault_facts(c: &LabCluster, rp_before: &str) {
    let [n1, n2, n3] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];
    // CLU001: node 3 holds node 1's gateway on cni0 and routes its CIDR there.
    let addr = ok_stdout(&n3.node(&["ip", "-4", "addr", "show", "dev", "cni0"]));
    assert!(
        addr.contains(&format!("inet {}/24", n1.gateway_ip())),
        "{addr}"
    );
    let route = ok_stdout(&n3.node(&["ip", "route", "show", &n1.pod_cidr()]));
    assert!(route.contains("dev cni0"), "{route}");
    // CLU002: node 1's rules lost service 0's endpoint on node 3; node 2's have it.
    let ep = n1.services()[0].endpoints.len();
    assert_eq!(ep + 1, n2.services()[0].endpoints.len());
    let missing = n2.services()[0].endpoints[ep].to_string();
    assert!(!n1.iptables_save(false).unwrap().contains(&missing));
    assert!(n2.iptables_save(false).unwrap().contains(&missing));
    // CLU003: node 2's pod 1 is gone; node 1 still DNATs to it.
    let gone = &n2.pods()[1];
    assert!(gone.deleted && !gone.netns_path.exists());
    assert!(n1
        .iptables_save(false)
        .unwrap()
        .contains(&gone.ip.to_string()));
    // CLU004: node 3's pod 0 also has node 1's pod 0 address.
    let dup = n1.pods()[0].ip;
    let addrs = ok_stdout(&n3.pod_exec(0, &["ip", "-4", "addr", "show", "dev", "eth0"]));
    assert!(addrs.contains(&format!("inet {dup}/32")), "{addrs}");
    // CLU005: node 2 has no FDB entry for node 3's VTEP, and cannot reach its pods.
    let fdb = ok_stdout(&n2.node(&["bridge", "fdb", "show", "dev", VXLAN_DEVICE]));
    assert!(!fdb.contains(&c.vteps[2].mac), "{fdb}");
    let to_3 = tcp_listener(n3).unwrap().1;
    assert!(n2.tcp_request(0, to_3).is_err(), "node 2 → {to_3} answered");
    // CLU005: node 3's overlay MTU disagrees.
    assert_eq!(overlay_mtu(n3), 1400);
    assert_eq!(overlay_mtu(n1), OVERLAY_MTU);
    // CLU006: node 2's rp_filter differs from the others'.
    assert_ne!(rp_filter(n2).unwrap(), rp_before);
    assert_eq!(rp_filter(n1).unwrap(), rp_before);
}

/// Every cluster fault, each on its own node and subject.
fn inject(c: &mut LabCluster) {
    c.fault_cidr_overlap(2, 0).expect("CIDR overlap");
    c.fault_proxy_drift(0, 0).expect("kube-proxy drift");
    c.fault_endpoint_pod_gone(1, 1).expect("endpoint pod gone");
    c.fault_duplicate_pod_ip(2, 0, 0, 0)
        .expect("duplicate pod IP");
    c.fault_fdb_missing(1, 2).expect("FDB entry missing");
    c.fault_overlay_mtu(2, 1400).expect("overlay MTU");
    c.fault_settings_drift(1).expect("settings drift");
}

#[test]
fn lab_cluster_three_nodes_and_cluster_faults() {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Flannel) {
        return;
    }
    // Three workload pods per node; service i has one endpoint on each node (pod i).
    let base = Lab::builder("cluster")
        .pods(3)
        .services(3)
        .endpoints_per_service(1)
        .traffic(false);
    let mut c = LabCluster::build(base, 3).expect("build the cluster");
    let fps = c.footprints();
    check_overlay(&c);
    let programmed = |l: &Lab| {
        let s = l.services().iter();
        s.map(|s| (s.vip(), s.endpoints.clone()))
            .collect::<Vec<_>>()
    };
    for lab in &c.nodes {
        assert_eq!(programmed(lab), programmed(&c.nodes[0]), "one service list");
    }
    let requests = cross_node_requests(&c);
    let healthy = collect_all(&c, "healthy");
    let healthy_counts = assert_cluster_findings(&healthy, &[]);
    let rp_before = rp_filter(&c.nodes[0]).unwrap();
    inject(&mut c);
    check_fault_facts(&c, &rp_before);
    let faulty = collect_all(&c, "faults");
    let fault_counts = assert_cluster_findings(&faulty, c.faults());
    let faults: Vec<String> = c
        .faults()
        .iter()
        .map(|f| format!("{} {} on {} ({})", f.finding, f.kind, f.node, f.subject))
        .collect();
    // Stale cleanup: every node owned by a dead process goes, with nothing left.
    for lab in &c.nodes {
        // PID 4194304 is above the kernel's largest pid_max: no process has it.
        std::fs::write(lab.dir().join("owner"), "4194304 1").unwrap();
    }
    let removed = cleanup_stale();
    for lab in &c.nodes {
        assert!(
            removed.iter().any(|n| n == lab.name()),
            "{} not removed",
            lab.name()
        );
    }
    for fp in &fps {
        assert_no_leaks(fp);
    }
    notice(&format!(
        "lab_cluster: 3 flannel VXLAN nodes ({}), {} pods, {} service ports on every node with endpoints on every node; \
         {requests} cross-node pod requests answered; healthy per-node findings {healthy_counts:?}; \
         {} cluster faults injected, kernel facts asserted: {}; per-node findings with faults {fault_counts:?} \
         (cluster checks: none on the healthy cluster, every fault reported on its node and subject); stale cleanup removed all 3 nodes, 0 left",
        c.nodes.iter().map(|l| l.name().to_string()).collect::<Vec<_>>().join(", "),
        c.nodes.iter().map(|l| l.pods().len()).sum::<usize>(),
        c.nodes[0].services().len(),
        faults.len(),
        faults.join("; ")
    ));
    c.teardown().expect("teardown after the cleanup");
}
