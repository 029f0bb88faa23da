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

/// An imported bundle: the lab's real `iptables-save` (the demo capture's) pasted with
/// a prompt and trailing text, beside a file nothing recognises.
#[test]
fn inspect_shows_where_imported_sources_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/demo/netfilter/iptables-nft-save.txt");
    let save = std::fs::read_to_string(&demo).unwrap();
    let paste = tmp.path().join("ticket.txt");
    std::fs::write(
        &paste,
        format!("root@node-3:~# iptables-save\n{save}root@node-3:~# exit\n"),
    )
    .unwrap();
    let other = tmp.path().join("notes.txt");
    std::fs::write(&other, "the customer says it broke on Tuesday\n").unwrap();
    let out_bundle = tmp.path().join("imported.netsnap.tar.zst");
    let import = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("import")
        .args([&paste, &other])
        .arg("-o")
        .arg(&out_bundle)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("inspect")
        .arg(&out_bundle)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = save.lines().count() + 1;
    let row = text
        .lines()
        .skip_while(|l| !l.starts_with("Imported from"))
        .find(|l| l.starts_with("iptables-nft-save"))
        .unwrap_or_else(|| panic!("no imported-from row:\n{text}"));
    assert!(row.contains(&format!("2-{lines}")), "{row}");
    assert!(row.contains(&paste.display().to_string()), "{row}");
    assert!(row.contains("iptables-save"), "{row}");
    let inputs = text
        .split_once("Import inputs (2)")
        .unwrap_or_else(|| panic!("no import inputs:\n{text}"))
        .1;
    assert!(
        inputs.contains(&format!("{} (not recognised)", other.display())),
        "{inputs}"
    );
    assert!(inputs.contains("note: "), "{inputs}");
    // A collector's bundle has neither section.
    let plain = bundle(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("inspect")
        .arg(&plain)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Imported from") && !text.contains("Import inputs"),
        "{text}"
    );
}
