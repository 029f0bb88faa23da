//! Many bundles in one run (`netsnap analyze A B C …`): each bundle is analysed on its
//! own, at most `jobs` at a time, and reduced at once to its report and (for the
//! cluster checks) its [`NodeSummary`]; the bundle and its analysis are then dropped.
//! Memory stays bounded by `jobs` analyses plus the reports and summaries, whatever
//! the number of bundles. Results come back in the order of the paths.

use crate::check::{Selection, Thresholds};
use crate::cluster::NodeSummary;
use crate::load;
use crate::report::{self, BundleReport};
use crate::timings::stage;
use netsnap_schema::{ReadError, ReadLimits};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Analyses alive at once by default. Each analysis already uses every core (rayon),
/// so on the 2-core bench machine a second concurrent analysis gained no wall time
/// (100 medium bundles: 23.6 s with 1, 24.0 s with 2) but cost 84 MiB of peak RSS
/// (138 vs 222 MiB; one medium analysis alone: 55 MiB). `--jobs 2` is there for
/// machines where decompression, which is single-threaded, dominates.
pub const DEFAULT_JOBS: usize = 1;

/// What the analysis of one bundle leaves behind.
#[derive(Debug, Clone)]
pub struct Node {
    pub report: BundleReport,
    /// Made when asked ([`Options::summarise`]).
    pub summary: Option<NodeSummary>,
}

/// How to analyse the bundles.
pub struct Options<'a> {
    pub limits: &'a ReadLimits,
    pub thresholds: &'a Thresholds,
    pub selection: &'a Selection,
    /// Analyses alive at once (at least 1).
    pub jobs: usize,
    /// Make each node's [`NodeSummary`] (for the cluster checks).
    pub summarise: bool,
    /// For a process that ends after the report: do not free a lone bundle's millions
    /// of small allocations one by one (several percent of the run for nothing).
    pub leak_single: bool,
    /// Progress messages (`reading …`, `analyzing …`).
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// A bundle that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot read bundle: {error}", path.display())]
pub struct BatchError {
    pub path: PathBuf,
    pub error: ReadError,
}

/// Analyses every bundle (see the module doc). The first unreadable bundle in path
/// order is the error; no new bundle is started once one failed.
pub fn analyze_all(paths: &[PathBuf], o: &Options<'_>) -> Result<Vec<Node>, BatchError> {
    analyze_all_with(paths, o, &|path, _, a| Node {
        report: BundleReport::new(&path.display().to_string(), a),
        summary: o.summarise.then(|| NodeSummary::of(a)),
    })
}

/// [`analyze_all`] keeping what `keep` makes of each bundle and its analysis (e.g. a
/// page of the HTML report, which needs the graph and the reachability matrix).
pub fn analyze_all_with<T: Send>(
    paths: &[PathBuf],
    o: &Options<'_>,
    keep: &(dyn Fn(&Path, &netsnap_schema::Manifest, &report::Analysis<'_>) -> T + Sync),
) -> Result<Vec<T>, BatchError> {
    if let [path] = paths {
        return one(path, o, o.leak_single, keep).map(|n| vec![n]);
    }
    let jobs = o.jobs.clamp(1, paths.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T, BatchError>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= paths.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let r = one(&paths[i], o, false, keep);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                // A poisoned lock means another worker panicked; the scope re-raises it.
                if let Ok(mut slots) = results.lock() {
                    slots[i] = Some(r);
                }
            });
        }
    });
    let slots = results.into_inner().unwrap_or_default();
    let mut out = Vec::with_capacity(paths.len());
    for slot in slots {
        match slot {
            Some(r) => out.push(r?),
            // Not started because an earlier-started bundle failed; that error is
            // further on in the slots.
            None => continue,
        }
    }
    Ok(out)
}

/// A bundle already in memory (`netsnap analyze` on dumps, imported): analysed like
/// one read from disk.
pub fn analyze_opened(bundle: &netsnap_schema::Bundle, o: &Options<'_>) -> Node {
    (o.progress)(&format!("analyzing {}", bundle.origin));
    let sources = stage("parse", || crate::sources::parse_all(bundle));
    let a = report::analyze_sources(sources, o.thresholds, o.selection);
    Node {
        report: BundleReport::new(&bundle.origin, &a),
        summary: o.summarise.then(|| NodeSummary::of(&a)),
    }
}

/// One bundle: read and parse, analyse, keep the report (and summary), drop the rest.
fn one<T>(
    path: &Path,
    o: &Options<'_>,
    leak: bool,
    keep: &(dyn Fn(&Path, &netsnap_schema::Manifest, &report::Analysis<'_>) -> T + Sync),
) -> Result<T, BatchError> {
    (o.progress)(&format!("reading and parsing {}", path.display()));
    let (mut bundle, parsing) = stage("open+parse", || load::open_and_parse(path, o.limits))
        .map_err(|error| BatchError {
            path: path.to_path_buf(),
            error,
        })?;
    (o.progress)(&format!("analyzing {}", path.display()));
    let manifest = bundle.manifest.clone();
    let sources = stage("assemble", || parsing.finish_releasing(&mut bundle));
    let a = report::analyze_sources(sources, o.thresholds, o.selection);
    let node = keep(path, &manifest, &a);
    if leak {
        std::mem::forget(a);
        std::mem::forget(bundle);
    }
    Ok(node)
}
