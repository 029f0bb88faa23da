//! `netsnap redact IN OUT [--key FILE] [--map FILE]`, end to end through the binary.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use support::*;

/// `$NETSNAP_BIN`, or `netsnap` built (a no-op when up to date) into the target
/// directory and profile of this test executable.
fn netsnap_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("NETSNAP_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let target = profile_dir.parent().unwrap();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "netsnap-analyzer", "--bin", "netsnap"])
            .arg("--target-dir")
            .arg(target);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building netsnap failed");
        profile_dir.join("netsnap")
    })
    .clone()
}

fn netsnap(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(netsnap_bin())
        .args(args)
        .output()
        .expect("run netsnap")
}

fn os(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

#[test]
fn redact_command_writes_bundle_and_map_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let demo = fixture("demo");
    let key = dir.path().join("cluster.key");
    let out = dir.path().join("demo-redacted.netsnap.tar.zst");
    let o = netsnap(&[
        "redact".as_ref(),
        os(&demo),
        os(&out),
        "--key".as_ref(),
        os(&key),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let map_path = dir.path().join("demo-redacted.netsnap.tar.zst.map.json");
    assert!(out.is_file() && map_path.is_file() && key.is_file());
    let map = netsnap_redact::RedactionMap::from_json(&std::fs::read(&map_path).unwrap()).unwrap();
    let redacted = open(&out);
    assert_eq!(redacted.manifest.hostname, map.names["vm"]);

    // The analyzer reads it like any bundle.
    let o = netsnap(&[
        "analyze".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        os(&out),
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["bundles"][0]["hostname"], map.names["vm"].as_str());
    assert_eq!(report["bundles"][0]["coverage"]["unrecognised_lines"], 0);

    // The same key, another output: the same pseudonyms.
    let out2 = dir.path().join("again");
    let o = netsnap(&[
        "redact".as_ref(),
        os(&demo),
        os(&out2),
        "--key".as_ref(),
        os(&key),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out2.is_dir());
    let map2 = netsnap_redact::RedactionMap::from_json(
        &std::fs::read(dir.path().join("again.map.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(map, map2);
}

#[test]
fn redact_command_refuses_unsafe_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let demo = fixture("demo");
    let out = dir.path().join("r.netsnap.tar.zst");
    // A map inside a bundle directory.
    let o = netsnap(&[
        "redact".as_ref(),
        os(&demo),
        os(&out),
        "--map".as_ref(),
        os(&demo.join("map.json")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bundle directory"));
    assert!(!out.exists() && !demo.join("map.json").exists());
    // An existing output.
    std::fs::write(&out, b"x").unwrap();
    let o = netsnap(&["redact".as_ref(), os(&demo), os(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&out).unwrap(), b"x");
    // A hostile input.
    let bad = dir.path().join("bad.netsnap.tar.zst");
    std::fs::write(&bad, b"not a bundle").unwrap();
    let o = netsnap(&["redact".as_ref(), os(&bad), os(&dir.path().join("x"))]);
    assert_eq!(o.status.code(), Some(2));
}
