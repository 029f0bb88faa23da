//! The engine never guesses a sysctl it cannot read: a bundle without the node's
//! sysctl sources (an sos report without its kernel plugin) makes bridged branches
//! unknown, naming the missing source, where a captured bundle without br_netfilter's
//! keys (module not loaded) bridges without iptables.

use super::reach::{self, Reachability};
use super::Prepared;
use crate::trace::path::Verdict;
use netsnap_schema::{Bundle, ReadLimits, SourceStatus};
use std::path::Path;

const BRIDGE_NF: &str = "net.bridge.bridge-nf-call-";

fn demo() -> Prepared {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo");
    let bundle = Bundle::from_dir(&dir, &ReadLimits::default()).expect("fixtures/demo");
    Prepared::new(&bundle)
}

/// Forgets br_netfilter's keys (captured sources without them: module not loaded).
fn without_bridge_keys(p: &mut Prepared) {
    p.model
        .node
        .sysctls
        .retain(|k, _| !k.starts_with(BRIDGE_NF));
    for n in p.model.netns.values_mut() {
        n.sysctls.retain(|k, _| !k.starts_with(BRIDGE_NF));
    }
}

/// Forgets every node sysctl and records both sources as the importer does.
fn without_sysctl_sources(p: &mut Prepared) {
    let root = p.model.root().map(|r| r.id.clone());
    p.model.node.sysctls.clear();
    p.model.node.sysctls_present = false;
    for n in p.model.netns.values_mut().filter(|n| n.is_root) {
        n.sysctls.clear();
    }
    for s in &mut p.model.sources {
        let node_sysctl = s.name == "host/sysctl" || (s.name == "netns/sysctl" && s.netns == root);
        if node_sysctl {
            s.status = SourceStatus::Unavailable;
            s.path = None;
            s.error = Some("the sos report has no kernel plugin output".into());
        }
    }
}

fn matrix(p: &Prepared) -> Reachability {
    reach::compute(&p.model, &p.graph, &p.firewall)
}

fn reasons(r: &Reachability, v: Verdict) -> Vec<String> {
    r.cells
        .iter()
        .flat_map(|c| c.failures())
        .filter(|f| f.verdict == v)
        .map(|f| f.reason.clone())
        .collect()
}

fn unknown_reasons(r: &Reachability) -> Vec<String> {
    r.cells
        .iter()
        .filter(|c| c.verdicts().contains_key(&Verdict::Unknown))
        .map(|c| c.command())
        .collect()
}

#[test]
fn missing_sysctl_sources_make_bridged_branches_unknown_not_failed() {
    let intact = matrix(&demo());
    let mut off = demo();
    without_bridge_keys(&mut off);
    let off = matrix(&off);
    let mut gap = demo();
    without_sysctl_sources(&mut gap);
    let reason = gap
        .model
        .node_sysctls_missing()
        .expect("no node sysctls: the gap is known");
    assert!(
        reason.contains("host/sysctl unavailable: the sos report has no kernel plugin output"),
        "{reason}"
    );
    let gap = matrix(&gap);

    // Module not loaded (a fact): replies between pods on one bridge skip conntrack.
    let failing = |r: &Reachability| r.cells.iter().filter(|c| c.failing() > 0.0).count();
    assert!(
        failing(&off) > failing(&intact),
        "br_netfilter off must fail more cells than the intact demo ({} vs {})",
        failing(&off),
        failing(&intact)
    );
    // Unknown source: no failure beyond the intact bundle's, the affected cells unknown.
    let nat =
        |r: &Reachability| reasons(r, Verdict::Refused).len() + reasons(r, Verdict::Dropped).len();
    assert!(
        nat(&gap) <= nat(&intact),
        "gap {} > intact {}",
        nat(&gap),
        nat(&intact)
    );
    assert!(failing(&gap) <= failing(&intact));
    assert!(
        !unknown_reasons(&gap).is_empty(),
        "no unknown cell without sysctls"
    );
    assert!(unknown_reasons(&intact).len() < unknown_reasons(&gap).len());
}

#[test]
fn a_trace_names_the_missing_source() {
    let mut gap = demo();
    without_sysctl_sources(&mut gap);
    let r = matrix(&gap);
    let cell = r
        .cells
        .iter()
        .find(|c| c.verdicts().contains_key(&Verdict::Unknown))
        .expect("an unknown cell");
    let from = cell.pod.to_string();
    let to = cell
        .to
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let ask = super::request::Ask {
        from,
        to,
        port: None,
        proto: None,
        size: None,
        established: false,
    };
    let traces = gap.trace(&ask).expect("trace");
    let unknown: Vec<&str> = traces
        .iter()
        .flat_map(|t| &t.verdicts)
        .filter(|b| b.verdict == Verdict::Unknown)
        .map(|b| b.reason.as_str())
        .collect();
    assert!(
        unknown
            .iter()
            .any(|r| r.contains("bridge-nf-call-iptables cannot be read")
                && r.contains("host/sysctl unavailable")),
        "{unknown:?}"
    );
}
