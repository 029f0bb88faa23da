//! One rule run on one packet: its expressions in order, as nf_tables runs them.

use super::expr::{self, cmp, lit_v, Sym, V};
use super::fields::{self, Miss};
use super::render;
use super::TableIx;
use crate::parse::nft::{NftRule, Stmt, Val, Verdict};
use crate::trace::packet::{NetnsFacts, Packet};
use serde_json::Value;

/// How a rule ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum End {
    /// An expression did not match, a lookup missed, or the packet lacks a header the
    /// rule reads (NFT_BREAK): the next rule runs.
    NoMatch,
    /// Every expression ran and none gave a verdict.
    Fall,
    Verdict(Verdict),
    Reject(String),
    /// A `numgen` needs a value: the rule restarts once per value.
    Split {
        modulus: u64,
        offset: u64,
    },
    Unknown(String),
}

/// Why a rule stopped early.
pub(super) enum Stop {
    Break,
    Split { modulus: u64, offset: u64 },
    Unknown(String),
}

impl From<Miss> for Stop {
    fn from(m: Miss) -> Stop {
        match m {
            Miss::Absent => Stop::Break,
            Miss::Unknown(why) => Stop::Unknown(why),
        }
    }
}

pub(super) type R<T> = Result<T, Stop>;

pub(super) fn unknown<T>(why: impl Into<String>) -> R<T> {
    Err(Stop::Unknown(why.into()))
}

/// The context of one rule run: the table (for sets and maps), the netns facts, the
/// numgen values this branch takes, and what the rule did (for its step).
pub(super) struct RuleCx<'r> {
    table: &'r TableIx<'r>,
    pub(super) facts: &'r NetnsFacts,
    choices: &'r [u64],
    used: usize,
    pub(super) actions: Vec<String>,
}

impl<'r> RuleCx<'r> {
    pub(super) fn new(table: &'r TableIx<'r>, facts: &'r NetnsFacts, choices: &'r [u64]) -> Self {
        RuleCx {
            table,
            facts,
            choices,
            used: 0,
            actions: Vec::new(),
        }
    }

    /// What the rule did, in order (empty when it only matched or did not).
    pub(super) fn into_actions(self) -> Vec<String> {
        self.actions
    }

    /// Runs `rule` on `p` (which keeps what the rule's statements did).
    pub(super) fn exec(&mut self, rule: &NftRule, p: &mut Packet) -> End {
        for s in &rule.stmts {
            match self.stmt(s, p) {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(Stop::Break) => return End::NoMatch,
                Err(Stop::Split { modulus, offset }) => return End::Split { modulus, offset },
                Err(Stop::Unknown(why)) => return End::Unknown(why),
            }
        }
        End::Fall
    }

    fn stmt(&mut self, s: &Stmt, p: &mut Packet) -> R<Option<End>> {
        match s {
            Stmt::Match { op, left, right } => {
                let v = self.eval(left, p)?;
                match cmp(op, &v, right, &self.table.sets) {
                    Ok(true) => Ok(None),
                    Ok(false) => Err(Stop::Break),
                    Err(why) => unknown(format!("{}: {why}", render::stmt(s))),
                }
            }
            Stmt::Verdict(v) => self.verdict(v, None),
            Stmt::Vmap { key, data } => {
                let k = self.eval(key, p)?;
                let (elem, value) = self.lookup(&k, data)?;
                let Val::Verdict(v) = value else {
                    return unknown(format!("vmap data {} is not a verdict", render::val(value)));
                };
                let key = render::val(key);
                let what = match data {
                    Val::SetRef(name) => format!("{key} vmap @{name}: {elem}"),
                    _ => format!("{key} vmap: {elem}"),
                };
                self.verdict(v, Some(what))
            }
            Stmt::Dnat(n) => self.dnat(n, p),
            Stmt::Snat(n) => self.snat(n, p),
            Stmt::Masquerade(n) => self.masquerade(n, p),
            Stmt::Redirect(n) => self.redirect(n, p),
            Stmt::Reject { kind, code } => {
                let with = reject_with(kind.as_deref(), code.as_deref(), self.table.family);
                self.actions.push(format!("reject with {with}"));
                Ok(Some(End::Reject(with)))
            }
            Stmt::Mangle { key, value } => self.mangle(key, value, p),
            Stmt::Counter { .. } => {
                self.actions.push("counter".into());
                Ok(None)
            }
            Stmt::SetOp { op, set, .. } => {
                self.actions
                    .push(format!("{op} @{set} (the set's later contents are not simulated)"));
                Ok(None)
            }
            Stmt::Xt { kind, name } => unknown(format!(
                "iptables-nft compat {kind} {name:?}: not evaluable from the nft dump (the iptables save is)"
            )),
            Stmt::Generic { name, value } => self.generic(name, value),
            Stmt::Unknown { name, .. } => unknown(format!("statement {name:?} is not known")),
        }
    }

    fn verdict(&mut self, v: &Verdict, via: Option<String>) -> R<Option<End>> {
        if *v == Verdict::Queue {
            return unknown("queue hands the packet to a userspace program");
        }
        let shown = crate::model::nft::verdict(v);
        self.actions.push(match via {
            Some(via) => format!("{via} : {shown}"),
            None => shown,
        });
        Ok(Some(End::Verdict(v.clone())))
    }

    /// Statements the parser keeps by name.
    fn generic(&mut self, name: &str, value: &Value) -> R<Option<End>> {
        let inv = value.get("inv").and_then(Value::as_bool) == Some(true);
        match name {
            "limit" | "quota" => {
                let over = if inv { " over" } else { "" };
                self.actions.push(format!(
                    "{name}{over} (not simulated: the packet is taken as within it)"
                ));
                if inv {
                    Err(Stop::Break)
                } else {
                    Ok(None)
                }
            }
            "log" => {
                let prefix = value.get("prefix").and_then(Value::as_str);
                self.actions.push(match prefix {
                    Some(p) => format!("log prefix {p:?}"),
                    None => "log".into(),
                });
                Ok(None)
            }
            "ct helper" | "ct timeout" | "ct expectation" | "secmark" | "last" | "dup" | "flow" => {
                self.actions
                    .push(format!("{name} (no effect on this packet's path)"));
                Ok(None)
            }
            "notrack" => unknown("notrack: an untracked packet is not in the packet model"),
            other => unknown(format!("{other} is not simulated")),
        }
    }

    /// `KEY set VALUE`.
    fn mangle(&mut self, key: &Val, value: &Val, p: &mut Packet) -> R<Option<End>> {
        let int = |cx: &mut Self, p: &Packet| -> R<u32> {
            match cx.eval(value, p)? {
                V::Int(n, _) => Ok(n as u32),
                _ => unknown(format!("{} is not a number", render::val(value))),
            }
        };
        match key {
            Val::Meta { key: k } if k == "mark" => {
                p.mark = int(self, p)?;
                self.actions.push(format!("meta mark set {:#x}", p.mark));
            }
            Val::Ct { key: k, dir: None } if k == "mark" => {
                p.ct_mark = int(self, p)?;
                self.actions.push(format!("ct mark set {:#x}", p.ct_mark));
            }
            Val::Meta { key: k } if matches!(k.as_str(), "priority" | "nftrace" | "secmark") => {
                self.actions.push(format!(
                    "meta {k} set (not in the packet model; no effect on its path)"
                ));
            }
            Val::Ct { key: k, .. } if k == "label" => {
                self.actions
                    .push("ct label set (not in the packet model; no effect on its path)".into());
            }
            Val::Payload { protocol, field }
                if matches!(field.as_str(), "dscp" | "ecn" | "ttl" | "hoplimit") =>
            {
                self.actions.push(format!(
                    "{protocol} {field} set (not in the packet model; no effect on its path)"
                ));
            }
            Val::Other(j) if j.get("tcp option").is_some() => {
                self.actions
                    .push("tcp option set (MSS clamping; not in the packet model)".into());
            }
            other => {
                return unknown(format!(
                    "{} set: the engine does not rewrite that field",
                    render::val(other)
                ))
            }
        }
        Ok(None)
    }

    /// The value of an expression for `p`.
    pub(super) fn eval(&mut self, v: &Val, p: &Packet) -> R<V> {
        Ok(match v {
            Val::Payload { protocol, field } => fields::payload(p, protocol, field)?,
            Val::Meta { key } => fields::meta(p, key, self.facts)?,
            Val::Ct { key, dir } => fields::ct(p, key, dir.as_deref())?,
            Val::Fib { result, flags } => fields::fib(p, result, flags, self.facts)?,
            Val::Numgen {
                mode,
                modulus,
                offset,
            } => self.numgen(mode, *modulus, *offset)?,
            Val::Binop { op, left, right } => {
                let (l, r) = (self.eval(left, p)?, self.eval(right, p)?);
                let (V::Int(l, _), V::Int(r, _)) = (&l, &r) else {
                    return unknown(format!("{}: not numbers", render::val(v)));
                };
                let n = match op.as_str() {
                    "&" => l & r,
                    "|" => l | r,
                    "^" => l ^ r,
                    "<<" => l.checked_shl(*r as u32).unwrap_or(0),
                    _ => l.checked_shr(*r as u32).unwrap_or(0),
                };
                V::Int(n & u64::from(u32::MAX), Sym::Num)
            }
            Val::Concat(parts) => V::Concat(
                parts
                    .iter()
                    .map(|x| self.eval(x, p))
                    .collect::<R<Vec<V>>>()?,
            ),
            Val::Map { key, data } => {
                let k = self.eval(key, p)?;
                let (_, value) = self.lookup(&k, data)?;
                lit_v(value).map_err(Stop::Unknown)?
            }
            Val::Elem { val, .. } => self.eval(val, p)?,
            Val::Num(_) | Val::Str(_) => lit_v(v).map_err(Stop::Unknown)?,
            other => {
                return unknown(format!(
                    "expression {} is not evaluated",
                    render::val(other)
                ))
            }
        })
    }

    fn numgen(&mut self, mode: &str, modulus: u64, offset: u64) -> R<V> {
        if !matches!(mode, "random" | "inc") || modulus == 0 {
            return unknown(format!("numgen {mode} mod {modulus}"));
        }
        if modulus > super::MAX_BRANCHES as u64 {
            return unknown(format!(
                "numgen mod {modulus}: more branches than the engine follows ({})",
                super::MAX_BRANCHES
            ));
        }
        let Some(&value) = self.choices.get(self.used) else {
            return Err(Stop::Split { modulus, offset });
        };
        self.used += 1;
        let how = if mode == "inc" {
            " (a round-robin counter the bundle does not hold: taken as uniform)"
        } else {
            ""
        };
        let off = if offset != 0 {
            format!(" offset {offset}")
        } else {
            String::new()
        };
        self.actions.push(format!(
            "numgen {mode} mod {modulus}{off} = {value}, p 1/{modulus}{how}"
        ));
        Ok(V::Int(value, Sym::Num))
    }

    /// The element of a map (named or anonymous) `k` is in, shown, with its data;
    /// a miss stops the rule (NFT_BREAK).
    fn lookup<'v>(&self, k: &V, data: &'v Val) -> R<(String, &'v Val)>
    where
        'r: 'v,
    {
        match data {
            Val::SetRef(name) => {
                let Some(set) = self.table.sets.get(name.as_str()) else {
                    return unknown(format!("@{name}: no such map in the table"));
                };
                let set: &'r expr::SetIx<'r> = set;
                match set.lookup(k).map_err(Stop::Unknown)? {
                    Some(i) => {
                        let e = &set.set.elements[i];
                        match &e.value {
                            Some(v) => Ok((render::val(&e.key), v)),
                            None => unknown(format!("@{name} is a set, not a map")),
                        }
                    }
                    None => Err(Stop::Break),
                }
            }
            Val::MapLit(pairs) => {
                for (key, value) in pairs {
                    match expr::eq(k, key) {
                        Ok(true) => return Ok((render::val(key), value)),
                        Ok(false) => {}
                        Err(why) => return unknown(why),
                    }
                }
                Err(Stop::Break)
            }
            other => unknown(format!("map data {}", render::val(other))),
        }
    }
}

/// What a reject sends: `icmp port-unreachable`, `icmpx admin-prohibited`, `tcp
/// reset`; a bare `reject` is port-unreachable of the table's family.
fn reject_with(kind: Option<&str>, code: Option<&str>, family: &str) -> String {
    match (kind, code) {
        (Some(k), _) if k.starts_with("tcp") => "tcp reset".into(),
        (Some(k), Some(c)) => format!("{k} {c}"),
        (Some(k), None) => format!("{k} port-unreachable"),
        (None, _) => match family {
            "ip" => "icmp port-unreachable".into(),
            "ip6" => "icmpv6 port-unreachable".into(),
            _ => "icmpx port-unreachable".into(),
        },
    }
}
