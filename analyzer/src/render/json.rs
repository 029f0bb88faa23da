//! `--format json`: the [`Report`] as pretty JSON (schema in docs/analyzer-json.md).

use crate::report::Report;

pub fn render(report: &Report) -> String {
    // Serialising plain data structs cannot fail; an error would be a bug, shown as JSON.
    let mut s = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}
