//! The service panels of a node's picture: each VIP and the endpoints it balances to.

use super::{
    row_rect, shape, Kind, Panel, WireKind, MARGIN, MAX_DRAWN_ENDPOINTS, ROW, SERVICES_PER_PANEL,
};
use crate::graph::{GNode, NodeGraph};
use crate::model::services::sockaddr;
use crate::model::Model;
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};

const X_VIP: i32 = MARGIN;
const W_VIP: i32 = 330;
const X_EP: i32 = X_VIP + W_VIP + 50;
const W_EP: i32 = 240;

/// One service port: its VIPs (by key, each once) and its endpoints.
#[derive(Default)]
struct Svc<'g> {
    vips: BTreeMap<String, &'g GNode>,
    endpoints: BTreeMap<String, NodeIndex>,
    /// VIP key → endpoint keys it balances to.
    balances: BTreeSet<(String, String)>,
}

fn namespace_of(service: &str) -> String {
    match service.split_once('/') {
        Some((ns, _)) => ns.to_string(),
        None => "(no namespace)".into(),
    }
}

/// Services by namespace, then by name.
fn collect(g: &NodeGraph) -> BTreeMap<String, BTreeMap<String, Svc<'_>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Svc<'_>>> = BTreeMap::new();
    for vip in g.vips() {
        let node = &g.graph[vip];
        let GNode::ServiceVip { service, .. } = node else {
            continue;
        };
        let svc = out
            .entry(namespace_of(service))
            .or_default()
            .entry(service.clone())
            .or_default();
        let key = node.key();
        for b in g.endpoints_of(vip) {
            let ek = g.graph[b.endpoint].key();
            svc.endpoints.insert(ek.clone(), b.endpoint);
            svc.balances.insert((key.clone(), ek));
        }
        svc.vips.insert(key, node);
    }
    out
}

fn owner(model: &Model, g: &NodeGraph, ep: &GNode) -> String {
    let GNode::Endpoint { ip, .. } = ep else {
        return String::new();
    };
    let owners: Vec<String> = g
        .owners(*ip)
        .iter()
        .map(|ns| {
            model
                .pod_in(ns)
                .map_or_else(|| format!("netns {ns}"), |p| p.display_name())
        })
        .collect();
    if owners.is_empty() {
        "owned by no captured netns".into()
    } else {
        owners.join(", ")
    }
}

fn vip_detail(node: &GNode) -> String {
    match node {
        GNode::ServiceVip {
            ip: Some(ip),
            port,
            protocol,
            frontend,
            ..
        } => {
            format!("{frontend} {}/{protocol}", sockaddr(*ip, *port))
        }
        GNode::ServiceVip {
            port,
            protocol,
            frontend,
            ..
        } => format!("{frontend} :{port}/{protocol}"),
        _ => String::new(),
    }
}

/// One service's rows; returns the rows used.
fn service_block(
    p: &mut Panel,
    model: &Model,
    g: &NodeGraph,
    name: &str,
    svc: &Svc<'_>,
    y0: i32,
    draw_eps: bool,
) -> i32 {
    let mut vip_at = BTreeMap::new();
    for (k, (key, node)) in svc.vips.iter().enumerate() {
        let mut detail = vip_detail(node);
        if !draw_eps {
            detail.push_str(&format!(", {} endpoints", svc.endpoints.len()));
        }
        let rect = row_rect(X_VIP, W_VIP, y0 + k as i32 * ROW, 1);
        let mut vip = shape(Kind::Vip, key.clone(), name.to_string(), detail, rect);
        vip.subjects = vec![format!("service {name}")];
        let i = p.push(vip);
        vip_at.insert(key.as_str(), i);
    }
    let mut rows = svc.vips.len();
    if draw_eps {
        let mut ep_at = BTreeMap::new();
        for (k, (key, &idx)) in svc.endpoints.iter().enumerate() {
            let node = &g.graph[idx];
            let rect = row_rect(X_EP, W_EP, y0 + k as i32 * ROW, 1);
            let detail = owner(model, g, node);
            let i = p.push(shape(
                Kind::Endpoint,
                key.clone(),
                node.label(),
                detail,
                rect,
            ));
            ep_at.insert(key.as_str(), i);
        }
        for (v, e) in &svc.balances {
            if let (Some(&a), Some(&b)) = (vip_at.get(v.as_str()), ep_at.get(e.as_str())) {
                p.wire(a, b, WireKind::Balances);
            }
        }
        rows = rows.max(svc.endpoints.len());
    }
    rows.max(1) as i32
}

/// One panel per service namespace (split every [`SERVICES_PER_PANEL`] services).
/// `faulty`: the services a finding names (their endpoints are always drawn).
pub fn service_panels(g: &NodeGraph, model: &Model, faulty: &BTreeSet<String>) -> Vec<Panel> {
    let all = collect(g);
    let total: usize = all
        .values()
        .flat_map(|m| m.values())
        .map(|s| s.endpoints.len())
        .sum();
    let draw_all = total <= MAX_DRAWN_ENDPOINTS;
    let mut panels = Vec::new();
    for (ns, services) in &all {
        let list: Vec<(&String, &Svc<'_>)> = services.iter().collect();
        let chunks = list.chunks(SERVICES_PER_PANEL);
        let n = chunks.len();
        for (c, chunk) in chunks.enumerate() {
            let title = if n == 1 {
                format!("services in {ns}")
            } else {
                let first = c * SERVICES_PER_PANEL + 1;
                format!("services in {ns} ({first}–{})", first + chunk.len() - 1)
            };
            let mut p = Panel::new("services", title);
            let mut y = MARGIN;
            let mut hidden = 0;
            for (name, svc) in chunk {
                let draw = draw_all || faulty.contains(name.as_str());
                if !draw {
                    hidden += svc.endpoints.len();
                }
                y += service_block(&mut p, model, g, name, svc, y, draw) * ROW;
            }
            if hidden > 0 {
                p.note = Some(format!(
                    "{hidden} endpoints of healthy services counted, not drawn"
                ));
            }
            panels.push(p);
        }
    }
    panels
}

/// Every service name of the graph a finding subject names (by the rule of
/// [`super::resolve_in`]).
pub fn named_services(g: &NodeGraph, subjects: &[&str]) -> BTreeSet<String> {
    let names: BTreeSet<String> = g
        .vips()
        .filter_map(|v| match &g.graph[v] {
            GNode::ServiceVip { service, .. } => Some(service.clone()),
            _ => None,
        })
        .collect();
    let subj: Vec<String> = names.iter().map(|n| format!("service {n}")).collect();
    let index: BTreeMap<&str, Vec<super::ShapeRef>> = subj
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), vec![(0, i)]))
        .collect();
    let names: Vec<&String> = names.iter().collect();
    subjects
        .iter()
        .flat_map(|s| super::resolve_in(&index, s))
        .map(|(_, i)| names[i].clone())
        .collect()
}
