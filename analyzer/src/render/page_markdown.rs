//! `netsnap report --format markdown`: the HTML report's structure for a ticket — the
//! header, the cluster, per node the findings, the picture (a standalone SVG file
//! written beside the Markdown and linked from it), the failing traces, the matrix
//! and the source table.

use super::markdown::{code, plain};
use super::page::{NodePage, Pages};
use crate::check::Severity;
use crate::layout::svg::standalone;
use std::fmt::Write;

/// The picture files of the report `stem` (`report` for `report.md`): one standalone
/// SVG per node, named `{stem}.{node}.svg` (the node as the report names it, reduced
/// to `[A-Za-z0-9_-]`, numbered when two nodes reduce alike).
pub fn pictures(pages: &Pages, stem: &str) -> Vec<(String, String)> {
    let mut names: Vec<String> = Vec::new();
    pages
        .nodes
        .iter()
        .enumerate()
        .zip(pages.node_names())
        .map(|((i, n), node)| {
            let safe: String = node
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .take(60)
                .collect();
            let mut name = format!("{stem}.{safe}.svg");
            if names.contains(&name) {
                name = format!("{stem}.{safe}-{i}.svg");
            }
            names.push(name.clone());
            let title = format!("netsnap topology of {}", n.report.hostname);
            (name, standalone(&n.picture, &title))
        })
        .collect()
}

/// The Markdown; `pictures`: the file names [`pictures`] gave, in node order.
pub fn render(pages: &Pages, pictures: &[String]) -> String {
    let mut out = String::from("# netsnap report\n\n| node | datapath | captured | sources | findings |\n|---|---|---|---|---|\n");
    let names = pages.node_names();
    for (n, name) in pages.nodes.iter().zip(&names) {
        let r = &n.report;
        let c = |k: &str| n.source_counts.get(k).copied().unwrap_or(0);
        let _ =
            writeln!(
            out,
            "| {} | {} | {} | {} ok, {} partial, {} failed | {} critical, {} warning, {} info |",
            plain(name),
            plain(&r.datapath.summary()),
            plain(&r.captured_at),
            c("ok"), c("partial"), c("failed"),
            r.summary.critical, r.summary.warning, r.summary.info
        );
    }
    out.push('\n');
    if let Some(c) = &pages.cluster {
        super::markdown::cluster(&mut out, c);
    }
    for (i, (n, name)) in pages.nodes.iter().zip(&names).enumerate() {
        node(&mut out, n, name, pictures.get(i).map(String::as_str));
    }
    out
}

fn node(out: &mut String, n: &NodePage, name: &str, picture: Option<&str>) {
    let r = &n.report;
    let _ = writeln!(
        out,
        "## Node {}\n\n- hostname: {}\n- bundle: {}\n- kernel: {}\n",
        plain(name),
        plain(&r.hostname),
        code(&r.origin),
        plain(&r.kernel)
    );
    if let Some(p) = picture {
        let _ = writeln!(
            out,
            "![topology of {}]({p})\n",
            plain(&r.hostname).replace(['[', ']'], "")
        );
    }
    let _ = writeln!(out, "### Findings\n");
    if r.findings.is_empty() {
        out.push_str("No findings.\n\n");
    }
    for sev in Severity::ALL {
        for f in r.findings.iter().filter(|f| f.severity == sev) {
            super::markdown::finding_at(out, f, &[], "####");
        }
    }
    if let Some(reach) = &n.reach {
        let _ = writeln!(
            out,
            "### Reachability\n\n{} of {} pod → service paths fail ({} traced, {} answered from a pod of the same class).\n",
            reach.failing_total, reach.cells, reach.traced, reach.reused
        );
        if !reach.failing.is_empty() {
            out.push_str("| from pod | to service | verdict | fails | why | decided at |\n|---|---|---|---:|---|---|\n");
            for f in &reach.failing {
                let _ = writeln!(
                    out,
                    "| {} | {} ({}) | {} | {:.0} % | {} | {} |",
                    plain(&f.pod),
                    plain(&f.service),
                    plain(&f.address),
                    f.verdict,
                    f.percent,
                    plain(&f.reason),
                    code(&f.at)
                );
            }
            out.push('\n');
        }
        matrix(out, &reach.matrix);
    }
    let _ = writeln!(out, "### Sources\n\n| source | netns | status | bytes | time | note |\n|---|---|---|---:|---:|---|");
    for s in &n.sources {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ms | {} |",
            plain(&s.name),
            plain(&s.netns),
            s.status,
            s.bytes,
            s.ms,
            plain(&s.note)
        );
    }
    out.push('\n');
}

fn matrix(out: &mut String, m: &super::page::Matrix) {
    if m.rows.is_empty() {
        return;
    }
    let cols: Vec<String> = m.cols.iter().map(|c| plain(c)).collect();
    let _ = writeln!(
        out,
        "Failing / all paths, {}:\n\n| | {} |\n|---|{}",
        if m.per_pod {
            "pods × service ports"
        } else {
            "pod namespaces × service namespaces"
        },
        cols.join(" | "),
        "---:|".repeat(cols.len())
    );
    for (ri, row) in m.rows.iter().enumerate() {
        let cells: Vec<String> = (0..m.cols.len())
            .map(|ci| {
                m.cells
                    .get(&(ri, ci))
                    .map(|(f, a)| format!("{f}/{a}"))
                    .unwrap_or_default()
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", plain(row), cells.join(" | "));
    }
    out.push('\n');
}
