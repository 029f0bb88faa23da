//! Expressions of `nft list ruleset` text as `nft -j` writes them: selectors
//! (`ip daddr`, `tcp dport`, `meta mark`, `ct state`, `fib daddr type`, `numgen`),
//! concatenations (`a . b`), bitwise operations (`meta mark & 0x4000`) and literal
//! values (numbers, prefixes, ranges, anonymous sets and maps, `@set`, verdicts).

use super::lex::Tok;
use serde_json::{json, Value};

/// How deep anonymous sets may nest (nft itself allows no nesting; a hostile input
/// must not exhaust the stack).
const MAX_DEPTH: usize = 16;

/// Payload protocols nft prints before a header field.
const PROTOCOLS: &[&str] = &[
    "ip", "ip6", "tcp", "udp", "th", "icmp", "icmpv6", "sctp", "ether", "vlan", "arp", "udplite",
    "dccp", "ah", "esp", "comp", "igmp", "gre",
];

/// Header fields: a protocol word is a selector only when one of these follows it
/// (`meta l4proto tcp dnat …` has `tcp` as a value).
const FIELDS: &[&str] = &[
    "saddr",
    "daddr",
    "sport",
    "dport",
    "protocol",
    "nexthdr",
    "flags",
    "type",
    "code",
    "id",
    "length",
    "ttl",
    "hoplimit",
    "dscp",
    "ecn",
    "version",
    "hdrlength",
    "checksum",
    "sequence",
    "ackseq",
    "window",
    "urgptr",
    "doff",
    "frag-off",
    "flowlabel",
    "vtag",
    "mtu",
    "gateway",
    "pcp",
    "cfi",
    "htype",
    "ptype",
    "hlen",
    "plen",
    "operation",
];

/// Meta keys nft prints without `meta`.
const BARE_META: &[&str] = &[
    "iifname",
    "oifname",
    "iif",
    "oif",
    "mark",
    "iiftype",
    "oiftype",
    "skuid",
    "skgid",
    "nftrace",
    "rtclassid",
    "ibrname",
    "obrname",
    "pkttype",
    "cpu",
    "iifgroup",
    "oifgroup",
    "cgroup",
];

/// Keys whose values are bit flags: a bare value (no operator) matches with `in`.
const FLAG_KEYS: &[&str] = &["state", "status", "flags"];

/// A cursor over the words of one statement list.
pub struct Cur<'a> {
    pub toks: &'a [Tok],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(toks: &'a [Tok]) -> Self {
        Cur { toks, pos: 0 }
    }
    pub fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos)
    }
    pub fn peek_at(&self, n: usize) -> Option<&'a Tok> {
        self.toks.get(self.pos + n)
    }
    pub fn peek_is(&self, w: &str) -> bool {
        self.peek().is_some_and(|t| t.is(w))
    }
    pub fn advance(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.pos);
        self.pos += usize::from(t.is_some());
        t
    }
    pub fn eat(&mut self, w: &str) -> bool {
        let yes = self.peek_is(w);
        self.pos += usize::from(yes);
        yes
    }
    pub fn word(&mut self) -> Result<&'a str, String> {
        self.advance()
            .map(Tok::text)
            .ok_or_else(|| "the statement ends too early".to_string())
    }
    pub fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }
}

/// A selector at the cursor (consumed), or `None` (nothing consumed).
pub fn selector(c: &mut Cur) -> Result<Option<Value>, String> {
    let Some(Tok::Word(w)) = c.peek() else {
        return Ok(None);
    };
    let next_is_field = c.peek_at(1).is_some_and(|t| FIELDS.contains(&t.text()));
    let v = match w.as_str() {
        p if PROTOCOLS.contains(&p) && next_is_field => {
            c.pos += 1;
            let field = c.word()?;
            json!({"payload": {"protocol": p, "field": field}})
        }
        "meta" => {
            c.pos += 1;
            json!({"meta": {"key": c.word()?}})
        }
        k if BARE_META.contains(&k) => {
            c.pos += 1;
            json!({"meta": {"key": k}})
        }
        "ct" => {
            c.pos += 1;
            let mut key = c.word()?;
            let mut dir = None;
            if matches!(key, "original" | "reply") {
                dir = Some(key);
                key = c.word()?;
            }
            let mut body = json!({"key": key});
            if matches!(key, "ip" | "ip6") {
                body = json!({"key": c.word()?, "family": key});
            }
            if let Some(d) = dir {
                body["dir"] = json!(d);
            }
            json!({ "ct": body })
        }
        "fib" => {
            c.pos += 1;
            let mut flags = vec![c.word()?.to_string()];
            while c.eat(".") {
                flags.push(c.word()?.to_string());
            }
            let result = c.word()?;
            json!({"fib": {"result": result, "flags": flags}})
        }
        "numgen" => {
            c.pos += 1;
            let mode = c.word()?;
            if !c.eat("mod") {
                return Err("numgen without `mod`".into());
            }
            let modulus = number(c.word()?).ok_or("numgen modulus is not a number")?;
            let offset = if c.eat("offset") {
                number(c.word()?).ok_or("numgen offset is not a number")?
            } else {
                0
            };
            json!({"numgen": {"mode": mode, "mod": modulus, "offset": offset}})
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// A selector or concatenation of selectors, with bitwise operations (`&`, `|`,
/// `^`, `<<`, `>>` and a value). `None` when no selector starts here.
pub fn operand(c: &mut Cur) -> Result<Option<Value>, String> {
    let Some(first) = selector(c)? else {
        return Ok(None);
    };
    let mut parts = vec![binops(c, first)?];
    while c.peek_is(".") {
        c.pos += 1;
        let s = selector(c)?.ok_or("a concatenation of something other than selectors")?;
        parts.push(binops(c, s)?);
    }
    Ok(Some(if parts.len() == 1 {
        parts.remove(0)
    } else {
        json!({ "concat": parts })
    }))
}

fn binops(c: &mut Cur, mut left: Value) -> Result<Value, String> {
    while let Some(op) = c
        .peek()
        .map(Tok::text)
        .filter(|t| matches!(*t, "&" | "|" | "^" | "<<" | ">>"))
    {
        c.pos += 1;
        let right = match selector(c)? {
            Some(s) => s,
            None => value(c, 0)?,
        };
        left = json!({ op: [left, right] });
    }
    Ok(left)
}

/// Whether a bare value matched against `left` means `in` (bit flags) not `==`.
pub fn is_flag_match(left: &Value) -> bool {
    let key = left
        .pointer("/ct/key")
        .or_else(|| left.pointer("/payload/field"));
    key.and_then(Value::as_str)
        .is_some_and(|k| FLAG_KEYS.contains(&k))
}

/// A decimal or hex number.
pub fn number(w: &str) -> Option<u64> {
    match w.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => w.parse().ok(),
    }
}

/// One word as nft's JSON writes it: a number, a prefix, a range or a string.
pub fn scalar(w: &str) -> Value {
    if let Some(n) = number(w) {
        return json!(n);
    }
    if let Some((a, len)) = w.split_once('/') {
        if a.parse::<std::net::IpAddr>().is_ok() {
            if let Ok(len) = len.parse::<u32>() {
                return json!({"prefix": {"addr": a, "len": len}});
            }
        }
    }
    if let Some((a, b)) = w.split_once('-') {
        let num = |s: &str| number(s).map(|n| json!(n));
        let ip = |s: &str| s.parse::<std::net::IpAddr>().ok().map(|_| json!(s));
        if let (Some(a), Some(b)) = (num(a).or_else(|| ip(a)), num(b).or_else(|| ip(b))) {
            return json!({ "range": [a, b] });
        }
    }
    json!(w)
}

/// A verdict at the cursor (`accept`, `goto CHAIN`, …), consumed.
pub fn verdict(c: &mut Cur) -> Result<Option<Value>, String> {
    let Some(Tok::Word(w)) = c.peek() else {
        return Ok(None);
    };
    let v = match w.as_str() {
        "accept" | "drop" | "continue" | "return" => json!({ w.as_str(): null }),
        "jump" | "goto" => {
            c.pos += 1;
            let target = c.word()?;
            return Ok(Some(json!({ w.as_str(): {"target": target} })));
        }
        _ => return Ok(None),
    };
    c.pos += 1;
    Ok(Some(v))
}

/// A value: `@set`, a quoted string, an anonymous set or map `{ … }`, a verdict, or
/// words joined by ` . ` (a concatenation), or by `,` (a flag list).
pub fn value(c: &mut Cur, depth: usize) -> Result<Value, String> {
    value_in(c, depth, true)
}

/// A value; `lists`: whether `a,b` is a flag list (not inside `{ … }`, where the
/// comma separates elements).
fn value_in(c: &mut Cur, depth: usize, lists: bool) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("anonymous sets nested deeper than {MAX_DEPTH}"));
    }
    if let Some(v) = verdict(c)? {
        return Ok(v);
    }
    let mut parts = vec![single(c, depth)?];
    while c.eat(".") {
        parts.push(single(c, depth)?);
    }
    if parts.len() > 1 {
        return Ok(json!({ "concat": parts }));
    }
    let first = parts.remove(0);
    // `ct state established,related`: a list of flags, no braces.
    if lists && c.peek_is(",") && first.is_string() {
        let mut list = vec![first];
        while c.eat(",") {
            list.push(single(c, depth)?);
        }
        return Ok(Value::Array(list));
    }
    Ok(first)
}

fn single(c: &mut Cur, depth: usize) -> Result<Value, String> {
    match c.advance() {
        Some(Tok::Quoted(s)) => Ok(json!(s)),
        Some(Tok::Word(w)) if w == "{" => anonymous(c, depth + 1),
        Some(Tok::Word(w)) if matches!(w.as_str(), "}" | "," | ";" | ":" | "." | "(" | ")") => {
            Err(format!("unexpected `{w}`"))
        }
        Some(Tok::Word(w)) => Ok(scalar(w)),
        None => Err("a value is missing".into()),
    }
}

/// `{ a, b }` (a set: `{"set": [a, b]}`) or `{ k : v, … }` (map data:
/// `{"set": [[k, v], …]}`), after the `{`. Elements may carry a comment.
fn anonymous(c: &mut Cur, depth: usize) -> Result<Value, String> {
    let items = elements(c, depth)?;
    Ok(json!({ "set": items }))
}

/// The elements of a `{ … }` list up to its `}` (consumed), as nft's JSON lists
/// them: keys alone for sets, `[key, value]` for maps, a key with a comment wrapped
/// in `{"elem": {"val": …, "comment": …}}`.
pub fn elements(c: &mut Cur, depth: usize) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    loop {
        if c.eat("}") {
            return Ok(items);
        }
        let mut key = value_in(c, depth, false)?;
        if c.eat("comment") {
            let comment = c.word()?;
            key = json!({"elem": {"val": key, "comment": comment}});
        }
        let item = if c.eat(":") {
            json!([key, value_in(c, depth, false)?])
        } else {
            key
        };
        items.push(item);
        if !c.eat(",") && !c.peek_is("}") {
            return Err(match c.peek() {
                Some(t) => format!("unexpected `{}` in a set", t.text()),
                None => "a set is not closed (cut?)".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft_text::lex::words;

    fn parse_value(s: &str) -> Value {
        let toks = words(s).unwrap();
        value(&mut Cur::new(&toks), 0).unwrap()
    }

    #[test]
    fn values_as_nft_json_writes_them() {
        assert_eq!(parse_value("0x00004000"), json!(16384));
        assert_eq!(
            parse_value("10.244.0.0/16"),
            json!({"prefix": {"addr": "10.244.0.0", "len": 16}})
        );
        assert_eq!(
            parse_value("{ 22, 80-90 }"),
            json!({"set": [22, {"range": [80, 90]}]})
        );
        assert_eq!(
            parse_value("established,related"),
            json!(["established", "related"])
        );
        assert_eq!(
            parse_value("{ 0 : goto a , 1 : goto b }"),
            json!({"set": [[0, {"goto": {"target": "a"}}], [1, {"goto": {"target": "b"}}]]})
        );
        assert_eq!(parse_value("echo-request"), json!("echo-request"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = format!("{}1{}", "{ ".repeat(100_000), " }".repeat(100_000));
        let toks = words(&s).unwrap();
        assert!(value(&mut Cur::new(&toks), 0).is_err());
    }
}
