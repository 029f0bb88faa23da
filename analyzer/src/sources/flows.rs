//! Conntrack entries reduced to flow aggregates while they are parsed: a table can
//! hold a million entries, so only the sums per flow key and the text of each key's
//! first entry are kept. The model turns these into findings' evidence.

use crate::fx::Fx;
use crate::parse::conntrack::{CtFlow, L4Proto};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};

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
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// A DNAT key of IPv4 addresses in one integer, its fields from the most significant
/// on in the tuple's order (protocol, VIP, VIP port, backend, backend port), so the
/// integers sort as the tuples do: a table's ~100k keys then take half the bytes of the
/// tuple keys, the lookups (each a likely cache miss, entries come in hash order) miss
/// less, and the workers' keys are merged by sorting integers.
type PackedDnat = u128;

fn packed_dnat(&(protocol, vip, vport, backend, backend_port): &DnatKey) -> Option<PackedDnat> {
    let (IpAddr::V4(vip), IpAddr::V4(backend)) = (vip, backend) else {
        return None;
    };
    Some(
        (protocol as u128) << 96
            | u128::from(u32::from(vip)) << 64
            | u128::from(vport) << 48
            | u128::from(u32::from(backend)) << 16
            | u128::from(backend_port),
    )
}

fn unpacked_dnat(k: PackedDnat) -> DnatKey {
    let protocol = match (k >> 96) as u8 {
        0 => FlowProto::Tcp,
        1 => FlowProto::Udp,
        _ => FlowProto::Sctp,
    };
    let v4 = |shift: u32| IpAddr::V4(Ipv4Addr::from((k >> shift) as u32));
    (protocol, v4(64), (k >> 48) as u16, v4(16), k as u16)
}

/// The first entry of an aggregate: line and text, taken when the entry is added (the
/// table's text is not kept while it is parsed). Its byte offset, which orders entries
/// as their lines do, is kept in the [`Tally`].
#[derive(Debug, Clone)]
struct First {
    line: usize,
    text: String,
}

impl First {
    fn new(line: usize, text: impl FnOnce() -> String) -> First {
        First { line, text: text() }
    }
}

/// Counts of one key; its first entry's offset inline (compared on every entry), the
/// rest of it apart (touched only when a key is new or gets an earlier entry).
#[derive(Debug, Clone, Copy)]
struct Tally {
    flows: u64,
    unreplied: u64,
    first_offset: usize,
    /// Index in [`Counted::firsts`]: a table's keys are far fewer than 2³² (the reader
    /// admits entries of at most 1 GiB, and a line is tens of bytes).
    first: u32,
}

/// Counts per key with each key's first entry.
#[derive(Debug, Clone)]
struct Counted<K> {
    map: HashMap<K, Tally, Fx>,
    firsts: Vec<First>,
}

impl<K> Default for Counted<K> {
    fn default() -> Self {
        Counted {
            map: HashMap::default(),
            firsts: Vec::new(),
        }
    }
}

/// Where an entry is and whether it was answered: what [`Counted::add`] keeps of it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    line: usize,
    offset: usize,
    unreplied: bool,
}

impl Seen {
    fn of(f: &FlowTuple) -> Seen {
        Seen {
            line: f.line,
            offset: f.offset,
            unreplied: f.unreplied,
        }
    }
}

impl<K: Hash + Eq> Counted<K> {
    #[inline]
    fn add(&mut self, key: K, seen: Seen, text: &impl Fn(usize) -> String) {
        let firsts = &mut self.firsts;
        let t = self.map.entry(key).or_insert_with(|| {
            firsts.push(First::new(seen.line, || text(seen.offset)));
            Tally {
                flows: 0,
                unreplied: 0,
                first_offset: seen.offset,
                first: (firsts.len() - 1) as u32,
            }
        });
        if seen.offset < t.first_offset {
            t.first_offset = seen.offset;
            firsts[t.first as usize] = First::new(seen.line, || text(seen.offset));
        }
        t.flows += 1;
        t.unreplied += u64::from(seen.unreplied);
    }
}

impl<K: Ord + Copy + Send> Counted<K> {
    /// The parts' counts summed per key, in key order, each key with its earliest
    /// first entry. The entries are sorted together (in parallel) rather than folded
    /// map into map on one thread (each worker's map holds nearly every key of a big
    /// table); only keys, counts and indices are moved, the first entries' texts are
    /// taken once the keys are merged.
    fn merge_all(parts: Vec<Counted<K>>) -> Vec<(K, Tally, First)> {
        let len = parts.iter().map(|c| c.map.len()).sum();
        let mut entries: Vec<(K, (Tally, usize))> = Vec::with_capacity(len);
        let mut firsts: Vec<Vec<Option<First>>> = Vec::with_capacity(parts.len());
        for (part, c) in parts.into_iter().enumerate() {
            entries.extend(c.map.into_iter().map(|(k, t)| (k, (t, part))));
            firsts.push(c.firsts.into_iter().map(Some).collect());
        }
        let fold = |(a, a_part): (Tally, usize), (b, b_part): (Tally, usize)| {
            let (earlier, part) = match b.first_offset < a.first_offset {
                true => (b, b_part),
                false => (a, a_part),
            };
            let tally = Tally {
                flows: a.flows + b.flows,
                unreplied: a.unreplied + b.unreplied,
                ..earlier
            };
            (tally, part)
        };
        combine(entries, fold)
            .into_iter()
            .map(|(k, (t, part))| {
                let first = firsts[part][t.first as usize]
                    .take()
                    .expect("one key per first entry");
                (k, t, first)
            })
            .collect()
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
    dnat4: Dnat4,
    dnat: Counted<DnatKey>,
    snat: Counted<SnatKey>,
}

/// How many maps the IPv4 DNAT counts are split into, as a power of two.
const PARTITION_BITS: u32 = 6;
const PARTITIONS: usize = 1 << PARTITION_BITS;

/// The IPv4 DNAT counts (nearly every entry of a big table) split by key into
/// [`PARTITIONS`] maps, with a queue per map. A table's ~100k keys make a map far
/// bigger than the processor's caches and its entries come in hash order, so adding
/// each entry as it is parsed was a cache miss per entry; a chunk's entries are
/// queued instead, then counted map by map: a map of ~1.5k keys stays in cache while
/// its queue is added.
#[derive(Debug, Clone)]
struct Dnat4 {
    maps: Vec<Counted<PackedDnat>>,
    /// Entries of the current chunk not yet counted, per map (emptied, their memory
    /// kept, by [`Aggregates::add_chunk`]).
    queued: Vec<Vec<(PackedDnat, Seen)>>,
}

impl Default for Dnat4 {
    fn default() -> Self {
        Dnat4 {
            maps: (0..PARTITIONS).map(|_| Counted::default()).collect(),
            queued: vec![Vec::new(); PARTITIONS],
        }
    }
}

/// The map of a packed key: high bits of a multiplicative mix, bits the maps' own
/// (seeded) hasher does not pick buckets by. Keys a bundle crafts into one map only
/// make that map as big as the single map this replaced.
#[inline]
fn partition(k: PackedDnat) -> usize {
    let folded = (k as u64) ^ ((k >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - PARTITION_BITS)) as usize
}

impl Aggregates {
    /// Adds one entry; `text(offset)` gives its line's excerpt, asked for only when
    /// the entry is the first of an aggregate so far.
    pub fn add(&mut self, f: &FlowTuple, text: &impl Fn(usize) -> String) {
        self.add_or_queue(f, text, false);
    }

    /// [`Aggregates::add`], but an IPv4 DNAT entry is only queued for its map when
    /// `queue` is set ([`Aggregates::add_chunk`] counts the queues).
    fn add_or_queue(&mut self, f: &FlowTuple, text: &impl Fn(usize) -> String, queue: bool) {
        self.entries += 1;
        if let Some(key) = dnat_key(f) {
            match packed_dnat(&key) {
                Some(packed) if queue => {
                    self.dnat4.queued[partition(packed)].push((packed, Seen::of(f)))
                }
                Some(packed) => self.dnat4.maps[partition(packed)].add(packed, Seen::of(f), text),
                None => self.dnat.add(key, Seen::of(f), text),
            }
        }
        if let Some(key) = snat_key(f) {
            self.snat.add(key, Seen::of(f), text);
        }
    }

    /// Adds the entries of one chunk: `parse` hands each parsed entry with its byte
    /// offset in the file to the function it is given, and `text(offset)` gives the
    /// excerpt of the line there while the chunk lasts. Entries of protocols without
    /// ports (ICMP …) are only counted. IPv4 DNAT entries are queued by map while the
    /// chunk is parsed and counted map by map at its end ([`Dnat4`]). Returns what
    /// `parse` returns.
    pub fn add_chunk<R>(
        &mut self,
        text: &impl Fn(usize) -> String,
        parse: impl FnOnce(&mut dyn FnMut(&CtFlow, usize)) -> R,
    ) -> R {
        let parsed = parse(&mut |f, offset| match flow_tuple(f, offset) {
            Some(t) => self.add_or_queue(&t, text, true),
            None => self.entries += 1,
        });
        let Dnat4 { maps, queued } = &mut self.dnat4;
        for (map, queue) in maps.iter_mut().zip(queued.iter_mut()) {
            for (key, seen) in queue.drain(..) {
                map.add(key, seen, text);
            }
        }
        parsed
    }

    /// Flow lists in key order.
    pub fn finish(self) -> Flows {
        Aggregates::finish_all(vec![self])
    }

    /// [`Aggregates::finish`] of the merge of `parts`.
    pub fn finish_all(parts: Vec<Aggregates>) -> Flows {
        let entries = parts.iter().map(|p| p.entries).sum();
        let (mut dnat4, mut dnat, mut snat) = (Vec::new(), Vec::new(), Vec::new());
        for p in parts {
            debug_assert!(p.dnat4.queued.iter().all(Vec::is_empty));
            dnat4.extend(p.dnat4.maps);
            dnat.push(p.dnat);
            snat.push(p.snat);
        }
        // Packed keys sort as their tuples do: the two merged lists are merged in order.
        let dnat4 = Counted::merge_all(dnat4)
            .into_iter()
            .map(|(k, t, first)| (unpacked_dnat(k), t, first));
        let dnat = merge_sorted(dnat4, Counted::merge_all(dnat).into_iter())
            .map(
                |((protocol, vip, vport, backend, backend_port), tally, first)| DnatCount {
                    protocol,
                    vip,
                    vport,
                    backend,
                    backend_port,
                    flows: tally.flows,
                    unreplied: tally.unreplied,
                    first: (first.line, first.text),
                },
            )
            .collect();
        let snat = Counted::merge_all(snat)
            .into_iter()
            .map(
                |((protocol, snat_ip, dst, dst_port), tally, first)| SnatCount {
                    protocol,
                    snat_ip,
                    dst,
                    dst_port,
                    flows: tally.flows,
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

/// Two lists sorted by key (no key in both) as one, in key order.
fn merge_sorted<K: Ord, T, U>(
    a: impl Iterator<Item = (K, T, U)>,
    b: impl Iterator<Item = (K, T, U)>,
) -> impl Iterator<Item = (K, T, U)> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.0 < x.0 => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// DNAT: the reply comes from someone other than the original destination.
#[inline]
fn dnat_key(f: &FlowTuple) -> Option<DnatKey> {
    (f.reply_src != f.orig_dst).then_some((
        f.protocol,
        f.orig_dst,
        f.orig_dport,
        f.reply_src,
        f.reply_sport,
    ))
}

/// SNAT: the reply goes to someone other than the original source.
#[inline]
fn snat_key(f: &FlowTuple) -> Option<SnatKey> {
    (f.reply_dst != f.orig_src).then_some((f.protocol, f.reply_dst, f.reply_src, f.reply_sport))
}

/// The aggregated form of a parsed entry (at byte `offset` of its file); `None` for
/// protocols without ports (ICMP …), which are only counted.
fn flow_tuple(f: &CtFlow, offset: usize) -> Option<FlowTuple> {
    let protocol = match f.protocol {
        L4Proto::Tcp => FlowProto::Tcp,
        L4Proto::Udp => FlowProto::Udp,
        L4Proto::Sctp => FlowProto::Sctp,
        _ => return None,
    };
    Some(FlowTuple {
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
    })
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
        let text = |offset: usize| format!("{}@{offset}", offset / 100);
        let mut one = Aggregates::default();
        flows.iter().for_each(|f| one.add(f, &text));
        let want = summary(&one.finish());
        for n in [1, 2, 3, 7] {
            let mut parts: Vec<Aggregates> = (0..n).map(|_| Aggregates::default()).collect();
            for (i, f) in flows.iter().rev().enumerate() {
                parts[(i * 31) % n].add(f, &text);
            }
            assert_eq!(summary(&Aggregates::finish_all(parts)), want, "{n}");
        }
    }

    /// Packed keys sort as their tuples do (the merge of the workers' parts relies on
    /// it): every pair of keys differing in one field, high and low values.
    #[test]
    fn packed_keys_sort_as_their_tuples() {
        let v4 = |a: u32| IpAddr::V4(Ipv4Addr::from(a));
        let mut keys = Vec::new();
        for protocol in [FlowProto::Tcp, FlowProto::Udp, FlowProto::Sctp] {
            for vip in [0, 1, 0x0a60_000a, u32::MAX] {
                for vport in [0, 1, 80, u16::MAX] {
                    for backend in [0, 0x0af4_0107, u32::MAX] {
                        for bport in [0, 8080, u16::MAX] {
                            keys.push((protocol, v4(vip), vport, v4(backend), bport));
                        }
                    }
                }
            }
        }
        let mut by_tuple = keys.clone();
        by_tuple.sort();
        let mut by_packed = keys;
        by_packed.sort_by_key(|k| packed_dnat(k).expect("IPv4 key"));
        assert_eq!(by_packed, by_tuple);
    }

    #[test]
    fn merge_keeps_key_order() {
        let a = [(1, 'a', ()), (4, 'a', ()), (5, 'a', ())];
        let b = [(0, 'b', ()), (2, 'b', ()), (3, 'b', ()), (9, 'b', ())];
        let got: Vec<(i32, char)> = merge_sorted(a.into_iter(), b.into_iter())
            .map(|(k, v, ())| (k, v))
            .collect();
        let want = [
            (0, 'b'),
            (1, 'a'),
            (2, 'b'),
            (3, 'b'),
            (4, 'a'),
            (5, 'a'),
            (9, 'b'),
        ];
        assert_eq!(got, want);
        assert_eq!(merge_sorted(a.into_iter(), [].into_iter()).count(), 3);
        assert_eq!(merge_sorted([].into_iter(), b.into_iter()).count(), 4);
    }

    #[test]
    fn packed_keys_unpack_to_the_same_key() {
        let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
        for protocol in [FlowProto::Tcp, FlowProto::Udp, FlowProto::Sctp] {
            for (vip, vport, backend, bport) in [
                (v4([0, 0, 0, 0]), 0, v4([255, 255, 255, 255]), 65535),
                (v4([255, 255, 255, 255]), 65535, v4([0, 0, 0, 0]), 0),
                (v4([10, 96, 0, 10]), 53, v4([10, 244, 1, 7]), 5353),
            ] {
                let key = (protocol, vip, vport, backend, bport);
                let packed = packed_dnat(&key).expect("IPv4 key");
                assert_eq!(unpacked_dnat(packed), key);
            }
        }
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let key = (FlowProto::Tcp, v6, 80, v4([10, 0, 0, 1]), 80);
        assert_eq!(packed_dnat(&key), None);
        assert_eq!(
            packed_dnat(&(FlowProto::Udp, v4([10, 0, 0, 1]), 53, v6, 53)),
            None
        );
    }

    /// Entries added in chunks (IPv4, IPv6 and mixed keys, SNAT, ICMP, later lines
    /// first) give the counts and first entries worked out here
    /// directly from their definitions.
    #[test]
    fn batched_flows_aggregate_as_defined() {
        let addr = |i: usize| -> IpAddr {
            match i % 3 {
                0 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i % 5) as u8)),
                1 => format!("fd00::{}", i % 4).parse().unwrap(),
                _ => IpAddr::V4(Ipv4Addr::new(10, 96, 0, (i % 2) as u8)),
            }
        };
        let protocols = [L4Proto::Tcp, L4Proto::Udp, L4Proto::Sctp, L4Proto::Icmp];
        let flows: Vec<(CtFlow, usize)> = (0..300)
            .rev()
            .map(|i| {
                let f = CtFlow {
                    line: i + 1,
                    protocol: protocols[i % 7 % 4],
                    orig_src: addr(i),
                    orig_dst: addr(i / 2),
                    orig_dport: Some((i % 3) as u16),
                    reply_src: addr(i / 3),
                    reply_dst: addr(i + 1),
                    reply_sport: Some(8080),
                    unreplied: i % 5 == 0,
                };
                (f, i * 10)
            })
            .collect();
        let text = |offset: usize| format!("line at {offset}");
        // One aggregate, and the pieces spread over several parts merged (as the
        // workers' parts are): each must give what the definitions give.
        for parts in [1, 2, 3] {
            let got = in_chunks(&flows, 70, parts, &text);
            check_as_defined(&flows, &got, &text);
            assert!(got.dnat.iter().any(|d| d.vip.is_ipv6()));
            assert!(got.dnat.iter().any(|d| d.vip.is_ipv4()));
        }
    }

    /// Many IPv4 DNAT keys, repeated in several chunks out of line order and spread
    /// over parts, each in a queue of its own map: the counts and first entries are
    /// still those of the definitions, and the keys reach every map.
    #[test]
    fn partitioned_counts_are_as_defined() {
        let v4 = |a: u32| IpAddr::V4(Ipv4Addr::from(a));
        let flows: Vec<(CtFlow, usize)> = (0..6000usize)
            .map(|i| {
                let key = (i * 7919) % 2500;
                let f = CtFlow {
                    line: 6000 - i,
                    protocol: [L4Proto::Tcp, L4Proto::Udp][key % 2],
                    orig_src: v4(0x0af4_0000 + (i % 300) as u32),
                    orig_dst: v4(0x0a60_0000 + (key / 10) as u32),
                    orig_dport: Some(80 + (key % 3) as u16),
                    reply_src: v4(0x0af4_1000 + key as u32),
                    reply_dst: v4(0x0af4_0000 + (i % 300) as u32),
                    reply_sport: Some(8080),
                    unreplied: i % 3 == 0,
                };
                (f, (5999 - i) * 10)
            })
            .collect();
        let maps: std::collections::BTreeSet<usize> = flows
            .iter()
            .filter_map(|(f, offset)| flow_tuple(f, *offset))
            .filter_map(|t| packed_dnat(&dnat_key(&t)?))
            .map(partition)
            .collect();
        assert_eq!(maps.len(), PARTITIONS);
        let text = |offset: usize| format!("line at {offset}");
        for parts in [1, 2, 5] {
            let got = in_chunks(&flows, 777, parts, &text);
            check_as_defined(&flows, &got, &text);
            assert_eq!(got.dnat.len(), 2500);
        }
    }

    /// `flows` added in chunks of `chunk` entries, dealt to `parts` aggregates in
    /// turn (as the workers' parts are), then merged.
    fn in_chunks(
        flows: &[(CtFlow, usize)],
        chunk: usize,
        parts: usize,
        text: &impl Fn(usize) -> String,
    ) -> Flows {
        let mut aggs: Vec<Aggregates> = (0..parts).map(|_| Aggregates::default()).collect();
        for (i, piece) in flows.chunks(chunk).enumerate() {
            aggs[i % parts].add_chunk(text, |add| {
                piece.iter().for_each(|(f, offset)| add(f, *offset))
            });
        }
        Aggregates::finish_all(aggs)
    }

    fn check_as_defined(flows: &[(CtFlow, usize)], got: &Flows, text: &dyn Fn(usize) -> String) {
        type Want<K> = std::collections::BTreeMap<K, (u64, u64, usize)>;
        let (mut dnat, mut snat): (Want<DnatKey>, Want<SnatKey>) = Default::default();
        for (f, offset) in flows {
            let Some(t) = flow_tuple(f, *offset) else {
                continue;
            };
            let count = |e: &mut (u64, u64, usize)| {
                *e = (e.0 + 1, e.1 + u64::from(t.unreplied), e.2.min(*offset));
            };
            if t.reply_src != t.orig_dst {
                let k = (
                    t.protocol,
                    t.orig_dst,
                    t.orig_dport,
                    t.reply_src,
                    t.reply_sport,
                );
                count(dnat.entry(k).or_insert((0, 0, usize::MAX)));
            }
            if t.reply_dst != t.orig_src {
                let k = (t.protocol, t.reply_dst, t.reply_src, t.reply_sport);
                count(snat.entry(k).or_insert((0, 0, usize::MAX)));
            }
        }
        let line = |offset: usize| offset / 10 + 1;
        let want_dnat: Vec<_> = dnat
            .into_iter()
            .map(|(k, (n, u, at))| (k, n, u, (line(at), text(at))))
            .collect();
        let got_dnat: Vec<_> = got
            .dnat
            .iter()
            .map(|d| {
                let k = (d.protocol, d.vip, d.vport, d.backend, d.backend_port);
                (k, d.flows, d.unreplied, d.first.clone())
            })
            .collect();
        assert_eq!(got_dnat, want_dnat);
        let want_snat: Vec<_> = snat
            .into_iter()
            .map(|(k, (n, _, at))| (k, n, (line(at), text(at))))
            .collect();
        let got_snat: Vec<_> = got
            .snat
            .iter()
            .map(|s| {
                (
                    (s.protocol, s.snat_ip, s.dst, s.dst_port),
                    s.flows,
                    s.first.clone(),
                )
            })
            .collect();
        assert_eq!(got_snat, want_snat);
        assert_eq!(got.entries, flows.len() as u64);
    }
}
