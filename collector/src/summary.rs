//! The one-screen summary printed on stderr after a capture: every node-wide source
//! on its own line, per-netns sources aggregated by kind.

use netsnap_schema::layout::NetnsFile;
use netsnap_schema::{Manifest, SourceRecord, SourceStatus};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn short(s: &str, n: usize) -> String {
    // Reasons quote node data (tool stderr, netns names): no raw control characters
    // may reach the terminal.
    let one_line = crate::source::printable(s).replace(['\n', '\t'], " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        let cut: String = one_line.chars().take(n.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Renders the summary. `written` is the output description (path and size).
pub fn render(m: &Manifest, netns: usize, pods: usize, written: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "netsnap-collect {}: {} — {} netns ({} pods) in {:.2}s",
        m.collector.version,
        crate::source::printable(&m.hostname),
        netns,
        pods,
        m.duration_ms as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "{:<26} {:<12} {:>10} {:>8}  note",
        "source", "status", "size", "time"
    );
    let mut node: Vec<&SourceRecord> = m.sources.iter().filter(|r| r.netns.is_none()).collect();
    node.sort_by(|a, b| a.name.cmp(&b.name));
    let per_netns: Vec<&SourceRecord> = m.sources.iter().filter(|r| r.netns.is_some()).collect();
    for r in node {
        let status = match r.truncated {
            Some(t) => format!("{} {}/{}", r.status.as_str(), t.kept, t.total),
            None => r.status.as_str().to_string(),
        };
        let note = r.error.as_deref().or(r.note.as_deref()).unwrap_or("");
        let size = if r.path.is_some() {
            human_bytes(r.bytes)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "{:<26} {:<12} {:>10} {:>6}ms  {}",
            r.name,
            short(&status, 12),
            size,
            r.duration_ms,
            short(note, 60)
        );
    }
    for f in NetnsFile::ALL {
        let recs: Vec<&&SourceRecord> = per_netns
            .iter()
            .filter(|r| r.name == f.source_name())
            .collect();
        if recs.is_empty() {
            continue;
        }
        let mut by_status: BTreeMap<SourceStatus, usize> = BTreeMap::new();
        for r in &recs {
            *by_status.entry(r.status).or_default() += 1;
        }
        let status = by_status
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let bytes: u64 = recs.iter().map(|r| r.bytes).sum();
        let max_ms = recs.iter().map(|r| r.duration_ms).max().unwrap_or(0);
        let example = recs
            .iter()
            .find(|r| r.status != SourceStatus::Ok && r.error.is_some())
            .map(|r| {
                format!(
                    "{}: {}",
                    r.netns.as_deref().unwrap_or(""),
                    r.error.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<26} {:<12} {:>10} {:>6}ms  {}",
            format!("{} ×{}", f.source_name(), recs.len()),
            short(&status, 40),
            human_bytes(bytes),
            max_ms,
            short(&example, 60)
        );
    }
    let problems = m
        .sources
        .iter()
        .filter(|r| matches!(r.status, SourceStatus::Failed | SourceStatus::Partial))
        .count();
    let _ = writeln!(
        out,
        "{written}{}",
        if problems > 0 {
            format!(" — {problems} source(s) failed or partial, see manifest.json")
        } else {
            String::new()
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aggregates() {
        let mut m = Manifest::new("0.1.0", "node-a", "6.18", "2026-01-01T00:00:00Z", 0);
        let mut r = SourceRecord::new("iptables-nft-save", SourceStatus::Ok);
        r.path = Some("netfilter/iptables-nft-save.txt".into());
        r.bytes = 2048;
        m.sources.push(r);
        for (id, st) in [("root", SourceStatus::Ok), ("p1", SourceStatus::Failed)] {
            let mut r = SourceRecord::new("netns/links", st).in_netns(id);
            if st == SourceStatus::Failed {
                r = r.with_error("setns: boom");
            }
            m.sources.push(r);
        }
        let s = render(&m, 2, 1, "wrote x");
        assert!(s.contains("iptables-nft-save"));
        assert!(s.contains("2.0 KiB"));
        assert!(s.contains("netns/links ×2"));
        assert!(s.contains("1 ok, 1 failed"));
        assert!(s.contains("p1: setns: boom"));
        assert!(s.contains("1 source(s) failed or partial"));
    }

    #[test]
    fn node_text_cannot_drive_the_terminal() {
        // A tool's stderr or a netns name from the node, quoted in a reason.
        let mut m = Manifest::new("0.1.0", "node-a", "6.18", "2026-01-01T00:00:00Z", 0);
        let r = SourceRecord::new("nft", SourceStatus::Failed)
            .with_error("nft exited with 1: \u{1b}]0;owned\u{7}\u{1b}[2J\rgone");
        m.sources.push(r);
        let r = SourceRecord::new("netns/links", SourceStatus::Failed)
            .in_netns("evil\u{1b}[31m")
            .with_error("gone");
        m.sources.push(r);
        let s = render(&m, 1, 0, "wrote x");
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        assert!(s.contains("\\x1b]0;owned"), "{s}");
    }
}
