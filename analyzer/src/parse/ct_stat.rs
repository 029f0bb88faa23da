//! `/proc/net/stat/nf_conntrack`: a header row of column names, then one row of hex
//! counters per CPU. Columns changed across kernels, so they are read by name.
//! Counters are summed over CPUs, except `entries`, which every row repeats.

use serde::{Deserialize, Serialize};

use super::coverage::{numbered_lines, Coverage, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConntrackStats {
    /// Column names as in the header.
    pub columns: Vec<String>,
    /// One row per CPU, values in column order.
    pub cpus: Vec<CpuRow>,
    /// Per column: the sum over CPUs (`entries`: taken once).
    pub totals: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuRow {
    pub line: usize,
    pub values: Vec<u64>,
}

impl ConntrackStats {
    /// Total of one column by its header name (`drop`, `early_drop`, `insert_failed`,
    /// `clash_resolve`/`clashres`, `chaintoolong`, `search_restart`, …).
    pub fn get(&self, name: &str) -> Option<u64> {
        self.totals.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Entries in the table (the `entries` column).
    pub fn entries(&self) -> Option<u64> {
        self.get("entries")
    }

    /// Clash resolutions; the column is `clashres` on recent kernels.
    pub fn clash_resolve(&self) -> Option<u64> {
        self.get("clashres").or_else(|| self.get("clash_resolve"))
    }
}

/// Columns that hold a global value repeated on every row rather than a per-CPU count.
const REPEATED: &[&str] = &["entries"];

pub fn parse_ct_stat(path: &str, text: &str) -> Parsed<ConntrackStats> {
    let mut cov = Coverage::new(path);
    let mut st = ConntrackStats::default();
    for (no, line) in numbered_lines(text) {
        let line = line.trim();
        if line.is_empty() {
            cov.ok();
            continue;
        }
        if st.columns.is_empty() {
            // The header is the row that is not all hex numbers.
            let words = || line.split_whitespace();
            if words().all(is_name) && words().any(|w| u64::from_str_radix(w, 16).is_err()) {
                st.columns = line.split_whitespace().map(str::to_string).collect();
                cov.ok();
            } else {
                cov.miss(no, line, "expected the header row of column names");
            }
            continue;
        }
        let values: Result<Vec<u64>, String> = line
            .split_whitespace()
            .map(|h| u64::from_str_radix(h, 16).map_err(|_| format!("bad hex value {h:?}")))
            .collect();
        match values {
            Ok(v) if v.len() == st.columns.len() => {
                st.cpus.push(CpuRow {
                    line: no,
                    values: v,
                });
                cov.ok();
            }
            Ok(v) => cov.miss(
                no,
                line,
                format!("{} values for {} columns", v.len(), st.columns.len()),
            ),
            Err(e) => cov.miss(no, line, e),
        }
    }
    st.totals = st
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let col = st.cpus.iter().map(|r| r.values[i]);
            let v = if REPEATED.contains(&name.as_str()) {
                col.max().unwrap_or(0)
            } else {
                col.fold(0u64, u64::saturating_add)
            };
            (name.clone(), v)
        })
        .collect();
    Parsed {
        model: st,
        coverage: cov,
    }
}

fn is_name(w: &str) -> bool {
    w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
