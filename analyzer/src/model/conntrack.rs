//! Conntrack: table size and usage, summed per-CPU statistics, and flow aggregates
//! (DNAT flows per VIP → backend, SNAT flows per masquerade source → destination).

use super::services::{sockaddr, Protocol};
use super::Evidence;
use crate::sources::flows::{FlowProto, Flows};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Conntrack {
    /// The entries file was in the bundle.
    pub entries_present: bool,
    /// Entries in the file.
    pub entries: u64,
    /// Entries on the node when the collector capped the file.
    pub total_on_node: Option<u64>,
    pub count: Option<(u64, Evidence)>,
    pub max: Option<(u64, Evidence)>,
    pub buckets: Option<(u64, Evidence)>,
    /// `/proc/net/stat/nf_conntrack` columns summed over CPUs (`entries` taken once).
    pub stats: BTreeMap<String, u64>,
    pub stats_evidence: Option<Evidence>,
    /// `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u16, u16, Evidence)>,
    pub dnat: Vec<DnatFlows>,
    pub snat: Vec<SnatFlows>,
}

/// Flows whose original destination was rewritten (a VIP) to a backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnatFlows {
    pub protocol: Protocol,
    pub vip: IpAddr,
    pub vport: u16,
    pub backend: IpAddr,
    pub backend_port: u16,
    pub flows: u64,
    pub unreplied: u64,
    /// The first entry in the file (evidence).
    pub first: Evidence,
}

impl DnatFlows {
    pub fn vip_string(&self) -> String {
        sockaddr(self.vip, self.vport)
    }
    pub fn backend_string(&self) -> String {
        sockaddr(self.backend, self.backend_port)
    }
}

/// Flows that were source-NATed to `snat_ip`, per destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnatFlows {
    pub protocol: Protocol,
    pub snat_ip: IpAddr,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub flows: u64,
    pub first: Evidence,
}

/// The parse stage's flow counts, with their first entry as evidence in `path`.
pub fn flows_from(flows: &Flows, path: &str) -> (Vec<DnatFlows>, Vec<SnatFlows>) {
    let evidence = |(line, text): &(usize, String)| Evidence::new(path, Some(*line), text.clone());
    let dnat = flows
        .dnat
        .par_iter()
        .map(|d| DnatFlows {
            protocol: protocol(d.protocol),
            vip: d.vip,
            vport: d.vport,
            backend: d.backend,
            backend_port: d.backend_port,
            flows: d.flows,
            unreplied: d.unreplied,
            first: evidence(&d.first),
        })
        .collect();
    let snat = flows
        .snat
        .par_iter()
        .map(|s| SnatFlows {
            protocol: protocol(s.protocol),
            snat_ip: s.snat_ip,
            dst: s.dst,
            dst_port: s.dst_port,
            flows: s.flows,
            first: evidence(&s.first),
        })
        .collect();
    (dnat, snat)
}

fn protocol(p: FlowProto) -> Protocol {
    match p {
        FlowProto::Tcp => Protocol::Tcp,
        FlowProto::Udp => Protocol::Udp,
        FlowProto::Sctp => Protocol::Sctp,
    }
}
