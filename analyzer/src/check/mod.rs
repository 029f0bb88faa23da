//! Checks: one unit per catalog id ([`unit::Check`]), registered in
//! [`catalog::CHECKS`]; one module per family holds the units' logic. Checks read only
//! the model and the graph, never bundle files; each returns findings with evidence.

pub mod catalog;
pub mod docs;
mod finding;
pub mod thresholds;
pub mod unit;

mod bnd;
mod cni;
mod ct;
mod dns;
mod lnk;
mod nb;
mod nf;
mod prs;
mod svc;
mod trc;

pub use finding::{Evidence, Finding, Severity};
pub use thresholds::Thresholds;
pub use unit::{Check, CheckId, Run};

use crate::graph::NodeGraph;
use crate::model::Model;
use rayon::prelude::*;

/// What a check may look at.
pub struct Context<'a> {
    pub model: &'a Model,
    pub graph: &'a NodeGraph,
    pub thresholds: &'a Thresholds,
    /// The pods × service ports reachability the trace engine computed (`None` with
    /// `--no-reach`: the checks that rest on it, NF004 and TRC001, then stay silent).
    pub reach: Option<&'a crate::trace::reach::Reachability>,
    /// Findings of the other checks, for the units that run after them
    /// ([`AFTER_OTHERS`]); empty for the rest.
    pub prior: &'a [Finding],
}

impl<'a> Context<'a> {
    pub fn new(model: &'a Model, graph: &'a NodeGraph, thresholds: &'a Thresholds) -> Self {
        Context {
            model,
            graph,
            thresholds,
            reach: None,
            prior: &[],
        }
    }

    pub fn with_reach(self, reach: Option<&'a crate::trace::reach::Reachability>) -> Self {
        Context { reach, ..self }
    }

    /// What of it a check that reads only the model is given.
    pub fn facts(&self) -> Facts<'a> {
        Facts {
            model: self.model,
            thresholds: self.thresholds,
        }
    }
}

/// What a check that reads only the model ([`unit::Run::Facts`]) may look at: all it
/// needs exists before the graph is built, so it can run meanwhile.
pub struct Facts<'a> {
    pub model: &'a Model,
    pub thresholds: &'a Thresholds,
}

/// Units that need the others' findings: TRC001 reports only the failures no more
/// specific id explains.
pub const AFTER_OTHERS: &[CheckId] = &[CheckId::Trc001];

/// `--only` / `--skip`: ids or family prefixes (`SVC`, `CT004`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
    /// `--no-reach`: do not trace pods to services (NF004 and TRC001 stay silent).
    pub no_reach: bool,
}

impl Selection {
    fn matches(pattern: &str, id: &str) -> bool {
        let p = pattern.to_ascii_uppercase();
        id == p || (id.starts_with(&p) && p.chars().all(|c| c.is_ascii_alphabetic()))
    }

    /// Whether the pods × services reachability is needed (a check that rests on it is
    /// selected and `--no-reach` is not given).
    pub fn wants_reach(&self) -> bool {
        !self.no_reach && (self.wants("NF004") || self.wants("TRC001"))
    }

    pub fn wants(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| Self::matches(p, id)))
            && !self.skip.iter().any(|p| Self::matches(p, id))
    }

    /// Patterns that name no catalog id or family.
    pub fn unknown(&self) -> Vec<String> {
        self.only
            .iter()
            .chain(&self.skip)
            .filter(|p| !CheckId::ALL.iter().any(|id| Self::matches(p, id.as_str())))
            .cloned()
            .collect()
    }
}

/// Runs every selected check and returns its findings, merged per (id, subject) and
/// sorted by severity (worst first), id and subject.
pub fn run(ctx: &Context<'_>, selection: &Selection) -> Vec<Finding> {
    run_after_facts(ctx, selection, run_facts(&ctx.facts(), selection))
}

/// The findings of the selected checks that read only the model ([`Run::Facts`]), in
/// catalog order: they can be found while the graph is built, then handed to
/// [`run_after_facts`].
pub fn run_facts(facts: &Facts<'_>, selection: &Selection) -> Vec<Finding> {
    catalog::CHECKS
        .par_iter()
        .filter(|c| selection.wants(c.id.as_str()))
        .filter_map(|c| match c.run {
            Run::Facts(run) => Some(run),
            Run::Graph(_) => None,
        })
        .flat_map_iter(|run| run(facts))
        .collect()
}

/// [`run`], the findings of the model-only checks (`found`, by [`run_facts`]) being
/// known already.
pub fn run_after_facts(
    ctx: &Context<'_>,
    selection: &Selection,
    found: Vec<Finding>,
) -> Vec<Finding> {
    let wanted = |c: &&Check| selection.wants(c.id.as_str());
    // Checks read the model and the graph only: they run side by side (a big node's
    // service checks take tens of milliseconds each), their findings collected in
    // catalog order. Findings of one id come from one unit, so which of the two
    // lists holds them does not change the sorted result.
    let mut all = found;
    let graph: Vec<Finding> = catalog::CHECKS
        .par_iter()
        // One check a task: left to split the catalog by itself, rayon can leave the
        // slowest checks in one thread's part while the other idles.
        .with_max_len(1)
        .filter(wanted)
        .filter(|c| !AFTER_OTHERS.contains(&c.id))
        .filter_map(|c| match c.run {
            Run::Graph(run) => Some(run),
            Run::Facts(_) => None,
        })
        .flat_map_iter(|run| run(ctx))
        .collect();
    all.extend(graph);
    let after = Context {
        prior: &all,
        ..Context::new(ctx.model, ctx.graph, ctx.thresholds).with_reach(ctx.reach)
    };
    let later: Vec<Finding> = catalog::CHECKS
        .iter()
        .filter(wanted)
        .filter(|c| AFTER_OTHERS.contains(&c.id))
        .flat_map(|c| c.run_on(&after))
        .collect();
    all.extend(later);
    all.sort_by(|a, b| (b.severity, &a.id, &a.subject).cmp(&(a.severity, &b.id, &b.subject)));
    let mut merged: Vec<Finding> = Vec::with_capacity(all.len());
    for f in all {
        match merged.last_mut() {
            Some(last) if last.id == f.id && last.subject == f.subject => {
                for e in f.evidence {
                    if !last.evidence.contains(&e) {
                        last.evidence.push(e);
                    }
                }
                if !last.message.contains(&f.message) {
                    last.message = format!("{} {}", last.message, f.message);
                }
            }
            _ => merged.push(f),
        }
    }
    merged
}

/// Counts per severity.
pub fn summary(findings: &[Finding]) -> [(Severity, usize); 3] {
    Severity::ALL.map(|s| (s, findings.iter().filter(|f| f.severity == s).count()))
}

#[cfg(test)]
mod coverage;
#[cfg(test)]
pub(crate) mod faults;
#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use super::testkit::{alarms, healthy};
    use super::*;

    #[test]
    fn healthy_node_has_no_alarm() {
        let f = healthy().run(&[]);
        assert!(alarms(&f).is_empty(), "{f:#?}");
    }

    #[test]
    fn selection_by_id_and_family() {
        let s = Selection {
            only: vec!["svc".into(), "CT004".into()],
            skip: vec!["SVC002".into()],
            ..Selection::default()
        };
        assert!(s.wants("SVC001"));
        assert!(!s.wants("SVC002"));
        assert!(s.wants("CT004"));
        assert!(!s.wants("CT001"));
        assert!(!s.wants("LNK001"));
        // "CT00" is neither an id nor a family.
        let bad = Selection {
            only: vec!["CT00".into(), "XYZ".into()],
            ..Selection::default()
        };
        assert_eq!(bad.unknown(), vec!["CT00".to_string(), "XYZ".to_string()]);
    }

    #[test]
    fn every_unit_is_complete() {
        for c in catalog::CHECKS {
            assert!(
                !c.title.is_empty()
                    && !c.what.is_empty()
                    && !c.evidence.is_empty()
                    && !c.severities.is_empty()
                    && !c.remedy.is_empty()
                    && !c.refs.is_empty(),
                "{}",
                c.id
            );
            assert_eq!(c.id.as_str().parse::<CheckId>(), Ok(c.id));
        }
    }
}
