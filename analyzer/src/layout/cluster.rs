//! The cluster overview: each node (left) and each node's pod CIDRs (right), a wire
//! from a node to every other node's pod CIDRs it has a route to (solid through an
//! overlay device, dashed through a gateway). A missing wire is a missing route.

use super::{row_rect, shape, Kind, Panel, WireKind, MARGIN, ROW};
use crate::cluster::NodeSummary;

const W_NODE: i32 = 260;
const X_CIDR: i32 = MARGIN + W_NODE + 160;
const W_CIDR: i32 = 260;

/// `nodes`: each node's name (as cluster findings name it) and summary.
pub fn overview(nodes: &[(&str, &NodeSummary)]) -> Panel {
    let mut p = Panel::new("cluster", format!("cluster of {} nodes", nodes.len()));
    let mut node_at = Vec::new();
    let mut cidr_at = Vec::new();
    for (i, (name, s)) in nodes.iter().enumerate() {
        let y = MARGIN + i as i32 * ROW;
        let overlays: Vec<&str> = s.overlays.iter().map(|o| o.name.as_str()).collect();
        let detail = match overlays.is_empty() {
            true => "no overlay device".to_string(),
            false => format!("overlay {}", overlays.join(", ")),
        };
        let mut n = shape(
            Kind::Node,
            format!("cluster-node:{name}"),
            name.to_string(),
            detail,
            row_rect(MARGIN, W_NODE, y, 1),
        );
        n.subjects = vec![name.to_string()];
        node_at.push(p.push(n));
        let cidrs: Vec<String> = s.pod_cidrs.iter().map(|c| c.value.to_string()).collect();
        let label = match cidrs.is_empty() {
            true => "no pod CIDR found".to_string(),
            false => cidrs.join(", "),
        };
        cidr_at.push(p.push(shape(
            Kind::Cidr,
            format!("pod-cidr:{name}"),
            label,
            format!("pods of {name}"),
            row_rect(X_CIDR, W_CIDR, y, 1),
        )));
    }
    for (i, (_, s)) in nodes.iter().enumerate() {
        for (j, (_, other)) in nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            let via = s.routes.iter().find(|r| {
                other.pod_cidrs.iter().any(|c| {
                    r.dst.contains(&c.value.network()) && r.dst.prefix_len() <= c.value.prefix_len()
                })
            });
            if let Some(r) = via.filter(|r| r.kind == "unicast") {
                let kind = if r.overlay.is_some() {
                    WireKind::Uplink
                } else {
                    WireKind::Route
                };
                p.wire(node_at[i], cidr_at[j], kind);
            }
        }
    }
    p
}
