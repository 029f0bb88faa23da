//! The parser: lines are classified and assembled into tables in file order; rule lines
//! are tokenized and split into the rule's own options, its matches and its target,
//! which `matches` and `targets` then type.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::fx::Fx;

use super::super::coverage::{numbered_lines, Coverage, Parsed};
use super::super::tokenize::{tokenize, Token};
use super::matches::{build_match, known_option, PendingMatch};
use super::scan::{scan_rule, RecentNames};
use super::targets::{build_target, Target};
use super::types::{
    protocol_name, Chain, ChainCommand, ChainOp, CommentLine, Counters, Neg, Opt, ProtocolName,
    Rule, RuleOp, Ruleset, Table,
};
use super::values::parse_cidr;

/// Lines parsed in parallel before they are assembled into tables.
const RULE_WINDOW: usize = 1 << 16;

/// The most rules a table's vector is sized for before any is parsed: several times
/// the biggest real save (~300,000 rules), far below what a save of millions of
/// bogus one-word lines would ask for.
const MAX_RESERVED_RULES: usize = 1 << 20;

/// Parse iptables-save output or iptables-restore input.
pub fn parse_iptables(path: &str, text: &str) -> Parsed<Ruleset> {
    parse_with(path, text, RuleReader::ScanFirst).0
}

/// [`parse_iptables`], and where each line of `text` starts (as
/// `LineIndex::new` finds them: 0, then one past every `\n`), taken from the parse's
/// own pass over the lines instead of another over a 50 MB save.
pub fn parse_iptables_and_line_starts(path: &str, text: &str) -> (Parsed<Ruleset>, Vec<usize>) {
    let (parsed, lines) = parse_with(path, text, RuleReader::ScanFirst);
    (parsed, line_starts(text, &lines))
}

/// [`parse_iptables`] with every rule line read by the full parser, none by the
/// scanner: the reference the differential tests and the fuzz body compare it with.
pub fn parse_iptables_full_parser(path: &str, text: &str) -> Parsed<Ruleset> {
    parse_with(path, text, RuleReader::FullOnly).0
}

/// Which reader rule lines take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleReader {
    /// The scanner ([`scan_rule`]) for the shapes it knows, the full parser for the rest.
    ScanFirst,
    /// The full parser only.
    FullOnly,
}

impl RuleReader {
    fn read(self, line: &str, no: usize, names: &mut RecentNames) -> Result<RuleLine, String> {
        if self == RuleReader::ScanFirst {
            if let Some(rule) = scan_rule(line, no, names) {
                return Ok(RuleLine::Rule(Box::new(rule), Names::Declared));
            }
        }
        parse_rule_line(line, no, names.declared())
    }
}

/// The parse, and the numbered lines it read.
fn parse_with<'t>(
    path: &str,
    text: &'t str,
    reader: RuleReader,
) -> (Parsed<Ruleset>, Vec<(usize, &'t str)>) {
    let (lines, outline) = Outline::read(text);
    let mut asm = Assembler {
        cov: Coverage::new(path),
        rs: Ruleset::default(),
        open: None,
        pending_comments: Vec::new(),
        chain_names: ChainNames::default(),
        last_line: 0,
        outline: &outline,
        reader,
    };
    // Rule lines do not depend on each other: parse them in parallel first (a big
    // node's save holds hundreds of thousands), then assemble in file order. A window
    // at a time, so the parsed-but-not-assembled rules never hold more than two
    // windows' memory; a window is assembled (serial) while the next one is parsed.
    let declared = &outline.declared;
    let mut windows = lines.chunks(RULE_WINDOW);
    let mut current = windows
        .next()
        .map(|w| (w, parse_window(w, declared, reader)));
    while let Some((window, mut rules)) = current.take() {
        let next = windows.next();
        current = rayon::join(
            || {
                for (slot, &(no, raw)) in rules.iter_mut().zip(window) {
                    asm.line(no, raw, slot);
                }
            },
            || next.map(|w| (w, parse_window(w, declared, reader))),
        )
        .1;
    }
    (asm.finish(), lines)
}

/// Where each line starts, with the start past a final `\n` that `LineIndex` counts.
fn line_starts(text: &str, lines: &[(usize, &str)]) -> Vec<usize> {
    let base = text.as_ptr() as usize;
    let mut starts: Vec<usize> = Vec::with_capacity(lines.len() + 1);
    starts.extend(lines.iter().map(|(_, l)| l.as_ptr() as usize - base));
    if text.is_empty() || text.ends_with('\n') {
        starts.push(text.len());
    }
    starts
}

/// The rule lines of `window` parsed (in parallel); `None` for the other lines.
fn parse_window(
    window: &[(usize, &str)],
    declared: &Declared,
    reader: RuleReader,
) -> Vec<Option<Result<RuleLine, String>>> {
    window
        .par_iter()
        .with_min_len(512)
        .map_init(
            || RecentNames::new(declared),
            |names, (no, raw)| {
                let line = trimmed(raw);
                is_rule_line(line).then(|| reader.read(line, *no, names))
            },
        )
        .collect()
}

/// What one quick pass over the lines tells before any rule is parsed.
pub(super) struct Outline {
    pub(super) declared: Declared,
    /// Per table header line, how many rule lines the table holds: its rule vector
    /// is allocated once, instead of grown by copying (serially, on a big save).
    pub(super) rule_lines: HashMap<usize, usize, Fx>,
}

impl Outline {
    /// The lines of `text`, numbered, and their outline, found in one pass: each line
    /// is classified while its bytes are still in cache from the search for its end.
    pub(super) fn read(text: &str) -> (Vec<(usize, &str)>, Outline) {
        let mut outline = Outline {
            declared: Declared::default(),
            rule_lines: HashMap::default(),
        };
        // The open table's header line and its rule lines so far.
        let mut table: Option<(usize, usize)> = None;
        let lines = numbered_lines(text)
            .inspect(|&(no, raw)| {
                let line = trimmed(raw);
                if let Some(decl) = line.strip_prefix(':') {
                    if let Some(name) = decl.split_whitespace().next() {
                        outline.declared.add(name);
                    }
                } else if line.starts_with('*') || line == "COMMIT" {
                    if let Some((header, n)) = table.take() {
                        outline.rule_lines.insert(header, n);
                    }
                    table = line.starts_with('*').then_some((no, 0));
                } else if let Some((_, n)) = &mut table {
                    *n += usize::from(is_rule_line(line));
                }
            })
            .collect();
        if let Some((header, n)) = table {
            outline.rule_lines.insert(header, n);
        }
        (lines, outline)
    }
}

/// The chain names the save declares (`:NAME policy [counters]`), one shared copy
/// each, looked up by the parallel rule parsers: every rule names its chain and most
/// jump to one, and interning them one by one in file order was the slowest serial
/// part of assembling a big save.
#[derive(Default)]
pub(super) struct Declared {
    /// Each name's place in `in_order`.
    names: HashMap<Arc<str>, usize, Fx>,
    /// The names in the order they were first declared: a save lists its chains'
    /// rules in that order, so the chain of the next rule that starts a new chain is
    /// nearly always the next name here ([`super::scan::RecentNames`]).
    in_order: Vec<Arc<str>>,
}

impl Declared {
    /// Records a declaration (a name declared again keeps its first place and copy).
    fn add(&mut self, name: &str) {
        if !self.names.contains_key(name) {
            let shared: Arc<str> = Arc::from(name);
            self.names.insert(shared.clone(), self.in_order.len());
            self.in_order.push(shared);
        }
    }

    /// Every declared name, in the order first declared.
    #[cfg(test)]
    pub(super) fn names(&self) -> &[Arc<str>] {
        &self.in_order
    }

    /// The shared copy of `name`, or a new one when it was not declared (the
    /// assembler interns those).
    fn share(&self, name: &str) -> Arc<str> {
        self.get(name).unwrap_or_else(|| name.into())
    }

    /// The shared copy of `name` if it was declared.
    pub(super) fn get(&self, name: &str) -> Option<Arc<str>> {
        self.place(name).map(|(shared, _)| shared)
    }

    /// The shared copy of `name` and its place in the declaration order, if declared.
    pub(super) fn place(&self, name: &str) -> Option<(Arc<str>, usize)> {
        self.names
            .get_key_value(name)
            .map(|(shared, &at)| (shared.clone(), at))
    }

    /// The name declared at `at` in the declaration order.
    pub(super) fn at(&self, at: usize) -> Option<&Arc<str>> {
        self.in_order.get(at)
    }
}

/// Why a chain declaration or rule line is not understood before any table.
const OUTSIDE_A_TABLE: &str = "line outside a table (no *table header before it)";

/// Puts lines, in file order, into the table they belong to.
struct Assembler<'o> {
    cov: Coverage,
    rs: Ruleset,
    /// The table whose `COMMIT` has not been seen yet.
    open: Option<Table>,
    /// Comments seen outside a table (they go before the next table's header).
    pending_comments: Vec<CommentLine>,
    chain_names: ChainNames,
    last_line: usize,
    outline: &'o Outline,
    reader: RuleReader,
}

impl Assembler<'_> {
    /// One line; `parsed` is the rule line parsed ahead of time, if it is one.
    fn line(&mut self, no: usize, raw: &str, parsed: &mut Option<Result<RuleLine, String>>) {
        self.last_line = no;
        if let Some(rule_line) = parsed.take() {
            // Classified when it was parsed: its text is not read again (on a 50 MB save
            // each line's first bytes were a cache miss in this serial loop).
            return self.rule_line(no, raw, rule_line);
        }
        let line = trimmed(raw);
        if line.is_empty() {
            self.cov.ok();
        } else if line.starts_with('#') {
            let c = CommentLine {
                line: no,
                text: line.to_string(),
            };
            match self.open.as_mut() {
                Some(t) => t.comments.push(c),
                None => self.pending_comments.push(c),
            }
            self.cov.ok();
        } else if let Some(name) = line.strip_prefix('*') {
            self.table_header(no, raw, name);
        } else if line == "COMMIT" {
            match self.open.take() {
                Some(mut t) => {
                    t.commit_line = Some(no);
                    self.rs.tables.push(t);
                    self.cov.ok();
                }
                None => self.cov.miss(no, raw, "COMMIT outside a table"),
            }
        } else {
            self.table_line(no, raw, line);
        }
    }

    fn table_header(&mut self, no: usize, raw: &str, name: &str) {
        if let Some(t) = self.open.take() {
            // The header was counted as recognised; it is re-classified.
            self.cov.recognised = self.cov.recognised.saturating_sub(1);
            self.cov.miss(
                t.line,
                &format!("*{}", t.name),
                format!("table {} has no COMMIT before *{}", t.name, name),
            );
            self.rs.tables.push(t);
        }
        if name.is_empty() || name.contains(char::is_whitespace) {
            self.cov.miss(no, raw, "bad table header");
            return;
        }
        let mut rules = Vec::new();
        let expected = self.outline.rule_lines.get(&no).copied();
        // Bounded: a hostile save of millions of one-word lines must not reserve
        // gigabytes; past the bound the vector grows as it fills (and may fail to).
        let _ = rules.try_reserve_exact(expected.unwrap_or_default().min(MAX_RESERVED_RULES));
        self.open = Some(Table {
            name: name.to_string(),
            line: no,
            comments: std::mem::take(&mut self.pending_comments),
            chains: Vec::new(),
            rules,
            commands: Vec::new(),
            commit_line: None,
        });
        self.cov.ok();
    }

    /// A chain declaration or a rule line not parsed ahead, which must be inside a table.
    fn table_line(&mut self, no: usize, raw: &str, line: &str) {
        let Some(table) = self.open.as_mut() else {
            self.cov.miss(no, raw, OUTSIDE_A_TABLE);
            return;
        };
        if let Some(decl) = line.strip_prefix(':') {
            match parse_chain_decl(decl, no) {
                Ok(c) => {
                    table.chains.push(c);
                    self.cov.ok();
                }
                Err(e) => self.cov.miss(no, raw, e),
            }
            return;
        }
        let mut names = RecentNames::new(&self.outline.declared);
        let rule_line = self.reader.read(line, no, &mut names);
        self.rule_line(no, raw, rule_line);
    }

    /// A rule line (or a chain command), read already, put in the open table.
    fn rule_line(&mut self, no: usize, raw: &str, rule_line: Result<RuleLine, String>) {
        let Some(table) = self.open.as_mut() else {
            self.cov.miss(no, raw, OUTSIDE_A_TABLE);
            return;
        };
        match rule_line {
            Ok(RuleLine::Rule(mut r, names)) => {
                self.chain_names.intern_rule(&mut r, names);
                table.rules.push(*r);
                self.cov.ok();
            }
            Ok(RuleLine::Command(c)) => {
                table.commands.push(c);
                self.cov.ok();
            }
            Ok(RuleLine::Degraded(mut r, names, reason)) => {
                // Kept in the model (the chain graph needs it) but reported.
                self.chain_names.intern_rule(&mut r, names);
                table.rules.push(*r);
                self.cov.miss(no, raw, reason);
            }
            Err(e) => self.cov.miss(no, raw, e),
        }
    }

    fn finish(mut self) -> Parsed<Ruleset> {
        if let Some(t) = self.open.take() {
            self.cov.recognised = self.cov.recognised.saturating_sub(1);
            self.cov.miss(
                t.line,
                &format!("*{}", t.name),
                format!(
                    "table {} has no COMMIT (file ends at line {})",
                    t.name, self.last_line
                ),
            );
            self.rs.tables.push(t);
        }
        self.rs.trailing_comments = self.pending_comments;
        // Doubling growth leaves up to half of a big table's rule vector unused; for a
        // 300,000-rule save that is tens of MB held for the rest of the run.
        for t in &mut self.rs.tables {
            t.rules.shrink_to_fit();
        }
        Parsed {
            model: self.rs,
            coverage: self.cov,
        }
    }
}

/// One shared copy of each chain name. A chain's rules come one after another, so
/// the last rule's chain is tried before the set.
#[derive(Default)]
struct ChainNames {
    /// Chain names come from bundles we did not write: a randomly seeded hasher.
    names: HashSet<Arc<str>, Fx>,
    last: Option<Arc<str>>,
}

impl ChainNames {
    /// The rule with its chain name, and the chain it jumps to, shared with every
    /// other rule naming them (a big save names each KUBE-SEP chain several times).
    /// Declared names are shared already ([`Declared::share`]): only undeclared
    /// ones, which only a broken save or restore input has, are looked up here.
    fn intern_rule(&mut self, rule: &mut Rule, names: Names) {
        if names == Names::Declared {
            return;
        }
        if !is_shared(&rule.chain) {
            match &self.last {
                Some(last) if *last == rule.chain => rule.chain = last.clone(),
                _ => {
                    intern(&mut self.names, &mut rule.chain);
                    self.last = Some(rule.chain.clone());
                }
            }
        }
        if let Some(Target::Chain(c)) = &mut rule.target {
            if !is_shared(c) {
                intern(&mut self.names, c);
            }
        }
    }
}

/// Held elsewhere too: by the declared names, or by the interned ones.
fn is_shared(name: &Arc<str>) -> bool {
    Arc::strong_count(name) > 1
}

fn intern(names: &mut HashSet<Arc<str>, Fx>, name: &mut Arc<str>) {
    match names.get(name) {
        Some(shared) => *name = shared.clone(),
        None => {
            names.insert(name.clone());
        }
    }
}

/// `raw.trim()`, without looking at the characters of the usual line, which starts and
/// ends with a printable ASCII byte (every line is trimmed three times: outline, rule
/// parse, assembly).
pub(super) fn trimmed(raw: &str) -> &str {
    match (raw.as_bytes().first(), raw.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => raw,
        _ => raw.trim(),
    }
}

/// A line the assembly loop hands to [`parse_rule_line`] (when inside a table).
fn is_rule_line(line: &str) -> bool {
    !(line.is_empty()
        || line.starts_with('#')
        || line.starts_with('*')
        || line.starts_with(':')
        || line == "COMMIT")
}

fn parse_chain_decl(decl: &str, no: usize) -> Result<Chain, String> {
    let mut parts = decl.split_whitespace();
    let name = parts.next().ok_or("chain declaration without a name")?;
    let policy = match parts.next() {
        None | Some("-") => None,
        Some(p) => Some(p.to_string()),
    };
    let counters = match parts.next() {
        None => None,
        Some(c) => Some(parse_counters_bracket(c).ok_or_else(|| format!("bad counters {c}"))?),
    };
    if let Some(extra) = parts.next() {
        return Err(format!("unexpected {extra:?} after chain counters"));
    }
    Ok(Chain {
        name: name.to_string(),
        line: no,
        policy,
        counters,
    })
}

pub(super) fn parse_counters_bracket(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

enum RuleLine {
    Rule(Box<Rule>, Names),
    Command(ChainCommand),
    /// A rule that was kept, but part of it was not understood.
    Degraded(Box<Rule>, Names, String),
}

/// Whether every chain a rule names was declared (and so is shared already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Declared,
    SomeUndeclared,
}

/// `-j NAME [options]` as written, typed by [`build_target`].
struct PendingTarget {
    name: String,
    opts: Vec<Opt>,
    unsupported: bool,
}

fn parse_rule_line(line: &str, no: usize, declared: &Declared) -> Result<RuleLine, String> {
    let toks = tokenize(line).map_err(|e| e.to_string())?;
    let (mut rule, start) = match parse_head(&toks, no, declared)? {
        Head::Rule(rule, start) => (rule, start),
        Head::Command(c) => return Ok(RuleLine::Command(c)),
    };
    let (pending, target) = parse_options(&toks, start, &mut rule)?;
    let mut problems: Vec<String> = Vec::new();
    // Exact capacity: growth by push (to 4) cost a quarter of a big ruleset's memory.
    // (Not `collect`, which would keep the larger PendingMatch buffer in place.)
    rule.matches = Vec::with_capacity(pending.len());
    for p in pending {
        let m = build_match(p, &mut problems);
        rule.matches.push(m);
    }
    if let Some(t) = target {
        let mut target = build_target(t.name, t.opts, t.unsupported, &mut problems);
        if let Target::Chain(c) = &mut target {
            *c = declared.share(c);
        }
        rule.target = Some(target);
    }
    let names = match is_shared(&rule.chain)
        && !matches!(&rule.target, Some(Target::Chain(c)) if !is_shared(c))
    {
        true => Names::Declared,
        false => Names::SomeUndeclared,
    };
    if problems.is_empty() {
        Ok(RuleLine::Rule(Box::new(rule), names))
    } else {
        Ok(RuleLine::Degraded(
            Box::new(rule),
            names,
            problems.join("; "),
        ))
    }
}

/// What the words before a rule's options make of the line.
enum Head {
    /// `[counters] -A|-I chain [position]`: the rule so far and where its options start.
    Rule(Rule, usize),
    /// `-N|-X|-F|-Z [chain]`
    Command(ChainCommand),
}

fn parse_head(toks: &[Token], no: usize, declared: &Declared) -> Result<Head, String> {
    let mut i = 0;
    let mut counters = None;
    if let Some(t) = toks.first() {
        if !t.quoted && t.text.starts_with('[') {
            counters = Some(
                parse_counters_bracket(&t.text)
                    .ok_or_else(|| format!("bad counters {}", t.text))?,
            );
            i = 1;
        }
    }
    let cmd = toks.get(i).ok_or("empty rule")?;
    if cmd.quoted {
        return Err(format!("expected a command, found {:?}", cmd.text));
    }
    let insert = match cmd.text.as_ref() {
        "-A" | "--append" => false,
        "-I" | "--insert" => true,
        "-N" | "--new-chain" | "-X" | "--delete-chain" | "-F" | "--flush" | "-Z" | "--zero" => {
            return chain_command(toks, i, no).map(Head::Command)
        }
        other => return Err(format!("unknown command {other:?}")),
    };
    let chain = declared.share(
        &toks
            .get(i + 1)
            .ok_or_else(|| format!("{} without a chain", cmd.text))?
            .text,
    );
    i += 2;
    let op = match toks.get(i) {
        Some(t) if insert && !t.quoted && t.text.bytes().all(|b| b.is_ascii_digit()) => {
            i += 1;
            RuleOp::Insert(Some(
                t.text
                    .parse()
                    .map_err(|_| format!("bad position {}", t.text))?,
            ))
        }
        _ if insert => RuleOp::Insert(None),
        _ => RuleOp::Append,
    };
    Ok(Head::Rule(Rule::head(no, chain, op, counters), i))
}

/// `-N|-X|-F|-Z [chain]` at `toks[i]` (restore input).
fn chain_command(toks: &[Token], i: usize, no: usize) -> Result<ChainCommand, String> {
    let cmd = &toks[i].text;
    let op = match cmd.as_ref() {
        "-N" | "--new-chain" => ChainOp::New,
        "-X" | "--delete-chain" => ChainOp::Delete,
        "-F" | "--flush" => ChainOp::Flush,
        _ => ChainOp::Zero,
    };
    let chain = toks.get(i + 1).map(|t| t.text.to_string());
    if toks.len() > i + 2 || (op == ChainOp::New && chain.is_none()) {
        return Err(format!("unexpected arguments to {cmd}"));
    }
    Ok(ChainCommand {
        line: no,
        op,
        chain,
    })
}

/// The options after the chain: the rule's own (`-s`, `-p` …) go into `rule`; matches
/// and the target are collected raw.
fn parse_options(
    toks: &[Token],
    mut i: usize,
    rule: &mut Rule,
) -> Result<(Vec<PendingMatch>, Option<PendingTarget>), String> {
    let mut pending: Vec<PendingMatch> = Vec::new();
    let mut neg = false;
    let mut target = None;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_bang() {
            if neg {
                return Err("double negation".into());
            }
            neg = true;
            i += 1;
            continue;
        }
        if !t.is_option() {
            return Err(format!("unexpected word {:?}", t.text));
        }
        let name = t.text.as_ref();
        i = match name {
            "-m" | "--match" => {
                if neg {
                    return Err("! before -m".into());
                }
                let module = arg(toks, i + 1, name)?.text.to_string();
                let mut m = PendingMatch {
                    module,
                    opts: Vec::new(),
                    unsupported: false,
                };
                let next = skip_unsupported(toks, i + 2, Some(&mut m.unsupported));
                pending.push(m);
                next
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                if neg {
                    return Err(format!("! before {name}"));
                }
                rule.goto = matches!(name, "-g" | "--goto");
                let (t, next) = parse_target(toks, i)?;
                target = Some(t);
                next
            }
            "-p" | "--protocol" | "-s" | "--source" | "--src" | "-d" | "--destination"
            | "--dst" | "-i" | "--in-interface" | "-o" | "--out-interface" | "-f"
            | "--fragment" | "-c" | "--set-counters" => rule_option(toks, i, neg, rule)?,
            _ if name.starts_with("--") => {
                match_option(toks, i, neg, rule.protocol.as_ref(), &mut pending)?
            }
            _ => return Err(format!("unknown option {name}")),
        };
        neg = false;
    }
    if neg {
        return Err("dangling !".into());
    }
    Ok((pending, target))
}

/// The argument of option `name` at `toks[k]`.
fn arg<'t, 'a>(toks: &'t [Token<'a>], k: usize, name: &str) -> Result<&'t Token<'a>, String> {
    toks.get(k)
        .ok_or_else(|| format!("{name} needs an argument"))
}

/// One of the rule's own options at `toks[i]`; returns where the next option starts.
fn rule_option(toks: &[Token], i: usize, neg: bool, rule: &mut Rule) -> Result<usize, String> {
    let name = toks[i].text.as_ref();
    let value = |k: usize| arg(toks, k, name);
    match name {
        "-p" | "--protocol" => {
            rule.protocol = Some(Neg::new(neg, protocol_name(&value(i + 1)?.text)));
        }
        "-s" | "--source" | "--src" => {
            rule.source = Some(Neg::new(neg, parse_cidr(&value(i + 1)?.text)?));
        }
        "-d" | "--destination" | "--dst" => {
            rule.destination = Some(Neg::new(neg, parse_cidr(&value(i + 1)?.text)?));
        }
        "-i" | "--in-interface" => {
            rule.in_iface = Some(Box::new(Neg::new(neg, value(i + 1)?.text.to_string())));
        }
        "-o" | "--out-interface" => {
            rule.out_iface = Some(Box::new(Neg::new(neg, value(i + 1)?.text.to_string())));
        }
        "-f" | "--fragment" => {
            rule.fragment = Some(!neg);
            return Ok(i + 1);
        }
        "-c" | "--set-counters" => {
            let p = value(i + 1)?.text.parse().map_err(|_| "bad -c packets")?;
            let b = value(i + 2)?.text.parse().map_err(|_| "bad -c bytes")?;
            rule.counters = Some(Counters {
                packets: p,
                bytes: b,
            });
            return Ok(i + 3);
        }
        _ => return Err(format!("unknown option {name}")),
    }
    Ok(i + 2)
}

/// A `--option` of a match at `toks[i]`, added to the match that owns it; returns
/// where the next option starts.
fn match_option(
    toks: &[Token],
    i: usize,
    neg: bool,
    protocol: Option<&Neg<ProtocolName>>,
    pending: &mut Vec<PendingMatch>,
) -> Result<usize, String> {
    let name = toks[i].text.as_ref();
    let idx = match owner_of(pending, name) {
        Some(idx) => idx,
        None => {
            // `-p tcp --dport 80` without `-m tcp`: the protocol match is implicit.
            let proto = protocol
                .filter(|p| !p.negated && known_option(&p.value, name) == Some(true))
                .map(|p| p.value.to_string())
                .ok_or_else(|| format!("option {name} does not belong to any match"))?;
            pending.push(PendingMatch {
                module: proto,
                opts: Vec::new(),
                unsupported: false,
            });
            pending.len() - 1
        }
    };
    let (opt, next) = take_opt(toks, i, neg);
    pending[idx].opts.push(opt);
    Ok(next)
}

/// `-j|-g NAME [unsupported revision] [[!] --opt args…]…` at `toks[i]`, which must end
/// the line.
fn parse_target(toks: &[Token], i: usize) -> Result<(PendingTarget, usize), String> {
    let name = arg(toks, i + 1, &toks[i].text)?.text.to_string();
    let mut unsupported = false;
    let mut i = skip_unsupported(toks, i + 2, Some(&mut unsupported));
    let mut opts = Vec::new();
    let mut tneg = false;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_bang() {
            tneg = true;
            i += 1;
            continue;
        }
        if !t.is_option() {
            return Err(format!("unexpected word {:?} in target options", t.text));
        }
        if matches!(
            t.text.as_ref(),
            "-m" | "-j" | "-g" | "-p" | "-s" | "-d" | "-i" | "-o"
        ) {
            // Options after the target are not something iptables-save writes.
            return Err(format!("{} after the target", t.text));
        }
        let (opt, next) = take_opt(toks, i, tneg);
        opts.push(opt);
        tneg = false;
        i = next;
    }
    if tneg {
        return Err("dangling !".into());
    }
    let target = PendingTarget {
        name,
        opts,
        unsupported,
    };
    Ok((target, i))
}

/// Skip an `[unsupported revision]` marker (iptables-nft prints it for extensions
/// whose revision it cannot decode).
fn skip_unsupported(toks: &[Token], i: usize, flag: Option<&mut bool>) -> usize {
    match (toks.get(i), toks.get(i + 1)) {
        (Some(a), Some(b)) if a.text == "[unsupported" && b.text == "revision]" => {
            if let Some(f) = flag {
                *f = true;
            }
            i + 2
        }
        _ => i,
    }
}

/// Take `--name args…` starting at `i`; args run until the next option or `!`.
fn take_opt(toks: &[Token], i: usize, negated: bool) -> (Opt, usize) {
    let name = toks[i].text.to_string();
    let mut j = i + 1;
    let mut args = Vec::new();
    while let Some(t) = toks.get(j) {
        if t.is_option() || t.is_bang() {
            break;
        }
        args.push(t.text.to_string());
        j += 1;
    }
    (
        Opt {
            negated,
            name,
            args,
        },
        j,
    )
}

/// Which pending match an option belongs to: the latest one that knows it, or the
/// latest one if its module is unknown (its options cannot be told apart).
fn owner_of(pending: &[PendingMatch], opt: &str) -> Option<usize> {
    for (idx, p) in pending.iter().enumerate().rev() {
        match known_option(&p.module, opt) {
            Some(true) => return Some(idx),
            None if idx + 1 == pending.len() => return Some(idx),
            _ => {}
        }
    }
    None
}
