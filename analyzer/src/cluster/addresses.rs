//! Who owns which address across the nodes: overlapping pod CIDRs (CLU001), endpoints
//! in another node's pod CIDR that no pod owns (CLU003), one pod IP on two nodes
//! (CLU004).

use super::{more, Cluster, ClusterFinding, NAMES_SHOWN, SHOWN};
use crate::check::{CheckId, Severity};
use crate::model::net::Cidr;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Evidence lines per node kept in one finding (the message counts the rest).
const EVIDENCE_PER_NODE: usize = 3;

/// CLU001: nodes whose pod CIDRs overlap hand out the same pod addresses. One finding
/// per overlapping pair of prefixes, naming every node that has one of them (a
/// hundred bundles of one node give one finding, not a hundred squared).
pub(crate) fn overlapping_pod_cidrs(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    // (smaller prefix, larger prefix) -> (node, its prefix) in node order.
    let mut pairs: BTreeMap<(Cidr, Cidr), Vec<(usize, usize)>> = BTreeMap::new();
    for (a, na) in c.nodes.iter().enumerate() {
        for (b, nb) in c.nodes.iter().enumerate().skip(a + 1) {
            for (ia, ca) in na.pod_cidrs.iter().enumerate() {
                for (ib, cb) in nb.pod_cidrs.iter().enumerate() {
                    let (x, y) = (ca.value, cb.value);
                    if !(x.contains(&y) || y.contains(&x)) {
                        continue;
                    }
                    let holders = pairs.entry((x.min(y), x.max(y))).or_default();
                    for h in [(a, ia), (b, ib)] {
                        if !holders.contains(&h) {
                            holders.push(h);
                        }
                    }
                }
            }
        }
    }
    pairs
        .into_iter()
        .map(|((x, y), mut holders)| {
            holders.sort_unstable();
            let nodes: Vec<usize> = holders.iter().map(|(n, _)| *n).collect();
            let subject = if x == y {
                format!("pod CIDR {x}")
            } else {
                format!("pod CIDRs {x} and {y}")
            };
            let each: Vec<String> = holders
                .iter()
                .take(NAMES_SHOWN)
                .map(|&(n, i)| format!("{} {}", c.name(n), c.nodes[n].pod_cidrs[i].value))
                .collect();
            let message = format!(
                "Pod CIDRs overlap ({}{}): these nodes can give pods the same address, and each routes the others' pods in that range to itself.",
                each.join(", "),
                more(holders.len(), each.len(), "nodes")
            );
            c.finding(CheckId::Clu001, Severity::Critical, subject, message, &nodes)
                .with_evidence(
                    holders
                        .iter()
                        .map(|&(n, i)| c.cite(n, &c.nodes[n].pod_cidrs[i].evidence)),
                )
        })
        .collect()
}

/// CLU004: the same pod address on two nodes. Duplicates inside pod CIDRs that
/// overlap (CLU001) come from that one cause: one finding per such CIDR, not one per
/// address.
pub(crate) fn pod_ip_on_two_nodes(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    let mut by_ip: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for (i, n) in c.nodes.iter().enumerate() {
        for ip in n.pods.keys() {
            by_ip.entry(*ip).or_default().push(i);
        }
    }
    let mut single = Vec::new();
    let mut by_overlap: BTreeMap<Cidr, Vec<(IpAddr, Vec<usize>)>> = BTreeMap::new();
    for (ip, nodes) in by_ip.into_iter().filter(|(_, n)| n.len() > 1) {
        let cidrs: Vec<Option<Cidr>> = nodes
            .iter()
            .map(|&i| c.nodes[i].pod_cidr_of(ip).map(|f| f.value))
            .collect();
        match cidrs[0] {
            Some(first) if cidrs.iter().all(Option::is_some) => {
                by_overlap.entry(first).or_default().push((ip, nodes));
            }
            _ => single.push((ip, nodes)),
        }
    }
    for (_, group) in by_overlap.iter_mut().filter(|(_, g)| g.len() == 1) {
        single.append(group);
    }
    let mut out: Vec<ClusterFinding> = single
        .into_iter()
        .map(|(ip, nodes)| one_pod_ip(c, ip, &nodes))
        .collect();
    for (cidr, group) in by_overlap.into_iter().filter(|(_, g)| g.len() > 1) {
        out.push(pod_ips_in_overlap(c, cidr, &group));
    }
    out
}

fn one_pod_ip(c: &Cluster<'_>, ip: IpAddr, nodes: &[usize]) -> ClusterFinding {
    let holders: Vec<String> = nodes
        .iter()
        .take(SHOWN)
        .map(|&i| format!("pod {} on {}", c.nodes[i].pods[&ip].name, c.name(i)))
        .collect();
    let message = format!(
        "{ip} is assigned to {}{}: replies and service traffic for it go to whichever node the sender routes to.",
        holders.join(" and "),
        more(nodes.len(), holders.len(), "nodes")
    );
    c.finding(
        CheckId::Clu004,
        Severity::Critical,
        format!("pod IP {ip}"),
        message,
        nodes,
    )
    .with_evidence(
        nodes
            .iter()
            .map(|&i| c.cite(i, &c.nodes[i].pods[&ip].evidence)),
    )
}

/// Many duplicate pod addresses in overlapping pod CIDRs, as one finding.
fn pod_ips_in_overlap(
    c: &Cluster<'_>,
    cidr: Cidr,
    group: &[(IpAddr, Vec<usize>)],
) -> ClusterFinding {
    let mut nodes: Vec<usize> = group.iter().flat_map(|(_, n)| n.iter().copied()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let shown: Vec<String> = group
        .iter()
        .take(SHOWN)
        .map(|(ip, n)| format!("{ip} on {}", c.list(n)))
        .collect();
    let message = format!(
        "{} pod addresses in {cidr} are assigned on more than one node ({}{}), as the nodes' pod CIDRs overlap (CLU001): replies and service traffic for them go to whichever node the sender routes to.",
        group.len(),
        shown.join("; "),
        more(group.len(), shown.len(), "addresses")
    );
    let evidence = group.iter().take(SHOWN).flat_map(|(ip, n)| {
        n.iter()
            .map(move |&i| c.cite(i, &c.nodes[i].pods[ip].evidence))
    });
    c.finding(
        CheckId::Clu004,
        Severity::Critical,
        format!("pod IPs in {cidr}"),
        message,
        &nodes,
    )
    .with_evidence(evidence)
}

/// A stale endpoint seen from other nodes: which nodes program it, which node owns
/// the CIDR it is in.
struct Stale {
    service: String,
    owner: usize,
    programmed_by: Vec<usize>,
}

/// The first node (in command-line order) whose pod CIDRs hold an address, by one
/// hash lookup per prefix length in use instead of a scan of every node: a hundred
/// nodes of 5,000 endpoints each are 500,000 lookups.
struct CidrOwners {
    /// (prefix length, network) → the first node with that CIDR.
    first: std::collections::HashMap<(u8, Cidr), usize>,
    lens: Vec<u8>,
}

impl CidrOwners {
    fn new(c: &Cluster<'_>) -> CidrOwners {
        let mut first = std::collections::HashMap::new();
        let mut lens = Vec::new();
        for (i, n) in c.nodes.iter().enumerate() {
            for pc in &n.pod_cidrs {
                let len = pc.value.prefix_len();
                first.entry((len, pc.value.trunc())).or_insert(i);
                if !lens.contains(&len) {
                    lens.push(len);
                }
            }
        }
        CidrOwners { first, lens }
    }

    /// What `nodes.iter().position(|m| m.pod_cidr_of(ip).is_some())` gives.
    fn first(&self, ip: IpAddr) -> Option<usize> {
        self.lens
            .iter()
            .filter_map(|&len| {
                let net = Cidr::new(ip, len).ok()?.trunc();
                self.first.get(&(len, net)).copied()
            })
            .min()
    }
}

/// CLU003: an endpoint inside another captured node's pod CIDR that no pod of any
/// node owns. Only endpoints whose CIDR's node is among the bundles are judged, and
/// never on that node itself (SVC002 reports those).
pub(crate) fn endpoints_owned_by_no_pod(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    // Every pod address of the cluster, once (not one lookup per node per endpoint).
    let pod_ips: std::collections::HashSet<IpAddr> = c
        .nodes
        .iter()
        .flat_map(|n| n.pods.keys().copied())
        .collect();
    let owned = |ip: IpAddr| pod_ips.contains(&ip);
    let owners = CidrOwners::new(c);
    let mut stale: BTreeMap<(Arc<str>, SocketAddr), Stale> = BTreeMap::new();
    for (i, n) in c.nodes.iter().enumerate() {
        for (key, svc) in &n.services {
            for ep in svc.addrs() {
                let Some(owner) = owners.first(ep.ip()).filter(|&o| o != i) else {
                    continue;
                };
                if owned(ep.ip()) || c.nodes[owner].has_address(ep.ip()) {
                    continue;
                }
                stale
                    .entry((key.clone(), ep))
                    .or_insert_with(|| Stale {
                        service: svc.display.clone(),
                        owner,
                        programmed_by: Vec::new(),
                    })
                    .programmed_by
                    .push(i);
            }
        }
    }
    stale
        .into_iter()
        .map(|((key, ep), s)| {
            let owner_cidr = c.nodes[s.owner]
                .pod_cidr_of(ep.ip())
                .map(|f| (f.value, f.evidence.clone()));
            let cidr = owner_cidr.as_ref().map_or(String::new(), |(v, _)| v.to_string());
            let mut message = format!(
                "{} send{} traffic of {} to {ep}, inside {}'s pod CIDR {cidr}, but no pod on any of the {} nodes has {}: the endpoint's pod is gone.",
                c.list(&s.programmed_by),
                if s.programmed_by.len() == 1 { "s" } else { "" },
                s.service,
                c.name(s.owner),
                c.nodes.len(),
                ep.ip()
            );
            if s.programmed_by.len() > EVIDENCE_PER_NODE {
                message.push_str(&format!(
                    " Evidence shows {EVIDENCE_PER_NODE} of the {} nodes.",
                    s.programmed_by.len()
                ));
            }
            let mut nodes = s.programmed_by.clone();
            nodes.push(s.owner);
            let evidence = s
                .programmed_by
                .iter()
                .take(EVIDENCE_PER_NODE)
                .map(|&i| c.cite(i, &c.nodes[i].services[&*key].endpoint_evidence(&ep)));
            c.finding(
                CheckId::Clu003,
                Severity::Critical,
                format!("service {} endpoint {ep}", s.service),
                message,
                &nodes,
            )
            .with_evidence(evidence)
            .with_evidence(owner_cidr.map(|(_, e)| c.cite(s.owner, &e)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{cluster, find, healthy_nodes};
    use crate::check::CheckId;

    #[test]
    fn healthy_nodes_have_no_address_finding() {
        let nodes = healthy_nodes();
        let f = cluster(&nodes);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn overlapping_cidrs_name_both_nodes() {
        let mut nodes = healthy_nodes();
        nodes[2].pod_cidrs[0].value = "10.244.1.0/24".parse().unwrap();
        let f = find(&cluster(&nodes), CheckId::Clu001, "pod CIDR 10.244.1.0/24");
        assert_eq!(f.nodes, ["node-a", "node-c"]);
        assert!(f
            .finding
            .evidence
            .iter()
            .any(|e| e.path.starts_with("node-c:")));
        assert!(f
            .finding
            .evidence
            .iter()
            .any(|e| e.path.starts_with("node-a:")));
    }

    #[test]
    fn duplicates_of_overlapping_cidrs_are_one_finding() {
        let mut nodes = healthy_nodes();
        nodes[1].pod_cidrs[0].value = "10.244.1.0/24".parse().unwrap();
        let pods = nodes[0].pods.clone();
        nodes[1].pods.extend(pods);
        let all = cluster(&nodes);
        let f = find(&all, CheckId::Clu004, "pod IPs in 10.244.1.0/24");
        assert_eq!(f.nodes, ["node-a", "node-b"]);
        assert!(
            f.finding.message.starts_with("2 pod addresses"),
            "{}",
            f.finding.message
        );
        assert_eq!(
            all.iter()
                .filter(|f| f.finding.id == CheckId::Clu004)
                .count(),
            1
        );
    }

    #[test]
    fn same_pod_ip_on_two_nodes() {
        let mut nodes = healthy_nodes();
        let pod = nodes[0].pods.values().next().cloned().unwrap();
        nodes[1].pods.insert("10.244.1.10".parse().unwrap(), pod);
        let f = find(&cluster(&nodes), CheckId::Clu004, "pod IP 10.244.1.10");
        assert_eq!(f.nodes, ["node-a", "node-b"]);
    }

    #[test]
    fn endpoint_of_a_gone_pod_on_another_node() {
        let mut nodes = healthy_nodes();
        // web's pod on node-b is gone; node-a and node-c still send to it.
        nodes[1]
            .pods
            .remove(&"10.244.2.11".parse::<std::net::IpAddr>().unwrap());
        let f = find(
            &cluster(&nodes),
            CheckId::Clu003,
            "service default/web:http endpoint 10.244.2.11:8080",
        );
        // node-b programs it too, but that is SVC002's (its own pod CIDR).
        assert_eq!(f.nodes, ["node-a", "node-c", "node-b"]);
        assert!(f
            .finding
            .message
            .contains("node-b's pod CIDR 10.244.2.0/24"));
        assert!(f
            .finding
            .evidence
            .iter()
            .any(|e| e.path.starts_with("node-b:")));
    }

    #[test]
    fn cidr_owners_are_the_first_node_that_holds_the_address() {
        use super::super::Cluster;
        use super::CidrOwners;
        let mut nodes = healthy_nodes();
        // Overlaps (a /16 over everyone's /24, a duplicate, a v6 prefix), host bits set.
        let mut extra = nodes[0].pod_cidrs[0].clone();
        extra.value = "10.244.0.0/16".parse().unwrap();
        nodes[2].pod_cidrs.push(extra.clone());
        extra.value = "10.244.2.77/24".parse().unwrap();
        nodes[0].pod_cidrs.push(extra.clone());
        extra.value = "fd00:10:244::/48".parse().unwrap();
        nodes[1].pod_cidrs.push(extra);
        let c = Cluster {
            nodes: &nodes,
            names: vec!["a".into(), "b".into(), "c".into()],
        };
        let owners = CidrOwners::new(&c);
        let ips = [
            "10.244.1.5",
            "10.244.2.11",
            "10.244.3.1",
            "10.244.200.1",
            "10.245.0.1",
            "fd00:10:244::5",
            "fd00:10:245::5",
            "0.0.0.0",
        ];
        for ip in ips {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let scan = nodes.iter().position(|m| m.pod_cidr_of(ip).is_some());
            assert_eq!(owners.first(ip), scan, "{ip}");
        }
    }
}
