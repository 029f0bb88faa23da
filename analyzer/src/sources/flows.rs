//! Conntrack entries reduced to flow aggregates while they are parsed: a table can
//! hold a million entries, so only the sums per flow key and the text of each key's
//! first entry are kept. The model turns these into findings' evidence.

use crate::fx::Fx;
use crate::parse::conntrack::{CtFlow, L4Proto};
use rayon::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;

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

/// Aggregates of some chunks of entries. Sums and minimums only, so the order does
/// not matter: a worker adds chunks as they come, and [`Aggregates::finish_all`]
/// merges the workers' parts.
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

    /// Flow lists in key order; `excerpt` gives the text of a line (number, byte
    /// offset). The text of a hundred thousand flows is taken in parallel.
    pub fn finish(self, excerpt: &(dyn Fn(usize, usize) -> String + Sync)) -> Flows {
        Aggregates::finish_all(vec![self], excerpt)
    }

    /// [`Aggregates::finish`] of the merge of `parts`, merged by sorting their entries
    /// together (in parallel) rather than by folding map into map on one thread:
    /// each worker's map holds nearly every key of a big table.
    pub fn finish_all(
        parts: Vec<Aggregates>,
        excerpt: &(dyn Fn(usize, usize) -> String + Sync),
    ) -> Flows {
        let entries = parts.iter().map(|p| p.entries).sum();
        let (mut dnat, mut snat) = (Vec::new(), Vec::new());
        for p in parts {
            dnat.extend(p.dnat);
            snat.extend(p.snat);
        }
        let dnat = combine(dnat, |a, b| (a.0 + b.0, a.1 + b.1, a.2.min(b.2)));
        let snat = combine(snat, |a, b| (a.0 + b.0, a.1.min(b.1)));
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

/// Entries sorted by key, those with equal keys folded into one.
fn combine<K: Ord + Copy + Send, V: Copy + Send>(
    mut entries: Vec<(K, V)>,
    fold: impl Fn(V, V) -> V,
) -> Vec<(K, V)> {
    entries.par_sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(K, V)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        match out.last_mut() {
            Some((last, acc)) if *last == k => *acc = fold(*acc, v),
            _ => out.push((k, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn flow(line: usize, dst: u8, backend: u8, unreplied: bool) -> FlowTuple {
        let ip = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
        FlowTuple {
            line,
            offset: line * 100,
            protocol: FlowProto::Tcp,
            orig_src: ip(1),
            orig_dst: ip(dst),
            orig_dport: 80,
            reply_src: ip(backend),
            reply_sport: 8080,
            reply_dst: ip(if line.is_multiple_of(3) { 9 } else { 1 }),
            unreplied,
        }
    }

    fn summary(f: &Flows) -> Vec<String> {
        let mut v: Vec<String> = f.dnat.iter().map(|d| format!("{d:?}")).collect();
        v.extend(f.snat.iter().map(|s| format!("{s:?}")));
        v.push(f.entries.to_string());
        v
    }

    /// Parts finished together give what one aggregate of every entry gives, whichever
    /// part took which entry.
    #[test]
    fn finishing_parts_equals_one_aggregate() {
        let flows: Vec<FlowTuple> = (1..400)
            .map(|l| {
                flow(
                    l,
                    (l % 7) as u8 + 20,
                    (l % 5) as u8 + 40,
                    l.is_multiple_of(4),
                )
            })
            .collect();
        let excerpt = |line: usize, at: usize| format!("{line}@{at}");
        let mut one = Aggregates::default();
        flows.iter().for_each(|f| one.add(f));
        let want = summary(&one.finish(&excerpt));
        for n in [1, 2, 3, 7] {
            let mut parts: Vec<Aggregates> = (0..n).map(|_| Aggregates::default()).collect();
            for (i, f) in flows.iter().rev().enumerate() {
                parts[(i * 31) % n].add(f);
            }
            assert_eq!(
                summary(&Aggregates::finish_all(parts, &excerpt)),
                want,
                "{n}"
            );
        }
    }
}
