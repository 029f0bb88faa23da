//! TRC: what the trace engine finds when it follows a packet from every pod to every
//! service port (`trace::reach`): a path that fails where no more specific finding
//! explains why.

use super::unit::CheckId;
use super::{Context, Evidence, Finding, Severity};
use crate::trace::reach::Cell;
use std::collections::{BTreeMap, BTreeSet};

/// How many pods a finding names before it says "and N more".
const NAMED_PODS: usize = 5;

/// TRC001.
pub fn unreachable_services(ctx: &Context<'_>) -> Vec<Finding> {
    let Some(reach) = ctx.reach else {
        return Vec::new();
    };
    let explained = Explained::from(ctx.prior);
    let mut by_service: BTreeMap<&str, Vec<Cell<'_>>> = BTreeMap::new();
    for c in reach.cells.iter().filter(|c| c.failing() > 0.0) {
        if !explained.covers(&c) {
            by_service.entry(c.service).or_default().push(c);
        }
    }
    let pods_total = reach.pods;
    by_service
        .into_iter()
        .map(|(service, cells)| finding(service, &cells, pods_total))
        .collect()
}

fn finding(service: &str, cells: &[Cell<'_>], pods_total: usize) -> Finding {
    let all_fail = cells.iter().any(|c| c.failing() >= 0.999);
    let first = &cells[0];
    let failure = &first.failures()[0];
    let mut pods: Vec<&str> = cells.iter().map(|c| c.pod).collect();
    pods.sort();
    let more = pods.len().saturating_sub(NAMED_PODS);
    let named = pods[..pods.len().min(NAMED_PODS)].join(", ");
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let share = if all_fail {
        String::new()
    } else {
        format!(" ({:.0} % of connections)", first.failing() * 100.0)
    };
    let mut f = Finding::new(
        CheckId::Trc001,
        if all_fail { Severity::Critical } else { Severity::Warning },
        format!("service {service}"),
        format!(
            "{} of {pods_total} pods cannot reach {service}{}{share}: {} — {} (from {named}{more}). Trace it: `netsnap trace BUNDLE {}`.",
            cells.len(),
            if first.address.starts_with(service) {
                String::new()
            } else {
                format!(" ({})", first.address)
            },
            failure.verdict.as_str(),
            failure.reason,
            first.command()
        ),
    );
    let mut seen = BTreeSet::new();
    for c in cells {
        for fl in c.failures() {
            if let Some(ev) = fl.deciding.as_ref().and_then(|h| h.evidence.clone()) {
                if seen.insert(ev.clone()) {
                    f.evidence.push(ev);
                }
            }
        }
    }
    if f.evidence.is_empty() {
        f.evidence
            .push(Evidence::new("trace", None, failure.reason.clone()));
    }
    f
}

/// What the other checks already say: subjects with a warning or worse, and node-wide
/// netfilter findings (which explain every failing path).
struct Explained {
    subjects: BTreeSet<String>,
    node_wide: bool,
}

impl Explained {
    fn from(prior: &[Finding]) -> Explained {
        let alarms = prior.iter().filter(|f| f.severity >= Severity::Warning);
        let mut subjects = BTreeSet::new();
        let mut node_wide = false;
        for f in alarms {
            subjects.insert(f.subject.clone());
            node_wide |= f.subject == "node" && f.id.as_str().starts_with("NF");
        }
        Explained {
            subjects,
            node_wide,
        }
    }

    /// A failing cell is explained by a finding about its service, its pod, or the
    /// pod where the failing branch ended.
    fn covers(&self, c: &Cell<'_>) -> bool {
        if self.node_wide
            || self.subjects.contains(&format!("service {}", c.service))
            || self.subjects.contains(&format!("pod {}", c.pod))
        {
            return true;
        }
        c.failures().iter().all(|f| {
            f.deciding
                .as_ref()
                .is_some_and(|h| self.subjects.contains(&format!("pod {}", h.netns)))
        })
    }
}
