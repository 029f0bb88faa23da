//! The parse stage: every source of a bundle, parsed in parallel (rayon), with the
//! coverage of every parser. One job per file; conntrack entries, which can be
//! hundreds of MB, are split into line-aligned chunks parsed concurrently.
//!
//! Jobs are collected in bundle path order, so the result does not depend on the
//! number of threads.

mod capped;
pub mod flows;
mod jobs;
pub mod lines;
mod proxier;

pub use flows::Flows;
pub use jobs::{Job, JobKind, UNKNOWN_SOURCE};
pub use lines::LineIndex;
pub use proxier::Proxier;

use crate::evidence::Excerpt;
use crate::parse::coverage::MAX_EXCERPT;
use crate::parse::{self, Coverage, Parsed};
use netsnap_schema::layout;
use netsnap_schema::model::{
    Addr, ConntrackSysctl, HostFacts, Link, NeighTable, NetnsIndex, RouteTable, Socket, Sysctls,
};
use netsnap_schema::{Bundle, Manifest, OnRead};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A JSON source with where its items start (for evidence).
#[derive(Debug, Clone)]
pub struct JsonSource<T> {
    pub path: String,
    pub value: T,
    /// Line of each item, per array (e.g. routes then rules).
    pub item_lines: Vec<usize>,
    /// Line of each key of a flat object (sysctls).
    pub key_lines: BTreeMap<String, usize>,
    /// Items left out because the source is larger than the analyzer reads
    /// (line of the first one left out, and why).
    pub left_out: Option<(usize, String)>,
}

/// The per-netns files of one netns.
#[derive(Debug, Clone, Default)]
pub struct NetnsSources {
    pub links: Option<JsonSource<Vec<Link>>>,
    pub addrs: Option<JsonSource<Vec<Addr>>>,
    pub routes: Option<JsonSource<RouteTable>>,
    pub neigh: Option<JsonSource<NeighTable>>,
    pub sockets: Option<JsonSource<Vec<Socket>>>,
    pub sysctl: Option<JsonSource<Sysctls>>,
    pub resolv: Option<Parsed<parse::resolv::ResolvConf>>,
}

/// One iptables save file and which backend/family wrote it.
#[derive(Debug, Clone)]
pub struct IptablesSource {
    pub path: String,
    pub proxier: Proxier,
    pub ipv6: bool,
    pub parsed: Parsed<parse::iptables::Ruleset>,
}

/// Everything parsed from one bundle.
pub struct Sources<'b> {
    pub bundle: &'b Bundle,
    pub host_facts: Option<JsonSource<HostFacts>>,
    pub host_sysctl: Option<JsonSource<Sysctls>>,
    pub host_resolv: Option<Parsed<parse::resolv::ResolvConf>>,
    pub kubelet_resolv: Option<Parsed<parse::resolv::ResolvConf>>,
    pub kmsg: Option<Parsed<parse::kmsg::Kmsg>>,
    pub netns_index: Option<JsonSource<NetnsIndex>>,
    pub netns: BTreeMap<String, NetnsSources>,
    pub iptables: Vec<IptablesSource>,
    pub nft: Option<Parsed<parse::nft::NftRuleset>>,
    pub ipset: Option<Parsed<parse::ipset::IpsetSave>>,
    pub ipvs: Option<Parsed<parse::ipvs::IpvsTable>>,
    /// `cilium-dbg service list -o json`, when captured.
    pub cilium: Option<Parsed<parse::cilium::CiliumServices>>,
    /// Counter readings of `--samples`, when taken.
    pub counter_samples: Option<Parsed<parse::samples::CounterReadings>>,
    /// Conntrack entries, reduced to flow aggregates while parsed (a table can hold a
    /// million entries; only aggregates and the text of their first entries are kept).
    pub conntrack: Option<Flows>,
    pub conntrack_stat: Option<Parsed<parse::ct_stat::ConntrackStats>>,
    pub conntrack_sysctl: Option<JsonSource<ConntrackSysctl>>,
    /// Every file of the CNI configuration directory, in path (lexical) order.
    pub cni: Vec<parse::cni::CniFile>,
    /// Coverage of every parsed source (conntrack chunks merged), in path order.
    pub coverage: Vec<Coverage>,
    /// Text and line index of every text source, for excerpts (decoded once).
    lines: BTreeMap<String, (Cow<'b, str>, LineIndex)>,
}

impl<'b> Sources<'b> {
    pub fn manifest(&self) -> &Manifest {
        &self.bundle.manifest
    }

    /// The raw text of line `line` of a text source, for evidence.
    pub fn excerpt(&self, path: &str, line: usize) -> String {
        self.excerpts(path)(line)
    }

    /// [`Sources::excerpt`] of many lines of one source: the source is looked up once
    /// (the model cites a ruleset's rules by the hundred thousand).
    pub fn excerpts(&self, path: &str) -> impl Fn(usize) -> String + Sync + '_ {
        let source = self.lines.get(path);
        move |line| match source {
            Some((text, ix)) => ix.excerpt(text, line),
            None => String::new(),
        }
    }

    /// [`Sources::excerpts`] as [`Excerpt`]s that read a line where it lies in the
    /// bundle (a line of a valid UTF-8 source no longer than an excerpt), for the
    /// model's citations by the hundred thousand that few findings show.
    pub fn line_excerpts(&self, path: &str) -> impl Fn(usize) -> Excerpt + Sync + '_ {
        // Only a source decoded without repair is the bundle's bytes, line for line.
        let in_place = match (self.lines.get(path), self.bundle.shared(path)) {
            (Some((Cow::Borrowed(text), ix)), Some(bytes)) => Some((text.len(), ix, bytes)),
            _ => None,
        };
        let copied = self.excerpts(path);
        move |line| {
            let span = in_place.and_then(|(len, ix, bytes)| Some((ix.span(len, line)?, bytes)));
            match span {
                Some((span, bytes)) if span.len() <= MAX_EXCERPT => {
                    Excerpt::line(bytes.clone(), span)
                }
                _ => Excerpt::Text(copied(line)),
            }
        }
    }

    /// Keeps a text source's line index (and its decoded text) for excerpts.
    pub(crate) fn remember(&mut self, path: impl Into<String>, ix: LineIndex) {
        let path = path.into();
        if let Some(data) = self.bundle.file(&path) {
            self.lines.insert(path, (decode(data), ix));
        }
    }

    pub fn text(&self, path: &str) -> Option<Cow<'b, str>> {
        self.bundle.file(path).map(decode)
    }
}

/// An entry's text with invalid UTF-8 replaced, but valid text, the normal case, is
/// checked with the fast validator: `from_utf8_lossy` walks it several times slower,
/// which shows on a 50 MB ruleset.
pub(crate) fn decode(data: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(data) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(data),
    }
}

/// Parses every source of an opened bundle in parallel.
pub fn parse_all(bundle: &Bundle) -> Sources<'_> {
    parse_entries(bundle).finish(bundle)
}

/// Parses every entry of an opened bundle in parallel, to be finished
/// ([`Parsing::finish`], [`Parsing::finish_releasing`]).
pub fn parse_entries(bundle: &Bundle) -> Parsing {
    let parsing = Parsing::default();
    rayon::in_place_scope(|scope| {
        for path in bundle.paths() {
            if let Some(data) = bundle.shared(path) {
                parsing.start(scope, path, data.clone());
            }
        }
    });
    parsing
}

/// Conntrack pieces (4 MiB each) that may wait for a parse task before the reader's
/// core is shared with one more ([`Parsing::conntrack_takers_allowed`]).
const MAX_CONNTRACK_BACKLOG: usize = 8;

/// Parses entries as they are handed over, each on the rayon pool, so parsing can run
/// while the reader is still decompressing later entries
/// ([`crate::load::open_and_parse`]). [`Parsing::finish`] folds the results in path
/// order, so they do not depend on the order entries were parsed in.
#[derive(Default)]
pub struct Parsing {
    outputs: Mutex<Vec<(String, jobs::Output)>>,
    /// Conntrack aggregates not in use by a chunk task: a task takes one, adds its
    /// chunk and puts it back, so there are about as many as threads.
    conntrack: Mutex<Vec<jobs::ConntrackPart>>,
    /// Pieces of a conntrack table read in pieces still being parsed, plus one while
    /// the table is still being read: whoever brings it to 0 merges the aggregates
    /// ([`Parsing::conntrack_merged`]), beside the parsing of the rest of the bundle.
    conntrack_pending: AtomicUsize,
    conntrack_merged: Mutex<Option<(Flows, Coverage)>>,
    /// Pieces of a conntrack table read but not yet taken by a parse task.
    conntrack_backlog: Mutex<VecDeque<ConntrackPiece>>,
    /// Parse tasks taking pieces from the backlog.
    conntrack_takers: AtomicUsize,
    /// Whether the bundle is still being read ([`Feed`] is alive).
    reading: AtomicBool,
}

/// A piece of a conntrack table, from byte and line `at` of the table.
struct ConntrackPiece {
    path: String,
    data: Arc<Vec<u8>>,
    at: (usize, usize),
}

impl Parsing {
    /// Starts parsing one entry on `scope`.
    pub fn start<'s>(&'s self, scope: &rayon::Scope<'s>, path: &str, data: Arc<Vec<u8>>) {
        let Some(job) = jobs::plan(path) else { return };
        if job.is_conntrack_entries() {
            return self.conntrack_whole(scope, job.path, data);
        }
        scope.spawn(move |_| {
            let out = jobs::run(&data, &job);
            lock(&self.outputs).push((job.path, out));
        });
    }

    /// Parses the conntrack entries (`data`, at `path`) in chunks side by side.
    fn conntrack_whole<'s>(&'s self, scope: &rayon::Scope<'s>, path: String, data: Arc<Vec<u8>>) {
        scope.spawn(move |scope| {
            for (start, end, first) in jobs::chunks(&data, jobs::CONNTRACK_CHUNK_BYTES) {
                let (data, path) = (data.clone(), path.clone());
                scope.spawn(move |_| {
                    let chunk = data.get(start..end).unwrap_or_default();
                    self.conntrack_chunk(&path, chunk, (start, first));
                });
            }
        });
    }

    /// Adds one chunk of conntrack entries (from byte and line `at` of the table) to
    /// an aggregate not in use.
    fn conntrack_chunk(&self, path: &str, chunk: &[u8], at: (usize, usize)) {
        let waiting = lock(&self.conntrack).pop();
        let mut part = waiting.unwrap_or_else(|| jobs::ConntrackPart::new(path));
        jobs::conntrack_chunk(&mut part, path, chunk, at);
        lock(&self.conntrack).push(part);
    }

    /// What the reader shows of a bundle, fed to this parsing on `scope`: whole
    /// entries, and the conntrack table piece by piece while it is still being read.
    pub fn feed<'a, 's>(&'s self, scope: &'a rayon::Scope<'s>) -> Feed<'a, 's> {
        self.reading.store(true, Ordering::Release);
        Feed {
            parsing: self,
            scope,
            conntrack_lines: 0,
        }
    }

    /// Folds every output into the sources of `bundle`, then releases the raw
    /// conntrack table from it (if it was read whole): everything the analysis needs
    /// from it (aggregates, the text of each aggregate's first entry, unrecognised
    /// lines) has been taken, and on a big node it is most of the bundle's memory.
    pub fn finish_releasing(self, bundle: &mut Bundle) -> Sources<'_> {
        let conntrack = self.conntrack_flows();
        // Read whole (from a directory), the table is still in the bundle.
        bundle.release(layout::CONNTRACK_ENTRIES);
        self.assemble(bundle, conntrack)
    }

    /// Folds every output into the sources of `bundle`.
    pub fn finish(self, bundle: &Bundle) -> Sources<'_> {
        let conntrack = self.conntrack_flows();
        self.assemble(bundle, conntrack)
    }

    /// The merged conntrack aggregates as flow lists with their evidence text, and
    /// the coverage of the table.
    fn conntrack_flows(&self) -> Option<(Flows, Coverage)> {
        lock(&self.conntrack_merged)
            .take()
            .or_else(|| self.conntrack_merge())
    }

    /// How many tasks may parse conntrack pieces at once. While the bundle is being
    /// read, one core fewer than the pool has: the reader, whose decompression nothing
    /// else can do, keeps a core (on two cores it shared them with the hasher and two
    /// parse tasks, and reached the ruleset after the table later, while a core
    /// waited). Every thread once reading is over, or when more than
    /// [`MAX_CONNTRACK_BACKLOG`] pieces wait (memory stays bounded where parsing is
    /// slower than decompression).
    fn conntrack_takers_allowed(&self) -> usize {
        let threads = rayon::current_num_threads();
        let behind = lock(&self.conntrack_backlog).len() > MAX_CONNTRACK_BACKLOG;
        match self.reading.load(Ordering::Acquire) && !behind {
            true => threads.saturating_sub(1).max(1),
            false => threads,
        }
    }

    /// Starts a task taking pieces from the backlog, unless as many as allowed run
    /// already. A task stops when the backlog is empty, or after a piece when more
    /// tasks run than are allowed.
    fn take_conntrack_pieces<'s>(&'s self, scope: &rayon::Scope<'s>) {
        let allowed = self.conntrack_takers_allowed();
        let started = self
            .conntrack_takers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < allowed).then_some(n + 1)
            })
            .is_ok();
        if !started {
            return;
        }
        scope.spawn(move |scope| {
            loop {
                // Its own statement: the lock must not be held while the piece is parsed.
                let next = lock(&self.conntrack_backlog).pop_front();
                let Some(piece) = next else { break };
                self.conntrack_chunk(&piece.path, &piece.data, piece.at);
                drop(piece);
                self.conntrack_piece_done();
                let allowed = self.conntrack_takers_allowed();
                let stopped = self
                    .conntrack_takers
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n > allowed).then_some(n - 1)
                    })
                    .is_ok();
                if stopped {
                    // The others (at least `allowed`) go on until the backlog is empty.
                    return;
                }
            }
            self.conntrack_takers.fetch_sub(1, Ordering::AcqRel);
            // A piece queued after the backlog was found empty, but while this task
            // still counted, started no task of its own.
            if !lock(&self.conntrack_backlog).is_empty() {
                self.take_conntrack_pieces(scope);
            }
        });
    }

    /// One conntrack piece (or the reading of the table) less to wait for: the last
    /// merges the aggregates.
    fn conntrack_piece_done(&self) {
        if self.conntrack_pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            *lock(&self.conntrack_merged) = self.conntrack_merge();
        }
    }

    /// Merges the conntrack aggregates of every part.
    fn conntrack_merge(&self) -> Option<(Flows, Coverage)> {
        let parts = std::mem::take(&mut *lock(&self.conntrack));
        let mut coverage: Option<Coverage> = None;
        let mut aggregates = Vec::with_capacity(parts.len());
        for part in parts {
            match &mut coverage {
                Some(c) => c.merge(part.coverage),
                None => coverage = Some(part.coverage),
            }
            aggregates.push(part.flows);
        }
        let coverage = coverage?;
        Some((flows::Aggregates::finish_all(aggregates), coverage))
    }

    fn assemble(self, bundle: &Bundle, conntrack: Option<(Flows, Coverage)>) -> Sources<'_> {
        let mut outputs = self.outputs.into_inner().unwrap_or_else(|e| e.into_inner());
        outputs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut s = Sources {
            bundle,
            host_facts: None,
            host_sysctl: None,
            host_resolv: None,
            kubelet_resolv: None,
            kmsg: None,
            netns_index: None,
            netns: BTreeMap::new(),
            iptables: Vec::new(),
            nft: None,
            ipset: None,
            ipvs: None,
            cilium: None,
            conntrack: None,
            conntrack_stat: None,
            counter_samples: None,
            conntrack_sysctl: None,
            cni: Vec::new(),
            coverage: Vec::new(),
            lines: BTreeMap::new(),
        };
        for (_, out) in outputs {
            jobs::absorb(&mut s, out);
        }
        if let Some((flows, coverage)) = conntrack {
            s.conntrack = Some(flows);
            s.coverage.push(coverage);
        }
        s.coverage.sort_by(|a, b| a.path.cmp(&b.path));
        s
    }
}

/// Hands a [`Parsing`] what the reader shows ([`OnRead`]). The conntrack table, most
/// of a big bundle, is read in pieces of whole lines, each parsed while the rest is
/// still being decompressed (one core would otherwise only wait) by tasks that leave
/// the reader a core ([`Parsing::conntrack_takers_allowed`]), and never held whole:
/// the aggregates keep the text they cite, and are merged as soon as the last piece
/// is parsed.
pub struct Feed<'a, 's> {
    parsing: &'s Parsing,
    scope: &'a rayon::Scope<'s>,
    /// Lines of the conntrack table handed to parse tasks so far.
    conntrack_lines: usize,
}

impl OnRead for Feed<'_, '_> {
    fn wants_pieces(&mut self, path: &str) -> bool {
        let table = jobs::plan(path).is_some_and(|job| job.is_conntrack_entries());
        if table {
            self.conntrack_lines = 0;
            // The table is being read: not to be merged before its end.
            self.parsing
                .conntrack_pending
                .fetch_add(1, Ordering::AcqRel);
        }
        table
    }

    fn piece(&mut self, path: &str, offset: usize, piece: &Arc<Vec<u8>>) {
        let (parsing, piece, path) = (self.parsing, piece.clone(), path.to_string());
        let first_line = self.conntrack_lines + 1;
        self.conntrack_lines += memchr::memchr_iter(b'\n', &piece).count();
        parsing.conntrack_pending.fetch_add(1, Ordering::AcqRel);
        lock(&parsing.conntrack_backlog).push_back(ConntrackPiece {
            path,
            data: piece,
            at: (offset, first_line),
        });
        parsing.take_conntrack_pieces(self.scope);
    }

    fn pieces_end(&mut self, _: &str) {
        let parsing = self.parsing;
        self.scope.spawn(move |_| parsing.conntrack_piece_done());
    }

    fn entry(&mut self, path: &str, data: &Arc<Vec<u8>>) {
        self.parsing.start(self.scope, path, data.clone());
    }
}

/// The reading is over: conntrack pieces still waiting may now be parsed on every
/// thread.
impl Drop for Feed<'_, '_> {
    fn drop(&mut self) {
        self.parsing.reading.store(false, Ordering::Release);
        for _ in 0..self.parsing.conntrack_takers_allowed() {
            self.parsing.take_conntrack_pieces(self.scope);
        }
    }
}

/// A poisoned lock only means another parse task panicked; its data is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While reading, conntrack parse tasks leave the reader a core until the backlog
    /// passes its bound; after reading, every thread may take pieces.
    #[test]
    fn conntrack_takers_leave_the_reader_a_core() {
        let in_pool = |threads: usize, f: &(dyn Fn() + Sync)| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            pool.expect("pool").install(f);
        };
        in_pool(4, &|| {
            let parsing = Parsing::default();
            let backlog = |n: usize| {
                let mut b = lock(&parsing.conntrack_backlog);
                b.clear();
                b.extend((0..n).map(|i| ConntrackPiece {
                    path: "ct".into(),
                    data: Arc::new(Vec::new()),
                    at: (i, i),
                }));
            };
            parsing.reading.store(true, Ordering::Release);
            backlog(MAX_CONNTRACK_BACKLOG);
            assert_eq!(parsing.conntrack_takers_allowed(), 3);
            backlog(MAX_CONNTRACK_BACKLOG + 1);
            assert_eq!(parsing.conntrack_takers_allowed(), 4);
            parsing.reading.store(false, Ordering::Release);
            backlog(0);
            assert_eq!(parsing.conntrack_takers_allowed(), 4);
        });
        in_pool(1, &|| {
            let parsing = Parsing::default();
            parsing.reading.store(true, Ordering::Release);
            assert_eq!(parsing.conntrack_takers_allowed(), 1);
        });
    }
}
