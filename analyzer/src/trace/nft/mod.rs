//! The native nftables ruleset (`nft -j list ruleset`) run on one packet the way the
//! kernel's nf_tables runs it.
//!
//! - Base chains: every chain with a type and a hook in a table of family `ip` (IPv4
//!   packets), `ip6` (IPv6) or `inet` (both), ordered by priority then name. Tables of
//!   the `bridge`, `arp` and `netdev` families are not evaluated: they sit on other
//!   hooks (bridge forwarding, ARP, ingress) than the five IP hooks the engine walks.
//! - A rule is its expressions in order: the first that does not match (a failed
//!   comparison, a map or vmap miss, a protocol the packet does not carry: `tcp dport`
//!   of a UDP packet, `ip saddr` of an IPv6 one) ends the rule, and statements before it
//!   stay done (a `meta mark set` ahead of a failing match sets the mark, as in the
//!   kernel). Verdicts: accept, drop, reject, return, jump (16 deep at most), goto,
//!   continue; the end of a base chain, or `return` from it, applies its policy.
//! - NAT (`dnat`, `snat`, `masquerade`, `redirect`) rewrites the packet, marks the
//!   connection (`ct_dnat` / `ct_snat`) and accepts, as the kernel's NAT expressions
//!   return NF_ACCEPT. A source port range of snat/masquerade leaves the port as it
//!   was (the kernel picks one; the step says so); a destination range is Unknown.
//! - `numgen random mod N` (in a vmap, a map or a comparison) splits the packet into N
//!   branches of probability 1/N. `numgen inc` is a round-robin counter whose state the
//!   bundle does not hold: over many connections it is uniform, so it splits the same
//!   way, and its step says so.
//! - `limit` and `quota` are not simulated: the packet is taken as within the limit
//!   (`limit rate over …` does not match). `counter`, `log`, set updates and other
//!   statements that do not change this packet's path are recorded and passed.
//! - What the engine cannot know is never guessed: an expression or statement it does
//!   not model (`meta skuid`, `tcp flags`, `fib … oif`, `queue`, iptables-nft's `xt`
//!   compat expressions, `notrack`, …), a jump to a missing chain, a masquerade to an
//!   interface without a known address, gives a branch with [`HookOutcome::Unknown`]
//!   whose reason and last step cite the rule.
//!
//! Packet fields the model does not carry are derived where the kernel's rules make
//! them certain and Unknown otherwise: the ICMP type of a `New` ICMP packet is
//! echo-request (the only ICMP type conntrack starts a connection with that the engine
//! sends); of other ICMP packets, Unknown unless every candidate type gives the same
//! answer; `th dport` of an ICMP packet reads its header, which is Unknown unless
//! another field of the same lookup decides (kube-proxy's `ip daddr . meta l4proto .
//! th dport` misses for ICMP on the protocol); `meta pkttype` comes from the
//! destination address; `fib daddr type` from the netns's addresses (`local`,
//! `broadcast`, `multicast`, else `unicast` for IPv4 as the kernel's local-table lookup
//! answers; for IPv6, a non-local unicast address is one of unicast / unreachable /
//! blackhole / prohibit).
//!
//! Evidence: JSON has no useful lines, so a rule is cited by its 1-based index in the
//! `nftables` array (the parser's "line", as in [`crate::model::nft`]) and its excerpt
//! carries the kernel handle and the rule rendered as nft text.
//!
//! iptables-nft's own tables (`ip filter`, `ip nat`, …) appear in `nft -j list
//! ruleset` too; this evaluator runs whatever base chains the dump holds, so an engine
//! that also runs the iptables-nft save must not run those tables twice.

mod exec;
mod expr;
mod fields;
mod nat;
pub(crate) mod render;
#[cfg(test)]
mod tests;

use super::firewall::NftFile;
use super::packet::{
    Detail, Hook, HookBranch, HookChain, HookOutcome, NetnsFacts, Packet, Ruleset, Step,
};
use crate::evidence::Evidence;
use crate::parse::nft::{NftChain, NftRule, Verdict};
use exec::{End, RuleCx};
use expr::SetIx;
use std::collections::HashMap;

/// Branches one run may produce; a split past it gives one Unknown branch instead.
pub const MAX_BRANCHES: usize = 4096;
/// The kernel's jump stack (NFT_JUMP_STACK_SIZE).
const JUMP_STACK: usize = 16;
/// Rules one branch may evaluate: a guard against a dump with a jump loop, which the
/// kernel would have refused to load.
const MAX_RULES: usize = 100_000;

/// The native nft ruleset of one bundle, indexed for evaluation.
pub struct NftEval<'a> {
    file: &'a NftFile,
    /// This ruleset's index in the engine's list (`HookChain::ruleset`).
    index: usize,
    /// Tables by (family, name).
    tables: HashMap<(&'a str, &'a str), TableIx<'a>>,
}

/// One table's chains (with their rules in order) and named sets and maps.
struct TableIx<'a> {
    family: &'a str,
    name: &'a str,
    chains: HashMap<&'a str, ChainIx<'a>>,
    sets: HashMap<&'a str, SetIx<'a>>,
}

struct ChainIx<'a> {
    chain: &'a NftChain,
    rules: Vec<&'a NftRule>,
    /// Whether each rule holds a `numgen` (the packet is kept before running it, for
    /// the split to restart the rule from).
    numgen: Vec<bool>,
}

impl<'a> NftEval<'a> {
    /// Indexes `file`'s tables, chains, rules and sets (one pass over each); `index` is
    /// the ruleset's position in the engine's list, returned in [`HookChain::ruleset`].
    pub fn new(file: &'a NftFile, index: usize) -> NftEval<'a> {
        let rs = &file.ruleset;
        let mut tables: HashMap<(&str, &str), TableIx<'a>> = HashMap::new();
        for c in &rs.chains {
            let t = tables
                .entry((c.family.as_str(), c.table.as_str()))
                .or_insert_with(|| TableIx::new(&c.family, &c.table));
            t.chains.insert(
                c.name.as_str(),
                ChainIx {
                    chain: c,
                    rules: Vec::new(),
                    numgen: Vec::new(),
                },
            );
        }
        for r in &rs.rules {
            let chain = tables
                .get_mut(&(r.family.as_str(), r.table.as_str()))
                .and_then(|t| t.chains.get_mut(r.chain.as_str()));
            if let Some(c) = chain {
                c.rules.push(r);
                c.numgen.push(expr::has_numgen(r));
            }
        }
        for s in &rs.sets {
            let t = tables
                .entry((s.family.as_str(), s.table.as_str()))
                .or_insert_with(|| TableIx::new(&s.family, &s.table));
            t.sets.insert(s.name.as_str(), SetIx::new(s));
        }
        NftEval {
            file,
            index,
            tables,
        }
    }
}

impl<'a> TableIx<'a> {
    fn new(family: &'a str, name: &'a str) -> TableIx<'a> {
        TableIx {
            family,
            name,
            chains: HashMap::new(),
            sets: HashMap::new(),
        }
    }
}

/// Whether a table of `family` sees packets of this IP version.
fn family_sees(family: &str, v6: bool) -> bool {
    match family {
        "inet" => true,
        "ip" => !v6,
        "ip6" => v6,
        _ => false,
    }
}

impl Ruleset for NftEval<'_> {
    fn label(&self) -> String {
        "nft".into()
    }

    fn hook_chains(&self, hook: Hook, v6: bool) -> Vec<HookChain> {
        let mut out: Vec<HookChain> = self
            .file
            .ruleset
            .chains
            .iter()
            .filter(|c| {
                family_sees(&c.family, v6)
                    && c.chain_type.is_some()
                    && c.hook.as_deref() == Some(hook.nft())
            })
            .map(|c| HookChain {
                ruleset: self.index,
                table: format!("{} {}", c.family, c.table),
                chain: c.name.clone(),
                // A base chain without a usable priority is run at 0; `run` then
                // reports it Unknown rather than trusting that order.
                priority: c
                    .prio
                    .map_or(0, |p| p.clamp(i32::MIN.into(), i32::MAX.into()) as i32),
                nat: c.chain_type.as_deref() == Some("nat"),
            })
            .collect();
        out.sort_by(|a, b| (a.priority, &a.chain, &a.table).cmp(&(b.priority, &b.chain, &b.table)));
        out
    }

    fn run(
        &self,
        chain: &HookChain,
        packet: &Packet,
        facts: &NetnsFacts,
        detail: Detail,
    ) -> Vec<HookBranch> {
        let at = format!("nft {}/{}", chain.table, chain.chain);
        let base = chain
            .table
            .split_once(' ')
            .and_then(|(f, t)| self.tables.get(&(f, t)))
            .and_then(|t| Some((t, t.chains.get(chain.chain.as_str())?)));
        let mut out = match base {
            None => vec![unknown_branch(
                packet,
                &at,
                format!("no chain {} in table {}", chain.chain, chain.table),
                None,
            )],
            Some((_, base)) if base.chain.prio.is_none() => {
                let ev = chain_evidence(&self.file.path, base.chain);
                vec![unknown_branch(
                    packet,
                    &at,
                    "base chain without a priority nft defines: its place on the hook is unknown"
                        .into(),
                    Some(ev),
                )]
            }
            Some((table, base)) => self.walk(table, base, facts, detail, packet),
        };
        for b in &mut out {
            detail.trim(&mut b.steps);
        }
        out
    }
}

impl NftEval<'_> {
    fn walk(
        &self,
        table: &TableIx<'_>,
        base: &ChainIx<'_>,
        facts: &NetnsFacts,
        detail: Detail,
        packet: &Packet,
    ) -> Vec<HookBranch> {
        Walk {
            path: &self.file.path,
            table,
            base,
            facts,
            detail,
        }
        .run(packet)
    }
}

fn unknown_branch(packet: &Packet, at: &str, reason: String, ev: Option<Evidence>) -> HookBranch {
    HookBranch {
        probability: 1.0,
        packet: packet.clone(),
        steps: vec![Step {
            at: at.to_string(),
            what: format!("not evaluable: {reason}"),
            evidence: ev,
        }],
        outcome: HookOutcome::Unknown { reason },
    }
}

fn chain_evidence(path: &str, c: &NftChain) -> Evidence {
    Evidence::new(path, Some(c.index), render::chain_text(c))
}

fn rule_evidence(path: &str, r: &NftRule) -> Evidence {
    Evidence::new(path, Some(r.index), render::rule_excerpt(r))
}

/// One run of a base chain.
struct Walk<'r> {
    path: &'r str,
    table: &'r TableIx<'r>,
    base: &'r ChainIx<'r>,
    facts: &'r NetnsFacts,
    detail: Detail,
}

/// A position in a chain: the next rule to run.
#[derive(Clone, Copy)]
struct Frame<'r> {
    chain: &'r ChainIx<'r>,
    next: usize,
}

/// One branch being walked.
#[derive(Clone)]
struct State<'r> {
    probability: f64,
    packet: Packet,
    /// The chain being run on top; jumps push, goto replaces the top, return pops.
    frames: Vec<Frame<'r>>,
    steps: Vec<Step>,
    /// The `numgen` values this branch takes in the rule it restarts (one per numgen
    /// of the rule, in order); empty once the rule has run.
    choices: Vec<u64>,
    rules_run: usize,
}

/// What walking a branch gave: a finished branch, or the branches a split made.
enum Walked<'r> {
    Done(HookBranch),
    Split(Vec<State<'r>>),
}

impl<'r> Walk<'r> {
    fn run(&self, packet: &Packet) -> Vec<HookBranch> {
        let mut work = vec![State {
            probability: 1.0,
            packet: packet.clone(),
            frames: vec![Frame {
                chain: self.base,
                next: 0,
            }],
            steps: Vec::new(),
            choices: Vec::new(),
            rules_run: 0,
        }];
        let mut out = Vec::new();
        // Depth first, children in slot order: the output order is deterministic.
        while let Some(st) = work.pop() {
            match self.walk(st) {
                Walked::Done(b) => out.push(b),
                Walked::Split(children) => {
                    if out.len() + work.len() + children.len() > MAX_BRANCHES {
                        out.push(self.too_many(children));
                    } else {
                        work.extend(children.into_iter().rev());
                    }
                }
            }
        }
        out
    }

    /// The branches of a split past [`MAX_BRANCHES`], as one Unknown branch.
    fn too_many(&self, children: Vec<State<'r>>) -> HookBranch {
        let probability = children.iter().map(|c| c.probability).sum();
        let first = children.into_iter().next().expect("a split has branches");
        let reason = format!("more than {MAX_BRANCHES} branches: the rest is not followed");
        let frame = first.frames.last().copied();
        let mut steps = first.steps;
        steps.push(Step {
            at: frame.map_or_else(String::new, |f| self.at(f.chain)),
            what: format!("not evaluable: {reason}"),
            evidence: frame
                .and_then(|f| f.chain.rules.get(f.next))
                .map(|r| rule_evidence(self.path, r)),
        });
        HookBranch {
            probability,
            packet: first.packet,
            steps,
            outcome: HookOutcome::Unknown { reason },
        }
    }

    fn at(&self, c: &ChainIx<'_>) -> String {
        format!(
            "nft {} {}/{}",
            self.table.family, self.table.name, c.chain.name
        )
    }

    fn finish(st: State<'r>, outcome: HookOutcome) -> Walked<'r> {
        Walked::Done(HookBranch {
            probability: st.probability,
            packet: st.packet,
            steps: st.steps,
            outcome,
        })
    }

    /// Runs one branch until it ends or splits.
    fn walk(&self, mut st: State<'r>) -> Walked<'r> {
        loop {
            let Some(top) = st.frames.last_mut() else {
                return self.policy(st);
            };
            let chain = top.chain;
            let Some(&rule) = chain.rules.get(top.next) else {
                // The end of a chain: back to the rule after the jump (or the policy).
                st.frames.pop();
                continue;
            };
            let at_rule = top.next;
            top.next += 1;
            st.rules_run += 1;
            if st.rules_run > MAX_RULES {
                let reason = format!("more than {MAX_RULES} rules on one path (a jump loop?)");
                return self.unknown(st, chain, rule, reason);
            }
            let kept = chain.numgen[at_rule].then(|| st.packet.clone());
            let choices = std::mem::take(&mut st.choices);
            let mut cx = RuleCx::new(self.table, self.facts, &choices);
            let end = cx.exec(rule, &mut st.packet);
            let actions = cx.into_actions();
            if let End::Split { modulus, offset } = end {
                st.choices = choices;
                let packet = kept.expect("a rule that splits holds a numgen");
                return Walked::Split(self.split(st, packet, at_rule, modulus, offset));
            }
            if let End::Unknown(reason) = end {
                self.step(&mut st, chain, rule, actions);
                return self.unknown(st, chain, rule, reason);
            }
            self.step(&mut st, chain, rule, actions);
            match end {
                End::NoMatch | End::Fall | End::Verdict(Verdict::Continue) => {}
                End::Verdict(Verdict::Accept) => return Self::finish(st, HookOutcome::Accept),
                End::Verdict(Verdict::Drop) => return Self::finish(st, HookOutcome::Drop),
                End::Reject(with) => return Self::finish(st, HookOutcome::Reject { with }),
                End::Verdict(Verdict::Return) => {
                    st.frames.pop();
                }
                End::Verdict(Verdict::Jump(ref target) | Verdict::Goto(ref target)) => {
                    let goto = matches!(end, End::Verdict(Verdict::Goto(_)));
                    let Some(next) = self.table.chains.get(target.as_str()) else {
                        let reason = format!("{target}: no such chain in the table");
                        return self.unknown(st, chain, rule, reason);
                    };
                    if goto {
                        st.frames.pop();
                    } else if st.frames.len() > JUMP_STACK {
                        let reason = format!("jump past the kernel's stack of {JUMP_STACK}");
                        return self.unknown(st, chain, rule, reason);
                    }
                    st.frames.push(Frame {
                        chain: next,
                        next: 0,
                    });
                }
                End::Verdict(Verdict::Queue) | End::Split { .. } | End::Unknown(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }

    /// The branches of a numgen split: the rule restarts in each from `packet` (as it
    /// was before the rule) with the next numgen taking one of its N values.
    fn split(
        &self,
        mut st: State<'r>,
        packet: Packet,
        at_rule: usize,
        modulus: u64,
        offset: u64,
    ) -> Vec<State<'r>> {
        if let Some(top) = st.frames.last_mut() {
            top.next = at_rule;
        }
        st.packet = packet;
        st.rules_run -= 1;
        let share = st.probability / modulus as f64;
        (0..modulus)
            .map(|i| {
                let mut child = st.clone();
                child.probability = share;
                child.choices.push(offset.wrapping_add(i));
                child
            })
            .collect()
    }

    /// Records what `rule` did, as far as [`Detail`] asks (the run trims the rest).
    fn step(&self, st: &mut State<'r>, chain: &ChainIx<'_>, rule: &NftRule, actions: Vec<String>) {
        if actions.is_empty() || self.detail == Detail::Verdicts {
            return;
        }
        if self.detail == Detail::Deciding {
            st.steps.clear();
        }
        st.steps.push(Step {
            at: self.at(chain),
            what: actions.join("; "),
            evidence: Some(rule_evidence(self.path, rule)),
        });
    }

    fn unknown(
        &self,
        mut st: State<'r>,
        chain: &ChainIx<'_>,
        rule: &NftRule,
        reason: String,
    ) -> Walked<'r> {
        let ev = rule_evidence(self.path, rule);
        let reason = format!("{reason} ({}: {})", ev.location(), ev.excerpt);
        st.steps.push(Step {
            at: self.at(chain),
            what: format!("not evaluable: {reason}"),
            evidence: Some(ev),
        });
        Self::finish(st, HookOutcome::Unknown { reason })
    }

    /// The end of the base chain: its policy (accept when it names none).
    fn policy(&self, mut st: State<'r>) -> Walked<'r> {
        let c = self.base.chain;
        let policy = c.policy.as_deref().unwrap_or("accept");
        let outcome = match policy {
            "accept" => HookOutcome::Accept,
            "drop" => HookOutcome::Drop,
            other => HookOutcome::Unknown {
                reason: format!("chain policy {other:?}"),
            },
        };
        if self.detail != Detail::Verdicts {
            st.steps.push(Step {
                at: self.at(self.base),
                what: format!("policy {policy}"),
                evidence: Some(chain_evidence(self.path, c)),
            });
        }
        Self::finish(st, outcome)
    }
}
