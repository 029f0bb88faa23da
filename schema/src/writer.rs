//! Deterministic, streaming bundle writer.
//!
//! Sources are added in any order (the collector captures them in parallel) and are
//! spooled: small ones in memory, large ones (conntrack can be hundreds of MB) in an
//! unnamed temporary file, hashing as they go. `write_archive` then emits
//! `manifest.json` followed by every entry in path order, with fixed mtimes and
//! ownership, so the same inputs always give the same bytes.

use crate::digest::{sha256_hex, Hasher};
use crate::manifest::{Manifest, SourceRecord, MANIFEST_PATH};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Content up to this size stays in memory; larger content moves to a temporary file.
const SPOOL_MEMORY_LIMIT: usize = 1 << 20;

/// zstd level: fast enough to stay off the capture's critical path.
const ZSTD_LEVEL: i32 = 3;

/// Worker threads for zstd. Any count ≥ 1 gives the same output bytes.
const ZSTD_WORKERS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("entry {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("entry {0:?} added twice")]
    Duplicate(String),
    #[error("source {name:?}: a record has a path if and only if it has content")]
    PathContentMismatch { name: String },
    #[error("spooling entry {path:?}: {source}")]
    Spool { path: String, source: io::Error },
    #[error("encoding {path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("writing {path}: {source}")]
    Output { path: String, source: io::Error },
    #[error("output {0} already exists")]
    Exists(String),
}

/// A sink for one source's content that never holds more than 1 MiB in memory.
pub struct Spool {
    dir: PathBuf,
    hasher: Hasher,
    memory: Vec<u8>,
    file: Option<File>,
}

impl Spool {
    /// A spool whose overflow file (if any) is created, unnamed, in `dir`.
    pub fn new_in(dir: impl Into<PathBuf>) -> Spool {
        Spool {
            dir: dir.into(),
            hasher: Hasher::default(),
            memory: Vec::new(),
            file: None,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.clone().finish().1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(mut self) -> io::Result<Spooled> {
        let (sha256, bytes) = self.hasher.finish();
        let body = match self.file.take() {
            Some(mut file) => {
                file.flush()?;
                file.seek(SeekFrom::Start(0))?;
                Body::File(file)
            }
            None => Body::Memory(std::mem::take(&mut self.memory)),
        };
        Ok(Spooled {
            body,
            bytes,
            sha256,
        })
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > SPOOL_MEMORY_LIMIT {
            // O_TMPFILE: the overflow file has no name, so nothing is left behind on a crash.
            let mut file = tempfile::tempfile_in(&self.dir)?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => self.memory.extend_from_slice(buf),
        }
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

enum Body {
    Memory(Vec<u8>),
    File(File),
}

struct Spooled {
    body: Body,
    bytes: u64,
    sha256: String,
}

impl Spooled {
    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match &mut self.body {
            Body::Memory(data) => Box::new(Cursor::new(data.as_slice())),
            Body::File(file) => {
                file.seek(SeekFrom::Start(0))?;
                Box::new(io::BufReader::new(file))
            }
        })
    }
}

/// Collects sources, then writes them as an archive or a directory.
pub struct BundleWriter {
    spool_dir: PathBuf,
    entries: BTreeMap<String, Spooled>,
    records: Vec<SourceRecord>,
}

impl BundleWriter {
    /// A writer whose large sources spill into unnamed temporary files in `spool_dir`
    /// (use the output directory, so spilling never fills a small /tmp).
    pub fn new(spool_dir: impl Into<PathBuf>) -> BundleWriter {
        BundleWriter {
            spool_dir: spool_dir.into(),
            entries: BTreeMap::new(),
            records: Vec::new(),
        }
    }

    /// A new spool for streaming one source's content.
    pub fn spool(&self) -> Spool {
        Spool::new_in(&self.spool_dir)
    }

    /// Adds a record without content (a failed, unavailable or skipped source).
    pub fn add_record(&mut self, record: SourceRecord) -> Result<(), WriteError> {
        if record.path.is_some() {
            return Err(WriteError::PathContentMismatch { name: record.name });
        }
        self.records.push(record);
        Ok(())
    }

    /// Adds a source with streamed content; `bytes` and `sha256` of the record are set here.
    pub fn add_spooled(
        &mut self,
        mut record: SourceRecord,
        spool: Spool,
    ) -> Result<(), WriteError> {
        let Some(path) = record.path.clone() else {
            return Err(WriteError::PathContentMismatch { name: record.name });
        };
        validate_entry_path(&path)?;
        if path == MANIFEST_PATH || self.entries.contains_key(&path) {
            return Err(WriteError::Duplicate(path));
        }
        let spooled = spool.finish().map_err(|source| WriteError::Spool {
            path: path.clone(),
            source,
        })?;
        record.bytes = spooled.bytes;
        record.sha256 = Some(spooled.sha256.clone());
        self.entries.insert(path, spooled);
        self.records.push(record);
        Ok(())
    }

    /// Adds a source whose content is already in memory.
    pub fn add_bytes(&mut self, record: SourceRecord, content: &[u8]) -> Result<(), WriteError> {
        let mut spool = self.spool();
        let path = record.path.clone().unwrap_or_default();
        spool
            .write_all(content)
            .map_err(|source| WriteError::Spool { path, source })?;
        self.add_spooled(record, spool)
    }

    /// Adds a source serialised as pretty JSON (with a final newline, for diffs).
    pub fn add_json<T: Serialize>(
        &mut self,
        record: SourceRecord,
        value: &T,
    ) -> Result<(), WriteError> {
        let path = record.path.clone().unwrap_or_default();
        let mut json =
            serde_json::to_vec_pretty(value).map_err(|source| WriteError::Json { path, source })?;
        json.push(b'\n');
        self.add_bytes(record, &json)
    }

    /// Completes `manifest.sources` (sorted by path, then name and netns).
    fn seal(&mut self, mut manifest: Manifest) -> Manifest {
        let mut records = std::mem::take(&mut self.records);
        records.sort_by(|a, b| {
            (a.path.is_none(), &a.path, &a.name, &a.netns).cmp(&(
                b.path.is_none(),
                &b.path,
                &b.name,
                &b.netns,
            ))
        });
        manifest.sources = records;
        manifest
    }

    /// Writes a `.tar.zst` bundle to `out` via `out.partial`: fsynced, mode 0600,
    /// renamed into place only when complete. The partial file is removed on error.
    pub fn write_archive(self, manifest: Manifest, out: &Path) -> Result<Manifest, WriteError> {
        let display = out.display().to_string();
        let partial = partial_path(out);
        let guard = PartialFile(partial.clone());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|source| WriteError::Output {
                path: partial.display().to_string(),
                source,
            })?;
        let (manifest, file) = self.write_archive_to(manifest, file)?;
        let io_err = |source| WriteError::Output {
            path: display.clone(),
            source,
        };
        file.sync_all().map_err(io_err)?;
        fs::rename(&partial, out).map_err(io_err)?;
        std::mem::forget(guard);
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Persist the rename itself; failure here does not lose the bundle.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(manifest)
    }

    /// Streams a `.tar.zst` bundle into any writer (e.g. stdout); returns the writer.
    pub fn write_archive_to<W: Write>(
        mut self,
        manifest: Manifest,
        out: W,
    ) -> Result<(Manifest, W), WriteError> {
        let manifest = self.seal(manifest);
        let mtime = manifest.captured_at_unix;
        let out_err = |source| WriteError::Output {
            path: "bundle".into(),
            source,
        };
        let mut encoder = zstd::Encoder::new(BufWriter::new(out), ZSTD_LEVEL).map_err(out_err)?;
        encoder.include_checksum(true).map_err(out_err)?;
        encoder.multithread(ZSTD_WORKERS).map_err(out_err)?;
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);

        let manifest_json = manifest_bytes(&manifest)?;
        append(
            &mut tar,
            MANIFEST_PATH,
            manifest_json.len() as u64,
            mtime,
            manifest_json.as_slice(),
        )?;
        for (path, spooled) in self.entries.iter_mut() {
            let size = spooled.bytes;
            let reader = spooled.reader().map_err(|source| WriteError::Spool {
                path: path.clone(),
                source,
            })?;
            append(&mut tar, path, size, mtime, reader)?;
        }
        let encoder = tar.into_inner().map_err(out_err)?;
        let buffered = encoder.finish().map_err(out_err)?;
        let out = buffered.into_inner().map_err(|e| out_err(e.into_error()))?;
        Ok((manifest, out))
    }

    /// Writes the bundle unpacked into `dir` (fixtures in git are directories so that
    /// reviews show diffs). `dir` must not exist yet.
    pub fn write_dir(mut self, manifest: Manifest, dir: &Path) -> Result<Manifest, WriteError> {
        if dir.exists() {
            return Err(WriteError::Exists(dir.display().to_string()));
        }
        let manifest = self.seal(manifest);
        let write = |rel: &str, reader: &mut dyn Read| -> Result<(), WriteError> {
            let target = dir.join(rel);
            let err = |source| WriteError::Output {
                path: target.display().to_string(),
                source,
            };
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(err)?;
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(err)?;
            io::copy(reader, &mut file).map_err(err)?;
            Ok(())
        };
        let manifest_json = manifest_bytes(&manifest)?;
        write(MANIFEST_PATH, &mut manifest_json.as_slice())?;
        for (path, spooled) in self.entries.iter_mut() {
            let mut reader = spooled.reader().map_err(|source| WriteError::Spool {
                path: path.clone(),
                source,
            })?;
            write(path, &mut reader)?;
        }
        Ok(manifest)
    }
}

fn manifest_bytes(manifest: &Manifest) -> Result<Vec<u8>, WriteError> {
    let mut json = serde_json::to_vec_pretty(manifest).map_err(|source| WriteError::Json {
        path: MANIFEST_PATH.into(),
        source,
    })?;
    json.push(b'\n');
    Ok(json)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mtime: u64,
    data: impl Read,
) -> Result<(), WriteError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, data)
        .map_err(|source| WriteError::Output {
            path: path.into(),
            source,
        })
}

/// `out` with `.partial` appended to its file name.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

/// Removes the partial output unless the write completed.
struct PartialFile(PathBuf);

impl Drop for PartialFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Entry paths are relative, `/`-separated, without `.`/`..` or empty components.
pub(crate) fn validate_entry_path(path: &str) -> Result<(), WriteError> {
    let invalid = |reason| WriteError::InvalidPath {
        path: path.into(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("empty path"));
    }
    if path.starts_with('/') {
        return Err(invalid("absolute path"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid("empty, `.` or `..` component"));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(invalid("NUL or backslash"));
    }
    Ok(())
}

/// Hex sha256 of content, as recorded in the manifest.
pub fn content_sha256(data: &[u8]) -> String {
    sha256_hex(data)
}
