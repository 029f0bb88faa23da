//! What an nft expression reads from the packet ([`V`]), how it compares with a
//! literal of the ruleset, and named sets and maps indexed for lookups.

use crate::parse::nft::{NftRule, NftSet, Stmt, Val};
use std::collections::HashMap;
use std::net::IpAddr;

/// A value the packet gives an expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum V {
    Ip(IpAddr),
    /// A number, with the symbol table its literals may name it by.
    Int(u64, Sym),
    /// An interface name (`""` when the packet has no such interface).
    Str(String),
    /// A bitmask of which only the `known` bits are known (`ct status`).
    Bits {
        val: u64,
        known: u64,
    },
    Concat(Vec<V>),
    /// One of these; a comparison decides only when all give the same answer.
    OneOf(Vec<V>),
    /// A value the packet has but the engine cannot know (the reason).
    Any(String),
}

/// How a literal names a number (`tcp`, `established`, `echo-request`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sym {
    Num,
    Proto,
    NfProto,
    EtherType,
    PktType,
    IcmpType,
    Icmp6Type,
    CtState,
    CtStatus,
    CtDir,
    FibType,
}

impl Sym {
    /// The symbol table of a set's key type (`inet_proto`, `ct_state`, …).
    fn of_type(ty: &str) -> Sym {
        match ty {
            "inet_proto" => Sym::Proto,
            "nf_proto" => Sym::NfProto,
            "ether_type" => Sym::EtherType,
            "pkt_type" => Sym::PktType,
            "icmp_type" => Sym::IcmpType,
            "icmpv6_type" => Sym::Icmp6Type,
            "ct_state" => Sym::CtState,
            "ct_status" => Sym::CtStatus,
            "ct_dir" => Sym::CtDir,
            "fib_addrtype" => Sym::FibType,
            _ => Sym::Num,
        }
    }

    fn table(self) -> &'static [(&'static str, u64)] {
        match self {
            Sym::Num => &[],
            Sym::Proto => &[
                ("icmp", 1),
                ("igmp", 2),
                ("ipencap", 4),
                ("tcp", 6),
                ("udp", 17),
                ("ipv6", 41),
                ("gre", 47),
                ("esp", 50),
                ("ah", 51),
                ("ipv6-icmp", 58),
                ("icmpv6", 58),
                ("sctp", 132),
                ("udplite", 136),
            ],
            Sym::NfProto => &[("ipv4", 2), ("ipv6", 10)],
            Sym::EtherType => &[
                ("ip", 0x0800),
                ("arp", 0x0806),
                ("ip6", 0x86dd),
                ("vlan", 0x8100),
            ],
            Sym::PktType => &[
                ("host", 0),
                ("unicast", 0),
                ("broadcast", 1),
                ("multicast", 2),
                ("other", 3),
            ],
            Sym::IcmpType => &[
                ("echo-reply", 0),
                ("destination-unreachable", 3),
                ("source-quench", 4),
                ("redirect", 5),
                ("echo-request", 8),
                ("router-advertisement", 9),
                ("router-solicitation", 10),
                ("time-exceeded", 11),
                ("parameter-problem", 12),
                ("timestamp-request", 13),
                ("timestamp-reply", 14),
                ("info-request", 15),
                ("info-reply", 16),
                ("address-mask-request", 17),
                ("address-mask-reply", 18),
            ],
            Sym::Icmp6Type => &[
                ("destination-unreachable", 1),
                ("packet-too-big", 2),
                ("time-exceeded", 3),
                ("parameter-problem", 4),
                ("echo-request", 128),
                ("echo-reply", 129),
                ("mld-listener-query", 130),
                ("mld-listener-report", 131),
                ("mld-listener-done", 132),
                ("mld-listener-reduction", 132),
                ("nd-router-solicit", 133),
                ("nd-router-advert", 134),
                ("nd-neighbor-solicit", 135),
                ("nd-neighbor-advert", 136),
                ("nd-redirect", 137),
                ("router-renumbering", 138),
                ("ind-neighbor-solicit", 141),
                ("ind-neighbor-advert", 142),
                ("mld2-listener-report", 143),
            ],
            Sym::CtState => &[
                ("invalid", 1),
                ("established", 2),
                ("related", 4),
                ("new", 8),
                ("untracked", 64),
            ],
            Sym::CtStatus => &[
                ("expected", 1),
                ("seen-reply", 2),
                ("assured", 4),
                ("confirmed", 8),
                ("snat", 16),
                ("dnat", 32),
                ("dying", 512),
            ],
            Sym::CtDir => &[("original", 0), ("reply", 1)],
            Sym::FibType => &[
                ("unspec", 0),
                ("unicast", 1),
                ("local", 2),
                ("broadcast", 3),
                ("anycast", 4),
                ("multicast", 5),
                ("blackhole", 6),
                ("unreachable", 7),
                ("prohibit", 8),
                ("throw", 9),
                ("nat", 10),
                ("xresolve", 11),
            ],
        }
    }
}

/// A literal as a number: `80`, `"0x4000"`, or a name of `sym`.
pub(super) fn lit_int(v: &Val, sym: Sym) -> Result<u64, String> {
    match v.unwrap_elem() {
        Val::Num(n) => u64::try_from(*n).map_err(|_| format!("negative value {n}")),
        Val::Str(s) => {
            if let Some(&(_, n)) = sym.table().iter().find(|(name, _)| name == s) {
                return Ok(n);
            }
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            };
            parsed.ok_or_else(|| format!("value {s:?} is not a number the engine knows"))
        }
        other => Err(format!(
            "value {} is not a number",
            super::render::val(other)
        )),
    }
}

/// A literal as a packet value (a map's data): an address, a number, or a name.
pub(super) fn lit_v(v: &Val) -> Result<V, String> {
    match v.unwrap_elem() {
        Val::Str(s) => Ok(match s.parse::<IpAddr>() {
            Ok(a) => V::Ip(a),
            Err(_) => {
                lit_int(v, Sym::Num).map_or_else(|_| V::Str(s.clone()), |n| V::Int(n, Sym::Num))
            }
        }),
        Val::Num(_) => Ok(V::Int(lit_int(v, Sym::Num)?, Sym::Num)),
        Val::Concat(parts) => Ok(V::Concat(
            parts.iter().map(lit_v).collect::<Result<_, _>>()?,
        )),
        other => Err(format!(
            "map data {} is not a value",
            super::render::val(other)
        )),
    }
}

/// Three-valued: decided (`Ok`), or what the engine cannot tell (`Err`).
type Tri = Result<bool, String>;

/// True if any is true; else unknown if any is; else false.
fn any(items: impl Iterator<Item = Tri>) -> Tri {
    let mut unknown = None;
    for t in items {
        match t {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => {
                unknown.get_or_insert(e);
            }
        }
    }
    unknown.map_or(Ok(false), Err)
}

/// False if any is false; else unknown if any is; else true.
fn all(items: impl Iterator<Item = Tri>) -> Tri {
    let mut unknown = None;
    for t in items {
        match t {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(e) => {
                unknown.get_or_insert(e);
            }
        }
    }
    unknown.map_or(Ok(true), Err)
}

/// `v OP right`; `sets` resolves `@name`.
pub(super) fn cmp(op: &str, v: &V, right: &Val, sets: &HashMap<&str, SetIx<'_>>) -> Tri {
    let hit = match right.unwrap_elem() {
        Val::SetRef(name) => {
            let set = sets
                .get(name.as_str())
                .ok_or_else(|| format!("@{name}: no such set in the table"))?;
            set.lookup(v).map(|i| i.is_some())
        }
        Val::Set(items) if op == "in" => any(items.iter().map(|i| bits_in(v, i))),
        Val::Set(items) => any(items.iter().map(|i| eq(v, i))),
        lit => {
            return match op {
                "==" => eq(v, lit),
                "!=" => eq(v, lit).map(|b| !b),
                "in" => bits_in(v, lit),
                "<" | ">" | "<=" | ">=" => ord(op, v, lit),
                other => Err(format!("comparison {other:?}")),
            }
        }
    };
    match op {
        "==" | "in" => hit,
        "!=" => hit.map(|b| !b),
        other => Err(format!("comparison {other:?} with a set")),
    }
}

/// Every candidate's answer, when they agree.
fn one_of(vs: &[V], f: impl Fn(&V) -> Tri) -> Tri {
    let answers: Vec<bool> = vs.iter().map(f).collect::<Result<_, _>>()?;
    match answers.first() {
        Some(&a) if answers.iter().all(|&b| b == a) => Ok(a),
        _ => Err(format!(
            "the packet's value is one of {} and they answer differently",
            vs.iter().map(show).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn show(v: &V) -> String {
    match v {
        V::Ip(a) => a.to_string(),
        V::Int(n, sym) => sym
            .table()
            .iter()
            .find(|(_, x)| x == n)
            .map_or_else(|| n.to_string(), |(s, _)| (*s).to_string()),
        V::Str(s) => format!("{s:?}"),
        V::Bits { val, .. } => format!("{val:#x}"),
        V::Concat(vs) => vs.iter().map(show).collect::<Vec<_>>().join(" . "),
        V::OneOf(vs) => vs.iter().map(show).collect::<Vec<_>>().join(" or "),
        V::Any(_) => "?".into(),
    }
}

/// `v == lit`.
pub(super) fn eq(v: &V, lit: &Val) -> Tri {
    let lit = lit.unwrap_elem();
    if let Val::Set(items) = lit {
        return any(items.iter().map(|i| eq(v, i)));
    }
    match v {
        V::OneOf(vs) => one_of(vs, |x| eq(x, lit)),
        V::Any(why) => Err(why.clone()),
        V::Ip(a) => ip_eq(*a, lit),
        V::Int(n, sym) => match lit {
            Val::Range(lo, hi) => Ok(lit_int(lo, *sym)? <= *n && *n <= lit_int(hi, *sym)?),
            _ => Ok(lit_int(lit, *sym)? == *n),
        },
        V::Str(s) => match lit {
            Val::Str(l) => Ok(name_matches(s, l)),
            other => Err(format!("{} is not a name", super::render::val(other))),
        },
        V::Bits { .. } => Err("ct status compared whole; only its flags are known".into()),
        V::Concat(vs) => match lit {
            Val::Concat(ls) if ls.len() == vs.len() => {
                all(vs.iter().zip(ls).map(|(v, l)| eq(v, l)))
            }
            other => Err(format!(
                "{} does not fit a concatenation",
                super::render::val(other)
            )),
        },
    }
}

/// An interface name against a literal: `eth*` is a prefix, `\*` a literal star.
fn name_matches(name: &str, lit: &str) -> bool {
    match lit.strip_suffix('*') {
        Some(prefix) if !prefix.ends_with('\\') => name.starts_with(prefix),
        _ => name == lit.replace("\\*", "*"),
    }
}

fn parse_ip(s: &Val) -> Result<IpAddr, String> {
    match s.unwrap_elem() {
        Val::Str(s) => s.parse().map_err(|_| format!("{s:?} is not an address")),
        other => Err(format!("{} is not an address", super::render::val(other))),
    }
}

fn ip_eq(a: IpAddr, lit: &Val) -> Tri {
    match lit {
        Val::Prefix { addr, len } => {
            let net: IpAddr = addr
                .parse()
                .map_err(|_| format!("{addr:?} is not an address"))?;
            let net = ipnet::IpNet::new(net, u8::try_from(*len).unwrap_or(u8::MAX))
                .map_err(|e| format!("{addr}/{len}: {e}"))?;
            Ok(net.contains(&a))
        }
        Val::Range(lo, hi) => {
            let (lo, hi) = (parse_ip(lo)?, parse_ip(hi)?);
            Ok(lo.is_ipv6() == a.is_ipv6() && lo <= a && a <= hi)
        }
        other => Ok(parse_ip(other)? == a),
    }
}

/// The implicit comparison of a flag type (`ct state new`): any of the bits set.
fn bits_in(v: &V, lit: &Val) -> Tri {
    match v {
        V::Int(n, sym) => Ok(n & lit_int(lit, *sym)? != 0),
        V::Bits { val, known } => {
            let m = lit_int(lit, Sym::CtStatus)?;
            if val & m != 0 {
                Ok(true)
            } else if known & m == m {
                Ok(false)
            } else {
                Err(format!(
                    "ct status {}: the bundle does not tell that flag",
                    super::render::val(lit)
                ))
            }
        }
        V::OneOf(vs) => one_of(vs, |x| bits_in(x, lit)),
        _ => eq(v, lit),
    }
}

fn ord(op: &str, v: &V, lit: &Val) -> Tri {
    let o = match v {
        V::Int(n, sym) => n.cmp(&lit_int(lit, *sym)?),
        V::Ip(a) => {
            let b = parse_ip(lit)?;
            if a.is_ipv6() != b.is_ipv6() {
                return Ok(false);
            }
            a.cmp(&b)
        }
        V::OneOf(vs) => return one_of(vs, |x| ord(op, x, lit)),
        V::Any(why) => return Err(why.clone()),
        other => return Err(format!("{op} on {}", show(other))),
    };
    Ok(match op {
        "<" => o.is_lt(),
        ">" => o.is_gt(),
        "<=" => o.is_le(),
        _ => o.is_ge(),
    })
}

/// A component of an exact set key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Atom {
    Ip(IpAddr),
    Int(u64),
}

fn v_atoms(v: &V, out: &mut Vec<Atom>) -> bool {
    match v {
        V::Ip(a) => out.push(Atom::Ip(*a)),
        V::Int(n, _) => out.push(Atom::Int(*n)),
        V::Concat(vs) => return vs.iter().all(|x| v_atoms(x, out)),
        _ => return false,
    }
    true
}

fn lit_atom(v: &Val, ty: Option<&str>) -> Option<Atom> {
    if let Val::Str(s) = v {
        if let Ok(a) = s.parse() {
            return Some(Atom::Ip(a));
        }
    }
    lit_int(v, ty.map_or(Sym::Num, Sym::of_type))
        .ok()
        .map(Atom::Int)
}

/// A named set or map: exact keys hashed, the rest (prefixes, ranges, names) scanned.
pub(super) struct SetIx<'a> {
    pub(super) set: &'a NftSet,
    exact: HashMap<Vec<Atom>, usize>,
    rest: Vec<usize>,
}

impl<'a> SetIx<'a> {
    pub(super) fn new(set: &'a NftSet) -> SetIx<'a> {
        let mut exact = HashMap::new();
        let mut rest = Vec::new();
        for (i, e) in set.elements.iter().enumerate() {
            let parts: Vec<&Val> = match e.key.unwrap_elem() {
                Val::Concat(ps) => ps.iter().collect(),
                k => vec![k],
            };
            let atoms: Option<Vec<Atom>> = parts
                .iter()
                .enumerate()
                .map(|(j, p)| lit_atom(p, set.key_type.get(j).map(String::as_str)))
                .collect();
            match atoms {
                Some(a) => {
                    exact.entry(a).or_insert(i);
                }
                None => rest.push(i),
            }
        }
        SetIx { set, exact, rest }
    }

    /// The element `v` is in (its index), `None` when none; `Err` when the packet's
    /// value leaves it open.
    pub(super) fn lookup(&self, v: &V) -> Result<Option<usize>, String> {
        let mut key = Vec::new();
        let scan: Box<dyn Iterator<Item = usize>> = if v_atoms(v, &mut key) {
            if let Some(&i) = self.exact.get(&key) {
                return Ok(Some(i));
            }
            Box::new(self.rest.iter().copied())
        } else {
            Box::new(0..self.set.elements.len())
        };
        let mut unknown = None;
        for i in scan {
            match eq(v, &self.set.elements[i].key) {
                Ok(true) => return Ok(Some(i)),
                Ok(false) => {}
                Err(e) => {
                    unknown.get_or_insert(e);
                }
            }
        }
        match unknown {
            Some(e) => Err(format!("lookup in @{}: {e}", self.set.name)),
            None => Ok(None),
        }
    }
}

/// Whether a rule holds a `numgen` expression.
pub(super) fn has_numgen(r: &NftRule) -> bool {
    fn val(v: &Val) -> bool {
        match v {
            Val::Numgen { .. } => true,
            Val::Range(a, b) => val(a) || val(b),
            Val::Concat(vs) | Val::Set(vs) => vs.iter().any(val),
            Val::MapLit(kv) => kv.iter().any(|(k, v)| val(k) || val(v)),
            Val::Elem { val: v, .. } => val(v),
            Val::Binop { left, right, .. } => val(left) || val(right),
            Val::Map { key, data } => val(key) || val(data),
            _ => false,
        }
    }
    r.stmts.iter().any(|s| match s {
        Stmt::Match { left, right, .. } => val(left) || val(right),
        Stmt::Vmap { key, data } => val(key) || val(data),
        Stmt::Dnat(n) | Stmt::Snat(n) | Stmt::Masquerade(n) | Stmt::Redirect(n) => {
            n.addr.as_ref().is_some_and(val) || n.port.as_ref().is_some_and(val)
        }
        Stmt::Mangle { key, value } => val(key) || val(value),
        _ => false,
    })
}
