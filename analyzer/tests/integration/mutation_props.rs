//! The analyzer never panics on arbitrary mutations of a valid bundle: entries of the
//! demo bundle (captured from a lab) get bytes flipped, inserted, deleted or cut off,
//! the bundle is re-sealed with a correct manifest, and the whole pipeline runs.

use netsnap_analyzer::check::{Selection, Thresholds};
use netsnap_analyzer::report;
use netsnap_schema::{Bundle, BundleWriter, ReadLimits, SourceRecord};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn demo() -> &'static Bundle {
    static DEMO: OnceLock<Bundle> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo");
        Bundle::open(&dir, &ReadLimits::default()).expect("demo bundle")
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Flip { at, byte }),
        (
            any::<usize>(),
            proptest::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'\n'),
                    Just(b' '),
                    Just(b'"'),
                    Just(b'{'),
                    Just(b'=')
                ],
                1..40
            )
        )
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (any::<usize>(), 1..200usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(data: &mut Vec<u8>, e: &Edit) {
    let n = data.len();
    match e {
        Edit::Flip { at, byte } if n > 0 => data[at % n] = *byte,
        Edit::Insert { at, bytes } => {
            let at = if n == 0 { 0 } else { at % (n + 1) };
            data.splice(at..at, bytes.iter().copied());
        }
        Edit::Delete { at, len } if n > 0 => {
            let at = at % n;
            data.drain(at..(at + len).min(n));
        }
        Edit::Truncate { at } if n > 0 => data.truncate(at % n),
        _ => {}
    }
}

/// The demo bundle with `edits` applied to the entries picked by `targets`, re-sealed.
fn mutated(targets: &[usize], edits: &[Edit]) -> Bundle {
    let b = demo();
    let paths: Vec<String> = b.paths().map(str::to_string).collect();
    let spool = std::env::temp_dir();
    let mut w = BundleWriter::new(&spool);
    for (i, path) in paths.iter().enumerate() {
        let mut data = b.file(path).unwrap_or_default().to_vec();
        for (t, e) in targets.iter().zip(edits) {
            if t % paths.len() == i {
                apply(&mut data, e);
            }
        }
        let mut record =
            b.manifest.source_at(path).cloned().unwrap_or_else(|| {
                SourceRecord::new(path.as_str(), netsnap_schema::SourceStatus::Ok)
            });
        record.path = Some(path.clone());
        w.add_bytes(record, &data).unwrap();
    }
    for r in b.manifest.sources.iter().filter(|r| r.path.is_none()) {
        w.add_record(r.clone()).unwrap();
    }
    let mut m = b.manifest.clone();
    m.sources.clear();
    let (_, bytes) = w.write_archive_to(m, Vec::new()).unwrap();
    Bundle::from_archive(bytes.as_slice(), "mutated", &ReadLimits::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn analyzer_never_panics_on_mutated_bundles(
        targets in proptest::collection::vec(any::<usize>(), 1..6),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let bundle = mutated(&targets, &edits);
        let analysis = report::analyze(&bundle, &Thresholds::default(), &Selection::default());
        // Whatever was damaged, the report still renders.
        let r = report::BundleReport::new("mutated", &analysis);
        prop_assert!(serde_json::to_string(&r).is_ok());
    }
}

#[test]
fn unmutated_demo_round_trips_through_the_resealing() {
    let original = report::analyze(demo(), &Thresholds::default(), &Selection::default());
    let resealed = mutated(&[], &[]);
    let again = report::analyze(&resealed, &Thresholds::default(), &Selection::default());
    let ids = |a: &report::Analysis<'_>| {
        a.findings
            .iter()
            .map(|f| (f.id, f.subject.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&original), ids(&again));
    assert!(!original.findings.is_empty());
}
