//! What should be the same on every node and is not: the services kube-proxy
//! programs (CLU002) and the settings that matter (CLU006). The majority is taken as
//! right and the others named; without a majority (two nodes that disagree) every
//! side is named.

use super::summary::{ServiceFact, DRIFT_SYSCTLS};
use super::{more, Cluster, ClusterFinding, SHOWN};
use crate::check::{CheckId, Evidence, Severity};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Nodes grouped by the value they hold.
pub(crate) enum Vote<V> {
    /// Every node that has a value has the same one.
    Agree,
    /// More than half of the nodes with a value hold `value`; `odd` hold others.
    Majority { value: V, odd: Vec<(V, Vec<usize>)> },
    /// No value holds more than half: every group, largest first.
    Split(Vec<(V, Vec<usize>)>),
}

pub(crate) fn vote<V: Ord + Clone>(values: impl IntoIterator<Item = (usize, V)>) -> Vote<V> {
    let mut groups: BTreeMap<V, Vec<usize>> = BTreeMap::new();
    let mut total = 0;
    for (i, v) in values {
        groups.entry(v).or_default().push(i);
        total += 1;
    }
    if groups.len() < 2 {
        return Vote::Agree;
    }
    let mut groups: Vec<(V, Vec<usize>)> = groups.into_iter().collect();
    // Largest first; equal sizes in the order of their first node.
    groups.sort_by_key(|(_, nodes)| (std::cmp::Reverse(nodes.len()), nodes[0]));
    if groups[0].1.len() * 2 > total {
        let (value, _) = groups.remove(0);
        Vote::Majority { value, odd: groups }
    } else {
        Vote::Split(groups)
    }
}

/// CLU006: the sysctls of [`DRIFT_SYSCTLS`] and kube-proxy's mode differ between nodes.
pub(crate) fn settings_drift(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    let mut out = Vec::new();
    for key in DRIFT_SYSCTLS {
        let facts = c
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.sysctls.get(*key)?)));
        let severity = match *key {
            // kube-proxy sizes it from each node's CPUs; a difference may be by design.
            "net.netfilter.nf_conntrack_max" => Severity::Info,
            _ => Severity::Warning,
        };
        out.extend(drift_finding(c, &format!("sysctl {key}"), severity, facts));
    }
    let modes = c
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, n.service_proxy.as_ref()?)));
    out.extend(drift_finding(
        c,
        "service proxy (kube-proxy mode)",
        Severity::Warning,
        modes,
    ));
    out
}

fn drift_finding<'a>(
    c: &Cluster<'_>,
    what: &str,
    severity: Severity,
    facts: impl Iterator<Item = (usize, &'a super::summary::Fact<String>)>,
) -> Option<ClusterFinding> {
    let facts: Vec<(usize, &super::summary::Fact<String>)> = facts.collect();
    let evidence_of = |nodes: &[usize]| -> Vec<Evidence> {
        nodes
            .iter()
            .filter_map(|&i| facts.iter().find(|(n, _)| *n == i))
            .map(|(i, f)| c.cite(*i, &f.evidence))
            .collect()
    };
    let (message, nodes, evidence) = match vote(facts.iter().map(|(i, f)| (*i, f.value.clone()))) {
        Vote::Agree => return None,
        Vote::Majority { value, odd } => {
            let odd_nodes: Vec<usize> = odd.iter().flat_map(|(_, n)| n.clone()).collect();
            let parts: Vec<String> = odd
                .iter()
                .take(SHOWN)
                .map(|(v, n)| format!("{} has {v:?}", c.list(n)))
                .collect();
            let majority: Vec<usize> = facts
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| !odd_nodes.contains(i))
                .collect();
            let message = format!(
                "{}{}, where the other {} nodes have {value:?}.",
                parts.join("; "),
                more(odd.len(), parts.len(), "values"),
                majority.len()
            );
            // Evidence: every odd node and one node of the majority.
            let mut ev = evidence_of(&odd_nodes);
            ev.extend(evidence_of(&majority[..1]));
            (message, odd_nodes, ev)
        }
        Vote::Split(groups) => {
            let parts: Vec<String> = groups
                .iter()
                .take(SHOWN)
                .map(|(v, n)| {
                    format!(
                        "{} {} {v:?}",
                        c.list(n),
                        if n.len() == 1 { "has" } else { "have" }
                    )
                })
                .collect();
            let all: Vec<usize> = groups.iter().flat_map(|(_, n)| n.clone()).collect();
            let message = format!(
                "{}{}: no value is held by a majority of the nodes, so netsnap cannot tell which is intended.",
                parts.join(", "),
                more(groups.len(), parts.len(), "values")
            );
            (message, all.clone(), evidence_of(&all))
        }
    };
    Some(
        c.finding(CheckId::Clu006, severity, what, message, &nodes)
            .with_evidence(evidence),
    )
}

/// One service across the nodes: which node programs it, and how.
fn services_by_key<'a>(c: &'a Cluster<'_>) -> BTreeMap<&'a str, Vec<(usize, &'a ServiceFact)>> {
    let mut out: BTreeMap<&str, Vec<(usize, &ServiceFact)>> = BTreeMap::new();
    for (i, n) in c.nodes.iter().enumerate() {
        for (k, s) in &n.services {
            out.entry(&**k).or_default().push((i, &**s));
        }
    }
    out
}

/// Where a node's rules would be (for "no rule" evidence): the file its service proxy
/// was found in.
fn absence(c: &Cluster<'_>, i: usize, service: &str) -> Evidence {
    let path = c.nodes[i]
        .service_proxy
        .as_ref()
        .map_or("netfilter", |f| f.evidence.path.as_str());
    c.cite(
        i,
        &Evidence::new(path, None, format!("no rule programs {service}")),
    )
}

/// CLU002: a node programs a service differently from the majority of the nodes: it
/// lacks it, has one the others removed, or sends it to other endpoints.
pub(crate) fn kube_proxy_drift(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    let mut out = Vec::new();
    for programs in services_by_key(c).values() {
        let Some((_, svc)) = programs.first().copied() else {
            continue;
        };
        // A name when any node's rules give one (IPVS virtual servers have none).
        let display = programs
            .iter()
            .map(|(_, s)| s.display.as_str())
            .find(|d| {
                d.contains('/') && !d.starts_with(|ch: char| ch.is_ascii_digit() || ch == '[')
            })
            .unwrap_or(&svc.display);
        let mut parts = Vec::new();
        if let Some(p) = presence(c, programs, display) {
            parts.push(p);
        }
        if !programs.iter().any(|(_, s)| s.internal_local) {
            if let Some(p) = endpoint_sets(c, programs, display) {
                parts.push(p);
            }
        }
        if parts.is_empty() {
            continue;
        }
        let severity = parts
            .iter()
            .map(|p| p.severity)
            .max()
            .unwrap_or(Severity::Warning);
        let message: Vec<String> = parts.iter().map(|p| p.message.clone()).collect();
        let mut nodes: Vec<usize> = Vec::new();
        let mut evidence: Vec<Evidence> = Vec::new();
        for p in parts {
            for n in p.nodes {
                if !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
            evidence.extend(p.evidence);
        }
        out.push(
            c.finding(
                CheckId::Clu002,
                severity,
                format!("service {display}"),
                message.join(" "),
                &nodes,
            )
            .with_evidence(evidence),
        );
    }
    out
}

/// One aspect of a service's drift.
struct Part {
    severity: Severity,
    message: String,
    /// The node(s) to fix first, then the ones compared with.
    nodes: Vec<usize>,
    evidence: Vec<Evidence>,
}

/// Present on some nodes, absent on others.
fn presence(c: &Cluster<'_>, programs: &[(usize, &ServiceFact)], display: &str) -> Option<Part> {
    let has = |i: usize| programs.iter().any(|(n, _)| *n == i);
    let fact = |i: usize| programs.iter().find(|(n, _)| *n == i).map(|(_, s)| *s);
    let present: Vec<usize> = programs.iter().map(|(i, _)| *i).collect();
    let absent: Vec<usize> = (0..c.nodes.len()).filter(|&i| !has(i)).collect();
    if absent.is_empty() {
        return None;
    }
    let cite_present = |i: usize| fact(i).map(|s| c.cite(i, &s.evidence()));
    let (severity, message, nodes) = if present.len() * 2 > c.nodes.len() {
        let message = format!(
            "{} do{} not program {display}, which {} of {} nodes do: {} stale.",
            c.list(&absent),
            if absent.len() == 1 { "es" } else { "" },
            present.len(),
            c.nodes.len(),
            if absent.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        );
        (
            Severity::Critical,
            message,
            [absent.clone(), present.clone()],
        )
    } else if absent.len() * 2 > c.nodes.len() {
        let message = format!(
            "{} still program{} {display}, which the other {} nodes do not (a deleted service): {} stale.",
            c.list(&present),
            if present.len() == 1 { "s" } else { "" },
            absent.len(),
            if present.len() == 1 { "it is" } else { "they are" }
        );
        (
            Severity::Warning,
            message,
            [present.clone(), absent.clone()],
        )
    } else {
        let message = format!(
            "{} program{} {display} and {} do{} not; with no majority, one side is stale.",
            c.list(&present),
            if present.len() == 1 { "s" } else { "" },
            c.list(&absent),
            if absent.len() == 1 { "es" } else { "" },
        );
        (
            Severity::Warning,
            message,
            [present.clone(), absent.clone()],
        )
    };
    let evidence = present
        .iter()
        .take(1)
        .filter_map(|&i| cite_present(i))
        .chain(absent.iter().take(3).map(|&i| absence(c, i, display)))
        .collect();
    Some(Part {
        severity,
        message,
        nodes: nodes.concat(),
        evidence,
    })
}

/// The same service with other endpoints on some nodes.
fn endpoint_sets(
    c: &Cluster<'_>,
    programs: &[(usize, &ServiceFact)],
    display: &str,
) -> Option<Part> {
    let set = |s: &ServiceFact| s.addrs().collect::<BTreeSet<SocketAddr>>();
    let fact = |i: usize| programs.iter().find(|(n, _)| *n == i).map(|(_, s)| *s);
    let show = |eps: &BTreeSet<SocketAddr>| match eps.is_empty() {
        true => "no endpoint".to_string(),
        false => eps
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    match vote(programs.iter().map(|(i, s)| (*i, set(s)))) {
        Vote::Agree => None,
        Vote::Majority { value, odd } => {
            let majority: Vec<usize> = programs
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| !odd.iter().any(|(_, n)| n.contains(i)))
                .collect();
            let mut severity = Severity::Warning;
            let mut messages = Vec::new();
            let mut evidence = Vec::new();
            let mut nodes = Vec::new();
            for (eps, odd_nodes) in odd.iter().take(SHOWN) {
                let extra: Vec<&SocketAddr> = eps.difference(&value).collect();
                let missing: Vec<&SocketAddr> = value.difference(eps).collect();
                let mut what = Vec::new();
                if !extra.is_empty() {
                    severity = Severity::Critical;
                    what.push(format!(
                        "still sends to {} that the others dropped",
                        join(&extra)
                    ));
                }
                if !missing.is_empty() {
                    what.push(format!("lacks {}", join(&missing)));
                }
                messages.push(format!(
                    "{} program{} {display} with other endpoints than the other {} nodes: {} {} — {} stale.",
                    c.list(odd_nodes),
                    if odd_nodes.len() == 1 { "s" } else { "" },
                    majority.len(),
                    if odd_nodes.len() == 1 { "it" } else { "they" },
                    what.join(" and "),
                    if odd_nodes.len() == 1 { "it is" } else { "they are" }
                ));
                for &i in odd_nodes {
                    nodes.push(i);
                    if let Some(s) = fact(i) {
                        let ev = extra
                            .first()
                            .map_or_else(|| s.evidence(), |e| s.endpoint_evidence(e));
                        evidence.push(c.cite(i, &ev));
                    }
                }
            }
            if let Some(&m) = majority.first() {
                if let Some(s) = fact(m) {
                    let ev = value
                        .iter()
                        .next()
                        .map_or_else(|| s.evidence(), |e| s.endpoint_evidence(e));
                    evidence.push(c.cite(m, &ev));
                }
            }
            nodes.extend(majority);
            let others = odd.iter().skip(SHOWN).map(|(_, n)| n.len()).sum::<usize>();
            if others > 0 {
                messages.push(format!(
                    "{others} more nodes program other endpoint sets too."
                ));
            }
            nodes.extend(odd.iter().skip(SHOWN).flat_map(|(_, n)| n.iter().copied()));
            Some(Part {
                severity,
                message: format!("{} (majority: {}.)", messages.join(" "), show(&value)),
                nodes,
                evidence,
            })
        }
        Vote::Split(groups) => {
            let parts: Vec<String> = groups
                .iter()
                .take(SHOWN)
                .map(|(eps, n)| format!("{}: {}", c.list(n), show(eps)))
                .collect();
            let nodes: Vec<usize> = groups.iter().flat_map(|(_, n)| n.clone()).collect();
            // One node of each set shown.
            let evidence = groups
                .iter()
                .take(SHOWN)
                .filter_map(|(_, n)| fact(n[0]).map(|s| c.cite(n[0], &s.evidence())))
                .collect();
            Some(Part {
                severity: Severity::Warning,
                message: format!(
                    "The nodes program {display} with different endpoints ({}{}) and no set is held by a majority: one side is stale.",
                    parts.join("; "),
                    more(groups.len(), parts.len(), "sets")
                ),
                nodes,
                evidence,
            })
        }
    }
}

fn join(eps: &[&SocketAddr]) -> String {
    eps.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{cluster, find, healthy_nodes};
    use super::*;

    #[test]
    fn votes() {
        assert!(matches!(vote([(0, 1), (1, 1)]), Vote::Agree));
        match vote([(0, 1), (1, 2), (2, 1)]) {
            Vote::Majority { value, odd } => {
                assert_eq!(value, 1);
                assert_eq!(odd, vec![(2, vec![1])]);
            }
            _ => panic!("majority expected"),
        }
        match vote([(0, "a"), (1, "b")]) {
            Vote::Split(g) => assert_eq!(g, vec![("a", vec![0]), ("b", vec![1])]),
            _ => panic!("split expected"),
        }
    }

    #[test]
    fn stale_endpoint_set_names_the_stale_node() {
        let mut nodes = healthy_nodes();
        let web = nodes[2]
            .services
            .values_mut()
            .find(|s| s.display == "default/web:http")
            .unwrap();
        std::sync::Arc::make_mut(web)
            .endpoints
            .push(("10.244.3.99:8080".parse().unwrap(), Some(7)));
        let f = find(
            &cluster(&nodes),
            CheckId::Clu002,
            "service default/web:http",
        );
        assert_eq!(f.nodes[0], "node-c");
        assert_eq!(f.finding.severity, Severity::Critical);
        assert!(
            f.finding.message.contains("10.244.3.99:8080"),
            "{}",
            f.finding.message
        );
        assert!(f
            .finding
            .evidence
            .iter()
            .any(|e| e.path.starts_with("node-c:") && e.line == Some(7)));
        assert!(f
            .finding
            .evidence
            .iter()
            .any(|e| e.path.starts_with("node-a:")));
    }

    #[test]
    fn missing_service_on_one_node_and_two_nodes_without_majority() {
        let mut nodes = healthy_nodes();
        let key = nodes[1].services.keys().next().cloned().unwrap();
        nodes[1].services.remove(&key);
        let f = cluster(&nodes);
        let drift: Vec<_> = f
            .iter()
            .filter(|f| f.finding.id == CheckId::Clu002)
            .collect();
        assert_eq!(drift.len(), 1, "{f:#?}");
        assert_eq!(drift[0].nodes[0], "node-b");
        assert!(drift[0].finding.message.contains("node-b does not program"));
        let two = cluster(&nodes[..2]);
        let d = &two
            .iter()
            .find(|f| f.finding.id == CheckId::Clu002)
            .unwrap();
        assert!(
            d.finding.message.contains("no majority"),
            "{}",
            d.finding.message
        );
        assert_eq!(d.nodes, ["node-a", "node-b"]);
    }

    #[test]
    fn settings_drift_names_the_odd_node_and_the_majority_value() {
        let mut nodes = healthy_nodes();
        nodes[1]
            .sysctls
            .get_mut("net.ipv4.ip_forward")
            .unwrap()
            .value = "0".into();
        let f = find(
            &cluster(&nodes),
            CheckId::Clu006,
            "sysctl net.ipv4.ip_forward",
        );
        assert_eq!(f.nodes, ["node-b"]);
        assert!(f.finding.message.contains("node-b has \"0\""));
        assert!(f.finding.message.contains("other 2 nodes have \"1\""));
        assert_eq!(f.finding.evidence.len(), 2);
    }
}
