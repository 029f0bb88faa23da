//! `netsnap import` of a real `sos report` (Debian's sosreport) run against a lab node,
//! confined to the lab by scripts/sos-confined, compared with a direct capture of
//! the same node: every finding whose evidence sos collected must be found again,
//! nothing else; what sos lacks is listed as unavailable. One sos run (a few seconds
//! on a small node, bounded by a timeout).

use netsnap_schema::{Bundle, ReadLimits, SourceStatus};
use netsnap_tests::collect_support::{collect_lab, with_built_lab};
use netsnap_tests::import_compare::compare;
use netsnap_tests::lab::{require_lab, Lab};
use netsnap_tests::notice;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SOS_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs scripts/sos-confined on the lab; returns the report archive.
fn sos_report(lab: &Lab) -> PathBuf {
    let out = lab.dir().join("sos-out");
    let start = Instant::now();
    let run = Command::new("timeout")
        .arg(SOS_TIMEOUT.as_secs().to_string())
        .arg(repo().join("scripts/sos-confined"))
        .arg(lab.name())
        .arg(&out)
        .output()
        .expect("run scripts/sos-confined");
    assert!(run.status.success(), "sos report failed ({}): {}", run.status, String::from_utf8_lossy(&run.stderr));
    notice(&format!("sos report of the lab node: {:.1} s", start.elapsed().as_secs_f64()));
    std::fs::read_dir(&out)
        .expect("sos output dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .expect("an sosreport .tar.xz")
}

#[test]
fn an_sos_report_of_a_lab_node_gives_the_direct_captures_findings() {
    let Some(_env) = require_lab() else { return };
    if Command::new("sos").arg("--help").output().is_err() {
        panic!("sos is not installed (scripts/test installs sosreport)");
    }
    let b = Lab::builder("impsos").pods(3).services(4);
    with_built_lab(b, |lab| {
        lab.fault_service_without_endpoints(1)?;
        lab.fault_mtu_mismatch(0)?;
        lab.fault_no_default_route(2)?;
        let direct = collect_lab(lab, "direct", &[]);
        let direct = Bundle::open(&direct, &ReadLimits::default())?;
        let report = sos_report(lab);
        let limits = ReadLimits::default();
        let draft = netsnap_import::import(&[report], &limits)?;
        let imported = netsnap_import::into_bundle(draft, "sos", &limits)?;
        let unavailable: Vec<String> = imported
            .manifest
            .sources
            .iter()
            .filter(|s| s.status == SourceStatus::Unavailable)
            .map(|s| format!("{}{}", s.name, s.netns.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()))
            .collect();
        for expected in ["netns/sockets (root)", "host/facts", "iptables-legacy-save", "nft"] {
            assert!(unavailable.iter().any(|u| u == expected), "{expected} not listed unavailable: {unavailable:?}");
        }
        let c = compare(&direct, &imported);
        notice(&c.summary("sos report"));
        notice(&format!("sos report: not covered: {}", c.uncovered.join("; ")));
        assert!(c.missing.is_empty(), "covered findings not found again:\n{}", c.missing.join("\n"));
        assert!(c.extra.is_empty(), "findings the direct capture does not have:\n{}", c.extra.join("\n"));
        assert!(c.matched.len() >= 3, "too few findings compared: {:?}", c.matched);
        Ok(())
    })
    .expect("lab");
}
