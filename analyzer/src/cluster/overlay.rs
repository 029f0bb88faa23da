//! CLU005: the path from one node to another node's pods. A node with an overlay
//! needs a route more specific than its default route to each other node's pod CIDR;
//! when that route leaves through a VXLAN device via a gateway, the gateway needs a
//! neighbour entry (the peer VTEP's MAC) and that MAC an FDB entry sending it to the
//! peer's VTEP address. Overlay devices of one kind should have one MTU everywhere.
//!
//! Not judged: nodes without an overlay (the underlay may route pod CIDRs), devices
//! in `external` mode (Cilium's BPF picks each packet's tunnel), and entries a device
//! learns or asks a daemon for (learning, l2miss/l3miss, proxy).

use super::drift::{vote, Vote};
use super::summary::{Fact, NodeSummary, OverlayFact, RouteFact};
use super::{Cluster, ClusterFinding};
use crate::check::{CheckId, Evidence, Severity};
use crate::model::net::Cidr;

pub(crate) fn missing_paths_and_mtu(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    let mut out = Vec::new();
    for (a, na) in c.nodes.iter().enumerate() {
        if na.overlays.is_empty() {
            continue;
        }
        for (b, nb) in c.nodes.iter().enumerate().filter(|(b, _)| *b != a) {
            for cidr in &nb.pod_cidrs {
                // Overlapping CIDRs are CLU001's.
                if na
                    .pod_cidrs
                    .iter()
                    .any(|own| own.value.contains(&cidr.value) || cidr.value.contains(&own.value))
                {
                    continue;
                }
                out.extend(path(c, (a, na), (b, nb), cidr));
            }
        }
    }
    out.extend(mtu_disagreements(c));
    out
}

/// The most specific main-table route of `n` covering `cidr` (not the default route).
fn route_to<'n>(n: &'n NodeSummary, cidr: &Cidr) -> Option<&'n RouteFact> {
    n.routes
        .iter()
        .filter(|r| r.dst.prefix_len() > 0 && r.dst.contains(cidr))
        .max_by_key(|r| r.dst.prefix_len())
}

/// What is wrong with `a`'s path to the pod CIDR `cidr` of `b`, if anything.
fn path(
    c: &Cluster<'_>,
    (a, na): (usize, &NodeSummary),
    (b, nb): (usize, &NodeSummary),
    cidr: &Fact<Cidr>,
) -> Option<ClusterFinding> {
    let subject = format!("path {} → {} pod CIDR {}", c.name(a), c.name(b), cidr.value);
    let (an, bn) = (c.name(a), c.name(b));
    let finding = |msg: String, ev: Vec<Evidence>| {
        c.finding(
            CheckId::Clu005,
            Severity::Critical,
            subject.clone(),
            msg,
            &[a, b],
        )
        .with_evidence(ev)
        .evidence(c.cite(b, &cidr.evidence))
    };
    let Some(route) = route_to(na, &cidr.value) else {
        let absent = Evidence::new(
            na.routes_path.clone(),
            None,
            format!("no route to {} more specific than default", cidr.value),
        );
        return Some(finding(
            format!(
                "{an} has an overlay ({}) but no route to {bn}'s pod CIDR {} other than its default route: its pods' packets to {bn}'s pods leave unencapsulated and are dropped or misrouted.",
                overlay_names(na),
                cidr.value
            ),
            vec![c.cite(a, &absent)],
        ));
    };
    if route.kind != "unicast" {
        return Some(finding(
            format!(
                "{an}'s route to {bn}'s pod CIDR {} is a {} route: packets to {bn}'s pods are dropped.",
                cidr.value, route.kind
            ),
            vec![c.cite(a, &route.evidence)],
        ));
    }
    let overlay = route.overlay.map(|i| &na.overlays[i])?;
    if overlay.external {
        return None;
    }
    let gateway = route.gateway?;
    let route_ev = c.cite(a, &route.evidence);
    let Some(neigh) = overlay.neigh.iter().find(|n| n.ip == gateway) else {
        if overlay.learns_neigh {
            return None;
        }
        return Some(finding(
            format!(
                "{an} routes {} via {gateway} on {}, but {} has no neighbour entry for {gateway}: the packets have no VTEP MAC to go to.",
                cidr.value, overlay.name, overlay.name
            ),
            vec![route_ev],
        ));
    };
    let neigh_ev = c.cite(a, &neigh.evidence);
    let (Some(mac), true) = (&neigh.lladdr, neigh.usable()) else {
        return Some(finding(
            format!(
                "{an}'s neighbour entry for {gateway} on {} is {}: {bn}'s VTEP cannot be reached.",
                overlay.name, neigh.state
            ),
            vec![route_ev, neigh_ev],
        ));
    };
    let peer_macs: Vec<&OverlayFact> = nb.overlays.iter().filter(|o| o.mac.is_some()).collect();
    if let Some(peer) = peer_macs.first().filter(|_| {
        !peer_macs
            .iter()
            .any(|o| o.mac.as_deref() == Some(mac.as_str()))
    }) {
        return Some(finding(
            format!(
                "{an} sends {bn}'s pod CIDR {} to MAC {mac} (neighbour {gateway} on {}), but {bn}'s {} has MAC {}: the entry is stale (the peer's device was recreated).",
                cidr.value,
                overlay.name,
                peer.name,
                peer.mac.as_deref().unwrap_or("?")
            ),
            vec![route_ev, neigh_ev, c.cite(b, &peer.evidence)],
        ));
    }
    fdb(
        c,
        (a, overlay),
        (b, nb),
        mac,
        vec![route_ev, neigh_ev],
        &finding,
    )
}

/// The FDB entry of `mac` on `a`'s overlay must send it to `b`'s VTEP.
fn fdb(
    c: &Cluster<'_>,
    (a, overlay): (usize, &OverlayFact),
    (b, nb): (usize, &NodeSummary),
    mac: &str,
    mut ev: Vec<Evidence>,
    finding: &dyn Fn(String, Vec<Evidence>) -> ClusterFinding,
) -> Option<ClusterFinding> {
    let (an, bn) = (c.name(a), c.name(b));
    let Some(entry) = overlay.fdb.iter().find(|f| f.mac == mac) else {
        if overlay.learns_fdb {
            return None;
        }
        return Some(finding(
            format!(
                "{an} has no FDB entry on {} for {mac} ({bn}'s VTEP MAC): encapsulated frames to {bn} have no destination VTEP.",
                overlay.name
            ),
            ev,
        ));
    };
    let dst = entry.dst?;
    if nb.has_address(dst) {
        return None;
    }
    let vtep = nb.overlays.iter().find_map(|o| o.local.map(|l| (l, o)));
    ev.push(c.cite(a, &entry.evidence));
    let expected = match vtep {
        Some((ip, o)) => {
            ev.push(c.cite(b, &o.evidence));
            format!("{bn}'s VTEP is {ip}")
        }
        None => format!("{dst} is none of {bn}'s addresses"),
    };
    Some(finding(
        format!(
            "{an}'s FDB sends {mac} ({bn}'s VTEP MAC) to {dst}, but {expected}: encapsulated packets to {bn}'s pods go to the wrong host.",
        ),
        ev,
    ))
}

fn overlay_names(n: &NodeSummary) -> String {
    n.overlays
        .iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Overlay devices of one kind with different MTUs on different nodes.
fn mtu_disagreements(c: &Cluster<'_>) -> Vec<ClusterFinding> {
    let mut kinds: Vec<&str> = c
        .nodes
        .iter()
        .flat_map(|n| n.overlays.iter().map(|o| o.kind.as_str()))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut out = Vec::new();
    for kind in kinds {
        let devices: Vec<(usize, &OverlayFact)> = c
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.overlays.iter().find(|o| o.kind == kind)?)))
            .collect();
        let (odd, message) = match vote(devices.iter().map(|(i, o)| (*i, o.mtu))) {
            Vote::Agree => continue,
            Vote::Majority { value, odd } => {
                let parts: Vec<String> = odd
                    .iter()
                    .map(|(mtu, n)| format!("{mtu} on {}", c.list(n)))
                    .collect();
                let nodes: Vec<usize> = odd.iter().flat_map(|(_, n)| n.clone()).collect();
                let msg = format!(
                    "The {kind} overlay's MTU is {}, where the other nodes have {value}: packets sized for the larger MTU are dropped or fragmented between them.",
                    parts.join(", ")
                );
                (nodes, msg)
            }
            Vote::Split(groups) => {
                let parts: Vec<String> = groups
                    .iter()
                    .map(|(mtu, n)| format!("{} {mtu}", c.list(n)))
                    .collect();
                let msg = format!(
                    "The {kind} overlay's MTU differs between nodes ({}), with no majority: packets sized for the larger MTU are dropped or fragmented between them.",
                    parts.join(", ")
                );
                (groups.iter().flat_map(|(_, n)| n.clone()).collect(), msg)
            }
        };
        let mut nodes = odd.clone();
        nodes.extend(
            devices
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| !odd.contains(i))
                .take(1),
        );
        let evidence = nodes
            .iter()
            .filter_map(|i| devices.iter().find(|(n, _)| n == i))
            .map(|(i, o)| c.cite(*i, &o.evidence));
        // Named by the device of the first odd node (`flannel.1` on every node, as a
        // rule), like a per-node link finding.
        let device = nodes
            .first()
            .and_then(|i| devices.iter().find(|(n, _)| n == i))
            .map_or(kind, |(_, o)| o.name.as_str());
        out.push(
            c.finding(
                CheckId::Clu005,
                Severity::Warning,
                format!("link {device} MTU ({kind} overlay)"),
                message,
                &nodes,
            )
            .with_evidence(evidence)
            .remedy("Give the overlay device the same MTU on every node (the CNI's MTU setting, e.g. flannel's or Calico's `mtu`), the smallest underlay MTU minus the encapsulation overhead; restart the CNI agent so it recreates the device."),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{cluster, find, healthy_nodes};
    use crate::check::{CheckId, Severity};

    #[test]
    fn missing_route_fdb_and_neighbour_are_named() {
        let mut nodes = healthy_nodes();
        nodes[0]
            .routes
            .retain(|r| r.dst.to_string() != "10.244.2.0/24");
        let f = find(
            &cluster(&nodes),
            CheckId::Clu005,
            "path node-a → node-b pod CIDR 10.244.2.0/24",
        );
        assert_eq!(f.nodes, ["node-a", "node-b"]);
        assert!(
            f.finding.message.contains("no route"),
            "{}",
            f.finding.message
        );

        let mut nodes = healthy_nodes();
        nodes[2].overlays[0]
            .fdb
            .retain(|e| e.dst != Some("10.0.0.11".parse().unwrap()));
        let f = find(
            &cluster(&nodes),
            CheckId::Clu005,
            "path node-c → node-a pod CIDR 10.244.1.0/24",
        );
        assert!(
            f.finding.message.contains("no FDB entry"),
            "{}",
            f.finding.message
        );

        let mut nodes = healthy_nodes();
        nodes[1].overlays[0].neigh.clear();
        let all = cluster(&nodes);
        let f = find(
            &all,
            CheckId::Clu005,
            "path node-b → node-c pod CIDR 10.244.3.0/24",
        );
        assert!(
            f.finding.message.contains("no neighbour entry"),
            "{}",
            f.finding.message
        );
    }

    #[test]
    fn stale_fdb_destination_and_mtu() {
        let mut nodes = healthy_nodes();
        nodes[0].overlays[0].fdb[0].dst = Some("10.0.0.99".parse().unwrap());
        let f = cluster(&nodes);
        let stale = f
            .iter()
            .find(|f| f.finding.id == CheckId::Clu005 && f.finding.message.contains("10.0.0.99"))
            .expect("stale FDB reported");
        assert_eq!(stale.nodes[0], "node-a");

        let mut nodes = healthy_nodes();
        nodes[1].overlays[0].mtu = 1400;
        let f = find(
            &cluster(&nodes),
            CheckId::Clu005,
            "link flannel.1 MTU (vxlan overlay)",
        );
        assert_eq!(f.finding.severity, Severity::Warning);
        assert_eq!(f.nodes[0], "node-b");
        assert!(
            f.finding.message.contains("1400 on node-b"),
            "{}",
            f.finding.message
        );
    }
}
