//! The overview panel and the pod panels of a node's picture.

use super::{row_rect, shape, Kind, Panel, Shape, WireKind, MARGIN, ROW, SHAPE_H};
use crate::graph::{GNode, NodeGraph};
use crate::model::Model;
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};

// Columns of a pod panel.
const X_POD: i32 = MARGIN;
const W_POD: i32 = 230;
const X_IF: i32 = X_POD + W_POD + 20;
const W_IF: i32 = 110;
const X_HOST: i32 = X_IF + W_IF + 40;
const W_HOST: i32 = 150;
const X_BRIDGE: i32 = X_HOST + W_HOST + 40;
const W_BRIDGE: i32 = 130;

/// Device kinds drawn as the overlay.
const OVERLAY_KINDS: &[&str] = &[
    "vxlan",
    "geneve",
    "ipip",
    "gre",
    "gretap",
    "sit",
    "ip6tnl",
    "wireguard",
    "vti",
];

/// Interfaces of a netns in ifindex order, without loopback.
fn ifaces_of<'g>(graph: &'g NodeGraph, netns: &str) -> Vec<(NodeIndex, &'g GNode)> {
    graph
        .ifaces
        .range((netns.to_string(), 0)..=(netns.to_string(), u32::MAX))
        .map(|(_, &i)| (i, &graph.graph[i]))
        .filter(|(_, n)| !matches!(n, GNode::Interface { name, .. } if name == "lo"))
        .collect()
}

/// An interface shape (`link NAME` is its subject in the root netns).
fn iface_shape(node: &GNode, kind: Kind, x: i32, w: i32, y: i32, root: bool) -> Shape {
    let (name, detail, up) = match node {
        GNode::Interface {
            name,
            kind: k,
            up,
            mtu,
            ..
        } => (
            name.clone(),
            format!("{} mtu {mtu}", k.as_deref().unwrap_or("device")),
            *up,
        ),
        GNode::Bridge { name, up, .. } => (name.clone(), "bridge".into(), *up),
        other => (other.label(), String::new(), true),
    };
    let mut s = shape(kind, node.key(), name.clone(), detail, row_rect(x, w, y, 1));
    s.faulty = !up;
    if root {
        s.subjects.push(format!("link {name}"));
    }
    s
}

/// Bridges of a panel: the bridge node and the host-veth shapes that are its ports.
type PanelBridges = BTreeMap<NodeIndex, Vec<usize>>;

/// The host side of a pod (or dangling) veth: the host veth or the missing peer,
/// wired to the bridge it is a port of.
fn host_side(
    p: &mut Panel,
    g: &NodeGraph,
    peer: NodeIndex,
    y: i32,
    br: &mut PanelBridges,
) -> usize {
    let node = &g.graph[peer];
    if let GNode::MissingPeer { .. } = node {
        let mut s = shape(
            Kind::MissingPeer,
            node.key(),
            "missing peer".into(),
            node.label().replace("\\n", " "),
            row_rect(X_HOST, W_HOST, y, 1),
        );
        s.faulty = true;
        return p.push(s);
    }
    let i = p.push(iface_shape(node, Kind::HostVeth, X_HOST, W_HOST, y, true));
    if let Some(b) = g.master_of(peer) {
        br.entry(b).or_default().push(i);
    }
    i
}

/// One pod's (or pod-less netns's) block of rows; returns the rows used.
fn netns_block(
    p: &mut Panel,
    g: &NodeGraph,
    model: &Model,
    netns: &str,
    y0: i32,
    claimed: &mut BTreeSet<NodeIndex>,
    br: &mut PanelBridges,
) -> i32 {
    let ifaces = ifaces_of(g, netns);
    let rows = ifaces.len().max(1) as i32;
    let (kind, key, label, subject) = match model.pod_in(netns) {
        Some(pod) => (
            Kind::Pod,
            format!("pod:{netns}"),
            pod.display_name(),
            pod.subject(),
        ),
        None => (
            Kind::Netns,
            format!("netns:{netns}"),
            format!("netns {netns}"),
            format!("netns {netns}"),
        ),
    };
    let mut s = shape(
        kind,
        key,
        label,
        format!("netns {netns}"),
        row_rect(X_POD, W_POD, y0, rows),
    );
    s.subjects.push(subject);
    let pod = p.push(s);
    for (k, (idx, node)) in ifaces.into_iter().enumerate() {
        let y = y0 + k as i32 * ROW;
        let pi = p.push(iface_shape(node, Kind::PodIf, X_IF, W_IF, y, false));
        p.wire(pod, pi, WireKind::Veth);
        if let Some(peer) = g.peer_of(idx) {
            claimed.insert(peer);
            let hi = host_side(p, g, peer, y, br);
            p.wire(pi, hi, WireKind::Veth);
        }
    }
    rows
}

/// Draws each bridge of a panel as a tall box beside its ports.
fn place_bridges(p: &mut Panel, g: &NodeGraph, br: PanelBridges) {
    for (col, (bridge, ports)) in br.into_iter().enumerate() {
        let top = ports
            .iter()
            .map(|&i| p.shapes[i].rect.y)
            .min()
            .unwrap_or(MARGIN);
        let bottom = ports
            .iter()
            .map(|&i| p.shapes[i].rect.y + p.shapes[i].rect.h)
            .max()
            .unwrap_or(top + SHAPE_H);
        let x = X_BRIDGE + col as i32 * (W_BRIDGE + 20);
        let mut s = iface_shape(&g.graph[bridge], Kind::Bridge, x, W_BRIDGE, top, true);
        s.rect.h = bottom - top;
        s.detail = format!("bridge, {} ports here", ports.len());
        let b = p.push(s);
        for port in ports {
            p.wire(port, b, WireKind::Port);
        }
    }
}

/// One panel per pod namespace, then one for netns without a pod and one for host
/// veths that belong to no captured pod (bridge ports, dangling veths).
pub fn pod_panels(model: &Model, g: &NodeGraph) -> Vec<Panel> {
    let mut groups: BTreeMap<String, Vec<(String, &str)>> = BTreeMap::new();
    for (id, &idx) in &g.netns {
        if matches!(g.graph[idx], GNode::Netns { is_root: true, .. }) {
            continue;
        }
        let (group, name) = match model.pod_in(id) {
            Some(pod) => (
                pod.namespace
                    .clone()
                    .unwrap_or_else(|| "(no namespace)".into()),
                pod.display_name(),
            ),
            None => ("(netns without pod)".into(), id.clone()),
        };
        groups.entry(group).or_default().push((name, id));
    }
    let mut claimed = BTreeSet::new();
    let mut panels = Vec::new();
    for (group, mut members) in groups {
        members.sort();
        let mut p = Panel::new("pods", format!("pods in {group}"));
        let mut br = PanelBridges::new();
        let mut y = MARGIN;
        for (_, netns) in members {
            y += netns_block(&mut p, g, model, netns, y, &mut claimed, &mut br) * ROW;
        }
        place_bridges(&mut p, g, br);
        panels.push(p);
    }
    if let Some(p) = orphan_panel(model, g, &claimed) {
        panels.push(p);
    }
    panels
}

/// Root veths no pod claims that are bridge ports or dangle.
fn orphan_panel(model: &Model, g: &NodeGraph, claimed: &BTreeSet<NodeIndex>) -> Option<Panel> {
    let root = model.root()?;
    let mut p = Panel::new("pods", "host veths without a captured pod".into());
    let mut br = PanelBridges::new();
    let mut y = MARGIN;
    for (idx, node) in ifaces_of(g, &root.id) {
        let is_veth = matches!(node, GNode::Interface { kind: Some(k), .. } if k == "veth");
        let dangling = g
            .peer_of(idx)
            .is_some_and(|q| matches!(g.graph[q], GNode::MissingPeer { .. }));
        if !is_veth || claimed.contains(&idx) || !(dangling || g.master_of(idx).is_some()) {
            continue;
        }
        let hi = host_side(&mut p, g, idx, y, &mut br);
        if let Some(q) = g.peer_of(idx).filter(|_| dangling) {
            let mi = host_side(&mut p, g, q, y, &mut PanelBridges::new());
            p.shapes[mi].rect.x = X_POD;
            p.shapes[mi].rect.w = W_POD;
            p.wire(mi, hi, WireKind::Veth);
        }
        y += ROW;
    }
    place_bridges(&mut p, g, br);
    (!p.shapes.is_empty()).then_some(p)
}

/// What a root link is in the overview (`None`: only drawn in a pod panel).
fn device_kind(
    g: &NodeGraph,
    idx: NodeIndex,
    node: &GNode,
    in_panels: &BTreeSet<&str>,
) -> Option<Kind> {
    match node {
        GNode::Bridge { .. } => Some(Kind::Bridge),
        GNode::Interface { kind: Some(k), .. } if OVERLAY_KINDS.contains(&k.as_str()) => {
            Some(Kind::Overlay)
        }
        GNode::Interface { .. } => {
            let global = g
                .graph
                .neighbors(idx)
                .any(|n| matches!(g.graph[n], GNode::Address { .. }));
            // A host veth with a global address is the node's way out (a lab's
            // uplink to its router netns): drawn in its panel and as the uplink.
            match (global, in_panels.contains(node.key().as_str())) {
                (true, _) => Some(Kind::Uplink),
                (false, true) => None,
                (false, false) => Some(Kind::Device),
            }
        }
        _ => None,
    }
}

/// The overview: namespace boxes, bridges, the node, its devices.
pub fn overview(model: &Model, g: &NodeGraph, pods: &[Panel], services: &[Panel]) -> Panel {
    const X_GROUP: i32 = MARGIN;
    const W_GROUP: i32 = 250;
    const X_BR: i32 = X_GROUP + W_GROUP + 40;
    const X_NODE: i32 = X_BR + W_BRIDGE + 40;
    const W_NODE: i32 = 190;
    const X_DEV: i32 = X_NODE + W_NODE + 40;
    const W_DEV: i32 = 200;
    let mut p = Panel::new("overview", format!("node {}", model.hostname));
    let in_panels: BTreeSet<&str> = pods
        .iter()
        .flat_map(|q| &q.shapes)
        .filter(|s| s.kind == Kind::HostVeth)
        .map(|s| s.key.as_str())
        .collect();
    let (mut bridges, mut devices) = (Vec::new(), Vec::new());
    if let Some(root) = model.root() {
        for (idx, node) in ifaces_of(g, &root.id) {
            match device_kind(g, idx, node, &in_panels) {
                Some(Kind::Bridge) => bridges.push(node),
                Some(k) => devices.push((k, node)),
                None => {}
            }
        }
    }
    let groups = group_boxes(&mut p, pods, services, X_GROUP, W_GROUP);
    let mut bridge_shapes = BTreeMap::new();
    for (i, b) in bridges.into_iter().enumerate() {
        let s = iface_shape(
            b,
            Kind::Bridge,
            X_BR,
            W_BRIDGE,
            MARGIN + i as i32 * ROW,
            true,
        );
        bridge_shapes.insert(b.key(), p.push(s));
    }
    let rows = (groups
        .len()
        .max(devices.len())
        .max(bridge_shapes.len())
        .max(1)) as i32;
    let mut node = shape(
        Kind::Node,
        format!("node:{}", model.hostname),
        model.hostname.clone(),
        format!("kernel {}", model.kernel),
        row_rect(X_NODE, W_NODE, MARGIN, rows),
    );
    node.subjects = vec!["node".into(), format!("node {}", model.hostname)];
    let node = p.push(node);
    for (i, (k, d)) in devices.into_iter().enumerate() {
        let di = p.push(iface_shape(
            d,
            k,
            X_DEV,
            W_DEV,
            MARGIN + i as i32 * ROW,
            true,
        ));
        p.wire(
            node,
            di,
            if k == Kind::Device {
                WireKind::Route
            } else {
                WireKind::Uplink
            },
        );
    }
    for &b in bridge_shapes.values() {
        p.wire(b, node, WireKind::Port);
    }
    for (gi, q) in groups {
        let used: BTreeSet<&str> = q
            .shapes
            .iter()
            .filter(|s| s.kind == Kind::Bridge)
            .map(|s| s.key.as_str())
            .collect();
        let targets: Vec<usize> = used
            .iter()
            .filter_map(|k| bridge_shapes.get(*k).copied())
            .collect();
        if targets.is_empty() {
            p.wire(gi, node, WireKind::Route);
        }
        for t in targets {
            p.wire(gi, t, WireKind::Port);
        }
    }
    p
}

/// One box per pod or service panel in the overview's first column; returns each
/// box's shape index and its panel.
fn group_boxes<'p>(
    p: &mut Panel,
    pods: &'p [Panel],
    services: &'p [Panel],
    x: i32,
    w: i32,
) -> Vec<(usize, &'p Panel)> {
    let mut groups = Vec::new();
    for (i, q) in pods.iter().chain(services).enumerate() {
        let count = |k: Kind| q.shapes.iter().filter(|s| s.kind == k).count();
        let detail = match (count(Kind::Pod), count(Kind::Netns), count(Kind::Vip)) {
            (0, 0, 0) => format!("{} host veths", count(Kind::HostVeth)),
            (0, 0, v) => format!("{v} VIPs"),
            (0, n, _) => format!("{n} netns"),
            (1, _, _) => "1 pod".to_string(),
            (p, _, _) => format!("{p} pods"),
        };
        let mut s = shape(
            Kind::Group,
            format!("group:{}", q.title),
            q.title.clone(),
            detail,
            row_rect(x, w, MARGIN + i as i32 * ROW, 1),
        );
        s.panel = Some(i + 1);
        groups.push((p.push(s), q));
    }
    groups
}
