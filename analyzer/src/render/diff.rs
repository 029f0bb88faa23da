//! `netsnap diff` output: text grouped by category with aligned columns, Markdown
//! tables for a ticket, and versioned JSON (docs/diff-json.md).

use super::markdown::{code, plain};
use crate::diff::{Change, ChangeKind, Diff, Rate, Rates, SideInfo};
use std::fmt::Write;

/// `old -> new`, `-` for a side without the value.
fn transition(c: &Change) -> String {
    match c.change {
        ChangeKind::Added if c.field.is_none() => c.new.clone().unwrap_or_default(),
        ChangeKind::Removed if c.field.is_none() => c.old.clone().unwrap_or_default(),
        _ => format!(
            "{} -> {}",
            c.old.as_deref().unwrap_or("-"),
            c.new.as_deref().unwrap_or("-")
        ),
    }
}

/// The field column: the field, or what happened to the whole subject.
fn what(c: &Change) -> String {
    match (&c.field, c.change) {
        (Some(f), ChangeKind::Changed) => f.clone(),
        (Some(f), k) => format!("{f} ({})", k.as_str()),
        (None, k) => format!("({})", k.as_str()),
    }
}

fn side_line(label: &str, s: &SideInfo) -> String {
    format!(
        "{label}  {}  node {}, captured {}, boot {}",
        s.origin,
        s.hostname,
        s.captured_at,
        s.boot_id.as_deref().unwrap_or("unknown")
    )
}

fn summary_line(d: &Diff) -> String {
    let s = d.summary;
    let mut line = match s.total() {
        0 => "No differences".to_string(),
        n => format!(
            "{n} difference{}: {} critical, {} warning, {} info",
            if n == 1 { "" } else { "s" },
            s.critical,
            s.warning,
            s.info
        ),
    };
    if d.ignored > 0 {
        line.push_str(&format!(" ({} left out by --ignore)", d.ignored));
    }
    line.push('.');
    line
}

/// Rows padded to their widest cell, the last column as is, indented.
fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; n];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = indent.to_string();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn per_second(r: &Rate) -> String {
    match r.per_second {
        Some(p) => format!("{p:+.2}/s"),
        None => "reset".into(),
    }
}

fn rates_heading(r: &Rates) -> String {
    match (&r.reason, r.interval_secs) {
        (Some(why), _) => format!("Rates: not comparable: {why}."),
        (None, Some(s)) => {
            format!("Conntrack rates over {s:.3} s between the captures (same node and boot):")
        }
        (None, None) => "Rates: none.".into(),
    }
}

pub fn render_text(d: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", side_line("OLD", &d.old));
    let _ = writeln!(out, "{}", side_line("NEW", &d.new));
    let _ = writeln!(out, "{}", summary_line(d));
    let mut i = 0;
    while i < d.changes.len() {
        let cat = d.changes[i].category;
        let group: Vec<&Change> = d.changes[i..]
            .iter()
            .take_while(|c| c.category == cat)
            .collect();
        i += group.len();
        let rows: Vec<Vec<String>> = group
            .iter()
            .map(|c| {
                vec![
                    c.severity.as_str().to_string(),
                    c.subject.clone(),
                    what(c),
                    transition(c),
                    c.note.clone(),
                ]
            })
            .collect();
        let _ = write!(out, "\n{cat}\n{}", aligned(&rows, "  "));
    }
    let _ = writeln!(out, "\n{}", rates_heading(&d.rates));
    if let Some(n) = &d.rates.interval_note {
        let _ = writeln!(out, "  ({n})");
    }
    if !d.rates.counters.is_empty() {
        let mut rows = vec![["counter", "old", "new", "delta", "rate", "", ""]
            .map(String::from)
            .to_vec()];
        rows.extend(d.rates.counters.iter().map(|r| {
            vec![
                r.counter.clone(),
                r.old.to_string(),
                r.new.to_string(),
                format!("{:+}", r.delta),
                per_second(r),
                if r.notable() { r.severity.as_str() } else { "" }.to_string(),
                r.note.clone(),
            ]
        }));
        out.push_str(&aligned(&rows, "  "));
    }
    out
}

pub fn render_markdown(d: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# netsnap diff: {} -> {}\n",
        plain(&d.old.hostname),
        plain(&d.new.hostname)
    );
    for (label, s) in [("OLD", &d.old), ("NEW", &d.new)] {
        let _ = writeln!(
            out,
            "- {label}: {} (node {}, captured {}, boot {})",
            code(&s.origin),
            plain(&s.hostname),
            s.captured_at,
            s.boot_id.as_deref().unwrap_or("unknown")
        );
    }
    let s = d.summary;
    let _ = writeln!(
        out,
        "\n{}\n\n| critical | warning | info |\n|---:|---:|---:|\n| {} | {} | {} |",
        summary_line(d),
        s.critical,
        s.warning,
        s.info
    );
    let mut last = None;
    for c in &d.changes {
        if last != Some(c.category) {
            let _ = writeln!(
                out,
                "\n## {}\n\n| severity | subject | field | value | note |\n|---|---|---|---|---|",
                c.category
            );
            last = Some(c.category);
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            c.severity,
            plain(&c.subject),
            plain(&what(c)),
            plain(&transition(c)),
            plain(&c.note)
        );
    }
    let _ = writeln!(out, "\n## Rates\n\n{}", plain(&rates_heading(&d.rates)));
    if let Some(n) = &d.rates.interval_note {
        let _ = writeln!(out, "\n({})", plain(n));
    }
    if !d.rates.counters.is_empty() {
        let _ = writeln!(
            out,
            "\n| counter | old | new | delta | rate | severity | note |\n|---|---:|---:|---:|---:|---|---|"
        );
        for r in &d.rates.counters {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:+} | {} | {} | {} |",
                r.counter,
                r.old,
                r.new,
                r.delta,
                per_second(r),
                if r.notable() { r.severity.as_str() } else { "" },
                plain(&r.note)
            );
        }
    }
    out
}

pub fn render_json(d: &Diff) -> String {
    // Serialising plain data structs cannot fail; an error would be a bug, shown as JSON.
    let mut s = serde_json::to_string_pretty(d)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}
