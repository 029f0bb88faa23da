//! IPVS mode: what besides the virtual servers (which are [`super::Service`]s with
//! proxier `ipvs`) the SVC006 checks compare: kube-proxy's ipsets and kube-ipvs0.

use super::services::Protocol;
use super::Evidence;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ipvs {
    /// `ipvs/ip_vs.txt` was in the bundle.
    pub present: bool,
    /// Members of kube-proxy's `KUBE-CLUSTER-IP` ipset, when captured.
    pub cluster_ip_set: Option<Vec<IpsetMember>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpsetMember {
    pub ip: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
    pub evidence: Evidence,
}
