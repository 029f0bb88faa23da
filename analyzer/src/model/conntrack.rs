//! Conntrack: table size and usage, summed per-CPU statistics, and flow aggregates
//! (DNAT flows per VIP → backend, SNAT flows per masquerade source → destination).

use super::services::{sockaddr, Protocol};
use super::Evidence;
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

/// One conntrack entry reduced to what the aggregates need.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTuple {
    pub line: usize,
    pub protocol: Protocol,
    pub orig_src: IpAddr,
    pub orig_dst: IpAddr,
    pub orig_dport: u16,
    pub reply_src: IpAddr,
    pub reply_sport: u16,
    pub reply_dst: IpAddr,
    pub unreplied: bool,
}

type DnatKey = (Protocol, IpAddr, u16, IpAddr, u16);
type SnatKey = (Protocol, IpAddr, IpAddr, u16);

/// Aggregates of one chunk of entries; merged in file order.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    pub entries: u64,
    dnat: BTreeMap<DnatKey, (u64, u64, usize)>,
    snat: BTreeMap<SnatKey, (u64, usize)>,
}

impl Aggregates {
    pub fn add(&mut self, f: &FlowTuple) {
        self.entries += 1;
        // DNAT: the reply comes from someone other than the original destination.
        if f.reply_src != f.orig_dst {
            let e = self
                .dnat
                .entry((
                    f.protocol,
                    f.orig_dst,
                    f.orig_dport,
                    f.reply_src,
                    f.reply_sport,
                ))
                .or_insert((0, 0, f.line));
            e.0 += 1;
            e.1 += u64::from(f.unreplied);
            e.2 = e.2.min(f.line);
        }
        // SNAT: the reply goes to someone other than the original source.
        if f.reply_dst != f.orig_src {
            let e = self
                .snat
                .entry((f.protocol, f.reply_dst, f.reply_src, f.reply_sport))
                .or_insert((0, f.line));
            e.0 += 1;
            e.1 = e.1.min(f.line);
        }
    }

    pub fn merge(mut self, other: Aggregates) -> Aggregates {
        self.entries += other.entries;
        for (k, (n, u, l)) in other.dnat {
            let e = self.dnat.entry(k).or_insert((0, 0, l));
            e.0 += n;
            e.1 += u;
            e.2 = e.2.min(l);
        }
        for (k, (n, l)) in other.snat {
            let e = self.snat.entry(k).or_insert((0, l));
            e.0 += n;
            e.1 = e.1.min(l);
        }
        self
    }

    /// Flow lists in key order; `excerpt` gives the text of a line for evidence.
    pub fn finish(
        self,
        path: &str,
        excerpt: &dyn Fn(usize) -> String,
    ) -> (Vec<DnatFlows>, Vec<SnatFlows>) {
        let dnat = self
            .dnat
            .into_iter()
            .map(
                |((protocol, vip, vport, backend, backend_port), (flows, unreplied, line))| {
                    DnatFlows {
                        protocol,
                        vip,
                        vport,
                        backend,
                        backend_port,
                        flows,
                        unreplied,
                        first: Evidence::new(path, Some(line), excerpt(line)),
                    }
                },
            )
            .collect();
        let snat = self
            .snat
            .into_iter()
            .map(
                |((protocol, snat_ip, dst, dst_port), (flows, line))| SnatFlows {
                    protocol,
                    snat_ip,
                    dst,
                    dst_port,
                    flows,
                    first: Evidence::new(path, Some(line), excerpt(line)),
                },
            )
            .collect();
        (dnat, snat)
    }
}
