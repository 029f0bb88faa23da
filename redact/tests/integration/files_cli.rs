//! The file-level operations both command lines use: output forms, the map beside
//! the output, the key file, and the collector's capture-then-redact path.

use crate::support;

use netsnap_redact::files::{check_map_path, default_map_path, redact_to_path};
use netsnap_redact::{load_or_create_key, redact_writer, RedactError};
use support::*;

#[test]
fn redact_to_archive_and_directory_with_map_beside() {
    let dir = tempfile::tempdir().unwrap();
    let original = open(&build_bundle(dir.path(), Nft::Vmap));
    let (key, created) = load_or_create_key(&dir.path().join("cluster.key")).unwrap();
    assert!(created);
    for out in ["r.netsnap.tar.zst", "r-dir"] {
        let out = dir.path().join(out);
        let map = default_map_path(&out);
        let (manifest, m) = redact_to_path(&original, &key, &out, &map, dir.path()).unwrap();
        let redacted = open(&out);
        assert_eq!(redacted.manifest, manifest);
        assert!(out.exists() && map.is_file());
        let back = netsnap_redact::RedactionMap::from_json(&std::fs::read(&map).unwrap()).unwrap();
        assert_eq!(back, m);
        // Never overwrites.
        assert!(matches!(
            redact_to_path(
                &original,
                &key,
                &out,
                &dir.path().join("other.json"),
                dir.path()
            ),
            Err(RedactError::OutputExists(_))
        ));
    }
    // A map inside a bundle directory is refused before anything is written.
    let out = dir.path().join("s.netsnap.tar.zst");
    let inside = dir.path().join("a").join("map.json");
    assert!(matches!(
        redact_to_path(&original, &key, &out, &inside, dir.path()),
        Err(RedactError::MapPlacement { .. })
    ));
    assert!(!out.exists());
    assert!(check_map_path(&dir.path().join("r-dir/netns/m.json"), &out).is_err());
}

#[test]
fn collector_capture_is_redacted_without_an_unredacted_file() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let outdir = dir.path().join("out");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&outdir).unwrap();
    let key = test_key(7);

    let (writer, manifest) = build_writer(&work, Nft::Vmap);
    let out = outdir.join("node.netsnap.tar.zst");
    let map = default_map_path(&out);
    check_map_path(&map, &out).unwrap();
    // What the collector does with --redact: redact, then its own output path.
    let (writer, manifest, m) = redact_writer(writer, manifest, &key, &outdir).unwrap();
    writer.write_archive(manifest, &out).unwrap();
    netsnap_redact::files::write_map(&m, &map).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["node.netsnap.tar.zst", "node.netsnap.tar.zst.map.json"]
    );

    // The same as redacting the bundle the collector would have written.
    let original = open(&build_bundle(&work, Nft::Vmap));
    let (expected, expected_map) = redact_to(&original, &key, &work, "expected");
    let got = open(&out);
    assert_eq!(m, expected_map);
    for p in expected.paths() {
        assert_eq!(got.file(p), expected.file(p), "{p}");
    }
}
