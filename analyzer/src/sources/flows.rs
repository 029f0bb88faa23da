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

/// The first entry of an aggregate: line, byte offset (which orders entries as lines
/// do, and tells apart entries of one line number in tests), and its text, taken
/// when the entry is added: the table's text is not kept while it is parsed.
#[derive(Debug, Clone)]
struct First {
    line: usize,
    offset: usize,
    text: String,
}

impl First {
    fn new(f: &FlowTuple, text: &impl Fn() -> String) -> First {
        First {
            line: f.line,
            offset: f.offset,
            text: text(),
        }
    }

    /// Where the entry is, in the order entries are "earlier".
    fn at(&self) -> (usize, usize) {
        (self.line, self.offset)
    }

    /// Keeps the earlier of the two.
    fn earlier(self, other: First) -> First {
        match other.at() < self.at() {
            true => other,
            false => self,
        }
    }

    /// Becomes `f`'s entry when that is earlier (its text taken only then).
    fn keep_earlier(&mut self, f: &FlowTuple, text: &impl Fn() -> String) {
        if (f.line, f.offset) < self.at() {
            *self = First::new(f, text);
        }
    }
}

/// The aggregates of a whole table, in key order, each with the text of its first
/// entry.
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
    /// Adds one entry; `text` gives its line's excerpt, asked for only when the entry
    /// is the first of an aggregate so far.
    pub fn add(&mut self, f: &FlowTuple, text: &impl Fn() -> String) {
        self.entries += 1;
        // DNAT: the reply comes from someone other than the original destination.
        if f.reply_src != f.orig_dst {
            let key = (
                f.protocol,
                f.orig_dst,
                f.orig_dport,
                f.reply_src,
                f.reply_sport,
            );
            let e = self
                .dnat
                .entry(key)
                .and_modify(|e| e.2.keep_earlier(f, text))
                .or_insert_with(|| (0, 0, First::new(f, text)));
            e.0 += 1;
            e.1 += u64::from(f.unreplied);
        }
        // SNAT: the reply goes to someone other than the original source.
        if f.reply_dst != f.orig_src {
            let key = (f.protocol, f.reply_dst, f.reply_src, f.reply_sport);
            let e = self
                .snat
                .entry(key)
                .and_modify(|e| e.1.keep_earlier(f, text))
                .or_insert_with(|| (0, First::new(f, text)));
            e.0 += 1;
        }
    }

    /// Adds one entry (its line at byte `offset` of the file, whose excerpt `text`
    /// gives); flows of protocols without ports (ICMP …) are only counted.
    pub fn add_flow(&mut self, f: &CtFlow, offset: usize, text: &impl Fn() -> String) {
        let protocol = match f.protocol {
            L4Proto::Tcp => FlowProto::Tcp,
            L4Proto::Udp => FlowProto::Udp,
            L4Proto::Sctp => FlowProto::Sctp,
            _ => {
                self.entries += 1;
                return;
            }
        };
        self.add(
            &FlowTuple {
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
            },
            text,
        );
    }

    /// Flow lists in key order.
    pub fn finish(self) -> Flows {
        Aggregates::finish_all(vec![self])
    }

    /// [`Aggregates::finish`] of the merge of `parts`, merged by sorting their entries
    /// together (in parallel) rather than by folding map into map on one thread:
    /// each worker's map holds nearly every key of a big table.
    pub fn finish_all(parts: Vec<Aggregates>) -> Flows {
        let entries = parts.iter().map(|p| p.entries).sum();
        let (mut dnat, mut snat) = (Vec::new(), Vec::new());
        for p in parts {
            dnat.extend(p.dnat);
            snat.extend(p.snat);
        }
        let dnat = combine(dnat, |a, b| (a.0 + b.0, a.1 + b.1, a.2.earlier(b.2)));
        let snat = combine(snat, |a, b| (a.0 + b.0, a.1.earlier(b.1)));
        let dnat = dnat
            .into_iter()
            .map(
                |((protocol, vip, vport, backend, backend_port), (flows, unreplied, first))| {
                    DnatCount {
                        protocol,
                        vip,
                        vport,
                        backend,
                        backend_port,
                        flows,
                        unreplied,
                        first: (first.line, first.text),
                    }
                },
            )
            .collect();
        let snat = snat
            .into_iter()
            .map(
                |((protocol, snat_ip, dst, dst_port), (flows, first))| SnatCount {
                    protocol,
                    snat_ip,
                    dst,
                    dst_port,
                    flows,
                    first: (first.line, first.text),
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
fn combine<K: Ord + Copy + Send, V: Send>(
    mut entries: Vec<(K, V)>,
    fold: impl Fn(V, V) -> V,
) -> Vec<(K, V)> {
    entries.par_sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(K, V)> = Vec::with_capacity(entries.len());
    let mut entries = entries.into_iter();
    let Some(mut current) = entries.next() else {
        return out;
    };
    for (k, v) in entries {
        if k == current.0 {
            let (key, acc) = current;
            current = (key, fold(acc, v));
        } else {
            out.push(std::mem::replace(&mut current, (k, v)));
        }
    }
    out.push(current);
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
        let text = |f: &FlowTuple| format!("{}@{}", f.line, f.offset);
        let mut one = Aggregates::default();
        flows.iter().for_each(|f| one.add(f, &|| text(f)));
        let want = summary(&one.finish());
        for n in [1, 2, 3, 7] {
            let mut parts: Vec<Aggregates> = (0..n).map(|_| Aggregates::default()).collect();
            for (i, f) in flows.iter().rev().enumerate() {
                parts[(i * 31) % n].add(f, &|| text(f));
            }
            assert_eq!(summary(&Aggregates::finish_all(parts)), want, "{n}");
        }
    }
}
