//! `-m set --match-set NAME FLAGS` against the node's `ipset save`: the sets are parsed
//! once into typed entries (address or network, protocol and port), so a test is a
//! scan of small structs. Types: `hash:ip`, `hash:net`, `hash:ip,port`,
//! `hash:ip,port,ip`, `hash:ip,port,net`, `hash:net,port`, `hash:net,net`, `bitmap:ip`,
//! `bitmap:port`. For net types the most specific matching entry decides, so a more
//! specific `nomatch` entry excludes its addresses (as the kernel's lookup does).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::parse::ipset::{IpSet, IpsetSave};
use crate::parse::iptables::SetMatch;

use super::super::packet::{Packet, Proto};
use crate::fx::Fx;

/// The sets of one ipset save, by name.
pub(super) struct Sets<'a> {
    /// `None`: no ipset save in the bundle.
    by_name: Option<HashMap<&'a str, ParsedSet<'a>, Fx>>,
}

struct ParsedSet<'a> {
    set: &'a IpSet,
    /// What each dimension holds; `Err` when the type or an entry is not modelled.
    dims: Result<Vec<DimKind>, String>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DimKind {
    /// An address or network (`hash:ip` entries are /32 or /128).
    Net,
    Port,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dim {
    Net(IpNet),
    /// `proto` is `None` for `bitmap:port` (any protocol with ports).
    Port {
        proto: Option<u8>,
        first: u16,
        last: u16,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    dims: [Option<Dim>; 3],
    nomatch: bool,
}

impl<'a> Sets<'a> {
    pub(super) fn new(save: Option<&'a IpsetSave>) -> Sets<'a> {
        let by_name = save.map(|s| {
            let mut m = HashMap::with_capacity_and_hasher(s.sets.len(), Fx::default());
            for set in &s.sets {
                m.insert(set.name.as_str(), ParsedSet::new(set));
            }
            m
        });
        Sets { by_name }
    }

    /// Whether the packet is in the set as `m` names it; `Err` when that cannot be told.
    pub(super) fn test(&self, m: &SetMatch, p: &Packet) -> Result<bool, String> {
        let Some(by_name) = &self.by_name else {
            return Err(format!(
                "set {} is matched, but the bundle has no ipset save",
                m.name
            ));
        };
        let Some(set) = by_name.get(m.name.as_str()) else {
            return Err(format!("set {} is not in the ipset save", m.name));
        };
        let dims = set
            .dims
            .as_ref()
            .map_err(|why| format!("set {} (line {}): {why}", set.set.name, set.set.line))?;
        Ok(set.contains(dims, &m.flags, p) != m.negated)
    }
}

impl<'a> ParsedSet<'a> {
    fn new(set: &'a IpSet) -> ParsedSet<'a> {
        let mut entries = Vec::new();
        let dims = dims_of(&set.kind).and_then(|dims| {
            entries.reserve_exact(set.entries.len());
            for e in &set.entries {
                let mut parsed = Entry {
                    dims: [None; 3],
                    nomatch: e.options.iter().any(|o| o == "nomatch"),
                };
                let mut parts = e.value.split(',');
                for (i, kind) in dims.iter().enumerate() {
                    let part = parts.next().unwrap_or("");
                    let d = parse_dim(*kind, part, set.kind == "bitmap:port").ok_or_else(|| {
                        format!("entry {:?} (line {}) is not understood", e.value, e.line)
                    })?;
                    parsed.dims[i] = Some(d);
                }
                entries.push(parsed);
            }
            Ok(dims)
        });
        ParsedSet { set, dims, entries }
    }

    fn contains(&self, dims: &[DimKind], flags: &[String], p: &Packet) -> bool {
        // The kernel needs a flag per dimension, and the set's family.
        if flags.len() < dims.len() {
            return false;
        }
        let family_ok = match self.set.family.as_deref() {
            Some("inet6") => p.is_v6(),
            Some(_) => !p.is_v6(),
            None => self.set.kind == "bitmap:port" || !p.is_v6(),
        };
        if !family_ok {
            return false;
        }
        let has_net = self.set.kind.contains("net");
        // (prefix lengths of the entry's net dimensions, nomatch) of the best entry.
        let mut best: Option<(u16, bool)> = None;
        for e in &self.entries {
            let hit = e.dims[..dims.len()]
                .iter()
                .zip(flags)
                .all(|(d, flag)| d.as_ref().is_some_and(|d| dim_matches(d, flag == "src", p)));
            if !hit {
                continue;
            }
            if !has_net {
                return true;
            }
            let specificity: u16 = e
                .dims
                .iter()
                .map(|d| match d {
                    Some(Dim::Net(n)) => u16::from(n.prefix_len()),
                    _ => 0,
                })
                .sum();
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, e.nomatch));
            }
        }
        best.is_some_and(|(_, nomatch)| !nomatch)
    }
}

fn dims_of(kind: &str) -> Result<Vec<DimKind>, String> {
    use DimKind::*;
    Ok(match kind {
        "hash:ip" | "hash:net" | "bitmap:ip" => vec![Net],
        "hash:ip,port" | "hash:net,port" => vec![Net, Port],
        "hash:ip,port,ip" | "hash:ip,port,net" => vec![Net, Port, Net],
        "hash:net,net" => vec![Net, Net],
        "bitmap:port" => vec![Port],
        other => return Err(format!("set type {other} is not modelled")),
    })
}

fn parse_dim(kind: DimKind, s: &str, bitmap_port: bool) -> Option<Dim> {
    match kind {
        DimKind::Net => {
            let net = match s.split_once('/') {
                Some(_) => s.parse().ok()?,
                None => IpNet::from(s.parse::<IpAddr>().ok()?),
            };
            Some(Dim::Net(net))
        }
        DimKind::Port if bitmap_port => {
            let (first, last) = port_range(s)?;
            Some(Dim::Port {
                proto: None,
                first,
                last,
            })
        }
        DimKind::Port => {
            let (proto, port) = s.split_once(':').unwrap_or(("tcp", s));
            let proto = match proto {
                "tcp" => 6,
                "udp" => 17,
                "sctp" => 132,
                "udplite" => 136,
                "icmp" => 1,
                "icmpv6" | "ipv6-icmp" => 58,
                _ => return None,
            };
            let (first, last) = if matches!(proto, 1 | 58) {
                let t = icmp_port(port, proto == 58)?;
                (t, t)
            } else {
                port_range(port)?
            };
            Some(Dim::Port {
                proto: Some(proto),
                first,
                last,
            })
        }
    }
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let p = s.parse().ok()?;
            Some((p, p))
        }
    }
}

/// ICMP `TYPE/CODE` (or the echo names) as the kernel keys it: `type << 8 | code`.
fn icmp_port(s: &str, v6: bool) -> Option<u16> {
    let (ty, code): (u16, u16) = match s {
        "echo-request" => (if v6 { 128 } else { 8 }, 0),
        "echo-reply" => (if v6 { 129 } else { 0 }, 0),
        _ => {
            let (t, c) = s.split_once('/')?;
            (t.parse().ok()?, c.parse().ok()?)
        }
    };
    Some((ty << 8) | code)
}

fn dim_matches(d: &Dim, src: bool, p: &Packet) -> bool {
    match *d {
        Dim::Net(net) => net.contains(&if src { p.src } else { p.dst }),
        Dim::Port { proto, first, last } => {
            let port = match p.proto {
                // A traced ICMP packet is an echo request, code 0.
                Proto::Icmp => (if p.is_v6() { 128u16 } else { 8 }) << 8,
                Proto::Tcp | Proto::Udp if src => p.sport,
                Proto::Tcp | Proto::Udp => p.dport,
            };
            let proto_ok = match proto {
                // bitmap:port: any protocol with ports.
                None => p.proto != Proto::Icmp,
                Some(want) => want == p.proto.number(p.is_v6()),
            };
            proto_ok && (first..=last).contains(&port)
        }
    }
}
