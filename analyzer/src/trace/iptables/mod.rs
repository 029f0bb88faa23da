//! Runs an iptables save ([`IptablesFile`]) the way the kernel's x_tables would: the
//! built-in chain of a hook, its rules in order, jumps and gotos into user chains, the
//! targets' verdicts, NAT rewrites and mark changes, and at the end the policy.
//!
//! [`IptablesRuleset::new`] indexes the rules of each chain once (O(rules); `-I` and
//! restore input's `-F`/`-X` are honoured in file order), so a run visits only the
//! chains the packet reaches and allocates nothing for rules that do not match.
//!
//! What the bundle cannot tell is said, never guessed: a match or target that is not
//! evaluated offline (`owner`, `socket`, `u32`, `bpf`, `string`, `NFQUEUE`, an
//! `[unsupported revision]`, …), a set the ipset save does not hold, a MASQUERADE
//! without an address: the branch ends [`HookOutcome::Unknown`], and the reason names
//! the rule as `path:line` with its text. A rule with a match that is certainly false
//! does not match, whatever its other matches are.
//!
//! Decisions where the kernel's answer depends on state the bundle does not hold:
//!
//! - `-m statistic --mode random --probability p` splits the packet: one branch takes
//!   the rule with probability `p` of the incoming one, the other goes on with `1 − p`
//!   (kube-proxy's 1/n, 1/(n−1), … chain gives each endpoint 1/n). `--mode nth --every
//!   n` is split the same way with 1/n (the packet counter is not captured), and the
//!   step says so. Branches come out in file order of the rules that split them.
//! - `-m recent` (kube-proxy session affinity): recent lists are not captured, so the
//!   packet is taken as coming from a client not seen before: `--rcheck`, `--update`
//!   and `--remove` do not match (`! --rcheck` does), `--set` matches. A rule that
//!   missed only because of this records an `affinity: miss` step: the trace is the
//!   first connection of a client, a returning client would stick to its endpoint.
//! - `-m limit`/`-m hashlimit` match (the rate is not simulated; a step says so).
//! - NAT to a range (`--to-destination 10.0.0.1-10.0.0.3:80-90`) takes the first
//!   address and port, and the step says the kernel picks one per connection.
//! - conntrack: the packet's [`CtState`](super::packet::CtState) with its DNAT/SNAT
//!   flags; it is never INVALID nor UNTRACKED (a NOTRACK/CT target is recorded, not
//!   applied to later hooks). TCP flags follow the state: a NEW or RELATED packet is a
//!   SYN, an ESTABLISHED one an ACK. An ICMP packet is an echo request.
//! - `-m addrtype` reads the netns's addresses ([`NetnsFacts`]): LOCAL, BROADCAST,
//!   MULTICAST, else UNICAST (IPv4's type comes from the local table only, as in the
//!   kernel); IPv6 ANYCAST/UNREACHABLE/PROHIBIT/… need a route lookup and are Unknown.
//! - `-m physdev` follows the kernel: `--physdev-is-bridged` is true when the packet
//!   has a bridge out port (`physdev_out`); without bridge information only negated
//!   options match.

mod ipset;
mod matches;
mod run;
mod targets;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::fx::Fx;
use crate::parse::ipset::IpsetSave;
use crate::parse::iptables::{Chain, ChainOp, RuleOp, Table, Target};
use crate::sources::Proxier;

use super::firewall::IptablesFile;
use super::packet::{
    Detail, Hook, HookBranch, HookChain, HookOutcome, NetnsFacts, Packet, Ruleset,
};
use ipset::Sets;

/// Default cap on the branches of one run (statistic splits multiply).
pub const BRANCH_CAP: usize = 4096;

/// No chain (a rule that does not jump, or jumps to a chain the table lacks).
const NONE: u32 = u32::MAX;

/// One iptables save, indexed for running.
pub struct IptablesRuleset<'a> {
    file: &'a IptablesFile,
    ipsets: Option<&'a IpsetSave>,
    /// Position in the engine's list of rulesets ([`HookChain::ruleset`]).
    index: usize,
    label: String,
    tables: Vec<TableIndex<'a>>,
    sets: Sets<'a>,
    branch_cap: usize,
}

/// The chains of one table with their rules in evaluation order.
struct TableIndex<'a> {
    table: &'a Table,
    chains: Vec<ChainIndex<'a>>,
    by_name: HashMap<&'a str, u32, Fx>,
    /// Per rule of `table.rules`: the chain its `-j`/`-g` names, or [`NONE`].
    jumps: Vec<u32>,
    /// Per rule of `table.rules`: its save line, rendered the first time a step cites
    /// it (a node's reachability cites the same few rules thousands of times).
    rendered: Vec<std::sync::OnceLock<String>>,
    /// Per chain: the step its policy makes, rendered the first time one is cited.
    policy_steps: Vec<std::sync::OnceLock<Option<super::packet::Step>>>,
}

struct ChainIndex<'a> {
    name: &'a str,
    /// The `:NAME POLICY` line, when declared.
    decl: Option<&'a Chain>,
    /// Indexes into `table.rules`, in the order the kernel walks them.
    rules: Vec<u32>,
    /// For a long chain (kube-proxy's KUBE-SERVICES holds one rule per service port):
    /// the positions of rules for one destination address, and of the rest, so a
    /// packet skips rules that cannot match its destination.
    by_dst: Option<DstIndex>,
}

/// Positions (into [`ChainIndex::rules`]) by the host address a rule's `-d` names.
pub(super) struct DstIndex {
    host: HashMap<std::net::IpAddr, Vec<usize>, Fx>,
    /// Rules without a plain host `-d` (no `-d`, a prefix, or `! -d`).
    other: Vec<usize>,
}

/// A chain this long gets a destination index.
const INDEXED_CHAIN: usize = 64;

impl DstIndex {
    fn new(rules: &[u32], table: &Table) -> DstIndex {
        let mut ix = DstIndex {
            host: HashMap::default(),
            other: Vec::new(),
        };
        for (pos, &ri) in rules.iter().enumerate() {
            match &table.rules[ri as usize].destination {
                Some(d) if !d.negated && d.value.prefix_len() == d.value.max_prefix_len() => {
                    ix.host.entry(d.value.addr()).or_default().push(pos)
                }
                _ => ix.other.push(pos),
            }
        }
        ix
    }

    /// The first position at or after `pos` whose rule may match a packet to `dst`.
    pub(super) fn next(&self, pos: usize, dst: std::net::IpAddr, end: usize) -> usize {
        let first = |v: &[usize]| v.get(v.partition_point(|&p| p < pos)).copied();
        let host = self.host.get(&dst).and_then(|v| first(v));
        match (first(&self.other), host) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => end,
        }
    }
}

impl<'a> IptablesRuleset<'a> {
    /// Indexes `file` (O(rules)); `index` is its place in the engine's ruleset list.
    pub fn new(
        file: &'a IptablesFile,
        ipsets: Option<&'a IpsetSave>,
        index: usize,
    ) -> IptablesRuleset<'a> {
        let family = if file.ipv6 { "ip6tables" } else { "iptables" };
        let backend = match file.backend {
            Proxier::IptablesLegacy => "-legacy",
            Proxier::IptablesNft => "-nft",
            Proxier::Nftables | Proxier::Ipvs | Proxier::Cilium => "",
        };
        IptablesRuleset {
            file,
            ipsets,
            index,
            label: format!("{family}{backend}"),
            tables: file.ruleset.tables.iter().map(TableIndex::new).collect(),
            sets: Sets::new(ipsets),
            branch_cap: BRANCH_CAP,
        }
    }

    /// Caps the branches of one run at `cap` (at least 1); a run that would split
    /// beyond it ends the splitting branch as Unknown.
    pub fn with_branch_cap(mut self, cap: usize) -> Self {
        self.branch_cap = cap.max(1);
        self
    }

    /// The save this ruleset runs.
    pub fn file(&self) -> &'a IptablesFile {
        self.file
    }

    /// The ipset save its `-m set` matches read, if captured.
    pub fn ipsets(&self) -> Option<&'a IpsetSave> {
        self.ipsets
    }

    fn table(&self, name: &str) -> Option<&TableIndex<'a>> {
        self.tables.iter().find(|t| t.table.name == name)
    }
}

impl<'a> TableIndex<'a> {
    fn new(table: &'a Table) -> TableIndex<'a> {
        let mut t = TableIndex {
            table,
            chains: Vec::with_capacity(table.chains.len()),
            by_name: HashMap::with_capacity_and_hasher(table.chains.len(), Fx::default()),
            jumps: Vec::new(),
            rendered: (0..table.rules.len()).map(|_| Default::default()).collect(),
            policy_steps: Vec::new(),
        };
        for c in &table.chains {
            let id = t.chain_id(&c.name);
            t.chains[id as usize].decl = Some(c);
        }
        // Rules and restore commands (`-F`, `-X`, `-N`) in file order.
        let mut commands = table.commands.iter().peekable();
        for (i, rule) in table.rules.iter().enumerate() {
            while let Some(c) = commands.next_if(|c| c.line < rule.line) {
                t.command(c.op, c.chain.as_deref());
            }
            let id = t.chain_id(&rule.chain) as usize;
            let rules = &mut t.chains[id].rules;
            match rule.op {
                RuleOp::Append => rules.push(i as u32),
                RuleOp::Insert(pos) => {
                    let at = (pos.unwrap_or(1).max(1) as usize - 1).min(rules.len());
                    rules.insert(at, i as u32);
                }
            }
        }
        for c in commands {
            t.command(c.op, c.chain.as_deref());
        }
        t.jumps = table
            .rules
            .iter()
            .map(|r| match &r.target {
                Some(Target::Chain(name)) => t.by_name.get(&**name).copied().unwrap_or(NONE),
                _ => NONE,
            })
            .collect();
        t.policy_steps = (0..t.chains.len()).map(|_| Default::default()).collect();
        for c in &mut t.chains {
            if c.rules.len() >= INDEXED_CHAIN {
                c.by_dst = Some(DstIndex::new(&c.rules, table));
            }
        }
        t
    }

    fn chain_id(&mut self, name: &'a str) -> u32 {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.chains.len() as u32;
        self.chains.push(ChainIndex {
            name,
            decl: None,
            rules: Vec::new(),
            by_dst: None,
        });
        self.by_name.insert(name, id);
        id
    }

    /// A restore command: `-F` empties chains, `-X` removes user chains.
    fn command(&mut self, op: ChainOp, chain: Option<&'a str>) {
        match (op, chain) {
            (ChainOp::Flush, Some(c)) => {
                if let Some(&id) = self.by_name.get(c) {
                    self.chains[id as usize].rules.clear();
                }
            }
            (ChainOp::Flush, None) => self.chains.iter_mut().for_each(|c| c.rules.clear()),
            (ChainOp::Delete, Some(c)) => {
                self.by_name.remove(c);
            }
            (ChainOp::Delete, None) => {
                let builtin = |n: &str| BUILTIN_CHAINS.contains(&n);
                self.by_name.retain(|n, _| builtin(n));
            }
            (ChainOp::New, Some(c)) => {
                if !self.by_name.contains_key(c) {
                    let id = self.chains.len() as u32;
                    self.chains.push(ChainIndex {
                        name: c,
                        decl: None,
                        rules: Vec::new(),
                        by_dst: None,
                    });
                    self.by_name.insert(c, id);
                }
            }
            (ChainOp::New, None) | (ChainOp::Zero, _) => {}
        }
    }
}

const BUILTIN_CHAINS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// The hook priority of `table`'s built-in chain for `hook`, if it has one.
fn priority(table: &str, hook: Hook) -> Option<i32> {
    use Hook::*;
    match (table, hook) {
        ("raw", Prerouting | Output) => Some(-300),
        ("mangle", _) => Some(-150),
        ("nat", Prerouting | Output) => Some(-100),
        ("nat", Postrouting | Input) => Some(100),
        ("filter", Input | Forward | Output) => Some(0),
        ("security", Input | Forward | Output) => Some(50),
        _ => None,
    }
}

impl Ruleset for IptablesRuleset<'_> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn hook_chains(&self, hook: Hook, v6: bool) -> Vec<HookChain> {
        if v6 != self.file.ipv6 {
            return Vec::new();
        }
        let mut out: Vec<HookChain> = self
            .tables
            .iter()
            .filter_map(|t| {
                let priority = priority(&t.table.name, hook)?;
                t.by_name.contains_key(hook.chain()).then(|| HookChain {
                    ruleset: self.index,
                    table: t.table.name.clone(),
                    chain: hook.chain().to_string(),
                    priority,
                    nat: t.table.name == "nat",
                })
            })
            .collect();
        out.sort_by_key(|c| c.priority);
        out
    }

    fn run(
        &self,
        chain: &HookChain,
        packet: &Packet,
        facts: &NetnsFacts,
        detail: Detail,
    ) -> Vec<HookBranch> {
        let base = self
            .table(&chain.table)
            .and_then(|t| Some((t, *t.by_name.get(chain.chain.as_str())?)));
        match base {
            Some((t, id)) => run::Runner::new(self, t, facts, id, detail).run(packet),
            None => vec![HookBranch {
                probability: 1.0,
                packet: packet.clone(),
                steps: Vec::new(),
                outcome: HookOutcome::Unknown {
                    reason: format!(
                        "{}: no chain {} in table {}",
                        self.file.path, chain.chain, chain.table
                    ),
                },
            }],
        }
    }
}
