//! `netsnap diff`: a semantic diff of two bundles (one node over time, or two nodes).
//!
//! Each bundle's model is flattened into keyed facts ([`facts`]: category, subject,
//! field → value), the two fact sets are compared ([`compare`]) into added / removed /
//! changed entries with a severity chosen for their impact ([`severity`]), and the
//! conntrack counters become rates over the time between the captures ([`rates`])
//! when both bundles are of the same node and boot. `--ignore` patterns ([`ignore`])
//! drop volatile entries. The result is printed by [`crate::render::diff`]
//! (docs/diff-json.md describes the JSON).

pub mod compare;
pub mod facts;
pub mod ignore;
pub mod rates;
pub mod severity;

use crate::check::Severity;
use crate::model::Model;
use crate::sources::Sources;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

pub use ignore::Ignore;
pub use rates::{Rate, Rates};

/// Version of the diff JSON format (docs/diff-json.md). Bumped on any incompatible
/// change.
pub const DIFF_VERSION: u32 = 1;

/// What a change is about, in the order the output lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Datapath,
    Service,
    Endpoint,
    Pod,
    Netns,
    Link,
    Address,
    Route,
    Rule,
    Chain,
    Sysctl,
    Dns,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Datapath => "datapath",
            Category::Service => "service",
            Category::Endpoint => "endpoint",
            Category::Pod => "pod",
            Category::Netns => "netns",
            Category::Link => "link",
            Category::Address => "address",
            Category::Route => "route",
            Category::Rule => "rule",
            Category::Chain => "chain",
            Category::Sysctl => "sysctl",
            Category::Dns => "dns",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

/// One difference between the bundles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub category: Category,
    /// What changed: `default/web:http tcp (iptables-nft)`, `node eth0`, `pod default/web-1` …
    pub subject: String,
    /// The field that changed; absent when the whole subject was added or removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub change: ChangeKind,
    /// The value in OLD (for a removed subject: its description); absent when the
    /// field or subject is not in OLD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The value in NEW, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    pub severity: Severity,
    /// Why it matters, when the severity is above info or the change needs words.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl Change {
    /// The keys `--ignore` patterns are matched against: `category`,
    /// `category:subject` and `category:subject:field`.
    pub fn keys(&self) -> Vec<String> {
        let c = self.category.as_str();
        let mut k = vec![c.to_string(), format!("{c}:{}", self.subject)];
        if let Some(f) = &self.field {
            k.push(format!("{c}:{}:{f}", self.subject));
        }
        k
    }
}

/// One bundle as the diff names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideInfo {
    /// The path the bundle was read from, as given on the command line.
    pub origin: String,
    pub hostname: String,
    pub captured_at: String,
    pub boot_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

impl Summary {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::Warning => self.warning += 1,
            Severity::Info => self.info += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.critical + self.warning + self.info
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The whole diff, in the shape every renderer prints and JSON serialises.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub format: &'static str,
    pub version: u32,
    pub tool: Tool,
    pub old: SideInfo,
    pub new: SideInfo,
    /// Changes and rates at each severity (after `--ignore`).
    pub summary: Summary,
    /// Sorted by category, subject, field.
    pub changes: Vec<Change>,
    pub rates: Rates,
    /// How many changes and rates `--ignore` dropped.
    pub ignored: usize,
}

impl Diff {
    /// Whether something at or above `fail_on` changed.
    pub fn fails(&self, fail_on: FailOn) -> bool {
        let FailOn::At(min) = fail_on else {
            return false;
        };
        let rates = self
            .rates
            .counters
            .iter()
            .filter(|r| r.notable())
            .map(|r| r.severity);
        self.changes
            .iter()
            .map(|c| c.severity)
            .chain(rates)
            .any(|s| s >= min)
    }

    /// Nothing differs (rates that stayed at zero do not count).
    pub fn is_empty(&self) -> bool {
        self.summary.total() == 0
    }
}

/// `--fail-on`: a severity, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    At(Severity),
    Never,
}

impl FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("never") {
            return Ok(FailOn::Never);
        }
        Severity::from_str(s)
            .map(FailOn::At)
            .map_err(|e| format!("{e}, or never"))
    }
}

/// One bundle to compare: where it was read from, its parsed sources and its model
/// (from [`crate::report::prepare`]).
pub struct Input<'a, 'b> {
    pub origin: &'a str,
    pub sources: &'a Sources<'b>,
    pub model: &'a Model,
}

impl Input<'_, '_> {
    fn info(&self) -> SideInfo {
        SideInfo {
            origin: self.origin.to_string(),
            hostname: self.model.hostname.clone(),
            captured_at: self.model.captured_at.clone(),
            boot_id: rates::boot_id(self.sources).map(str::to_string),
        }
    }
}

/// Compares OLD with NEW; changes and rates matching `ignore` are left out (and
/// counted).
pub fn diff(old: &Input<'_, '_>, new: &Input<'_, '_>, ignore: &Ignore) -> Diff {
    let all = compare::compare(&facts::collect(old), &facts::collect(new));
    let before = all.len();
    let changes: Vec<Change> = all
        .into_iter()
        .filter(|c| !ignore.matches(&c.keys()))
        .collect();
    let mut ignored = before - changes.len();
    let mut rates = rates::compute(old.sources, new.sources);
    let n = rates.counters.len();
    rates.counters.retain(|r| !ignore.matches(&r.keys()));
    ignored += n - rates.counters.len();
    let mut summary = Summary::default();
    for s in changes.iter().map(|c| c.severity).chain(
        rates
            .counters
            .iter()
            .filter(|r| r.notable())
            .map(|r| r.severity),
    ) {
        summary.add(s);
    }
    Diff {
        format: "netsnap-diff",
        version: DIFF_VERSION,
        tool: Tool {
            name: "netsnap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        old: old.info(),
        new: new.info(),
        summary,
        changes,
        rates,
        ignored,
    }
}
