//! Writes a ruleset back in iptables-save form; each match and target renders itself
//! beside its parser (`matches/`, `targets`), this module lays out tables and rules.

use super::super::tokenize::quote;
use super::matches::render_match;
use super::targets::render_target;
use super::types::{ChainOp, Opt, Rule, RuleOp, Ruleset};

/// Render a ruleset in iptables-save form (counters included when present).
pub fn render_iptables(rs: &Ruleset) -> String {
    let mut out = String::new();
    for t in &rs.tables {
        for c in &t.comments {
            out.push_str(&c.text);
            out.push('\n');
        }
        out.push('*');
        out.push_str(&t.name);
        out.push('\n');
        for c in &t.chains {
            out.push(':');
            out.push_str(&c.name);
            out.push(' ');
            out.push_str(c.policy.as_deref().unwrap_or("-"));
            if let Some(k) = c.counters {
                out.push_str(&format!(" [{}:{}]", k.packets, k.bytes));
            }
            out.push('\n');
        }
        for r in &t.rules {
            out.push_str(&render_rule(r));
            out.push('\n');
        }
        for c in &t.commands {
            out.push_str(match c.op {
                ChainOp::New => "-N",
                ChainOp::Delete => "-X",
                ChainOp::Flush => "-F",
                ChainOp::Zero => "-Z",
            });
            if let Some(ch) = &c.chain {
                out.push(' ');
                out.push_str(&quote(ch));
            }
            out.push('\n');
        }
        if t.commit_line.is_some() {
            out.push_str("COMMIT\n");
        }
    }
    for c in &rs.trailing_comments {
        out.push_str(&c.text);
        out.push('\n');
    }
    out
}

/// Render one rule line (without newline), e.g. `[0:0] -A KUBE-SERVICES -d … -j …`.
pub fn render_rule(r: &Rule) -> String {
    let mut w = Words::default();
    if let Some(k) = r.counters {
        w.raw(format!("[{}:{}]", k.packets, k.bytes));
    }
    match r.op {
        RuleOp::Append => w.raw("-A"),
        RuleOp::Insert(_) => w.raw("-I"),
    }
    w.val(&r.chain);
    if let RuleOp::Insert(Some(n)) = r.op {
        w.raw(n.to_string());
    }
    if let Some(s) = &r.source {
        w.neg(s.negated);
        w.raw("-s");
        w.raw(s.value.to_string());
    }
    if let Some(d) = &r.destination {
        w.neg(d.negated);
        w.raw("-d");
        w.raw(d.value.to_string());
    }
    if let Some(i) = &r.in_iface {
        w.neg(i.negated);
        w.raw("-i");
        w.val(&i.value);
    }
    if let Some(o) = &r.out_iface {
        w.neg(o.negated);
        w.raw("-o");
        w.val(&o.value);
    }
    if let Some(p) = &r.protocol {
        w.neg(p.negated);
        w.raw("-p");
        w.val(&p.value);
    }
    if let Some(f) = r.fragment {
        w.neg(!f);
        w.raw("-f");
    }
    for m in &r.matches {
        render_match(&mut w, m);
    }
    if let Some(t) = &r.target {
        w.raw(if r.goto { "-g" } else { "-j" });
        render_target(&mut w, t);
    }
    w.0.join(" ")
}

/// The words of one rule line, quoted where iptables-save quotes them.
#[derive(Default)]
pub(crate) struct Words(Vec<String>);

impl Words {
    pub(crate) fn raw(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
    pub(crate) fn val(&mut self, s: &str) {
        self.0.push(quote(s).into_owned());
    }
    pub(crate) fn neg(&mut self, n: bool) {
        if n {
            self.raw("!");
        }
    }
    pub(crate) fn opt(&mut self, negated: bool, name: &str, args: &[&str]) {
        self.neg(negated);
        self.raw(name);
        for a in args {
            self.val(a);
        }
    }
    pub(crate) fn opts(&mut self, opts: &[Opt]) {
        for o in opts {
            let args: Vec<&str> = o.args.iter().map(String::as_str).collect();
            self.opt(o.negated, &o.name, &args);
        }
    }
}
