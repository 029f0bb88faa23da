//! The analyzer's findings on a redacted bundle equal its findings on the original,
//! modulo the mapping: every finding of the original, with its subject, message and
//! evidence rewritten by the same redaction, is a finding of the redacted bundle.

use crate::support;

use netsnap_analyzer::check::{Finding, Selection, Thresholds};
use netsnap_analyzer::report::analyze;
use netsnap_redact::Redactor;
use netsnap_schema::{Bundle, BundleWriter};
use std::path::Path;
use support::*;

fn findings(b: &Bundle) -> Vec<Finding> {
    analyze(b, &Thresholds::default(), &Selection::default()).findings
}

fn assert_findings_equal_modulo_mapping(source: &Path) {
    let original = open(source);
    let dir = tempfile::tempdir().unwrap();
    let mut r = Redactor::new(&test_key(4));
    r.collect(&original);
    let mut w = BundleWriter::new(dir.path());
    let manifest = r.redact_into(&original, &mut w).unwrap();
    let out = dir.path().join("r");
    w.write_dir(manifest, &out).unwrap();
    let redacted = open(&out);

    let before = findings(&original);
    assert!(!before.is_empty() || source.ends_with("healthy"));
    let mut expected: Vec<String> = before
        .iter()
        .map(|f| normalise_finding(f, Some(&mut r)))
        .collect();
    let mut got: Vec<String> = findings(&redacted)
        .iter()
        .map(|f| normalise_finding(f, None))
        .collect();
    expected.sort();
    got.sort();
    if expected != got {
        let only_expected: Vec<_> = expected.iter().filter(|e| !got.contains(e)).collect();
        let only_got: Vec<_> = got.iter().filter(|g| !expected.contains(g)).collect();
        panic!(
            "{}: findings differ\n--- expected (original, mapped) only:\n{}\n--- redacted only:\n{}",
            source.display(),
            only_expected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
            only_got.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
        );
    }
}

#[test]
fn demo_findings_survive_redaction() {
    assert_findings_equal_modulo_mapping(&fixture("demo"));
}

#[test]
fn analyzer_fixture_findings_survive_redaction() {
    for name in ["analyzer/healthy", "analyzer/faulty", "analyzer/ipvs"] {
        assert_findings_equal_modulo_mapping(&fixture(name));
    }
}

#[test]
fn real_format_bundle_findings_survive_redaction() {
    let dir = tempfile::tempdir().unwrap();
    for nft in [Nft::Vmap, Nft::Direct] {
        assert_findings_equal_modulo_mapping(&build_bundle(dir.path(), nft));
    }
}
