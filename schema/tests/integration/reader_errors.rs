//! The reader refuses every kind of unsafe or inconsistent bundle with an error that
//! names the entry, and stops early on decompression bombs.

use crate::common;

use common::{archive_with, manifest_json_for, raw_tar, zstd, RawEntry};
use netsnap_schema::{Bundle, OnRead, ReadError, ReadLimits};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts live heap bytes so a test can assert the reader never allocated a bomb whole.
struct PeakAlloc;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

fn read(bytes: &[u8]) -> Result<Bundle, ReadError> {
    read_with(bytes, &ReadLimits::default())
}

fn read_with(bytes: &[u8], limits: &ReadLimits) -> Result<Bundle, ReadError> {
    Bundle::from_archive(bytes, "t.netsnap.tar.zst", limits)
}

const OK: &[(&str, &[u8])] = &[("host/resolv.conf", b"nameserver 10.96.0.10\n")];

#[test]
fn a_valid_hand_made_archive_reads() {
    let b = read(&archive_with(OK, &[])).unwrap();
    assert_eq!(
        b.text("host/resolv.conf").unwrap(),
        "nameserver 10.96.0.10\n"
    );
}

#[test]
fn truncated_zstd_is_reported() {
    let full = archive_with(OK, &[]);
    for cut in [full.len() / 3, full.len() / 2, full.len() - 5] {
        let err = read(&full[..cut]).unwrap_err();
        assert!(
            matches!(err, ReadError::Decompress { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("t.netsnap.tar.zst"), "{err}");
    }
}

#[test]
fn wrong_magic_is_not_a_bundle() {
    let err = read(b"PK\x03\x04 this is a zip").unwrap_err();
    assert!(matches!(err, ReadError::NotABundle { .. }), "{err}");
    assert!(err.to_string().contains("bad magic"), "{err}");
    let err = read(b"").unwrap_err();
    assert!(matches!(err, ReadError::NotABundle { .. }), "{err}");
}

#[test]
fn parent_directory_component_is_refused() {
    let err = read(&archive_with(OK, &[RawEntry::file("../x", b"evil")])).unwrap_err();
    assert!(
        matches!(err, ReadError::UnsafePath { ref entry, .. } if entry == "../x"),
        "{err}"
    );
    let err = read(&archive_with(
        OK,
        &[RawEntry::file("netns/../../x", b"evil")],
    ))
    .unwrap_err();
    assert!(matches!(err, ReadError::UnsafePath { .. }), "{err}");
}

#[test]
fn absolute_path_is_refused() {
    let err = read(&archive_with(
        OK,
        &[RawEntry::file("/etc/cron.d/x", b"evil")],
    ))
    .unwrap_err();
    assert!(
        matches!(err, ReadError::UnsafePath { ref entry, reason, .. } if entry == "/etc/cron.d/x" && reason == "absolute path"),
        "{err}"
    );
}

#[test]
fn links_and_devices_are_refused() {
    for (kind, label) in [
        (tar::EntryType::Symlink, "symlink"),
        (tar::EntryType::Link, "hardlink"),
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "fifo"),
    ] {
        let err = read(&archive_with(OK, &[RawEntry::special("netns/x", kind)])).unwrap_err();
        match err {
            ReadError::ForbiddenEntryType {
                ref entry,
                ref kind,
                ..
            } => {
                assert_eq!(entry, "netns/x");
                assert_eq!(kind, label);
            }
            other => panic!("{label}: unexpected {other}"),
        }
    }
}

#[test]
fn duplicate_entry_is_refused() {
    let err = read(&archive_with(
        OK,
        &[RawEntry::file("host/resolv.conf", b"nameserver 6.6.6.6\n")],
    ))
    .unwrap_err();
    assert!(
        matches!(err, ReadError::Duplicate { ref entry, .. } if entry == "host/resolv.conf"),
        "{err}"
    );
}

#[test]
fn sha256_mismatch_is_refused() {
    let manifest = manifest_json_for(OK);
    let tar = raw_tar(
        &[
            RawEntry::file("manifest.json", &manifest),
            // Same length as the listed content, different bytes.
            RawEntry::file("host/resolv.conf", b"nameserver 10.96.0.66\n"),
        ],
        true,
    );
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(
        matches!(err, ReadError::ChecksumMismatch { ref entry, .. } if entry == "host/resolv.conf"),
        "{err}"
    );
}

/// An entry bigger than the reader's piece, read whole (and hashed once read, beside
/// the reading of the next entries): its digest is checked whole, a changed byte in
/// a later piece is found, and the next entry is hashed on its own.
#[test]
fn entry_hashed_in_pieces_is_verified_whole() {
    let big: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
    let files: &[(&str, &[u8])] = &[
        ("conntrack/nf_conntrack.txt", &big),
        ("host/resolv.conf", b"nameserver 10.96.0.10\n"),
    ];
    let manifest = manifest_json_for(files);
    let tar = |big: &[u8]| {
        raw_tar(
            &[
                RawEntry::file("manifest.json", &manifest),
                RawEntry::file("conntrack/nf_conntrack.txt", big),
                RawEntry::file("host/resolv.conf", files[1].1),
            ],
            true,
        )
    };
    let bundle = read(&zstd(&tar(&big))).unwrap();
    assert_eq!(bundle.file("conntrack/nf_conntrack.txt"), Some(&big[..]));

    let mut changed = big.clone();
    changed[(8 << 20) + 5] ^= 1;
    let err = read(&zstd(&tar(&changed))).unwrap_err();
    assert!(
        matches!(err, ReadError::ChecksumMismatch { ref entry, .. } if entry == "conntrack/nf_conntrack.txt"),
        "{err}"
    );
}

/// Records what a reader shows while it reads, asking for the table in pieces.
#[derive(Default)]
struct Shown {
    pieces: Vec<(String, usize, Vec<u8>)>,
    whole: Vec<String>,
    /// Entries whose pieces ended, with how many pieces had been shown then.
    ends: Vec<(String, usize)>,
}

impl OnRead for Shown {
    fn wants_pieces(&mut self, path: &str) -> bool {
        path == TABLE
    }
    fn piece(&mut self, path: &str, offset: usize, piece: &Arc<Vec<u8>>) {
        self.pieces.push((path.into(), offset, piece.to_vec()));
    }
    fn pieces_end(&mut self, path: &str) {
        self.ends.push((path.into(), self.pieces.len()));
    }
    fn entry(&mut self, path: &str, _: &Arc<Vec<u8>>) {
        self.whole.push(path.into());
    }
}

const TABLE: &str = "conntrack/nf_conntrack.txt";

/// A text of about 13 MiB: short lines of varying length, one line longer than a
/// piece (6 MiB), CRLF endings, and a last line without a newline.
fn long_text() -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..60_000u32 {
        let line = format!("line {i} {}\n", "x".repeat((i % 97) as usize));
        text.extend_from_slice(line.as_bytes());
    }
    text.extend(std::iter::repeat_n(b'y', 6 << 20));
    text.extend_from_slice(b"\r\n");
    for i in 0..40_000u32 {
        text.extend_from_slice(format!("crlf {i}\r\n").as_bytes());
    }
    text.extend_from_slice(b"last line, unterminated");
    text
}

fn read_shown(bytes: &[u8]) -> (Result<Bundle, ReadError>, Shown) {
    let mut shown = Shown::default();
    let r = Bundle::from_archive_with(
        bytes,
        "t.netsnap.tar.zst",
        &ReadLimits::default(),
        &mut shown,
    );
    (r, shown)
}

/// An entry read in pieces instead of whole: the pieces are whole lines (only the
/// last may lack its newline), follow one another from offset 0 and make up the
/// entry; the entry is verified (size and digest) but not kept; the other entries
/// are read whole as before.
#[test]
fn entry_read_in_pieces_is_whole_lines_and_verified() {
    let text = long_text();
    let files: &[(&str, &[u8])] = &[(TABLE, &text), OK[0]];
    let manifest = manifest_json_for(files);
    let tar = |table: &[u8]| {
        zstd(&raw_tar(
            &[
                RawEntry::file("manifest.json", &manifest),
                RawEntry::file(TABLE, table),
                RawEntry::file(OK[0].0, OK[0].1),
            ],
            true,
        ))
    };
    let (bundle, shown) = read_shown(&tar(&text));
    let bundle = bundle.unwrap();
    assert_eq!(
        bundle.file(TABLE),
        None,
        "a table read in pieces is not kept"
    );
    assert_eq!(bundle.file(OK[0].0), Some(OK[0].1));
    assert_eq!(
        shown.whole,
        vec!["manifest.json".to_string(), OK[0].0.into()]
    );
    assert!(shown.pieces.len() >= 3, "{} pieces", shown.pieces.len());
    let mut joined = Vec::new();
    for (i, (path, offset, piece)) in shown.pieces.iter().enumerate() {
        assert_eq!(path, TABLE);
        assert_eq!(*offset, joined.len(), "piece {i} follows the one before");
        if i + 1 < shown.pieces.len() {
            assert_eq!(piece.last(), Some(&b'\n'), "piece {i} ends a line");
        }
        joined.extend_from_slice(piece);
    }
    assert_eq!(joined, text);
    assert_eq!(shown.ends, vec![(TABLE.to_string(), shown.pieces.len())]);

    // A changed byte in a later piece, a shorter entry: refused as when read whole.
    let mut changed = text.clone();
    changed[(9 << 20) + 3] ^= 1;
    let err = read_shown(&tar(&changed)).0.unwrap_err();
    assert!(
        matches!(err, ReadError::ChecksumMismatch { ref entry, .. } if entry == TABLE),
        "{err}"
    );
    let err = read_shown(&tar(&text[..text.len() - 1])).0.unwrap_err();
    assert!(
        matches!(err, ReadError::SizeMismatch { ref entry, .. } if entry == TABLE),
        "{err}"
    );
}

/// An entry read in pieces counts as read: a second one of that path is a duplicate,
/// and one the manifest does not list is refused.
#[test]
fn entry_read_in_pieces_is_checked_against_the_manifest() {
    let table: &[u8] = b"a\nb\n";
    let twice = raw_tar(
        &[
            RawEntry::file("manifest.json", &manifest_json_for(&[(TABLE, table)])),
            RawEntry::file(TABLE, table),
            RawEntry::file(TABLE, table),
        ],
        true,
    );
    let err = read_shown(&zstd(&twice)).0.unwrap_err();
    assert!(
        matches!(err, ReadError::Duplicate { ref entry, .. } if entry == TABLE),
        "{err}"
    );
    let unlisted = raw_tar(
        &[
            RawEntry::file("manifest.json", &manifest_json_for(OK)),
            RawEntry::file(TABLE, table),
            RawEntry::file(OK[0].0, OK[0].1),
        ],
        true,
    );
    let err = read_shown(&zstd(&unlisted)).0.unwrap_err();
    assert!(
        matches!(err, ReadError::Unlisted { ref entry, .. } if entry == TABLE),
        "{err}"
    );
}

#[test]
fn size_mismatch_missing_and_unlisted_entries_are_refused() {
    let manifest = manifest_json_for(OK);
    let tar = raw_tar(
        &[
            RawEntry::file("manifest.json", &manifest),
            RawEntry::file("host/resolv.conf", b"short"),
        ],
        true,
    );
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(
        matches!(err, ReadError::SizeMismatch { ref entry, expected: 22, actual: 5, .. } if entry == "host/resolv.conf"),
        "{err}"
    );

    let tar = raw_tar(&[RawEntry::file("manifest.json", &manifest)], true);
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(
        matches!(err, ReadError::MissingEntry { ref entry, .. } if entry == "host/resolv.conf"),
        "{err}"
    );

    let err = read(&archive_with(
        OK,
        &[RawEntry::file("smuggled.sh", b"#!/bin/sh")],
    ))
    .unwrap_err();
    assert!(
        matches!(err, ReadError::Unlisted { ref entry, .. } if entry == "smuggled.sh"),
        "{err}"
    );
}

#[test]
fn entry_over_the_size_limit_is_refused_before_reading() {
    let big = vec![b'a'; 10_000];
    let limits = ReadLimits {
        max_entry_bytes: 4096,
        ..ReadLimits::default()
    };
    let err = read_with(
        &archive_with(&[("conntrack/nf_conntrack.txt", &big)], &[]),
        &limits,
    )
    .unwrap_err();
    assert!(
        matches!(err, ReadError::EntryTooLarge { ref entry, size: 10_000, limit: 4096, .. } if entry == "conntrack/nf_conntrack.txt"),
        "{err}"
    );
}

#[test]
fn total_over_the_limit_is_refused() {
    let chunk = vec![b'a'; 3000];
    let files: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("f{i}"), chunk.clone())).collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    // The manifest (~1.5 KB) counts too: f0 and f1 still fit, f2 crosses 10,000.
    let limits = ReadLimits {
        max_total_bytes: 10_000,
        ..ReadLimits::default()
    };
    let err = read_with(&archive_with(&refs, &[]), &limits).unwrap_err();
    assert!(
        matches!(err, ReadError::TotalTooLarge { ref entry, .. } if entry == "f2"),
        "{err}"
    );
}

#[test]
fn too_many_entries_are_refused() {
    let files: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}"), vec![b'x'])).collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let limits = ReadLimits {
        max_entries: 10,
        ..ReadLimits::default()
    };
    let err = read_with(&archive_with(&refs, &[]), &limits).unwrap_err();
    assert!(
        matches!(err, ReadError::TooManyEntries { limit: 10, .. }),
        "{err}"
    );
}

fn bomb(prefix: &[u8], zeros: u64) -> Vec<u8> {
    netsnap_schema::testing::zstd_bomb(prefix, zeros).unwrap()
}

#[test]
fn decompression_bombs_stop_early_without_allocating_them() {
    const GIB: u64 = 1 << 30;
    let limits = ReadLimits {
        max_entry_bytes: 8 << 20,
        max_total_bytes: 16 << 20,
        ..ReadLimits::default()
    };

    // One entry announcing 1 GiB of zeros.
    let mut entry = RawEntry::file("conntrack/nf_conntrack.txt", b"");
    entry.header_size = Some(GIB);
    // No end-of-archive blocks: the zeros follow as the entry's content.
    let head = raw_tar(
        &[
            RawEntry::file("manifest.json", &manifest_json_for(&[])),
            entry,
        ],
        false,
    );
    let small = bomb(&head, GIB);
    assert!(
        small.len() < 1 << 20,
        "the bomb itself is small: {} bytes",
        small.len()
    );
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let err = read_with(&small, &limits).unwrap_err();
    assert!(matches!(err, ReadError::EntryTooLarge { .. }), "{err}");
    let grew = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        grew < 32 << 20,
        "reader allocated {grew} bytes for a refused bomb"
    );

    // A valid small archive followed by a gigabyte of zero padding.
    let padded = raw_tar(
        &[RawEntry::file("manifest.json", &manifest_json_for(&[]))],
        false,
    );
    let small = bomb(&padded, GIB);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let err = read_with(&small, &limits).unwrap_err();
    assert!(matches!(err, ReadError::TotalTooLarge { .. }), "{err}");
    let grew = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        grew < 32 << 20,
        "reader allocated {grew} bytes while draining padding"
    );
}

#[test]
fn zstd_window_over_the_limit_is_refused() {
    let tar = raw_tar(
        &[RawEntry::file("manifest.json", &manifest_json_for(&[]))],
        true,
    );
    let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_contentsize(false).unwrap();
    enc.window_log(28).unwrap();
    enc.long_distance_matching(true).unwrap();
    enc.write_all(&tar).unwrap();
    let data = enc.finish().unwrap();
    let err = read_with(
        &data,
        &ReadLimits {
            max_window_log: 20,
            ..ReadLimits::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, ReadError::WindowTooLarge { limit: 20, .. }),
        "{err}"
    );
    // The same bundle reads once the limit is raised.
    read_with(
        &data,
        &ReadLimits {
            max_window_log: 28,
            ..ReadLimits::default()
        },
    )
    .unwrap();
}

#[test]
fn unknown_format_version_is_refused_clearly() {
    let mut m: serde_json::Value = serde_json::from_slice(&manifest_json_for(&[])).unwrap();
    m["format_version"] = 2.into();
    let tar = raw_tar(
        &[RawEntry::file(
            "manifest.json",
            &serde_json::to_vec(&m).unwrap(),
        )],
        true,
    );
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(
        matches!(err, ReadError::UnsupportedFormat { ref found, .. } if found == "2"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("format_version 2 is not supported"),
        "{err}"
    );
}

#[test]
fn manifest_missing_or_invalid_is_refused() {
    let tar = raw_tar(&[RawEntry::file("host/resolv.conf", b"x")], true);
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(matches!(err, ReadError::ManifestMissing { .. }), "{err}");
    assert_eq!(err.entry(), Some("manifest.json"));

    let tar = raw_tar(
        &[RawEntry::file(
            "manifest.json",
            b"{\n  \"format_version\": 1,\n  oops\n}",
        )],
        true,
    );
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(
        matches!(err, ReadError::ManifestInvalid { line: 3, .. }),
        "{err}"
    );

    let tar = raw_tar(
        &[RawEntry::file("manifest.json", b"{\"format_version\": 1}")],
        true,
    );
    let err = read(&zstd(&tar)).unwrap_err();
    assert!(matches!(err, ReadError::ManifestInvalid { .. }), "{err}");
}

#[test]
fn directory_bundles_refuse_links_and_special_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    common::sample_writer(tmp.path())
        .write_dir(common::manifest(), &dir)
        .unwrap();
    Bundle::open(&dir, &ReadLimits::default()).unwrap();

    std::os::unix::fs::symlink("/etc/passwd", dir.join("host/passwd")).unwrap();
    let err = Bundle::open(&dir, &ReadLimits::default()).unwrap_err();
    assert!(
        matches!(err, ReadError::ForbiddenEntryType { ref entry, .. } if entry == "host/passwd"),
        "{err}"
    );
    std::fs::remove_file(dir.join("host/passwd")).unwrap();

    let fifo = dir.join("host/fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = Bundle::open(&dir, &ReadLimits::default()).unwrap_err();
    assert!(
        matches!(err, ReadError::ForbiddenEntryType { ref entry, .. } if entry == "host/fifo"),
        "{err}"
    );
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}
