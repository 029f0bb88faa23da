//! `netsnap-collect` under faults: a pod netns deleted mid-capture, a missing tool,
//! a hanging tool, Ctrl-C, a non-root run, and an output directory that is not
//! writable or is full. Every fault must be recorded (or reported clearly) and never
//! leave a `.partial` file or a child process behind; every run holds its deadline
//! and leaves the lab node as it found it. More faults: `collect_faults_more.rs`.

use anyhow::{ensure, Context, Result};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::{HostFacts, NetnsIndex};
use netsnap_schema::SourceStatus;
use netsnap_tests::collect_support::{
    assert_deadline, host_root_with, lab_args, processes_with, refs, run_gated, run_on_tmpfs,
    unique_marker, wait_for, with_lab, NodeState,
};
use netsnap_tests::collector::{self as c, RunOpts, TempDir};
use netsnap_tests::lab::{self, require_lab};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// `--timeout` of the runs that do not test the deadline itself.
const TIMEOUT: Duration = Duration::from_secs(30);

fn with_timeout(mut args: Vec<String>) -> Vec<String> {
    args.extend(["--timeout".into(), TIMEOUT.as_secs().to_string()]);
    args
}

#[test]
fn collect_pod_netns_deleted_while_collecting() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-del", 4, |lab| {
        let dir = TempDir::new("del")?;
        let out = dir.path().join("b.tar.zst");
        let args = with_timeout(lab_args(lab, lab.host_root(), &out));
        let victim = 0;
        let victim_ino = lab::netns::inode(&lab.pods()[victim].netns_path)?;
        // The collector stops at its test gate between discovery and the netns
        // captures; the pod is deleted there. The node state to compare with is the
        // one after the deletion.
        let (run, before) = run_gated(&args, vec![], |_| {
            lab.fault_endpoint_pod_deleted(victim)?;
            NodeState::of_lab(lab)
        })?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
        before.ensure_same(&NodeState::of_lab(lab)?)?;
        let index: NetnsIndex = b.json(layout::NETNS_INDEX)?.context("index")?;
        let gone = index
            .netns
            .iter()
            .find(|n| n.inode == victim_ino)
            .context("the deleted pod's netns was discovered before deletion")?;
        let recs: Vec<_> = b
            .manifest
            .sources
            .iter()
            .filter(|r| r.netns.as_deref() == Some(gone.id.as_str()))
            .collect();
        ensure!(
            recs.len() == NetnsFile::ALL.len(),
            "records of the deleted netns: {recs:?}"
        );
        for r in &recs {
            ensure!(r.status == SourceStatus::Failed, "{r:?}");
            let e = r.error.as_deref().unwrap_or("");
            ensure!(
                e.contains("No such file") || e.contains("is gone"),
                "reason: {e}"
            );
        }
        // The other pods were captured.
        for (i, p) in lab.pods().iter().enumerate().filter(|(i, _)| *i != victim) {
            let ino = lab::netns::inode(&p.netns_path)?;
            let id = &index
                .netns
                .iter()
                .find(|n| n.inode == ino)
                .context("pod")?
                .id;
            ensure!(
                b.file(&layout::netns_path(id, NetnsFile::Links)).is_some(),
                "pod {i} not captured"
            );
        }
        Ok(())
    })
}

#[test]
fn collect_missing_iptables_save_is_recorded() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-miss", 2, |lab| {
        let dir = TempDir::new("miss")?;
        let root = host_root_with(lab, dir.path(), "iptables-nft-save", None)?;
        let out = dir.path().join("b.tar.zst");
        let before = NodeState::of_lab(lab)?;
        let run = c::run(
            &refs(&with_timeout(lab_args(lab, &root, &out))),
            RunOpts::default(),
        )?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
        before.ensure_same(&NodeState::of_lab(lab)?)?;
        let r = c::record(&b, "iptables-nft-save").context("record")?;
        ensure!(r.status == SourceStatus::Unavailable, "{r:?}");
        ensure!(
            r.error.as_deref().is_some_and(|e| e.contains("not found")),
            "{r:?}"
        );
        let r6 = c::record(&b, "ip6tables-nft-save").context("record")?;
        ensure!(r6.status == SourceStatus::Ok, "{r6:?}");
        ensure!(b
            .file(&layout::netns_path("root", NetnsFile::Links))
            .is_some());
        Ok(())
    })
}

#[test]
fn collect_hanging_tool_is_killed_within_the_deadline() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-hang", 2, |lab| {
        let dir = TempDir::new("hang")?;
        let marker = unique_marker();
        let root = host_root_with(
            lab,
            dir.path(),
            "iptables-nft-save",
            Some(&format!("exec sleep {marker}")),
        )?;
        let out = dir.path().join("b.tar.zst");
        let mut args = lab_args(lab, &root, &out);
        args.extend(["--timeout".into(), "6".into()]);
        let before = NodeState::of_lab(lab)?;
        let run = c::run(&refs(&args), RunOpts::default())?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        ensure!(
            processes_with(&marker).is_empty(),
            "the hanging tool survived"
        );
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, Duration::from_secs(6), Some(&b.manifest))?;
        before.ensure_same(&NodeState::of_lab(lab)?)?;
        let r = c::record(&b, "iptables-nft-save").context("record")?;
        ensure!(r.status == SourceStatus::Failed, "{r:?}");
        ensure!(
            r.error.as_deref().is_some_and(|e| e.contains("timed out")),
            "{r:?}"
        );
        // Everything else was captured.
        for name in [
            "ip6tables-nft-save",
            "nft",
            "conntrack/entries",
            "host/sysctl",
        ] {
            let r = c::record(&b, name).with_context(|| name.to_string())?;
            ensure!(r.status == SourceStatus::Ok, "{r:?}");
        }
        ensure!(b
            .file(&layout::netns_path("root", NetnsFile::Links))
            .is_some());
        Ok(())
    })
}

#[test]
fn collect_sigint_leaves_no_partial_and_no_child() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-int", 2, |lab| {
        let dir = TempDir::new("int")?;
        let marker = unique_marker();
        let root = host_root_with(
            lab,
            dir.path(),
            "iptables-nft-save",
            Some(&format!("exec sleep {marker}")),
        )?;
        let outdir = dir.path().join("out");
        std::fs::create_dir(&outdir)?;
        let out = outdir.join("b.tar.zst");
        let m2 = marker.clone();
        let before = NodeState::of_lab(lab)?;
        let run = c::run(
            &refs(&with_timeout(lab_args(lab, &root, &out))),
            RunOpts {
                on_start: Some(Box::new(move |pid| {
                    std::thread::spawn(move || {
                        // Once the hanging tool runs, interrupt.
                        for _ in 0..100 {
                            if !processes_with(&m2).is_empty() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        // SAFETY: signalling our own child.
                        unsafe { libc::kill(pid as i32, libc::SIGINT) };
                    });
                })),
                ..Default::default()
            },
        )?;
        ensure!(
            run.code() == Some(130),
            "exit {:?}: {}",
            run.status,
            run.stderr
        );
        ensure!(run.stderr.contains("interrupted"), "{}", run.stderr);
        let left: Vec<_> = std::fs::read_dir(&outdir)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        ensure!(left.is_empty(), "left behind: {left:?}");
        assert_deadline(&run, TIMEOUT, None)?;
        wait_for(Duration::from_secs(5), "the tool to be killed", || {
            processes_with(&marker).is_empty().then_some(())
        })
        .context("the tool survived the interrupt")?;
        before.ensure_same(&NodeState::of_lab(lab)?)
    })
}

#[test]
fn collect_non_root_gives_a_partial_bundle_with_reasons() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-user", 2, |lab| {
        let dir = TempDir::new("user")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        let out = dir.path().join("b.tar.zst");
        let nobody = vec![
            "setpriv".to_string(),
            "--reuid=65534".into(),
            "--regid=65534".into(),
            "--clear-groups".into(),
        ];
        let before = NodeState::of_lab(lab)?;
        let run = c::run(
            &refs(&with_timeout(lab_args(lab, lab.host_root(), &out))),
            RunOpts {
                wrapper: nobody.clone(),
                ..Default::default()
            },
        )?;
        ensure!(
            run.status.success(),
            "non-root collector failed: {}",
            run.stderr
        );
        let b = c::open_bundle(&out)?;
        assert_deadline(&run, TIMEOUT, Some(&b.manifest))?;
        let facts: HostFacts = b.json(layout::HOST_FACTS)?.context("facts")?;
        ensure!(!facts.collected_as_root);
        let denied = b
            .manifest
            .sources
            .iter()
            .filter(|r| {
                r.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("permission denied"))
            })
            .count();
        ensure!(denied >= 5, "only {denied} records say permission denied");
        // Root's processes are closed to nobody: the index lists them with their
        // cgroup (readable when the netns link is not), so the analyzer can tell pods.
        let index: NetnsIndex = b.json(layout::NETNS_INDEX)?.context("index")?;
        ensure!(
            !index.inaccessible.is_empty() && index.inaccessible.len() <= 64,
            "inaccessible processes: {:?}",
            index.inaccessible
        );
        ensure!(
            index.inaccessible.iter().any(|p| p.cgroup.is_some()),
            "no cgroup read: {:?}",
            index.inaccessible
        );
        for r in &b.manifest.sources {
            if matches!(r.status, SourceStatus::Failed | SourceStatus::Partial) {
                ensure!(r.error.is_some(), "no reason: {r:?}");
            }
        }

        // Not writable (as non-root): a clear error, nothing left.
        let ro = TempDir::new("ro")?;
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o755))?;
        let out = ro.path().join("b.tar.zst");
        let run = c::run(
            &refs(&lab_args(lab, lab.host_root(), &out)),
            RunOpts {
                wrapper: nobody,
                ..Default::default()
            },
        )?;
        ensure!(run.code() == Some(1), "exit {:?}", run.status);
        ensure!(
            run.stderr.contains("cannot create") && run.stderr.contains("permission denied"),
            "{}",
            run.stderr
        );
        ensure!(
            std::fs::read_dir(ro.path())?.next().is_none(),
            "files left in the output dir"
        );
        before.ensure_same(&NodeState::of_lab(lab)?)
    })
}

#[test]
fn collect_full_or_read_only_output_dir_fails_cleanly() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-full", 2, |lab| {
        let before = NodeState::of_lab(lab)?;
        let t = run_on_tmpfs(lab, "size=16k", &["--timeout", "30"])?;
        assert_deadline(&t.run, TIMEOUT, None)?;
        let (run, left) = (t.run, t.listing);
        ensure!(
            run.code() == Some(1),
            "full: exit {:?}: {}",
            run.status,
            run.stderr
        );
        ensure!(
            run.stderr.contains("No space left on device"),
            "full: {}",
            run.stderr
        );
        ensure!(left.is_empty(), "full: left behind: {left}");

        let t = run_on_tmpfs(lab, "ro,size=1m", &["--timeout", "30"])?;
        assert_deadline(&t.run, TIMEOUT, None)?;
        let (run, left) = (t.run, t.listing);
        ensure!(
            run.code() == Some(1),
            "ro: exit {:?}: {}",
            run.status,
            run.stderr
        );
        ensure!(run.stderr.contains("cannot create"), "ro: {}", run.stderr);
        ensure!(
            run.stderr.contains("Read-only file system"),
            "ro: {}",
            run.stderr
        );
        ensure!(left.is_empty(), "ro: left behind: {left}");
        before.ensure_same(&NodeState::of_lab(lab)?)
    })
}
