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

use crate::parse::{self, Coverage, Parsed};
use netsnap_schema::layout;
use netsnap_schema::model::{
    Addr, ConntrackSysctl, HostFacts, Link, NeighTable, NetnsIndex, RouteTable, Socket, Sysctls,
};
use netsnap_schema::{Bundle, Manifest, OnRead};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// of a big bundle, is read in pieces of whole lines, each parsed as soon as it is
/// read while the rest is still being decompressed (one core would otherwise only
/// wait), and never held whole: the aggregates keep the text they cite, and are
/// merged as soon as the last piece is parsed.
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
        self.scope.spawn(move |_| {
            parsing.conntrack_chunk(&path, &piece, (offset, first_line));
            parsing.conntrack_piece_done();
        });
    }

    fn pieces_end(&mut self, _: &str) {
        let parsing = self.parsing;
        self.scope.spawn(move |_| parsing.conntrack_piece_done());
    }

    fn entry(&mut self, path: &str, data: &Arc<Vec<u8>>) {
        self.parsing.start(self.scope, path, data.clone());
    }
}

/// A poisoned lock only means another parse task panicked; its data is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
