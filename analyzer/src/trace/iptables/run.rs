//! One run of a base chain: a worklist of branches, each a packet with its
//! probability, its position in the chains, its return stack and its steps. A
//! statistic match splits a branch in two; the matched side is run first, so branches
//! come out in file order of the rules that split them.

use crate::evidence::Evidence;
use crate::parse::iptables::{render_rule, Rule};

use super::super::packet::{HookBranch, HookOutcome, NetnsFacts, Packet, Step};
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
    steps: Vec<Step>,
    jumps: u32,
    /// The rule at `pos` is taken without evaluating it (the matched side of a split).
    taken: bool,
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
    ) -> Self {
        Runner {
            rs,
            t,
            cx: Cx {
                facts,
                sets: &rs.sets,
            },
            base,
        }
    }

    pub(super) fn run(&self, packet: &Packet) -> Vec<HookBranch> {
        let mut work = vec![State {
            prob: 1.0,
            packet: packet.clone(),
            chain: self.base,
            pos: 0,
            stack: Vec::new(),
            steps: Vec::new(),
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
                packet: s.packet,
                steps: s.steps,
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
                        let list = matches::recent_name(rule).unwrap_or("?");
                        let what = format!(
                            "affinity: miss (recent list {list} is not captured: a client not seen before)"
                        );
                        self.step(s, rule, what);
                        s.pos += 1;
                        continue;
                    }
                    Eval::Unknown(why) => return End::Done(self.unknown(s, &why)),
                }
            }
            if matches::has_rate_match(rule) {
                self.step(
                    s,
                    rule,
                    "rate limit not simulated: taken as within the rate".into(),
                );
            }
            let jump = self.t.jumps[ri as usize];
            match targets::action(rule, jump, &mut s.packet, self.cx.facts) {
                Action::Continue(what) => {
                    if let Some(what) = what {
                        self.step(s, rule, what);
                    }
                    s.pos += 1;
                }
                Action::Jump { chain, goto } => {
                    s.jumps += 1;
                    if s.jumps > MAX_JUMPS {
                        let why = format!("more than {MAX_JUMPS} jumps: a loop between chains");
                        return End::Done(self.unknown(s, &why));
                    }
                    let name = self.t.chains[chain as usize].name;
                    let what = format!("{} {name}", if goto { "goto" } else { "jump" });
                    self.step(s, rule, what);
                    if !goto {
                        s.stack.push((s.chain, s.pos + 1));
                    }
                    (s.chain, s.pos) = (chain, 0);
                }
                Action::Return => match s.stack.pop() {
                    Some((c, pos)) => {
                        let what = format!("RETURN to {}", self.t.chains[c as usize].name);
                        self.step(s, rule, what);
                        (s.chain, s.pos) = (c, pos);
                    }
                    None => {
                        self.step(s, rule, "RETURN from the base chain: its policy".into());
                        return End::Done(self.policy(s));
                    }
                },
                Action::Verdict(outcome, what) => {
                    self.step(s, rule, what);
                    return End::Done(outcome);
                }
                Action::Unknown(why) => return End::Done(self.unknown(s, &why)),
            }
        }
    }

    /// Splits `s` at its rule: `s` becomes the matched side, the unmatched one is
    /// returned.
    fn split(&self, s: &mut State, p: f64) -> State {
        let rule = self.rule_at(s);
        let text = matches::split_text(rule);
        let mut miss = s.clone();
        miss.prob *= 1.0 - p;
        self.step(
            &mut miss,
            rule,
            format!("{text}: not taken (p={:.4})", 1.0 - p),
        );
        miss.pos += 1;
        s.prob *= p;
        s.taken = true;
        self.step(s, rule, format!("{text}: taken (p={p:.4})"));
        miss
    }

    fn rule_at(&self, s: &State) -> &'a Rule {
        let ri = self.t.chains[s.chain as usize].rules[s.pos];
        &self.t.table.rules[ri as usize]
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

    /// Records what `rule` (in the branch's current chain) did.
    fn step(&self, s: &mut State, rule: &Rule, what: String) {
        s.steps.push(Step {
            at: self.at(self.t.chains[s.chain as usize].name),
            what,
            evidence: Some(self.evidence(rule)),
        });
    }

    /// The branch ends Unknown at its current rule, which the reason cites.
    fn unknown(&self, s: &mut State, why: &str) -> HookOutcome {
        let rule = self.rule_at(s);
        let ev = self.evidence(rule);
        let reason = format!("{}: {why} (`{}`)", ev.location(), ev.excerpt);
        self.step(s, rule, format!("unknown: {why}"));
        HookOutcome::Unknown { reason }
    }

    /// The base chain's policy, with its `:CHAIN POLICY` line.
    fn policy(&self, s: &mut State) -> HookOutcome {
        let c = &self.t.chains[self.base as usize];
        let at = self.at(c.name);
        let Some((decl, policy)) = c.decl.and_then(|d| Some((d, d.policy.as_deref()?))) else {
            s.steps.push(Step {
                at,
                what: "end of chain: no policy line (a built-in chain's default is ACCEPT)".into(),
                evidence: None,
            });
            return HookOutcome::Accept;
        };
        let mut line = format!(":{} {policy}", decl.name);
        if let Some(k) = decl.counters {
            line.push_str(&format!(" [{}:{}]", k.packets, k.bytes));
        }
        let ev = Evidence::new(&self.rs.file.path, Some(decl.line), line);
        let outcome = match policy {
            "ACCEPT" => HookOutcome::Accept,
            "DROP" => HookOutcome::Drop,
            other => HookOutcome::Unknown {
                reason: format!(
                    "{}: policy {other} is not evaluated (`{}`)",
                    ev.location(),
                    ev.excerpt
                ),
            },
        };
        s.steps.push(Step {
            at,
            what: format!("policy {policy}"),
            evidence: Some(ev),
        });
        outcome
    }
}
