//! One global deadline for the whole capture, and per-source budgets inside it.
//!
//! The capture must end on time even when a tool hangs or a netns thread gets stuck:
//! every source asks [`Deadline::budget`] for its timeout, which never reaches past
//! the end of the capture phase. A reserve at the end is kept for writing the bundle.

use std::time::{Duration, Instant};

/// Per-source timeouts (each is further capped by what is left of the deadline).
pub mod budgets {
    use std::time::Duration;

    /// One netlink dump (links, routes, … of one netns).
    pub const NETLINK_DUMP: Duration = Duration::from_secs(5);
    /// One external tool run (iptables-save, nft, ipset, crictl).
    pub const TOOL: Duration = Duration::from_secs(30);
    /// crictl talks to the container runtime, which may be the thing that is broken.
    pub const CRICTL: Duration = Duration::from_secs(10);
    /// Reading /dev/kmsg (non-blocking, so this only bounds a huge buffer).
    pub const KMSG: Duration = Duration::from_secs(5);
}

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    /// End of the capture phase: no source runs past it.
    capture_end: Instant,
    /// Until when results are still accepted: sources stopped at `capture_end` need
    /// a moment to report (kill the tool, send the record).
    results_end: Instant,
    /// Hard end requested by the user (`--timeout`).
    end: Instant,
}

impl Deadline {
    /// A deadline `total` from now; the last part of it (10 %, between 1 s and 5 s)
    /// is reserved for writing the bundle.
    pub fn new(total: Duration) -> Deadline {
        Deadline::starting_at(Instant::now(), total)
    }

    pub fn starting_at(start: Instant, total: Duration) -> Deadline {
        let reserve = (total / 10).clamp(Duration::from_secs(1), Duration::from_secs(5));
        let reserve = reserve.min(total / 2);
        let capture_end = start + total.saturating_sub(reserve);
        Deadline {
            start,
            capture_end,
            results_end: capture_end + (reserve / 4).min(Duration::from_millis(500)),
            end: start + total,
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn capture_end(&self) -> Instant {
        self.capture_end
    }

    pub fn end(&self) -> Instant {
        self.end
    }

    /// Time left to wait for results of sources that were stopped at the deadline.
    pub fn results_remaining(&self) -> Duration {
        self.results_end.saturating_duration_since(Instant::now())
    }

    /// Milliseconds since the capture started.
    pub fn elapsed_ms(&self) -> u64 {
        millis(self.start.elapsed())
    }

    /// Time left for capturing.
    pub fn remaining(&self) -> Duration {
        self.capture_end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The timeout of a source whose own limit is `per_source`.
    pub fn budget(&self, per_source: Duration) -> Duration {
        per_source.min(self.remaining())
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_bounded() {
        let t0 = Instant::now();
        let d = Deadline::starting_at(t0, Duration::from_secs(60));
        assert_eq!(d.capture_end() - t0, Duration::from_secs(55));
        let d = Deadline::starting_at(t0, Duration::from_secs(4));
        assert_eq!(d.capture_end() - t0, Duration::from_secs(3));
        let d = Deadline::starting_at(t0, Duration::from_millis(1000));
        assert_eq!(d.capture_end() - t0, Duration::from_millis(500));
    }

    #[test]
    fn budget_never_exceeds_remaining() {
        let d = Deadline::new(Duration::from_secs(2));
        assert!(d.budget(Duration::from_secs(30)) <= Duration::from_secs(1));
        assert!(d.budget(Duration::from_millis(10)) <= Duration::from_millis(10));
    }
}
