//! `nft -j list ruleset` JSON: tables, chains, sets, maps (with elements) and rules
//! with their expressions.
//!
//! JSON has no useful line numbers (`nft -j` prints one line), so the "line" of every
//! object, in the model and in coverage, is its 1-based index in the top-level
//! `nftables` array. Unknown statements or expressions are kept as raw JSON and the
//! rule is reported in coverage; they never make the parse fail.
//!
//! kube-proxy's nftables mode is understood in both shapes: the `service-ips` verdict
//! map → `service-…` chain → `numgen random mod N vmap { i : goto endpoint-… }` →
//! endpoint chain with `dnat to IP:port`, and the newer direct form
//! `dnat ip to numgen random mod N map { i : IP . port }` (see [`NftRule::dnat_targets`]
//! and [`NftRule::numgen_vmap`]).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::coverage::{excerpt, Coverage, Parsed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NftRuleset {
    /// `nft` version that produced the dump.
    pub version: Option<String>,
    pub tables: Vec<NftTable>,
    pub chains: Vec<NftChain>,
    /// Named sets and maps.
    pub sets: Vec<NftSet>,
    pub rules: Vec<NftRule>,
    /// Other stateful objects (counter, quota, ct helper, flowtable, …), kept raw.
    pub objects: Vec<NftObject>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftTable {
    /// 1-based index in the `nftables` array.
    pub index: usize,
    pub family: String,
    pub name: String,
    pub handle: Option<u64>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftChain {
    pub index: usize,
    pub family: String,
    pub table: String,
    pub name: String,
    pub handle: Option<u64>,
    /// `filter`, `nat`, `route` for base chains.
    pub chain_type: Option<String>,
    pub hook: Option<String>,
    /// The hook priority. `nft -j` prints it as a number; a hand-written or older
    /// dump may name it (`"dstnat"`, `"filter + 10"`), resolved by [`chain_priority`].
    pub prio: Option<i64>,
    pub policy: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftSet {
    pub index: usize,
    pub family: String,
    pub table: String,
    pub name: String,
    pub handle: Option<u64>,
    /// A map (`map` object) rather than a set.
    pub is_map: bool,
    /// Key type, one entry per concatenated field (`ipv4_addr . inet_proto . inet_service`).
    pub key_type: Vec<String>,
    /// Data type of a map (`verdict`, `ipv4_addr`, …).
    pub data_type: Option<String>,
    pub flags: Vec<String>,
    pub timeout: Option<u64>,
    pub comment: Option<String>,
    pub elements: Vec<NftElement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftElement {
    pub key: Val,
    /// Map data (a verdict for verdict maps).
    pub value: Option<Val>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftRule {
    pub index: usize,
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub comment: Option<String>,
    pub stmts: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftObject {
    pub index: usize,
    pub kind: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Queue,
    Jump(String),
    Goto(String),
}

/// A value or expression inside a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Val {
    Str(String),
    Num(i64),
    Bool(bool),
    /// `@name`
    SetRef(String),
    Prefix {
        addr: String,
        len: u32,
    },
    Range(Box<Val>, Box<Val>),
    Concat(Vec<Val>),
    /// Anonymous set `{ a, b }`.
    Set(Vec<Val>),
    /// Anonymous map data `{ k : v, … }`.
    MapLit(Vec<(Val, Val)>),
    /// `{"elem": {"val": …, "timeout": …, "comment": …}}`
    Elem {
        val: Box<Val>,
        comment: Option<String>,
    },
    Verdict(Verdict),
    Payload {
        protocol: String,
        field: String,
    },
    Meta {
        key: String,
    },
    Ct {
        key: String,
        dir: Option<String>,
    },
    Numgen {
        mode: String,
        modulus: u64,
        offset: u64,
    },
    Fib {
        result: String,
        flags: Vec<String>,
    },
    /// `&`, `|`, `^`, `<<`, `>>`
    Binop {
        op: String,
        left: Box<Val>,
        right: Box<Val>,
    },
    /// `KEY map DATA` (DATA a [`Val::SetRef`] or [`Val::MapLit`]).
    Map {
        key: Box<Val>,
        data: Box<Val>,
    },
    /// Anything else, kept as JSON (reported in coverage).
    Other(Value),
}

/// One statement of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stmt {
    Match {
        op: String,
        left: Val,
        right: Val,
    },
    Verdict(Verdict),
    /// `KEY vmap DATA`
    Vmap {
        key: Val,
        data: Val,
    },
    Dnat(NatStmt),
    Snat(NatStmt),
    Masquerade(NatStmt),
    Redirect(NatStmt),
    Reject {
        kind: Option<String>,
        code: Option<String>,
    },
    /// `KEY set VALUE` (e.g. `meta mark set meta mark | 0x4000`).
    Mangle {
        key: Val,
        value: Val,
    },
    Counter {
        packets: Option<u64>,
        bytes: Option<u64>,
    },
    /// `update @set { elem }` / `add @set { elem }`
    SetOp {
        op: String,
        elem: Val,
        set: String,
    },
    /// iptables-nft compat expression (`xt match/target`).
    Xt {
        kind: String,
        name: String,
    },
    /// A known statement without semantics for netsnap (log, limit, notrack, …).
    Generic {
        name: String,
        value: Value,
    },
    /// An unknown statement (reported in coverage).
    Unknown {
        name: String,
        value: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatStmt {
    pub family: Option<String>,
    pub addr: Option<Val>,
    pub port: Option<Val>,
    pub flags: Vec<String>,
}

/// A DNAT destination found in a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnatTarget {
    /// `numgen` slot for the direct map form; `None` for a plain `dnat to`.
    pub slot: Option<i64>,
    pub addr: IpAddr,
    pub port: Option<u16>,
}

// ---------------------------------------------------------------------------
// Accessors
// ---------------------------------------------------------------------------

impl NftRuleset {
    pub fn table(&self, family: &str, name: &str) -> Option<&NftTable> {
        self.tables
            .iter()
            .find(|t| t.family == family && t.name == name)
    }

    pub fn chain(&self, family: &str, table: &str, name: &str) -> Option<&NftChain> {
        self.chains
            .iter()
            .find(|c| c.family == family && c.table == table && c.name == name)
    }

    pub fn set(&self, family: &str, table: &str, name: &str) -> Option<&NftSet> {
        self.sets
            .iter()
            .find(|s| s.family == family && s.table == table && s.name == name)
    }

    /// Rules of one chain in order.
    pub fn chain_rules<'a>(
        &'a self,
        family: &str,
        table: &str,
        chain: &str,
    ) -> impl Iterator<Item = &'a NftRule> + 'a {
        let (family, table, chain) = (family.to_string(), table.to_string(), chain.to_string());
        self.rules
            .iter()
            .filter(move |r| r.family == family && r.table == table && r.chain == chain)
    }
}

impl NftRule {
    /// Verdicts of the rule (jump/goto/accept/drop…), not those inside maps.
    pub fn verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.stmts.iter().filter_map(|s| match s {
            Stmt::Verdict(v) => Some(v),
            _ => None,
        })
    }

    /// `numgen random mod N vmap { i : verdict, … }`: (N, slots with their verdicts).
    pub fn numgen_vmap(&self) -> Option<(u64, Vec<(i64, Verdict)>)> {
        self.stmts.iter().find_map(|s| match s {
            Stmt::Vmap {
                key: Val::Numgen { modulus, .. },
                data: Val::MapLit(pairs),
            } => Some((
                *modulus,
                pairs
                    .iter()
                    .filter_map(|(k, v)| match (k, v) {
                        (Val::Num(i), Val::Verdict(v)) => Some((*i, v.clone())),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => None,
        })
    }

    /// DNAT destinations: a plain `dnat to IP[:port]`, or every slot of the direct
    /// `dnat to numgen random mod N map { i : IP . port }` form.
    pub fn dnat_targets(&self) -> Vec<DnatTarget> {
        let mut out = Vec::new();
        for s in &self.stmts {
            let Stmt::Dnat(n) = s else { continue };
            let port = n.port.as_ref().and_then(val_port);
            match &n.addr {
                Some(Val::Str(a)) => {
                    if let Ok(addr) = a.parse() {
                        out.push(DnatTarget {
                            slot: None,
                            addr,
                            port,
                        });
                    }
                }
                Some(Val::Map { data, .. }) => {
                    if let Val::MapLit(pairs) = data.as_ref() {
                        for (k, v) in pairs {
                            let slot = match k {
                                Val::Num(i) => Some(*i),
                                _ => None,
                            };
                            let (addr, p) = match v {
                                Val::Concat(parts) => match parts.as_slice() {
                                    [Val::Str(a), p] => (a.parse().ok(), val_port(p)),
                                    _ => (None, None),
                                },
                                Val::Str(a) => (a.parse().ok(), port),
                                _ => (None, None),
                            };
                            if let Some(addr) = addr {
                                out.push(DnatTarget {
                                    slot,
                                    addr,
                                    port: p.or(port),
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn val_port(v: &Val) -> Option<u16> {
    match v {
        Val::Num(n) => u16::try_from(*n).ok(),
        Val::Str(s) => s.parse().ok(),
        _ => None,
    }
}

impl NftSet {
    /// Elements whose map value is a verdict, with their keys (e.g. `service-ips`).
    pub fn verdict_elements(&self) -> impl Iterator<Item = (&Val, &Verdict, Option<&str>)> {
        self.elements.iter().filter_map(|e| match &e.value {
            Some(Val::Verdict(v)) => Some((&e.key, v, e.comment.as_deref())),
            _ => None,
        })
    }
}

impl Val {
    /// The key without an `elem` wrapper.
    pub fn unwrap_elem(&self) -> &Val {
        match self {
            Val::Elem { val, .. } => val,
            v => v,
        }
    }
}

/// What a kube-proxy nftables chain name says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeProxyChain {
    /// `service`, `endpoint`, `external`, `firewall`, …
    pub kind: String,
    pub hash: String,
    pub namespace: String,
    pub service: String,
    pub protocol: String,
    /// Port name (may be empty for unnamed ports).
    pub port_name: String,
    /// Endpoint address and port, for `endpoint-…__IP/port` chains.
    pub endpoint: Option<(IpAddr, u16)>,
}

/// Parse `service-HASH-ns/svc/proto/port` or `endpoint-HASH-ns/svc/proto/port__IP/port`.
pub fn parse_kube_proxy_chain(name: &str) -> Option<KubeProxyChain> {
    let (kind, rest) = name.split_once('-')?;
    let (hash, rest) = rest.split_once('-')?;
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (svc_part, ep_part) = match rest.split_once("__") {
        Some((s, e)) => (s, Some(e)),
        None => (rest, None),
    };
    let mut parts = svc_part.splitn(4, '/');
    let namespace = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    let protocol = parts.next()?.to_string();
    let port_name = parts.next()?.to_string();
    let endpoint = match ep_part {
        Some(e) => {
            let (ip, port) = e.rsplit_once('/')?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            Some((ip.parse().ok()?, port.parse().ok()?))
        }
        None => None,
    };
    Some(KubeProxyChain {
        kind: kind.to_string(),
        hash: hash.to_string(),
        namespace,
        service,
        protocol,
        port_name,
        endpoint,
    })
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Parse `nft -j list ruleset` output.
pub fn parse_nft(path: &str, text: &str) -> Parsed<NftRuleset> {
    let mut cov = Coverage::new(path);
    let mut rs = NftRuleset::default();
    if text.trim().is_empty() {
        // An empty ruleset dump is legitimately empty.
        return Parsed {
            model: rs,
            coverage: cov,
        };
    }
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.line().max(1);
            let bad = text.lines().nth(line - 1).unwrap_or("");
            cov.miss(line, bad, format!("invalid JSON: {e}"));
            return Parsed {
                model: rs,
                coverage: cov,
            };
        }
    };
    let Some(items) = root.get("nftables").and_then(Value::as_array) else {
        cov.miss(1, &excerpt(text), "no top-level \"nftables\" array");
        return Parsed {
            model: rs,
            coverage: cov,
        };
    };
    for (i, item) in items.iter().enumerate() {
        let index = i + 1;
        let Some((kind, body)) =
            item.as_object()
                .and_then(|o| if o.len() == 1 { o.iter().next() } else { None })
        else {
            cov.miss(index, &compact(item), "expected an object with one key");
            continue;
        };
        let res = match kind.as_str() {
            "metainfo" => {
                rs.version = str_field(body, "version");
                Ok(())
            }
            "table" => parse_table(body, index).map(|t| rs.tables.push(t)),
            "chain" => parse_chain(body, index).map(|c| rs.chains.push(c)),
            "set" | "map" => parse_set(body, index, kind == "map").map(|s| rs.sets.push(s)),
            "rule" => match parse_rule(body, index) {
                Ok((r, unknown)) => {
                    let res = if unknown.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("unknown expression(s): {}", unknown.join(", ")))
                    };
                    rs.rules.push(r);
                    res
                }
                Err(e) => Err(e),
            },
            "counter" | "quota" | "ct helper" | "ct timeout" | "ct expectation" | "limit"
            | "flowtable" | "secmark" | "synproxy" | "element" => {
                rs.objects.push(NftObject {
                    index,
                    kind: kind.clone(),
                    value: body.clone(),
                });
                Ok(())
            }
            other => Err(format!("unknown object kind {other:?}")),
        };
        match res {
            Ok(()) => cov.ok(),
            Err(e) => cov.miss(index, &compact(item), e),
        }
    }
    Parsed {
        model: rs,
        coverage: cov,
    }
}

fn compact(v: &Value) -> String {
    excerpt(&v.to_string())
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn req_str(v: &Value, k: &str) -> Result<String, String> {
    str_field(v, k).ok_or_else(|| format!("missing \"{k}\""))
}

fn u64_field(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

fn parse_table(v: &Value, index: usize) -> Result<NftTable, String> {
    Ok(NftTable {
        index,
        family: req_str(v, "family")?,
        name: req_str(v, "name")?,
        handle: u64_field(v, "handle"),
        comment: str_field(v, "comment"),
    })
}

fn parse_chain(v: &Value, index: usize) -> Result<NftChain, String> {
    Ok(NftChain {
        index,
        family: req_str(v, "family")?,
        table: req_str(v, "table")?,
        name: req_str(v, "name")?,
        handle: u64_field(v, "handle"),
        chain_type: str_field(v, "type"),
        hook: str_field(v, "hook"),
        prio: v.get("prio").and_then(|p| {
            let family = str_field(v, "family").unwrap_or_default();
            chain_priority(p, &family)
        }),
        policy: str_field(v, "policy"),
        comment: str_field(v, "comment"),
    })
}

/// A chain priority: a number, or a standard name with an optional `+ N` / `- N`
/// (nft(8) "PRIORITY"; the bridge family has its own values). `None` for a name nft
/// does not define.
pub fn chain_priority(v: &Value, family: &str) -> Option<i64> {
    match v.as_i64() {
        Some(n) => Some(n),
        None => netsnap_schema::nft_priority::nft_chain_priority(v.as_str()?, family),
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_set(v: &Value, index: usize, is_map: bool) -> Result<NftSet, String> {
    let mut unknown = Vec::new();
    let mut elements = Vec::new();
    if let Some(elems) = v.get("elem").and_then(Value::as_array) {
        for e in elems {
            elements.push(parse_element(e, is_map, &mut unknown));
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown element expression(s): {}",
            unknown.join(", ")
        ));
    }
    let data_type = match v.get("map") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" . "),
        ),
        _ => None,
    };
    Ok(NftSet {
        index,
        family: req_str(v, "family")?,
        table: req_str(v, "table")?,
        name: req_str(v, "name")?,
        handle: u64_field(v, "handle"),
        is_map,
        key_type: string_list(v.get("type")),
        data_type,
        flags: string_list(v.get("flags")),
        timeout: u64_field(v, "timeout"),
        comment: str_field(v, "comment"),
        elements,
    })
}

fn parse_element(e: &Value, is_map: bool, unknown: &mut Vec<String>) -> NftElement {
    // Map elements are `[key, value]`; set elements are the key alone. Either key may
    // be wrapped in `{"elem": {"val": …, "comment": …}}`.
    let (k, value) = match e.as_array() {
        Some(pair) if is_map && pair.len() == 2 => (&pair[0], Some(val(&pair[1], unknown))),
        _ => (e, None),
    };
    let key = val(k, unknown);
    let comment = match &key {
        Val::Elem { comment, .. } => comment.clone(),
        _ => None,
    };
    NftElement {
        key: match key {
            Val::Elem { val, .. } => *val,
            k => k,
        },
        value,
        comment,
    }
}

fn parse_rule(v: &Value, index: usize) -> Result<(NftRule, Vec<String>), String> {
    let mut unknown = Vec::new();
    let stmts = match v.get("expr") {
        Some(Value::Array(a)) => a.iter().map(|s| stmt(s, &mut unknown)).collect(),
        None => Vec::new(),
        Some(_) => return Err("\"expr\" is not an array".into()),
    };
    Ok((
        NftRule {
            index,
            family: req_str(v, "family")?,
            table: req_str(v, "table")?,
            chain: req_str(v, "chain")?,
            handle: u64_field(v, "handle"),
            comment: str_field(v, "comment"),
            stmts,
        },
        unknown,
    ))
}

fn single_key(v: &Value) -> Option<(&str, &Value)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn verdict(name: &str, body: &Value) -> Option<Verdict> {
    let target = || str_field(body, "target");
    Some(match name {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "continue" => Verdict::Continue,
        "return" => Verdict::Return,
        "queue" => Verdict::Queue,
        "jump" => Verdict::Jump(target()?),
        "goto" => Verdict::Goto(target()?),
        _ => return None,
    })
}

const GENERIC_STMTS: &[&str] = &[
    "log",
    "limit",
    "notrack",
    "quota",
    "meter",
    "ct helper",
    "ct timeout",
    "ct expectation",
    "queue",
    "tproxy",
    "synproxy",
    "fwd",
    "dup",
    "flow",
    "secmark",
    "reset",
    "last",
    "connlimit",
];

fn stmt(s: &Value, unknown: &mut Vec<String>) -> Stmt {
    let Some((name, body)) = single_key(s) else {
        unknown.push(excerpt(&s.to_string()));
        return Stmt::Unknown {
            name: String::new(),
            value: s.clone(),
        };
    };
    if let Some(v) = verdict(name, body) {
        return Stmt::Verdict(v);
    }
    match name {
        "match" => Stmt::Match {
            op: str_field(body, "op").unwrap_or_else(|| "==".into()),
            left: opt_val(body.get("left"), unknown),
            right: opt_val(body.get("right"), unknown),
        },
        "vmap" => Stmt::Vmap {
            key: opt_val(body.get("key"), unknown),
            data: map_data(body.get("data"), unknown),
        },
        "dnat" | "snat" | "masquerade" | "redirect" => {
            let n = NatStmt {
                family: str_field(body, "family"),
                addr: body.get("addr").map(|a| val(a, unknown)),
                port: body.get("port").map(|p| val(p, unknown)),
                flags: string_list(body.get("flags")),
            };
            match name {
                "dnat" => Stmt::Dnat(n),
                "snat" => Stmt::Snat(n),
                "masquerade" => Stmt::Masquerade(n),
                _ => Stmt::Redirect(n),
            }
        }
        "reject" => Stmt::Reject {
            kind: str_field(body, "type"),
            code: str_field(body, "expr"),
        },
        "mangle" => Stmt::Mangle {
            key: opt_val(body.get("key"), unknown),
            value: opt_val(body.get("value"), unknown),
        },
        "counter" => Stmt::Counter {
            packets: u64_field(body, "packets"),
            bytes: u64_field(body, "bytes"),
        },
        "set" => Stmt::SetOp {
            op: str_field(body, "op").unwrap_or_default(),
            elem: opt_val(body.get("elem"), unknown),
            set: str_field(body, "set")
                .map(|s| s.trim_start_matches('@').to_string())
                .unwrap_or_default(),
        },
        "xt" => Stmt::Xt {
            kind: str_field(body, "type").unwrap_or_default(),
            name: str_field(body, "name").unwrap_or_default(),
        },
        n if GENERIC_STMTS.contains(&n) => Stmt::Generic {
            name: n.to_string(),
            value: body.clone(),
        },
        n => {
            unknown.push(n.to_string());
            Stmt::Unknown {
                name: n.to_string(),
                value: body.clone(),
            }
        }
    }
}

fn opt_val(v: Option<&Value>, unknown: &mut Vec<String>) -> Val {
    match v {
        Some(v) => val(v, unknown),
        None => {
            unknown.push("missing operand".into());
            Val::Other(Value::Null)
        }
    }
}

/// Data of a map lookup: `"@name"` or an anonymous `{"set": [[k, v], …]}`.
fn map_data(v: Option<&Value>, unknown: &mut Vec<String>) -> Val {
    match v {
        Some(d) => match d.get("set").and_then(Value::as_array) {
            Some(items)
                if items
                    .iter()
                    .all(|i| i.as_array().is_some_and(|p| p.len() == 2)) =>
            {
                Val::MapLit(
                    items
                        .iter()
                        .filter_map(Value::as_array)
                        .map(|p| (val(&p[0], unknown), val(&p[1], unknown)))
                        .collect(),
                )
            }
            _ => val(d, unknown),
        },
        None => opt_val(None, unknown),
    }
}

fn val(v: &Value, unknown: &mut Vec<String>) -> Val {
    match v {
        Value::String(s) => match s.strip_prefix('@') {
            Some(name) => Val::SetRef(name.to_string()),
            None => Val::Str(s.clone()),
        },
        Value::Number(n) => match n.as_i64() {
            Some(i) => Val::Num(i),
            None => Val::Other(v.clone()),
        },
        Value::Bool(b) => Val::Bool(*b),
        Value::Array(a) => Val::Set(a.iter().map(|x| val(x, unknown)).collect()),
        Value::Null => {
            unknown.push("null".into());
            Val::Other(Value::Null)
        }
        Value::Object(_) => {
            let Some((name, body)) = single_key(v) else {
                unknown.push(excerpt(&v.to_string()));
                return Val::Other(v.clone());
            };
            if let Some(verdict) = verdict(name, body) {
                return Val::Verdict(verdict);
            }
            let pair = |b: &Value, unknown: &mut Vec<String>| -> Option<(Val, Val)> {
                let a = b.as_array()?;
                if a.len() != 2 {
                    return None;
                }
                Some((val(&a[0], unknown), val(&a[1], unknown)))
            };
            let r = match name {
                "prefix" => match (str_field(body, "addr"), u64_field(body, "len")) {
                    (Some(addr), Some(len)) => Some(Val::Prefix {
                        addr,
                        len: u32::try_from(len).unwrap_or(u32::MAX),
                    }),
                    _ => None,
                },
                "range" => pair(body, unknown).map(|(a, b)| Val::Range(Box::new(a), Box::new(b))),
                "concat" => body
                    .as_array()
                    .map(|a| Val::Concat(a.iter().map(|x| val(x, unknown)).collect())),
                "set" => match body {
                    Value::Array(a) => Some(Val::Set(a.iter().map(|x| val(x, unknown)).collect())),
                    other => Some(Val::Set(vec![val(other, unknown)])),
                },
                "elem" => body.get("val").map(|x| Val::Elem {
                    val: Box::new(val(x, unknown)),
                    comment: str_field(body, "comment"),
                }),
                "payload" => match (str_field(body, "protocol"), str_field(body, "field")) {
                    (Some(protocol), Some(field)) => Some(Val::Payload { protocol, field }),
                    _ => None, // raw payload (base/offset/len)
                },
                "meta" => str_field(body, "key").map(|key| Val::Meta { key }),
                "ct" => str_field(body, "key").map(|key| Val::Ct {
                    key,
                    dir: str_field(body, "dir"),
                }),
                "numgen" => match (str_field(body, "mode"), u64_field(body, "mod")) {
                    (Some(mode), Some(modulus)) => Some(Val::Numgen {
                        mode,
                        modulus,
                        offset: u64_field(body, "offset").unwrap_or(0),
                    }),
                    _ => None,
                },
                "fib" => str_field(body, "result").map(|result| Val::Fib {
                    result,
                    flags: string_list(body.get("flags")),
                }),
                "&" | "|" | "^" | "<<" | ">>" => pair(body, unknown).map(|(a, b)| Val::Binop {
                    op: name.to_string(),
                    left: Box::new(a),
                    right: Box::new(b),
                }),
                "map" => Some(Val::Map {
                    key: Box::new(opt_val(body.get("key"), unknown)),
                    data: Box::new(map_data(body.get("data"), unknown)),
                }),
                _ => None,
            };
            match r {
                Some(x) => x,
                None => {
                    unknown.push(name.to_string());
                    Val::Other(v.clone())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_proxy_chain_names() {
        let c = parse_kube_proxy_chain("endpoint-5OJB2KTY-ns1/web/tcp/http__10.244.1.5/8080");
        assert_eq!(
            c,
            Some(KubeProxyChain {
                kind: "endpoint".into(),
                hash: "5OJB2KTY".into(),
                namespace: "ns1".into(),
                service: "web".into(),
                protocol: "tcp".into(),
                port_name: "http".into(),
                endpoint: "10.244.1.5".parse().ok().map(|ip| (ip, 8080)),
            })
        );
        let c = parse_kube_proxy_chain("service-ULMVA6XW-ns1/web/tcp/");
        assert_eq!(
            c.map(|c| (c.kind, c.port_name)),
            Some(("service".into(), String::new()))
        );
        assert_eq!(parse_kube_proxy_chain("nat-prerouting"), None);
        assert_eq!(parse_kube_proxy_chain("mark-for-masquerade"), None);
    }

    #[test]
    fn chain_priorities_by_number_or_name() {
        use serde_json::json;
        assert_eq!(chain_priority(&json!(-110), "ip"), Some(-110));
        assert_eq!(chain_priority(&json!("-110"), "ip"), Some(-110));
        assert_eq!(chain_priority(&json!("dstnat"), "ip"), Some(-100));
        assert_eq!(chain_priority(&json!("filter + 10"), "inet"), Some(10));
        assert_eq!(chain_priority(&json!("mangle - 5"), "ip6"), Some(-155));
        assert_eq!(chain_priority(&json!("srcnat"), "bridge"), Some(300));
        assert_eq!(chain_priority(&json!("raw"), "bridge"), None);
        assert_eq!(chain_priority(&json!("nonsense"), "ip"), None);
        let text = r#"{"nftables": [{"chain": {"family": "inet", "table": "t", "name": "c",
            "type": "filter", "hook": "input", "prio": "security + 1", "policy": "drop"}}]}"#;
        assert_eq!(parse_nft("n.json", text).model.chains[0].prio, Some(51));
    }

    #[test]
    fn bad_json_is_reported_with_its_line() {
        let p = parse_nft("n.json", "{\"nftables\": [\n{\"table\": {}},\n oops\n]}");
        assert_eq!(p.coverage.unrecognised.len(), 1);
        assert_eq!(p.coverage.unrecognised[0].line, 3);
    }

    #[test]
    fn unknown_expression_is_reported_not_fatal() {
        let text = r#"{"nftables": [
          {"metainfo": {"version": "1.0.6"}},
          {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 4,
                    "expr": [{"frobnicate": {"x": 1}}, {"accept": null}]}},
          {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 5,
                    "expr": [{"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}}, {"drop": null}]}},
          {"wat": {}}
        ]}"#;
        let p = parse_nft("n.json", text);
        assert_eq!(p.model.rules.len(), 2);
        assert_eq!(p.model.rules[0].verdicts().next(), Some(&Verdict::Accept));
        let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(p.coverage.unrecognised[0].reason.contains("frobnicate"));
        assert!(p.coverage.unrecognised[1].reason.contains("osf"));
        assert_eq!(p.coverage.recognised, 1);
    }
}
