//! Behaviour lock for refactors: the findings (severity, id, subject) of every committed
//! fixture bundle, the demo, and generated scale bundles of both proxy modes must equal
//! the baseline in `tests/data/findings-baseline/`, recorded before the issue-11
//! redesign from the analyzer as it was then.
//!
//! What runs: CI runs the fixtures, the demo and the small scale bundles; set
//! `NETSNAP_BASELINE_SIZES=small,medium,large` (what `scripts/findings-baseline` does,
//! in a release build) for the larger ones. `NETSNAP_BLESS=1` rewrites the files — only
//! for a change that means to alter findings, and say so in the commit.

use anyhow::{bail, Context, Result};
use netsnap_scale::{write_bundle, Output, Plan, ProxyMode, Size, Spec};
use netsnap_tests::collector::{analyzer_bin, TempDir};
use netsnap_tests::notice;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `severity<TAB>id<TAB>subject`, one finding a line, in the report's order.
fn findings_of(bundle: &Path) -> Result<String> {
    let out = Command::new(analyzer_bin()?)
        .args(["analyze", "--format", "json"])
        .arg(bundle)
        .output()
        .context("running netsnap analyze")?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!(
            "netsnap analyze {} exited {:?}: {}",
            bundle.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).context("JSON report")?;
    let mut lines = String::new();
    for f in report["bundles"][0]["findings"]
        .as_array()
        .context("no findings array")?
    {
        let field = |k: &str| f[k].as_str().unwrap_or("?").to_string();
        lines.push_str(&format!(
            "{}\t{}\t{}\n",
            field("severity"),
            field("id"),
            field("subject")
        ));
    }
    Ok(lines)
}

fn compare(name: &str, bundle: &Path) -> Result<()> {
    let got = findings_of(bundle)?;
    let file = workspace()
        .join("tests/data/findings-baseline")
        .join(format!("{name}.tsv"));
    if std::env::var_os("NETSNAP_BLESS").is_some() {
        std::fs::write(&file, &got).with_context(|| file.display().to_string())?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    if got != want {
        bail!(
            "findings of {name} differ from {}\n--- baseline\n{want}--- now\n{got}",
            file.display()
        );
    }
    notice(&format!(
        "findings_baseline: {name}: {} findings identical",
        got.lines().count()
    ));
    Ok(())
}

#[test]
fn committed_fixtures_keep_their_findings() -> Result<()> {
    for name in ["healthy", "faulty", "ipvs"] {
        compare(
            &format!("fixture-{name}"),
            &workspace().join("fixtures/analyzer").join(name),
        )?;
    }
    compare("demo", &workspace().join("fixtures/demo"))
}

fn sizes() -> Vec<Size> {
    let wanted = std::env::var("NETSNAP_BASELINE_SIZES").unwrap_or_else(|_| "small".into());
    Size::ALL
        .into_iter()
        .filter(|s| wanted.split(',').any(|w| w.trim() == s.as_str()))
        .collect()
}

#[test]
fn scale_bundles_keep_their_findings() -> Result<()> {
    let tmp = TempDir::new("findings-baseline")?;
    for size in sizes() {
        for proxy in [ProxyMode::Iptables, ProxyMode::Nftables] {
            let mut spec = Spec::preset(size);
            spec.proxy = proxy;
            let plan = Plan::new(&spec)?;
            let name = format!("scale-{}-{}", size.as_str(), proxy.as_str());
            let out = tmp.path().join(format!("{name}.netsnap.tar.zst"));
            write_bundle(&plan, &Output::Archive(out.clone()))?;
            compare(&name, &out)?;
            std::fs::remove_file(&out).ok();
        }
    }
    Ok(())
}
