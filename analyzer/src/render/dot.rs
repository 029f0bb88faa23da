//! The node graph as Graphviz dot, and as JSON (`netsnap graph --format json`).

use crate::graph::{GEdge, GNode, NodeGraph};
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::fmt::Write;

pub(crate) fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("\\\\n", "\\n")
}

fn edge_label(e: &GEdge) -> String {
    match e {
        GEdge::InNetns | GEdge::PodNetns => String::new(),
        GEdge::VethPeer => "veth".into(),
        GEdge::BridgePort => "port".into(),
        GEdge::Assigned => String::new(),
        GEdge::Route { dst, .. } => format!("route {dst}"),
        GEdge::OwnsIp { ip } => ip.to_string(),
        GEdge::Balances { share: Some(p), .. } => format!("{:.0}%", p * 100.0),
        GEdge::Balances {
            weight: Some(w), ..
        } => format!("w{w}"),
        GEdge::Balances { .. } => String::new(),
        GEdge::Flows { flows } => format!("{flows} flows"),
    }
}

pub fn render_dot(g: &NodeGraph) -> String {
    let mut out = String::from(
        "digraph netsnap {\n  rankdir=LR;\n  node [fontsize=10];\n  edge [fontsize=9];\n",
    );
    for i in g.graph.node_indices() {
        let n = &g.graph[i];
        let (shape, extra) = match n {
            GNode::Netns { is_root: true, .. } => ("box3d", ", style=bold"),
            GNode::Netns { .. } => ("box3d", ""),
            GNode::Pod { .. } => ("component", ""),
            GNode::Interface { up: false, .. } | GNode::Bridge { up: false, .. } => {
                ("ellipse", ", color=red")
            }
            GNode::Interface { .. } => ("ellipse", ""),
            GNode::Bridge { .. } => ("hexagon", ""),
            GNode::ServiceVip { .. } => ("diamond", ""),
            GNode::Endpoint { .. } => ("circle", ""),
            GNode::Address { .. } => ("note", ""),
            GNode::MissingPeer { .. } => ("ellipse", ", style=dashed, color=red"),
        };
        let _ = writeln!(
            out,
            "  n{} [label=\"{}\", shape={shape}{extra}];",
            i.index(),
            esc(&n.label())
        );
    }
    for e in g.graph.edge_references() {
        let style = match e.weight() {
            GEdge::InNetns | GEdge::PodNetns => ", style=dotted, arrowhead=none",
            GEdge::Flows { .. } => ", style=dashed, color=blue",
            GEdge::Route { .. } => ", color=gray",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"{style}];",
            e.source().index(),
            e.target().index(),
            esc(&edge_label(e.weight()))
        );
    }
    out.push_str("}\n");
    out
}

#[derive(Serialize)]
struct JsonNode<'a> {
    id: String,
    #[serde(flatten)]
    node: &'a GNode,
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    from: String,
    to: String,
    #[serde(flatten)]
    edge: &'a GEdge,
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    version: u32,
    nodes: Vec<JsonNode<'a>>,
    edges: Vec<JsonEdge<'a>>,
}

pub fn render_json(g: &NodeGraph) -> String {
    let doc = JsonGraph {
        version: crate::report::REPORT_VERSION,
        nodes: g
            .graph
            .node_indices()
            .map(|i| JsonNode {
                id: g.graph[i].key(),
                node: &g.graph[i],
            })
            .collect(),
        edges: g
            .graph
            .edge_references()
            .map(|e| JsonEdge {
                from: g.graph[e.source()].key(),
                to: g.graph[e.target()].key(),
                edge: e.weight(),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}
