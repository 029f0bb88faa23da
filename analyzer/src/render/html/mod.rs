//! `netsnap report`: one self-contained HTML file (inline CSS, JS and SVG; a
//! Content-Security-Policy that forbids every request) to attach to a ticket.
//!
//! Findings and picture shapes point at each other by element id: a finding lists the
//! ids of the shapes its subject names (`data-shapes`), a shape the ids of the findings
//! about it (`data-f`); the script only compares those ids. Every text from a bundle
//! is escaped ([`esc`]), and nothing from a bundle is ever an id, a class or markup.

mod sections;

use super::page::{NodePage, Pages};
use crate::check::{Finding, Severity};
use crate::layout::svg::body;
pub use crate::layout::svg::esc;
use crate::layout::{Panel, ShapeRef};
use std::collections::BTreeMap;
use std::fmt::Write;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");
/// The browser itself forbids any request: no network, no other file.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
/// Evidence lines shown per finding, and characters per excerpt.
const MAX_EVIDENCE: usize = 20;
const MAX_EXCERPT: usize = 300;

pub fn render(pages: &Pages) -> String {
    let names = pages.node_names();
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>netsnap report: {}</title><style>{CSS}</style></head><body>",
        esc(&names.join(", "))
    );
    header(&mut out, pages, &names);
    out.push_str("<div class=\"filter\"><input id=\"filter\" type=\"search\" placeholder=\"Filter findings by ID or subject\" aria-label=\"Filter findings by ID or subject\"></div><main>");
    if pages.cluster.is_some() {
        sections::cluster(&mut out, pages);
    }
    for (i, (n, name)) in pages.nodes.iter().zip(&names).enumerate() {
        node(&mut out, i, n, name);
    }
    let _ = writeln!(out, "</main><script>{JS}</script></body></html>");
    out
}

fn header(out: &mut String, pages: &Pages, names: &[String]) {
    let _ = write!(
        out,
        "<header class=\"top\"><h1>netsnap report</h1><table><tr><th>node</th><th>datapath</th><th>captured</th><th>sources</th><th>findings</th></tr>"
    );
    for (n, name) in pages.nodes.iter().zip(names) {
        let r = &n.report;
        let c = |k: &str| n.source_counts.get(k).copied().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{} <span>(kernel {})</span></td><td>{} ok, {} partial, {} failed, {} unavailable, {} skipped</td><td>{} critical, {} warning, {} info</td></tr>",
            esc(name),
            esc(&r.datapath.summary()),
            esc(&r.captured_at),
            esc(&r.kernel),
            c("ok"), c("partial"), c("failed"), c("unavailable"), c("skipped"),
            r.summary.critical, r.summary.warning, r.summary.info
        );
    }
    if let Some(c) = &pages.cluster {
        let s = c.summary;
        let _ = write!(
            out,
            "<tr><td>cluster</td><td colspan=\"3\">{} nodes</td><td>{} critical, {} warning, {} info</td></tr>",
            c.nodes.len(), s.critical, s.warning, s.info
        );
    }
    let _ = write!(
        out,
        "</table><p>netsnap {}</p></header>",
        env!("CARGO_PKG_VERSION")
    );
}

/// Element id of shape `s` of panel `p` of node `n`.
fn shape_id(prefix: &str, (p, s): ShapeRef) -> String {
    format!("{prefix}p{p}s{s}")
}

fn node(out: &mut String, i: usize, n: &NodePage, name: &str) {
    let prefix = format!("n{i}");
    let r = &n.report;
    let _ = write!(
        out,
        "<section class=\"node\" id=\"{prefix}\"><h2>Node {}</h2><p class=\"muted\">hostname {} · bundle <code>{}</code> · {} netns, {} pods, {} services, {} endpoints · {} files parsed, {} lines unrecognised</p><div class=\"cols\"><div class=\"findings\"><h3>Findings</h3>",
        esc(name),
        esc(&r.hostname),
        esc(&r.origin),
        r.counts.netns, r.counts.pods, r.counts.services, r.counts.endpoints,
        r.coverage.files, r.coverage.unrecognised_lines
    );
    let finding_ids: Vec<String> = (0..r.findings.len())
        .map(|f| format!("{prefix}f{f}"))
        .collect();
    let targets: Vec<Vec<String>> = n
        .targets
        .iter()
        .map(|t| t.iter().map(|&s| shape_id(&prefix, s)).collect())
        .collect();
    findings(out, &r.findings, &finding_ids, &targets, None);
    out.push_str("</div><div class=\"picture\"><h3>Topology</h3>");
    let mut about: BTreeMap<ShapeRef, Vec<&str>> = BTreeMap::new();
    for (f, t) in n.targets.iter().enumerate() {
        for &s in t {
            about.entry(s).or_default().push(&finding_ids[f]);
        }
    }
    for (pi, p) in n.picture.panels.iter().enumerate() {
        let extra = |si: usize| {
            let mut a = String::new();
            if let Some(f) = about.get(&(pi, si)) {
                let _ = write!(a, " data-f=\"{}\"", f.join(" "));
            }
            if let Some(target) = p.shapes[si].panel {
                let _ = write!(a, " data-panel=\"{prefix}p{target}\"");
            }
            a
        };
        panel(out, &format!("{prefix}p{pi}"), p, pi == 0, &extra);
    }
    out.push_str("</div></div>");
    if let Some(reach) = &n.reach {
        sections::reach(out, reach);
    }
    sections::sources(out, &n.sources);
    out.push_str("</section>");
}

/// A panel: the overview (or cluster) drawn as is, the others in a `<details>`.
pub(crate) fn panel(
    out: &mut String,
    id: &str,
    p: &Panel,
    bare: bool,
    extra: &dyn Fn(usize) -> String,
) {
    let svg = format!(
        "<svg class=\"pic\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">{}</svg>",
        esc(&p.title),
        body(p, &format!("{id}s"), extra),
        w = p.width.max(50),
        h = p.height.max(30),
    );
    let note = p
        .note
        .as_ref()
        .map(|n| format!("<p class=\"muted\">{}</p>", esc(n)))
        .unwrap_or_default();
    if bare {
        let _ = write!(
            out,
            "<div class=\"panel\" id=\"{id}\"><h4>{}</h4>{svg}{note}</div>",
            esc(&p.title)
        );
    } else {
        let _ = write!(
            out,
            "<details class=\"panel\" id=\"{id}\"{}><summary>{} <span class=\"muted\">({} faulty)</span></summary>{svg}{note}</details>",
            if p.open { " open" } else { "" },
            esc(&p.title),
            p.faulty()
        );
    }
}

/// Findings grouped by severity. `ids[i]`: the element id of finding `i`;
/// `targets[i]`: the shape ids it names; `nodes[i]`: the nodes of a cluster finding.
pub(crate) fn findings(
    out: &mut String,
    list: &[Finding],
    ids: &[String],
    targets: &[Vec<String>],
    nodes: Option<&[Vec<String>]>,
) {
    if list.is_empty() {
        out.push_str("<p>No findings.</p>");
        return;
    }
    for sev in Severity::ALL {
        let of: Vec<usize> = (0..list.len())
            .filter(|&i| list[i].severity == sev)
            .collect();
        if of.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<details class=\"sev\" open><summary>{} ({})</summary>",
            sev.as_str(),
            of.len()
        );
        for i in of {
            finding(
                out,
                &list[i],
                &ids[i],
                &targets[i],
                nodes.map(|n| n[i].as_slice()),
            );
        }
        out.push_str("</details>");
    }
}

fn finding(out: &mut String, f: &Finding, id: &str, targets: &[String], nodes: Option<&[String]>) {
    let sev = f.severity.as_str();
    let _ = write!(
        out,
        "<article class=\"finding sev-{sev}\" id=\"{id}\" tabindex=\"0\" data-id=\"{}\" data-subject=\"{}\" data-shapes=\"{}\"><p><span class=\"badge b-{sev}\">{sev}</span> <b>{}</b> <span class=\"subj\">{}</span></p><p class=\"t\">{}</p><p>{}</p>",
        esc(&f.id.to_string()),
        esc(&f.subject),
        targets.join(" "),
        esc(&f.id.to_string()),
        esc(&f.subject),
        esc(&f.title),
        esc(&f.message)
    );
    if let Some(nodes) = nodes {
        let _ = write!(out, "<p>Nodes: {}</p>", esc(&nodes.join(", ")));
    }
    if !f.evidence.is_empty() {
        out.push_str("<ul class=\"ev\">");
        for e in f.evidence.iter().take(MAX_EVIDENCE) {
            let _ = write!(out, "<li><code>{}</code>", esc(&e.location()));
            if !e.excerpt.is_empty() {
                let _ = write!(
                    out,
                    " <code>{}</code>",
                    esc(&crate::layout::clip(&e.excerpt, MAX_EXCERPT))
                );
            }
            out.push_str("</li>");
        }
        if f.evidence.len() > MAX_EVIDENCE {
            let _ = write!(
                out,
                "<li>… and {} more</li>",
                f.evidence.len() - MAX_EVIDENCE
            );
        }
        out.push_str("</ul>");
    }
    if !f.remedy.is_empty() {
        let _ = write!(out, "<p><b>Remedy:</b> {}</p>", esc(&f.remedy));
    }
    if !f.refs.is_empty() {
        let refs: Vec<String> = f
            .refs
            .iter()
            .map(|r| format!("<code>{}</code>", esc(r)))
            .collect();
        let _ = write!(out, "<p class=\"muted\">References: {}</p>", refs.join(" "));
    }
    let _ = write!(
        out,
        "<p class=\"muted\">{}</p></article>",
        if targets.is_empty() {
            "not in the picture"
        } else {
            "click to show it in the picture"
        }
    );
}
