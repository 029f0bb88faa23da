//! The static aarch64 collector (scripts/build-static --target
//! aarch64-unknown-linux-musl, in the `static-test` profile: see the workspace
//! Cargo.toml) under qemu-user (Debian `qemu-user-static`): a static ARM64 ELF,
//! `--version`, and captures of a lab node: its host facts (uname says aarch64: the
//! code ran emulated), then everything, with every source's status reported as it
//! came out under emulation. And deploy/Containerfile around it, built with buildah.

use netsnap_schema::SourceStatus;
use netsnap_tests::collect_support::{collect_lab, lab_args, refs, with_lab};
use netsnap_tests::collector::{open_bundle, TempDir};
use netsnap_tests::deploy_support::{
    elf_machine_and_interp, require_tool, static_collector, workspace,
};
use netsnap_tests::lab::require_lab;
use netsnap_tests::notice;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const QEMU: &str = "qemu-aarch64-static";
const EM_AARCH64: u16 = 183;

fn qemu(bin: &Path, args: &[&str]) -> Output {
    Command::new(QEMU)
        .arg(bin)
        .args(args)
        .output()
        .expect("run qemu-aarch64-static")
}

/// Sources by status, with the reasons of those that did not come out ok.
fn statuses(bundle: &Path) -> (BTreeMap<String, usize>, Vec<String>) {
    let b = open_bundle(bundle).expect("bundle");
    let mut by = BTreeMap::new();
    let mut bad = Vec::new();
    for r in &b.manifest.sources {
        let st = format!("{:?}", r.status).to_lowercase();
        *by.entry(st.clone()).or_insert(0) += 1;
        if matches!(r.status, SourceStatus::Failed | SourceStatus::Partial) {
            bad.push(format!(
                "{} {st}: {}",
                r.name,
                r.error.as_deref().unwrap_or("")
            ));
        }
    }
    (by, bad)
}

#[test]
fn aarch64_collector_runs_under_qemu_user() {
    if !require_tool(QEMU, "apt-get install qemu-user-static")
        || !require_tool("cargo-zigbuild", "pip install ziglang cargo-zigbuild")
    {
        return;
    }
    let Some(_env) = require_lab() else { return };
    let bin = static_collector("aarch64-unknown-linux-musl");
    let elf = std::fs::read(&bin).unwrap();
    assert_eq!(
        elf_machine_and_interp(&elf),
        Some((EM_AARCH64, false)),
        "not a static ARM64 ELF"
    );
    let v = qemu(&bin, &["--version"]);
    let version = String::from_utf8_lossy(&v.stdout).trim().to_string();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert_eq!(
        version,
        format!("netsnap-collect {}", env!("CARGO_PKG_VERSION"))
    );
    with_lab("qemu", 2, |lab| {
        let facts_bundle = lab.dir().join("qemu-host.netsnap.tar.zst");
        let mut args = lab_args(lab, lab.host_root(), &facts_bundle);
        args.extend(["--only", "host/facts", "-q"].map(String::from));
        let out = qemu(&bin, &refs(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "host facts under qemu: {}\n{stderr}", out.status);
        let b = open_bundle(&facts_bundle).expect("host facts bundle");
        let rec = b.manifest.sources.iter().find(|r| r.name == "host/facts").expect("facts record");
        assert_eq!(rec.status, SourceStatus::Ok, "{rec:?}");
        let facts: netsnap_schema::model::HostFacts =
            b.json("host/facts.json").unwrap().expect("host/facts.json");
        assert_eq!(facts.machine, "aarch64", "uname under qemu-user");
        assert!(facts.cpus > 0 && facts.memory_bytes > 0, "{facts:?}");

        let full = lab.dir().join("qemu-full.netsnap.tar.zst");
        let mut args = lab_args(lab, lab.host_root(), &full);
        args.extend(["-q", "--timeout", "60"].map(String::from));
        let out = qemu(&bin, &refs(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(full.is_file(), "no full bundle under qemu ({}): {stderr}", out.status);
        let (by, bad) = statuses(&full);
        // setns and the netlink dumps of links, addresses and routes work under
        // emulation. qemu-user 7.2's netlink translation does not carry ip rules,
        // neighbours or RTM_GETNSID, so the node's pods (found through their veth
        // peers' nsid) are missed there: reported below, not asserted (native arm64
        // runs these syscalls natively).
        let b = open_bundle(&full).expect("full bundle");
        for name in ["netns/links", "netns/addrs", "host/sysctl", "iptables-nft-save"] {
            let r = b.manifest.sources.iter().find(|r| r.name == name);
            assert_eq!(r.map(|r| r.status), Some(SourceStatus::Ok), "{name}: {r:?}");
        }
        let netns_with_links = b.paths().filter(|p| p.ends_with("/links.json")).count();
        assert!(netns_with_links >= 1, "no links captured");
        let native = open_bundle(&collect_lab(lab, "native", &[])).expect("native bundle");
        let native_links = native.paths().filter(|p| p.ends_with("/links.json")).count();
        notice(&format!(
            "static_aarch64: {} ({} bytes, static ARM64 ELF) under {QEMU}: `{version}`; host facts of lab node {}: \
             machine {}, {} cpus; full capture under emulation: links of {netns_with_links} netns (the native x86_64 collector: {native_links}), sources by status {by:?}{}",
            bin.display(),
            elf.len(),
            lab.name(),
            facts.machine,
            facts.cpus,
            if bad.is_empty() { String::new() } else { format!("; not ok: {}", bad.join(" | ")) }
        ));
        Ok(())
    })
    .expect("lab");
}

/// deploy/Containerfile built with buildah (Debian `buildah`, daemonless; its storage
/// in a temporary directory) for linux/arm64 around the static aarch64 collector: an
/// image of one layer holding one file, `/netsnap-collect`, whose default command is
/// `--idle`.
#[test]
fn containerfile_makes_a_one_file_scratch_image() {
    if !require_tool("buildah", "apt-get install buildah")
        || !require_tool("cargo-zigbuild", "pip install ziglang cargo-zigbuild")
    {
        return;
    }
    let bin = static_collector("aarch64-unknown-linux-musl");
    let dir = TempDir::new("image").unwrap();
    let ctx = dir.path().join("context");
    std::fs::create_dir_all(ctx.join("bin/arm64")).unwrap();
    std::fs::copy(
        workspace().join("deploy/Containerfile"),
        ctx.join("Containerfile"),
    )
    .unwrap();
    std::fs::copy(&bin, ctx.join("bin/arm64/netsnap-collect")).unwrap();
    let store = |args: &[&str]| -> Output {
        Command::new("buildah")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("runroot"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .current_dir(&ctx)
            .output()
            .expect("run buildah")
    };
    let tag = "localhost/netsnap-collect:test-arm64";
    let out = store(&[
        "bud",
        "--isolation",
        "chroot",
        "--platform",
        "linux/arm64",
        "-t",
        tag,
        ".",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "buildah bud: {err}");
    let out = store(&["inspect", "--type", "image", tag]);
    let image: Value = serde_json::from_slice(&out.stdout).expect("buildah inspect JSON");
    let oci = &image["OCIv1"];
    assert_eq!(oci["architecture"], "arm64");
    assert_eq!(
        oci["config"]["Entrypoint"],
        serde_json::json!(["/netsnap-collect"])
    );
    assert_eq!(oci["config"]["Cmd"], serde_json::json!(["--idle"]));
    assert_eq!(oci["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(1));
    let container = store(&["from", tag]);
    let name = String::from_utf8_lossy(&container.stdout)
        .trim()
        .to_string();
    let mount = store(&["mount", &name]);
    let root = std::path::PathBuf::from(String::from_utf8_lossy(&mount.stdout).trim());
    let files: Vec<String> = walk(&root);
    assert_eq!(files, ["netsnap-collect"], "the image's files");
    let same = std::fs::read(root.join("netsnap-collect")).unwrap() == std::fs::read(&bin).unwrap();
    assert!(same, "the image's collector is not the static build");
    let _ = store(&["umount", &name]);
    let _ = store(&["rm", &name]);
    let _ = store(&["rmi", "--all", "--force"]);
    notice(&format!(
        "static_aarch64: deploy/Containerfile → {tag}: arm64, 1 layer, files {files:?}, entrypoint /netsnap-collect --idle"
    ));
}

/// Every file under `root`, relative, sorted.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
