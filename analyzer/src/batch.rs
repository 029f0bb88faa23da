//! Many bundles in one run (`netsnap analyze A B C …`): each bundle is analysed on its
//! own, at most `jobs` at a time (each on its share of the cores), and reduced at once
//! to its report and (for the cluster checks) its [`NodeSummary`]; the bundle and its
//! analysis are then dropped.
//! With one job the next bundle is read while the current one is analysed.
//! Memory stays bounded by `jobs` analyses (plus, with one job, one read bundle) and
//! the reports and summaries, whatever the number of bundles. Results come back in the
//! order of the paths.

use crate::check::{Finding, Selection, Thresholds};
use crate::cluster::{self, NodeSummary};
use crate::graph::NodeGraph;
use crate::load;
use crate::model::Model;
use crate::report::{self, Analysis, BundleReport};
use crate::sources::Parsing;
use crate::timings::stage;
use crate::trace::reach::Reachability;
use netsnap_schema::{Bundle, ReadError, ReadLimits};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SendError, SyncSender};
use std::sync::Mutex;

/// Analyses alive at once by default: two (one on a one-core machine), each on a
/// thread pool of its half of the cores. History, on the 2-core bench machine with
/// 100 medium bundles (docs/performance.md, "Many bundles as one cluster"): when every
/// job spread its work over every core, a second job cost ~10 % more CPU and gained
/// little, and one job at a time with the next bundle read ahead was the default
/// (1.23× the ideal wall); with the cores split between two jobs, neither waits for
/// the other's serial stages: 0.97× the ideal wall, peak RSS 2.78× one analysis
/// (1.08× and 2.88× with one job, at 49ae3a7). More jobs would hold more analyses in
/// memory for no core left to run them.
pub fn default_jobs() -> usize {
    cores().min(2)
}

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
    let shared = cluster::Shared::default();
    analyze_all_with(paths, o, &|path, _, a| Node {
        report: BundleReport::new(&path.display().to_string(), a),
        summary: o.summarise.then(|| NodeSummary::of_shared(a, &shared)),
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
        let free = if o.leak_single {
            Free::Never
        } else {
            Free::Here
        };
        return open(path, o).map(|opened| vec![analyse(path, opened, o, free, keep)]);
    }
    let jobs = o.jobs.clamp(1, paths.len().max(1));
    // One job keeps every core for itself and reads the next bundle ahead.
    if jobs == 1 {
        return read_ahead(paths, o, keep);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T, BatchError>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    let (next, failed, results) = (&next, &failed, &results);
    let threads = (cores() / jobs).max(1);
    std::thread::scope(|scope| {
        let garbage = spawn_freer(scope);
        for _ in 0..jobs {
            let garbage = garbage.clone();
            scope.spawn(move || {
                let work = || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= paths.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = open(&paths[i], o).map(|opened| {
                        analyse(&paths[i], opened, o, Free::Elsewhere(&garbage), keep)
                    });
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    // A poisoned lock means another worker panicked; the scope
                    // re-raises it.
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(r);
                    }
                };
                // Each job on a pool of its share of the cores: jobs that split the
                // cores between them, rather than all jobs splitting their work over
                // every core, leave no core idle in one analysis's serial stages and
                // pay no cross-core overhead for it. Without a pool of its own (the
                // system refused a thread) a job runs on the shared one.
                match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                    Ok(pool) => pool.install(work),
                    Err(_) => work(),
                }
            });
        }
    });
    let slots = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
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

/// One analysis at a time, with the next bundle read beside it: reading (zstd is
/// single-threaded) and verifying fill the cores that the current analysis leaves
/// idle in its serial stages; the bundle is parsed (in parallel) when its turn comes.
/// Reading ahead does not parse: parse tasks on the shared pool queued the current
/// analysis's own parallel work behind them (its model stage took 4× as long), and a
/// parsed bundle waiting costs more memory than a read one. The rendezvous channel
/// keeps at most one read bundle waiting. 100 medium bundles on 2 CPUs, quiet machine:
/// 15.1 → 14.0 s, 3 % less CPU, peak RSS 147 → 165 MiB (docs/performance.md).
fn read_ahead<T: Send>(
    paths: &[PathBuf],
    o: &Options<'_>,
    keep: &(dyn Fn(&Path, &netsnap_schema::Manifest, &report::Analysis<'_>) -> T + Sync),
) -> Result<Vec<T>, BatchError> {
    std::thread::scope(|scope| {
        let garbage = spawn_freer(scope);
        let (read, to_analyse) = std::sync::mpsc::sync_channel::<Result<Bundle, BatchError>>(0);
        scope.spawn(move || {
            for path in paths {
                (o.progress)(&format!("reading {}", path.display()));
                let r = stage("open", || load::open(path, o.limits)).map_err(unreadable(path));
                let failed = r.is_err();
                // A closed channel: the analysing side stopped (an error); so do we.
                if read.send(r).is_err() || failed {
                    break;
                }
            }
        });
        let mut out = Vec::with_capacity(paths.len());
        // Bundles arrive in path order; the first error ends the run (returning drops
        // the receiver, which stops the reader).
        for (path, r) in paths.iter().zip(to_analyse) {
            let bundle = r?;
            (o.progress)(&format!("parsing {}", path.display()));
            let parsing = stage("parse", || crate::sources::parse_entries(&bundle));
            out.push(analyse(
                path,
                (bundle, parsing),
                o,
                Free::Elsewhere(&garbage),
                keep,
            ));
        }
        Ok(out)
    })
}

/// Starts the thread that frees finished analyses; returns where to send them.
/// Freeing an analysis (millions of small allocations: 6–10 ms of a medium one's
/// ~150 with mimalloc, 13–24 ms with glibc's malloc) is work a lone analysis never does
/// (it exits instead): done on a thread of its own, it fills the cores the next
/// analysis leaves idle in its serial stages. The rendezvous channel keeps at most one
/// analysis waiting to be freed.
fn spawn_freer<'scope>(scope: &'scope std::thread::Scope<'scope, '_>) -> SyncSender<Garbage> {
    let (garbage, to_free) = std::sync::mpsc::sync_channel::<Garbage>(0);
    scope.spawn(move || {
        for g in to_free {
            stage("drop", || drop(g));
        }
    });
    garbage
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

/// What outlives a bundle's own buffers in its analysis: freed on the drop thread.
type Garbage = (Model, NodeGraph, Option<Reachability>, Vec<Finding>);

/// Where a finished analysis is freed.
enum Free<'g> {
    Here,
    /// Sent to the drop thread of [`analyze_all`].
    Elsewhere(&'g SyncSender<Garbage>),
    /// Not at all (see [`Options::leak_single`]).
    Never,
}

/// A bundle read and verified, its entries parsed.
type Opened = (netsnap_schema::Bundle, Parsing);

/// Reads, verifies and parses one bundle.
fn open(path: &Path, o: &Options<'_>) -> Result<Opened, BatchError> {
    (o.progress)(&format!("reading and parsing {}", path.display()));
    stage("open+parse", || load::open_and_parse(path, o.limits)).map_err(unreadable(path))
}

/// The error of a bundle at `path` that could not be read.
fn unreadable(path: &Path) -> impl FnOnce(ReadError) -> BatchError + '_ {
    |error| BatchError {
        path: path.to_path_buf(),
        error,
    }
}

/// Analyses one opened bundle, keeps what `keep` makes of it, frees the rest.
fn analyse<T>(
    path: &Path,
    (mut bundle, parsing): Opened,
    o: &Options<'_>,
    free: Free<'_>,
    keep: &(dyn Fn(&Path, &netsnap_schema::Manifest, &report::Analysis<'_>) -> T + Sync),
) -> T {
    (o.progress)(&format!("analyzing {}", path.display()));
    let manifest = bundle.manifest.clone();
    let sources = stage("assemble", || parsing.finish_releasing(&mut bundle));
    let a = report::analyze_sources(sources, o.thresholds, o.selection);
    let node = stage("keep", || keep(path, &manifest, &a));
    match free {
        Free::Never => {
            std::mem::forget(a);
            std::mem::forget(bundle);
        }
        Free::Here => drop(a),
        Free::Elsewhere(garbage) => {
            let Analysis {
                sources,
                model,
                graph,
                reach,
                findings,
            } = a;
            // The sources borrow the bundle: freed here, with it.
            drop(sources);
            drop(bundle);
            // A closed channel (the drop thread panicked) frees it here instead.
            if let Err(SendError(g)) = garbage.send((model, graph, reach, findings)) {
                drop(g);
            }
        }
    }
    node
}
