//! The node graph (petgraph), the model of connectivity: netns, pods, interfaces,
//! bridges, addresses, the missing peers of dangling veths, service VIPs and endpoints
//! as nodes; membership, veth peers, bridge ports, address assignment, routes into
//! other netns, IP ownership of endpoints, VIP → endpoint (share/weight) and conntrack
//! flow aggregates as edges. Connectivity checks (and the trace engine) walk it through
//! the queries of `query.rs`.
//!
//! Per-netns subgraphs are built in parallel and appended in netns id order, then the
//! cross-netns edges are added in a fixed order: node and edge indices, and so every
//! output, are the same for any thread count.

mod build;
mod query;

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
    /// A global address assigned in some netns.
    Address {
        ip: IpAddr,
    },
    /// The peer a node veth points at, which the bundle does not have: in netns
    /// `netns` (known, without that ifindex), or behind an nsid no captured netns has.
    MissingPeer {
        host_netns: String,
        host_ifindex: u32,
        netns: Option<String>,
        nsid: Option<i32>,
        ifindex: Option<u32>,
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
            GNode::Address { ip } => format!("ip:{ip}"),
            GNode::MissingPeer {
                host_netns,
                host_ifindex,
                ..
            } => format!("missing-peer:{host_netns}/{host_ifindex}"),
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
            GNode::Address { ip } => ip.to_string(),
            GNode::MissingPeer {
                netns: Some(netns),
                ifindex: Some(ifindex),
                ..
            } => format!("missing peer\\n{netns} ifindex {ifindex}"),
            GNode::MissingPeer {
                nsid: Some(nsid), ..
            } => {
                format!("missing peer\\nnsid {nsid}")
            }
            GNode::MissingPeer { .. } => "missing peer".to_string(),
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
    /// Veth → its peer (both ways), or a dangling veth → its missing peer.
    VethPeer,
    /// Port → bridge.
    BridgePort,
    /// Interface → address assigned to it.
    Assigned,
    /// Netns → the veth or bridge a route of it leaves through (towards other netns).
    Route {
        dst: String,
        gateway: Option<String>,
        table: u32,
    },
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

/// The graph and indices from keys to its nodes (lookups only: every relation is an
/// edge).
#[derive(Debug, Default)]
pub struct NodeGraph {
    pub graph: DiGraph<GNode, GEdge>,
    pub ifaces: BTreeMap<(String, u32), NodeIndex>,
    pub netns: BTreeMap<String, NodeIndex>,
    pub endpoints: BTreeMap<(IpAddr, u16), NodeIndex>,
    pub addresses: BTreeMap<IpAddr, NodeIndex>,
}
