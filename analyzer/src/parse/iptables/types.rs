//! The model of an iptables save: tables, chains, rules, and what model building asks
//! of them. Matches and targets live beside their parsers in `matches/` and `targets`.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::matches::{parse_port_range, Match, PortRange, Statistic};
use super::targets::Target;

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

/// An address with prefix length as written (`-s 10.0.0.1/8` keeps its host bits, so
/// rendering gives back the same text; a bare address is /32 or /128).
pub type Cidr = ipnet::IpNet;

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

pub(super) fn protocol_name(name: &str) -> ProtocolName {
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

/// An option of a generic match or target: `[!] --name [args…]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opt {
    pub negated: bool,
    /// With its dashes, e.g. `--notrack`.
    pub name: String,
    pub args: Vec<String>,
}

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

    /// Set every `line` to where [`render_iptables`](super::render_iptables) will put it.
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
    /// A rule of what precedes its options (`[counters] -A|-I chain [position]`), the
    /// options still to be read into it.
    pub(super) fn head(
        line: usize,
        chain: Arc<str>,
        op: RuleOp,
        counters: Option<Counters>,
    ) -> Rule {
        Rule {
            line,
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
        }
    }

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
