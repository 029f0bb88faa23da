//! `netsnap diff` on two real captures of one lab node: between them a pod's MTU
//! changes, a service loses its endpoints and the conntrack table is filled until
//! the kernel drops. The diff must report the changes with their severity, and the
//! conntrack drop rate and count growth must equal what the two bundles' raw
//! `conntrack/stat.txt` and manifests give when computed here, independently.

use netsnap_analyzer::check::Severity;
use netsnap_analyzer::diff::{self, Category, Ignore, Input};
use netsnap_analyzer::{render, report};
use netsnap_schema::{layout, Bundle, ReadLimits};
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::collector::analyzer_bin;
use netsnap_tests::lab::{assert_no_leaks, require_lab, Lab};
use netsnap_tests::notice;
use std::path::Path;
use std::process::Command;

/// A counter of `conntrack/stat.txt` read from the raw text: the header names the
/// columns, each further row is one CPU in hex; `entries` repeats on every row (the
/// table's count), the others are summed.
fn raw_stat(bundle: &Bundle, column: &str) -> u64 {
    let text = String::from_utf8_lossy(bundle.file(layout::CONNTRACK_STAT).expect("stat.txt"));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let col = header.iter().position(|c| *c == column).expect(column);
    let values = lines.map(|l| {
        u64::from_str_radix(l.split_whitespace().nth(col).expect("column"), 16).expect("hex")
    });
    if column == "entries" {
        values.max().unwrap_or(0)
    } else {
        values.sum()
    }
}

/// When the statistics were read: the capture start (ms) plus the record's offset.
fn stat_read_ms(bundle: &Bundle) -> u64 {
    let m = &bundle.manifest;
    let start = m
        .captured_at_unix_ms
        .expect("the collector records captured_at_unix_ms");
    assert_eq!(start / 1000, m.captured_at_unix, "ms and seconds agree");
    start
        + m.source_at(layout::CONNTRACK_STAT)
            .expect("stat record")
            .started_ms
}

fn open(p: &Path) -> Bundle {
    Bundle::open(p, &ReadLimits::default()).expect("bundle opens")
}

#[test]
fn diff_of_two_captures_reports_the_changes_and_conntrack_rates() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("df-rates")
        .pods(3)
        .services(2)
        .traffic(false)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    let before_path = collect_lab(&lab, "before", &[]);
    lab.fault_mtu_mismatch(1).unwrap();
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_conntrack_table_full().unwrap();
    let after_path = collect_lab(&lab, "after", &[]);

    let (ob, nb) = (open(&before_path), open(&after_path));
    let (os, om, _) = report::prepare(&ob);
    let (ns, nm, _) = report::prepare(&nb);
    let d = diff::diff(
        &Input {
            origin: "before",
            sources: &os,
            model: &om,
        },
        &Input {
            origin: "after",
            sources: &ns,
            model: &nm,
        },
        &Ignore::default(),
    );
    let text = render::diff::render_text(&d);

    // The changes, on their subjects, with their severity.
    let subject_of = |kind: &str| {
        lab.faults()
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| f.subject.clone())
            .expect(kind)
    };
    let pod = subject_of("mtu_mismatch");
    let mtu = d
        .changes
        .iter()
        .find(|c| {
            c.category == Category::Link
                && c.subject == format!("{pod} eth0")
                && c.field.as_deref() == Some("mtu")
        })
        .unwrap_or_else(|| panic!("no MTU change of {pod} eth0:\n{text}"));
    assert_eq!(mtu.new.as_deref(), Some("9000"));
    assert_eq!(mtu.severity, Severity::Warning);
    let svc = subject_of("service_without_endpoints");
    let svc = svc.trim_start_matches("service ");
    let lost = d
        .changes
        .iter()
        .find(|c| {
            c.category == Category::Service
                && c.subject.starts_with(svc)
                && c.field.as_deref() == Some("endpoints")
        })
        .unwrap_or_else(|| panic!("no endpoint change of {svc}:\n{text}"));
    assert_eq!(lost.new.as_deref(), Some("0"));
    assert_eq!(lost.severity, Severity::Critical);
    assert!(
        d.changes
            .iter()
            .any(|c| c.category == Category::Endpoint && c.subject.starts_with(svc)),
        "{text}"
    );

    // The rates, against the raw counters and manifests.
    assert!(d.rates.comparable, "{:?}", d.rates.reason);
    let secs = (stat_read_ms(&nb) - stat_read_ms(&ob)) as f64 / 1000.0;
    assert_eq!(d.rates.interval_secs, Some(secs));
    let rate = |name: &str| {
        d.rates
            .counters
            .iter()
            .find(|r| r.counter == name)
            .unwrap_or_else(|| panic!("no {name} rate:\n{text}"))
    };
    let mut figures = Vec::new();
    for (counter, column) in [("drop", "drop"), ("count", "entries")] {
        let (old, new) = (raw_stat(&ob, column), raw_stat(&nb, column));
        let want = (new as f64 - old as f64) / secs;
        let r = rate(counter);
        assert_eq!((r.old, r.new), (old, new), "{counter}");
        let got = r.per_second.expect("a rate");
        assert!(
            (got - want).abs() <= want.abs() * 1e-12,
            "{counter}: {got} /s, computed here {want} /s"
        );
        assert!(got > 0.0, "{counter}: {got} /s");
        figures.push(format!("{counter} {old} -> {new} = {got:.1}/s"));
    }
    assert_eq!(rate("drop").severity, Severity::Warning);
    assert!(text.contains("Conntrack rates over"), "{text}");

    // The command line agrees and fails the CI gate.
    let out = Command::new(analyzer_bin().expect("netsnap"))
        .args(["diff", "--format", "json"])
        .args([&before_path, &after_path])
        .output()
        .expect("run netsnap diff");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("diff JSON");
    assert_eq!(json["version"], 1);
    assert_eq!(json["summary"]["critical"], d.summary.critical);

    notice(&format!(
        "lab_diff: {} changes ({} critical, {} warning, {} info) over {secs:.3} s; {}",
        d.changes.len(),
        d.summary.critical,
        d.summary.warning,
        d.summary.info,
        figures.join(", ")
    ));
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}
