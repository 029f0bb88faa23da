//! The cluster overview, the reachability section and the source table.

use super::{esc, findings, panel};
use crate::layout::cluster::overview;
use crate::render::page::{Pages, ReachView, SourceRow};
use std::fmt::Write;

/// Cluster overview picture and the cluster findings; a finding points at the node
/// boxes of the nodes it involves.
pub(super) fn cluster(out: &mut String, pages: &Pages) {
    let Some(c) = &pages.cluster else { return };
    let nodes: Vec<(&str, &crate::cluster::NodeSummary)> = c
        .nodes
        .iter()
        .zip(&pages.nodes)
        .filter_map(|(cn, p)| Some((cn.name.as_str(), p.summary.as_ref()?)))
        .collect();
    let pic = overview(&nodes);
    let node_shape = |name: &str| -> Option<String> {
        pic.shapes
            .iter()
            .position(|s| s.subjects.iter().any(|x| x == name))
            .map(|i| format!("cps{i}"))
    };
    let list: Vec<crate::check::Finding> = c.findings.iter().map(|f| f.finding.clone()).collect();
    let ids: Vec<String> = (0..list.len()).map(|i| format!("cf{i}")).collect();
    let targets: Vec<Vec<String>> = c
        .findings
        .iter()
        .map(|f| f.nodes.iter().filter_map(|n| node_shape(n)).collect())
        .collect();
    let involved: Vec<Vec<String>> = c.findings.iter().map(|f| f.nodes.clone()).collect();
    out.push_str("<section id=\"cluster\"><h2>Cluster</h2><div class=\"cols\"><div class=\"findings\"><h3>Cluster findings</h3>");
    findings(out, &list, &ids, &targets, Some(&involved));
    out.push_str("</div><div class=\"picture\"><h3>Nodes and pod CIDRs</h3>");
    let extra = |si: usize| {
        let mut faulty_of = Vec::new();
        for (fi, t) in targets.iter().enumerate() {
            if t.iter().any(|id| *id == format!("cps{si}")) {
                faulty_of.push(ids[fi].as_str());
            }
        }
        if faulty_of.is_empty() {
            String::new()
        } else {
            format!(" data-f=\"{}\"", faulty_of.join(" "))
        }
    };
    let mut pic = pic.clone();
    for t in targets.iter().flatten() {
        if let Some(i) = t.strip_prefix("cps").and_then(|i| i.parse::<usize>().ok()) {
            pic.shapes[i].faulty = true;
        }
    }
    panel(out, "cp", &pic, true, &extra);
    out.push_str("<p class=\"muted\">A wire: the node has a route to that node's pods (solid: through an overlay device, dashed: through a gateway).</p></div></div></section>");
}

pub(super) fn reach(out: &mut String, r: &ReachView) {
    let _ = write!(
        out,
        "<section class=\"reach\"><h3>Reachability</h3><p>{} of {} pod → service paths fail ({} traced, {} answered from a pod of the same class).</p>",
        r.failing_total, r.cells, r.traced, r.reused
    );
    if !r.failing.is_empty() {
        out.push_str("<details open><summary>Failing traces</summary><table class=\"grid\"><tr><th>from pod</th><th>to service</th><th>address</th><th>verdict</th><th>fails</th><th>why</th><th>decided at</th><th>see</th></tr>");
        for f in &r.failing {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.0} %</td><td>{}</td><td><code>{}</code></td><td><code>netsnap trace {}</code></td></tr>",
                esc(&f.pod), esc(&f.service), esc(&f.address), f.verdict, f.percent,
                esc(&f.reason), esc(&f.at), esc(&f.command)
            );
        }
        out.push_str("</table>");
        if r.failing_total > r.failing.len() {
            let _ = write!(
                out,
                "<p class=\"muted\">… and {} more (`netsnap reach` lists them all).</p>",
                r.failing_total - r.failing.len()
            );
        }
        out.push_str("</details>");
    }
    matrix(out, r);
    out.push_str("</section>");
}

fn matrix(out: &mut String, r: &ReachView) {
    let m = &r.matrix;
    if m.rows.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<details{}><summary>Matrix: {} (failing / all paths)</summary><div style=\"overflow:auto\"><table class=\"grid matrix\"><tr><th></th>",
        if r.failing_total > 0 { " open" } else { "" },
        if m.per_pod { "pods × service ports" } else { "pod namespaces × service namespaces" }
    );
    for c in &m.cols {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr>");
    for (ri, row) in m.rows.iter().enumerate() {
        let _ = write!(out, "<tr><th>{}</th>", esc(row));
        for ci in 0..m.cols.len() {
            match m.cells.get(&(ri, ci)) {
                Some(&(fail, all)) => {
                    let _ = write!(
                        out,
                        "<td class=\"num {}\">{fail}/{all}</td>",
                        if fail > 0 { "bad" } else { "ok" }
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div></details>");
}

pub(super) fn sources(out: &mut String, rows: &[SourceRow]) {
    let _ = write!(
        out,
        "<details class=\"sources\"><summary><b>Sources</b> ({} captured)</summary><table class=\"grid\"><tr><th>source</th><th>netns</th><th>status</th><th>bytes</th><th>time</th><th>note</th></tr>",
        rows.len()
    );
    for s in rows {
        let _ = write!(
            out,
            "<tr class=\"st-{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{} ms</td><td>{}</td></tr>",
            s.status, esc(&s.name), esc(&s.netns), s.status, s.bytes, s.ms, esc(&s.note)
        );
    }
    out.push_str("</table></details>");
}
