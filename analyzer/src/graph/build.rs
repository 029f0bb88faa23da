//! Building the graph from the model.

use super::{GEdge, GNode, NodeGraph, Peer};
use crate::model::{Model, Netns};
use netsnap_schema::model::Link;
use petgraph::graph::NodeIndex;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
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
    // Routes that leave through a veth or a bridge lead into other netns.
    for r in ns.routes.items.iter().filter(|r| r.kind == "unicast") {
        let Some((p, l)) = r.oif.and_then(|oif| Some((pos(oif)?, ns.link(oif)?.1))) else {
            continue;
        };
        if matches!(l.kind.as_deref(), Some("veth" | "bridge")) {
            g.edges.push((
                0,
                p,
                GEdge::Route {
                    dst: r.dst.clone(),
                    gateway: r.gateway.clone(),
                    table: r.table,
                },
            ));
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
    let ip_iface = append_subgraphs(&mut ng, subs);
    veth_peers(&mut ng, model);
    addresses(&mut ng, &ip_iface);
    let (vip_index, endpoint_index) = services(&mut ng, model);
    endpoint_owners(&mut ng, &ip_iface);
    conntrack_flows(&mut ng, model, &vip_index, &endpoint_index);
    ng
}

/// Appends the per-netns subgraphs in netns order; returns (ip, interface) pairs.
fn append_subgraphs(ng: &mut NodeGraph, subs: Vec<Subgraph>) -> Vec<(IpAddr, NodeIndex)> {
    let mut ip_iface = Vec::new();
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
    ip_iface
}

/// What the veth `l` of `root` points at.
fn resolve_peer(ng: &NodeGraph, model: &Model, root: &Netns, l: &Link) -> Peer {
    match (
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
    }
}

/// Veth peers, resolved from the node netns (nsids are relative to it): an edge each
/// way to a peer the bundle has, one edge to a missing-peer node for a dangling veth.
fn veth_peers(ng: &mut NodeGraph, model: &Model) {
    let Some(root) = model.root() else {
        return;
    };
    for l in root
        .links
        .items
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth"))
    {
        let Some(host) = ng.iface(&root.id, l.ifindex) else {
            continue;
        };
        let (netns, nsid, ifindex) = match resolve_peer(ng, model, root, l) {
            Peer::Found { netns, ifindex } => {
                if let Some(peer) = ng.iface(&netns, ifindex) {
                    ng.graph.add_edge(host, peer, GEdge::VethPeer);
                    ng.graph.add_edge(peer, host, GEdge::VethPeer);
                }
                continue;
            }
            Peer::MissingIfindex { netns, ifindex } => (Some(netns), None, Some(ifindex)),
            Peer::MissingNetns { nsid } => (None, Some(nsid), l.link),
            Peer::Unknown => continue,
        };
        let missing = ng.graph.add_node(GNode::MissingPeer {
            host_netns: root.id.clone(),
            host_ifindex: l.ifindex,
            netns,
            nsid,
            ifindex,
        });
        ng.graph.add_edge(host, missing, GEdge::VethPeer);
    }
}

/// One node per assigned global address (in address order), an edge from each
/// interface that holds it.
fn addresses(ng: &mut NodeGraph, ip_iface: &[(IpAddr, NodeIndex)]) {
    let mut holders: BTreeMap<IpAddr, Vec<NodeIndex>> = BTreeMap::new();
    for (ip, iface) in ip_iface {
        holders.entry(*ip).or_default().push(*iface);
    }
    for (ip, ifaces) in holders {
        let addr = ng.graph.add_node(GNode::Address { ip });
        ng.addresses.insert(ip, addr);
        for iface in ifaces {
            ng.graph.add_edge(iface, addr, GEdge::Assigned);
        }
    }
}

type VipIndex = HashMap<(IpAddr, u16, &'static str), NodeIndex, crate::fx::Fx>;
type EndpointIndex = HashMap<(IpAddr, u16), NodeIndex, crate::fx::Fx>;

/// Services: one VIP node per frontend, one node per endpoint address. Endpoints are
/// looked up in a hash map while the graph is built (one insert each into the graph's
/// ordered map was a third of this serial stage) and put in order once at the end.
fn services(ng: &mut NodeGraph, model: &Model) -> (VipIndex, EndpointIndex) {
    // A big node has ~100k of each: room made once, not by doubling on this serial path.
    let frontends: usize = model.services.iter().map(|s| s.frontends.len()).sum();
    let endpoints: usize = model.services.iter().map(|s| s.endpoints.len()).sum();
    let balances: usize = model
        .services
        .iter()
        .map(|s| s.endpoints.len() * s.frontends.len())
        .sum();
    ng.graph.reserve_nodes(frontends + endpoints);
    ng.graph.reserve_edges(balances);
    let mut vip_index = VipIndex::with_capacity_and_hasher(frontends, Default::default());
    let mut endpoint_index = EndpointIndex::with_capacity_and_hasher(endpoints, Default::default());
    for s in &model.services {
        let name = s.display_name();
        let mut vips = Vec::new();
        for f in &s.frontends {
            let vip = ng.graph.add_node(GNode::ServiceVip {
                service: name.clone(),
                ip: f.ip,
                port: f.port,
                protocol: s.protocol.to_string(),
                frontend: f.kind.as_str().to_string(),
            });
            if let Some(ip) = f.ip {
                vip_index
                    .entry((ip, f.port, s.protocol.as_str()))
                    .or_insert(vip);
            }
            vips.push(vip);
        }
        for e in &s.endpoints {
            let ep = *endpoint_index.entry((e.ip, e.port)).or_insert_with(|| {
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
    // Built from sorted keys in one go (`collect`, `append`), not inserted one by one.
    let mut ordered: BTreeMap<(IpAddr, u16), NodeIndex> =
        endpoint_index.iter().map(|(k, v)| (*k, *v)).collect();
    ng.endpoints.append(&mut ordered);
    (vip_index, endpoint_index)
}

/// Interface → endpoint whose address it holds.
fn endpoint_owners(ng: &mut NodeGraph, ip_iface: &[(IpAddr, NodeIndex)]) {
    for (ip, iface) in ip_iface {
        let eps: Vec<NodeIndex> = ng
            .endpoints
            .range((*ip, 0)..=(*ip, u16::MAX))
            .map(|(_, i)| *i)
            .collect();
        for ep in eps {
            ng.graph.add_edge(*iface, ep, GEdge::OwnsIp { ip: *ip });
        }
    }
}

/// Conntrack flow aggregates between VIPs and backends: looked up in parallel (a big
/// node has ~100k), added in the aggregates' order.
fn conntrack_flows(
    ng: &mut NodeGraph,
    model: &Model,
    vip_index: &VipIndex,
    endpoint_index: &EndpointIndex,
) {
    let edges: Vec<(NodeIndex, NodeIndex, u64)> = model
        .conntrack
        .dnat
        .par_iter()
        .filter_map(|d| {
            let vip = vip_index.get(&(d.vip, d.vport, d.protocol.as_str()))?;
            let ep = endpoint_index.get(&(d.backend, d.backend_port))?;
            Some((*vip, *ep, d.flows))
        })
        .collect();
    ng.graph.reserve_edges(edges.len());
    for (v, e, flows) in edges {
        ng.graph.add_edge(v, e, GEdge::Flows { flows });
    }
}
