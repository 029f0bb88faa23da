//! Rules, statements and values rendered as nft text, for steps and evidence.

use crate::model::nft::verdict;
use crate::parse::coverage::excerpt;
use crate::parse::nft::{NatStmt, NftChain, NftRule, Stmt, Val};

/// A value or expression as nft prints it (near enough to find the rule by eye).
pub(crate) fn val(v: &Val) -> String {
    let list = |vs: &[Val]| vs.iter().map(val).collect::<Vec<_>>().join(", ");
    match v {
        Val::Str(s) if s.is_empty() || s.contains(' ') => format!("{s:?}"),
        Val::Str(s) => s.clone(),
        Val::Num(n) => n.to_string(),
        Val::Bool(true) => "exists".into(),
        Val::Bool(false) => "missing".into(),
        Val::SetRef(s) => format!("@{s}"),
        Val::Prefix { addr, len } => format!("{addr}/{len}"),
        Val::Range(a, b) => format!("{}-{}", val(a), val(b)),
        Val::Concat(vs) => vs.iter().map(val).collect::<Vec<_>>().join(" . "),
        Val::Set(vs) => format!("{{ {} }}", list(vs)),
        Val::MapLit(kv) => format!(
            "{{ {} }}",
            kv.iter()
                .map(|(k, v)| format!("{} : {}", val(k), val(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Val::Elem { val: v, .. } => val(v),
        Val::Verdict(v) => verdict(v),
        Val::Payload { protocol, field } => format!("{protocol} {field}"),
        Val::Meta { key } => format!("meta {key}"),
        Val::Ct { key, dir: Some(d) } => format!("ct {d} {key}"),
        Val::Ct { key, dir: None } => format!("ct {key}"),
        Val::Numgen {
            mode,
            modulus,
            offset,
        } if *offset != 0 => format!("numgen {mode} mod {modulus} offset {offset}"),
        Val::Numgen { mode, modulus, .. } => format!("numgen {mode} mod {modulus}"),
        Val::Fib { result, flags } => format!("fib {} {result}", flags.join(" . ")),
        Val::Binop { op, left, right } => format!("{} {op} {}", val(left), val(right)),
        Val::Map { key, data } => format!("{} map {}", val(key), val(data)),
        Val::Other(j) => j.to_string(),
    }
}

fn nat(name: &str, n: &NatStmt) -> String {
    let mut s = name.to_string();
    if let Some(f) = &n.family {
        s.push(' ');
        s.push_str(f);
    }
    if n.addr.is_some() || n.port.is_some() {
        s.push_str(" to ");
    }
    if let Some(a) = &n.addr {
        s.push_str(&val(a));
    }
    if let Some(p) = &n.port {
        s.push(':');
        s.push_str(&val(p));
    }
    for f in &n.flags {
        s.push(' ');
        s.push_str(f);
    }
    s
}

/// One statement as nft text.
pub(crate) fn stmt(s: &Stmt) -> String {
    match s {
        Stmt::Match { op, left, right } => match op.as_str() {
            "==" | "in" => format!("{} {}", val(left), val(right)),
            _ => format!("{} {op} {}", val(left), val(right)),
        },
        Stmt::Verdict(v) => verdict(v),
        Stmt::Vmap { key, data } => format!("{} vmap {}", val(key), val(data)),
        Stmt::Dnat(n) => nat("dnat", n),
        Stmt::Snat(n) => nat("snat", n),
        Stmt::Masquerade(n) => nat("masquerade", n),
        Stmt::Redirect(n) => nat("redirect", n),
        Stmt::Reject { kind: None, .. } => "reject".into(),
        Stmt::Reject {
            kind: Some(k),
            code,
        } => match code {
            Some(c) => format!("reject with {k} {c}"),
            None => format!("reject with {k}"),
        },
        Stmt::Mangle { key, value } => format!("{} set {}", val(key), val(value)),
        Stmt::Counter { .. } => "counter".into(),
        Stmt::SetOp { op, elem, set } => format!("{op} @{set} {{ {} }}", val(elem)),
        Stmt::Xt { kind, name } => format!("xt {kind} {name:?}"),
        Stmt::Generic { name, value } | Stmt::Unknown { name, value } => match value {
            serde_json::Value::Null => name.clone(),
            v => format!("{name} {v}"),
        },
    }
}

/// A rule's excerpt: where it is (table, chain, kernel handle) and its text, capped.
pub(super) fn rule_excerpt(r: &NftRule) -> String {
    let text = r.stmts.iter().map(stmt).collect::<Vec<_>>().join(" ");
    let handle = r
        .handle
        .map_or_else(String::new, |h| format!(" handle {h}"));
    excerpt(&format!(
        "table {} {} chain {}{handle}: {text}",
        r.family, r.table, r.chain
    ))
}

/// A base chain's declaration (for its policy).
pub(super) fn chain_text(c: &NftChain) -> String {
    let mut s = format!("table {} {} chain {} {{", c.family, c.table, c.name);
    if let (Some(t), Some(h)) = (&c.chain_type, &c.hook) {
        let prio = c.prio.map_or_else(|| "?".into(), |p| p.to_string());
        s.push_str(&format!(" type {t} hook {h} priority {prio};"));
    }
    if let Some(p) = &c.policy {
        s.push_str(&format!(" policy {p};"));
    }
    s.push_str(" }");
    excerpt(&s)
}
