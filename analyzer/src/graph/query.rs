//! Walking the graph: the questions connectivity checks (and the trace engine) ask,
//! answered from edges only.

use super::{GEdge, GNode, NodeGraph, Peer};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction::{Incoming, Outgoing};
use std::net::IpAddr;

/// A VIP → endpoint edge: the endpoint and its share (iptables/nft) or weight (IPVS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backend {
    pub endpoint: NodeIndex,
    pub share: Option<f64>,
    pub weight: Option<u32>,
}

impl NodeGraph {
    /// The interface (or bridge) `ifindex` of `netns`.
    pub fn iface(&self, netns: &str, ifindex: u32) -> Option<NodeIndex> {
        self.ifaces.get(&(netns.to_string(), ifindex)).copied()
    }

    /// Targets of the edges of `from` that `pick` accepts.
    fn targets(&self, from: NodeIndex, pick: fn(&GEdge) -> bool) -> Vec<NodeIndex> {
        self.graph
            .edges_directed(from, Outgoing)
            .filter(|e| pick(e.weight()))
            .map(|e| e.target())
            .collect()
    }

    /// The netns an interface, bridge or pod is in.
    pub fn netns_of(&self, node: NodeIndex) -> Option<&str> {
        let ns = self
            .targets(node, |e| matches!(e, GEdge::InNetns | GEdge::PodNetns))
            .into_iter()
            .next()?;
        match &self.graph[ns] {
            GNode::Netns { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The other end of a veth: an interface, or the missing peer of a dangling veth.
    pub fn peer_of(&self, iface: NodeIndex) -> Option<NodeIndex> {
        self.targets(iface, |e| matches!(e, GEdge::VethPeer))
            .into_iter()
            .next()
    }

    /// What the peer of veth (`netns`, `ifindex`) is; `None` when the graph does not
    /// know (not a veth, or not resolvable from its side).
    pub fn peer(&self, netns: &str, ifindex: u32) -> Option<Peer> {
        let peer = self.peer_of(self.iface(netns, ifindex)?)?;
        match &self.graph[peer] {
            GNode::Interface { netns, ifindex, .. } | GNode::Bridge { netns, ifindex, .. } => {
                Some(Peer::Found {
                    netns: netns.clone(),
                    ifindex: *ifindex,
                })
            }
            GNode::MissingPeer {
                netns: Some(netns),
                ifindex: Some(ifindex),
                ..
            } => Some(Peer::MissingIfindex {
                netns: netns.clone(),
                ifindex: *ifindex,
            }),
            GNode::MissingPeer {
                nsid: Some(nsid), ..
            } => Some(Peer::MissingNetns { nsid: *nsid }),
            _ => Some(Peer::Unknown),
        }
    }

    /// The veths of `netns` whose peer is an interface in `peer_netns`.
    pub fn veths_to(&self, netns: &str, peer_netns: &str) -> Vec<NodeIndex> {
        self.ifaces
            .range((netns.to_string(), 0)..=(netns.to_string(), u32::MAX))
            .map(|(_, i)| *i)
            .filter(|i| {
                let is_veth = matches!(&self.graph[*i], GNode::Interface { kind: Some(k), .. } if k == "veth");
                is_veth && self.peer_of(*i).is_some_and(|p| {
                    matches!(self.graph[p], GNode::Interface { .. } | GNode::Bridge { .. })
                        && self.netns_of(p) == Some(peer_netns)
                })
            })
            .collect()
    }

    /// The bridge an interface is a port of.
    pub fn master_of(&self, iface: NodeIndex) -> Option<NodeIndex> {
        self.targets(iface, |e| matches!(e, GEdge::BridgePort))
            .into_iter()
            .next()
    }

    /// Netns that hold `ip` (sorted, each once; empty when none does).
    pub fn owners(&self, ip: IpAddr) -> Vec<String> {
        let Some(&addr) = self.addresses.get(&ip) else {
            return Vec::new();
        };
        let mut owners: Vec<String> = self
            .graph
            .edges_directed(addr, Incoming)
            .filter(|e| matches!(e.weight(), GEdge::Assigned))
            .filter_map(|e| self.netns_of(e.source()).map(String::from))
            .collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// Every assigned global address, in address order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses.keys().copied()
    }

    /// The endpoints a VIP balances to, in rule order.
    pub fn endpoints_of(&self, vip: NodeIndex) -> Vec<Backend> {
        let mut out: Vec<Backend> = self
            .graph
            .edges_directed(vip, Outgoing)
            .filter_map(|e| match e.weight() {
                GEdge::Balances { share, weight } => Some(Backend {
                    endpoint: e.target(),
                    share: *share,
                    weight: *weight,
                }),
                _ => None,
            })
            .collect();
        // petgraph lists a node's edges newest first.
        out.reverse();
        out
    }

    /// Every service VIP node.
    pub fn vips(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph
            .node_indices()
            .filter(|i| matches!(self.graph[*i], GNode::ServiceVip { .. }))
    }
}
