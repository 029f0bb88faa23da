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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{healthy, ip, ROOT};

    fn host_ifindex(k: &mut crate::check::testkit::Kit, name: &str) -> u32 {
        let l = k.root().links.items.iter().find(|l| l.name == name);
        l.map(|l| l.ifindex).unwrap_or(0)
    }

    #[test]
    fn veth_peers_and_netns_are_edges() {
        let mut k = healthy();
        let veth = k.host_veth("web-1");
        let host = host_ifindex(&mut k, &veth);
        let (web1, web2) = (k.pod_netns_id("web-1"), k.pod_netns_id("web-2"));
        let (_, g) = k.build();
        let veth = g.iface(ROOT, host).expect("host veth");
        let peer = g.peer_of(veth).expect("peer");
        assert_eq!(g.netns_of(peer), Some(web1.as_str()));
        assert_eq!(g.peer_of(peer), Some(veth));
        assert_eq!(g.veths_to(&web1, ROOT), vec![peer]);
        assert!(g.veths_to(&web1, &web2).is_empty());
        let bridge = g.master_of(veth).expect("enslaved");
        assert!(matches!(&g.graph[bridge], GNode::Bridge { name, .. } if name == "cni0"));
        // The node routes its pod subnet into cni0, each pod its default route into eth0.
        let routes_into = |ns: &str, to: NodeIndex| {
            g.graph
                .edges_connecting(g.netns[ns], to)
                .any(|e| matches!(e.weight(), GEdge::Route { .. }))
        };
        assert!(routes_into(ROOT, bridge));
        assert!(routes_into(&web1, peer));
    }

    #[test]
    fn dangling_veth_points_at_a_missing_peer() {
        let mut k = healthy();
        let veth = k.host_veth("web-2");
        let host = host_ifindex(&mut k, &veth);
        let web2 = k.pod_netns_id("web-2");
        k.model().netns.remove(&web2);
        let (_, g) = k.build();
        let nsid = match g.peer(ROOT, host) {
            Some(Peer::MissingNetns { nsid }) => nsid,
            other => panic!("{other:?}"),
        };
        let missing = g.peer_of(g.iface(ROOT, host).expect("veth")).expect("edge");
        assert!(matches!(g.graph[missing], GNode::MissingPeer { nsid: Some(n), .. } if n == nsid));
        // Peer netns present, its ifindex gone.
        let mut k = healthy();
        k.pod_ns("web-2").links.items.retain(|l| l.name != "eth0");
        let (_, g) = k.build();
        assert_eq!(
            g.peer(ROOT, host),
            Some(Peer::MissingIfindex {
                netns: web2.clone(),
                ifindex: 2
            })
        );
    }

    #[test]
    fn owners_of_an_address() {
        let mut k = healthy();
        let (_, g) = k.build();
        assert_eq!(g.owners(ip("10.244.1.11")), vec![k.pod_netns_id("web-1")]);
        assert_eq!(g.owners(ip("10.244.1.1")), vec![ROOT.to_string()]);
        assert!(g.owners(ip("10.244.1.99")).is_empty());
        assert!(g.addresses().any(|a| a == ip("10.0.0.10")));
        // Loopback addresses are not global: no node.
        assert!(g.addresses().all(|a| !a.is_loopback()));
        k.pod_ns("client").addrs.items[1].address = "10.244.1.11".into();
        let (_, g) = k.build();
        assert_eq!(
            g.owners(ip("10.244.1.11")),
            vec![k.pod_netns_id("web-1"), k.pod_netns_id("client")]
        );
    }

    #[test]
    fn endpoints_of_a_vip() {
        let mut k = healthy();
        let (_, g) = k.build();
        let vip = g
            .vips()
            .find(|v| matches!(&g.graph[*v], GNode::ServiceVip { ip: Some(i), .. } if *i == ip("10.96.1.1")))
            .expect("web VIP");
        let eps: Vec<(GNode, Option<f64>)> = g
            .endpoints_of(vip)
            .into_iter()
            .map(|b| (g.graph[b.endpoint].clone(), b.share))
            .collect();
        let want = |a: &str| GNode::Endpoint {
            ip: ip(a),
            port: 8080,
        };
        assert_eq!(eps.len(), 2, "{eps:?}");
        assert_eq!(eps[0].0, want("10.244.1.11"));
        assert_eq!(eps[1].0, want("10.244.1.12"));
        assert!(eps.iter().all(|(_, s)| s.is_some()));
    }
}
