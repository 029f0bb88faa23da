//! `samples/counters.json`: counters the collector read several times during one
//! capture (`--samples N --interval S`), so that saturation is a rate ("dropping
//! 130/s now"), not a total since boot. Kernel text is kept raw, as in the rest of
//! the bundle; a reading that failed says why instead of its text.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CounterSamples {
    /// `--interval` in milliseconds.
    pub interval_ms: u64,
    /// `--samples`: how many readings were asked for (fewer are kept when the capture
    /// deadline came first; the manifest record then says so).
    pub requested: u32,
    pub samples: Vec<CounterSample>,
}

/// One reading of every counter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CounterSample {
    /// Milliseconds after the capture started (the manifest's `captured_at`), on a
    /// monotonic clock.
    pub at_ms: u64,
    /// `/proc/net/stat/nf_conntrack` of the node netns, raw.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub conntrack_stat: Reading,
    /// `net.netfilter.nf_conntrack_count` of the node netns, raw.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub conntrack_count: Reading,
    /// `/proc/net/dev` of the node netns, raw.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub net_dev: Reading,
    /// `/proc/net/sockstat`, raw.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub sockstat: Reading,
}

/// A file's text, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    #[default]
    Absent,
    Text(String),
    Error(String),
}

impl Reading {
    pub fn is_absent(&self) -> bool {
        *self == Reading::Absent
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Reading::Text(t) => Some(t),
            _ => None,
        }
    }
}
