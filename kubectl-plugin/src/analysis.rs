//! The cluster analysis of what arrived: the analyzer's library, exactly what
//! `netsnap analyze DIR/*.netsnap.tar.zst` runs (each node on its own, reduced to its
//! summary, then the cluster checks CLU001–CLU006 on the summaries). The text report
//! goes to stdout, the JSON report to `DIR/analysis.json`.

use crate::record::AnalysisRecord;
use anyhow::{Context, Result};
use netsnap_analyzer::batch::{self, default_jobs, Options};
use netsnap_analyzer::check::{Selection, Thresholds};
use netsnap_analyzer::cluster::ClusterReport;
use netsnap_analyzer::render;
use netsnap_analyzer::report::{BundleReport, Report};
use netsnap_schema::ReadLimits;
use std::path::{Path, PathBuf};

pub const REPORT_FILE: &str = "analysis.json";

/// Analyses `bundles` (paths in DIR) as one cluster; prints the text report.
pub fn run(
    bundles: &[PathBuf],
    dir: &Path,
    limits: &ReadLimits,
    color: bool,
) -> Result<AnalysisRecord> {
    let selection = Selection::default();
    let thresholds = Thresholds::default();
    let progress = |msg: &str| eprintln!("kubectl-netsnap: {msg}");
    let nodes = batch::analyze_all(
        bundles,
        &Options {
            limits,
            thresholds: &thresholds,
            selection: &selection,
            jobs: default_jobs(),
            summarise: bundles.len() > 1,
            leak_single: false,
            progress: &progress,
        },
    )?;
    let (reports, summaries): (Vec<BundleReport>, Vec<_>) =
        nodes.into_iter().map(|n| (n.report, n.summary)).unzip();
    let summaries: Vec<_> = summaries.into_iter().flatten().collect();
    let origins: Vec<String> = reports.iter().map(|r| r.origin.clone()).collect();
    let mut report = Report::new(reports);
    if summaries.len() > 1 {
        let cluster =
            ClusterReport::new(origins.iter().map(String::as_str), &summaries, &selection);
        report = report.with_cluster(cluster);
    }
    let json = render::json::render(&report);
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, &json).with_context(|| format!("writing {}", path.display()))?;
    print!("{}", render::text::render(&report, color));
    Ok(AnalysisRecord {
        status: "ok".into(),
        report: Some(REPORT_FILE.into()),
        summary: serde_json::to_value(report.summary()).ok(),
        reason: None,
    })
}
