//! IPVS mode: what besides the virtual servers (which are [`super::Service`]s with
//! proxier `ipvs`) the SVC006 checks compare: kube-proxy's ipsets and kube-ipvs0; and
//! the virtual servers as IPVS itself holds them (scheduler, forward method and weight
//! of each real server, each with its `ipvs/ip_vs.txt` line), for the trace engine.

use super::services::Protocol;
use super::Evidence;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ipvs {
    /// `ipvs/ip_vs.txt` was in the bundle.
    pub present: bool,
    /// The collector found no IPVS table (`ip_vs` not loaded): its manifest record.
    pub not_loaded: Option<Evidence>,
    /// Members of kube-proxy's `KUBE-CLUSTER-IP` ipset, when captured.
    pub cluster_ip_set: Option<Vec<IpsetMember>>,
    /// The address/port virtual servers of `ipvs/ip_vs.txt`, in file order
    /// (firewall-mark services are not kept: kube-proxy does not make them).
    pub virtual_servers: Vec<VirtualServer>,
}

impl Ipvs {
    /// The virtual server for `ip:port/protocol`, if IPVS has one.
    pub fn virtual_server(
        &self,
        ip: IpAddr,
        port: u16,
        protocol: Protocol,
    ) -> Option<&VirtualServer> {
        self.virtual_servers
            .iter()
            .find(|v| v.ip == ip && v.port == port && v.protocol == protocol)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpsetMember {
    pub ip: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
    pub evidence: Evidence,
}

/// One IPVS virtual service (`TCP  0A600C22:0050 rr`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub protocol: Protocol,
    pub ip: IpAddr,
    pub port: u16,
    /// `rr`, `wrr`, `lc`, `sh` …
    pub scheduler: String,
    /// Persistence timeout in seconds (`persistent N`: sessionAffinity ClientIP).
    pub persistent: Option<u32>,
    /// The virtual server's line.
    pub evidence: Evidence,
    pub real_servers: Vec<RealServer>,
}

/// One real server of a virtual service (`  -> 0AF4010B:1F90      Masq    1 …`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub ip: IpAddr,
    /// 0: the virtual port is kept.
    pub port: u16,
    /// `Masq`, `Local`, `Tunnel`, `Route`.
    pub forward: String,
    pub weight: u32,
    /// The real server's line.
    pub evidence: Evidence,
}
