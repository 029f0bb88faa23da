//! `samples/counters.json` (`--samples N --interval S`): the counters that say
//! whether the node is saturated *now* — conntrack stat and count, interface and
//! socket counters — read N times, `interval` apart, on the lane's own thread in the
//! node netns while the other sources are captured. The analyzer turns two readings
//! into rates ("dropping 130/s now") instead of totals since boot.

use crate::deadline::Deadline;
use crate::source::Captured;
use crate::sys::procfs::{read_capped, thread_net};
use netsnap_schema::model::{CounterSample, CounterSamples, Reading};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{layout, SourceStatus};
use std::path::Path;
use std::time::Duration;

/// A counter file is small; a larger one is not what we think it is.
const READ_CAP: u64 = 1 << 20;

/// What `--samples`/`--interval` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub samples: u32,
    pub interval: Duration,
}

impl Sampling {
    /// One reading is what every capture has already: sampling means two or more.
    pub fn wanted(&self) -> bool {
        self.samples >= 2
    }

    /// How long the readings take, first to last.
    pub fn span(&self) -> Duration {
        self.interval * self.samples.saturating_sub(1)
    }
}

/// Reads every counter `s.samples` times. Readings stop early, and the record says
/// so, when the next one would fall after the capture deadline.
pub fn capture(s: Sampling, deadline: &Deadline) -> Captured {
    let name = SourceId::CounterSamples.name();
    let mut out = CounterSamples {
        interval_ms: u64::try_from(s.interval.as_millis()).unwrap_or(u64::MAX),
        requested: s.samples,
        samples: Vec::new(),
    };
    let first = deadline.elapsed_ms();
    for i in 0..s.samples {
        let due = first + out.interval_ms.saturating_mul(u64::from(i));
        let now = deadline.elapsed_ms();
        if due > now {
            let wait = Duration::from_millis(due - now);
            if wait >= deadline.remaining() {
                break;
            }
            std::thread::sleep(wait);
        }
        out.samples.push(read_all(deadline.elapsed_ms()));
    }
    let kept = out.samples.len();
    let status = if kept == s.samples as usize {
        SourceStatus::Ok
    } else {
        SourceStatus::Partial
    };
    let c = Captured::json(name, layout::COUNTER_SAMPLES, status, &out);
    if status == SourceStatus::Partial {
        c.with_error(format!(
            "the capture deadline came after {kept} of {} readings",
            s.samples
        ))
    } else {
        c
    }
}

fn read_all(at_ms: u64) -> CounterSample {
    CounterSample {
        at_ms,
        conntrack_stat: read(&thread_net("stat/nf_conntrack")),
        conntrack_count: read(Path::new("/proc/sys/net/netfilter/nf_conntrack_count")),
        net_dev: read(&thread_net("dev")),
        sockstat: read(&thread_net("sockstat")),
    }
}

fn read(path: &Path) -> Reading {
    match read_capped(path, READ_CAP) {
        Ok(text) => Reading::Text(text),
        Err(e) => Reading::Error(crate::source::io_reason(&path.display().to_string(), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_and_wanted() {
        let s = Sampling {
            samples: 5,
            interval: Duration::from_millis(200),
        };
        assert!(s.wanted());
        assert_eq!(s.span(), Duration::from_millis(800));
        assert!(!Sampling { samples: 1, ..s }.wanted());
    }

    /// Readings of this process's own netns: every file is read, the times go up by
    /// at least the interval, and a deadline shorter than the span keeps fewer
    /// readings with the record saying so.
    #[test]
    fn readings_follow_the_interval_and_stop_at_the_deadline() {
        let s = Sampling {
            samples: 3,
            interval: Duration::from_millis(20),
        };
        let d = Deadline::new(Duration::from_secs(10));
        let c = capture(s, &d);
        assert_eq!(c.record.status, SourceStatus::Ok, "{:?}", c.record);
        let v: CounterSamples =
            serde_json::from_slice(c.content_bytes().expect("content")).unwrap();
        assert_eq!((v.requested, v.samples.len(), v.interval_ms), (3, 3, 20));
        for (i, r) in v.samples.iter().enumerate() {
            assert!(
                r.at_ms >= v.samples[0].at_ms + 20 * i as u64,
                "{:?}",
                v.samples
            );
        }
        let dev = v.samples[0].net_dev.text().expect("/proc/net/dev");
        assert!(dev.contains("lo:"), "{dev}");
        let short = Sampling {
            samples: 1000,
            interval: Duration::from_millis(50),
        };
        let c = capture(short, &Deadline::new(Duration::from_millis(120)));
        assert_eq!(c.record.status, SourceStatus::Partial);
        assert!(c
            .record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("of 1000 readings")));
    }
}
