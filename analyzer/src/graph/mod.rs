//! The node graph (petgraph): netns, pods, interfaces, bridges, service VIPs and
//! endpoints as nodes; membership, veth peers, bridge ports, IP ownership,
//! VIP → endpoint (share/weight) and conntrack flow aggregates as edges.
//!
//! Per-netns subgraphs are built in parallel and appended in netns id order, then the
//! cross-netns edges are added in a fixed order: node and edge indices, and so every
//! output, are the same for any thread count.

mod build;

pub use build::build;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GNode {
    Netns {
        id: String,
        is_root: bool,
    },
    Pod {
        netns: String,
        name: String,
    },
    Interface {
        netns: String,
        ifindex: u32,
        name: String,
        kind: Option<String>,
        up: bool,
        mtu: u32,
    },
    Bridge {
        netns: String,
        ifindex: u32,
        name: String,
        up: bool,
    },
    ServiceVip {
        service: String,
        ip: Option<IpAddr>,
        port: u16,
        protocol: String,
        frontend: String,
    },
    Endpoint {
        ip: IpAddr,
        port: u16,
    },
}

impl GNode {
    /// A stable, unique, human-readable id (`iface:root/3`, `vip:10.96.0.10:53/udp` …).
    pub fn key(&self) -> String {
        match self {
            GNode::Netns { id, .. } => format!("netns:{id}"),
            GNode::Pod { netns, .. } => format!("pod:{netns}"),
            GNode::Interface { netns, ifindex, .. } | GNode::Bridge { netns, ifindex, .. } => {
                format!("iface:{netns}/{ifindex}")
            }
            GNode::ServiceVip {
                service,
                ip,
                port,
                protocol,
                frontend,
            } => match ip {
                Some(ip) => format!(
                    "vip:{service}:{}/{protocol}",
                    crate::model::services::sockaddr(*ip, *port)
                ),
                None => format!("vip:{service}:{frontend}:{port}/{protocol}"),
            },
            GNode::Endpoint { ip, port } => {
                format!("ep:{}", crate::model::services::sockaddr(*ip, *port))
            }
        }
    }

    /// Short label for dot output.
    pub fn label(&self) -> String {
        match self {
            GNode::Netns { id, .. } => format!("netns {id}"),
            GNode::Pod { name, .. } => format!("pod {name}"),
            GNode::Interface { name, ifindex, .. } | GNode::Bridge { name, ifindex, .. } => {
                format!("{name} ({ifindex})")
            }
            GNode::ServiceVip {
                service,
                ip,
                port,
                protocol,
                frontend,
            } => match ip {
                Some(ip) => format!(
                    "{service}\\n{} {}/{protocol}",
                    frontend,
                    crate::model::services::sockaddr(*ip, *port)
                ),
                None => format!("{service}\\n{frontend} :{port}/{protocol}"),
            },
            GNode::Endpoint { ip, port } => crate::model::services::sockaddr(*ip, *port),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GEdge {
    /// Interface or pod → its netns.
    InNetns,
    /// Pod → its netns.
    PodNetns,
    /// Host veth → pod veth (and back).
    VethPeer,
    /// Port → bridge.
    BridgePort,
    /// Interface → endpoint it owns the address of.
    OwnsIp { ip: IpAddr },
    /// VIP → endpoint.
    Balances {
        share: Option<f64>,
        weight: Option<u32>,
    },
    /// Conntrack flows VIP → endpoint.
    Flows { flows: u64 },
}

/// What the veth peer of a link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Resolved to an interface present in the bundle.
    Found { netns: String, ifindex: u32 },
    /// Points into a netns the bundle has, at an ifindex it does not have.
    MissingIfindex { netns: String, ifindex: u32 },
    /// Points at an nsid no captured netns has.
    MissingNetns { nsid: i32 },
    /// Not resolvable from this side (non-node netns: nsids are relative).
    Unknown,
}

#[derive(Debug, Default)]
pub struct NodeGraph {
    pub graph: DiGraph<GNode, GEdge>,
    pub ifaces: BTreeMap<(String, u32), NodeIndex>,
    pub netns: BTreeMap<String, NodeIndex>,
    pub endpoints: BTreeMap<(IpAddr, u16), NodeIndex>,
    /// Peer of every veth of the node netns, by (netns, ifindex).
    pub peers: BTreeMap<(String, u32), Peer>,
    /// Netns owning each global address (sorted, deduplicated).
    pub ip_owners: BTreeMap<IpAddr, Vec<String>>,
}

impl NodeGraph {
    pub fn peer(&self, netns: &str, ifindex: u32) -> Option<&Peer> {
        self.peers.get(&(netns.to_string(), ifindex))
    }

    /// Netns that own `ip` (empty when none does).
    pub fn owners(&self, ip: IpAddr) -> &[String] {
        self.ip_owners.get(&ip).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Host-side (node netns) veths whose peer is (`netns`, any ifindex).
    pub fn host_peers_of(&self, netns: &str) -> Vec<(u32, u32)> {
        self.peers
            .iter()
            .filter_map(|((_, host_if), p)| match p {
                Peer::Found { netns: n, ifindex } if n == netns => Some((*host_if, *ifindex)),
                _ => None,
            })
            .collect()
    }
}
