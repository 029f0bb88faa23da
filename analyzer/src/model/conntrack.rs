//! Conntrack: table size and usage, summed per-CPU statistics, and flow aggregates
//! (DNAT flows per VIP → backend, SNAT flows per masquerade source → destination).

use super::fx::Fx;
use super::services::{sockaddr, Protocol};
use super::Evidence;
use crate::parse::conntrack::{CtEntry, L4Proto};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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
    /// Byte offset of the line in the file (for the evidence excerpt).
    pub offset: usize,
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

/// (line, byte offset) of the first entry of an aggregate.
type First = (usize, usize);

/// The aggregates of a whole table, in key order, each with the text of its first
/// entry: once these exist the table's text is no longer needed.
#[derive(Debug, Clone, Default)]
pub struct Flows {
    /// Entries in the file.
    pub entries: u64,
    pub dnat: Vec<DnatFlows>,
    pub snat: Vec<SnatFlows>,
}

/// Aggregates of some chunks of entries. Sums and minimums only, so merging in any
/// order gives the same result (threads may fold chunks as they come).
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    pub entries: u64,
    dnat: HashMap<DnatKey, (u64, u64, First), Fx>,
    snat: HashMap<SnatKey, (u64, First), Fx>,
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
                .or_insert((0, 0, (f.line, f.offset)));
            e.0 += 1;
            e.1 += u64::from(f.unreplied);
            e.2 = e.2.min((f.line, f.offset));
        }
        // SNAT: the reply goes to someone other than the original source.
        if f.reply_dst != f.orig_src {
            let e = self
                .snat
                .entry((f.protocol, f.reply_dst, f.reply_src, f.reply_sport))
                .or_insert((0, (f.line, f.offset)));
            e.0 += 1;
            e.1 = e.1.min((f.line, f.offset));
        }
    }

    /// Adds one parsed entry (at byte `offset` of the file); flows of protocols
    /// without ports (ICMP …) are only counted.
    pub fn add_entry(&mut self, e: &CtEntry, offset: usize) {
        let protocol = match e.protocol {
            L4Proto::Tcp => Protocol::Tcp,
            L4Proto::Udp => Protocol::Udp,
            L4Proto::Sctp => Protocol::Sctp,
            _ => {
                self.entries += 1;
                return;
            }
        };
        self.add(&FlowTuple {
            line: e.line,
            offset,
            protocol,
            orig_src: e.original.src,
            orig_dst: e.original.dst,
            orig_dport: e.original.dport.unwrap_or(0),
            reply_src: e.reply.src,
            reply_sport: e.reply.sport.unwrap_or(0),
            reply_dst: e.reply.dst,
            unreplied: e.unreplied,
        });
    }

    pub fn merge(mut self, mut other: Aggregates) -> Aggregates {
        // Fold the smaller into the larger.
        if other.dnat.len() + other.snat.len() > self.dnat.len() + self.snat.len() {
            std::mem::swap(&mut self, &mut other);
        }
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

    /// Flow lists in key order; `excerpt` gives the text of a line (number, byte
    /// offset) for evidence.
    /// The evidence text of a hundred thousand flows is built in parallel.
    pub fn finish(self, path: &str, excerpt: &(dyn Fn(usize, usize) -> String + Sync)) -> Flows {
        let entries = self.entries;
        let mut dnat: Vec<_> = self.dnat.into_iter().collect();
        dnat.par_sort_unstable_by_key(|a| a.0);
        let mut snat: Vec<_> = self.snat.into_iter().collect();
        snat.par_sort_unstable_by_key(|a| a.0);
        let dnat = dnat
            .into_par_iter()
            .map(
                |(
                    (protocol, vip, vport, backend, backend_port),
                    (flows, unreplied, (line, at)),
                )| {
                    DnatFlows {
                        protocol,
                        vip,
                        vport,
                        backend,
                        backend_port,
                        flows,
                        unreplied,
                        first: Evidence::new(path, Some(line), excerpt(line, at)),
                    }
                },
            )
            .collect();
        let snat = snat
            .into_par_iter()
            .map(
                |((protocol, snat_ip, dst, dst_port), (flows, (line, at)))| SnatFlows {
                    protocol,
                    snat_ip,
                    dst,
                    dst_port,
                    flows,
                    first: Evidence::new(path, Some(line), excerpt(line, at)),
                },
            )
            .collect();
        Flows {
            entries,
            dnat,
            snat,
        }
    }
}
