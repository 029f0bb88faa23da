//! The differential across nodes: a three-node lab joined by a Flannel-style VXLAN
//! overlay (`netsnap_tests::lab::cluster`), every node collected with the real
//! collector and traced as one cluster (`netsnap_analyzer::trace::cluster`), against
//! the same requests sent for real. Cases: every live pod to every service port (each
//! workload service has an endpoint on every node, kube-dns only on the first: the
//! trace's branches to other nodes' endpoints are followed there) and to every pod of
//! the other nodes (its first listening port and a closed one). Scenarios, cumulative
//! on one cluster: healthy; node 2 lost node 3's VTEP (FDB entry); then an endpoint
//! pod of node 3 deleted; then node 3 also given node 1's pod CIDR on cni0 (the kernel
//! keeps flannel's route first, so traffic to node 1 still crosses the overlay). Judged as `judge` does (`judge_with`, `predicts`); the
//! agreement figure must be 100 %. The `netsnap trace` CLI is run once on the healthy
//! bundles.

use super::{judge_with, Case, Outcome, Target, CLOSED_PORT};
use netsnap_analyzer::trace::cluster::Cluster;
use netsnap_analyzer::trace::request::Ask;
use netsnap_analyzer::trace::{packet::Proto, Prepared};
use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::collector::analyzer_bin;
use netsnap_tests::datapath_check as dc;
use netsnap_tests::lab::cluster::LabCluster;
use netsnap_tests::lab::probe::Probe;
use netsnap_tests::lab::{require_lab, CniMode, Lab, Protocol};
use netsnap_tests::notice;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

/// Every live pod of each node to every pod of the other nodes: its first listening
/// port (when it has one and is live) and a closed one.
fn cross_node_cases(c: &LabCluster) -> Vec<Case> {
    let mut out = Vec::new();
    for (ni, lab) in c.nodes.iter().enumerate() {
        for (i, pod) in lab.pods().iter().enumerate().filter(|(_, p)| !p.deleted) {
            let from = format!("{}/{}", pod.namespace, pod.name);
            for (nj, other) in c.nodes.iter().enumerate().filter(|(nj, _)| *nj != ni) {
                for (j, peer) in other.pods().iter().enumerate() {
                    let open = peer.listen_ports.first().filter(|_| !peer.deleted);
                    for port in open.copied().into_iter().chain([CLOSED_PORT]) {
                        let to = SocketAddr::new(IpAddr::V4(peer.ip), port);
                        out.push(Case {
                            what: format!(
                                "{from} (node {}) → pod {}/{} (node {}) {to}",
                                ni + 1,
                                peer.namespace,
                                peer.name,
                                nj + 1
                            ),
                            from: i,
                            target: Target::Pod(j),
                            ask: Ask {
                                from: from.clone(),
                                to: to.to_string(),
                                proto: Some(Proto::Tcp),
                                ..Ask::default()
                            },
                            probe: Probe {
                                netns: pod.netns_path.clone(),
                                proto: Protocol::Tcp,
                                to,
                                payload: Vec::new(),
                            },
                            proto: Protocol::Tcp,
                        });
                    }
                }
            }
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    agree: usize,
    total: usize,
    service_cases: usize,
    pod_cases: usize,
    crossing: usize,
    reprobed: usize,
    disagreements: Vec<String>,
}

/// Collects every node, traces every case across the bundles, sends it for real.
fn check(c: &LabCluster, label: &str, tally: &mut Tally) {
    let mut cases: Vec<Case> = c
        .nodes
        .iter()
        .flat_map(|lab| super::cases(lab).into_iter())
        .filter(|k| matches!(k.target, Target::Service(_)))
        .collect();
    tally.service_cases += cases.len();
    let pods = cross_node_cases(c);
    tally.pod_cases += pods.len();
    cases.extend(pods);
    let paths: Vec<PathBuf> = c.nodes.iter().map(|l| collect_lab(l, label, &[])).collect();
    let bundles: Vec<Bundle> = paths
        .iter()
        .map(|p| Bundle::open(p, &ReadLimits::default()).expect("bundle opens"))
        .collect();
    if label == "healthy" {
        cli_follows_a_request_across_nodes(c, &paths);
    }
    let prepared: Vec<Prepared> = bundles.iter().map(Prepared::new).collect();
    let nodes: Vec<(String, &Prepared)> = c
        .nodes
        .iter()
        .zip(&prepared)
        .map(|(l, p)| (l.name().to_string(), p))
        .collect();
    let cluster = Cluster::new(&nodes, Default::default());
    let labs: Vec<&Lab> = c.nodes.iter().collect();
    // Traces with a branch that moved to another node.
    let crossing = std::cell::Cell::new(0);
    let judged = judge_with(&labs, label, &cases, |k| {
        let mut t = cluster.trace_ask(&k.ask).map_err(|e| e.to_string())?;
        let t = t.remove(0);
        let crossed = t
            .verdicts
            .iter()
            .any(|b| b.hops.iter().any(|h| h.at.ends_with("node")));
        crossing.set(crossing.get() + usize::from(crossed));
        Ok(t)
    });
    tally.crossing += crossing.get();
    for j in judged {
        tally.total += 1;
        tally.reprobed += usize::from(j.reprobed);
        match j.outcome {
            Outcome::Agree => tally.agree += 1,
            _ => tally
                .disagreements
                .push(format!("{} ({:?})\n{}", j.line, j.outcome, j.trace)),
        }
    }
}

/// `netsnap trace A B C --from POD --to POD:PORT` on the nodes' bundles (which share
/// a hostname and a file name: the nodes are `node-1` …): node 1's first pod to node
/// 3's first pod's port is delivered there and back, through node 3.
fn cli_follows_a_request_across_nodes(c: &LabCluster, paths: &[PathBuf]) {
    let (from, to) = (&c.nodes[0].pods()[0], &c.nodes[2].pods()[0]);
    let out = Command::new(analyzer_bin().expect("netsnap"))
        .arg("trace")
        .args(paths)
        .args(["--from", &format!("{}/{}", from.namespace, from.name)])
        .args(["--to", &format!("{}:{}", to.ip, to.listen_ports[0])])
        .output()
        .expect("run netsnap trace");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "on node node-1 →",
        "delivered 100.0 %",
        "node-3: root flannel.1  node: arrives on node node-3",
        "reply node: arrives on node node-1",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

#[test]
fn traces_across_nodes_agree_with_the_kernel() {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Flannel) {
        return;
    }
    // Two workload pods per node; service i has one endpoint on each node (pod i).
    let base = Lab::builder("trx")
        .pods(2)
        .services(2)
        .endpoints_per_service(1)
        .traffic(false);
    let mut c = LabCluster::build(base, 3).expect("build the cluster");
    let fps = c.footprints();
    let mut tally = Tally::default();
    check(&c, "healthy", &mut tally);
    c.fault_fdb_missing(1, 2).expect("fdb fault");
    check(&c, "fdb-missing", &mut tally);
    let gone = c.nodes[2].pods()[0].ip;
    c.fault_endpoint_pod_gone(2, 0).expect("pod fault");
    check(&c, "fdb-missing+endpoint-gone", &mut tally);
    c.fault_cidr_overlap(2, 0).expect("CIDR overlap");
    check(&c, "fdb-missing+endpoint-gone+cidr-overlap", &mut tally);
    notice(&format!(
        "trace across nodes vs kernel: {}/{} requests agree ({:.1} %) on a 3-node flannel VXLAN lab \
         ({} pods, {} service ports with endpoints on every node, kube-dns on node 1), 4 cumulative \
         scenarios (healthy; node 2 without node 3's FDB entry; node 3's endpoint pod {gone} deleted; \
         node 3 also given node 1's pod CIDR): \
         {} pod → service port cases, {} pod → pod-of-another-node cases (a listening and a closed port); \
         {} traces followed a branch onto another node; {} sent again alone after disagreeing; \
         `netsnap trace` CLI on the 3 healthy bundles: node 1 → node 3 pod delivered via node-3 and back",
        tally.agree,
        tally.total,
        100.0 * tally.agree as f64 / tally.total.max(1) as f64,
        c.nodes.iter().map(|l| l.pods().len()).sum::<usize>(),
        c.nodes[0].services().len(),
        tally.service_cases,
        tally.pod_cases,
        tally.crossing,
        tally.reprobed
    ));
    assert!(tally.crossing > 0, "no trace crossed a node");
    assert!(
        tally.disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        tally.disagreements.len(),
        tally.total,
        tally.disagreements.join("\n")
    );
    c.teardown().expect("teardown");
    for fp in &fps {
        netsnap_tests::lab::assert_no_leaks(fp);
    }
}
