//! `nft list ruleset` text → the `{"nftables": […]}` document `nft -j list ruleset`
//! prints, which is what bundles hold (`netfilter/nft.json`) and what the analyzer
//! reads. sos 4.0 and pasted tickets only have the text.
//!
//! [`lex`] splits lines into words, [`expr`] reads expressions and values, [`rule`]
//! reads one rule's statements; this module follows the blocks (table, chain, set,
//! map, counter) and writes the objects in `nft -j`'s order: per table the table,
//! its sets, maps and counters, its chains, then its rules. The text has no handles,
//! so none are written. Nothing is dropped silently: a statement not understood is
//! kept as `{"unparsed": …}` (the analyzer counts it in its coverage) and noted with
//! its input line; other lines not read (unknown objects, set properties) are noted.

pub mod expr;
pub mod lex;
pub mod rule;

use expr::Cur;
use lex::Tok;
use serde_json::{json, Map, Value};

/// At most this many notes name single lines; the rest are counted.
const MAX_LINE_NOTES: usize = 20;

/// The converted document and what could not be read.
#[derive(Debug, Default)]
pub struct Converted {
    /// `{"nftables":[…]}` with a final newline.
    pub json: String,
    pub notes: Vec<String>,
    /// Rules kept with an `unparsed` statement.
    pub unparsed_rules: usize,
    /// Other lines not converted (objects, set properties, stray text).
    pub unread_lines: usize,
    /// Tables iptables-nft manages, left out (their content is the iptables-save dumps').
    pub iptables_tables: usize,
    pub rules: usize,
}

#[derive(Default)]
struct Table {
    family: String,
    name: String,
    comment: Option<String>,
    objects: Vec<Value>,
    chains: Vec<Value>,
    rules: Vec<Value>,
}

enum Block {
    Table(Table),
    Chain(Map<String, Value>),
    Set(Map<String, Value>, bool),
    Counter(Map<String, Value>),
    /// A block not converted (an iptables-nft table, a flowtable, a quota, …).
    Skip(i64),
}

struct State<'a> {
    origin: &'a str,
    /// The input line of the dump's first line, minus one.
    offset: usize,
    stack: Vec<Block>,
    items: Vec<Value>,
    out: Converted,
    line_notes: usize,
}

/// Converts a dump that starts at line `first_line` of `origin`.
pub fn to_json(text: &str, origin: &str, first_line: usize) -> Converted {
    let mut st = State {
        origin,
        offset: first_line.saturating_sub(1),
        stack: Vec::new(),
        items: vec![
            json!({"metainfo": {"json_schema_version": 1, "release_name": "netsnap import of `nft list ruleset` text"}}),
        ],
        out: Converted::default(),
        line_notes: 0,
    };
    // A statement over several lines (a set's elements), with its `{`/`}` balance.
    let mut pending: Option<(usize, Vec<Tok>, i64)> = None;
    for (i, line) in text.lines().enumerate() {
        let toks = match lex::words(line) {
            Ok(t) => t,
            Err(t) => {
                st.note(i + 1, "a string is not closed (the line is cut?)");
                t
            }
        };
        let line_balance = balance(&toks);
        let (start, toks, bal) = match pending.take() {
            Some((start, mut have, bal)) => {
                have.extend(toks);
                (start, have, bal + line_balance)
            }
            None => (i + 1, toks, line_balance),
        };
        let open = matches!(st.stack.last(), Some(Block::Chain(_) | Block::Set(..)));
        if open && bal > 0 {
            pending = Some((start, toks, bal));
            continue;
        }
        st.line(start, &toks);
    }
    if let Some((start, toks, _)) = pending {
        st.note(start, "the ruleset ends inside this statement (cut?)");
        st.line(start, &toks);
    }
    if !st.stack.is_empty() {
        let n = text.lines().count();
        st.note(
            n,
            "the ruleset ends inside a block (cut?): what was read is kept",
        );
        while !st.stack.is_empty() {
            st.close();
        }
    }
    let mut out = st.out;
    let doc = json!({ "nftables": st.items });
    out.json = format!("{doc}\n");
    if st.line_notes > MAX_LINE_NOTES {
        out.notes.push(format!(
            "{origin}: {} more nft line(s) not fully read",
            st.line_notes - MAX_LINE_NOTES
        ));
    }
    out
}

/// `{` minus `}` of a line's words.
fn balance(toks: &[Tok]) -> i64 {
    toks.iter()
        .map(|t| i64::from(t.is("{")) - i64::from(t.is("}")))
        .sum()
}

fn words(toks: &[Tok]) -> Vec<&str> {
    toks.iter().map(Tok::text).collect()
}

impl State<'_> {
    fn note(&mut self, line: usize, what: &str) {
        self.line_notes += 1;
        if self.line_notes <= MAX_LINE_NOTES {
            self.out.notes.push(format!(
                "{} line {}: {what}",
                self.origin,
                line + self.offset
            ));
        }
    }

    fn unread(&mut self, line: usize, toks: &[Tok], what: &str) {
        self.out.unread_lines += 1;
        let text = words(toks).join(" ");
        let text: String = text.chars().take(80).collect();
        self.note(line, &format!("{what} not converted: `{text}`"));
    }

    fn table(&mut self) -> Option<&mut Table> {
        self.stack.iter_mut().rev().find_map(|b| match b {
            Block::Table(t) => Some(t),
            _ => None,
        })
    }

    fn line(&mut self, n: usize, toks: &[Tok]) {
        if toks.is_empty() {
            return;
        }
        if toks.len() == 1 && toks[0].is("}") && !matches!(self.stack.last(), Some(Block::Skip(_)))
        {
            if self.stack.is_empty() {
                self.unread(n, toks, "a `}` outside any table");
            } else {
                self.close();
            }
            return;
        }
        match self.stack.last_mut() {
            None => self.top_line(n, toks),
            Some(Block::Table(_)) => self.table_line(n, toks),
            Some(Block::Chain(_)) => self.chain_line(n, toks),
            Some(Block::Set(..)) => self.set_line(n, toks),
            Some(Block::Counter(c)) => match words(toks).as_slice() {
                ["packets", p, "bytes", b] => {
                    let (p, b) = (expr::number(p), expr::number(b));
                    c.insert("packets".into(), json!(p));
                    c.insert("bytes".into(), json!(b));
                }
                _ => self.unread(n, toks, "counter property"),
            },
            Some(Block::Skip(depth)) => {
                *depth += balance(toks);
                if *depth <= 0 {
                    self.stack.pop();
                }
            }
        }
    }

    fn top_line(&mut self, n: usize, toks: &[Tok]) {
        match words(toks).as_slice() {
            ["table", family, name, "{"] => {
                if netsnap_schema::layout::managed_by_iptables_nft(family, name) {
                    self.out.iptables_tables += 1;
                    self.stack.push(Block::Skip(1));
                    return;
                }
                self.stack.push(Block::Table(Table {
                    family: family.to_string(),
                    name: name.to_string(),
                    ..Table::default()
                }));
            }
            _ => self.unread(n, toks, "a line outside any table"),
        }
    }

    fn table_line(&mut self, n: usize, toks: &[Tok]) {
        let Some(t) = self.table() else { return };
        let base = |name: &str| {
            let mut m = Map::new();
            m.insert("family".into(), json!(t.family));
            m.insert("name".into(), json!(name));
            m.insert("table".into(), json!(t.name));
            m
        };
        let block = match words(toks).as_slice() {
            ["comment", c] => {
                t.comment = Some(c.to_string());
                return;
            }
            ["chain", name, "{"] => Block::Chain(base(name)),
            ["set", name, "{"] => Block::Set(base(name), false),
            ["map", name, "{"] => Block::Set(base(name), true),
            ["counter", name, "{"] => Block::Counter(base(name)),
            [.., "{"] => {
                self.unread(n, toks, "an nft object");
                Block::Skip(1)
            }
            _ => {
                self.unread(n, toks, "a table property");
                return;
            }
        };
        self.stack.push(block);
    }

    fn chain_line(&mut self, n: usize, toks: &[Tok]) {
        let (family, table) = match self.table() {
            Some(t) => (t.family.clone(), t.name.clone()),
            None => return,
        };
        let Some(Block::Chain(chain)) = self.stack.last_mut() else {
            return;
        };
        if toks[0].is("type") && toks.iter().any(|t| t.is("hook")) {
            if let Err(e) = base_chain(chain, toks, &family) {
                self.unread(n, toks, &format!("a base chain's hook ({e})"));
            }
            return;
        }
        if let [c, Tok::Quoted(text)] = toks {
            if c.is("comment") {
                chain.insert("comment".into(), json!(text));
                return;
            }
        }
        let name = chain.get("name").cloned().unwrap_or_default();
        let r = rule::rule(toks, &family);
        let mut body = json!({"family": family, "table": table, "chain": name, "expr": r.expr});
        if let Some(c) = r.comment {
            body["comment"] = json!(c);
        }
        self.out.rules += 1;
        if let Some(why) = r.unparsed {
            self.out.unparsed_rules += 1;
            self.note(
                n,
                &format!("nft statement not understood, the rule is kept up to it: {why}"),
            );
        }
        if let Some(t) = self.table() {
            t.rules.push(json!({ "rule": body }));
        }
    }

    fn set_line(&mut self, n: usize, toks: &[Tok]) {
        let Some(Block::Set(set, is_map)) = self.stack.last_mut() else {
            return;
        };
        let is_map = *is_map;
        let res = set_property(set, toks, is_map);
        if let Err(e) = res {
            self.unread(n, toks, &format!("a set property ({e})"));
        }
    }

    /// Ends the innermost block.
    fn close(&mut self) {
        let Some(block) = self.stack.pop() else {
            return;
        };
        let item = match block {
            Block::Table(t) => {
                let mut table = json!({"family": t.family, "name": t.name});
                if let Some(c) = t.comment {
                    table["comment"] = json!(c);
                }
                self.items.push(json!({ "table": table }));
                self.items.extend(t.objects);
                self.items.extend(t.chains);
                self.items.extend(t.rules);
                return;
            }
            Block::Chain(c) => (true, json!({ "chain": c })),
            Block::Set(s, false) => (false, json!({ "set": s })),
            Block::Set(s, true) => (false, json!({ "map": s })),
            Block::Counter(c) => (false, json!({ "counter": c })),
            Block::Skip(_) => return,
        };
        if let Some(t) = self.table() {
            match item {
                (true, v) => t.chains.push(v),
                (false, v) => t.objects.push(v),
            }
        }
    }
}

/// `type filter hook input [device "eth0"] priority filter + 10; policy drop;`
fn base_chain(chain: &mut Map<String, Value>, toks: &[Tok], family: &str) -> Result<(), String> {
    let mut c = Cur::new(toks);
    while let Some(t) = c.advance() {
        match t.text() {
            "type" => {
                chain.insert("type".into(), json!(c.word()?));
            }
            "hook" => {
                chain.insert("hook".into(), json!(c.word()?));
            }
            "device" => {
                chain.insert("dev".into(), json!(c.word()?));
            }
            "priority" => {
                let mut words = Vec::new();
                while c.peek().is_some_and(|t| !t.is(";")) {
                    words.push(c.word()?);
                }
                let prio =
                    netsnap_schema::nft_priority::nft_chain_priority(&words.join(" "), family)
                        .ok_or_else(|| format!("priority `{}`", words.join(" ")))?;
                chain.insert("prio".into(), json!(prio));
            }
            "policy" => {
                chain.insert("policy".into(), json!(c.word()?));
            }
            ";" => {}
            other => return Err(format!("`{other}`")),
        }
    }
    Ok(())
}

/// One line of a set or map block: `type a . b : c`, `flags x,y`, `elements = {…}`,
/// `comment "…"`, `size N`.
fn set_property(set: &mut Map<String, Value>, toks: &[Tok], is_map: bool) -> Result<(), String> {
    let mut c = Cur::new(toks);
    let key = c.word()?;
    match key {
        "type" => {
            let mut key_types = Vec::new();
            let mut data = Vec::new();
            let mut into_data = false;
            while let Some(w) = c.advance().map(Tok::text) {
                match w {
                    "." => {}
                    ":" if is_map => into_data = true,
                    w if into_data => data.push(json!(w)),
                    w => key_types.push(json!(w)),
                }
            }
            let one_or_list = |mut v: Vec<Value>| match v.len() {
                1 => v.remove(0),
                _ => Value::Array(v),
            };
            set.insert("type".into(), one_or_list(key_types));
            if is_map {
                set.insert("map".into(), one_or_list(data));
            }
        }
        "flags" => {
            let flags: Vec<Value> = toks[1..]
                .iter()
                .filter(|t| !t.is(","))
                .map(|t| json!(t.text()))
                .collect();
            set.insert("flags".into(), Value::Array(flags));
            c.pos = toks.len();
        }
        "comment" => {
            set.insert("comment".into(), json!(c.word()?));
        }
        "size" => {
            let n = expr::number(c.word()?).ok_or("size is not a number")?;
            set.insert("size".into(), json!(n));
        }
        "elements" => {
            if !c.eat("=") || !c.eat("{") {
                return Err("`elements` without `= {`".into());
            }
            let elems = expr::elements(&mut c, 1)?;
            set.insert("elem".into(), Value::Array(elems));
        }
        other => return Err(format!("`{other}`")),
    }
    if !c.done() {
        return Err(format!(
            "`{}` after it",
            c.peek().map(Tok::text).unwrap_or("")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
