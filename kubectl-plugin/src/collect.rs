//! `kubectl netsnap collect`: choose the nodes, find the DaemonSet pod on each, fetch
//! at most `--parallel` nodes at once (each with its progress line), write
//! collection.json, then analyse what arrived as one cluster.

use crate::fetch::{self, FetchOptions};
use crate::kubectl::Kubectl;
use crate::progress::{mib, Progress, State};
use crate::record::{AnalysisRecord, Collection, NodeRecord, NodeStatus, COLLECTION_VERSION};
use crate::redaction::Redaction;
use crate::targets::{self, NodeChoice, Target};
use crate::{analysis, NAMESPACE, POD_SELECTOR};
use anyhow::{bail, Context, Result};
use netsnap_schema::ReadLimits;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct CollectOptions {
    pub choice: NodeChoice,
    pub dir: PathBuf,
    pub parallel: usize,
    pub timeout: Duration,
    pub redact: bool,
    pub redact_key: Option<PathBuf>,
    pub analyse: bool,
}

impl NodeChoice {
    fn describe(&self) -> String {
        match self {
            NodeChoice::Named(n) => format!("--nodes {}", n.join(",")),
            NodeChoice::Selector(s) => format!("-l {s}"),
            NodeChoice::All => "--all".into(),
        }
    }
}

/// The nodes asked for and the collector pod on each.
pub fn find_targets(k: &Kubectl, choice: &NodeChoice) -> Result<Vec<Target>> {
    let nodes = match choice {
        NodeChoice::Named(n) => n.clone(),
        NodeChoice::Selector(sel) => targets::node_names(&k.json(&["get", "nodes", "-l", sel])?)?,
        NodeChoice::All => targets::node_names(&k.json(&["get", "nodes"])?)?,
    };
    if nodes.is_empty() {
        bail!("no node matches {}", choice.describe());
    }
    let pods = k.json(&["get", "pods", "-n", NAMESPACE, "-l", POD_SELECTOR])?;
    targets::resolve(&nodes, &targets::pods_by_node(&pods)?)
}

/// An output directory that is new or empty (bundles of an earlier run are never
/// mixed into this run's analysis).
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("-o {}", dir.display()))?;
        if entries.next().is_some() {
            bail!("-o {}: directory is not empty", dir.display());
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Runs the collection; returns the record (also written to DIR/collection.json).
pub fn run(k: &Kubectl, o: &CollectOptions) -> Result<Collection> {
    let started = Instant::now();
    let targets = find_targets(k, &o.choice)?;
    prepare_dir(&o.dir)?;
    let redaction = if o.redact {
        let (r, note) = Redaction::new(o.redact_key.as_deref())?;
        if let Some(n) = note {
            eprintln!("kubectl-netsnap: {n}");
        }
        Some(r)
    } else {
        None
    };
    let limits = ReadLimits::default();
    let fo = FetchOptions {
        kubectl: k,
        dir: &o.dir,
        timeout: o.timeout,
        redaction: redaction.as_ref(),
        limits: &limits,
    };
    let shown: Vec<String> = targets
        .iter()
        .map(|t| {
            redaction
                .as_ref()
                .map_or(t.node.clone(), |r| r.shown(&t.node))
        })
        .collect();
    let tty = std::io::stderr().is_terminal();
    let progress = Progress::new(&shown, tty);
    let mut nodes = fetch_all(&fo, &targets, &progress, o.parallel);
    if let Some(r) = &redaction {
        for (rec, t) in nodes.iter_mut().zip(&targets) {
            scrub_record(rec, r, t);
        }
    }
    let mut c = Collection {
        version: COLLECTION_VERSION,
        tool: format!("kubectl-netsnap {}", env!("CARGO_PKG_VERSION")),
        namespace: NAMESPACE.into(),
        selection: match &redaction {
            Some(r) => {
                let names: Vec<&str> = targets.iter().map(|t| t.node.as_str()).collect();
                r.scrub(&o.choice.describe(), &names)
            }
            None => o.choice.describe(),
        },
        parallel: o.parallel,
        timeout_secs: o.timeout.as_secs(),
        redacted: o.redact,
        duration_ms: 0,
        nodes: std::mem::take(&mut nodes),
        analysis: skipped("running"),
    };
    c.duration_ms = started.elapsed().as_millis() as u64;
    c.write(&o.dir)?;
    c.analysis = analyse(&c, o, &limits, tty);
    c.write(&o.dir)?;
    Ok(c)
}

fn skipped(why: &str) -> AnalysisRecord {
    AnalysisRecord {
        status: "skipped".into(),
        report: None,
        summary: None,
        reason: Some(why.into()),
    }
}

fn analyse(c: &Collection, o: &CollectOptions, limits: &ReadLimits, tty: bool) -> AnalysisRecord {
    let bundles: Vec<PathBuf> = c
        .collected()
        .filter_map(|n| n.bundle.as_ref().map(|b| o.dir.join(b)))
        .collect();
    if !o.analyse {
        return skipped("--no-analysis");
    }
    if bundles.is_empty() {
        return skipped("no bundle was collected");
    }
    let color = tty && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    analysis::run(&bundles, &o.dir, limits, color).unwrap_or_else(|e| AnalysisRecord {
        status: "failed".into(),
        report: None,
        summary: None,
        reason: Some(format!("{e:#}")),
    })
}

/// With --redact the record names nothing real: node and pod names become
/// pseudonyms, in the reason too.
fn scrub_record(rec: &mut NodeRecord, r: &Redaction, t: &Target) {
    let mut names = vec![t.node.as_str()];
    if let Ok(p) = &t.pod {
        names.push(p);
    }
    rec.node = r.shown(&t.node);
    rec.pod = rec.pod.as_deref().map(|p| r.scrub(p, &names));
    rec.reason = rec.reason.as_deref().map(|s| r.scrub(s, &names));
}

/// Fetches every target, at most `parallel` at once, records in target order.
fn fetch_all(
    fo: &FetchOptions<'_>,
    targets: &[Target],
    progress: &Progress,
    parallel: usize,
) -> Vec<NodeRecord> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let records: Mutex<Vec<Option<NodeRecord>>> = Mutex::new(vec![None; targets.len()]);
    std::thread::scope(|s| {
        let drawer = s.spawn(|| progress.draw_until(&stop));
        let workers: Vec<_> = (0..parallel.clamp(1, targets.len().max(1)))
            .map(|_| {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(t) = targets.get(i) else { break };
                    progress.set(i, State::Receiving);
                    let rec = fetch::fetch(fo, t, &progress.counter(i));
                    progress.set(i, outcome_state(&rec));
                    records.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(rec);
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        stop.store(true, Ordering::SeqCst);
        let _ = drawer.join();
    });
    records
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(targets)
        .map(|(r, t)| {
            r.unwrap_or_else(|| {
                NodeRecord::new(&t.node, None).failed(
                    NodeStatus::Failed,
                    "worker failed".into(),
                    Instant::now(),
                )
            })
        })
        .collect()
}

fn outcome_state(rec: &NodeRecord) -> State {
    match rec.status {
        NodeStatus::Collected => State::Done(format!("collected ({})", mib(rec.bytes))),
        other => {
            let why = rec.reason.as_deref().unwrap_or("");
            let first = why.lines().next().unwrap_or("");
            let status = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            State::Failed(format!("{status}: {first}"))
        }
    }
}
