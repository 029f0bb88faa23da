//! Building the graph from the model.

use super::{GEdge, GNode, NodeGraph, Peer};
use crate::model::{Model, Netns};
use petgraph::graph::NodeIndex;
use rayon::prelude::*;
use std::net::IpAddr;

/// Nodes and edges of one netns, with edges between local positions.
struct Subgraph {
    nodes: Vec<GNode>,
    /// (from, to, edge) by position in `nodes`.
    edges: Vec<(usize, usize, GEdge)>,
    /// (global ip, position of the interface owning it).
    ips: Vec<(IpAddr, usize)>,
}

fn subgraph(model: &Model, ns: &Netns) -> Subgraph {
    let mut g = Subgraph {
        nodes: vec![GNode::Netns {
            id: ns.id.clone(),
            is_root: ns.is_root,
        }],
        edges: Vec::new(),
        ips: Vec::new(),
    };
    if let Some(p) = model.pod_in(&ns.id) {
        g.nodes.push(GNode::Pod {
            netns: ns.id.clone(),
            name: p.display_name(),
        });
        g.edges.push((1, 0, GEdge::PodNetns));
    }
    let first_if = g.nodes.len();
    for l in &ns.links.items {
        let up = Netns::link_is_up(l);
        g.nodes.push(if l.kind.as_deref() == Some("bridge") {
            GNode::Bridge {
                netns: ns.id.clone(),
                ifindex: l.ifindex,
                name: l.name.clone(),
                up,
            }
        } else {
            GNode::Interface {
                netns: ns.id.clone(),
                ifindex: l.ifindex,
                name: l.name.clone(),
                kind: l.kind.clone(),
                up,
                mtu: l.mtu,
            }
        });
        g.edges.push((g.nodes.len() - 1, 0, GEdge::InNetns));
    }
    let pos = |ifindex: u32| {
        ns.links
            .items
            .iter()
            .position(|l| l.ifindex == ifindex)
            .map(|i| first_if + i)
    };
    for (i, l) in ns.links.items.iter().enumerate() {
        if let Some(m) = l.master.and_then(pos) {
            g.edges.push((first_if + i, m, GEdge::BridgePort));
        }
    }
    for (i, ip) in ns.global_ips() {
        if let Some(p) = ns.addrs.items.get(i).and_then(|a| pos(a.ifindex)) {
            g.ips.push((ip, p));
        }
    }
    g
}

/// Builds the graph of a model.
pub fn build(model: &Model) -> NodeGraph {
    let subs: Vec<Subgraph> = model
        .netns
        .values()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|ns| subgraph(model, ns))
        .collect();
    let mut ng = NodeGraph::default();
    let mut ip_iface: Vec<(IpAddr, NodeIndex)> = Vec::new();
    for sub in subs {
        let idx: Vec<NodeIndex> = sub
            .nodes
            .into_iter()
            .map(|n| ng.graph.add_node(n))
            .collect();
        for (a, b, e) in sub.edges {
            ng.graph.add_edge(idx[a], idx[b], e);
        }
        for (ip, p) in sub.ips {
            ip_iface.push((ip, idx[p]));
        }
        for &i in &idx {
            match &ng.graph[i] {
                GNode::Netns { id, .. } => {
                    ng.netns.insert(id.clone(), i);
                }
                GNode::Interface { netns, ifindex, .. } | GNode::Bridge { netns, ifindex, .. } => {
                    ng.ifaces.insert((netns.clone(), *ifindex), i);
                }
                _ => {}
            }
        }
    }

    // Veth peers, resolved from the node netns (nsids are relative to it).
    if let Some(root) = model.root() {
        for l in root
            .links
            .items
            .iter()
            .filter(|l| l.kind.as_deref() == Some("veth"))
        {
            let key = (root.id.clone(), l.ifindex);
            let peer = match (
                crate::model::build::veth_peer(model, root, l),
                l.link_netnsid,
            ) {
                (Some((ns, ifindex)), _) => {
                    let has_ns = model.netns.get(ns).is_some_and(|n| n.links.present);
                    match ng.ifaces.get(&(ns.to_string(), ifindex)) {
                        Some(_) => Peer::Found {
                            netns: ns.to_string(),
                            ifindex,
                        },
                        None if has_ns => Peer::MissingIfindex {
                            netns: ns.to_string(),
                            ifindex,
                        },
                        None => Peer::Unknown,
                    }
                }
                (None, Some(nsid)) => Peer::MissingNetns { nsid },
                (None, None) => Peer::Unknown,
            };
            if let Peer::Found { netns, ifindex } = &peer {
                if let (Some(&a), Some(&b)) = (
                    ng.ifaces.get(&key),
                    ng.ifaces.get(&(netns.clone(), *ifindex)),
                ) {
                    ng.graph.add_edge(a, b, GEdge::VethPeer);
                    ng.graph.add_edge(b, a, GEdge::VethPeer);
                }
            }
            ng.peers.insert(key, peer);
        }
    }

    // IP ownership.
    for (ip, iface) in &ip_iface {
        if let GNode::Interface { netns, .. } | GNode::Bridge { netns, .. } = &ng.graph[*iface] {
            let owners = ng.ip_owners.entry(*ip).or_default();
            if !owners.contains(netns) {
                owners.push(netns.clone());
                owners.sort();
            }
        }
    }

    // Services: one VIP node per frontend, one node per endpoint address.
    let mut vip_index: std::collections::HashMap<(IpAddr, u16, &str), NodeIndex> =
        std::collections::HashMap::new();
    for s in &model.services {
        let name = s.display_name();
        let mut vips = Vec::new();
        for f in &s.frontends {
            let at = ng.graph.node_count();
            if let Some(ip) = f.ip {
                vip_index
                    .entry((ip, f.port, s.protocol.as_str()))
                    .or_insert(NodeIndex::new(at));
            }
            vips.push(ng.graph.add_node(GNode::ServiceVip {
                service: name.clone(),
                ip: f.ip,
                port: f.port,
                protocol: s.protocol.to_string(),
                frontend: f.kind.as_str().to_string(),
            }));
        }
        for e in &s.endpoints {
            let ep = *ng.endpoints.entry((e.ip, e.port)).or_insert_with(|| {
                ng.graph.add_node(GNode::Endpoint {
                    ip: e.ip,
                    port: e.port,
                })
            });
            for &v in &vips {
                ng.graph.add_edge(
                    v,
                    ep,
                    GEdge::Balances {
                        share: e.share,
                        weight: e.weight,
                    },
                );
            }
        }
    }
    for (ip, iface) in &ip_iface {
        let eps: Vec<NodeIndex> = ng
            .endpoints
            .range((*ip, 0)..=(*ip, u16::MAX))
            .map(|(_, i)| *i)
            .collect();
        for ep in eps {
            ng.graph.add_edge(*iface, ep, GEdge::OwnsIp { ip: *ip });
        }
    }

    // Conntrack flow aggregates between VIPs and backends.
    for d in &model.conntrack.dnat {
        let vip = vip_index
            .get(&(d.vip, d.vport, d.protocol.as_str()))
            .copied();
        let ep = ng.endpoints.get(&(d.backend, d.backend_port)).copied();
        if let (Some(v), Some(e)) = (vip, ep) {
            ng.graph.add_edge(v, e, GEdge::Flows { flows: d.flows });
        }
    }
    ng
}
