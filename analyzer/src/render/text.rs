//! Plain text for a terminal: summary first, then findings grouped by severity.
//! Colour (ANSI) only when the caller says stdout is a terminal.

use crate::check::{Finding, Severity};
use crate::cluster::ClusterReport;
use crate::report::{BundleReport, Report};
use std::fmt::Write;

/// Evidence lines shown per finding before "… and N more".
const EVIDENCE_SHOWN: usize = 5;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn severity(&self, sev: Severity, s: &str) -> String {
        let code = match sev {
            Severity::Critical => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        self.paint(code, s)
    }
}

pub fn render(report: &Report, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    for (i, b) in report.bundles.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        bundle(&mut out, b, &st);
    }
    if let Some(c) = &report.cluster {
        out.push('\n');
        cluster(&mut out, c, &st);
    }
    if report.bundles.len() > 1 {
        let s = report.summary();
        let _ = writeln!(
            out,
            "\n{} bundles{}: {} critical, {} warning, {} info",
            report.bundles.len(),
            if report.cluster.is_some() {
                " and the cluster"
            } else {
                ""
            },
            s.critical,
            s.warning,
            s.info
        );
    }
    out
}

fn summary_line(out: &mut String, s: crate::report::Summary, st: &Style) {
    let _ = writeln!(
        out,
        "  findings  {}, {}, {}",
        st.severity(Severity::Critical, &format!("{} critical", s.critical)),
        st.severity(Severity::Warning, &format!("{} warning", s.warning)),
        st.severity(Severity::Info, &format!("{} info", s.info)),
    );
}

/// The cluster section: its nodes, then the cluster findings by severity.
fn cluster(out: &mut String, c: &ClusterReport, st: &Style) {
    let _ = writeln!(
        out,
        "{} {} nodes",
        st.bold("netsnap cluster of"),
        c.nodes.len()
    );
    for n in &c.nodes {
        let _ = writeln!(out, "  node      {}  {}", n.name, st.dim(&n.origin));
    }
    summary_line(out, c.summary, st);
    if c.findings.is_empty() {
        let _ = writeln!(out, "\nNo cluster findings.");
        return;
    }
    for sev in Severity::ALL {
        let group: Vec<_> = c
            .findings
            .iter()
            .filter(|f| f.finding.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}",
            st.severity(
                sev,
                &format!("{} ({})", sev.as_str().to_uppercase(), group.len())
            )
        );
        for f in group {
            finding(out, &f.finding, &f.nodes, st);
        }
    }
}

fn bundle(out: &mut String, b: &BundleReport, st: &Style) {
    let c = &b.counts;
    let _ = writeln!(out, "{} {}", st.bold("netsnap analyze"), b.origin);
    let _ = writeln!(
        out,
        "  node      {} (kernel {}), captured {}",
        b.hostname, b.kernel, b.captured_at
    );
    let _ = writeln!(out, "  datapath  {}", b.datapath.summary());
    let _ = writeln!(
        out,
        "  contents  {} netns, {} pods, {} services ({} endpoints), {} conntrack entries, {} sources",
        c.netns, c.pods, c.services, c.endpoints, c.conntrack_entries, c.sources
    );
    let _ = writeln!(
        out,
        "  parsed    {} files, {} lines recognised, {} unrecognised",
        b.coverage.files, b.coverage.recognised_lines, b.coverage.unrecognised_lines
    );
    summary_line(out, b.summary, st);
    if b.findings.is_empty() {
        let _ = writeln!(out, "\nNo findings.");
        return;
    }
    for sev in Severity::ALL {
        let group: Vec<&Finding> = b.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}",
            st.severity(
                sev,
                &format!("{} ({})", sev.as_str().to_uppercase(), group.len())
            )
        );
        for f in group {
            finding(out, f, &[], st);
        }
    }
}

/// One finding; `nodes`: the nodes a cluster finding involves.
fn finding(out: &mut String, f: &Finding, nodes: &[String], st: &Style) {
    let pad = "          ";
    let _ = writeln!(
        out,
        "  {}  {}",
        st.bold(&format!("{:<6}", f.id)),
        st.bold(&f.subject)
    );
    let _ = writeln!(out, "{pad}{}", st.dim(&f.title));
    let _ = writeln!(out, "{pad}{}", f.message);
    if !nodes.is_empty() {
        let _ = writeln!(out, "{pad}nodes: {}", nodes.join(", "));
    }
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "{pad}evidence:");
        for e in f.evidence.iter().take(EVIDENCE_SHOWN) {
            if e.excerpt.is_empty() {
                let _ = writeln!(out, "{pad}  {}", e.location());
            } else {
                let _ = writeln!(out, "{pad}  {}  {}", e.location(), st.dim(&e.excerpt));
            }
        }
        if f.evidence.len() > EVIDENCE_SHOWN {
            let _ = writeln!(
                out,
                "{pad}  … and {} more",
                f.evidence.len() - EVIDENCE_SHOWN
            );
        }
    }
    if !f.remedy.is_empty() {
        let _ = writeln!(out, "{pad}remedy: {}", f.remedy);
    }
    for r in &f.refs {
        let _ = writeln!(out, "{pad}see: {r}");
    }
}
