//! `netsnap trace` output: text that reads like traceroute for netfilter (one line per
//! hop, then the verdict of each branch with its probability), versioned JSON
//! (docs/trace-json.md) and dot (one cluster per branch, coloured by verdict).

use crate::trace::path::{Branch, Verdict};
use crate::trace::request::Trace;
use serde::Serialize;
use std::fmt::Write as _;

/// Version of the trace JSON; bumped on any incompatible change.
pub const TRACE_JSON_VERSION: u32 = 1;

fn title(t: &Trace) -> String {
    let r = &t.request;
    let dst = crate::model::services::sockaddr(r.dst, r.dport);
    let to = if r.to == dst || r.to == r.dst.to_string() {
        format!("{dst}/{}", r.proto.name())
    } else {
        format!("{} {dst}/{}", r.to, r.proto.name())
    };
    let arrives = r
        .arrives_on
        .as_ref()
        .map(|i| format!(", arriving on {i}"))
        .unwrap_or_default();
    let state = if r.established { " (established)" } else { "" };
    let node = t
        .node
        .as_ref()
        .map(|n| format!(" on node {n}"))
        .unwrap_or_default();
    format!("trace {} ({}{arrives}){node} → {to}{state}", t.from, r.src)
}

/// The share of each verdict, e.g. `delivered 66.7 %, refused 33.3 %`.
pub fn summary(verdicts: &[Branch]) -> String {
    let mut by: std::collections::BTreeMap<Verdict, f64> = Default::default();
    for b in verdicts {
        *by.entry(b.verdict).or_default() += b.probability;
    }
    by.iter()
        .map(|(v, p)| format!("{} {:.1} %", v.as_str(), p * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render_text(traces: &[Trace]) -> String {
    let mut s = String::new();
    for t in traces {
        let _ = writeln!(s, "{}", title(t));
        let _ = writeln!(s, "  {}", summary(&t.verdicts));
        let n = t.verdicts.len();
        for (i, b) in t.verdicts.iter().enumerate() {
            let endpoint = b
                .endpoint
                .as_deref()
                .map(|e| format!(" {e}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "\n  branch {} of {n}: {}{endpoint} (p = {:.3})",
                i + 1,
                b.verdict.as_str(),
                b.probability
            );
            let mut noted_order = false;
            for (k, h) in b.hops.iter().enumerate() {
                // Text keeps what decided: chains that only passed the packet by their
                // ACCEPT policy, and the backend-order note after its first time, are
                // left to `--format json`, which lists every hop.
                let order_note = h.what.contains("run at the same priority");
                if h.what.eq_ignore_ascii_case("policy accept") || (order_note && noted_order) {
                    continue;
                }
                noted_order |= order_note;
                let iface = h
                    .iface
                    .as_deref()
                    .map(|i| format!(" {i}"))
                    .unwrap_or_default();
                let at = h
                    .evidence
                    .as_ref()
                    .map(|e| format!("  [{}]", e.location()))
                    .unwrap_or_default();
                // Across nodes, each hop says which node it is on.
                let node = h
                    .node
                    .as_deref()
                    .map(|n| format!("{n}: "))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  {:>3}  {node}{}{iface}  {}: {}{at}",
                    k + 1,
                    h.netns,
                    h.at,
                    h.what
                );
            }
            let _ = writeln!(s, "       → {}: {}", b.verdict.as_str(), b.reason);
        }
        s.push('\n');
    }
    s
}

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u32,
    traces: &'a [Trace],
}

pub fn render_json(traces: &[Trace]) -> String {
    let doc = Document {
        format: "netsnap-trace",
        version: TRACE_JSON_VERSION,
        traces,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// The colour of a verdict in dot output.
pub fn colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Delivered => "forestgreen",
        Verdict::Refused => "orange",
        Verdict::Rejected => "orangered",
        Verdict::Dropped => "red",
        Verdict::NoRoute => "purple",
        Verdict::LeftNode => "steelblue",
        Verdict::Unknown => "gray50",
    }
}

pub fn render_dot(traces: &[Trace]) -> String {
    let mut s = String::from("digraph trace {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
    for (ti, t) in traces.iter().enumerate() {
        let start = format!("t{ti}");
        let _ = writeln!(
            s,
            "  {start} [label=\"{}\", shape=oval];",
            super::dot::esc(&title(t))
        );
        for (bi, b) in t.verdicts.iter().enumerate() {
            let c = colour(b.verdict);
            let _ = writeln!(
                s,
                "  subgraph cluster_{ti}_{bi} {{\n    label=\"{} p={:.3}\"; color={c};",
                b.verdict.as_str(),
                b.probability
            );
            let mut prev = start.clone();
            for (hi, h) in b.hops.iter().enumerate() {
                let id = format!("t{ti}b{bi}h{hi}");
                let place = match &h.node {
                    Some(n) => format!("{n}: {}", h.netns),
                    None => h.netns.clone(),
                };
                let label = format!("{place}\\n{}: {}", h.at, h.what);
                let _ = writeln!(s, "    {id} [label=\"{}\"];", super::dot::esc(&label));
                let _ = writeln!(s, "    {prev} -> {id};");
                prev = id;
            }
            let end = format!("t{ti}b{bi}end");
            let _ = writeln!(
                s,
                "    {end} [label=\"{}\", shape=octagon, color={c}, fontcolor={c}];",
                super::dot::esc(&format!("{}: {}", b.verdict.as_str(), b.reason))
            );
            let _ = writeln!(s, "    {prev} -> {end} [color={c}];\n  }}");
        }
    }
    s.push_str("}\n");
    s
}

/// The verdict a cell shows: its most likely failure, else its most likely verdict.
fn cell_verdict(c: &crate::trace::reach::Cell<'_>) -> Verdict {
    c.failures()
        .iter()
        .max_by(|a, b| a.probability.total_cmp(&b.probability))
        .map(|f| f.verdict)
        .or_else(|| {
            c.verdicts()
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(v, _)| *v)
        })
        .unwrap_or(Verdict::Unknown)
}

/// The pods × service ports matrix: one row per pod, a cell per service port coloured
/// by verdict (a failing share shows as its percentage).
pub fn render_matrix_dot(reach: &crate::trace::reach::Reachability) -> String {
    let mut pods: Vec<&str> = reach.cells.iter().map(|c| c.pod).collect();
    pods.sort();
    pods.dedup();
    let mut services: Vec<&str> = reach.cells.iter().map(|c| c.service).collect();
    services.sort();
    services.dedup();
    let by: std::collections::HashMap<(&str, &str), crate::trace::reach::Cell<'_>> = reach
        .cells
        .iter()
        .map(|c| ((c.pod, c.service), c))
        .collect();
    let html = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut s = String::from("digraph reach {\n  node [shape=plaintext, fontsize=9];\n  matrix [label=<<table border=\"0\" cellborder=\"1\" cellspacing=\"0\">\n    <tr><td></td>");
    for svc in &services {
        let _ = write!(s, "<td><b>{}</b></td>", html(svc));
    }
    s.push_str("</tr>\n");
    for pod in &pods {
        let _ = write!(s, "    <tr><td align=\"left\"><b>{}</b></td>", html(pod));
        for svc in &services {
            match by.get(&(*pod, *svc)) {
                Some(c) => {
                    let v = cell_verdict(c);
                    let text = if c.failing() > 0.0 && c.failing() < 0.999 {
                        format!("{} {:.0}%", v.as_str(), c.failing() * 100.0)
                    } else {
                        v.as_str().to_string()
                    };
                    let _ = write!(
                        s,
                        "<td bgcolor=\"{}\"><font color=\"white\">{text}</font></td>",
                        colour(v)
                    );
                }
                None => s.push_str("<td></td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("  </table>>];\n}\n");
    s
}

/// Failing cells, one line each, then a summary.
pub fn render_matrix_text(reach: &crate::trace::reach::Reachability) -> String {
    let mut s = String::new();
    let failing: Vec<crate::trace::reach::Cell<'_>> =
        reach.cells.iter().filter(|c| c.failing() > 0.0).collect();
    for c in &failing {
        let f = &c.failures()[0];
        let at = f
            .deciding
            .as_ref()
            .and_then(|h| h.evidence.as_ref())
            .map(|e| format!("  [{}]", e.location()))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{} → {} ({}): {} {:.0} % — {}{at}",
            c.pod,
            c.service,
            c.address,
            f.verdict.as_str(),
            c.failing() * 100.0,
            f.reason
        );
    }
    let _ = writeln!(
        s,
        "{} of {} pod → service paths fail ({} traced, {} answered from a pod of the same class)",
        failing.len(),
        reach.cells.len(),
        reach.traced,
        reach.reused
    );
    s
}

pub fn render_matrix_json(reach: &crate::trace::reach::Reachability) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        format: &'static str,
        version: u32,
        reachability: &'a crate::trace::reach::Reachability,
    }
    let doc = Doc {
        format: "netsnap-reach",
        version: TRACE_JSON_VERSION,
        reachability: reach,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
