//! What `netsnap report` shows of each node, gathered while its analysis is alive:
//! the report, the laid-out picture with every finding placed in it, the source
//! table, the failing traces and the reachability matrix (kept small whatever the
//! node's size), and the node summary for the cluster overview. The HTML and the
//! Markdown report both render these pages.

use crate::batch::{self, BatchError, Options};
use crate::cluster::{ClusterReport, NodeSummary, Shared};
use crate::layout::{Picture, ShapeRef};
use crate::report::{Analysis, BundleReport};
use crate::trace::reach::Reachability;
use netsnap_schema::Manifest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Failing traces listed in full; the rest are counted.
pub const MAX_FAILING: usize = 200;
/// A matrix with at most this many rows and columns shows pods × service ports;
/// a bigger one pod namespaces × service namespaces.
pub const MAX_MATRIX: usize = 40;

#[derive(Debug, Clone)]
pub struct SourceRow {
    pub name: String,
    pub netns: String,
    pub status: &'static str,
    pub bytes: u64,
    pub ms: u64,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct FailRow {
    pub pod: String,
    pub service: String,
    pub address: String,
    pub verdict: &'static str,
    pub percent: f64,
    pub reason: String,
    /// The rule, route or link that decided (bundle path:line).
    pub at: String,
    /// `netsnap trace` arguments that show the paths.
    pub command: String,
}

/// Failing / all cells per (row, column).
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    /// Rows are pods and columns service ports (else namespaces of each).
    pub per_pod: bool,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub cells: BTreeMap<(usize, usize), (usize, usize)>,
}

#[derive(Debug, Clone, Default)]
pub struct ReachView {
    pub failing: Vec<FailRow>,
    pub failing_total: usize,
    pub cells: usize,
    pub traced: usize,
    pub reused: usize,
    pub matrix: Matrix,
}

/// One node of the report.
#[derive(Debug, Clone)]
pub struct NodePage {
    pub report: BundleReport,
    pub picture: Picture,
    /// Per finding (in report order), the shapes its subject names.
    pub targets: Vec<Vec<ShapeRef>>,
    pub sources: Vec<SourceRow>,
    pub source_counts: BTreeMap<&'static str, usize>,
    pub reach: Option<ReachView>,
    pub summary: Option<NodeSummary>,
}

/// Every node, and the cluster when there are several.
#[derive(Debug, Clone)]
pub struct Pages {
    pub nodes: Vec<NodePage>,
    pub cluster: Option<ClusterReport>,
}

impl Pages {
    /// How the report names each node: as the cluster section does (hostname, else
    /// the bundle's file name when two hostnames are alike), else its hostname.
    pub fn node_names(&self) -> Vec<String> {
        match &self.cluster {
            Some(c) if c.nodes.len() == self.nodes.len() => {
                c.nodes.iter().map(|n| n.name.clone()).collect()
            }
            _ => self
                .nodes
                .iter()
                .map(|n| n.report.hostname.clone())
                .collect(),
        }
    }
}

impl NodePage {
    /// The page of one analysed node; with `summarise`, its cluster summary too
    /// (sharing with the other nodes').
    pub fn new(
        path: &Path,
        manifest: &Manifest,
        a: &Analysis<'_>,
        summarise: Option<&Shared>,
    ) -> NodePage {
        let report = BundleReport::new(&path.display().to_string(), a);
        let subjects: Vec<&str> = report.findings.iter().map(|f| f.subject.as_str()).collect();
        let mut picture = Picture::of(&a.model, &a.graph, &subjects);
        let index = picture.subject_index();
        let targets: Vec<Vec<ShapeRef>> = subjects
            .iter()
            .map(|s| crate::layout::resolve_in(&index, s))
            .collect();
        drop(index);
        let all: Vec<ShapeRef> = targets.iter().flatten().copied().collect();
        picture.mark_faulty(&all);
        let mut source_counts = BTreeMap::new();
        let sources = manifest
            .sources
            .iter()
            .map(|s| {
                *source_counts.entry(s.status.as_str()).or_default() += 1;
                SourceRow {
                    name: s.name.clone(),
                    netns: s.netns.clone().unwrap_or_default(),
                    status: s.status.as_str(),
                    bytes: s.bytes,
                    ms: s.duration_ms,
                    note: crate::inspect::source_note(s),
                }
            })
            .collect();
        NodePage {
            report,
            picture,
            targets,
            sources,
            source_counts,
            reach: a.reach.as_ref().map(ReachView::of),
            summary: summarise.map(|shared| NodeSummary::of_shared(a, shared)),
        }
    }
}

fn namespace(name: &str) -> &str {
    name.split_once('/').map_or("(none)", |(ns, _)| ns)
}

impl ReachView {
    pub fn of(r: &Reachability) -> ReachView {
        let failing: Vec<_> = r.cells.iter().filter(|c| c.failing() > 0.0).collect();
        let rows = failing
            .iter()
            .take(MAX_FAILING)
            .map(|c| {
                let f = &c.failures()[0];
                FailRow {
                    pod: c.pod.to_string(),
                    service: c.service.to_string(),
                    address: c.address.to_string(),
                    verdict: f.verdict.as_str(),
                    percent: c.failing() * 100.0,
                    reason: f.reason.clone(),
                    at: f
                        .deciding
                        .as_ref()
                        .and_then(|h| h.evidence.as_ref())
                        .map(|e| e.location())
                        .unwrap_or_default(),
                    command: c.command(),
                }
            })
            .collect();
        ReachView {
            failing: rows,
            failing_total: failing.len(),
            cells: r.cells.len(),
            traced: r.traced,
            reused: r.reused,
            matrix: Matrix::of(r),
        }
    }
}

impl Matrix {
    fn of(r: &Reachability) -> Matrix {
        let pods: std::collections::BTreeSet<&str> = r.cells.iter().map(|c| c.pod).collect();
        let svcs: std::collections::BTreeSet<&str> = r.cells.iter().map(|c| c.service).collect();
        let per_pod = pods.len() <= MAX_MATRIX && svcs.len() <= MAX_MATRIX;
        let key = |s: &str| -> String {
            if per_pod {
                s.to_string()
            } else {
                namespace(s).to_string()
            }
        };
        let rows: Vec<String> = pods
            .iter()
            .map(|p| key(p))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let cols: Vec<String> = svcs
            .iter()
            .map(|s| key(s))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (ri, ci): (BTreeMap<&str, usize>, BTreeMap<&str, usize>) = (
            rows.iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect(),
            cols.iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect(),
        );
        let mut cells: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
        for c in &r.cells {
            let at = (ri[key(c.pod).as_str()], ci[key(c.service).as_str()]);
            let e = cells.entry(at).or_default();
            e.1 += 1;
            if c.failing() > 0.0 {
                e.0 += 1;
            }
        }
        Matrix {
            per_pod,
            rows,
            cols,
            cells,
        }
    }
}

/// Analyses every bundle (bounded as `netsnap analyze` does) into its page, and the
/// cluster checks when there are several.
pub fn build(paths: &[PathBuf], o: &Options<'_>) -> Result<Pages, BatchError> {
    let summarise = paths.len() > 1;
    let shared = Shared::default();
    let mut nodes = batch::analyze_all_with(paths, o, &|path, manifest, a| {
        NodePage::new(path, manifest, a, summarise.then_some(&shared))
    })?;
    let cluster = summarise.then(|| {
        let origins: Vec<String> = nodes.iter().map(|n| n.report.origin.clone()).collect();
        let summaries: Vec<NodeSummary> =
            nodes.iter_mut().filter_map(|n| n.summary.take()).collect();
        let c = ClusterReport::new(origins.iter().map(String::as_str), &summaries, o.selection);
        for (n, s) in nodes.iter_mut().zip(summaries) {
            n.summary = Some(s);
        }
        c
    });
    Ok(Pages { nodes, cluster })
}
