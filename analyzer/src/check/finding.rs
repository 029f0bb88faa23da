//! The shape of a finding, as the design fixes it: id, severity, title, subject,
//! message, evidence (bundle path + line), remedy and references.

pub use crate::evidence::Evidence;

use super::unit::CheckId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "critical" | "crit" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity {other:?} (expected info, warning or critical)"
            )),
        }
    }
}

/// One thing the analyzer found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Catalog id, serialised as its text, e.g. `SVC001`.
    pub id: CheckId,
    pub severity: Severity,
    /// The catalog title of the id.
    pub title: String,
    /// What it is about, e.g. `service default/web:http`, `pod default/web-1`.
    pub subject: String,
    pub message: String,
    pub evidence: Vec<Evidence>,
    pub remedy: String,
    pub refs: Vec<String>,
}

impl Finding {
    /// A finding of the check `id`, with the title, remedy and refs of its unit.
    pub fn new(
        id: CheckId,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        let unit = id.unit();
        Finding {
            id,
            severity,
            title: unit.title.to_string(),
            subject: subject.into(),
            message: message.into(),
            evidence: Vec::new(),
            remedy: unit.remedy.to_string(),
            refs: unit.refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    pub fn with_evidence(mut self, evidence: impl IntoIterator<Item = Evidence>) -> Finding {
        self.evidence.extend(evidence);
        self
    }

    pub fn evidence(mut self, e: Evidence) -> Finding {
        self.evidence.push(e);
        self
    }

    /// Replace the catalog remedy with a more specific one.
    pub fn remedy(mut self, remedy: impl Into<String>) -> Finding {
        self.remedy = remedy.into();
        self
    }
}
