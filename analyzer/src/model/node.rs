//! The node itself: its bridges, uplinks, pod CIDRs and sysctls.

use super::net::Cidr;
use super::Evidence;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Node {
    /// Id of the node netns (`is_root`).
    pub netns: Option<String>,
    /// Linux bridges of the node netns that pods hang off (ifindex, name).
    pub bridges: Vec<Bridge>,
    /// Links that carry traffic off the node (default route devices, vxlan underlays).
    pub uplinks: Vec<Uplink>,
    /// Overlay links (vxlan …) with their overhead in bytes.
    pub overlays: Vec<Overlay>,
    /// Pod CIDRs of this node, derived from the addresses of pod bridges, IPAM blackhole
    /// routes and the host-local ranges of the CNI configuration in use.
    pub pod_cidrs: Vec<PodCidr>,
    /// `host/sysctl.json` values with their evidence.
    pub sysctls: BTreeMap<String, (String, Evidence)>,
    /// Whether host/sysctl.json was in the bundle.
    pub sysctls_present: bool,
    /// CPU count of the node (host facts).
    pub cpus: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bridge {
    pub ifindex: u32,
    pub name: String,
    /// Node-side veths enslaved to it whose peer is a pod.
    pub pod_ports: Vec<u32>,
    /// Promiscuous bridges hairpin for every port (kubelet promiscuous-bridge mode).
    pub promiscuous: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uplink {
    pub ifindex: u32,
    pub name: String,
    pub mtu: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlay {
    pub ifindex: u32,
    pub name: String,
    pub kind: String,
    pub mtu: u32,
    /// Encapsulation overhead (VXLAN over IPv4: 50 bytes).
    pub overhead: u32,
    /// The underlay device, when known.
    pub underlay_mtu: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodCidr {
    pub cidr: Cidr,
    /// How it was derived: `bridge cni0 address`, `route via vethXXXX` …
    pub from: String,
}

impl Node {
    pub fn in_pod_cidr(&self, ip: std::net::IpAddr) -> Option<&PodCidr> {
        self.pod_cidrs.iter().find(|c| c.cidr.contains(&ip))
    }
}
