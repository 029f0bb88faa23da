//! `manifest.json`: what was captured, how, and how every source fared.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The bundle format this crate writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Path of the manifest inside a bundle.
pub const MANIFEST_PATH: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub collector: CollectorInfo,
    pub hostname: String,
    /// `uname -r` of the node.
    pub kernel: String,
    /// RFC 3339 UTC timestamp at which capture started.
    pub captured_at: String,
    /// Seconds since the Unix epoch of `captured_at`; used as every entry's mtime.
    pub captured_at_unix: u64,
    /// Milliseconds since the Unix epoch of the capture start, when the collector
    /// recorded it (older bundles have only `captured_at_unix`): `netsnap diff` turns
    /// counters into rates over the time between two captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at_unix_ms: Option<u64>,
    pub duration_ms: u64,
    /// Command-line options that shaped the capture (deadline, limits, only/skip …).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// One record per source, in bundle path order. Failed sources have no `path`.
    pub sources: Vec<SourceRecord>,
    /// Set by `netsnap import`: every input it was given and what it made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportReport>,
}

/// What `netsnap import` was given: one record per input file, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    pub inputs: Vec<ImportedInput>,
}

/// One input file (a loose dump, or a file of an sos report / support archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedInput {
    /// The path as given (inside an archive: `archive!member`).
    pub path: String,
    /// The recogniser that claimed it (`iptables-save`, `ip-addr-text` …); absent when
    /// none did (the file is then listed with a note and not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recogniser: Option<String>,
    /// What was tolerated or left out: shell prompts, text around a pasted dump, a
    /// line cut in the middle, a file no recogniser claimed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Where an imported source's content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedFrom {
    /// The input path (inside an archive: `archive!member`).
    pub path: String,
    /// The recogniser that read it.
    pub recogniser: String,
    /// The input's lines that held the dump (1-based, inclusive), when it was pasted
    /// among other text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<[u64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorInfo {
    pub name: String,
    pub version: String,
}

/// How a source fared. `partial` and `truncated` sources still have content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    /// Captured completely.
    Ok,
    /// Some content captured, some not (see `error`).
    Partial,
    /// Tried and failed; `error` says why.
    Failed,
    /// Not present on this node (no IPVS, no legacy tables, tool not installed …).
    Unavailable,
    /// Excluded by `--only`/`--skip`.
    Skipped,
}

impl SourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Ok => "ok",
            SourceStatus::Partial => "partial",
            SourceStatus::Failed => "failed",
            SourceStatus::Unavailable => "unavailable",
            SourceStatus::Skipped => "skipped",
        }
    }
}

/// A capped source keeps the first `kept` items of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    pub kept: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Stable source name, e.g. `iptables-nft-save`, `netns/links` (netns sources add `netns`).
    pub name: String,
    /// Bundle path of the content, absent when nothing was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Netns id for per-netns sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    pub status: SourceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds after capture start at which the source started.
    #[serde(default)]
    pub started_ms: u64,
    #[serde(default)]
    pub duration_ms: u64,
    /// Size of the content in bytes (0 without content).
    #[serde(default)]
    pub bytes: u64,
    /// Hex sha256 of the content, absent without content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
    /// Context that is not an error: tool warnings on stderr, what was left out on
    /// purpose (e.g. nft tables managed by iptables-nft), which fallback was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set by `netsnap import`: the input file (and recogniser) this content came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<ImportedFrom>,
}

impl SourceRecord {
    /// A record for a source with the given name and status and no content yet.
    pub fn new(name: impl Into<String>, status: SourceStatus) -> Self {
        SourceRecord {
            name: name.into(),
            path: None,
            netns: None,
            status,
            error: None,
            started_ms: 0,
            duration_ms: 0,
            bytes: 0,
            sha256: None,
            truncated: None,
            note: None,
            imported_from: None,
        }
    }

    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    pub fn in_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }
}

impl Manifest {
    /// A manifest with no sources yet (the writer fills them in).
    pub fn new(
        collector_version: &str,
        hostname: &str,
        kernel: &str,
        captured_at: &str,
        captured_at_unix: u64,
    ) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            collector: CollectorInfo {
                name: "netsnap-collect".into(),
                version: collector_version.into(),
            },
            hostname: hostname.into(),
            kernel: kernel.into(),
            captured_at: captured_at.into(),
            captured_at_unix,
            captured_at_unix_ms: None,
            duration_ms: 0,
            options: BTreeMap::new(),
            sources: Vec::new(),
            import: None,
        }
    }

    /// The capture start in milliseconds since the Unix epoch: `captured_at_unix_ms`,
    /// else `captured_at_unix` (whole seconds).
    pub fn captured_at_ms(&self) -> u64 {
        self.captured_at_unix_ms
            .unwrap_or(self.captured_at_unix.saturating_mul(1000))
    }

    /// The record whose content lives at `path`.
    pub fn source_at(&self, path: &str) -> Option<&SourceRecord> {
        self.sources
            .iter()
            .find(|s| s.path.as_deref() == Some(path))
    }
}
