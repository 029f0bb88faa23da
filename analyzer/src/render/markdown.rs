//! `--format markdown`: a report to paste into a ticket.

use crate::check::{Finding, Severity};
use crate::cluster::ClusterReport;
use crate::report::Report;
use std::fmt::Write;

/// Inline code that survives backticks in the text.
pub(crate) fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {} ``", s)
    } else {
        format!("`{s}`")
    }
}

/// Text safe in a table cell or a heading.
pub(crate) fn plain(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for b in &report.bundles {
        let _ = writeln!(out, "# netsnap report: {}\n", plain(&b.hostname));
        let c = &b.counts;
        let _ = writeln!(out, "- bundle: {}", code(&b.origin));
        let _ = writeln!(out, "- captured: {} (kernel {})", b.captured_at, b.kernel);
        let _ = writeln!(out, "- datapath: {}", plain(&b.datapath.summary()));
        let _ = writeln!(
            out,
            "- contents: {} netns, {} pods, {} services ({} endpoints), {} conntrack entries, {} sources",
            c.netns, c.pods, c.services, c.endpoints, c.conntrack_entries, c.sources
        );
        let _ = writeln!(
            out,
            "- parsed: {} files, {} lines recognised, {} unrecognised\n",
            b.coverage.files, b.coverage.recognised_lines, b.coverage.unrecognised_lines
        );
        let s = b.summary;
        let _ = writeln!(
            out,
            "| critical | warning | info |\n|---:|---:|---:|\n| {} | {} | {} |\n",
            s.critical, s.warning, s.info
        );
        if b.findings.is_empty() {
            let _ = writeln!(out, "No findings.\n");
            continue;
        }
        let _ = writeln!(
            out,
            "| severity | id | subject | title |\n|---|---|---|---|"
        );
        for f in &b.findings {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                f.severity,
                f.id,
                plain(&f.subject),
                plain(&f.title)
            );
        }
        out.push('\n');
        for sev in Severity::ALL {
            for f in b.findings.iter().filter(|f| f.severity == sev) {
                finding(&mut out, f, &[]);
            }
        }
    }
    if let Some(c) = &report.cluster {
        cluster(&mut out, c);
    }
    out
}

/// The cluster section: nodes, a table of the cluster findings, then each finding.
pub(crate) fn cluster(out: &mut String, c: &ClusterReport) {
    let _ = writeln!(out, "# netsnap cluster report: {} nodes\n", c.nodes.len());
    for n in &c.nodes {
        let _ = writeln!(out, "- {}: {}", plain(&n.name), code(&n.origin));
    }
    let s = c.summary;
    let _ = writeln!(
        out,
        "\n| critical | warning | info |\n|---:|---:|---:|\n| {} | {} | {} |\n",
        s.critical, s.warning, s.info
    );
    if c.findings.is_empty() {
        let _ = writeln!(out, "No cluster findings.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| severity | id | subject | nodes |\n|---|---|---|---|"
    );
    for f in &c.findings {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            f.finding.severity,
            f.finding.id,
            plain(&f.finding.subject),
            plain(&f.nodes.join(", "))
        );
    }
    out.push('\n');
    for sev in Severity::ALL {
        for f in c.findings.iter().filter(|f| f.finding.severity == sev) {
            finding(out, &f.finding, &f.nodes);
        }
    }
}

/// One finding; `nodes`: the nodes a cluster finding involves.
fn finding(out: &mut String, f: &Finding, nodes: &[String]) {
    finding_at(out, f, nodes, "##");
}

/// [`finding`] under a heading of the given level (`####` inside a node's section).
pub(crate) fn finding_at(out: &mut String, f: &Finding, nodes: &[String], heading: &str) {
    let _ = writeln!(
        out,
        "{heading} {} {} — {}\n",
        f.severity.as_str().to_uppercase(),
        f.id,
        plain(&f.subject)
    );
    let _ = writeln!(out, "**{}**\n", plain(&f.title));
    let _ = writeln!(out, "{}\n", f.message);
    if !nodes.is_empty() {
        let _ = writeln!(out, "Nodes: {}\n", plain(&nodes.join(", ")));
    }
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "Evidence:\n");
        for e in &f.evidence {
            if e.excerpt.is_empty() {
                let _ = writeln!(out, "- {}", code(&e.location()));
            } else {
                let _ = writeln!(out, "- {} {}", code(&e.location()), code(&e.excerpt));
            }
        }
        out.push('\n');
    }
    if !f.remedy.is_empty() {
        let _ = writeln!(out, "Remedy: {}\n", f.remedy);
    }
    if !f.refs.is_empty() {
        let refs: Vec<String> = f.refs.iter().map(|r| format!("<{r}>")).collect();
        let _ = writeln!(out, "References: {}\n", refs.join(", "));
    }
}
