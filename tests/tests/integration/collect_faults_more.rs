//! `netsnap-collect` under the rest of the faults of issue 7 item 4: many pod netns
//! vanishing mid-capture, a pod's only process exiting before its resolv.conf is
//! read, tools printing garbage, the disk filling up part-way, SIGTERM and SIGKILL
//! mid-capture and mid-write, two collectors at once, and 1,000 pod netns.
//!
//! Every test asserts: the bundle is valid (`Bundle::open`) or there is no file; the
//! reason is recorded (manifest record status + error, or a clear message on exit 1);
//! the deadline held (the process had exited by `--timeout` + a small margin, and the
//! manifest's duration is within `--timeout`); the node is unchanged (links, addresses,
//! routes, rules of the node and its pods, both iptables backends, the nft ruleset).
//!
//! The lab is driven between discovery and the netns captures through the collector's
//! test gate (`NETSNAP_COLLECT_TEST_GATE`), so nothing here depends on timing.

use anyhow::{anyhow, ensure, Context, Result};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::NetnsIndex;
use netsnap_schema::{Bundle, SourceRecord, SourceStatus};
use netsnap_tests::bare_node::BareNode;
use netsnap_tests::collect_support::{
    assert_deadline, conntrack_count, fill_conntrack, host_root_with, host_root_with_tools,
    lab_args, listing, node_args, processes_with, refs, run_gated, run_on_tmpfs, signal,
    unique_marker, wait_for, with_built_lab, ChildGuard, MarkerReaper, NodeState,
};
use netsnap_tests::collector::{self as c, Run, RunOpts, TempDir};
use netsnap_tests::lab::{self, assert_no_leaks, require_lab, Lab};
use netsnap_tests::notice;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The 1,000-netns test runs alone: its setup and the collector's discovery of
/// every netns on the machine would slow the others' deadlines down.
static HEAVY: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    HEAVY.read().unwrap_or_else(|p| p.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    HEAVY.write().unwrap_or_else(|p| p.into_inner())
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn with_timeout(mut args: Vec<String>, t: Duration) -> Vec<String> {
    args.extend(["--timeout".into(), t.as_secs().to_string()]);
    args
}

/// The index entry of a netns file, by inode.
fn netns_id_by_inode(index: &NetnsIndex, ino: u64) -> Result<String> {
    index
        .netns
        .iter()
        .find(|n| n.inode == ino)
        .map(|n| n.id.clone())
        .with_context(|| format!("netns inode {ino} not in the index"))
}

fn netns_records<'a>(b: &'a Bundle, id: &str) -> Vec<&'a SourceRecord> {
    b.manifest
        .sources
        .iter()
        .filter(|r| r.netns.as_deref() == Some(id))
        .collect()
}

fn netns_record<'a>(b: &'a Bundle, id: &str, f: NetnsFile) -> Result<&'a SourceRecord> {
    netns_records(b, id)
        .into_iter()
        .find(|r| r.name == f.source_name())
        .with_context(|| format!("no {} record for {id}", f.source_name()))
}

/// Every failed or partial record says why.
fn every_problem_has_a_reason(b: &Bundle) -> Result<()> {
    for r in &b.manifest.sources {
        if matches!(r.status, SourceStatus::Failed | SourceStatus::Partial) {
            ensure!(
                r.error.as_deref().is_some_and(|e| !e.trim().is_empty()),
                "no reason: {r:?}"
            );
        }
    }
    Ok(())
}

// ---- 1. many netns vanishing mid-capture ---------------------------------------------

#[test]
fn collect_ten_pod_netns_deleted_mid_capture() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = shared();
    let b = Lab::builder("cf-vanish")
        .pods(12)
        .services(6)
        .endpoints_per_service(2)
        .traffic(false);
    with_built_lab(b, |lab| {
        let dir = TempDir::new("vanish")?;
        let out = dir.path().join("b.tar.zst");
        let args = with_timeout(lab_args(lab, lab.host_root(), &out), TIMEOUT);
        let victims: Vec<usize> = (0..10).collect();
        let victim_inodes = victims
            .iter()
            .map(|&i| lab::netns::inode(&lab.pods()[i].netns_path))
            .collect::<Result<Vec<u64>>>()?;
        // Discovery saw all 13 pods; 10 are deleted (processes, netns, veths) before
        // the collector goes on. The node state to compare with is the one after that.
        let (run, before) = run_gated(&args, vec![], |_| {
            for &i in &victims {
                lab.fault_endpoint_pod_deleted(i)?;
            }
            NodeState::of_lab(lab)
        })?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
        before.ensure_same(&NodeState::of_lab(lab)?)?;
        every_problem_has_a_reason(&b)?;

        let index: NetnsIndex = b.json(layout::NETNS_INDEX)?.context("index")?;
        for ino in &victim_inodes {
            let id = netns_id_by_inode(&index, *ino)?;
            let recs = netns_records(&b, &id);
            ensure!(
                recs.len() == NetnsFile::ALL.len(),
                "records of deleted netns {id}: {recs:?}"
            );
            for r in recs {
                ensure!(r.status == SourceStatus::Failed, "{r:?}");
                let e = r.error.as_deref().unwrap_or("");
                ensure!(
                    e.contains("No such file") || e.contains("is gone"),
                    "reason: {e}"
                );
                ensure!(r.path.is_none(), "content for a deleted netns: {r:?}");
            }
        }
        // The three survivors (two pods and coredns) and the node were captured.
        for p in lab.pods().iter().filter(|p| !p.deleted) {
            let id = netns_id_by_inode(&index, lab::netns::inode(&p.netns_path)?)?;
            for f in [NetnsFile::Links, NetnsFile::Addrs, NetnsFile::Routes] {
                let r = netns_record(&b, &id, f)?;
                ensure!(r.status == SourceStatus::Ok, "{}: {r:?}", p.name);
            }
            ensure!(
                b.text(&layout::netns_path(&id, NetnsFile::ResolvConf))
                    .as_deref()
                    == Some(p.resolv_conf.as_str()),
                "{}: resolv.conf",
                p.name
            );
        }
        ensure!(
            netns_record(&b, "root", NetnsFile::Links)?.status == SourceStatus::Ok,
            "node links"
        );
        let first = netns_id_by_inode(&index, victim_inodes[0])?;
        notice(&format!(
            "collect_faults_more: 10 of 13 pods deleted mid-capture: {:.2}s; e.g. {}",
            run.wall.as_secs_f64(),
            netns_record(&b, &first, NetnsFile::Links)?
                .error
                .as_deref()
                .unwrap_or("")
        ));
        Ok(())
    })
}

// ---- 2. a pod's only process exits before its resolv.conf is read ---------------

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn collect_pod_process_exits_before_its_resolv_conf_is_read() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = shared();
    // No listeners: each pod's only process is its pause process.
    let b = Lab::builder("cf-resolv")
        .pods(3)
        .services(2)
        .listeners(false);
    with_built_lab(b, |lab| {
        let node = lab.node_netns_name().to_string();
        // Two more pods, each a single process of ours in its own netns with a veth
        // from the node: "pinned" also has its netns bind-mounted in /run/netns (as
        // CNI plugins do), "solo" has not, so its netns lives only as long as it.
        let pinned = SoloPod::start(&node)?;
        let pinned_name = format!("{}pinned", lab.netns_prefix());
        c::sh(&[
            "ip",
            "netns",
            "attach",
            &pinned_name,
            &pinned.pid().to_string(),
        ])?;
        let mut pinned = pinned;
        let mut solo = SoloPod::start(&node)?;

        let dir = TempDir::new("resolv")?;
        let out = dir.path().join("b.tar.zst");
        let args = with_timeout(lab_args(lab, lab.host_root(), &out), TIMEOUT);
        let zombie_pid = lab.pods()[0].pid;
        let (pinned_pid, solo_pid) = (pinned.pid(), solo.pid());
        let (run, before) = run_gated(&args, vec![], |_| {
            // Pod 0: its pause process dies; the lab (its parent) has not reaped it
            // yet, so it is a zombie whose root and namespaces are gone. Its netns
            // stays (bind mount).
            signal(zombie_pid, libc::SIGKILL);
            wait_for(Duration::from_secs(10), "pod 0's process to exit", || {
                (proc_state(zombie_pid) == Some('Z')).then_some(())
            })?;
            // Pinned: killed and reaped; the netns stays.
            pinned.kill();
            // Solo: killed and reaped; its netns (and veth) go with it.
            solo.kill_and_wait_netns_gone(&node)?;
            NodeState::of_lab(lab)
        })?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
        before.ensure_same(&NodeState::of_lab(lab)?)?;
        every_problem_has_a_reason(&b)?;
        let index: NetnsIndex = b.json(layout::NETNS_INDEX)?.context("index")?;

        // Pod 0 and pinned: resolv.conf failed, saying the process exited; the netns
        // itself was captured.
        let id0 = netns_id_by_inode(&index, lab::netns::inode(&lab.pods()[0].netns_path)?)?;
        let idp = netns_id_by_inode(&index, pinned.ino)?;
        for (id, pid) in [(&id0, zombie_pid), (&idp, pinned_pid)] {
            let r = netns_record(&b, id, NetnsFile::ResolvConf)?;
            ensure!(r.status == SourceStatus::Failed, "{id} resolv.conf: {r:?}");
            let e = r.error.as_deref().unwrap_or("");
            ensure!(
                e.contains(&pid.to_string()) && e.contains("exited"),
                "{id} resolv.conf reason: {e}"
            );
            for f in [NetnsFile::Links, NetnsFile::Addrs, NetnsFile::Routes] {
                let r = netns_record(&b, id, f)?;
                ensure!(r.status == SourceStatus::Ok, "{id}: {r:?}");
            }
        }
        // Solo: discovered through its process, gone with it: every record failed
        // with the reason.
        let solo_id = netns_id_by_inode(&index, solo.ino)?;
        let recs = netns_records(&b, &solo_id);
        ensure!(recs.len() == NetnsFile::ALL.len(), "solo: {recs:?}");
        for r in recs {
            ensure!(r.status == SourceStatus::Failed, "solo: {r:?}");
            let e = r.error.as_deref().unwrap_or("");
            ensure!(
                e.contains("No such file") || e.contains("is gone"),
                "solo ({solo_pid}) reason: {e}"
            );
        }
        // The others: their own resolv.conf.
        for p in &lab.pods()[1..] {
            let id = netns_id_by_inode(&index, lab::netns::inode(&p.netns_path)?)?;
            ensure!(
                b.text(&layout::netns_path(&id, NetnsFile::ResolvConf))
                    .as_deref()
                    == Some(p.resolv_conf.as_str()),
                "{}: resolv.conf",
                p.name
            );
        }
        Ok(())
    })
}

/// A pod made of one process of ours (`unshare --net sleep`) in its own netns, with
/// a veth from the node into it. Killed (by pid) and reaped when dropped; the veth
/// goes with its netns.
struct SoloPod {
    child: ChildGuard,
    ino: u64,
    veth: String,
}

impl SoloPod {
    fn start(node: &str) -> Result<SoloPod> {
        let child = ChildGuard(Some(
            Command::new("unshare")
                .args(["--net", "--", "sleep", &unique_marker()])
                .spawn()
                .context("unshare --net sleep")?,
        ));
        let pid = child.pid();
        wait_for(Duration::from_secs(10), "the solo pod process", || {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "sleep").then_some(())
        })?;
        let ino = lab::netns::inode(Path::new(&format!("/proc/{pid}/ns/net")))?;
        let veth = format!("vso{pid}");
        let pid_s = pid.to_string();
        c::sh(&[
            "ip", "-n", node, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
            "netns", &pid_s,
        ])?;
        c::sh(&["ip", "-n", node, "link", "set", &veth, "up"])?;
        Ok(SoloPod { child, ino, veth })
    }

    fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn kill(&mut self) {
        self.child.kill();
    }

    /// Kills and reaps it, then waits for its veth to vanish from the node.
    fn kill_and_wait_netns_gone(&mut self, node: &str) -> Result<()> {
        self.kill();
        let veth = self.veth.clone();
        wait_for(
            Duration::from_secs(10),
            "the solo pod's veth to vanish",
            || {
                let out = Command::new("ip")
                    .args(["-n", node, "link", "show", "dev", &veth])
                    .output()
                    .ok()?;
                (!out.status.success()).then_some(())
            },
        )
    }
}

// ---- 3. tools printing garbage -----------------------------------------------------

struct Garbage {
    name: &'static str,
    iptables: &'static str,
    nft: &'static str,
    ipset: &'static str,
}

const GARBAGE: [Garbage; 3] = [
    Garbage {
        name: "binary",
        iptables: "head -c 262144 /dev/urandom; exit 0",
        nft: "head -c 4096 /dev/urandom; exit 0",
        ipset: "head -c 65536 /dev/urandom; printf 'ipset v7.1: \\033[31mkernel error\\033[0m\\n' >&2; exit 1",
    },
    Garbage {
        name: "invalid",
        iptables: "printf '# Generated by a broken iptables-nft-save\\n*filter\\n:INPUT ACCEPT [0:0]\\n[1:2] -A INPUT -m frobnicate --frob 1 -j ACCEPT\\n\\001\\002 not a rule\\nCOMMIT\\n'; exit 4",
        // One of the node's two nft tables garbled, the other fine: partial.
        nft: r#"case "$*" in
  *"kube-proxy"*) printf '{"nftables": [{"table": {"family": "ip", "name": ' ;;
  *) printf '{"nftables": [{"metainfo": {"version": "1.1.3", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "netsnap-test", "handle": 9}}]}\n' ;;
esac
exit 0"#,
        ipset: "printf 'create KUBE-X hash:ip family inet\\nadd KUBE-X 10.0.0.1\\n\\000\\377garbage\\n'; exit 0",
    },
    Garbage {
        name: "huge",
        // 50 MB lines; nft's in-memory output is capped (64 MiB), so 100 MB of it
        // (nesting far past any parser's limit) must be cut, not held.
        iptables: "head -c 52428800 /dev/zero | tr '\\000' A; exit 0",
        nft: "printf '{\"nftables\":'; head -c 104857600 /dev/zero | tr '\\000' '['; exit 0",
        ipset: "head -c 52428800 /dev/zero | tr '\\000' B; exit 3",
    },
];

/// `netsnap analyze --format json`: must exit 0 or 1 (never crash, never 2 on a
/// valid bundle); returns the findings as (id, subject).
fn analyze(bundle: &Path) -> Result<Vec<(String, String)>> {
    let out = Command::new(c::analyzer_bin()?)
        .args(["analyze", "--format", "json"])
        .arg(bundle)
        .output()
        .context("running netsnap analyze")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        matches!(out.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
        "netsnap analyze failed ({}): {stderr}",
        out.status
    );
    let report: Value = serde_json::from_slice(&out.stdout).context("analyze JSON")?;
    Ok(report["bundles"][0]["findings"]
        .as_array()
        .context("findings")?
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

fn has_finding(findings: &[(String, String)], id: &str, subject: &str) -> bool {
    findings.iter().any(|(i, s)| i == id && s == subject)
}

#[test]
fn collect_tools_printing_garbage_are_recorded_and_analyzable() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = shared();
    with_built_lab(Lab::builder("cf-garbage").pods(2).services(2), |lab| {
        // nft is only asked to dump tables iptables-nft does not manage (the list of
        // tables comes from the kernel), so the node gets two for the fake nft to garble.
        for (family, table) in [("ip", "kube-proxy"), ("inet", "netsnap-test")] {
            let out = lab.node(&["nft", "add", "table", family, table]);
            ensure!(
                out.status.success(),
                "nft add table {family} {table}: {out:?}"
            );
        }
        let before = NodeState::of_lab(lab)?;
        for g in &GARBAGE {
            let dir = TempDir::new("garbage")?;
            let root = host_root_with_tools(
                lab,
                dir.path(),
                &[
                    ("iptables-nft-save", Some(g.iptables)),
                    ("nft", Some(g.nft)),
                    ("ipset", Some(g.ipset)),
                ],
            )?;
            let out = dir.path().join("b.tar.zst");
            let args = with_timeout(lab_args(lab, &root, &out), TIMEOUT);
            let run = c::run(
                &refs(&args),
                RunOpts {
                    own_rss: true,
                    ..Default::default()
                },
            )?;
            let what = g.name;
            ensure!(
                run.status.success(),
                "{what}: collector failed: {}",
                run.stderr
            );
            // Tool text is escaped before it reaches the terminal.
            ensure!(
                !run.stderr.contains('\u{1b}'),
                "{what}: raw escape in the summary"
            );
            let b = c::open_bundle(&out)?;
            assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
            every_problem_has_a_reason(&b)?;
            let rec = |name: &str| {
                c::record(&b, name)
                    .cloned()
                    .with_context(|| format!("{what}: no {name} record"))
            };
            let ipt = rec("iptables-nft-save")?;
            let nft = rec("nft")?;
            let ipset = rec("ipset")?;
            let err = |r: &SourceRecord| r.error.clone().unwrap_or_default();
            for r in [&ipt, &nft, &ipset] {
                let e: String = err(r).chars().take(160).collect();
                notice(&format!(
                    "collect_faults_more: garbage {what}: {} {} {} B: {e}",
                    r.name,
                    r.status.as_str(),
                    r.bytes
                ));
            }
            match what {
                "binary" => {
                    // Exit 0: kept raw, byte for byte (the analyzer judges it).
                    ensure!(
                        ipt.status == SourceStatus::Ok && ipt.bytes == 262_144,
                        "{ipt:?}"
                    );
                    ensure!(nft.status == SourceStatus::Failed, "{nft:?}");
                    ensure!(err(&nft).contains("invalid JSON"), "{nft:?}");
                    ensure!(ipset.status == SourceStatus::Partial, "{ipset:?}");
                    ensure!(
                        err(&ipset).contains("exit status: 1")
                            && err(&ipset).contains("\\x1b[31mkernel error"),
                        "{ipset:?}"
                    );
                }
                "invalid" => {
                    ensure!(ipt.status == SourceStatus::Partial, "{ipt:?}");
                    ensure!(err(&ipt).contains("exit status: 4"), "{ipt:?}");
                    ensure!(nft.status == SourceStatus::Partial, "{nft:?}");
                    ensure!(
                        err(&nft).contains("table ip kube-proxy: invalid JSON"),
                        "{nft:?}"
                    );
                    // What is there is still one valid document (metainfo only).
                    let doc: Value = b.json(layout::NFT_JSON)?.context("nft.json")?;
                    ensure!(doc["nftables"].is_array(), "{doc}");
                    ensure!(ipset.status == SourceStatus::Ok, "{ipset:?}");
                }
                _ => {
                    ensure!(
                        ipt.status == SourceStatus::Ok && ipt.bytes == 52_428_800,
                        "{ipt:?}"
                    );
                    ensure!(nft.status == SourceStatus::Failed, "{nft:?}");
                    ensure!(err(&nft).contains("more than 64 MiB"), "{nft:?}");
                    ensure!(
                        ipset.status == SourceStatus::Partial && ipset.bytes == 52_428_800,
                        "{ipset:?}"
                    );
                    // The 100 MB were never held in memory.
                    ensure!(
                        run.max_rss_kib < 128 * 1024,
                        "peak RSS {} KiB",
                        run.max_rss_kib
                    );
                }
            }
            // The rest of the node was captured as usual.
            for name in ["ip6tables-nft-save", "conntrack/entries", "host/sysctl"] {
                ensure!(rec(name)?.status == SourceStatus::Ok, "{what}: {name}");
            }
            drop(b);
            let findings = analyze(&out)?;
            ensure!(
                has_finding(&findings, "PRS001", "file netfilter/iptables-nft-save.txt"),
                "{what}: no PRS001 for the iptables save: {findings:?}"
            );
            ensure!(
                has_finding(&findings, "BND001", "source nft"),
                "{what}: no BND001 for nft: {findings:?}"
            );
            notice(&format!(
                "collect_faults_more: garbage {what}: capture {:.2}s, peak RSS {} KiB; analyze: {}",
                run.wall.as_secs_f64(),
                run.max_rss_kib,
                findings
                    .iter()
                    .map(|(i, s)| format!("{i} [{s}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        before.ensure_same(&NodeState::of_lab(lab)?)
    })
}

// ---- 4. the disk fills up part-way -------------------------------------------------

/// Bytes the capture keeps in files in the output directory: sources over 1 MiB
/// spill there (the writer's spool), page-rounded.
fn spilled_bytes(b: &Bundle) -> u64 {
    b.manifest
        .sources
        .iter()
        .filter(|r| r.bytes > 1 << 20)
        .map(|r| r.bytes.div_ceil(4096) * 4096)
        .sum()
}

#[test]
fn collect_disk_fills_up_part_way_through_a_large_bundle() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = shared();
    let b = Lab::builder("cf-disk").pods(2).services(2).traffic(false);
    with_built_lab(b, |lab| {
        fill_conntrack(lab, 30_000)?;
        let entries = conntrack_count(lab)?;
        ensure!(entries >= 29_000, "only {entries} conntrack entries");
        let before = NodeState::of_lab(lab)?;
        let extra = ["--timeout", "30"];

        // Sizes, from a run with room.
        let dir = TempDir::new("disk")?;
        let roomy = dir.path().join("b.tar.zst");
        let run = c::run(
            &refs(&with_timeout(
                lab_args(lab, lab.host_root(), &roomy),
                TIMEOUT,
            )),
            RunOpts::default(),
        )?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&roomy)?;
        let ct = c::record(&b, "conntrack/entries").context("record")?;
        ensure!(ct.bytes > 3 << 20, "conntrack text only {} bytes", ct.bytes);
        let spilled = spilled_bytes(&b);
        let size = std::fs::metadata(&roomy)?.len();
        drop(b);

        // (a) Room for the spooled sources but not for the archive as well: the disk
        // fills while the bundle is written → exit 1, clear error, nothing left.
        let tmpfs = (spilled + size / 2).div_ceil(4096) * 4096;
        let t = run_on_tmpfs(lab, &format!("size={tmpfs}"), &extra)?;
        notice(&format!(
            "collect_faults_more: disk full while writing: tmpfs {tmpfs} B (spooled {spilled} B + half of the {size} B bundle): exit {:?}: {}",
            t.run.code(),
            t.run.stderr.trim()
        ));
        ensure!(
            t.run.code() == Some(1),
            "(a) exit {:?}: {}",
            t.run.status,
            t.run.stderr
        );
        ensure!(
            t.run.stderr.contains("writing the bundle to")
                && t.run.stderr.contains("No space left on device"),
            "(a) {}",
            t.run.stderr
        );
        ensure!(t.listing.is_empty(), "(a) left behind: {}", t.listing);
        ensure!(t.bundle.is_none(), "(a) a bundle was written");
        assert_deadline(&t.run, TIMEOUT, None)?;

        // (b) 2 MiB: the conntrack spool itself hits the limit mid-dump. That source
        // is dropped with the reason; the rest of the bundle fits and is written.
        let t = run_on_tmpfs(lab, "size=2m", &extra)?;
        ensure!(
            t.run.status.success(),
            "(b) exit {:?}: {}",
            t.run.status,
            t.run.stderr
        );
        ensure!(t.listing == "b.tar.zst", "(b) on the tmpfs: {}", t.listing);
        let b = c::open_bundle(t.bundle.as_deref().context("(b) no bundle copy")?)?;
        assert_deadline(&t.run, TIMEOUT, Some(&b.manifest))?;
        every_problem_has_a_reason(&b)?;
        let ct = c::record(&b, "conntrack/entries").context("record")?;
        ensure!(ct.status == SourceStatus::Failed, "(b) {ct:?}");
        ensure!(
            ct.error
                .as_deref()
                .is_some_and(|e| e.contains("No space left on device")),
            "(b) {ct:?}"
        );
        ensure!(
            netns_record(&b, "root", NetnsFile::Links)?.status == SourceStatus::Ok,
            "(b) node links"
        );
        notice(&format!(
            "collect_faults_more: disk full while spooling: conntrack/entries: {}",
            ct.error.as_deref().unwrap_or("")
        ));

        before.ensure_same(&NodeState::of_lab(lab)?)?;
        let after = conntrack_count(lab)?;
        ensure!(
            after.abs_diff(entries) <= 16,
            "conntrack count {entries} -> {after}"
        );
        Ok(())
    })
}

// ---- 5. SIGTERM and SIGKILL, mid-capture and mid-write --------------------------------

/// Runs the collector and sends `sig` once `ready()` says so (polled every
/// millisecond for at most 60 s); returns the run and whether the signal was sent.
fn run_and_signal(
    args: &[String],
    sig: i32,
    ready: impl Fn() -> bool + Send + 'static,
) -> Result<(Run, bool)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let run = c::run(
        &refs(args),
        RunOpts {
            on_start: Some(Box::new(move |pid| {
                std::thread::spawn(move || {
                    let end = Instant::now() + Duration::from_secs(60);
                    let mut sent = false;
                    while Instant::now() < end {
                        // Our child, alive (not yet reaped by the runner).
                        if !Path::new(&format!("/proc/{pid}")).exists() {
                            break;
                        }
                        if ready() {
                            signal(pid, sig);
                            sent = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let _ = tx.send(sent);
                });
            })),
            ..Default::default()
        },
    )?;
    let sent = rx.recv_timeout(Duration::from_secs(70)).unwrap_or(false);
    Ok((run, sent))
}

fn partial_size(out: &Path) -> u64 {
    std::fs::metadata(netsnap_schema::writer::partial_path(out))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// What a SIGKILLed run may leave: nothing, or the `.partial` — never the final name.
fn only_partial_left(dir: &Path) -> Result<()> {
    let left = listing(dir)?;
    ensure!(
        left.iter().all(|n| n == "b.tar.zst.partial"),
        "SIGKILL left {left:?}"
    );
    Ok(())
}

#[test]
fn collect_sigterm_and_sigkill_mid_capture_and_mid_write() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = shared();
    with_built_lab(Lab::builder("cf-signals").pods(2).services(2), |lab| {
        let before = NodeState::of_lab(lab)?;
        let dir = TempDir::new("signals")?;
        let marker = unique_marker();
        let _reaper = MarkerReaper(marker.clone());
        std::fs::create_dir_all(dir.path().join("hang"))?;
        let hang = host_root_with(
            lab,
            &dir.path().join("hang"),
            "iptables-nft-save",
            Some(&format!("exec sleep {marker}")),
        )?;
        // 96 MiB that do not compress: writing the archive takes a while.
        std::fs::create_dir_all(dir.path().join("big"))?;
        let big = host_root_with(
            lab,
            &dir.path().join("big"),
            "iptables-nft-save",
            Some("head -c 100663296 /dev/urandom"),
        )?;
        let outdir = dir.path().join("out");
        std::fs::create_dir(&outdir)?;
        let out = outdir.join("b.tar.zst");

        // (a) SIGTERM mid-capture, a tool hanging: exit 143, nothing left, tool gone.
        let args = with_timeout(lab_args(lab, &hang, &out), TIMEOUT);
        let m = marker.clone();
        let (run, sent) =
            run_and_signal(&args, libc::SIGTERM, move || !processes_with(&m).is_empty())?;
        ensure!(sent, "(a) the hanging tool never ran");
        ensure!(
            run.code() == Some(143),
            "(a) exit {:?}: {}",
            run.status,
            run.stderr
        );
        ensure!(
            run.stderr.contains("interrupted by SIGTERM"),
            "(a) {}",
            run.stderr
        );
        ensure!(
            listing(&outdir)?.is_empty(),
            "(a) left {:?}",
            listing(&outdir)?
        );
        assert_deadline(&run, TIMEOUT, None)?;
        wait_for(Duration::from_secs(5), "(a) the tool to be killed", || {
            processes_with(&marker).is_empty().then_some(())
        })?;

        // (b) SIGTERM mid-write: once the archive has started to land in `.partial`.
        let args = with_timeout(lab_args(lab, &big, &out), TIMEOUT);
        let mut hit = false;
        for attempt in 0..3 {
            let o = out.clone();
            let (run, sent) = run_and_signal(&args, libc::SIGTERM, move || partial_size(&o) > 0)?;
            ensure!(
                !netsnap_schema::writer::partial_path(&out).exists(),
                "(b) .partial left behind"
            );
            assert_deadline(&run, TIMEOUT, None)?;
            if run.code() == Some(143) && sent {
                ensure!(
                    run.stderr.contains("interrupted by SIGTERM"),
                    "(b) {}",
                    run.stderr
                );
                // The signal may land after the rename: then the bundle is complete.
                if out.exists() {
                    c::open_bundle(&out)?;
                    std::fs::remove_file(&out)?;
                    continue;
                }
                hit = true;
                break;
            }
            // Finished before the signal: valid, and try again.
            ensure!(
                run.status.success(),
                "(b) exit {:?}: {}",
                run.status,
                run.stderr
            );
            c::open_bundle(&out)?;
            std::fs::remove_file(&out)?;
            notice(&format!(
                "(b) attempt {attempt}: the write finished before SIGTERM"
            ));
        }
        ensure!(hit, "(b) never caught the collector mid-write");
        ensure!(
            listing(&outdir)?.is_empty(),
            "(b) left {:?}",
            listing(&outdir)?
        );

        // (c) SIGKILL mid-capture: no cleanup is possible; only the (empty) `.partial`
        // may remain, and the tool must still die (it goes with its parent thread).
        let args = with_timeout(lab_args(lab, &hang, &out), TIMEOUT);
        let m = marker.clone();
        let (run, sent) =
            run_and_signal(&args, libc::SIGKILL, move || !processes_with(&m).is_empty())?;
        use std::os::unix::process::ExitStatusExt;
        ensure!(
            sent && run.status.signal() == Some(libc::SIGKILL),
            "(c) {:?}",
            run.status
        );
        only_partial_left(&outdir)?;
        wait_for(
            Duration::from_secs(5),
            "(c) the orphaned tool to die",
            || processes_with(&marker).is_empty().then_some(()),
        )?;

        // (d) SIGKILL mid-write: the `.partial` stays, the final name never appears.
        let args = with_timeout(lab_args(lab, &big, &out), TIMEOUT);
        let o = out.clone();
        let (run, sent) = run_and_signal(&args, libc::SIGKILL, move || partial_size(&o) > 0)?;
        ensure!(sent, "(d) never saw the write start: {:?}", run.status);
        ensure!(
            run.status.signal() == Some(libc::SIGKILL),
            "(d) {:?}",
            run.status
        );
        only_partial_left(&outdir)?;

        // The next run to the same path reuses the stale `.partial` and finishes.
        let args = with_timeout(lab_args(lab, lab.host_root(), &out), TIMEOUT);
        let run = c::run(&refs(&args), RunOpts::default())?;
        ensure!(run.status.success(), "rerun: {}", run.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
        ensure!(
            listing(&outdir)? == ["b.tar.zst"],
            "{:?}",
            listing(&outdir)?
        );

        before.ensure_same(&NodeState::of_lab(lab)?)
    })
}

// ---- 6. two collectors at once -----------------------------------------------------

fn busy(run: &Run) -> bool {
    run.code() == Some(1) && run.stderr.contains("another netsnap-collect is writing")
}

#[test]
fn collect_two_collectors_at_once() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = shared();
    with_built_lab(Lab::builder("cf-twice").pods(3).services(2), |lab| {
        let before = NodeState::of_lab(lab)?;
        let dir = TempDir::new("twice")?;
        let out = dir.path().join("b.tar.zst");
        let args = with_timeout(lab_args(lab, lab.host_root(), &out), TIMEOUT);

        // (a) Same output, deterministic: the second starts while the first holds
        // its `.partial` (stopped at the gate) → it fails cleanly and touches nothing.
        let (first, second) = run_gated(&args, vec![], |_| {
            let partial = netsnap_schema::writer::partial_path(&out);
            ensure!(partial.exists(), "no .partial while capturing");
            let second = c::run(&refs(&args), RunOpts::default())?;
            ensure!(
                partial.exists(),
                "the second collector removed the first's .partial"
            );
            Ok(second)
        })?;
        ensure!(
            busy(&second),
            "(a) second: exit {:?}: {}",
            second.status,
            second.stderr
        );
        assert_deadline(&second, TIMEOUT, None)?;
        ensure!(first.status.success(), "(a) first: {}", first.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&first, TIMEOUT, Some(&b.manifest))?;
        ensure!(
            listing(dir.path())? == ["b.tar.zst"],
            "(a) {:?}",
            listing(dir.path())?
        );

        // (b) Same output, started together, a few rounds: each one succeeds or fails
        // cleanly as busy; at least one succeeds; the final file is always complete.
        for round in 0..3 {
            let runs = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..2)
                    .map(|_| sc.spawn(|| c::run(&refs(&args), RunOpts::default())))
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().map_err(|_| anyhow!("runner panicked"))?)
                    .collect::<Result<Vec<Run>>>()
            })?;
            for r in &runs {
                ensure!(
                    r.status.success() || busy(r),
                    "(b) round {round}: exit {:?}: {}",
                    r.status,
                    r.stderr
                );
                assert_deadline(r, TIMEOUT, None)?;
            }
            ensure!(
                runs.iter().any(|r| r.status.success()),
                "(b) round {round}: none succeeded"
            );
            let b = c::open_bundle(&out)?;
            ensure!(b.file(layout::NETNS_INDEX).is_some(), "(b) round {round}");
            ensure!(
                listing(dir.path())? == ["b.tar.zst"],
                "(b) {:?}",
                listing(dir.path())?
            );
            notice(&format!(
                "collect_faults_more: two collectors, same -o, round {round}: exits {:?}",
                runs.iter().map(|r| r.code()).collect::<Vec<_>>()
            ));
        }

        // (c) Different outputs in one directory, together: both succeed.
        let other = dir.path().join("c.tar.zst");
        let args2 = with_timeout(lab_args(lab, lab.host_root(), &other), TIMEOUT);
        let (r1, r2) = std::thread::scope(|sc| {
            let h1 = sc.spawn(|| c::run(&refs(&args), RunOpts::default()));
            let h2 = sc.spawn(|| c::run(&refs(&args2), RunOpts::default()));
            (h1.join(), h2.join())
        });
        let r1 = r1.map_err(|_| anyhow!("runner panicked"))??;
        let r2 = r2.map_err(|_| anyhow!("runner panicked"))??;
        for (r, p) in [(&r1, &out), (&r2, &other)] {
            ensure!(r.status.success(), "(c) {}: {}", p.display(), r.stderr);
            let b = c::open_bundle(p)?;
            assert_deadline(r, TIMEOUT, Some(&b.manifest))?;
        }
        ensure!(
            listing(dir.path())? == ["b.tar.zst", "c.tar.zst"],
            "(c) {:?}",
            listing(dir.path())?
        );
        before.ensure_same(&NodeState::of_lab(lab)?)
    })
}

// ---- 7. 1,000 netns on one node ----------------------------------------------------

#[test]
fn collect_thousand_pod_netns_within_the_deadline() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let _g = exclusive();
    const PODS: usize = 1000;
    let t0 = Instant::now();
    let node = BareNode::build("cf-1000", PODS)?;
    let fp = node.footprint();
    let built = t0.elapsed();
    let r = (|| -> Result<()> {
        // Before/after: the node (1,000 bridge ports) and every 100th pod.
        let sample: Vec<String> = node
            .pods()
            .iter()
            .step_by(100)
            .map(|p| p.netns_name.clone())
            .collect();
        let before = NodeState::capture(node.node_netns_name(), &sample)?;
        let dir = TempDir::new("thousand")?;
        let out = dir.path().join("b.tar.zst");
        let timeout = Duration::from_secs(60);
        let args = with_timeout(
            node_args(&node.node_netns_path(), Path::new("/"), &out),
            timeout,
        );
        let run = c::run(
            &refs(&args),
            RunOpts {
                own_rss: true,
                ..Default::default()
            },
        )?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, timeout, Some(&b.manifest))?;
        every_problem_has_a_reason(&b)?;
        let index: NetnsIndex = b.json(layout::NETNS_INDEX)?.context("index")?;
        let root = index.netns.iter().find(|n| n.is_root).context("no root")?;
        ensure!(root.inode == lab::netns::inode(&node.node_netns_path())?);
        ensure!(
            index.netns.len() == PODS + 1,
            "{} netns in the index, expected {}",
            index.netns.len(),
            PODS + 1
        );
        for p in node.pods() {
            let id = netns_id_by_inode(&index, lab::netns::inode(&p.netns_path)?)?;
            for f in [
                NetnsFile::Links,
                NetnsFile::Addrs,
                NetnsFile::Routes,
                NetnsFile::Sysctl,
            ] {
                let r = netns_record(&b, &id, f)?;
                ensure!(r.status == SourceStatus::Ok, "{}: {r:?}", p.netns_name);
            }
        }
        let size = std::fs::metadata(&out)?.len();
        // Where the time went: per-netns source kinds (sum and max), and when the
        // last netns record started.
        let mut kinds = Vec::new();
        for f in NetnsFile::ALL {
            let recs: Vec<&SourceRecord> = b
                .manifest
                .sources
                .iter()
                .filter(|r| r.netns.is_some() && r.name == f.source_name())
                .collect();
            let sum: u64 = recs.iter().map(|r| r.duration_ms).sum();
            let max = recs.iter().map(|r| r.duration_ms).max().unwrap_or(0);
            kinds.push(format!("{} Σ{sum}/max {max} ms", f.source_name()));
        }
        let last = b
            .manifest
            .sources
            .iter()
            .filter(|r| r.netns.is_some())
            .map(|r| r.started_ms)
            .max()
            .unwrap_or(0);
        let raw: u64 = b.manifest.sources.iter().map(|r| r.bytes).sum();
        notice(&format!(
            "collect_faults_more: {PODS} pod netns: {} records, {raw} bytes uncompressed; last netns source started at {last} ms; {}",
            b.manifest.sources.len(),
            kinds.join(", ")
        ));
        notice(&format!(
            "collect_faults_more: {PODS} pod netns (built in {:.1}s): capture {:.2}s wall (manifest {} ms), peak RSS {} KiB, bundle {} bytes",
            built.as_secs_f64(),
            run.wall.as_secs_f64(),
            b.manifest.duration_ms,
            run.max_rss_kib,
            size
        ));
        before.ensure_same(&NodeState::capture(node.node_netns_name(), &sample)?)?;
        Ok(())
    })();
    let t1 = Instant::now();
    let torn = node.teardown();
    notice(&format!(
        "collect_faults_more: {PODS} pod netns torn down in {:.1}s",
        t1.elapsed().as_secs_f64()
    ));
    torn?;
    assert_no_leaks(&fp);
    r
}
