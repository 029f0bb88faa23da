//! Every check id is produced somewhere: by a fixture bundle (fixtures/analyzer/*,
//! fixtures/demo) or by a testkit fault knob ([`super::faults::FAULTS`]). Both are run
//! here through the real checks; nothing is taken from a hand list of ids. The cluster
//! checks (CLU) have their own faults ([`crate::cluster::testkit::FAULTS`]).

use super::catalog::CHECKS;
use super::faults::FAULTS;
use super::testkit::healthy;
use super::{CheckId, Context, Finding, Selection, Thresholds};
use netsnap_schema::{Bundle, ReadLimits};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Fixture bundles the analyzer tests use.
fn fixture_bundles() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("analyzer"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out.push(root.join("demo"));
    out
}

/// Runs every unit on its own and checks it reports only its own id, at a severity it
/// declares.
fn run_units(ctx: &Context<'_>, origin: &str, produced: &mut BTreeMap<CheckId, Vec<String>>) {
    for unit in CHECKS {
        for f in unit.run_on(ctx) {
            check_finding(unit.id, &f, origin);
            produced.entry(f.id).or_default().push(origin.to_string());
        }
    }
}

fn check_finding(unit: CheckId, f: &Finding, origin: &str) {
    assert_eq!(f.id, unit, "{origin}: unit {unit} reported {}", f.id);
    assert!(
        unit.unit().severities.contains(&f.severity),
        "{origin}: {unit} reported severity {}, which its unit does not declare",
        f.severity
    );
}

#[test]
fn every_check_is_produced_by_a_fixture_or_a_testkit_fault() {
    let mut produced: BTreeMap<CheckId, Vec<String>> = BTreeMap::new();
    for path in fixture_bundles() {
        let origin = path.display().to_string();
        let bundle =
            Bundle::open(&path, &ReadLimits::default()).unwrap_or_else(|e| panic!("{origin}: {e}"));
        let a = crate::report::analyze(&bundle, &Thresholds::default(), &Selection::default());
        let thresholds = Thresholds::default();
        let ctx = Context::new(&a.model, &a.graph, &thresholds).with_reach(a.reach.as_ref());
        run_units(&ctx, &origin, &mut produced);
    }
    for fault in FAULTS {
        let mut k = healthy();
        (fault.apply)(&mut k);
        let (model, graph) = k.build();
        let reach = k.reach(&model, &graph);
        let ctx = Context::new(&model, &graph, &k.thresholds).with_reach(Some(&reach));
        let before = produced.values().map(Vec::len).sum::<usize>();
        run_units(&ctx, fault.name, &mut produced);
        let after = produced.values().map(Vec::len).sum::<usize>();
        assert!(after > before, "fault {:?} produces no finding", fault.name);
    }
    for fault in crate::cluster::testkit::FAULTS {
        let mut nodes = crate::cluster::testkit::healthy_nodes();
        (fault.apply)(&mut nodes);
        let found = crate::cluster::check(&nodes, &Selection::default());
        assert!(
            !found.is_empty(),
            "cluster fault {:?} produces no finding",
            fault.name
        );
        for f in found {
            check_finding(f.finding.id, &f.finding, fault.name);
            produced
                .entry(f.finding.id)
                .or_default()
                .push(fault.name.to_string());
        }
    }
    let missing: Vec<&str> = CheckId::ALL
        .iter()
        .filter(|id| !produced.contains_key(id))
        .map(|id| id.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "no fixture bundle or testkit fault produces {missing:?}: add a fault knob to \
         analyzer/src/check/faults.rs (and use it in the check's unit test) or a fixture"
    );
}
