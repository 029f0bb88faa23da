//! The main thread's side of the capture: the bundle writer, the records still
//! expected (pending), and the messages the worker threads send.

use super::{Ctx, Msg, NodeHints};
use crate::deadline::Deadline;
use crate::source::{Captured, Content, SOURCES};
use netsnap_schema::layout::NetnsFile;
use netsnap_schema::{BundleWriter, SourceRecord, SourceStatus};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};

/// A record's identity: source name and netns.
type Key = (String, Option<String>);

pub(super) struct Results {
    writer: BundleWriter,
    /// Records expected and not reported yet, with when they were planned (ms).
    pending: BTreeMap<Key, u64>,
    pub hints: NodeHints,
    /// Problems of the orchestration itself, reported in the netns index.
    pub errors: Vec<String>,
    pub lanes_running: usize,
}

impl Results {
    pub fn new(spool_dir: &Path) -> Results {
        Results {
            writer: BundleWriter::new(spool_dir),
            pending: BTreeMap::new(),
            hints: NodeHints::default(),
            errors: Vec::new(),
            lanes_running: 0,
        }
    }

    /// Skipped sources are recorded right away (node-wide first, then per-netns).
    pub fn record_skipped(&mut self, ctx: &Ctx) {
        for d in SOURCES.iter().filter(|d| !d.is_per_netns()) {
            if let Some(why) = ctx.skip_reason(d.name) {
                self.add(Captured::skipped(d.name).with_error(why));
            }
        }
        for f in NetnsFile::ALL {
            if !ctx.wants(f.source_name()) {
                self.add(Captured::skipped(f.source_name()));
            }
        }
    }

    /// Registers a record as expected.
    pub fn expect(&mut self, name: &str, netns: Option<&str>, at_ms: u64) {
        self.pending
            .insert((name.to_string(), netns.map(str::to_string)), at_ms);
    }

    /// Takes a message in; returns those the stage loops handle themselves.
    pub fn take(&mut self, m: Msg) -> Option<Msg> {
        match m {
            Msg::Source(c) => {
                let r = &c.record;
                self.pending.remove(&(r.name.clone(), r.netns.clone()));
                self.add(*c);
            }
            Msg::LaneDone => self.lanes_running = self.lanes_running.saturating_sub(1),
            Msg::NodeHints(h) => self.hints.merge(h),
            other => return Some(other),
        }
        None
    }

    /// Adds a captured source to the writer; a writer error becomes a failed record.
    pub fn add(&mut self, c: Captured) {
        let Captured { record, content } = c;
        let fallback = record.clone();
        let r = match content {
            None => self.writer.add_record(record),
            Some(Content::Bytes(b)) => self.writer.add_bytes(record, &b),
            Some(Content::Spool(s)) => self.writer.add_spooled(record, s),
        };
        if let Err(e) = r {
            let mut rec = fallback;
            rec.path = None;
            rec.status = SourceStatus::Failed;
            rec.error = Some(format!("storing in the bundle: {e}"));
            let _ = self.writer.add_record(rec);
        }
    }

    /// Every record still expected becomes a failure that says why.
    pub fn fail_pending(&mut self, ctx: &Ctx) {
        let timeout_secs = ctx.cfg.timeout.as_secs_f64();
        for ((name, netns), at) in std::mem::take(&mut self.pending) {
            let mut rec = SourceRecord::new(name, SourceStatus::Failed);
            rec.netns = netns;
            rec.started_ms = at;
            rec.duration_ms = ctx.deadline.elapsed_ms().saturating_sub(at);
            rec.error = Some(format!(
                "did not finish before the capture deadline (--timeout {timeout_secs:.0}s)"
            ));
            let _ = self.writer.add_record(rec);
        }
    }

    pub fn into_writer(self) -> BundleWriter {
        self.writer
    }
}

/// Next message, or `None` once the capture phase is over.
pub(super) fn recv(rx: &Receiver<Msg>, deadline: &Deadline) -> Option<Msg> {
    let left = deadline.results_remaining();
    if left.is_zero() {
        return None;
    }
    match rx.recv_timeout(left) {
        Ok(m) => Some(m),
        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
    }
}
