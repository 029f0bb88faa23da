//! The report: what `netsnap analyze` found in each bundle, in the stable shape that
//! every renderer prints and `--format json` serialises (docs/analyzer-json.md).

use crate::check::{self, Context, Finding, Selection, Severity, Thresholds};
use crate::graph::NodeGraph;
use crate::model::{Counts, Model};
use crate::sources::{self, Sources};
use crate::timings::stage;
use netsnap_schema::Bundle;
use serde::Serialize;

/// Version of the JSON report format. Bumped on any incompatible change.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub tool: Tool,
    pub bundles: Vec<BundleReport>,
    /// The bundles as one cluster (several bundles, without `--separate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::cluster::ClusterReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    /// The path the bundle was read from, as given on the command line.
    pub origin: String,
    pub hostname: String,
    pub kernel: String,
    pub captured_at: String,
    /// What the node runs (CNI, overlay, service proxy, IP families).
    pub datapath: crate::model::datapath::Datapath,
    pub counts: Counts,
    pub coverage: CoverageSummary,
    pub summary: Summary,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CoverageSummary {
    /// Files a parser read.
    pub files: usize,
    pub recognised_lines: usize,
    pub unrecognised_lines: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        Summary {
            critical: n(Severity::Critical),
            warning: n(Severity::Warning),
            info: n(Severity::Info),
        }
    }

    /// Findings at or above `sev`.
    pub fn at_or_above(&self, sev: Severity) -> usize {
        match sev {
            Severity::Critical => self.critical,
            Severity::Warning => self.critical + self.warning,
            Severity::Info => self.critical + self.warning + self.info,
        }
    }
}

/// One bundle through the whole pipeline: parse → model → graph → checks.
pub struct Analysis<'b> {
    pub sources: Sources<'b>,
    pub model: Model,
    pub graph: NodeGraph,
    /// Pods × service ports as the trace engine sees them (`None` with `--no-reach`).
    pub reach: Option<crate::trace::reach::Reachability>,
    pub findings: Vec<Finding>,
}

/// Parses, models and graphs a bundle (without checks).
pub fn prepare(bundle: &Bundle) -> (Sources<'_>, Model, NodeGraph) {
    build(stage("parse", || sources::parse_all(bundle)))
}

/// Models and graphs parsed sources.
fn build(mut sources: Sources<'_>) -> (Sources<'_>, Model, NodeGraph) {
    let model = stage("model", || crate::model::build(&mut sources));
    let graph = stage("graph", || crate::graph::build(&model));
    (sources, model, graph)
}

pub fn analyze<'b>(
    bundle: &'b Bundle,
    thresholds: &Thresholds,
    selection: &Selection,
) -> Analysis<'b> {
    analyze_sources(
        stage("parse", || sources::parse_all(bundle)),
        thresholds,
        selection,
    )
}

/// [`analyze`] on sources already parsed (e.g. while the bundle was read, see
/// [`crate::load::open_and_parse`]).
pub fn analyze_sources<'b>(
    mut sources: Sources<'b>,
    thresholds: &Thresholds,
    selection: &Selection,
) -> Analysis<'b> {
    let model = stage("model", || crate::model::build(&mut sources));
    let firewall = selection
        .wants_reach()
        .then(|| crate::trace::firewall::Firewall::take(&mut sources));
    // What the matrix prepares without the graph, and the checks that read only the
    // model, are done while the graph is built (mostly one thread's work).
    let facts = check::Facts {
        model: &model,
        thresholds,
    };
    let (graph, (prepared, found)) = rayon::join(
        || stage("graph", || crate::graph::build(&model)),
        || {
            rayon::join(
                || {
                    let prepare =
                        |f| stage("reach:plan", || crate::trace::reach::prepare(&model, f));
                    firewall.as_ref().map(prepare)
                },
                || stage("check:facts", || check::run_facts(&facts, selection)),
            )
        },
    );
    let reach = prepared.map(|p| {
        stage("reach", || {
            crate::trace::reach::compute_prepared(&model, &graph, p)
        })
    });
    // The rulesets' hundreds of thousands of parsed rules are freed while the checks
    // run (they need only the model): serial work that otherwise follows them.
    let ((), findings) = rayon::join(
        move || drop(firewall),
        || {
            stage("check", || {
                check::run_after_facts(
                    &Context::new(&model, &graph, thresholds).with_reach(reach.as_ref()),
                    selection,
                    found,
                )
            })
        },
    );
    Analysis {
        sources,
        model,
        graph,
        reach,
        findings,
    }
}

impl BundleReport {
    pub fn new(origin: &str, a: &Analysis<'_>) -> BundleReport {
        let cov = &a.model.coverage;
        BundleReport {
            origin: origin.to_string(),
            hostname: a.model.hostname.clone(),
            kernel: a.model.kernel.clone(),
            captured_at: a.model.captured_at.clone(),
            datapath: a.model.datapath.clone(),
            counts: a.model.counts(),
            coverage: CoverageSummary {
                files: cov.len(),
                recognised_lines: cov.iter().map(|c| c.recognised).sum(),
                unrecognised_lines: cov.iter().map(|c| c.unrecognised.len()).sum(),
            },
            summary: Summary::of(&a.findings),
            findings: a.findings.clone(),
        }
    }
}

impl Report {
    pub fn new(bundles: Vec<BundleReport>) -> Report {
        Report {
            version: REPORT_VERSION,
            tool: Tool {
                name: "netsnap".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            bundles,
            cluster: None,
        }
    }

    /// The report with its cluster section.
    pub fn with_cluster(self, cluster: crate::cluster::ClusterReport) -> Report {
        Report {
            cluster: Some(cluster),
            ..self
        }
    }

    /// Findings of every bundle and of the cluster.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for b in &self.bundles {
            s.critical += b.summary.critical;
            s.warning += b.summary.warning;
            s.info += b.summary.info;
        }
        if let Some(c) = &self.cluster {
            s.critical += c.summary.critical;
            s.warning += c.summary.warning;
            s.info += c.summary.info;
        }
        s
    }
}
