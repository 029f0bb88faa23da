//! The static aarch64 collector (scripts/build-static --target
//! aarch64-unknown-linux-musl, in the `static-test` profile: see the workspace
//! Cargo.toml) under qemu-user (Debian `qemu-user-static`): a static ARM64 ELF,
//! `--version`, and captures of a lab node: its host facts (uname says aarch64: the
//! code ran emulated), then everything, with every source's status reported as it
//! came out under emulation.

use netsnap_schema::SourceStatus;
use netsnap_tests::collect_support::{collect_lab, lab_args, refs, with_lab};
use netsnap_tests::collector::open_bundle;
use netsnap_tests::deploy_support::{elf_machine_and_interp, require_tool, static_collector};
use netsnap_tests::lab::require_lab;
use netsnap_tests::notice;
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
