//! One rule line of `nft list ruleset` → the `expr` list of `nft -j`. What cannot be
//! read is kept, from the first word not understood to the end of the rule, as an
//! `{"unparsed": …}` statement (the analyzer reports it in its coverage); the
//! statements before it stay.

use super::expr::{self, Cur};
use super::lex::Tok;
use serde_json::{json, Map, Value};

/// A converted rule: its statements, its comment, and why part of it was not read.
pub struct Rule {
    pub expr: Vec<Value>,
    pub comment: Option<String>,
    pub unparsed: Option<String>,
}

/// Converts one rule of a chain of family `family`.
pub fn rule(toks: &[Tok], family: &str) -> Rule {
    let mut toks = toks;
    let mut comment = None;
    // `comment "…"` ends a rule.
    if let [rest @ .., c, Tok::Quoted(text)] = toks {
        if c.is("comment") {
            comment = Some(text.clone());
            toks = rest;
        }
    }
    let mut c = Cur::new(toks);
    let mut out = Vec::new();
    let mut unparsed = None;
    while !c.done() {
        let start = c.pos;
        match statement(&mut c, family) {
            Ok(s) => out.push(s),
            Err(why) => {
                let text: Vec<&str> = toks[start..].iter().map(Tok::text).collect();
                let text = text.join(" ");
                out.push(json!({"unparsed": {"text": text, "reason": why}}));
                unparsed = Some(format!("`{}`: {why}", short(&text)));
                break;
            }
        }
    }
    Rule {
        expr: out,
        comment,
        unparsed,
    }
}

fn short(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn statement(c: &mut Cur, family: &str) -> Result<Value, String> {
    if let Some(v) = expr::verdict(c)? {
        return Ok(v);
    }
    if let Some(left) = expr::operand(c)? {
        return after_operand(c, left);
    }
    let w = c.word()?;
    match w {
        "counter" => counter(c),
        "log" => log(c),
        "limit" => limit(c),
        "notrack" => Ok(json!({"notrack": null})),
        "masquerade" | "snat" | "dnat" | "redirect" => nat(c, w),
        "reject" => reject(c, family),
        "update" | "add" | "delete" => set_op(c, w),
        other => Err(format!("statement `{other}` not understood")),
    }
}

/// After a selector: `vmap DATA`, `set VALUE`, or a match (`[op] VALUE`).
fn after_operand(c: &mut Cur, left: Value) -> Result<Value, String> {
    if c.eat("vmap") {
        let data = expr::value(c, 0)?;
        return Ok(json!({"vmap": {"key": left, "data": data}}));
    }
    if c.eat("set") {
        let value = match expr::operand(c)? {
            Some(v) => v,
            None => expr::value(c, 0)?,
        };
        return Ok(json!({"mangle": {"key": left, "value": value}}));
    }
    let op = c.peek().map(Tok::text).and_then(|t| match t {
        "==" | "eq" => Some("=="),
        "!=" | "ne" => Some("!="),
        "<" | "lt" => Some("<"),
        ">" | "gt" => Some(">"),
        "<=" | "le" => Some("<="),
        ">=" | "ge" => Some(">="),
        _ => None,
    });
    c.pos += usize::from(op.is_some());
    let right = expr::value(c, 0)?;
    // `tcp flags syn / syn,ack`: the flags masked by the list after `/`.
    if c.eat("/") {
        let mask = expr::value(c, 0)?;
        return Ok(
            json!({"match": {"op": op.unwrap_or("=="), "left": {"&": [left, mask]}, "right": right}}),
        );
    }
    let is_set = right.get("set").is_some();
    let op = op.unwrap_or(if expr::is_flag_match(&left) && !is_set {
        "in"
    } else {
        "=="
    });
    Ok(json!({"match": {"op": op, "left": left, "right": right}}))
}

fn counter(c: &mut Cur) -> Result<Value, String> {
    if c.eat("name") {
        return Ok(json!({"counter": c.word()?}));
    }
    let mut body = Map::new();
    for key in ["packets", "bytes"] {
        if c.eat(key) {
            let n = expr::number(c.word()?).ok_or(format!("counter {key} is not a number"))?;
            body.insert(key.into(), json!(n));
        }
    }
    Ok(json!({"counter": body}))
}

fn log(c: &mut Cur) -> Result<Value, String> {
    let mut body = Map::new();
    loop {
        match c.peek().map(Tok::text) {
            Some(k @ ("prefix" | "level")) => {
                c.pos += 1;
                body.insert(k.into(), json!(c.word()?));
            }
            Some(k @ ("group" | "snaplen" | "queue-threshold")) => {
                c.pos += 1;
                let n = expr::number(c.word()?).ok_or(format!("log {k} is not a number"))?;
                body.insert(k.into(), json!(n));
            }
            Some("flags") => return Err("log flags not understood".into()),
            _ => break,
        }
    }
    Ok(json!({"log": if body.is_empty() { Value::Null } else { Value::Object(body) }}))
}

/// `limit rate [over] N/UNIT [burst N packets]` (nft's JSON says burst 5 when the
/// text leaves it out, as nft prints the default).
fn limit(c: &mut Cur) -> Result<Value, String> {
    if !c.eat("rate") {
        return Err("limit without `rate`".into());
    }
    let over = c.eat("over");
    let (rate, per) = c
        .word()?
        .split_once('/')
        .ok_or("limit rate not in packets per unit (byte rates are not read)")?;
    let rate = expr::number(rate).ok_or("limit rate is not a number")?;
    let mut burst = 5;
    if c.eat("burst") {
        burst = expr::number(c.word()?).ok_or("limit burst is not a number")?;
        if !c.eat("packets") {
            return Err("limit burst not in packets".into());
        }
    }
    let mut body = json!({"rate": rate, "burst": burst, "per": per});
    if over {
        body["inv"] = json!(true);
    }
    Ok(json!({ "limit": body }))
}

/// `dnat [ip|ip6] to ADDR[:PORT]`, `snat …`, `masquerade [to :PORT]`,
/// `redirect [to :PORT]`, each with optional flags (`fully-random`, …).
fn nat(c: &mut Cur, kind: &str) -> Result<Value, String> {
    let mut body = Map::new();
    if let Some(f) = c
        .peek()
        .map(Tok::text)
        .filter(|f| matches!(*f, "ip" | "ip6"))
    {
        c.pos += 1;
        body.insert("family".into(), json!(f));
    }
    if c.eat("to") {
        if let Some(key) = expr::operand(c)? {
            if !c.eat("map") {
                return Err(format!("{kind} to an expression without `map`"));
            }
            let data = expr::value(c, 0)?;
            body.insert("addr".into(), json!({"map": {"key": key, "data": data}}));
        } else {
            let target = c.word()?;
            let (addr, port) = split_addr_port(target)?;
            if let Some(a) = addr {
                body.insert("addr".into(), json!(a));
            }
            if let Some(p) = port {
                body.insert("port".into(), expr::scalar(p));
            }
        }
    }
    let mut flags = Vec::new();
    while let Some(f) = c
        .peek()
        .map(Tok::text)
        .filter(|f| matches!(*f, "random" | "fully-random" | "persistent" | "netmap"))
    {
        c.pos += 1;
        flags.push(json!(f));
        c.eat(",");
    }
    match flags.len() {
        0 => {}
        1 => {
            body.insert("flags".into(), flags.remove(0));
        }
        _ => {
            body.insert("flags".into(), Value::Array(flags));
        }
    }
    Ok(json!({ kind: if body.is_empty() { Value::Null } else { Value::Object(body) } }))
}

/// `10.0.0.1:80`, `[fd00::1]:80`, `:8080`, `10.0.0.1`, `fd00::1`.
fn split_addr_port(t: &str) -> Result<(Option<&str>, Option<&str>), String> {
    if let Some(port) = t.strip_prefix(':') {
        return Ok((None, Some(port)));
    }
    if let Some(rest) = t.strip_prefix('[') {
        let (a, p) = rest
            .split_once(']')
            .ok_or("`[` without `]` in a NAT address")?;
        return Ok((Some(a), p.strip_prefix(':')));
    }
    if t.parse::<std::net::IpAddr>().is_ok() || t.contains('/') {
        return Ok((Some(t), None));
    }
    match t.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => Ok((Some(a), Some(p))),
        _ => Err(format!("NAT address `{t}` not understood")),
    }
}

/// `reject [with icmp|icmpv6|icmpx [type] CODE | with tcp reset]`; a bare `reject`
/// is `port-unreachable` of the family's ICMP (icmpx in inet and bridge tables).
fn reject(c: &mut Cur, family: &str) -> Result<Value, String> {
    if !c.eat("with") {
        let kind = match family {
            "ip" => "icmp",
            "ip6" => "icmpv6",
            _ => "icmpx",
        };
        return Ok(json!({"reject": {"type": kind, "expr": "port-unreachable"}}));
    }
    let kind = c.word()?;
    if kind == "tcp" {
        if !c.eat("reset") {
            return Err("reject with tcp, not reset".into());
        }
        return Ok(json!({"reject": {"type": "tcp reset"}}));
    }
    if !matches!(kind, "icmp" | "icmpv6" | "icmpx") {
        return Err(format!("reject with `{kind}` not understood"));
    }
    c.eat("type");
    Ok(json!({"reject": {"type": kind, "expr": c.word()?}}))
}

/// `update @set { ip saddr }` (also `add`, `delete`).
fn set_op(c: &mut Cur, op: &str) -> Result<Value, String> {
    let set = c.word()?;
    if !set.starts_with('@') || !c.eat("{") {
        return Err(format!("`{op}` not followed by `@set {{`"));
    }
    let elem = expr::operand(c)?.ok_or("set element is not a selector")?;
    if !c.eat("}") {
        return Err("set element options not understood".into());
    }
    Ok(json!({"set": {"op": op, "elem": elem, "set": set}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft_text::lex::words;

    fn exprs(line: &str, family: &str) -> Value {
        let r = rule(&words(line).unwrap(), family);
        assert!(r.unparsed.is_none(), "{line}: {:?}", r.unparsed);
        Value::Array(r.expr)
    }

    #[test]
    fn kube_proxy_statements() {
        assert_eq!(
            exprs("ip daddr . meta l4proto . th dport vmap @service-ips", "ip"),
            json!([{"vmap": {"key": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}, "data": "@service-ips"}}])
        );
        assert_eq!(
            exprs("meta l4proto tcp dnat to 10.244.1.5:8080", "ip"),
            json!([{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"dnat": {"addr": "10.244.1.5", "port": 8080}}])
        );
        assert_eq!(
            exprs("meta mark & 0x00004000 == 0x00000000 return", "ip"),
            json!([{"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 0}}, {"return": null}])
        );
        assert_eq!(
            exprs("ct state new jump x", "ip")[0]["match"]["op"],
            json!("in")
        );
        assert_eq!(
            exprs("tcp dport 80 dnat ip6 to [fd00::2]:8080", "ip6")[1],
            json!({"dnat": {"family": "ip6", "addr": "fd00::2", "port": 8080}})
        );
    }

    #[test]
    fn unknown_statement_keeps_what_was_read() {
        let r = rule(
            &words("ip saddr 10.0.0.1 frobnicate 3 accept comment \"c\"").unwrap(),
            "ip",
        );
        assert_eq!(r.expr.len(), 2);
        assert_eq!(r.expr[1]["unparsed"]["text"], json!("frobnicate 3 accept"));
        assert_eq!(r.comment.as_deref(), Some("c"));
        assert!(r.unparsed.unwrap().contains("frobnicate"));
    }
}
