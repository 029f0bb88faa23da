//! `DIR/collection.json`: what was asked, and per node what arrived or why not, so
//! a partial collection says exactly what is missing.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Version of the collection.json layout.
pub const COLLECTION_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// `bundle` is in DIR and was read back as a bundle.
    Collected,
    /// kubectl failed, the node sent something that is not a bundle, or the file
    /// could not be written.
    Failed,
    /// No complete bundle before `--timeout`: kubectl was killed.
    TimedOut,
    /// The node has no running collector pod.
    NoPod,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeRecord {
    pub node: String,
    pub pod: Option<String>,
    pub status: NodeStatus,
    /// File name in DIR.
    pub bundle: Option<String>,
    /// Hostname in the bundle's manifest.
    pub hostname: Option<String>,
    /// Bytes received from kubectl exec.
    pub bytes: u64,
    pub duration_ms: u64,
    pub reason: Option<String>,
}

impl NodeRecord {
    pub fn new(node: &str, pod: Option<String>) -> NodeRecord {
        NodeRecord {
            node: node.to_string(),
            pod,
            status: NodeStatus::Failed,
            bundle: None,
            hostname: None,
            bytes: 0,
            duration_ms: 0,
            reason: None,
        }
    }

    pub fn failed(mut self, status: NodeStatus, reason: String, started: Instant) -> NodeRecord {
        self.status = status;
        self.reason = Some(reason);
        self.duration_ms = started.elapsed().as_millis() as u64;
        self
    }

    pub fn collected(
        mut self,
        bundle: String,
        bytes: u64,
        hostname: String,
        started: Instant,
    ) -> NodeRecord {
        self.status = NodeStatus::Collected;
        self.bundle = Some(bundle);
        self.bytes = bytes;
        self.hostname = Some(hostname);
        self.duration_ms = started.elapsed().as_millis() as u64;
        self
    }
}

/// The cluster analysis of the collected bundles.
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisRecord {
    /// `ok`, `failed`, or `skipped` (`--no-analysis`, or nothing collected).
    pub status: String,
    /// File name in DIR of the JSON report (`netsnap analyze --format json`).
    pub report: Option<String>,
    /// Findings (node and cluster) by severity, when it ran.
    pub summary: Option<serde_json::Value>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    pub version: u32,
    pub tool: String,
    pub namespace: String,
    /// How the nodes were chosen (`--nodes …`, `-l …`, `--all`).
    pub selection: String,
    pub parallel: usize,
    pub timeout_secs: u64,
    pub redacted: bool,
    pub duration_ms: u64,
    pub nodes: Vec<NodeRecord>,
    pub analysis: AnalysisRecord,
}

impl Collection {
    /// Writes `DIR/collection.json` (through a temporary name, then renamed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("collection.json");
        let tmp = dir.join(".collection.json.partial");
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn collected(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Collected)
    }
}
