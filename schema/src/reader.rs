//! The safe bundle reader. A bundle comes from someone else's node: every entry is
//! checked before it is trusted, nothing is ever extracted to disk, and every limit is
//! enforced while decompressing, so a small hostile file cannot make us allocate
//! gigabytes.

use crate::digest::sha256_hex;
use crate::manifest::{Manifest, FORMAT_VERSION, MANIFEST_PATH};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

/// Limits that bound the work and memory one bundle can cost. Defaults fit a large
/// node (a million conntrack entries, thousands of netns) with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest single entry, uncompressed.
    pub max_entry_bytes: u64,
    /// All entries together, uncompressed.
    pub max_total_bytes: u64,
    pub max_entries: usize,
    /// Largest zstd window accepted, as log2 of bytes (27 = 128 MiB).
    pub max_window_log: u32,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_entry_bytes: 1 << 30,
            max_total_bytes: 4 << 30,
            max_entries: 100_000,
            max_window_log: 27,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{bundle}: {source}")]
    Io { bundle: String, source: io::Error },
    #[error("{bundle}: not a netsnap bundle: {reason}")]
    NotABundle { bundle: String, reason: String },
    #[error("{bundle}: entry {entry}: decompression failed: {reason}")]
    Decompress {
        bundle: String,
        entry: String,
        reason: String,
    },
    #[error("{bundle}: entry {entry:?}: unsafe path: {reason}")]
    UnsafePath {
        bundle: String,
        entry: String,
        reason: &'static str,
    },
    #[error("{bundle}: entry {entry}: {kind} entries are not allowed in a bundle")]
    ForbiddenEntryType {
        bundle: String,
        entry: String,
        kind: String,
    },
    #[error("{bundle}: entry {entry}: appears twice")]
    Duplicate { bundle: String, entry: String },
    #[error("{bundle}: entry {entry}: {size} bytes is over the per-entry limit of {limit} (raise with --max-entry-bytes)")]
    EntryTooLarge {
        bundle: String,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{bundle}: entry {entry}: bundle exceeds the total limit of {limit} uncompressed bytes (raise with --max-total-bytes)")]
    TotalTooLarge {
        bundle: String,
        entry: String,
        limit: u64,
    },
    #[error("{bundle}: more than {limit} entries (raise with --max-entries)")]
    TooManyEntries { bundle: String, limit: usize },
    #[error("{bundle}: zstd window larger than 2^{limit} bytes (raise with --max-window-log)")]
    WindowTooLarge { bundle: String, limit: u32 },
    #[error("{bundle}: manifest.json is missing")]
    ManifestMissing { bundle: String },
    #[error("{bundle}: manifest.json line {line} column {column}: {reason}")]
    ManifestInvalid {
        bundle: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{bundle}: manifest.json: format_version {found} is not supported (this netsnap reads version {FORMAT_VERSION}); upgrade netsnap")]
    UnsupportedFormat { bundle: String, found: String },
    #[error("{bundle}: entry {entry}: sha256 {actual} does not match the manifest's {expected}")]
    ChecksumMismatch {
        bundle: String,
        entry: String,
        expected: String,
        actual: String,
    },
    #[error("{bundle}: entry {entry}: {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        bundle: String,
        entry: String,
        expected: u64,
        actual: u64,
    },
    #[error("{bundle}: entry {entry}: listed in manifest.json but missing")]
    MissingEntry { bundle: String, entry: String },
    #[error("{bundle}: entry {entry}: not listed in manifest.json")]
    Unlisted { bundle: String, entry: String },
    #[error("{bundle}: manifest.json lists {entry} twice")]
    ManifestDuplicate { bundle: String, entry: String },
    #[error("{bundle}: {entry} line {line} column {column}: {reason}")]
    Json {
        bundle: String,
        entry: String,
        line: usize,
        column: usize,
        reason: String,
    },
}

impl ReadError {
    /// The bundle entry the error is about, if it is about one.
    pub fn entry(&self) -> Option<&str> {
        use ReadError::*;
        match self {
            Decompress { entry, .. }
            | UnsafePath { entry, .. }
            | ForbiddenEntryType { entry, .. }
            | Duplicate { entry, .. }
            | EntryTooLarge { entry, .. }
            | TotalTooLarge { entry, .. }
            | ChecksumMismatch { entry, .. }
            | SizeMismatch { entry, .. }
            | MissingEntry { entry, .. }
            | Unlisted { entry, .. }
            | ManifestDuplicate { entry, .. }
            | Json { entry, .. } => Some(entry),
            ManifestMissing { .. } | ManifestInvalid { .. } | UnsupportedFormat { .. } => {
                Some(MANIFEST_PATH)
            }
            Io { .. } | NotABundle { .. } | TooManyEntries { .. } | WindowTooLarge { .. } => None,
        }
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A verified bundle held in memory.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    /// Where it was read from (for messages).
    pub origin: String,
    files: BTreeMap<String, Arc<Vec<u8>>>,
}

/// What a caller is shown of a bundle while it is read, before the bundle as a whole
/// is verified: it can start work on an entry while later ones (or the rest of the
/// same one) are still being decompressed, but must discard that work if opening
/// fails.
pub trait OnRead {
    /// Whether the entry at `path` is to be read in pieces of whole lines, shown to
    /// [`OnRead::piece`], instead of whole: it is then never held in memory at once,
    /// nor kept in the bundle ([`Bundle::file`] does not find it, as after
    /// [`Bundle::release`]), but its size and digest are verified all the same.
    /// Asked once per entry of an archive (never of a directory, nor the manifest),
    /// before any of its bytes are read.
    fn wants_pieces(&mut self, _path: &str) -> bool {
        false
    }

    /// The next piece of the entry at `path`, starting at byte `offset` of it. The
    /// pieces follow one another without gap or overlap, each of about 4 MiB (more
    /// when a line is longer) and cut after a line end (only the entry's last line
    /// may lack one).
    fn piece(&mut self, _path: &str, _offset: usize, _piece: &Arc<Vec<u8>>) {}

    /// The entry at `path`, read in pieces, has been shown to its end (it is still to
    /// be verified with the rest of the bundle).
    fn pieces_end(&mut self, _path: &str) {}

    /// An entry, whole, once read (not one read in pieces).
    fn entry(&mut self, path: &str, data: &Arc<Vec<u8>>);
}

/// A reader that only wants the verified bundle.
struct NoEarlyLook;

impl OnRead for NoEarlyLook {
    fn entry(&mut self, _: &str, _: &Arc<Vec<u8>>) {}
}

impl Bundle {
    /// Opens a `.tar.zst` file or an unpacked bundle directory.
    pub fn open(path: &Path, limits: &ReadLimits) -> Result<Bundle, ReadError> {
        Bundle::open_with(path, limits, &mut NoEarlyLook)
    }

    /// [`Bundle::open`], showing every entry to `on_read` as soon as it is read.
    pub fn open_with(
        path: &Path,
        limits: &ReadLimits,
        on_read: &mut dyn OnRead,
    ) -> Result<Bundle, ReadError> {
        let origin = path.display().to_string();
        let meta = fs::metadata(path).map_err(|source| ReadError::Io {
            bundle: origin.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Bundle::dir_with(path, limits, on_read);
        }
        let file = File::open(path).map_err(|source| ReadError::Io {
            bundle: origin.clone(),
            source,
        })?;
        crate::readahead::read_ahead(&file, meta.len());
        Bundle::archive_with(io::BufReader::new(file), &origin, limits, on_read)
    }

    /// Reads a `.tar.zst` stream.
    pub fn from_archive<R: Read>(
        input: R,
        origin: &str,
        limits: &ReadLimits,
    ) -> Result<Bundle, ReadError> {
        Bundle::archive_with(input, origin, limits, &mut NoEarlyLook)
    }

    /// [`Bundle::from_archive`], showing every entry to `on_read` as soon as it is read.
    pub fn from_archive_with<R: Read>(
        input: R,
        origin: &str,
        limits: &ReadLimits,
        on_read: &mut dyn OnRead,
    ) -> Result<Bundle, ReadError> {
        Bundle::archive_with(input, origin, limits, on_read)
    }

    fn archive_with<R: Read>(
        mut input: R,
        origin: &str,
        limits: &ReadLimits,
        on_read: &mut dyn OnRead,
    ) -> Result<Bundle, ReadError> {
        let bundle = || origin.to_string();
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut input, &mut magic).map_err(|source| ReadError::Io {
            bundle: bundle(),
            source,
        })?;
        if got < 4 || magic != ZSTD_MAGIC {
            return Err(ReadError::NotABundle {
                bundle: bundle(),
                reason: "not zstd-compressed (bad magic); expected a .netsnap.tar.zst file or a bundle directory".into(),
            });
        }
        let chained = io::Cursor::new(magic).chain(input);
        let mut decoder = zstd::Decoder::new(chained).map_err(|source| ReadError::Io {
            bundle: bundle(),
            source,
        })?;
        decoder
            .window_log_max(limits.max_window_log)
            .map_err(|source| ReadError::Io {
                bundle: bundle(),
                source,
            })?;

        with_hasher(|hasher| {
            Bundle::read_archive(decoder, Files::new(origin, limits, hasher), on_read)
        })
    }

    fn read_archive<R: Read>(
        decoder: R,
        mut files: Files<'_>,
        on_read: &mut dyn OnRead,
    ) -> Result<Bundle, ReadError> {
        let (origin, limits) = (files.budget.origin, files.budget.limits);
        // The walk counts against the budget while the callbacks fill `files`.
        let mut budget = std::mem::replace(&mut files.budget, Budget::new(origin, limits));
        let files = std::cell::RefCell::new(files);
        let on_read = std::cell::RefCell::new(on_read);
        let mut first = true;
        walk_tar_pieces(
            decoder,
            &mut budget,
            &mut |event| match event {
                TarEvent::Dir(path) => {
                    files.borrow_mut().dirs.insert(path.to_string());
                    Ok(Visit::Skip)
                }
                TarEvent::File(path, _) => {
                    let pieces = path != MANIFEST_PATH && on_read.borrow_mut().wants_pieces(path);
                    let mut files = files.borrow_mut();
                    files.in_pieces = pieces.then(|| (path.to_string(), 0));
                    Ok(if pieces { Visit::Lines } else { Visit::Read })
                }
                TarEvent::Other(name, kind) => Err(ReadError::ForbiddenEntryType {
                    bundle: origin.into(),
                    entry: name.into(),
                    kind,
                }),
            },
            &mut |lines| {
                let mut files = files.borrow_mut();
                let files = &mut *files;
                let Some((path, offset)) = &mut files.in_pieces else {
                    return;
                };
                let lines = Arc::new(lines);
                files.hasher.send(ToHash::Piece(lines.clone()));
                on_read.borrow_mut().piece(path, *offset, &lines);
                *offset += lines.len();
            },
            &mut |path, data| {
                let mut files = files.borrow_mut();
                if first && path == MANIFEST_PATH {
                    // Refuse an unknown format before reading a possibly huge remainder.
                    check_format_version(origin, &data)?;
                }
                first = false;
                files.dirs.remove(path);
                if files.has(path) {
                    return Err(ReadError::Duplicate {
                        bundle: origin.into(),
                        entry: path.into(),
                    });
                }
                if let Some((_, size)) = files.in_pieces.take() {
                    on_read.borrow_mut().pieces_end(path);
                    return files.insert_read_in_pieces(path, size);
                }
                let data = Arc::new(data);
                files.insert(path, data.clone())?;
                on_read.borrow_mut().entry(path, &data);
                Ok(())
            },
        )?;
        let mut files = files.into_inner();
        files.budget = budget;
        files.finish()
    }

    /// Reads an unpacked bundle directory.
    pub fn from_dir(dir: &Path, limits: &ReadLimits) -> Result<Bundle, ReadError> {
        Bundle::dir_with(dir, limits, &mut NoEarlyLook)
    }

    fn dir_with(
        dir: &Path,
        limits: &ReadLimits,
        on_read: &mut dyn OnRead,
    ) -> Result<Bundle, ReadError> {
        let origin = dir.display().to_string();
        with_hasher(|hasher| {
            Bundle::read_dir(dir, &origin, Files::new(&origin, limits, hasher), on_read)
        })
    }

    fn read_dir(
        dir: &Path,
        origin: &str,
        mut files: Files<'_>,
        on_read: &mut dyn OnRead,
    ) -> Result<Bundle, ReadError> {
        let origin = origin.to_string();
        let mut stack: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), String::new())];
        while let Some((abs, rel)) = stack.pop() {
            let io_err = |source| ReadError::Io {
                bundle: origin.clone(),
                source,
            };
            let mut children: Vec<_> = fs::read_dir(&abs)
                .map_err(io_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| ReadError::Io {
                    bundle: origin.clone(),
                    source,
                })?;
            children.sort_by_key(|c| c.file_name());
            for child in children {
                let name = child.file_name().to_string_lossy().into_owned();
                let entry = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let meta = fs::symlink_metadata(child.path()).map_err(|source| ReadError::Io {
                    bundle: origin.clone(),
                    source,
                })?;
                let ft = meta.file_type();
                if ft.is_dir() {
                    files.check_path(&entry)?;
                    stack.push((child.path(), entry));
                } else if ft.is_file() {
                    let path = files.admit(&entry, meta.len())?;
                    let mut data = Vec::with_capacity(meta.len().min(1 << 20) as usize);
                    File::open(child.path())
                        .and_then(|f| f.take(meta.len() + 1).read_to_end(&mut data))
                        .map_err(|source| ReadError::Io {
                            bundle: format!("{origin}: entry {entry}"),
                            source,
                        })?;
                    let data = Arc::new(data);
                    files.insert(&path, data.clone())?;
                    on_read.entry(&path, &data);
                } else {
                    let kind = if ft.is_symlink() {
                        "symlink"
                    } else {
                        "device, fifo or socket"
                    };
                    return Err(ReadError::ForbiddenEntryType {
                        bundle: origin.clone(),
                        entry,
                        kind: kind.into(),
                    });
                }
            }
        }
        files.finish()
    }

    /// Raw content of an entry.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|d| d.as_slice())
    }

    /// Drops an entry's content to give its memory back, for a caller that has taken
    /// all it needs from it; the manifest still lists it, [`Bundle::file`] no longer
    /// finds it.
    pub fn release(&mut self, path: &str) {
        self.files.remove(path);
    }

    /// Raw content of an entry, shared (for work that outlives a borrow).
    pub fn shared(&self, path: &str) -> Option<&Arc<Vec<u8>>> {
        self.files.get(path)
    }

    /// Content of a text entry; invalid UTF-8 is replaced, never an error.
    pub fn text(&self, path: &str) -> Option<Cow<'_, str>> {
        self.file(path).map(String::from_utf8_lossy)
    }

    /// Parses a JSON entry; `Ok(None)` when the entry is absent.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ReadError> {
        let Some(data) = self.file(path) else {
            return Ok(None);
        };
        serde_json::from_slice(data)
            .map(Some)
            .map_err(|e| ReadError::Json {
                bundle: self.origin.clone(),
                entry: path.into(),
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            })
    }

    /// Every entry path except the manifest, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files
            .keys()
            .map(String::as_str)
            .filter(|p| *p != MANIFEST_PATH)
    }

    /// Total uncompressed size of all entries.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|v| v.len() as u64).sum()
    }
}

/// Accumulates entries while enforcing the limits.
struct Files<'a> {
    origin: &'a str,
    budget: Budget<'a>,
    files: BTreeMap<String, Arc<Vec<u8>>>,
    dirs: BTreeSet<String>,
    hasher: Hashing<'a>,
    /// The entry being read in pieces, and how many of its bytes were shown so far.
    in_pieces: Option<(String, usize)>,
    /// Entries read in pieces (never kept): their sizes.
    read_in_pieces: BTreeMap<String, u64>,
}

/// Entries go to a second thread for sha256 as they are read, so hashing overlaps
/// decompression instead of following it; the digests come back for verification.
struct Hashing<'a> {
    to_hash: Option<mpsc::SyncSender<ToHash>>,
    digests: Option<std::thread::ScopedJoinHandle<'a, BTreeMap<String, String>>>,
}

/// What the hashing thread is given.
enum ToHash {
    /// The next piece of an entry read in pieces (shared with [`OnRead::piece`]).
    Piece(Arc<Vec<u8>>),
    /// The pieces since the last `End` were all of this entry.
    End(String),
    /// A whole entry, once read (shared with the parsers: no copy; its hash is not
    /// awaited before the reading goes on, only at the end of the archive).
    Whole(String, Arc<Vec<u8>>),
}

impl Hashing<'_> {
    /// A send fails only if the hashing thread died; verification then finds no
    /// digest and reports a mismatch.
    fn send(&self, what: ToHash) {
        if let Some(tx) = &self.to_hash {
            let _ = tx.send(what);
        }
    }

    /// Every digest, once all entries are hashed.
    fn digests(&mut self) -> BTreeMap<String, String> {
        self.to_hash.take();
        self.digests
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

/// Messages the hashing thread may lag behind the reader by: a piece it has not
/// hashed yet stays in memory after its parse, so where sha256 is slower than
/// decompression (no SHA extensions) the reader waits instead of holding the table.
const PIECES_IN_FLIGHT: usize = 8;

/// Runs `read` with a hashing thread beside it.
fn with_hasher<T>(read: impl FnOnce(Hashing<'_>) -> T) -> T {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<ToHash>(PIECES_IN_FLIGHT);
        let handle = scope.spawn(move || {
            let mut digests = BTreeMap::new();
            let mut current = Sha256::new();
            for what in rx {
                match what {
                    ToHash::Piece(piece) => current.update(piece.as_slice()),
                    ToHash::End(path) => {
                        let digest = std::mem::take(&mut current).finalize();
                        digests.insert(path, hex::encode(digest));
                    }
                    ToHash::Whole(path, data) => {
                        digests.insert(path, sha256_hex(&data));
                    }
                }
            }
            digests
        });
        read(Hashing {
            to_hash: Some(tx),
            digests: Some(handle),
        })
    })
}

impl<'a> Files<'a> {
    fn new(origin: &'a str, limits: &'a ReadLimits, hasher: Hashing<'a>) -> Self {
        Files {
            origin,
            budget: Budget::new(origin, limits),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            hasher,
            in_pieces: None,
            read_in_pieces: BTreeMap::new(),
        }
    }

    fn check_path(&mut self, raw: &str) -> Result<String, ReadError> {
        let path = self.budget.check_path(raw)?;
        self.dirs.insert(path.clone());
        Ok(path)
    }

    /// Checks an entry's path and announced size before any of its bytes are read.
    fn admit(&mut self, raw: &str, size: u64) -> Result<String, ReadError> {
        let path = self.check_path(raw)?;
        self.dirs.remove(&path);
        if self.files.contains_key(&path) {
            return Err(ReadError::Duplicate {
                bundle: self.origin.into(),
                entry: path,
            });
        }
        self.budget.admit_size(&path, size)?;
        Ok(path)
    }

    /// Whether an entry of this path was read already.
    fn has(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.read_in_pieces.contains_key(path)
    }

    /// Records an entry that was read in pieces (all of them hashed): only its size.
    fn insert_read_in_pieces(&mut self, path: &str, size: usize) -> Result<(), ReadError> {
        if self.dirs.contains(path) {
            return Err(ReadError::Duplicate {
                bundle: self.origin.into(),
                entry: path.into(),
            });
        }
        self.hasher.send(ToHash::End(path.to_string()));
        self.read_in_pieces.insert(path.to_string(), size as u64);
        Ok(())
    }

    fn insert(&mut self, path: &str, data: Arc<Vec<u8>>) -> Result<(), ReadError> {
        if self.dirs.contains(path) {
            return Err(ReadError::Duplicate {
                bundle: self.origin.into(),
                entry: path.into(),
            });
        }
        // The manifest's own digest is never checked.
        if path != MANIFEST_PATH {
            self.hasher
                .send(ToHash::Whole(path.to_string(), data.clone()));
        }
        self.files.insert(path.to_string(), data);
        Ok(())
    }

    /// Parses the manifest and verifies every entry against it.
    fn finish(mut self) -> Result<Bundle, ReadError> {
        let bundle = || self.origin.to_string();
        let raw = self
            .files
            .get(MANIFEST_PATH)
            .ok_or_else(|| ReadError::ManifestMissing { bundle: bundle() })?;
        check_format_version(self.origin, raw)?;
        let manifest: Manifest =
            serde_json::from_slice(raw).map_err(|e| manifest_invalid(self.origin, &e))?;

        let digests = self.hasher.digests();
        let mut listed = BTreeSet::new();
        for source in &manifest.sources {
            let Some(path) = &source.path else { continue };
            if !listed.insert(path.as_str()) {
                return Err(ReadError::ManifestDuplicate {
                    bundle: bundle(),
                    entry: path.clone(),
                });
            }
            let size = match self.files.get(path) {
                Some(data) => data.len() as u64,
                None => match self.read_in_pieces.get(path) {
                    Some(size) => *size,
                    None => {
                        return Err(ReadError::MissingEntry {
                            bundle: bundle(),
                            entry: path.clone(),
                        })
                    }
                },
            };
            if size != source.bytes {
                return Err(ReadError::SizeMismatch {
                    bundle: bundle(),
                    entry: path.clone(),
                    expected: source.bytes,
                    actual: size,
                });
            }
            let actual = digests.get(path).cloned().unwrap_or_default();
            let expected = source.sha256.clone().unwrap_or_default();
            if !actual.eq_ignore_ascii_case(&expected) {
                return Err(ReadError::ChecksumMismatch {
                    bundle: bundle(),
                    entry: path.clone(),
                    expected,
                    actual,
                });
            }
        }
        if let Some(extra) = self
            .files
            .keys()
            .chain(self.read_in_pieces.keys())
            .find(|p| p.as_str() != MANIFEST_PATH && !listed.contains(p.as_str()))
        {
            return Err(ReadError::Unlisted {
                bundle: bundle(),
                entry: extra.clone(),
            });
        }
        let files = std::mem::take(&mut self.files);
        Ok(Bundle {
            manifest,
            origin: bundle(),
            files,
        })
    }
}

/// The limits every archive netsnap reads obeys, bundles and imported archives alike:
/// entry count, safe paths, per-entry and total size, all checked from the header
/// before any content is read.
pub struct Budget<'a> {
    origin: &'a str,
    limits: &'a ReadLimits,
    total: u64,
    count: usize,
}

impl<'a> Budget<'a> {
    pub fn new(origin: &'a str, limits: &'a ReadLimits) -> Self {
        Budget {
            origin,
            limits,
            total: 0,
            count: 0,
        }
    }

    /// Counts one entry and returns its path, normalised, or why it is unsafe.
    pub fn check_path(&mut self, raw: &str) -> Result<String, ReadError> {
        self.count += 1;
        if self.count > self.limits.max_entries {
            return Err(ReadError::TooManyEntries {
                bundle: self.origin.into(),
                limit: self.limits.max_entries,
            });
        }
        normalise_entry_path(raw).map_err(|reason| ReadError::UnsafePath {
            bundle: self.origin.into(),
            entry: raw.into(),
            reason,
        })
    }

    /// Accounts an entry's announced size against the per-entry and total limits.
    pub fn admit_size(&mut self, path: &str, size: u64) -> Result<(), ReadError> {
        if size > self.limits.max_entry_bytes {
            return Err(ReadError::EntryTooLarge {
                bundle: self.origin.into(),
                entry: path.into(),
                size,
                limit: self.limits.max_entry_bytes,
            });
        }
        if self.total.saturating_add(size) > self.limits.max_total_bytes {
            return Err(ReadError::TotalTooLarge {
                bundle: self.origin.into(),
                entry: path.into(),
                limit: self.limits.max_total_bytes,
            });
        }
        self.total += size;
        Ok(())
    }

    /// The archive these limits are counted for (for messages).
    pub fn origin(&self) -> &str {
        self.origin
    }
}

/// One tar header, as [`walk_tar`] shows it before reading any content.
pub enum TarEvent<'e> {
    /// A directory (its path already checked and counted).
    Dir(&'e str),
    /// A regular file of this announced size (path checked, size admitted).
    File(&'e str, u64),
    /// A link, device or fifo: the raw name and what it is.
    Other(&'e str, String),
}

/// [`walk_tar`]'s view of each header: what to do with the entry.
pub type OnHeader<'f> = dyn FnMut(TarEvent<'_>) -> Result<Visit, ReadError> + 'f;
/// [`walk_tar`]'s hand-over of a regular file's path and content.
pub type OnData<'f> = dyn FnMut(&str, Vec<u8>) -> Result<(), ReadError> + 'f;
/// [`walk_tar_pieces`]'s hand-over of the next piece of a file read in lines
/// ([`Visit::Lines`]).
pub type OnPiece<'f> = dyn FnMut(Vec<u8>) + 'f;

/// How much of an entry is read between two calls of `on_piece`.
const PIECE: u64 = 4 << 20;

/// A buffer for an entry whose header announced `size` (already within the limits):
/// all of it at once when the address space allows, so a big entry is not copied
/// each time it outgrows its buffer; else a small start that grows with what the
/// entry really holds (a header may lie, and a confined reader may not have the
/// announced size to spare).
fn entry_buffer(size: u64) -> Vec<u8> {
    let mut data = Vec::new();
    let exact = usize::try_from(size + 1)
        .ok()
        .is_some_and(|n| data.try_reserve_exact(n).is_ok());
    if !exact {
        data.reserve(size.min(1 << 20) as usize);
    }
    data
}

/// What [`walk_tar`] does with a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Read it (bounded by its admitted size) and hand it to `on_data`.
    Read,
    /// Skip its content (still decompressed and counted, never kept).
    Skip,
    /// Read it (bounded by its admitted size) in pieces of about 4 MiB or more, each
    /// cut after a line end, handed to `on_piece` and not kept: `on_data` is then
    /// given no content (only [`walk_tar_pieces`] offers this).
    Lines,
}

/// Walks an (already decompressed) tar stream within `budget`: every path is checked
/// and every size admitted before content is read, content is read at most one byte
/// past the announced size, and the stream is drained to its end (so a compressed
/// frame's checksum is verified) but never past the total limit.
pub fn walk_tar<R: Read>(
    input: R,
    budget: &mut Budget<'_>,
    on_entry: &mut OnHeader<'_>,
    on_data: &mut OnData<'_>,
) -> Result<(), ReadError> {
    walk_tar_pieces(input, budget, on_entry, &mut |_| {}, on_data)
}

/// [`walk_tar`], also able to read a file in pieces of lines instead of whole
/// ([`Visit::Lines`]), each handed to `on_piece` as it is read (a reader hashes and
/// parses it meanwhile; the file is never whole in memory).
pub fn walk_tar_pieces<R: Read>(
    input: R,
    budget: &mut Budget<'_>,
    on_entry: &mut OnHeader<'_>,
    on_piece: &mut OnPiece<'_>,
    on_data: &mut OnData<'_>,
) -> Result<(), ReadError> {
    let (origin, limits) = (budget.origin, budget.limits);
    let decode_err = |entry: &str, e: io::Error| decompress_error(origin, entry, e, limits);
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| decode_err("(first header)", e))?;
    let mut last = String::new();
    for entry in entries {
        let header_after = match last.as_str() {
            "" => "(first header)".to_string(),
            name => format!("(header after {name})"),
        };
        let mut entry = entry.map_err(|e| decode_err(&header_after, e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let size = entry.header().size().map_err(|e| decode_err(&name, e))?;
        last = name.clone();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            // `tar -C dir -c .` starts with the archive's own root, `./`.
            tar::EntryType::Directory if name == "./" || name == "." => continue,
            tar::EntryType::Directory => {
                let path = budget.check_path(&name)?;
                on_entry(TarEvent::Dir(&path))?;
                continue;
            }
            other => {
                on_entry(TarEvent::Other(&name, entry_kind_name(other)))?;
                continue;
            }
        }
        let path = budget.check_path(&name)?;
        budget.admit_size(&path, size)?;
        let visit = on_entry(TarEvent::File(&path, size))?;
        let (data, read) = match visit {
            Visit::Skip => continue,
            Visit::Lines => {
                let read =
                    read_lines(&mut entry, size, on_piece).map_err(|e| decode_err(&name, e))?;
                (Vec::new(), read)
            }
            Visit::Read => {
                let data = read_whole(&mut entry, size).map_err(|e| decode_err(&name, e))?;
                let read = data.len() as u64;
                (data, read)
            }
        };
        if read != size {
            return Err(ReadError::Decompress {
                bundle: origin.into(),
                entry: name,
                reason: format!("entry holds {read} bytes, header says {size}"),
            });
        }
        on_data(&path, data)?;
    }
    // Read to the end of the stream so a compressed frame's checksum is verified, but
    // never further than the total limit allows (endless padding is a bomb too).
    let mut rest = archive.into_inner();
    let remaining = limits.max_total_bytes.saturating_sub(budget.total);
    let drained = io::copy(&mut (&mut rest).take(remaining + 1), &mut io::sink())
        .map_err(|e| decode_err(&format!("(end of archive after {last})"), e))?;
    if drained > remaining {
        return Err(ReadError::TotalTooLarge {
            bundle: origin.into(),
            entry: format!("(padding after {last})"),
            limit: limits.max_total_bytes,
        });
    }
    Ok(())
}

/// Reads an entry whose header announced `size`, never more than one byte past it.
fn read_whole(entry: &mut impl Read, size: u64) -> io::Result<Vec<u8>> {
    let mut data = entry_buffer(size);
    read_onto(entry, &mut data, size + 1)?;
    Ok(data)
}

/// Bytes [`read_onto`] zeroes and reads at a time: small enough to stay in cache.
const READ_STEP: usize = 32 << 10;

/// Reads from `from` onto the end of `buf` until its end or `limit` bytes, returning
/// how many it read. A safe read needs initialised memory, and `read_to_end` zeroes up
/// to all the spare capacity of a buffer made at an entry's announced size before the
/// decoder writes it, so every byte crossed memory twice; zeroing a step at a time
/// leaves the decoder writing into cache.
fn read_onto(from: &mut impl Read, buf: &mut Vec<u8>, limit: u64) -> io::Result<u64> {
    let mut total = 0u64;
    while total < limit {
        let start = buf.len();
        let step = usize::try_from(limit - total).map_or(READ_STEP, |left| left.min(READ_STEP));
        buf.resize(start + step, 0);
        let got = loop {
            match from.read(&mut buf[start..]) {
                Ok(got) => break got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.truncate(start);
                    return Err(e);
                }
            }
        };
        buf.truncate(start + got);
        if got == 0 {
            break;
        }
        total += got as u64;
    }
    Ok(total)
}

/// Reads an entry whose header announced `size`, never more than one byte past it,
/// in pieces of about [`PIECE`] bytes, each handed to `lines` once cut after its last
/// line end (what follows starts the next piece; a line longer than a piece makes
/// that piece longer). Returns how many bytes were read.
fn read_lines(entry: &mut impl Read, size: u64, lines: &mut dyn FnMut(Vec<u8>)) -> io::Result<u64> {
    let (mut left, mut read) = (size + 1, 0u64);
    let mut piece: Vec<u8> = Vec::new();
    loop {
        piece.reserve(PIECE as usize);
        let got = read_onto(entry, &mut piece, left.min(PIECE))?;
        (left, read) = (left - got, read + got);
        if got == 0 {
            if !piece.is_empty() {
                lines(piece);
            }
            return Ok(read);
        }
        if let Some(end) = memchr::memrchr(b'\n', &piece) {
            let rest = piece.split_off(end + 1);
            lines(std::mem::replace(&mut piece, rest));
        }
    }
}

/// Reads the version before the full schema, so a future bundle gets a clear message
/// instead of a confusing field error.
fn check_format_version(origin: &str, raw: &[u8]) -> Result<(), ReadError> {
    let value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| manifest_invalid(origin, &e))?;
    match value.get("format_version") {
        Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => Ok(()),
        Some(v) => Err(ReadError::UnsupportedFormat {
            bundle: origin.into(),
            found: v.to_string(),
        }),
        None => Err(ReadError::ManifestInvalid {
            bundle: origin.into(),
            line: 1,
            column: 1,
            reason: "no format_version field".into(),
        }),
    }
}

fn manifest_invalid(origin: &str, e: &serde_json::Error) -> ReadError {
    ReadError::ManifestInvalid {
        bundle: origin.into(),
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    }
}

fn decompress_error(origin: &str, entry: &str, e: io::Error, limits: &ReadLimits) -> ReadError {
    let reason = e.to_string();
    if reason.contains("Frame requires too much memory") || reason.contains("window") {
        return ReadError::WindowTooLarge {
            bundle: origin.into(),
            limit: limits.max_window_log,
        };
    }
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("truncated: {reason}"),
        _ => reason,
    };
    ReadError::Decompress {
        bundle: origin.into(),
        entry: entry.into(),
        reason,
    }
}

/// Strips a leading `./` (as `tar -C dir -c .` writes) and refuses anything that
/// could name a place outside the bundle.
pub fn normalise_entry_path(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim_start_matches("./").trim_end_matches('/');
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    if trimmed.is_empty() {
        return Err("empty path");
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err("NUL or backslash in path");
    }
    if raw.contains('\u{FFFD}') {
        return Err("path is not valid UTF-8");
    }
    for component in trimmed.split('/') {
        match component {
            ".." => return Err("`..` component"),
            "" | "." => return Err("empty or `.` component"),
            _ => {}
        }
    }
    Ok(trimmed.to_string())
}

fn entry_kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "symlink".into(),
        tar::EntryType::Link => "hardlink".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        other => format!("{other:?}"),
    }
}

/// Fills `buf` as far as the input allows (a short read only at its end).
pub fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
