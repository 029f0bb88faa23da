//! `netsnap inspect`: the manifest and the source table of a bundle, for people.

use crate::parse::Coverage;
use netsnap_schema::{Bundle, SourceStatus};
use std::fmt::Write;

/// The coverage table: per parsed file, what the parser recognised, and every line
/// it did not (capped at `max_lines` per file).
pub fn render_coverage(coverage: &[Coverage], max_lines: usize) -> String {
    let rows: Vec<[String; 3]> = coverage
        .iter()
        .map(|c| {
            [
                c.path.clone(),
                c.recognised.to_string(),
                c.unrecognised.len().to_string(),
            ]
        })
        .collect();
    let header = ["FILE", "RECOGNISED", "UNRECOGNISED"].map(String::from);
    let mut out = table(&header, &rows);
    for c in coverage.iter().filter(|c| !c.unrecognised.is_empty()) {
        let _ = writeln!(out, "\n{}: {} unrecognised", c.path, c.unrecognised.len());
        for u in c.unrecognised.iter().take(max_lines) {
            let _ = writeln!(out, "  line {}: {} ({})", u.line, u.text, u.reason);
        }
        if c.unrecognised.len() > max_lines {
            let _ = writeln!(out, "  … and {} more", c.unrecognised.len() - max_lines);
        }
    }
    out
}

/// Renders the manifest summary and one row per source.
pub fn render(bundle: &Bundle) -> String {
    let m = &bundle.manifest;
    let mut out = String::new();
    let _ = writeln!(out, "bundle     {}", bundle.origin);
    let _ = writeln!(out, "format     v{}", m.format_version);
    let _ = writeln!(
        out,
        "collector  {} {}",
        m.collector.name, m.collector.version
    );
    let _ = writeln!(out, "hostname   {}", m.hostname);
    let _ = writeln!(out, "kernel     {}", m.kernel);
    let _ = writeln!(out, "captured   {} ({} ms)", m.captured_at, m.duration_ms);
    if !m.options.is_empty() {
        let opts: Vec<String> = m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "options    {}", opts.join(" "));
    }
    let mut counts = [0usize; 5];
    for s in &m.sources {
        counts[status_rank(s.status)] += 1;
    }
    let _ = writeln!(
        out,
        "sources    {} ({} ok, {} partial, {} failed, {} unavailable, {} skipped), {} bytes uncompressed",
        m.sources.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        bundle.total_bytes()
    );
    let _ = writeln!(out);
    let rows: Vec<[String; 6]> = m
        .sources
        .iter()
        .map(|s| {
            let note = source_note(s);
            [
                s.name.clone(),
                s.netns.clone().unwrap_or_default(),
                s.status.as_str().to_string(),
                s.bytes.to_string(),
                format!("{}ms", s.duration_ms),
                if note.is_empty() {
                    s.path.clone().unwrap_or_default()
                } else {
                    note
                },
            ]
        })
        .collect();
    let header = ["SOURCE", "NETNS", "STATUS", "BYTES", "TIME", "PATH / NOTE"].map(String::from);
    out.push_str(&table(&header, &rows));
    out.push_str(&render_import(m));
    out
}

/// For a bundle `netsnap import` wrote: where each source came from (input, the
/// recogniser that read it, the lines of a pasted dump) and every input with its
/// notes (prompts, text around a dump, a cut line, files nobody claimed). Empty for a
/// collector's bundle.
pub fn render_import(m: &netsnap_schema::Manifest) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = m
        .sources
        .iter()
        .filter_map(|s| {
            let from = s.imported_from.as_ref()?;
            Some([
                s.name.clone(),
                s.netns.clone().unwrap_or_default(),
                from.recogniser.clone(),
                from.lines
                    .map(|[a, b]| format!("{a}-{b}"))
                    .unwrap_or_default(),
                from.path.clone(),
            ])
        })
        .collect();
    if !rows.is_empty() {
        let header = ["SOURCE", "NETNS", "RECOGNISER", "LINES", "IMPORTED FROM"].map(String::from);
        let _ = writeln!(out, "\nImported from");
        out.push_str(&table(&header, &rows));
    }
    let Some(import) = &m.import else {
        return out;
    };
    let _ = writeln!(out, "\nImport inputs ({})", import.inputs.len());
    for i in &import.inputs {
        let by = i.recogniser.as_deref().unwrap_or("not recognised");
        let _ = writeln!(out, "  {} ({by})", i.path);
        for n in &i.notes {
            let _ = writeln!(out, "    note: {n}");
        }
    }
    out
}

/// What the source table says about a source besides its status: the truncation and
/// the collector's error, if any.
pub fn source_note(s: &netsnap_schema::SourceRecord) -> String {
    let note = s.error.clone().unwrap_or_default();
    match s.truncated {
        Some(t) => format!(
            "truncated: kept {} of {}{}",
            t.kept,
            t.total,
            prefixed(&note)
        ),
        None => note,
    }
}

fn prefixed(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("; {note}")
    }
}

fn status_rank(s: SourceStatus) -> usize {
    match s {
        SourceStatus::Ok => 0,
        SourceStatus::Partial => 1,
        SourceStatus::Failed => 2,
        SourceStatus::Unavailable => 3,
        SourceStatus::Skipped => 4,
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{:width$}  ", cell, width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
