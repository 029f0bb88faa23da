//! `samples/counters.json` (`netsnap-collect --samples N`): the counter readings the
//! collector took during the capture, reduced to what rates need — per reading its
//! time and the conntrack stat totals and count.
//!
//! A "line" is one reading of the `samples` array (1-based). A reading whose conntrack
//! stat or count does not parse is an unrecognised line with the reason; one the
//! collector could not read (an `error` reading) is recognised and carries no value.
//! Invalid JSON, or JSON that is not the collector's, is one unrecognised line 1.

use super::coverage::{Coverage, Parsed};
use super::ct_stat::parse_ct_stat;
use netsnap_schema::model::{CounterSample, CounterSamples, Reading};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterReadings {
    pub interval_ms: u64,
    pub requested: u32,
    pub readings: Vec<CounterReading>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterReading {
    /// 1-based index in the file (the evidence's line).
    pub index: usize,
    /// Milliseconds after the capture started.
    pub at_ms: u64,
    /// Conntrack stat columns summed over CPUs (`clash_resolve` under that name).
    pub conntrack: Option<BTreeMap<String, u64>>,
    pub conntrack_count: Option<u64>,
}

pub fn parse_counter_samples(path: &str, text: &str) -> Parsed<CounterReadings> {
    let mut cov = Coverage::new(path);
    let mut model = CounterReadings::default();
    let file: CounterSamples = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.line().max(1);
            let shown = text.lines().nth(line - 1).unwrap_or("");
            cov.miss(
                line,
                shown,
                format!("not the collector's counter samples: {e}"),
            );
            return Parsed {
                model,
                coverage: cov,
            };
        }
    };
    model.interval_ms = file.interval_ms;
    model.requested = file.requested;
    for (i, s) in file.samples.iter().enumerate() {
        match reading(i + 1, s, path) {
            Ok(r) => {
                cov.ok();
                model.readings.push(r);
            }
            Err(why) => cov.miss(i + 1, &format!("at_ms {}", s.at_ms), why),
        }
    }
    Parsed {
        model,
        coverage: cov,
    }
}

fn reading(index: usize, s: &CounterSample, path: &str) -> Result<CounterReading, String> {
    let conntrack = match &s.conntrack_stat {
        Reading::Text(t) => {
            let p = parse_ct_stat(path, t);
            if let Some(u) = p.coverage.unrecognised.first() {
                return Err(format!("conntrack stat line {}: {}", u.line, u.reason));
            }
            let mut totals: BTreeMap<String, u64> = p.model.totals.iter().cloned().collect();
            if let Some(c) = p.model.clash_resolve() {
                totals.insert("clash_resolve".into(), c);
            }
            Some(totals)
        }
        Reading::Absent | Reading::Error(_) => None,
    };
    let conntrack_count = match &s.conntrack_count {
        Reading::Text(t) => Some(
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("conntrack count {:?} is not a number", t.trim()))?,
        ),
        Reading::Absent | Reading::Error(_) => None,
    };
    Ok(CounterReading {
        index,
        at_ms: s.at_ms,
        conntrack,
        conntrack_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
        0000000a  00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000005 00000000 00000000  00000000 00000000 00000000 00000000\n\
        0000000a  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000 00000000  00000000 00000000 00000000 00000000\n";

    fn file(samples: serde_json::Value) -> String {
        serde_json::json!({"interval_ms": 500, "requested": 3, "samples": samples}).to_string()
    }

    #[test]
    fn readings_with_stat_totals_and_count() {
        let text = file(serde_json::json!([
            {"at_ms": 10, "conntrack_stat": {"text": STAT}, "conntrack_count": {"text": "42\n"}},
            {"at_ms": 510, "conntrack_stat": {"error": "permission denied"}},
        ]));
        let p = parse_counter_samples("samples/counters.json", &text);
        assert!(p.coverage.unrecognised.is_empty(), "{:?}", p.coverage);
        let r = &p.model.readings;
        assert_eq!(
            (p.model.interval_ms, p.model.requested, r.len()),
            (500, 3, 2)
        );
        let ct = r[0].conntrack.as_ref().unwrap();
        assert_eq!(
            (ct["drop"], ct["insert_failed"], ct["clash_resolve"]),
            (8, 2, 1)
        );
        assert_eq!(ct["entries"], 10);
        assert_eq!(r[0].conntrack_count, Some(42));
        assert_eq!(
            (r[1].index, r[1].at_ms, r[1].conntrack.is_none()),
            (2, 510, true)
        );
    }

    #[test]
    fn bad_readings_and_bad_files_are_unrecognised_not_lost() {
        let text = file(serde_json::json!([
            {"at_ms": 0, "conntrack_count": {"text": "many"}},
            {"at_ms": 1, "conntrack_stat": {"text": "entries drop\nzz yy\n"}},
            {"at_ms": 2},
        ]));
        let p = parse_counter_samples("samples/counters.json", &text);
        let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
        assert_eq!(lines, [1, 2]);
        assert!(p.coverage.unrecognised[0].reason.contains("not a number"));
        assert_eq!(p.model.readings.len(), 1);
        for bad in ["", "[]", "{\"samples\": 3}", "\u{0}"] {
            let p = parse_counter_samples("samples/counters.json", bad);
            assert_eq!(p.coverage.unrecognised.len(), 1, "{bad:?}");
            assert!(p.model.readings.is_empty());
        }
    }
}
