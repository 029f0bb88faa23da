//! Reading what the user handed over into memory: loose files, directories and
//! archives (`.tar`, `.tar.gz`, `.tar.xz`, `.tar.zst`, or one compressed file). Nothing
//! is extracted to disk; archives go through the bundle reader's own walk and limits
//! ([`netsnap_schema::reader::walk_tar`], [`Budget`]): safe paths, entry count,
//! per-entry and total size checked before content is read. Links are never followed:
//! they are listed as notes.

use crate::error::ImportError;
use netsnap_schema::reader::{read_up_to, walk_tar, Budget, TarEvent, Visit};
use netsnap_schema::{ReadError, ReadLimits};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// One input as read: a tree of files (an unpacked directory or an archive) keyed by
/// their path inside it, or a single file (key: its file name).
#[derive(Debug, Default)]
pub struct Tree {
    /// The path the user gave.
    pub origin: String,
    /// Whether it was a directory or archive (a layout may apply) or one file.
    pub is_tree: bool,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Entries left out (links, devices) and why.
    pub notes: Vec<String>,
}

impl Tree {
    /// How a member is named in notes and `imported_from`: `origin!member` inside a
    /// tree, the origin itself for a single file.
    pub fn display(&self, member: &str) -> String {
        if self.is_tree {
            format!("{}!{member}", self.origin)
        } else {
            self.origin.clone()
        }
    }
}

const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const GZIP: &[u8] = &[0x1f, 0x8b];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// Reads one input path within `limits`.
pub fn read_input(path: &Path, limits: &ReadLimits) -> Result<Tree, ImportError> {
    let origin = path.display().to_string();
    let io_err = |source| ImportError::Io {
        path: origin.clone(),
        source,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        return read_dir(path, &origin, limits);
    }
    let mut head = [0u8; 6];
    let got = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(io_err)?;
    let file = File::open(path).map_err(io_err)?;
    let decoded = decoder(&head[..got], io::BufReader::new(file), limits).map_err(io_err)?;
    read_stream(decoded, &origin, limits)
}

/// [`read_input`] of content already in memory (a pasted dump, a fuzzer's input),
/// named `origin` in notes and errors.
pub fn read_bytes(data: &[u8], origin: &str, limits: &ReadLimits) -> Result<Tree, ImportError> {
    let head = &data[..data.len().min(6)];
    let decoded = decoder(head, data, limits).map_err(|source| ImportError::Io {
        path: origin.into(),
        source,
    })?;
    read_stream(decoded, origin, limits)
}

/// `input` decompressed as its first bytes (`head`) say, or as it is.
fn decoder<'a>(
    head: &[u8],
    input: impl io::BufRead + 'a,
    limits: &ReadLimits,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(if head.starts_with(ZSTD) {
        let mut d = zstd::Decoder::with_buffer(input)?;
        d.window_log_max(limits.max_window_log)?;
        Box::new(d)
    } else if head.starts_with(GZIP) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(XZ) {
        Box::new(xz2::bufread::XzDecoder::new_multi_decoder(input))
    } else {
        Box::new(input)
    })
}

/// A (decompressed) stream: a tar archive when its first block says so, else one file.
fn read_stream(
    mut input: impl Read,
    origin: &str,
    limits: &ReadLimits,
) -> Result<Tree, ImportError> {
    let mut first = vec![0u8; 512];
    let got = read_up_to(&mut input, &mut first).map_err(|e| ReadError::Decompress {
        bundle: origin.into(),
        entry: "(start)".into(),
        reason: e.to_string(),
    })?;
    first.truncate(got);
    let chained = io::Cursor::new(first.clone()).chain(input);
    if got == 512 && &first[257..262] == b"ustar" {
        return read_tar(chained, origin, limits);
    }
    let mut data = Vec::new();
    chained
        .take(limits.max_entry_bytes + 1)
        .read_to_end(&mut data)
        .map_err(|e| ReadError::Decompress {
            bundle: origin.into(),
            entry: origin.into(),
            reason: e.to_string(),
        })?;
    if data.len() as u64 > limits.max_entry_bytes {
        return Err(ReadError::EntryTooLarge {
            bundle: origin.into(),
            entry: origin.into(),
            size: data.len() as u64,
            limit: limits.max_entry_bytes,
        }
        .into());
    }
    let name = Path::new(origin)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| origin.to_string());
    Ok(Tree {
        origin: origin.into(),
        is_tree: false,
        files: BTreeMap::from([(name, data)]),
        notes: Vec::new(),
    })
}

/// Members no layout reads: logs and sos's own bookkeeping (kept out of memory).
fn unwanted(path: &str) -> bool {
    ["/var/log/", "/sos_logs/", "/sos_reports/", "/sos_strings/"]
        .iter()
        .any(|p| format!("/{path}").contains(p))
}

fn read_tar(input: impl Read, origin: &str, limits: &ReadLimits) -> Result<Tree, ImportError> {
    let mut budget = Budget::new(origin, limits);
    let mut tree = Tree {
        origin: origin.into(),
        is_tree: true,
        ..Tree::default()
    };
    let notes = std::cell::RefCell::new(Vec::new());
    let files = std::cell::RefCell::new(BTreeMap::new());
    walk_tar(
        input,
        &mut budget,
        &mut |event| match event {
            TarEvent::Dir(_) => Ok(Visit::Skip),
            TarEvent::File(path, _) if unwanted(path) => Ok(Visit::Skip),
            TarEvent::File(..) => Ok(Visit::Read),
            TarEvent::Other(name, kind) => {
                notes
                    .borrow_mut()
                    .push(format!("{origin}!{name}: {kind} not followed"));
                Ok(Visit::Skip)
            }
        },
        &mut |path, data| {
            if files.borrow_mut().insert(path.to_string(), data).is_some() {
                return Err(ReadError::Duplicate {
                    bundle: origin.into(),
                    entry: path.into(),
                });
            }
            Ok(())
        },
    )?;
    tree.files = files.into_inner();
    tree.notes = notes.into_inner();
    Ok(tree)
}

/// A directory, walked in name order; symlinks and special files are listed, not read.
fn read_dir(dir: &Path, origin: &str, limits: &ReadLimits) -> Result<Tree, ImportError> {
    let mut budget = Budget::new(origin, limits);
    let mut tree = Tree {
        origin: origin.into(),
        is_tree: true,
        ..Tree::default()
    };
    let io_err = |p: &Path, source| ImportError::Io {
        path: p.display().to_string(),
        source,
    };
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = stack.pop() {
        let mut children: Vec<_> = fs::read_dir(&abs)
            .map_err(|e| io_err(&abs, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io_err(&abs, e))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            let entry = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(child.path()).map_err(|e| io_err(&child.path(), e))?;
            let path = budget.check_path(&entry)?;
            if meta.is_dir() {
                stack.push((child.path(), path));
            } else if meta.is_file() {
                if unwanted(&path) {
                    continue;
                }
                budget.admit_size(&path, meta.len())?;
                let mut data = Vec::new();
                File::open(child.path())
                    .and_then(|f| f.take(meta.len() + 1).read_to_end(&mut data))
                    .map_err(|e| io_err(&child.path(), e))?;
                tree.files.insert(path, data);
            } else {
                let kind = if meta.file_type().is_symlink() {
                    "symlink"
                } else {
                    "special file"
                };
                tree.notes
                    .push(format!("{origin}!{path}: {kind} not followed"));
            }
        }
    }
    Ok(tree)
}
