//! The catalog of sources, `--only`/`--skip` selection, and what a captured source
//! looks like on its way to the bundle writer.

use crate::deadline::{millis, Deadline};
use netsnap_schema::layout::NetnsFile;
use netsnap_schema::registry::{self, Location, Producer, SourceId};
use netsnap_schema::{SourceRecord, SourceStatus, Spool};
use serde::Serialize;
use std::io;
use std::sync::LazyLock;
use std::time::Instant;

/// The collector's view of a registry entry: the sources it captures, by stable name,
/// with their group and where they go in a bundle.
#[derive(Debug, Clone, Copy)]
pub struct SourceDef {
    pub id: SourceId,
    pub name: &'static str,
    pub group: &'static str,
    pub location: Location,
}

impl SourceDef {
    /// One file per netns (`netns/<id>/<file>`), captured by the netns pool.
    pub fn is_per_netns(&self) -> bool {
        matches!(self.location, Location::PerNetns(_))
    }

    /// Where the source goes, as `--only list` shows it.
    pub fn path_display(&self) -> String {
        match self.location {
            Location::File(p) => p.to_string(),
            Location::PerNetns(_) => "netns/<id>/…".to_string(),
            Location::Dir(d) => format!("{d}/<file name>"),
        }
    }
}

/// `--only/--skip` groups, in capture order: the registry's.
pub const GROUPS: [&str; 7] = registry::GROUPS;

/// Every source the collector writes, in the registry's order.
pub static SOURCES: LazyLock<Vec<SourceDef>> = LazyLock::new(|| {
    registry::SOURCES
        .iter()
        .filter(|s| s.producers.contains(&Producer::Collector))
        .map(|s| SourceDef {
            id: s.id,
            name: s.name,
            group: s.group,
            location: s.location,
        })
        .collect()
});

pub fn def(name: &str) -> Option<&'static SourceDef> {
    SOURCES.iter().find(|d| d.name == name)
}

/// `--only` / `--skip`: each pattern is a source name or a group name.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    only: Vec<String>,
    skip: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown source {0:?} (known: {list})", list = known_names())]
pub struct UnknownSource(pub String);

fn known_names() -> String {
    let mut v: Vec<&str> = GROUPS.to_vec();
    v.extend(SOURCES.iter().map(|d| d.name));
    v.join(", ")
}

impl Selection {
    /// Patterns may also be comma-separated (`--only nft,ipset`).
    pub fn new(only: &[String], skip: &[String]) -> Result<Selection, UnknownSource> {
        let split = |v: &[String]| -> Result<Vec<String>, UnknownSource> {
            let mut out = Vec::new();
            for p in v.iter().flat_map(|s| s.split(',')) {
                let p = p.trim();
                if p.is_empty() {
                    continue;
                }
                if !GROUPS.contains(&p) && def(p).is_none() {
                    return Err(UnknownSource(p.to_string()));
                }
                out.push(p.to_string());
            }
            Ok(out)
        };
        Ok(Selection {
            only: split(only)?,
            skip: split(skip)?,
        })
    }

    pub fn all() -> Selection {
        Selection::default()
    }

    /// Whether the source `name` is to be captured.
    pub fn wants(&self, name: &str) -> bool {
        let group = def(name).map(|d| d.group).unwrap_or("");
        let matches = |p: &String| p == name || p == group;
        (self.only.is_empty() || self.only.iter().any(matches)) && !self.skip.iter().any(matches)
    }

    /// Whether any per-netns source (or the index) is wanted, i.e. discovery is needed.
    pub fn wants_netns(&self) -> bool {
        self.wants(SourceId::NetnsIndex.name())
            || NetnsFile::ALL.iter().any(|f| self.wants(f.source_name()))
    }

    pub fn describe(&self) -> (String, String) {
        (self.only.join(","), self.skip.join(","))
    }
}

/// Content of a captured source.
pub enum Content {
    Bytes(Vec<u8>),
    Spool(Spool),
}

/// A source record and its content (if any), on its way to the writer.
pub struct Captured {
    pub record: SourceRecord,
    pub content: Option<Content>,
}

impl Captured {
    fn new(name: &str, status: SourceStatus) -> Captured {
        Captured {
            record: SourceRecord::new(name, status),
            content: None,
        }
    }

    pub fn bytes(
        name: &str,
        path: impl Into<String>,
        status: SourceStatus,
        bytes: Vec<u8>,
    ) -> Self {
        let mut c = Captured::new(name, status);
        c.record.path = Some(path.into());
        c.content = Some(Content::Bytes(bytes));
        c
    }

    pub fn spooled(
        name: &str,
        path: impl Into<String>,
        status: SourceStatus,
        spool: Spool,
    ) -> Self {
        let mut c = Captured::new(name, status);
        c.record.path = Some(path.into());
        c.content = Some(Content::Spool(spool));
        c
    }

    /// Pretty JSON with a final newline, as `BundleWriter::add_json` writes it.
    pub fn json<T: Serialize>(
        name: &str,
        path: impl Into<String>,
        status: SourceStatus,
        value: &T,
    ) -> Self {
        match json_bytes(value) {
            Ok(b) => Captured::bytes(name, path, status, b),
            Err(e) => Captured::failed(name, format!("encoding JSON: {e}")),
        }
    }

    pub fn failed(name: &str, error: impl Into<String>) -> Self {
        let mut c = Captured::new(name, SourceStatus::Failed);
        c.record.error = Some(error.into());
        c
    }

    pub fn unavailable(name: &str, reason: impl Into<String>) -> Self {
        let mut c = Captured::new(name, SourceStatus::Unavailable);
        c.record.error = Some(reason.into());
        c
    }

    /// Part of a source that could not be had (no content), the rest being there.
    pub fn new_partial(name: &str, error: impl Into<String>) -> Self {
        let mut c = Captured::new(name, SourceStatus::Partial);
        c.record.error = Some(error.into());
        c
    }

    /// The content held in memory (tests).
    #[cfg(test)]
    pub fn content_bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Some(Content::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    pub fn skipped(name: &str) -> Self {
        let mut c = Captured::new(name, SourceStatus::Skipped);
        c.record.error = Some("excluded by --only/--skip".into());
        c
    }

    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.record.error = Some(error.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.record.note = Some(note.into());
        self
    }

    pub fn in_netns(mut self, id: &str) -> Self {
        self.record.netns = Some(id.to_string());
        self
    }

    pub fn truncated(mut self, kept: u64, total: u64) -> Self {
        self.record.truncated = Some(netsnap_schema::Truncation { kept, total });
        self
    }

    pub fn timed(mut self, timer: &Timer) -> Self {
        self.record.started_ms = timer.started_ms;
        self.record.duration_ms = millis(timer.started.elapsed());
        self
    }
}

pub fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_vec_pretty(value)?;
    v.push(b'\n');
    Ok(v)
}

/// Measures one source.
pub struct Timer {
    started: Instant,
    started_ms: u64,
}

impl Timer {
    pub fn start(deadline: &Deadline) -> Timer {
        Timer {
            started: Instant::now(),
            started_ms: deadline.elapsed_ms(),
        }
    }
}

/// An I/O error as a reason in the manifest. Permission problems always start with
/// `permission denied` so that a non-root capture explains itself uniformly.
pub fn io_reason(context: &str, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!("permission denied: {context}"),
        _ => format!("{context}: {e}"),
    }
}

pub fn errno_reason(context: &str, e: nix::errno::Errno) -> String {
    io_reason(context, &io::Error::from_raw_os_error(e as i32))
}

/// `s` with control characters other than newline and tab escaped (`\x1b`), for
/// text from the node (tool stderr, names) that ends up on a terminal.
pub fn printable(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

pub fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_name_and_group() {
        let s = Selection::new(&["netfilter".into()], &["nft".into()]).unwrap();
        assert!(s.wants("iptables-nft-save"));
        assert!(!s.wants("nft"));
        assert!(!s.wants("host/facts"));
        assert!(!s.wants_netns());
        let s = Selection::new(&[], &["conntrack,netns/sockets".into()]).unwrap();
        assert!(!s.wants("conntrack/entries"));
        assert!(!s.wants("netns/sockets"));
        assert!(s.wants("netns/links"));
        assert!(s.wants_netns());
        assert!(Selection::new(&["bogus".into()], &[]).is_err());
    }

    #[test]
    fn every_netns_file_is_in_the_catalog() {
        for f in NetnsFile::ALL {
            assert!(def(f.source_name()).is_some(), "{}", f.source_name());
        }
    }

    #[test]
    fn the_catalog_is_the_registry_of_collector_sources() {
        let from_registry: Vec<&str> = registry::SOURCES
            .iter()
            .filter(|s| s.producers.contains(&Producer::Collector))
            .map(|s| s.name)
            .collect();
        let names: Vec<&str> = SOURCES.iter().map(|d| d.name).collect();
        assert_eq!(names, from_registry);
        for d in SOURCES.iter() {
            assert_eq!(SourceId::by_name(d.name), Some(d.id));
            assert!(GROUPS.contains(&d.group), "{}", d.name);
        }
        assert_eq!(
            def("host/cni").map(|d| d.path_display()).as_deref(),
            Some("host/cni/<file name>")
        );
        let s = Selection::new(&["host".into()], &[]).unwrap();
        assert!(s.wants("host/cni"));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("ok\tline\n"), "ok\tline\n");
        assert_eq!(printable("\u{1b}[2Jgone\0"), "\\x1b[2Jgone\\x00");
        assert_eq!(printable("a\u{9b}b"), "a\\x9bb");
    }

    #[test]
    fn permission_reason() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_reason("reading x", &e), "permission denied: reading x");
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert!(io_reason("reading x", &e).starts_with("reading x: "));
    }
}
