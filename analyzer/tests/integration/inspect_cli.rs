//! `netsnap inspect` on a real written bundle, and its exit code on a broken one.

use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus, Truncation};
use std::process::Command;

fn bundle(dir: &std::path::Path) -> std::path::PathBuf {
    let mut w = BundleWriter::new(dir);
    let mut ok = SourceRecord::new("iptables-nft-save", SourceStatus::Ok);
    ok.path = Some("netfilter/iptables-nft-save.txt".into());
    w.add_bytes(ok, b"*filter\nCOMMIT\n").unwrap();
    let mut ct = SourceRecord::new("conntrack", SourceStatus::Partial);
    ct.path = Some("conntrack/nf_conntrack.txt".into());
    ct.truncated = Some(Truncation { kept: 2, total: 9 });
    w.add_bytes(ct, b"a\nb\n").unwrap();
    w.add_record(
        SourceRecord::new("ipvs", SourceStatus::Unavailable)
            .with_error("/proc/net/ip_vs: not found"),
    )
    .unwrap();
    let out = dir.join("n.netsnap.tar.zst");
    let m = Manifest::new(
        "1.0",
        "node-9",
        "6.18.0",
        "2026-11-21T00:00:00Z",
        1_795_219_200,
    );
    w.write_archive(m, &out).unwrap();
    out
}

#[test]
fn inspect_lists_every_source_with_status_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("inspect")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("hostname   node-9"), "{text}");
    assert!(
        text.contains("3 (1 ok, 1 partial, 0 failed, 1 unavailable, 0 skipped)"),
        "{text}"
    );
    let ipvs = text.lines().find(|l| l.starts_with("ipvs")).unwrap();
    assert!(
        ipvs.contains("unavailable") && ipvs.contains("/proc/net/ip_vs: not found"),
        "{ipvs}"
    );
    let ct = text.lines().find(|l| l.starts_with("conntrack")).unwrap();
    assert!(ct.contains("truncated: kept 2 of 9"), "{ct}");
}

#[test]
fn a_broken_bundle_exits_2_naming_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle(tmp.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("inspect")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("n.netsnap.tar.zst") && err.contains("entry"),
        "{err}"
    );
}
