//! Several bundles of one cluster as one: each node is analysed on its own (its
//! per-node findings unchanged) and reduced to a [`NodeSummary`]; the cluster checks
//! CLU001–CLU006 run on the summaries only ([`check`]), so memory stays bounded by the
//! nodes being analysed plus the summaries.
//!
//! A cluster finding cites evidence from every node involved; each evidence path is
//! prefixed by the node it comes from (`node-b:netns/root/routes.json`), and the
//! finding lists those nodes ([`ClusterFinding::nodes`]).
//!
//! Severities: CLU001 (overlapping pod CIDRs), CLU003 (endpoint owned by no pod) and
//! CLU004 (one pod IP on two nodes) are critical, as traffic goes to the wrong place
//! or nowhere. CLU002 is critical when a node lacks a service the majority programs or
//! sends to endpoints the majority dropped, else a warning (an extra service, missing
//! endpoints, or two nodes with no majority). CLU005 is critical for a missing or
//! broken path to another node's pods and a warning for an MTU disagreement. CLU006 is
//! a warning, info for `nf_conntrack_max` (it scales with each node's memory).
//!
//! CLU003 and SVC002 do not overlap: SVC002 reports an endpoint in the programming
//! node's own pod CIDR owned by none of its pods; CLU003 reports only endpoints in
//! *another* captured node's pod CIDR, owned by no pod on any node, and never on the
//! node that owns the CIDR.

mod addresses;
mod drift;
mod overlay;
pub mod summary;
#[cfg(test)]
pub(crate) mod testkit;

pub use summary::{NodeSummary, Shared};

use crate::check::{CheckId, Evidence, Facts, Finding, Selection, Severity};
use crate::report::Summary;
use serde::Serialize;

/// A finding about the cluster: the finding and the nodes it involves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// Names of the nodes involved (as in [`ClusterReport::nodes`]), the node to fix
    /// first.
    pub nodes: Vec<String>,
}

/// One node of the cluster report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterNode {
    /// How findings and evidence paths name the node (as `netsnap trace` does): its
    /// hostname, else (two bundles with one hostname) the bundle's file name without
    /// `.netsnap…`, else `node-N`.
    pub name: String,
    pub hostname: String,
    /// The bundle path as given on the command line.
    pub origin: String,
}

/// The cluster section of a report (several bundles, without `--separate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    pub nodes: Vec<ClusterNode>,
    pub summary: Summary,
    pub findings: Vec<ClusterFinding>,
}

impl ClusterReport {
    /// Runs the cluster checks on the summaries (in command-line order), each with the
    /// bundle path it came from.
    pub fn new<'o>(
        origins: impl IntoIterator<Item = &'o str>,
        summaries: &[NodeSummary],
        selection: &Selection,
    ) -> ClusterReport {
        let origins: Vec<String> = origins.into_iter().map(str::to_string).collect();
        let hostnames: Vec<String> = summaries.iter().map(|s| s.hostname.clone()).collect();
        let names = crate::trace::cluster::node_names(&hostnames, &origins);
        let findings = check_named(summaries, &names, selection);
        let plain: Vec<Finding> = findings.iter().map(|f| f.finding.clone()).collect();
        ClusterReport {
            nodes: names
                .into_iter()
                .zip(summaries)
                .zip(origins)
                .map(|((name, s), origin)| ClusterNode {
                    name,
                    hostname: s.hostname.clone(),
                    origin,
                })
                .collect(),
            summary: Summary::of(&plain),
            findings,
        }
    }
}

/// The name of each node in findings, as `netsnap trace` names them: its hostname,
/// else (two bundles with one hostname) the bundle's file name, else `node-N`.
pub fn names(nodes: &[NodeSummary]) -> Vec<String> {
    let hostnames: Vec<String> = nodes.iter().map(|s| s.hostname.clone()).collect();
    crate::trace::cluster::node_names(&hostnames, &[])
}

/// One cluster check: the findings of its id on the nodes.
type ClusterCheck = fn(&Cluster<'_>) -> Vec<ClusterFinding>;

/// The cluster checks CLU001–CLU006 (those `selection` wants) on the node summaries.
/// Findings are sorted by severity (worst first), id and subject; one finding per
/// (id, subject), its evidence and nodes merged.
pub fn check(nodes: &[NodeSummary], selection: &Selection) -> Vec<ClusterFinding> {
    check_named(nodes, &names(nodes), selection)
}

/// [`check`] with the nodes' names given (one per node, e.g. from
/// [`crate::trace::cluster::node_names`] with the bundle paths).
pub fn check_named(
    nodes: &[NodeSummary],
    names: &[String],
    selection: &Selection,
) -> Vec<ClusterFinding> {
    if nodes.len() < 2 || names.len() != nodes.len() {
        return Vec::new();
    }
    let c = Cluster {
        nodes,
        names: names.to_vec(),
    };
    let units: [(CheckId, ClusterCheck); 6] = [
        (CheckId::Clu001, addresses::overlapping_pod_cidrs),
        (CheckId::Clu002, drift::kube_proxy_drift),
        (CheckId::Clu003, addresses::endpoints_owned_by_no_pod),
        (CheckId::Clu004, addresses::pod_ip_on_two_nodes),
        (CheckId::Clu005, overlay::missing_paths_and_mtu),
        (CheckId::Clu006, drift::settings_drift),
    ];
    let mut all: Vec<ClusterFinding> = units
        .iter()
        .filter(|(id, _)| selection.wants(id.as_str()))
        .flat_map(|(_, run)| run(&c))
        .collect();
    all.sort_by(|a, b| {
        let (a, b) = (&a.finding, &b.finding);
        (b.severity, &a.id, &a.subject).cmp(&(a.severity, &b.id, &b.subject))
    });
    let mut merged: Vec<ClusterFinding> = Vec::with_capacity(all.len());
    for f in all {
        match merged.last_mut() {
            Some(last)
                if last.finding.id == f.finding.id && last.finding.subject == f.finding.subject =>
            {
                for e in f.finding.evidence {
                    if !last.finding.evidence.contains(&e) {
                        last.finding.evidence.push(e);
                    }
                }
                if !last.finding.message.contains(&f.finding.message) {
                    last.finding.message =
                        format!("{} {}", last.finding.message, f.finding.message);
                }
                for n in f.nodes {
                    if !last.nodes.contains(&n) {
                        last.nodes.push(n);
                    }
                }
            }
            _ => merged.push(f),
        }
    }
    for f in &mut merged {
        let n = f.finding.evidence.len();
        if n > EVIDENCE_KEPT {
            f.finding.evidence.truncate(EVIDENCE_KEPT);
            f.finding.message = format!(
                "{} (Evidence: the first {EVIDENCE_KEPT} of {n} lines.)",
                f.finding.message
            );
        }
    }
    merged
}

/// The catalog's `run` of the CLU units: they do not run on one node (the cluster
/// checks run on node summaries, see [`check`]).
pub fn not_on_one_node(_: &Facts<'_>) -> Vec<Finding> {
    Vec::new()
}

/// Groups (of nodes, endpoint sets, values) described one by one in a message; the
/// rest are counted. A hundred nodes that each differ must not make a megabyte finding.
pub(crate) const SHOWN: usize = 5;
/// Node names listed in a message before "and N more" (every node is in `nodes`).
pub(crate) const NAMES_SHOWN: usize = 10;
/// Evidence kept per cluster finding; the message says when there was more.
pub(crate) const EVIDENCE_KEPT: usize = 20;

/// ` and N more GROUPS` when `total` exceeds what was shown.
pub(crate) fn more(total: usize, shown: usize, what: &str) -> String {
    match total.saturating_sub(shown) {
        0 => String::new(),
        n => format!(" and {n} more {what}"),
    }
}

/// The nodes under check, with their names.
pub(crate) struct Cluster<'a> {
    pub nodes: &'a [NodeSummary],
    pub names: Vec<String>,
}

impl Cluster<'_> {
    /// Evidence of node `i`, its path prefixed by the node's name.
    pub fn cite(&self, i: usize, e: &Evidence) -> Evidence {
        Evidence::new(
            format!("{}:{}", self.names[i], e.path),
            e.line,
            e.excerpt.clone(),
        )
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `a, b and c`; past [`NAMES_SHOWN`] names, `a, b, … and 90 more`.
    pub fn list(&self, nodes: &[usize]) -> String {
        let names: Vec<&str> = nodes.iter().map(|&i| self.name(i)).collect();
        if names.len() > NAMES_SHOWN {
            return format!(
                "{} and {} more",
                names[..NAMES_SHOWN].join(", "),
                names.len() - NAMES_SHOWN
            );
        }
        match names.split_last() {
            None => String::new(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }

    /// A finding of `id` involving `nodes` (the node to fix first).
    pub fn finding(
        &self,
        id: CheckId,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
        nodes: &[usize],
    ) -> ClusterFinding {
        ClusterFinding {
            finding: Finding::new(id, severity, subject, message),
            nodes: nodes.iter().map(|&i| self.names[i].clone()).collect(),
        }
    }
}

impl ClusterFinding {
    pub fn evidence(mut self, e: Evidence) -> ClusterFinding {
        self.finding.evidence.push(e);
        self
    }

    pub fn with_evidence(mut self, e: impl IntoIterator<Item = Evidence>) -> ClusterFinding {
        self.finding.evidence.extend(e);
        self
    }

    pub fn remedy(mut self, remedy: impl Into<String>) -> ClusterFinding {
        self.finding.remedy = remedy.into();
        self
    }
}
