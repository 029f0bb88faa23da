//! Conntrack entries reduced to flow aggregates while they are parsed: a table can
//! hold a million entries, so only the sums per flow key and the text of each key's
//! first entry are kept. The model turns these into findings' evidence.

use crate::parse::conntrack::{CtFlow, L4Proto};
use rayon::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;

/// Keys come from bundles we did not write: a randomly seeded hasher.
type Fx = foldhash::fast::RandomState;

/// The transport protocols whose flows are aggregated (the ones with ports), in the
/// order flows are sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowProto {
    Tcp,
    Udp,
    Sctp,
}

/// Flows whose original destination (`vip`) was rewritten to a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct DnatCount {
    pub protocol: FlowProto,
    pub vip: IpAddr,
    pub vport: u16,
    pub backend: IpAddr,
    pub backend_port: u16,
    pub flows: u64,
    pub unreplied: u64,
    /// Line and text of the first entry in the file.
    pub first: (usize, String),
}

/// Flows that were source-NATed to `snat_ip`, per destination.
#[derive(Debug, Clone, PartialEq)]
pub struct SnatCount {
    pub protocol: FlowProto,
    pub snat_ip: IpAddr,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub flows: u64,
    /// Line and text of the first entry in the file.
    pub first: (usize, String),
}

/// One conntrack entry reduced to what the aggregates need.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTuple {
    pub line: usize,
    /// Byte offset of the line in the file (for the evidence excerpt).
    pub offset: usize,
    pub protocol: FlowProto,
    pub orig_src: IpAddr,
    pub orig_dst: IpAddr,
    pub orig_dport: u16,
    pub reply_src: IpAddr,
    pub reply_sport: u16,
    pub reply_dst: IpAddr,
    pub unreplied: bool,
}

type DnatKey = (FlowProto, IpAddr, u16, IpAddr, u16);
type SnatKey = (FlowProto, IpAddr, IpAddr, u16);

/// (line, byte offset) of the first entry of an aggregate.
type First = (usize, usize);

/// The aggregates of a whole table, in key order, each with the text of its first
/// entry: once these exist the table's text is no longer needed.
#[derive(Debug, Clone, Default)]
pub struct Flows {
    /// Entries in the file.
    pub entries: u64,
    pub dnat: Vec<DnatCount>,
    pub snat: Vec<SnatCount>,
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

    /// Adds one entry (its line at byte `offset` of the file); flows of protocols
    /// without ports (ICMP …) are only counted.
    pub fn add_flow(&mut self, f: &CtFlow, offset: usize) {
        let protocol = match f.protocol {
            L4Proto::Tcp => FlowProto::Tcp,
            L4Proto::Udp => FlowProto::Udp,
            L4Proto::Sctp => FlowProto::Sctp,
            _ => {
                self.entries += 1;
                return;
            }
        };
        self.add(&FlowTuple {
            line: f.line,
            offset,
            protocol,
            orig_src: f.orig_src,
            orig_dst: f.orig_dst,
            orig_dport: f.orig_dport.unwrap_or(0),
            reply_src: f.reply_src,
            reply_sport: f.reply_sport.unwrap_or(0),
            reply_dst: f.reply_dst,
            unreplied: f.unreplied,
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
    /// offset). The text of a hundred thousand flows is taken in parallel.
    pub fn finish(self, excerpt: &(dyn Fn(usize, usize) -> String + Sync)) -> Flows {
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
                    DnatCount {
                        protocol,
                        vip,
                        vport,
                        backend,
                        backend_port,
                        flows,
                        unreplied,
                        first: (line, excerpt(line, at)),
                    }
                },
            )
            .collect();
        let snat = snat
            .into_par_iter()
            .map(
                |((protocol, snat_ip, dst, dst_port), (flows, (line, at)))| SnatCount {
                    protocol,
                    snat_ip,
                    dst,
                    dst_port,
                    flows,
                    first: (line, excerpt(line, at)),
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
