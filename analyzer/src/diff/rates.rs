//! Conntrack counters turned into rates over the time between two captures.
//!
//! `/proc/net/stat/nf_conntrack` counts since the netns' conntrack came up, summed
//! over CPUs (see [`crate::parse::ct_stat`]). Two captures of the same node and boot
//! give a rate per second: (new − old) / (time between the two reads). Each read is
//! timed as the manifest's capture start (milliseconds when the collector recorded
//! them, else whole seconds) plus the `conntrack-stat` record's `started_ms`. A
//! counter that went down was reset (conntrack reloaded, netns recreated): no rate.

use crate::check::Severity;
use crate::parse::ct_stat::ConntrackStats;
use crate::sources::Sources;
use netsnap_schema::layout;
use serde::Serialize;

/// Reads one counter from the statistics.
type Reader = fn(&ConntrackStats) -> Option<u64>;

/// The counters compared, as `netsnap diff` names them, and how they are read.
const COUNTERS: &[(&str, Reader)] = &[
    ("count", |s| s.entries()),
    ("drop", |s| s.get("drop")),
    ("early_drop", |s| s.get("early_drop")),
    ("insert_failed", |s| s.get("insert_failed")),
    ("invalid", |s| s.get("invalid")),
    ("search_restart", |s| s.get("search_restart")),
    ("clash_resolve", |s| s.clash_resolve()),
];

/// Counters whose growth means lost packets or connections.
const LOSSES: &[&str] = &["drop", "early_drop", "insert_failed"];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Both bundles are of the same node and boot, with conntrack statistics, NEW
    /// captured after OLD.
    pub comparable: bool,
    /// Why not, when not comparable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds between the two reads of the statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<f64>,
    /// How precise the interval is, when only whole seconds are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_note: Option<String>,
    pub counters: Vec<Rate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// `count` (entries in the table), or a column of the statistics (`drop` …).
    pub counter: String,
    pub old: u64,
    pub new: u64,
    /// new − old.
    pub delta: i64,
    /// delta / interval; absent after a reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// The counter went down: it was reset between the captures.
    pub reset: bool,
    pub severity: Severity,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl Rate {
    /// The keys `--ignore` matches: `rate`, `rate:conntrack`, `rate:conntrack:NAME`.
    pub fn keys(&self) -> Vec<String> {
        vec![
            "rate".into(),
            "rate:conntrack".into(),
            format!("rate:conntrack:{}", self.counter),
        ]
    }

    /// Whether the counter moved (a rate of 0 is no difference).
    pub fn notable(&self) -> bool {
        self.delta != 0 || self.reset
    }
}

/// `host/facts.json`'s boot id.
pub fn boot_id<'s>(s: &'s Sources<'_>) -> Option<&'s str> {
    s.host_facts.as_ref()?.value.boot_id.as_deref()
}

/// When the statistics were read, in milliseconds since the epoch, and whether the
/// capture start was known to the millisecond.
pub fn stat_read_at(s: &Sources<'_>) -> (u64, bool) {
    let m = s.manifest();
    let started = m
        .source_at(layout::CONNTRACK_STAT)
        .map_or(0, |r| r.started_ms);
    (
        m.captured_at_ms().saturating_add(started),
        m.captured_at_unix_ms.is_some(),
    )
}

/// Why the two bundles' counters cannot be compared, if they cannot.
fn not_comparable(old: &Sources<'_>, new: &Sources<'_>) -> Option<String> {
    let (ho, hn) = (&old.manifest().hostname, &new.manifest().hostname);
    if ho != hn {
        return Some(format!(
            "OLD is node {ho} and NEW is node {hn}: counters of two nodes do not make a rate"
        ));
    }
    match (boot_id(old), boot_id(new)) {
        (Some(a), Some(b)) if a != b => {
            return Some(format!(
            "the node rebooted between the captures (boot id {a} -> {b}): its counters restarted"
        ))
        }
        (Some(_), Some(_)) => {}
        (None, _) => return Some(missing_boot_id("OLD")),
        (_, None) => return Some(missing_boot_id("NEW")),
    }
    for (side, s) in [("OLD", old), ("NEW", new)] {
        if s.conntrack_stat.is_none() {
            return Some(format!("{} is not in {side}", layout::CONNTRACK_STAT));
        }
    }
    let (to, tn) = (stat_read_at(old).0, stat_read_at(new).0);
    if tn <= to {
        return Some(format!(
            "NEW was not captured after OLD ({} ms apart)",
            tn as i128 - to as i128
        ));
    }
    None
}

fn missing_boot_id(side: &str) -> String {
    format!(
        "{side} has no boot id (host/facts.json): a reboot between the captures cannot be ruled out"
    )
}

/// The rates between `old` and `new`, or why there are none.
pub fn compute(old: &Sources<'_>, new: &Sources<'_>) -> Rates {
    if let Some(reason) = not_comparable(old, new) {
        return Rates {
            reason: Some(reason),
            ..Rates::default()
        };
    }
    let ((to, ms_o), (tn, ms_n)) = (stat_read_at(old), stat_read_at(new));
    let secs = (tn - to) as f64 / 1000.0;
    let (Some(so), Some(sn)) = (&old.conntrack_stat, &new.conntrack_stat) else {
        return Rates::default();
    };
    let counters = COUNTERS
        .iter()
        .filter_map(|(name, read)| {
            let (a, b) = (read(&so.model)?, read(&sn.model)?);
            Some(rate(name, a, b, secs))
        })
        .collect();
    Rates {
        comparable: true,
        reason: None,
        interval_secs: Some(secs),
        interval_note: (!(ms_o && ms_n)).then(|| {
            "a bundle records its capture start to the second only (older collector): the interval may be off by up to 1 s".to_string()
        }),
        counters,
    }
}

fn rate(name: &str, old: u64, new: u64, secs: f64) -> Rate {
    let delta = i64::try_from(i128::from(new) - i128::from(old)).unwrap_or(i64::MAX);
    // The table size may shrink; a counter that shrinks was reset.
    let reset = name != "count" && new < old;
    let per_second = (!reset).then(|| delta as f64 / secs);
    let (severity, note) = if reset {
        (
            Severity::Info,
            format!("went down from {old} to {new}: reset between the captures (conntrack reloaded or the netns recreated), no rate"),
        )
    } else if LOSSES.contains(&name) && delta > 0 {
        (
            Severity::Warning,
            match name {
                "insert_failed" => {
                    "connections failed to enter the table (clashes or a full table)".into()
                }
                "early_drop" => "entries were evicted to make room: the table is full".into(),
                _ => "the kernel dropped packets for want of a conntrack entry".into(),
            },
        )
    } else {
        (Severity::Info, String::new())
    };
    Rate {
        counter: name.to_string(),
        old,
        new,
        delta,
        per_second,
        reset,
        severity,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_resets() {
        let r = rate("drop", 100, 700, 300.0);
        assert_eq!((r.delta, r.per_second, r.reset), (600, Some(2.0), false));
        assert_eq!(r.severity, Severity::Warning);
        let r = rate("drop", 700, 100, 300.0);
        assert!(r.reset && r.per_second.is_none() && r.notable());
        assert_eq!(r.severity, Severity::Info);
        let r = rate("count", 700, 100, 300.0);
        assert!(!r.reset);
        assert_eq!(r.per_second, Some(-2.0));
        let r = rate("invalid", 1, 4, 1.5);
        assert_eq!((r.per_second, r.severity), (Some(2.0), Severity::Info));
        assert!(!rate("drop", 5, 5, 1.0).notable());
    }
}
