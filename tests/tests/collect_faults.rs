//! `netsnap-collect` under faults: a pod netns deleted mid-capture, a missing tool,
//! a hanging tool, Ctrl-C, a non-root run, and an output directory that is not
//! writable or is full. Every fault must be recorded (or reported clearly) and never
//! leave a `.partial` file or a child process behind.

use anyhow::{ensure, Context, Result};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::{HostFacts, NetnsIndex};
use netsnap_schema::SourceStatus;
use netsnap_tests::collector::{self as c, RunOpts, TempDir};
use netsnap_tests::lab::{self, assert_no_leaks, require_lab, Lab};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Lab node args for the collector.
fn lab_args(lab: &Lab, host_root: &Path, out: &Path) -> Vec<String> {
    vec![
        "--node-netns".into(),
        s(&lab.node_netns_path()),
        "--host-root".into(),
        s(host_root),
        "-o".into(),
        s(out),
    ]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A copy of the lab's host root with `tool` replaced by a script (or removed).
fn host_root_with(
    lab: &Lab,
    dir: &Path,
    tool: &str,
    script: Option<&str>,
) -> Result<std::path::PathBuf> {
    let root = dir.join("host");
    std::fs::create_dir(&root)?;
    c::copy_host_root(lab.host_root(), &root)?;
    for d in ["usr/sbin", "sbin", "usr/bin", "bin"] {
        let _ = std::fs::remove_file(root.join(d).join(tool));
    }
    // A plain `iptables-save` would be picked up as a fallback for the nft saver.
    if tool == "iptables-nft-save" {
        for d in ["usr/sbin", "sbin", "usr/bin", "bin"] {
            let _ = std::fs::remove_file(root.join(d).join("iptables-save"));
        }
    }
    if let Some(body) = script {
        let p = root.join("usr/sbin").join(tool);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(root)
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .contains(needle)
        {
            v.push(pid);
        }
    }
    v
}

fn unique_marker() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("3133{}.{n}", std::process::id() % 10)
}

fn with_lab(prefix: &str, pods: usize, f: impl FnOnce(&mut Lab) -> Result<()>) -> Result<()> {
    let mut lab = Lab::builder(prefix).pods(pods).services(4).build()?;
    let fp = lab.footprint();
    let r = f(&mut lab);
    lab.teardown()?;
    assert_no_leaks(&fp);
    r
}

#[test]
fn collect_pod_netns_deleted_while_collecting() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-del", 4, |lab| {
        let dir = TempDir::new("del")?;
        let out = dir.path().join("b.tar.zst");
        let args = lab_args(lab, lab.host_root(), &out);
        let victim = 0;
        let victim_ino = lab::netns::inode(&lab.pods()[victim].netns_path)?;
        // The collector pauses between discovery and the netns captures (test hook);
        // the pod is deleted in that window.
        let (run, deleted) = std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                c::run(
                    &refs(&args),
                    RunOpts {
                        env: vec![("NETSNAP_COLLECT_TEST_PAUSE_MS", "4000".into())],
                        ..Default::default()
                    },
                )
            });
            std::thread::sleep(Duration::from_millis(800));
            let d = lab.fault_endpoint_pod_deleted(victim);
            (h.join(), d)
        });
        deleted?;
        let run = run.map_err(|_| anyhow::anyhow!("runner panicked"))??;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
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
        let run = c::run(&refs(&lab_args(lab, &root, &out)), RunOpts::default())?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&out)?;
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
        let run = c::run(&refs(&args), RunOpts::default())?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        ensure!(
            run.wall < Duration::from_millis(7000),
            "deadline not held: {:?}",
            run.wall
        );
        ensure!(
            processes_with(&marker).is_empty(),
            "the hanging tool survived"
        );
        let b = c::open_bundle(&out)?;
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
        let run = c::run(
            &refs(&lab_args(lab, &root, &out)),
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
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            processes_with(&marker).is_empty(),
            "the tool survived the interrupt"
        );
        Ok(())
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
        let run = c::run(
            &refs(&lab_args(lab, lab.host_root(), &out)),
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
        Ok(())
    })
}

/// Runs the collector in a private mount namespace with a tmpfs mounted (with
/// `mount_opts`) on an empty directory; returns the run and what the tmpfs held
/// afterwards. The host's mount table is never touched.
fn run_on_tmpfs(lab: &Lab, mount_opts: &str) -> Result<(c::Run, String)> {
    let dir = TempDir::new("tmpfs")?;
    let out = dir.path().join("b.tar.zst");
    let script = format!(
        "mount -t tmpfs -o {mount_opts} netsnap-test \"$0\" || exit 99; \"$@\"; rc=$?; ls -A \"$0\"; exit $rc"
    );
    let run = c::run(
        &refs(&lab_args(lab, lab.host_root(), &out)),
        RunOpts {
            wrapper: vec![
                "unshare".into(),
                "-m".into(),
                "--propagation".into(),
                "private".into(),
                "sh".into(),
                "-c".into(),
                script,
                s(dir.path()),
            ],
            ..Default::default()
        },
    )?;
    let listing = String::from_utf8_lossy(&run.stdout).trim().to_string();
    Ok((run, listing))
}

#[test]
fn collect_full_or_read_only_output_dir_fails_cleanly() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    with_lab("collect-full", 2, |lab| {
        let (run, left) = run_on_tmpfs(lab, "size=16k")?;
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

        let (run, left) = run_on_tmpfs(lab, "ro,size=1m")?;
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
        Ok(())
    })
}
