//! Writer → reader round trips, in both bundle forms, and byte-for-byte determinism.

use crate::common;

use common::{manifest, record, sample_writer};
use netsnap_schema::{Bundle, BundleWriter, ReadLimits, SourceStatus};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

fn contents(b: &Bundle) -> BTreeMap<String, Vec<u8>> {
    b.paths()
        .map(|p| (p.to_string(), b.file(p).unwrap().to_vec()))
        .collect()
}

#[test]
fn archive_and_directory_round_trip_to_identical_content() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("node-a.netsnap.tar.zst");
    let dir = tmp.path().join("node-a");
    let written_a = sample_writer(tmp.path())
        .write_archive(manifest(), &archive)
        .unwrap();
    let written_d = sample_writer(tmp.path())
        .write_dir(manifest(), &dir)
        .unwrap();
    assert_eq!(written_a, written_d);

    let from_archive = Bundle::open(&archive, &ReadLimits::default()).unwrap();
    let from_dir = Bundle::open(&dir, &ReadLimits::default()).unwrap();
    assert_eq!(from_archive.manifest, written_a);
    assert_eq!(from_dir.manifest, written_a);
    assert_eq!(contents(&from_archive), contents(&from_dir));
    let ct = from_archive.text("conntrack/nf_conntrack.txt").unwrap();
    assert_eq!(ct.lines().count(), 60_000);
    assert!(
        ct.len() > 1 << 20,
        "the conntrack source must have spilled out of memory"
    );
    let failed = written_a.sources.iter().find(|s| s.name == "ipvs").unwrap();
    assert_eq!(failed.status, SourceStatus::Unavailable);
    assert_eq!(failed.path, None);
}

#[test]
fn archive_is_private_and_leaves_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("b.netsnap.tar.zst");
    sample_writer(tmp.path())
        .write_archive(manifest(), &archive)
        .unwrap();
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("b.netsnap.tar.zst")]);
}

#[test]
fn failed_write_removes_the_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    // The target is an existing directory, so the final rename fails after writing.
    let out = tmp.path().join("occupied");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("x"), b"x").unwrap();
    let err = sample_writer(tmp.path())
        .write_archive(manifest(), &out)
        .unwrap_err();
    assert!(err.to_string().contains("occupied"), "{err}");
    assert!(!tmp.path().join("occupied.partial").exists());
}

#[test]
fn same_inputs_give_byte_identical_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.tar.zst");
    let b = tmp.path().join("b.tar.zst");
    sample_writer(tmp.path())
        .write_archive(manifest(), &a)
        .unwrap();
    sample_writer(tmp.path())
        .write_archive(manifest(), &b)
        .unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn insertion_order_does_not_change_the_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        ("a/x.txt", b"1".as_slice()),
        ("b.txt", b"22"),
        ("a/b/c.json", b"{}"),
    ];
    let mut outputs = Vec::new();
    for order in [[0, 1, 2], [2, 0, 1]] {
        let mut w = BundleWriter::new(tmp.path());
        for i in order {
            w.add_bytes(record(files[i].0, files[i].0), files[i].1)
                .unwrap();
        }
        let (_, bytes) = w.write_archive_to(manifest(), Vec::new()).unwrap();
        outputs.push(bytes);
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn writer_refuses_unsafe_paths_and_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = BundleWriter::new(tmp.path());
    for bad in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
        let err = w.add_bytes(record("s", bad), b"x").unwrap_err();
        assert!(
            matches!(err, netsnap_schema::WriteError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    w.add_bytes(record("s", "a.txt"), b"x").unwrap();
    let err = w.add_bytes(record("t", "a.txt"), b"y").unwrap_err();
    assert!(matches!(err, netsnap_schema::WriteError::Duplicate(ref p) if p == "a.txt"));
    let err = w
        .add_bytes(record("m", "manifest.json"), b"{}")
        .unwrap_err();
    assert!(matches!(err, netsnap_schema::WriteError::Duplicate(_)));
}

fn path_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9_-]{1,12}", 1..4).prop_map(|parts| parts.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_source_sets_round_trip(
        sources in proptest::collection::btree_map(path_strategy(), proptest::collection::vec(any::<u8>(), 0..3000), 0..12)
    ) {
        // A path that is also a prefix directory of another cannot exist on disk.
        let paths: Vec<_> = sources.keys().cloned().collect();
        prop_assume!(!paths.iter().any(|a| paths.iter().any(|b| b.starts_with(&format!("{a}/")))));
        prop_assume!(!paths.iter().any(|p| p == "manifest.json"));
        let tmp = tempfile::tempdir().unwrap();
        let build = || {
            let mut w = BundleWriter::new(tmp.path());
            for (path, data) in &sources {
                w.add_bytes(record(path, path), data).unwrap();
            }
            w
        };
        let archive = tmp.path().join("p.tar.zst");
        let dir = tmp.path().join("p.d");
        let m = build().write_archive(manifest(), &archive).unwrap();
        build().write_dir(manifest(), &dir).unwrap();
        for path in [&archive, &dir] {
            let b = Bundle::open(path, &ReadLimits::default()).unwrap();
            prop_assert_eq!(&b.manifest, &m);
            prop_assert_eq!(&contents(&b), &sources);
        }
    }
}
