//! Hand-made summaries of a healthy three-node flannel-like cluster for the unit
//! tests of the cluster checks, and one fault per CLU id for the catalog's coverage
//! test. (The integration tests go through real fixture bundles.)

use super::summary::{
    Fact, FdbFact, NeighFact, NodeSummary, OverlayFact, PodFact, RouteFact, ServiceFact,
};
use super::ClusterFinding;
use crate::check::{CheckId, Evidence, Selection};
use std::collections::BTreeMap;
use std::net::IpAddr;

fn ev(path: &str, line: usize, excerpt: &str) -> Evidence {
    Evidence::new(path, Some(line), excerpt)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const MACS: [&str; 3] = [
    "0a:00:00:00:00:01",
    "0a:00:00:00:00:02",
    "0a:00:00:00:00:03",
];

/// node-a, node-b, node-c: 10.0.0.11–13, pod CIDRs 10.244.1–3.0/24, flannel.1 with a
/// route, neighbour and FDB entry to each other node; web has an endpoint on node-a
/// and node-b, dns one on node-a; the same settings everywhere.
pub fn healthy_nodes() -> Vec<NodeSummary> {
    (0..3).map(node).collect()
}

fn node(i: usize) -> NodeSummary {
    let n = i + 1;
    let name = ["node-a", "node-b", "node-c"][i];
    let mut pods = BTreeMap::new();
    let pod_names: &[(&str, &str)] = match i {
        0 => &[
            ("10.244.1.10", "kube-system/coredns"),
            ("10.244.1.11", "default/web-a"),
        ],
        1 => &[("10.244.2.11", "default/web-b")],
        _ => &[("10.244.3.20", "default/client")],
    };
    for (k, (a, p)) in pod_names.iter().enumerate() {
        pods.insert(
            ip(a),
            PodFact {
                name: p.to_string(),
                evidence: ev(&format!("netns/ino-{k}/addrs.json"), 12, a),
            },
        );
    }
    let mut services = BTreeMap::new();
    let svc = |display: &str, eps: &[&str]| {
        std::sync::Arc::new(ServiceFact {
            display: display.into(),
            internal_local: false,
            endpoints: eps
                .iter()
                .enumerate()
                .map(|(k, e)| (e.parse().expect("endpoint"), Some(100 + k as u32)))
                .collect(),
            path: "netfilter/iptables-nft-save.txt".into(),
            line: Some(50),
            endpoint_path: "netfilter/iptables-nft-save.txt".into(),
        })
    };
    services.insert(
        "10.96.12.34:80/tcp".into(),
        svc(
            "default/web:http",
            &["10.244.1.11:8080", "10.244.2.11:8080"],
        ),
    );
    services.insert(
        "10.96.0.10:53/udp".into(),
        svc("kube-system/kube-dns:dns", &["10.244.1.10:53"]),
    );
    let others: Vec<usize> = (0..3).filter(|&o| o != i).collect();
    let overlay = OverlayFact {
        ifindex: 4,
        name: "flannel.1".into(),
        kind: "vxlan".into(),
        mtu: 1450,
        local: Some(ip(&format!("10.0.0.1{n}"))),
        mac: Some(MACS[i].into()),
        external: false,
        learns_fdb: false,
        learns_neigh: false,
        fdb: others
            .iter()
            .map(|&o| FdbFact {
                mac: MACS[o].into(),
                dst: Some(ip(&format!("10.0.0.1{}", o + 1))),
                evidence: ev("netns/root/neigh.json", 30 + o, "fdb"),
            })
            .collect(),
        neigh: others
            .iter()
            .map(|&o| NeighFact {
                ip: ip(&format!("10.244.{}.0", o + 1)),
                lladdr: Some(MACS[o].into()),
                state: "PERMANENT".into(),
                evidence: ev("netns/root/neigh.json", 10 + o, "neigh"),
            })
            .collect(),
        evidence: ev("netns/root/links.json", 40, "flannel.1 vxlan"),
    };
    let routes = others
        .iter()
        .map(|&o| RouteFact {
            dst: format!("10.244.{}.0/24", o + 1).parse().expect("cidr"),
            gateway: Some(ip(&format!("10.244.{}.0", o + 1))),
            dev: Some("flannel.1".into()),
            overlay: Some(0),
            kind: "unicast".into(),
            evidence: ev("netns/root/routes.json", 20 + o, "route"),
        })
        .collect();
    let fact = |v: &str, line: usize| Fact {
        value: v.to_string(),
        evidence: ev("host/sysctl.json", line, v),
    };
    NodeSummary {
        hostname: name.into(),
        addresses: vec![Fact {
            value: ip(&format!("10.0.0.1{n}")),
            evidence: ev("netns/root/addrs.json", 5, "eth0"),
        }],
        pod_cidrs: vec![Fact {
            value: format!("10.244.{n}.0/24").parse().expect("cidr"),
            evidence: ev("netns/root/addrs.json", 9, "cni0"),
        }],
        pods,
        services,
        overlays: vec![overlay],
        routes,
        routes_path: "netns/root/routes.json".into(),
        sysctls: super::summary::DRIFT_SYSCTLS
            .iter()
            .enumerate()
            .map(|(k, key)| {
                let v = match *key {
                    "net.netfilter.nf_conntrack_max" => "262144",
                    "net.ipv4.conf.all.rp_filter" => "0",
                    _ => "1",
                };
                (key.to_string(), fact(v, k + 2))
            })
            .collect(),
        service_proxy: Some(Fact {
            value: "kube-proxy iptables (nft backend)".into(),
            evidence: ev("netfilter/iptables-nft-save.txt", 3, "KUBE-SERVICES"),
        }),
    }
}

/// The cluster findings of `nodes` with every check selected.
pub fn cluster(nodes: &[NodeSummary]) -> Vec<ClusterFinding> {
    super::check(nodes, &Selection::default())
}

/// The finding of `id` on `subject`, or a panic listing what was found.
pub fn find(all: &[ClusterFinding], id: CheckId, subject: &str) -> ClusterFinding {
    all.iter()
        .find(|f| f.finding.id == id && f.finding.subject == subject)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} on {subject:?} in {all:#?}"))
}

/// A named way of breaking the healthy cluster.
pub struct Fault {
    pub name: &'static str,
    pub apply: fn(&mut Vec<NodeSummary>),
}

/// One fault per cluster check (the coverage test runs them all).
pub const FAULTS: &[Fault] = &[
    Fault {
        name: "two nodes with one pod CIDR",
        apply: |n| n[2].pod_cidrs[0].value = n[0].pod_cidrs[0].value,
    },
    Fault {
        name: "a node with a stale endpoint set",
        apply: |n| {
            if let Some(s) = n[1].services.values_mut().next() {
                std::sync::Arc::make_mut(s).endpoints.clear();
            }
        },
    },
    Fault {
        name: "an endpoint on another node whose pod is gone",
        apply: |n| {
            n[1].pods.clear();
        },
    },
    Fault {
        name: "one pod IP on two nodes",
        apply: |n| {
            let pods = n[0].pods.clone();
            n[1].pods.extend(pods);
        },
    },
    Fault {
        name: "no route to another node's pods",
        apply: |n| n[0].routes.clear(),
    },
    Fault {
        name: "ip_forward off on one node",
        apply: |n| {
            if let Some(f) = n[2].sysctls.get_mut("net.ipv4.ip_forward") {
                f.value = "0".into();
            }
        },
    },
];

#[test]
fn healthy_cluster_has_no_finding() {
    let f = cluster(&healthy_nodes());
    assert!(f.is_empty(), "{f:#?}");
}
