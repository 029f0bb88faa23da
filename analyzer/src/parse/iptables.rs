//! iptables-save output (iptables-nft-save and iptables-legacy-save, with `-c` counters)
//! and iptables-restore input (the form kube-proxy writes, as in its test fixtures).
//!
//! The model keeps file order and 1-based lines so findings can cite `file:line`, and
//! [`render_iptables`] writes it back in iptables-save form. After
//! [`Ruleset::renumber`], `parse_iptables(render_iptables(&m)).model == m`.
//!
//! Matches and targets that netsnap reasons about are typed; any other module or
//! target is kept generically ([`GenericMatch`], [`GenericTarget`]) with all its
//! options, so an unknown extension never loses a rule.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::coverage::{numbered_lines, Coverage, Parsed};
use super::tokenize::{quote, tokenize, Token};

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// A whole iptables-save file (one address family, one backend).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ruleset {
    pub tables: Vec<Table>,
    /// Comment lines after the last table (e.g. `# Completed on …`, warnings).
    pub trailing_comments: Vec<CommentLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentLine {
    pub line: usize,
    /// The whole line, including the leading `#`.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// `filter`, `nat`, `mangle`, `raw`, `security`.
    pub name: String,
    /// Line of `*name`.
    pub line: usize,
    /// Comment lines seen since the previous table ended (rendered before `*name`).
    pub comments: Vec<CommentLine>,
    /// Chain declarations, in file order.
    pub chains: Vec<Chain>,
    /// Rules of all chains, in file order.
    pub rules: Vec<Rule>,
    /// `-X`/`-F`/`-Z`/`-N` commands of restore input (kube-proxy deletes stale chains).
    pub commands: Vec<ChainCommand>,
    /// Line of `COMMIT`; `None` when the table was never committed.
    pub commit_line: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub name: String,
    pub line: usize,
    /// `ACCEPT`/`DROP` for built-in chains; `None` for user chains (`-`).
    pub policy: Option<String>,
    pub counters: Option<Counters>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCommand {
    pub line: usize,
    pub op: ChainOp,
    /// `None` for a bare `-F`/`-Z`/`-X` (all chains).
    pub chain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainOp {
    /// `-N`
    New,
    /// `-X`
    Delete,
    /// `-F`
    Flush,
    /// `-Z`
    Zero,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleOp {
    /// `-A chain`
    Append,
    /// `-I chain [position]`
    Insert(Option<u32>),
}

/// A value with an optional `!` in front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neg<T> {
    pub negated: bool,
    pub value: T,
}

impl<T> Neg<T> {
    pub fn new(negated: bool, value: T) -> Neg<T> {
        Neg { negated, value }
    }
}

/// An address with prefix length (`-s 10.0.0.0/8`; a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// True when `ip` falls inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let p = u32::from(self.prefix.min(32));
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let p = u32::from(self.prefix.min(128));
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One `-A`/`-I` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub line: usize,
    /// Shared between the rules of a chain (interned while the save is assembled).
    pub chain: Arc<str>,
    pub op: RuleOp,
    /// `[packets:bytes]` prefix or `-c packets bytes`.
    pub counters: Option<Counters>,
    pub protocol: Option<Neg<ProtocolName>>,
    pub source: Option<Neg<Cidr>>,
    pub destination: Option<Neg<Cidr>>,
    /// Boxed: rare in kube-proxy's rules, and a big save holds hundreds of thousands.
    pub in_iface: Option<Box<Neg<String>>>,
    pub out_iface: Option<Box<Neg<String>>>,
    /// `Some(true)` for `-f`, `Some(false)` for `! -f`.
    pub fragment: Option<bool>,
    /// `-m …` matches in order (an implicit protocol match is made explicit).
    pub matches: Vec<Match>,
    pub target: Option<Target>,
    /// `-g` (goto) instead of `-j` (jump).
    pub goto: bool,
}

/// A protocol or port-match module name: the common ones are not allocated per rule
/// (a big save names `tcp` hundreds of thousands of times).
pub type ProtocolName = Cow<'static, str>;

fn protocol_name(name: &str) -> ProtocolName {
    match name {
        "tcp" => Cow::Borrowed("tcp"),
        "udp" => Cow::Borrowed("udp"),
        "sctp" => Cow::Borrowed("sctp"),
        "icmp" => Cow::Borrowed("icmp"),
        "ipv6-icmp" => Cow::Borrowed("ipv6-icmp"),
        "all" => Cow::Borrowed("all"),
        other => Cow::Owned(other.to_string()),
    }
}

/// A `-m module …` match. The rarer, larger kinds are boxed: a big node's save holds
/// hundreds of thousands of matches, nearly all comments, ports and statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Match {
    /// `-m comment --comment TEXT`
    Comment(String),
    /// `-m tcp|udp|sctp [--sport P[:P]] [--dport P[:P]]`
    Port(PortMatch),
    /// `-m multiport --dports|--sports|--ports LIST`
    Multiport(Multiport),
    /// `-m statistic --mode random|nth …`
    Statistic(Statistic),
    /// `-m recent …` (kube-proxy session affinity)
    Recent(Box<Recent>),
    /// `-m mark [!] --mark V[/M]`
    Mark(MarkMatch),
    /// `-m conntrack [!] --ctstate S,…`
    Conntrack(Conntrack),
    /// `-m addrtype …`
    AddrType(Box<AddrType>),
    /// `-m set [!] --match-set NAME FLAGS`
    Set(Box<SetMatch>),
    /// `-m physdev …`
    Physdev(Box<Physdev>),
    /// `-m nfacct --nfacct-name NAME`
    Nfacct(String),
    /// Any other module, or a known one with options the typed form does not model.
    Other(Box<GenericMatch>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMatch {
    /// Module name: `tcp`, `udp`, `sctp`, `udplite`, `dccp`.
    pub protocol: ProtocolName,
    pub sport: Option<Neg<PortRange>>,
    pub dport: Option<Neg<PortRange>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(p: u16) -> PortRange {
        PortRange { first: p, last: p }
    }
    pub fn contains(&self, p: u16) -> bool {
        self.first <= p && p <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Multiport {
    pub direction: PortDirection,
    pub negated: bool,
    pub ports: Vec<PortRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortDirection {
    /// `--sports`
    Source,
    /// `--dports`
    Destination,
    /// `--ports`
    Either,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    /// `--mode random [!] --probability P`
    Random { probability: f64, negated: bool },
    /// `--mode nth [!] --every N [--packet P]`
    Nth {
        every: u32,
        packet: Option<u32>,
        negated: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent {
    pub name: Option<String>,
    pub action: RecentAction,
    /// `! --rcheck` etc.
    pub negated: bool,
    pub seconds: Option<u32>,
    pub reap: bool,
    pub hitcount: Option<u32>,
    pub rttl: bool,
    pub mask: Option<String>,
    pub side: Option<RecentSide>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecentAction {
    Set,
    Rcheck,
    Update,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecentSide {
    /// `--rsource`
    Source,
    /// `--rdest`
    Dest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkMatch {
    pub negated: bool,
    pub value: u32,
    pub mask: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conntrack {
    /// `[!] --ctstate NEW,ESTABLISHED,…`
    pub ctstate: Option<Neg<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrType {
    pub src_type: Option<Neg<String>>,
    pub dst_type: Option<Neg<String>>,
    pub limit_iface_in: bool,
    pub limit_iface_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMatch {
    pub negated: bool,
    pub name: String,
    /// `src`, `dst` per dimension.
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Physdev {
    pub physdev_in: Option<Neg<String>>,
    pub physdev_out: Option<Neg<String>>,
    /// `Some(true)` for `--physdev-is-in`, `Some(false)` for `! --physdev-is-in`.
    pub is_in: Option<bool>,
    pub is_out: Option<bool>,
    pub is_bridged: Option<bool>,
}

/// An option of a generic match or target: `[!] --name [args…]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opt {
    pub negated: bool,
    /// With its dashes, e.g. `--notrack`.
    pub name: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericMatch {
    pub module: String,
    pub options: Vec<Opt>,
    /// iptables-nft printed `[unsupported revision]` for it.
    pub unsupported_revision: bool,
}

/// What `-j`/`-g` points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Accept,
    Drop,
    Return,
    Queue,
    /// A user-defined chain (interned like [`Rule::chain`]).
    Chain(Arc<str>),
    /// `DNAT --to-destination …`
    Dnat(Nat),
    /// `SNAT --to-source …`
    Snat(Nat),
    Masquerade(Masquerade),
    Mark(MarkTarget),
    /// `REJECT [--reject-with TYPE]`
    Reject {
        with: Option<String>,
    },
    /// Any other target extension (LOG, CT, TPROXY, …) or one with unmodelled options,
    /// including `-j DNAT [unsupported revision]`.
    Other(GenericTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nat {
    /// `--to-destination`/`--to-source` value, e.g. `10.244.1.5:8080`, `[fd00::1]:53`.
    pub to: Option<String>,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
}

impl Nat {
    /// The first address and port of `to` (`1.2.3.4:80`, `[::1]:53`, `1.2.3.4-1.2.3.9:80-90`).
    pub fn endpoint(&self) -> Option<(IpAddr, Option<u16>)> {
        parse_nat_to(self.to.as_deref()?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masquerade {
    pub to_ports: Option<String>,
    pub random: bool,
    pub random_fully: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkTarget {
    pub op: MarkOp,
    pub value: u32,
    /// Only for `--set-xmark`/`--set-mark` `V/M`.
    pub mask: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkOp {
    SetXmark,
    SetMark,
    OrMark,
    AndMark,
    XorMark,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericTarget {
    pub name: String,
    pub options: Vec<Opt>,
    pub unsupported_revision: bool,
}

// ---------------------------------------------------------------------------
// Convenience accessors used by model building and checks
// ---------------------------------------------------------------------------

impl Ruleset {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// All comment lines in file order (headers, `# Warning: …`, trailers).
    pub fn comments(&self) -> impl Iterator<Item = &CommentLine> {
        self.tables
            .iter()
            .flat_map(|t| t.comments.iter())
            .chain(self.trailing_comments.iter())
    }

    /// iptables-nft-save printed `# Warning: iptables-legacy tables present`.
    pub fn legacy_tables_warning(&self) -> Option<&CommentLine> {
        self.comments()
            .find(|c| c.text.contains("iptables-legacy tables present"))
    }

    /// The `# Generated by …` header, e.g. `iptables-nft-save v1.8.9 (nf_tables)`.
    pub fn generated_by(&self) -> Option<&str> {
        self.comments().find_map(|c| {
            let rest = c.text.strip_prefix("# Generated by ")?;
            Some(rest.split(" on ").next().unwrap_or(rest))
        })
    }

    /// Set every `line` to where [`render_iptables`] will put it.
    pub fn renumber(&mut self) {
        let mut n = 0usize;
        let mut next = || {
            n += 1;
            n
        };
        for t in &mut self.tables {
            for c in &mut t.comments {
                c.line = next();
            }
            t.line = next();
            for c in &mut t.chains {
                c.line = next();
            }
            for r in &mut t.rules {
                r.line = next();
            }
            for c in &mut t.commands {
                c.line = next();
            }
            if t.commit_line.is_some() {
                t.commit_line = Some(next());
            }
        }
        for c in &mut self.trailing_comments {
            c.line = next();
        }
    }
}

impl Table {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// Rules of one chain, in order.
    pub fn rules_in<'a>(&'a self, chain: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        let chain = chain.to_string();
        self.rules.iter().filter(move |r| *r.chain == *chain)
    }
}

impl Rule {
    /// Text of the first `-m comment`.
    pub fn comment(&self) -> Option<&str> {
        self.matches.iter().find_map(|m| match m {
            Match::Comment(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Destination port (range) of a tcp/udp/sctp match, also when the match was kept
    /// generically because of options the typed form does not model (`--tcp-flags`).
    pub fn dport(&self) -> Option<Neg<PortRange>> {
        self.matches.iter().find_map(|m| match m {
            Match::Port(p) => p.dport.clone(),
            Match::Other(g) if matches!(g.module.as_str(), "tcp" | "udp" | "sctp" | "udplite") => g
                .options
                .iter()
                .find_map(|o| match (o.name.as_str(), o.args.as_slice()) {
                    ("--dport" | "--destination-port", [a]) => {
                        parse_port_range(a).ok().map(|r| Neg::new(o.negated, r))
                    }
                    _ => None,
                }),
            _ => None,
        })
    }

    /// `--probability` of a `statistic --mode random` match.
    pub fn probability(&self) -> Option<f64> {
        self.matches.iter().find_map(|m| match m {
            Match::Statistic(Statistic::Random { probability, .. }) => Some(*probability),
            _ => None,
        })
    }

    /// Name of the user chain this rule jumps/goes to.
    pub fn jump_chain(&self) -> Option<&str> {
        match &self.target {
            Some(Target::Chain(c)) => Some(&**c),
            _ => None,
        }
    }

    /// Name of the target as written after `-j`/`-g`.
    pub fn target_name(&self) -> Option<&str> {
        self.target.as_ref().map(Target::name)
    }
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Queue => "QUEUE",
            Target::Chain(c) => c,
            Target::Dnat(_) => "DNAT",
            Target::Snat(_) => "SNAT",
            Target::Masquerade(_) => "MASQUERADE",
            Target::Mark(_) => "MARK",
            Target::Reject { .. } => "REJECT",
            Target::Other(g) => &g.name,
        }
    }
}

/// Split `--to-destination` values: `IP[-IP][:PORT[-PORT]]`, `[IPv6][-[IPv6]][:PORT…]`.
pub fn parse_nat_to(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = after
            .strip_prefix(':')
            .or_else(|| after.split_once("]:").map(|(_, p)| p));
        (&rest[..end], port)
    } else if s.matches(':').count() > 1 {
        (s, None) // bare IPv6 without port
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let first_addr = addr.split('-').next()?;
    let ip: IpAddr = first_addr.parse().ok()?;
    let port = match port {
        Some(p) => Some(p.split('-').next()?.parse().ok()?),
        None => None,
    };
    Some((ip, port))
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Lines parsed in parallel before they are assembled into tables.
const RULE_WINDOW: usize = 1 << 16;

/// Parse iptables-save output or iptables-restore input.
pub fn parse_iptables(path: &str, text: &str) -> Parsed<Ruleset> {
    let mut cov = Coverage::new(path);
    let mut rs = Ruleset::default();
    let mut open: Option<Table> = None;
    let mut pending_comments: Vec<CommentLine> = Vec::new();
    let mut last_line = 0;

    // Rule lines do not depend on each other: parse them in parallel first (a big
    // node's save holds hundreds of thousands), then assemble in file order. A window
    // at a time, so the parsed-but-not-assembled rules never hold more than a window's
    // memory.
    let lines: Vec<(usize, &str)> = numbered_lines(text).collect();
    let mut rules: Vec<Option<Result<RuleLine, String>>> = Vec::new();
    let mut chain_names: HashSet<Arc<str>> = HashSet::new();
    for window in lines.chunks(RULE_WINDOW) {
        window
            .par_iter()
            .with_min_len(512)
            .map(|(no, raw)| {
                let line = raw.trim();
                is_rule_line(line).then(|| parse_rule_line(line, *no))
            })
            .collect_into_vec(&mut rules);

        for (i, &(no, raw)) in window.iter().enumerate() {
            last_line = no;
            let line = raw.trim();
            if line.is_empty() {
                cov.ok();
                continue;
            }
            if line.starts_with('#') {
                let c = CommentLine {
                    line: no,
                    text: line.to_string(),
                };
                match open.as_mut() {
                    Some(t) => t.comments.push(c),
                    None => pending_comments.push(c),
                }
                cov.ok();
                continue;
            }
            if let Some(name) = line.strip_prefix('*') {
                if let Some(t) = open.take() {
                    // The header was counted as recognised; it is re-classified.
                    cov.recognised = cov.recognised.saturating_sub(1);
                    cov.miss(
                        t.line,
                        &format!("*{}", t.name),
                        format!("table {} has no COMMIT before *{}", t.name, name),
                    );
                    rs.tables.push(t);
                }
                if name.is_empty() || name.contains(char::is_whitespace) {
                    cov.miss(no, raw, "bad table header");
                    continue;
                }
                open = Some(Table {
                    name: name.to_string(),
                    line: no,
                    comments: std::mem::take(&mut pending_comments),
                    chains: Vec::new(),
                    rules: Vec::new(),
                    commands: Vec::new(),
                    commit_line: None,
                });
                cov.ok();
                continue;
            }
            if line == "COMMIT" {
                match open.take() {
                    Some(mut t) => {
                        t.commit_line = Some(no);
                        rs.tables.push(t);
                        cov.ok();
                    }
                    None => cov.miss(no, raw, "COMMIT outside a table"),
                }
                continue;
            }
            let Some(table) = open.as_mut() else {
                cov.miss(no, raw, "line outside a table (no *table header before it)");
                continue;
            };
            if let Some(decl) = line.strip_prefix(':') {
                match parse_chain_decl(decl, no) {
                    Ok(c) => {
                        table.chains.push(c);
                        cov.ok();
                    }
                    Err(e) => cov.miss(no, raw, e),
                }
                continue;
            }
            let parsed = rules[i].take().unwrap_or_else(|| parse_rule_line(line, no));
            match parsed {
                Ok(RuleLine::Rule(r)) => {
                    table.rules.push(intern_chain(&mut chain_names, *r));
                    cov.ok();
                }
                Ok(RuleLine::Command(c)) => {
                    table.commands.push(c);
                    cov.ok();
                }
                Ok(RuleLine::Degraded(r, reason)) => {
                    // Kept in the model (the chain graph needs it) but reported.
                    table.rules.push(intern_chain(&mut chain_names, *r));
                    cov.miss(no, raw, reason);
                }
                Err(e) => cov.miss(no, raw, e),
            }
        }
    }
    if let Some(t) = open.take() {
        cov.recognised = cov.recognised.saturating_sub(1);
        cov.miss(
            t.line,
            &format!("*{}", t.name),
            format!(
                "table {} has no COMMIT (file ends at line {last_line})",
                t.name
            ),
        );
        rs.tables.push(t);
    }
    rs.trailing_comments = pending_comments;
    // Doubling growth leaves up to half of a big table's rule vector unused; for a
    // 300,000-rule save that is tens of MB held for the rest of the run.
    for t in &mut rs.tables {
        t.rules.shrink_to_fit();
    }
    Parsed {
        model: rs,
        coverage: cov,
    }
}

/// The rule with its chain name, and the chain it jumps to, shared with every other
/// rule naming them (a big save names each KUBE-SEP chain several times).
fn intern_chain(names: &mut HashSet<Arc<str>>, mut rule: Rule) -> Rule {
    intern(names, &mut rule.chain);
    if let Some(Target::Chain(c)) = &mut rule.target {
        intern(names, c);
    }
    rule
}

fn intern(names: &mut HashSet<Arc<str>>, name: &mut Arc<str>) {
    match names.get(name) {
        Some(shared) => *name = shared.clone(),
        None => {
            names.insert(name.clone());
        }
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

fn parse_counters_bracket(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

enum RuleLine {
    Rule(Box<Rule>),
    Command(ChainCommand),
    /// A rule that was kept, but part of it was not understood.
    Degraded(Box<Rule>, String),
}

/// A match being collected: its module and raw options.
struct PendingMatch {
    module: String,
    opts: Vec<Opt>,
    unsupported: bool,
}

fn parse_rule_line(line: &str, no: usize) -> Result<RuleLine, String> {
    let toks = tokenize(line).map_err(|e| e.to_string())?;
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
    let op = match cmd.text.as_ref() {
        "-A" | "--append" => RuleOp::Append,
        "-I" | "--insert" => RuleOp::Insert(None),
        "-N" | "--new-chain" | "-X" | "--delete-chain" | "-F" | "--flush" | "-Z" | "--zero" => {
            let op = match cmd.text.as_ref() {
                "-N" | "--new-chain" => ChainOp::New,
                "-X" | "--delete-chain" => ChainOp::Delete,
                "-F" | "--flush" => ChainOp::Flush,
                _ => ChainOp::Zero,
            };
            let chain = toks.get(i + 1).map(|t| t.text.to_string());
            if toks.len() > i + 2 || (op == ChainOp::New && chain.is_none()) {
                return Err(format!("unexpected arguments to {}", cmd.text));
            }
            return Ok(RuleLine::Command(ChainCommand {
                line: no,
                op,
                chain,
            }));
        }
        other => return Err(format!("unknown command {other:?}")),
    };
    let chain = toks
        .get(i + 1)
        .ok_or_else(|| format!("{} without a chain", cmd.text))?
        .text
        .as_ref()
        .into();
    i += 2;
    let op = match op {
        RuleOp::Insert(_) => match toks.get(i) {
            Some(t) if !t.quoted && t.text.bytes().all(|b| b.is_ascii_digit()) => {
                i += 1;
                RuleOp::Insert(Some(
                    t.text
                        .parse()
                        .map_err(|_| format!("bad position {}", t.text))?,
                ))
            }
            _ => RuleOp::Insert(None),
        },
        o => o,
    };

    let mut rule = Rule {
        line: no,
        chain,
        op,
        counters,
        protocol: None,
        source: None,
        destination: None,
        in_iface: None,
        out_iface: None,
        fragment: None,
        matches: Vec::new(),
        target: None,
        goto: false,
    };
    let mut pending: Vec<PendingMatch> = Vec::new();
    let mut neg = false;
    let mut target: Option<(String, Vec<Opt>, bool)> = None;

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
        let arg = |k: usize| -> Result<&Token, String> {
            toks.get(k)
                .ok_or_else(|| format!("{name} needs an argument"))
        };
        match name {
            "-p" | "--protocol" => {
                rule.protocol = Some(Neg::new(neg, protocol_name(&arg(i + 1)?.text)));
                i += 2;
            }
            "-s" | "--source" | "--src" => {
                rule.source = Some(Neg::new(neg, parse_cidr(&arg(i + 1)?.text)?));
                i += 2;
            }
            "-d" | "--destination" | "--dst" => {
                rule.destination = Some(Neg::new(neg, parse_cidr(&arg(i + 1)?.text)?));
                i += 2;
            }
            "-i" | "--in-interface" => {
                rule.in_iface = Some(Box::new(Neg::new(neg, arg(i + 1)?.text.to_string())));
                i += 2;
            }
            "-o" | "--out-interface" => {
                rule.out_iface = Some(Box::new(Neg::new(neg, arg(i + 1)?.text.to_string())));
                i += 2;
            }
            "-f" | "--fragment" => {
                rule.fragment = Some(!neg);
                i += 1;
            }
            "-c" | "--set-counters" => {
                let p = arg(i + 1)?.text.parse().map_err(|_| "bad -c packets")?;
                let b = arg(i + 2)?.text.parse().map_err(|_| "bad -c bytes")?;
                rule.counters = Some(Counters {
                    packets: p,
                    bytes: b,
                });
                i += 3;
            }
            "-m" | "--match" => {
                if neg {
                    return Err("! before -m".into());
                }
                pending.push(PendingMatch {
                    module: arg(i + 1)?.text.to_string(),
                    opts: Vec::new(),
                    unsupported: false,
                });
                i += 2;
                i = skip_unsupported(&toks, i, pending.last_mut().map(|p| &mut p.unsupported));
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                if neg {
                    return Err(format!("! before {name}"));
                }
                rule.goto = matches!(name, "-g" | "--goto");
                let tname = arg(i + 1)?.text.to_string();
                i += 2;
                let mut unsupported = false;
                i = skip_unsupported(&toks, i, Some(&mut unsupported));
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
                    let (opt, next) = take_opt(&toks, i, tneg);
                    opts.push(opt);
                    tneg = false;
                    i = next;
                }
                if tneg {
                    return Err("dangling !".into());
                }
                target = Some((tname, opts, unsupported));
            }
            _ if name.starts_with("--") => {
                let owner = owner_of(&pending, name, rule.protocol.as_ref());
                let idx = match owner {
                    Some(idx) => idx,
                    None => {
                        // `-p tcp --dport 80` without `-m tcp`: the protocol match is implicit.
                        let proto = rule
                            .protocol
                            .as_ref()
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
                let (opt, next) = take_opt(&toks, i, neg);
                pending[idx].opts.push(opt);
                i = next;
            }
            _ => return Err(format!("unknown option {name}")),
        }
        neg = false;
    }
    if neg {
        return Err("dangling !".into());
    }

    let mut problems: Vec<String> = Vec::new();
    // Exact capacity: growth by push (to 4) cost a quarter of a big ruleset's memory.
    // (Not `collect`, which would keep the larger PendingMatch buffer in place.)
    rule.matches = Vec::with_capacity(pending.len());
    for p in pending {
        let m = build_match(p, &mut problems);
        rule.matches.push(m);
    }
    if let Some((name, opts, unsupported)) = target {
        rule.target = Some(build_target(name, opts, unsupported, &mut problems));
    }
    if problems.is_empty() {
        Ok(RuleLine::Rule(Box::new(rule)))
    } else {
        Ok(RuleLine::Degraded(Box::new(rule), problems.join("; ")))
    }
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
fn owner_of(
    pending: &[PendingMatch],
    opt: &str,
    _proto: Option<&Neg<ProtocolName>>,
) -> Option<usize> {
    for (idx, p) in pending.iter().enumerate().rev() {
        match known_option(&p.module, opt) {
            Some(true) => return Some(idx),
            None if idx + 1 == pending.len() => return Some(idx),
            _ => {}
        }
    }
    None
}

/// `Some(true)` if `module` has option `opt`, `Some(false)` if it does not,
/// `None` if the module is not one we know the options of.
fn known_option(module: &str, opt: &str) -> Option<bool> {
    let opts: &[&str] = match module {
        "tcp" => &[
            "--sport",
            "--source-port",
            "--dport",
            "--destination-port",
            "--tcp-flags",
            "--syn",
            "--tcp-option",
        ],
        "udp" | "udplite" => &["--sport", "--source-port", "--dport", "--destination-port"],
        "sctp" => &[
            "--sport",
            "--source-port",
            "--dport",
            "--destination-port",
            "--chunk-types",
        ],
        "dccp" => &[
            "--sport",
            "--source-port",
            "--dport",
            "--destination-port",
            "--dccp-types",
            "--dccp-option",
        ],
        "icmp" => &["--icmp-type"],
        "icmp6" | "ipv6-icmp" | "icmpv6" => &["--icmpv6-type"],
        "comment" => &["--comment"],
        "multiport" => &[
            "--sports",
            "--dports",
            "--ports",
            "--source-ports",
            "--destination-ports",
        ],
        "statistic" => &["--mode", "--probability", "--every", "--packet"],
        "recent" => &[
            "--name",
            "--set",
            "--rcheck",
            "--update",
            "--remove",
            "--seconds",
            "--reap",
            "--hitcount",
            "--rttl",
            "--rsource",
            "--rdest",
            "--mask",
        ],
        "mark" => &["--mark"],
        "connmark" => &["--mark"],
        "conntrack" => &[
            "--ctstate",
            "--ctproto",
            "--ctorigsrc",
            "--ctorigdst",
            "--ctreplsrc",
            "--ctrepldst",
            "--ctorigsrcport",
            "--ctorigdstport",
            "--ctreplsrcport",
            "--ctrepldstport",
            "--ctstatus",
            "--ctexpire",
            "--ctdir",
        ],
        "state" => &["--state"],
        "addrtype" => &[
            "--src-type",
            "--dst-type",
            "--limit-iface-in",
            "--limit-iface-out",
        ],
        "set" => &[
            "--match-set",
            "--set",
            "--return-nomatch",
            "--update-counters",
            "--update-subcounters",
            "--packets-eq",
            "--packets-lt",
            "--packets-gt",
            "--bytes-eq",
            "--bytes-lt",
            "--bytes-gt",
        ],
        "physdev" => &[
            "--physdev-in",
            "--physdev-out",
            "--physdev-is-in",
            "--physdev-is-out",
            "--physdev-is-bridged",
        ],
        "nfacct" => &["--nfacct-name"],
        "rpfilter" => &["--loose", "--validmark", "--accept-local", "--invert"],
        "limit" => &["--limit", "--limit-burst"],
        "mac" => &["--mac-source"],
        "iprange" => &["--src-range", "--dst-range"],
        "owner" => &[
            "--uid-owner",
            "--gid-owner",
            "--socket-exists",
            "--suppl-groups",
        ],
        "socket" => &["--transparent", "--nowildcard", "--restore-skmark"],
        "pkttype" => &["--pkt-type"],
        _ => return None,
    };
    Some(opts.contains(&opt))
}

fn generic_match(p: PendingMatch) -> Match {
    Match::Other(Box::new(GenericMatch {
        module: p.module,
        options: p.opts,
        unsupported_revision: p.unsupported,
    }))
}

/// Turn collected options into a typed match. Falls back to [`Match::Other`] for
/// modules or option combinations the typed form does not model; a bad value in a
/// modelled option is added to `problems`.
fn build_match(p: PendingMatch, problems: &mut Vec<String>) -> Match {
    if p.unsupported {
        return generic_match(p);
    }
    match typed_match(&p) {
        Ok(Some(m)) => m,
        Ok(None) => generic_match(p),
        Err(e) => {
            problems.push(format!("-m {}: {e}", p.module));
            generic_match(p)
        }
    }
}

/// `Ok(None)`: not representable typed (kept generic, not an error).
fn typed_match(p: &PendingMatch) -> Result<Option<Match>, String> {
    let one = |o: &Opt| -> Result<String, String> {
        match o.args.as_slice() {
            [a] => Ok(a.clone()),
            _ => Err(format!("{} takes one argument", o.name)),
        }
    };
    let none = |o: &Opt| -> Result<(), String> {
        if o.args.is_empty() {
            Ok(())
        } else {
            Err(format!("{} takes no argument", o.name))
        }
    };
    let m = match p.module.as_str() {
        "comment" => match p.opts.as_slice() {
            [o] if o.name == "--comment" && !o.negated => Match::Comment(one(o)?),
            _ => return Ok(None),
        },
        "tcp" | "udp" | "sctp" | "udplite" | "dccp" => {
            let mut pm = PortMatch {
                protocol: protocol_name(&p.module),
                sport: None,
                dport: None,
            };
            for o in &p.opts {
                let slot = match o.name.as_str() {
                    "--sport" | "--source-port" => &mut pm.sport,
                    "--dport" | "--destination-port" => &mut pm.dport,
                    _ => return Ok(None),
                };
                let v = Neg::new(o.negated, parse_port_range(&one(o)?)?);
                if slot.replace(v).is_some() {
                    return Ok(None);
                }
            }
            Match::Port(pm)
        }
        "multiport" => match p.opts.as_slice() {
            [o] => {
                let direction = match o.name.as_str() {
                    "--sports" | "--source-ports" => PortDirection::Source,
                    "--dports" | "--destination-ports" => PortDirection::Destination,
                    "--ports" => PortDirection::Either,
                    _ => return Ok(None),
                };
                let ports = one(o)?
                    .split(',')
                    .map(parse_port_range)
                    .collect::<Result<Vec<_>, _>>()?;
                Match::Multiport(Multiport {
                    direction,
                    negated: o.negated,
                    ports,
                })
            }
            _ => return Ok(None),
        },
        "statistic" => {
            let mut mode = None;
            let mut prob = None;
            let mut every = None;
            let mut packet = None;
            let mut negated = false;
            for o in &p.opts {
                match o.name.as_str() {
                    "--mode" if !o.negated => mode = Some(one(o)?),
                    "--probability" => {
                        let s = one(o)?;
                        let v: f64 = s.parse().map_err(|_| format!("bad probability {s:?}"))?;
                        if !(0.0..=1.0).contains(&v) {
                            return Err(format!("probability {s} outside [0, 1]"));
                        }
                        negated |= o.negated;
                        prob = Some(v);
                    }
                    "--every" => {
                        every = Some(parse_u32(&one(o)?)?);
                        negated |= o.negated;
                    }
                    "--packet" if !o.negated => packet = Some(parse_u32(&one(o)?)?),
                    _ => return Ok(None),
                }
            }
            match (mode.as_deref(), prob, every) {
                (Some("random"), Some(probability), None) if packet.is_none() => {
                    Match::Statistic(Statistic::Random {
                        probability,
                        negated,
                    })
                }
                (Some("nth"), None, Some(every)) => Match::Statistic(Statistic::Nth {
                    every,
                    packet,
                    negated,
                }),
                _ => return Ok(None),
            }
        }
        "recent" => {
            let mut r = Recent {
                name: None,
                action: RecentAction::Set,
                negated: false,
                seconds: None,
                reap: false,
                hitcount: None,
                rttl: false,
                mask: None,
                side: None,
            };
            let mut actions = 0;
            for o in &p.opts {
                let action = match o.name.as_str() {
                    "--set" => Some(RecentAction::Set),
                    "--rcheck" => Some(RecentAction::Rcheck),
                    "--update" => Some(RecentAction::Update),
                    "--remove" => Some(RecentAction::Remove),
                    _ => None,
                };
                if let Some(a) = action {
                    none(o)?;
                    r.action = a;
                    r.negated = o.negated;
                    actions += 1;
                    continue;
                }
                if o.negated {
                    return Ok(None);
                }
                match o.name.as_str() {
                    "--name" => r.name = Some(one(o)?),
                    "--seconds" => r.seconds = Some(parse_u32(&one(o)?)?),
                    "--hitcount" => r.hitcount = Some(parse_u32(&one(o)?)?),
                    "--reap" => {
                        none(o)?;
                        r.reap = true
                    }
                    "--rttl" => {
                        none(o)?;
                        r.rttl = true
                    }
                    "--mask" => r.mask = Some(one(o)?),
                    "--rsource" => {
                        none(o)?;
                        r.side = Some(RecentSide::Source)
                    }
                    "--rdest" => {
                        none(o)?;
                        r.side = Some(RecentSide::Dest)
                    }
                    _ => return Ok(None),
                }
            }
            if actions != 1 {
                return Err("recent needs exactly one of --set/--rcheck/--update/--remove".into());
            }
            Match::Recent(Box::new(r))
        }
        "mark" => match p.opts.as_slice() {
            [o] if o.name == "--mark" => {
                let (value, mask) = parse_mark(&one(o)?)?;
                Match::Mark(MarkMatch {
                    negated: o.negated,
                    value,
                    mask,
                })
            }
            _ => return Ok(None),
        },
        "conntrack" => match p.opts.as_slice() {
            [o] if o.name == "--ctstate" => Match::Conntrack(Conntrack {
                ctstate: Some(Neg::new(
                    o.negated,
                    one(o)?.split(',').map(str::to_string).collect(),
                )),
            }),
            _ => return Ok(None),
        },
        "addrtype" => {
            let mut a = AddrType {
                src_type: None,
                dst_type: None,
                limit_iface_in: false,
                limit_iface_out: false,
            };
            for o in &p.opts {
                match o.name.as_str() {
                    "--src-type" => a.src_type = Some(Neg::new(o.negated, one(o)?)),
                    "--dst-type" => a.dst_type = Some(Neg::new(o.negated, one(o)?)),
                    "--limit-iface-in" if !o.negated => {
                        none(o)?;
                        a.limit_iface_in = true
                    }
                    "--limit-iface-out" if !o.negated => {
                        none(o)?;
                        a.limit_iface_out = true
                    }
                    _ => return Ok(None),
                }
            }
            Match::AddrType(Box::new(a))
        }
        "set" => match p.opts.as_slice() {
            [o] if o.name == "--match-set" || o.name == "--set" => match o.args.as_slice() {
                [name, flags] => Match::Set(Box::new(SetMatch {
                    negated: o.negated,
                    name: name.clone(),
                    flags: flags.split(',').map(str::to_string).collect(),
                })),
                _ => return Err(format!("{} takes a set name and flags", o.name)),
            },
            _ => return Ok(None),
        },
        "physdev" => {
            let mut d = Physdev {
                physdev_in: None,
                physdev_out: None,
                is_in: None,
                is_out: None,
                is_bridged: None,
            };
            for o in &p.opts {
                match o.name.as_str() {
                    "--physdev-in" => d.physdev_in = Some(Neg::new(o.negated, one(o)?)),
                    "--physdev-out" => d.physdev_out = Some(Neg::new(o.negated, one(o)?)),
                    "--physdev-is-in" => {
                        none(o)?;
                        d.is_in = Some(!o.negated)
                    }
                    "--physdev-is-out" => {
                        none(o)?;
                        d.is_out = Some(!o.negated)
                    }
                    "--physdev-is-bridged" => {
                        none(o)?;
                        d.is_bridged = Some(!o.negated)
                    }
                    _ => return Ok(None),
                }
            }
            Match::Physdev(Box::new(d))
        }
        "nfacct" => match p.opts.as_slice() {
            [o] if o.name == "--nfacct-name" && !o.negated => Match::Nfacct(one(o)?),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(m))
}

fn generic_target(name: String, opts: Vec<Opt>, unsupported: bool) -> Target {
    Target::Other(GenericTarget {
        name,
        options: opts,
        unsupported_revision: unsupported,
    })
}

/// Target extensions that take no options; a bare `-j NAME` of these is not a chain.
const OPTIONLESS_TARGETS: &[&str] = &[
    "NOTRACK",
    "TRACE",
    "CLUSTERIP",
    "AUDIT",
    "CONNSECMARK",
    "ECN",
    "MIRROR",
    "NETMAP",
    "REDIRECT",
    "LOG",
    "NFLOG",
    "NFQUEUE",
    "CT",
    "TPROXY",
    "CHECKSUM",
    "TCPMSS",
    "CONNMARK",
    "SECMARK",
    "TEE",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "IDLETIMER",
    "LED",
    "RATEEST",
    "SET",
    "SYNPROXY",
    "HMARK",
    "CLASSIFY",
    "ULOG",
    "TCPOPTSTRIP",
];

fn build_target(
    name: String,
    opts: Vec<Opt>,
    unsupported: bool,
    problems: &mut Vec<String>,
) -> Target {
    if unsupported {
        return generic_target(name, opts, true);
    }
    match typed_target(&name, &opts) {
        Ok(Some(t)) => t,
        Ok(None) => generic_target(name, opts, false),
        Err(e) => {
            problems.push(format!("-j {name}: {e}"));
            generic_target(name, opts, false)
        }
    }
}

fn typed_target(name: &str, opts: &[Opt]) -> Result<Option<Target>, String> {
    if opts.iter().any(|o| o.negated) {
        return Ok(None);
    }
    let flag = |o: &Opt| -> Result<bool, String> {
        if o.args.is_empty() {
            Ok(true)
        } else {
            Err(format!("{} takes no argument", o.name))
        }
    };
    let one = |o: &Opt| -> Result<String, String> {
        match o.args.as_slice() {
            [a] => Ok(a.clone()),
            _ => Err(format!("{} takes one argument", o.name)),
        }
    };
    let t = match name {
        "ACCEPT" | "DROP" | "RETURN" | "QUEUE" if !opts.is_empty() => return Ok(None),
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        "QUEUE" => Target::Queue,
        "DNAT" | "SNAT" => {
            let to_opt = if name == "DNAT" {
                "--to-destination"
            } else {
                "--to-source"
            };
            let mut n = Nat {
                to: None,
                random: false,
                random_fully: false,
                persistent: false,
            };
            for o in opts {
                match o.name.as_str() {
                    x if x == to_opt && n.to.is_none() => n.to = Some(one(o)?),
                    "--random" => n.random = flag(o)?,
                    "--random-fully" => n.random_fully = flag(o)?,
                    "--persistent" => n.persistent = flag(o)?,
                    _ => return Ok(None),
                }
            }
            if name == "DNAT" {
                Target::Dnat(n)
            } else {
                Target::Snat(n)
            }
        }
        "MASQUERADE" => {
            let mut m = Masquerade {
                to_ports: None,
                random: false,
                random_fully: false,
            };
            for o in opts {
                match o.name.as_str() {
                    "--to-ports" if m.to_ports.is_none() => m.to_ports = Some(one(o)?),
                    "--random" => m.random = flag(o)?,
                    "--random-fully" => m.random_fully = flag(o)?,
                    _ => return Ok(None),
                }
            }
            Target::Masquerade(m)
        }
        "MARK" => match opts {
            [o] => {
                let op = match o.name.as_str() {
                    "--set-xmark" => MarkOp::SetXmark,
                    "--set-mark" => MarkOp::SetMark,
                    "--or-mark" => MarkOp::OrMark,
                    "--and-mark" => MarkOp::AndMark,
                    "--xor-mark" => MarkOp::XorMark,
                    _ => return Ok(None),
                };
                let (value, mask) = parse_mark(&one(o)?)?;
                if mask.is_some() && !matches!(op, MarkOp::SetXmark | MarkOp::SetMark) {
                    return Err(format!("{} takes no mask", o.name));
                }
                Target::Mark(MarkTarget { op, value, mask })
            }
            _ => return Ok(None),
        },
        "REJECT" => match opts {
            [] => Target::Reject { with: None },
            [o] if o.name == "--reject-with" => Target::Reject {
                with: Some(one(o)?),
            },
            _ => return Ok(None),
        },
        _ if opts.is_empty() && !OPTIONLESS_TARGETS.contains(&name) => Target::Chain(name.into()),
        _ => return Ok(None),
    };
    Ok(Some(t))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

fn parse_num_u32(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("bad number {s:?}"))
}

fn parse_mark(s: &str) -> Result<(u32, Option<u32>), String> {
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_num_u32(v)?, Some(parse_num_u32(m)?))),
        None => Ok((parse_num_u32(s)?, None)),
    }
}

fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let port = |p: &str, default: u16| -> Result<u16, String> {
        if p.is_empty() {
            Ok(default)
        } else {
            p.parse().map_err(|_| format!("bad port {p:?}"))
        }
    };
    match s.split_once(':') {
        Some((a, b)) => {
            let r = PortRange {
                first: port(a, 0)?,
                last: port(b, u16::MAX)?,
            };
            if r.first > r.last {
                return Err(format!("bad port range {s:?}"));
            }
            Ok(r)
        }
        None if s.is_empty() => Err("empty port".to_string()),
        None => Ok(PortRange::single(port(s, 0)?)),
    }
}

/// `10.0.0.1`, `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `fd00::/56`.
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("bad address {s:?} (host names are not resolved)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            Ok(_) => return Err(format!("prefix too long in {s:?}")),
            Err(_) => {
                // Dotted netmask; only contiguous masks have a prefix length.
                let m: std::net::Ipv4Addr = p.parse().map_err(|_| format!("bad mask in {s:?}"))?;
                let bits = u32::from(m);
                let ones = bits.leading_ones();
                if addr.is_ipv6() || bits.checked_shl(ones).unwrap_or(0) != 0 {
                    return Err(format!("non-contiguous mask in {s:?}"));
                }
                ones as u8
            }
        },
    };
    Ok(Cidr { addr, prefix })
}

// ---------------------------------------------------------------------------
// Renderer
// ---------------------------------------------------------------------------

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

#[derive(Default)]
struct Words(Vec<String>);

impl Words {
    fn raw(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
    fn val(&mut self, s: &str) {
        self.0.push(quote(s).into_owned());
    }
    fn neg(&mut self, n: bool) {
        if n {
            self.raw("!");
        }
    }
    fn opt(&mut self, negated: bool, name: &str, args: &[&str]) {
        self.neg(negated);
        self.raw(name);
        for a in args {
            self.val(a);
        }
    }
    fn opts(&mut self, opts: &[Opt]) {
        for o in opts {
            let args: Vec<&str> = o.args.iter().map(String::as_str).collect();
            self.opt(o.negated, &o.name, &args);
        }
    }
}

fn fmt_mark(value: u32, mask: Option<u32>) -> String {
    match mask {
        Some(m) => format!("0x{value:x}/0x{m:x}"),
        None => format!("0x{value:x}"),
    }
}

fn render_match(w: &mut Words, m: &Match) {
    w.raw("-m");
    match m {
        Match::Comment(c) => {
            w.raw("comment");
            w.opt(false, "--comment", &[c]);
        }
        Match::Port(p) => {
            w.val(&p.protocol);
            if let Some(s) = &p.sport {
                w.opt(s.negated, "--sport", &[&s.value.to_string()]);
            }
            if let Some(d) = &p.dport {
                w.opt(d.negated, "--dport", &[&d.value.to_string()]);
            }
        }
        Match::Multiport(mp) => {
            w.raw("multiport");
            let name = match mp.direction {
                PortDirection::Source => "--sports",
                PortDirection::Destination => "--dports",
                PortDirection::Either => "--ports",
            };
            let list: Vec<String> = mp.ports.iter().map(ToString::to_string).collect();
            w.opt(mp.negated, name, &[&list.join(",")]);
        }
        Match::Statistic(s) => {
            w.raw("statistic");
            match s {
                Statistic::Random {
                    probability,
                    negated,
                } => {
                    w.opt(false, "--mode", &["random"]);
                    // `{}` prints the shortest string that parses back to the same f64.
                    w.opt(*negated, "--probability", &[&format!("{probability}")]);
                }
                Statistic::Nth {
                    every,
                    packet,
                    negated,
                } => {
                    w.opt(false, "--mode", &["nth"]);
                    w.opt(*negated, "--every", &[&every.to_string()]);
                    if let Some(p) = packet {
                        w.opt(false, "--packet", &[&p.to_string()]);
                    }
                }
            }
        }
        Match::Recent(r) => {
            w.raw("recent");
            let action = match r.action {
                RecentAction::Set => "--set",
                RecentAction::Rcheck => "--rcheck",
                RecentAction::Update => "--update",
                RecentAction::Remove => "--remove",
            };
            w.opt(r.negated, action, &[]);
            if let Some(s) = r.seconds {
                w.opt(false, "--seconds", &[&s.to_string()]);
            }
            if r.reap {
                w.opt(false, "--reap", &[]);
            }
            if let Some(h) = r.hitcount {
                w.opt(false, "--hitcount", &[&h.to_string()]);
            }
            if r.rttl {
                w.opt(false, "--rttl", &[]);
            }
            if let Some(n) = &r.name {
                w.opt(false, "--name", &[n]);
            }
            if let Some(m) = &r.mask {
                w.opt(false, "--mask", &[m]);
            }
            match r.side {
                Some(RecentSide::Source) => w.opt(false, "--rsource", &[]),
                Some(RecentSide::Dest) => w.opt(false, "--rdest", &[]),
                None => {}
            }
        }
        Match::Mark(mm) => {
            w.raw("mark");
            w.opt(mm.negated, "--mark", &[&fmt_mark(mm.value, mm.mask)]);
        }
        Match::Conntrack(c) => {
            w.raw("conntrack");
            if let Some(s) = &c.ctstate {
                w.opt(s.negated, "--ctstate", &[&s.value.join(",")]);
            }
        }
        Match::AddrType(a) => {
            w.raw("addrtype");
            if let Some(s) = &a.src_type {
                w.opt(s.negated, "--src-type", &[&s.value]);
            }
            if let Some(d) = &a.dst_type {
                w.opt(d.negated, "--dst-type", &[&d.value]);
            }
            if a.limit_iface_in {
                w.opt(false, "--limit-iface-in", &[]);
            }
            if a.limit_iface_out {
                w.opt(false, "--limit-iface-out", &[]);
            }
        }
        Match::Set(s) => {
            w.raw("set");
            w.opt(s.negated, "--match-set", &[&s.name, &s.flags.join(",")]);
        }
        Match::Physdev(d) => {
            w.raw("physdev");
            if let Some(i) = &d.physdev_in {
                w.opt(i.negated, "--physdev-in", &[&i.value]);
            }
            if let Some(o) = &d.physdev_out {
                w.opt(o.negated, "--physdev-out", &[&o.value]);
            }
            for (v, name) in [
                (d.is_in, "--physdev-is-in"),
                (d.is_out, "--physdev-is-out"),
                (d.is_bridged, "--physdev-is-bridged"),
            ] {
                if let Some(v) = v {
                    w.opt(!v, name, &[]);
                }
            }
        }
        Match::Nfacct(n) => {
            w.raw("nfacct");
            w.opt(false, "--nfacct-name", &[n]);
        }
        Match::Other(g) => {
            w.val(&g.module);
            if g.unsupported_revision {
                w.raw("[unsupported revision]");
            }
            w.opts(&g.options);
        }
    }
}

fn render_target(w: &mut Words, t: &Target) {
    match t {
        Target::Accept | Target::Drop | Target::Return | Target::Queue => w.raw(t.name()),
        Target::Chain(c) => w.val(c),
        Target::Dnat(n) | Target::Snat(n) => {
            let to = if matches!(t, Target::Dnat(_)) {
                "--to-destination"
            } else {
                "--to-source"
            };
            w.raw(t.name());
            if let Some(v) = &n.to {
                w.opt(false, to, &[v]);
            }
            if n.random {
                w.opt(false, "--random", &[]);
            }
            if n.random_fully {
                w.opt(false, "--random-fully", &[]);
            }
            if n.persistent {
                w.opt(false, "--persistent", &[]);
            }
        }
        Target::Masquerade(m) => {
            w.raw("MASQUERADE");
            if let Some(p) = &m.to_ports {
                w.opt(false, "--to-ports", &[p]);
            }
            if m.random {
                w.opt(false, "--random", &[]);
            }
            if m.random_fully {
                w.opt(false, "--random-fully", &[]);
            }
        }
        Target::Mark(m) => {
            w.raw("MARK");
            let name = match m.op {
                MarkOp::SetXmark => "--set-xmark",
                MarkOp::SetMark => "--set-mark",
                MarkOp::OrMark => "--or-mark",
                MarkOp::AndMark => "--and-mark",
                MarkOp::XorMark => "--xor-mark",
            };
            w.opt(false, name, &[&fmt_mark(m.value, m.mask)]);
        }
        Target::Reject { with } => {
            w.raw("REJECT");
            if let Some(x) = with {
                w.opt(false, "--reject-with", &[x]);
            }
        }
        Target::Other(g) => {
            w.val(&g.name);
            if g.unsupported_revision {
                w.raw("[unsupported revision]");
            }
            w.opts(&g.options);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_rule(line: &str) -> (Rule, Coverage) {
        let text = format!("*nat\n{line}\nCOMMIT\n");
        let p = parse_iptables("t", &text);
        let r = p.model.tables[0].rules.first().cloned();
        match r {
            Some(r) => (r, p.coverage),
            None => panic!("no rule parsed from {line:?}: {:?}", p.coverage),
        }
    }

    #[test]
    fn implicit_protocol_match() {
        let (r, c) = one_rule("-A X -p tcp --dport 80 -j ACCEPT");
        assert!(c.is_complete(), "{c:?}");
        assert_eq!(r.dport().map(|d| d.value), Some(PortRange::single(80)));
    }

    #[test]
    fn restore_order_options() {
        let (r, c) = one_rule(
            "-A KUBE-SERVICES -m comment --comment \"a/b:c cluster IP\" -m tcp -p tcp -d 10.0.0.1 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        );
        assert!(c.is_complete(), "{c:?}");
        assert_eq!(r.comment(), Some("a/b:c cluster IP"));
        assert_eq!(r.dport().map(|d| d.value.first), Some(80));
        let src = r.source.clone().map(|s| (s.negated, s.value.to_string()));
        assert_eq!(src, Some((true, "10.244.0.0/16".to_string())));
        assert_eq!(r.destination.map(|d| d.value.prefix), Some(32));
        assert_eq!(r.target, Some(Target::Chain("KUBE-MARK-MASQ".into())));
    }

    #[test]
    fn dport_of_a_generic_tcp_match() {
        let (r, c) = one_rule("-A X -p tcp -m tcp --dport 443 --tcp-flags SYN,ACK SYN -j ACCEPT");
        assert!(c.is_complete(), "{c:?}");
        assert!(matches!(&r.matches[0], Match::Other(g) if g.module == "tcp"));
        assert_eq!(r.dport().map(|d| d.value), Some(PortRange::single(443)));
    }

    #[test]
    fn unsupported_revision_is_kept() {
        let (r, c) = one_rule("-A X -p tcp -m tcp --dport 80 -j DNAT [unsupported revision]");
        assert!(c.is_complete(), "{c:?}");
        match r.target {
            Some(Target::Other(g)) => {
                assert_eq!(g.name, "DNAT");
                assert!(g.unsupported_revision);
            }
            t => panic!("{t:?}"),
        }
    }

    #[test]
    fn bad_probability_is_reported_but_rule_kept() {
        let p = parse_iptables(
            "t",
            "*nat\n-A X -m statistic --mode random --probability abc -j Y\nCOMMIT\n",
        );
        assert_eq!(p.model.tables[0].rules.len(), 1);
        assert_eq!(p.coverage.unrecognised.len(), 1);
        assert_eq!(p.coverage.unrecognised[0].line, 2);
    }

    #[test]
    fn cidr_forms() {
        assert_eq!(parse_cidr("10.0.0.0/255.0.0.0").map(|c| c.prefix), Ok(8));
        assert!(parse_cidr("10.0.0.0/255.0.255.0").is_err());
        assert!(parse_cidr("example.com").is_err());
        assert_eq!(parse_cidr("fd00::/56").map(|c| c.prefix), Ok(56));
        let c = parse_cidr("10.244.0.0/16").unwrap_or(Cidr {
            addr: IpAddr::from([0, 0, 0, 0]),
            prefix: 32,
        });
        assert!(c.contains("10.244.3.4".parse().unwrap_or(c.addr)));
    }

    #[test]
    fn nat_to_forms() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(
            parse_nat_to("10.0.0.1:80").map(|x| (Some(x.0), x.1)),
            Some((ip("10.0.0.1"), Some(80)))
        );
        assert_eq!(
            parse_nat_to("[fd00::2]:53").map(|x| (Some(x.0), x.1)),
            Some((ip("fd00::2"), Some(53)))
        );
        assert_eq!(
            parse_nat_to("10.0.0.1-10.0.0.9:80-90").map(|x| x.1),
            Some(Some(80))
        );
        assert_eq!(parse_nat_to("fd00::2").map(|x| x.1), Some(None));
        assert_eq!(parse_nat_to("garbage"), None);
    }
}
