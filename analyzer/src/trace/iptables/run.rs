//! One run of a base chain: a worklist of branches, each a packet with its
//! probability, its position in the chains, its return stack and its steps. A
//! statistic match splits a branch in two; the matched side is run first, so branches
//! come out in file order of the rules that split them.
//!
//! Steps are noted, not written: a [`Note`] names the rule and what it did, and is
//! rendered (text, evidence) only when the run hands its branches over. With
//! [`Detail::Deciding`] only the last note is kept — the reachability matrix runs
//! thousands of traces and reads one step of each.

use crate::evidence::Evidence;
use crate::parse::iptables::{render_rule, Rule};

use super::super::packet::{Detail, HookBranch, HookOutcome, NetnsFacts, Packet, Step};
use super::matches::{self, Cx, Eval};
use super::targets::{self, Action};
use super::{IptablesRuleset, TableIndex};

/// Jumps one branch may take before the run calls it a loop.
const MAX_JUMPS: u32 = 1 << 16;

pub(super) struct Runner<'r, 'a> {
    rs: &'r IptablesRuleset<'a>,
    t: &'r TableIndex<'a>,
    cx: Cx<'r>,
    /// The built-in chain being run.
    base: u32,
    detail: Detail,
}

#[derive(Clone)]
struct State {
    prob: f64,
    packet: Packet,
    chain: u32,
    /// Index into the chain's rules.
    pos: usize,
    /// Where RETURN and the end of a user chain go: (chain, position after the jump).
    stack: Vec<(u32, usize)>,
    notes: Vec<Note>,
    jumps: u32,
    /// The rule at `pos` is taken without evaluating it (the matched side of a split).
    taken: bool,
}

/// A step to render: the rule (index into the table's rules) in the chain the branch
/// was in, and what it did.
#[derive(Clone)]
enum Note {
    Rule {
        chain: u32,
        rule: u32,
        what: What,
    },
    /// The base chain's policy decided.
    Policy,
}

#[derive(Clone)]
enum What {
    Text(String),
    Jump {
        to: u32,
        goto: bool,
    },
    ReturnTo(u32),
    ReturnFromBase,
    /// The matched (`taken`) or unmatched side of a probabilistic rule.
    Split {
        taken: bool,
        p: f64,
    },
    AffinityMiss,
    RateNotSimulated,
}

enum End {
    Done(HookOutcome),
    /// The rule at the branch's position matches with this probability.
    Split(f64),
}

impl<'r, 'a> Runner<'r, 'a> {
    pub(super) fn new(
        rs: &'r IptablesRuleset<'a>,
        t: &'r TableIndex<'a>,
        facts: &'r NetnsFacts,
        base: u32,
        detail: Detail,
    ) -> Self {
        Runner {
            rs,
            t,
            cx: Cx {
                facts,
                sets: &rs.sets,
            },
            base,
            detail,
        }
    }

    pub(super) fn run(&self, packet: &Packet) -> Vec<HookBranch> {
        let mut work = vec![State {
            prob: 1.0,
            packet: packet.clone(),
            chain: self.base,
            pos: 0,
            stack: Vec::new(),
            notes: Vec::new(),
            jumps: 0,
            taken: false,
        }];
        let mut out = Vec::new();
        while let Some(mut s) = work.pop() {
            let outcome = match self.advance(&mut s) {
                End::Done(o) => o,
                End::Split(_) if out.len() + work.len() + 2 > self.rs.branch_cap => {
                    let why = format!(
                        "more than {} branches: this one is not split further",
                        self.rs.branch_cap
                    );
                    self.unknown(&mut s, &why)
                }
                End::Split(p) => {
                    let miss = self.split(&mut s, p);
                    work.push(miss);
                    work.push(s);
                    continue;
                }
            };
            out.push(HookBranch {
                probability: s.prob,
                steps: s.notes.iter().filter_map(|n| self.render(n)).collect(),
                packet: s.packet,
                outcome,
            });
        }
        out
    }

    /// Runs `s` until it ends or reaches a rule that splits it.
    fn advance(&self, s: &mut State) -> End {
        loop {
            let chain = &self.t.chains[s.chain as usize];
            if let (Some(ix), false) = (&chain.by_dst, s.taken) {
                s.pos = ix.next(s.pos, s.packet.dst, chain.rules.len());
            }
            let Some(&ri) = chain.rules.get(s.pos) else {
                // The end of a user chain returns to its caller; of the base chain (or
                // of a chain it went to with -g), the policy.
                match s.stack.pop() {
                    Some((c, pos)) => (s.chain, s.pos) = (c, pos),
                    None => return End::Done(self.policy(s)),
                }
                continue;
            };
            let rule = &self.t.table.rules[ri as usize];
            if !std::mem::take(&mut s.taken) {
                match matches::eval_rule(rule, &s.packet, &self.cx) {
                    Eval::Yes(p) if p >= 1.0 => {}
                    Eval::Yes(p) if p > 0.0 => return End::Split(p),
                    Eval::Yes(_) | Eval::No => {
                        s.pos += 1;
                        continue;
                    }
                    Eval::AffinityMiss => {
                        self.note(s, ri, What::AffinityMiss);
                        s.pos += 1;
                        continue;
                    }
                    Eval::Unknown(why) => return End::Done(self.unknown(s, &why)),
                }
            }
            if matches::has_rate_match(rule) {
                self.note(s, ri, What::RateNotSimulated);
            }
            let jump = self.t.jumps[ri as usize];
            match targets::action(rule, jump, &mut s.packet, self.cx.facts, self.says()) {
                Action::Continue(what) => {
                    if let Some(what) = what {
                        self.note(s, ri, What::Text(what));
                    }
                    s.pos += 1;
                }
                Action::Jump { chain, goto } => {
                    s.jumps += 1;
                    if s.jumps > MAX_JUMPS {
                        let why = format!("more than {MAX_JUMPS} jumps: a loop between chains");
                        return End::Done(self.unknown(s, &why));
                    }
                    self.note(s, ri, What::Jump { to: chain, goto });
                    if !goto {
                        s.stack.push((s.chain, s.pos + 1));
                    }
                    (s.chain, s.pos) = (chain, 0);
                }
                Action::Return => match s.stack.pop() {
                    Some((c, pos)) => {
                        self.note(s, ri, What::ReturnTo(c));
                        (s.chain, s.pos) = (c, pos);
                    }
                    None => {
                        self.note(s, ri, What::ReturnFromBase);
                        return End::Done(self.policy(s));
                    }
                },
                Action::Verdict(outcome, what) => {
                    self.note(s, ri, What::Text(what));
                    return End::Done(outcome);
                }
                Action::Unknown(why) => return End::Done(self.unknown(s, &why)),
            }
        }
    }

    /// Splits `s` at its rule: `s` becomes the matched side, the unmatched one is
    /// returned.
    fn split(&self, s: &mut State, p: f64) -> State {
        let ri = self.rule_index(s);
        let mut miss = s.clone();
        miss.prob *= 1.0 - p;
        self.note(&mut miss, ri, What::Split { taken: false, p });
        miss.pos += 1;
        s.prob *= p;
        s.taken = true;
        self.note(s, ri, What::Split { taken: true, p });
        miss
    }

    fn rule_index(&self, s: &State) -> u32 {
        self.t.chains[s.chain as usize].rules[s.pos]
    }

    fn at(&self, chain: &str) -> String {
        format!("{} {}/{}", self.rs.label, self.t.table.name, chain)
    }

    fn evidence(&self, rule: &Rule) -> Evidence {
        // Rules are in file order, so a rule's line finds its slot.
        let rules = &self.t.table.rules;
        let text = match rules.binary_search_by_key(&rule.line, |r| r.line) {
            Ok(i) => self.t.rendered[i].get_or_init(|| render_rule(rule)).clone(),
            Err(_) => render_rule(rule),
        };
        Evidence::new(&self.rs.file.path, Some(rule.line), text)
    }

    /// Whether notes are kept (their words are then made).
    fn says(&self) -> targets::Say {
        targets::Say(!matches!(self.detail, Detail::Verdicts))
    }

    /// Notes what rule `ri` (in the branch's current chain) did.
    fn note(&self, s: &mut State, ri: u32, what: What) {
        match self.detail {
            Detail::Every => {}
            Detail::Deciding => s.notes.clear(),
            Detail::Verdicts => return,
        }
        s.notes.push(Note::Rule {
            chain: s.chain,
            rule: ri,
            what,
        });
    }

    /// The step a note stands for; `None` for a policy without a declaration line when
    /// only the deciding step is wanted (it has no evidence).
    fn render(&self, note: &Note) -> Option<Step> {
        let (chain, ri, what) = match note {
            Note::Policy => {
                return self.t.policy_steps[self.base as usize]
                    .get_or_init(|| self.policy_step())
                    .clone()
            }
            Note::Rule { chain, rule, what } => (*chain, *rule, what),
        };
        let rule = &self.t.table.rules[ri as usize];
        let what = match what {
            What::Text(t) => t.clone(),
            What::Jump { to, goto } => {
                let name = self.t.chains[*to as usize].name;
                format!("{} {name}", if *goto { "goto" } else { "jump" })
            }
            What::ReturnTo(c) => format!("RETURN to {}", self.t.chains[*c as usize].name),
            What::ReturnFromBase => "RETURN from the base chain: its policy".into(),
            What::Split { taken: true, p } => {
                format!("{}: taken (p={p:.4})", matches::split_text(rule))
            }
            What::Split { taken: false, p } => {
                format!(
                    "{}: not taken (p={:.4})",
                    matches::split_text(rule),
                    1.0 - p
                )
            }
            What::AffinityMiss => format!(
                "affinity: miss (recent list {} is not captured: a client not seen before)",
                matches::recent_name(rule).unwrap_or("?")
            ),
            What::RateNotSimulated => "rate limit not simulated: taken as within the rate".into(),
        };
        Some(Step {
            at: self.at(self.t.chains[chain as usize].name),
            what,
            evidence: Some(self.evidence(rule)),
        })
    }

    /// The branch ends Unknown at its current rule, which the reason cites.
    fn unknown(&self, s: &mut State, why: &str) -> HookOutcome {
        let ri = self.rule_index(s);
        let ev = self.evidence(&self.t.table.rules[ri as usize]);
        let reason = format!("{}: {why} (`{}`)", ev.location(), ev.excerpt);
        self.note(s, ri, What::Text(format!("unknown: {why}")));
        HookOutcome::Unknown { reason }
    }

    /// The base chain's policy decides the branch.
    fn policy(&self, s: &mut State) -> HookOutcome {
        let c = &self.t.chains[self.base as usize];
        let policy = c.decl.and_then(|d| d.policy.as_deref());
        // Without a declaration there is nothing to cite: the deciding step stays the
        // last rule's.
        match self.detail {
            Detail::Every => s.notes.push(Note::Policy),
            Detail::Deciding if policy.is_some() => {
                s.notes.clear();
                s.notes.push(Note::Policy);
            }
            Detail::Deciding | Detail::Verdicts => {}
        }
        match policy {
            None | Some("ACCEPT") => HookOutcome::Accept,
            Some("DROP") => HookOutcome::Drop,
            Some(other) => {
                let ev = self
                    .policy_evidence()
                    .expect("a policy has its declaration");
                HookOutcome::Unknown {
                    reason: format!(
                        "{}: policy {other} is not evaluated (`{}`)",
                        ev.location(),
                        ev.excerpt
                    ),
                }
            }
        }
    }

    /// The `:CHAIN POLICY [counters]` line of the base chain, when declared.
    fn policy_evidence(&self) -> Option<Evidence> {
        let decl = self.t.chains[self.base as usize].decl?;
        let policy = decl.policy.as_deref()?;
        let mut line = format!(":{} {policy}", decl.name);
        if let Some(k) = decl.counters {
            line.push_str(&format!(" [{}:{}]", k.packets, k.bytes));
        }
        Some(Evidence::new(&self.rs.file.path, Some(decl.line), line))
    }

    fn policy_step(&self) -> Option<Step> {
        let c = &self.t.chains[self.base as usize];
        let at = self.at(c.name);
        Some(
            match (
                c.decl.and_then(|d| d.policy.as_deref()),
                self.policy_evidence(),
            ) {
                (Some(policy), Some(ev)) => Step {
                    at,
                    what: format!("policy {policy}"),
                    evidence: Some(ev),
                },
                _ => Step {
                    at,
                    what: "end of chain: no policy line (a built-in chain's default is ACCEPT)"
                        .into(),
                    evidence: None,
                },
            },
        )
    }
}
