//! Shared helpers of the collector fault tests (`tests/collect_faults*.rs`): lab
//! arguments, fake tools on a copy of the lab's host root, the collector's pause
//! gate, node state before/after, the deadline check, runs on a tmpfs in a private
//! mount namespace, signals.

use crate::collector::{self as c, Run, RunOpts, TempDir};
use crate::lab::{assert_no_leaks, Lab, LabBuilder};
use anyhow::{anyhow, bail, ensure, Context, Result};
use netsnap_schema::Manifest;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long past `--timeout` a run may take to exit: process start, exit and the
/// runner's 10 ms wait granularity on a loaded 2-CPU machine.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Collects the lab node (quietly, plus `extra` arguments) into
/// `<lab dir>/<label>.netsnap.tar.zst`, replacing an earlier capture of that label;
/// panics with the collector's stderr when it writes no bundle.
pub fn collect_lab(lab: &Lab, label: &str, extra: &[&str]) -> PathBuf {
    let bundle = lab.dir().join(format!("{label}.netsnap.tar.zst"));
    let _ = std::fs::remove_file(&bundle);
    let out = Command::new(c::collector_bin().expect("netsnap-collect"))
        .args(lab_args(lab, lab.host_root(), &bundle))
        .arg("-q")
        .args(extra)
        .output()
        .expect("run netsnap-collect");
    assert!(
        bundle.is_file(),
        "{label}: netsnap-collect wrote no bundle ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    bundle
}

/// Collector args for a lab node: `--node-netns`, `--host-root`, `-o`.
pub fn lab_args(lab: &Lab, host_root: &Path, out: &Path) -> Vec<String> {
    node_args(&lab.node_netns_path(), host_root, out)
}

pub fn node_args(node_netns: &Path, host_root: &Path, out: &Path) -> Vec<String> {
    vec![
        "--node-netns".into(),
        s(node_netns),
        "--host-root".into(),
        s(host_root),
        "-o".into(),
        s(out),
    ]
}

/// A copy of the lab's host root (in `dir/host`) with `tool` replaced by a script
/// (or removed).
pub fn host_root_with(lab: &Lab, dir: &Path, tool: &str, script: Option<&str>) -> Result<PathBuf> {
    host_root_with_tools(lab, dir, &[(tool, script)])
}

/// A copy of the lab's host root (in `dir/host`) with each tool replaced by a
/// `/bin/sh` script body (or removed when `None`). The copy has no `/bin/sh`, so the
/// collector runs the scripts unchrooted.
pub fn host_root_with_tools(
    lab: &Lab,
    dir: &Path,
    tools: &[(&str, Option<&str>)],
) -> Result<PathBuf> {
    let root = dir.join("host");
    std::fs::create_dir(&root)?;
    c::copy_host_root(lab.host_root(), &root)?;
    for (tool, script) in tools {
        let mut names = vec![*tool];
        // A plain `iptables-save` would be picked up as a fallback for the nft saver.
        if *tool == "iptables-nft-save" {
            names.push("iptables-save");
        }
        for name in names {
            for d in ["usr/sbin", "sbin", "usr/bin", "bin"] {
                let _ = std::fs::remove_file(root.join(d).join(name));
            }
        }
        if let Some(body) = script {
            let p = root.join("usr/sbin").join(tool);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(root)
}

/// Processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
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

/// Kills (by pid) whatever still runs with `marker` on its command line when
/// dropped: fake tools the collector started for a test that failed half-way.
pub struct MarkerReaper(pub String);

impl Drop for MarkerReaper {
    fn drop(&mut self) {
        for pid in processes_with(&self.0) {
            if pid != std::process::id() {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// A number `sleep` accepts (≈ 8.7 h) that no other process has on its command line.
pub fn unique_marker() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "3133{}.{n}{}",
        std::process::id() % 10,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Builds a lab of `pods` pods and 4 services, runs `f`, tears down, checks leaks.
pub fn with_lab(prefix: &str, pods: usize, f: impl FnOnce(&mut Lab) -> Result<()>) -> Result<()> {
    with_built_lab(Lab::builder(prefix).pods(pods).services(4), f)
}

/// Builds the lab, runs `f`, tears down (also when `f` fails), checks leaks.
pub fn with_built_lab(b: LabBuilder, f: impl FnOnce(&mut Lab) -> Result<()>) -> Result<()> {
    let mut lab = b.build()?;
    let fp = lab.footprint();
    let r = f(&mut lab);
    lab.teardown()?;
    assert_no_leaks(&fp);
    r
}

/// Polls `f` every 5 ms until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= end {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A run on a tmpfs ([`run_on_tmpfs`]).
pub struct TmpfsRun {
    pub run: Run,
    /// What the tmpfs held after the run (`ls -A`).
    pub listing: String,
    /// A copy of the bundle, if one was written (the tmpfs is gone with its mount
    /// namespace).
    pub bundle: Option<PathBuf>,
    _keep: TempDir,
}

/// Runs the collector in a private mount namespace with a tmpfs mounted (with
/// `mount_opts`) on an empty directory, output `b.tar.zst` on it. The host's mount
/// table is never touched.
pub fn run_on_tmpfs(lab: &Lab, mount_opts: &str, extra: &[&str]) -> Result<TmpfsRun> {
    let dir = TempDir::new("tmpfs")?;
    let keep = TempDir::new("tmpfs-keep")?;
    let out = dir.path().join("b.tar.zst");
    let copy = keep.path().join("b.tar.zst");
    let script = format!(
        "mount -t tmpfs -o {mount_opts} netsnap-test \"$0\" || exit 99; \"$@\"; rc=$?; \
         ls -A \"$0\"; if [ -f \"$0/b.tar.zst\" ]; then cat \"$0/b.tar.zst\" > '{}'; fi; exit $rc",
        s(&copy)
    );
    let mut args = lab_args(lab, lab.host_root(), &out);
    args.extend(extra.iter().map(|a| a.to_string()));
    let run = c::run(
        &refs(&args),
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
    Ok(TmpfsRun {
        run,
        listing,
        bundle: copy.exists().then_some(copy),
        _keep: keep,
    })
}

/// The collector's test gate (`NETSNAP_COLLECT_TEST_GATE`): it stops between
/// discovery and the netns captures until [`Gate::open`].
pub struct Gate {
    dir: TempDir,
}

impl Gate {
    pub fn new() -> Result<Gate> {
        Ok(Gate {
            dir: TempDir::new("gate")?,
        })
    }

    pub fn env(&self) -> (&'static str, String) {
        ("NETSNAP_COLLECT_TEST_GATE", s(self.dir.path()))
    }

    /// Waits until the collector stopped at the gate; returns its pid.
    pub fn wait_paused(&self, timeout: Duration) -> Result<u32> {
        let p = self.dir.path().join("paused");
        wait_for(timeout, "the collector to reach its test gate", || {
            std::fs::read_to_string(&p)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
    }

    pub fn open(&self) -> Result<()> {
        std::fs::write(self.dir.path().join("go"), "")?;
        Ok(())
    }
}

/// Runs the collector (`args`, extra `opts_env`) with the test gate; `during` runs
/// (with the collector's pid) while it waits there, then the gate opens (also when
/// `during` failed, so the collector never sits at the gate until its deadline).
pub fn run_gated<T>(
    args: &[String],
    opts_env: Vec<(&'static str, String)>,
    during: impl FnOnce(u32) -> Result<T>,
) -> Result<(Run, T)> {
    let gate = Gate::new()?;
    let mut env = opts_env;
    env.push(gate.env());
    std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            c::run(
                &refs(args),
                RunOpts {
                    env,
                    ..Default::default()
                },
            )
        });
        let r = gate.wait_paused(Duration::from_secs(20)).and_then(during);
        let opened = gate.open();
        let run = h.join().map_err(|_| anyhow!("collector runner panicked"))?;
        let run = run?;
        let r = r.with_context(|| format!("collector stderr: {}", run.stderr))?;
        opened?;
        Ok((run, r))
    })
}

/// Checks the run held its deadline: the process had exited before `--timeout` plus
/// [`DEADLINE_MARGIN`], and the manifest (when there is a bundle) says the capture
/// took at most `--timeout`.
pub fn assert_deadline(run: &Run, timeout: Duration, manifest: Option<&Manifest>) -> Result<()> {
    ensure!(
        run.wall <= timeout + DEADLINE_MARGIN,
        "deadline not held: exited after {:?} (--timeout {:?})",
        run.wall,
        timeout
    );
    if let Some(m) = manifest {
        ensure!(
            u128::from(m.duration_ms) <= timeout.as_millis(),
            "manifest duration {} ms exceeds --timeout {:?}",
            m.duration_ms,
            timeout
        );
    }
    Ok(())
}

/// Sends `sig` to a process we started.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Names in a directory, sorted.
pub fn listing(dir: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// A read-only view of a lab node: links, addresses, routes and rules of the node
/// and the given netns, both iptables backends and the nft ruleset of the node.
/// Taken before and after a capture, they must be equal.
#[derive(Debug, PartialEq, Eq)]
pub struct NodeState(BTreeMap<String, String>);

impl NodeState {
    /// `node` and `netns` are netns names (`ip netns`).
    pub fn capture(node: &str, netns: &[String]) -> Result<NodeState> {
        let mut m = BTreeMap::new();
        let mut all = vec![node.to_string()];
        all.extend(netns.iter().cloned());
        c::wait_settled(&all)?;
        for ns in &all {
            for (k, v) in c::netns_snapshot(ns)? {
                m.insert(format!("{ns} {k}"), v);
            }
        }
        for tool in [
            "iptables-nft-save",
            "iptables-legacy-save",
            "ip6tables-nft-save",
        ] {
            let text = c::sh(&["ip", "netns", "exec", node, tool])?;
            m.insert(format!("{node} {tool}"), c::normalize_iptables_save(&text));
        }
        // Handles and counters aside, the ruleset must not change.
        let nft = c::sh(&["ip", "netns", "exec", node, "nft", "list", "ruleset"])?;
        m.insert(format!("{node} nft"), nft.replace(char::is_numeric, ""));
        Ok(NodeState(m))
    }

    /// The lab node and its live pods.
    pub fn of_lab(lab: &Lab) -> Result<NodeState> {
        let pods: Vec<String> = lab
            .pods()
            .iter()
            .filter(|p| !p.deleted)
            .map(|p| p.netns_name.clone())
            .collect();
        NodeState::capture(lab.node_netns_name(), &pods)
    }

    /// Fails with the first difference.
    pub fn ensure_same(&self, after: &NodeState) -> Result<()> {
        for (k, v) in &self.0 {
            let a = after.0.get(k);
            ensure!(
                a == Some(v),
                "{k} changed during the capture:\nbefore: {v}\nafter:  {}",
                a.cloned().unwrap_or_default()
            );
        }
        ensure!(
            self.0.len() == after.0.len(),
            "different views: {:?} vs {:?}",
            self.0.keys().collect::<Vec<_>>(),
            after.0.keys().collect::<Vec<_>>()
        );
        Ok(())
    }
}

/// Inserts `n` ASSURED TCP entries (pseudo-random tuples in the benchmarking ranges
/// 198.18.0.0/15, so they compress like real ones) into the lab node's conntrack
/// table with `conntrack -R`; they live 2 h or until the lab is gone.
pub fn fill_conntrack(lab: &Lab, n: usize) -> Result<()> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ n as u64;
    let mut next = || {
        // xorshift64*: varied tuples, no duplicates in practice.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut buf = String::with_capacity(n * 140);
    for _ in 0..n {
        let r = next();
        let b = r.to_le_bytes();
        let src = format!("198.18.{}.{}", b[0], b[1].max(1));
        let dst = format!("198.19.{}.{}", b[2], b[3].max(1));
        let sport = 1024 + (u16::from_le_bytes([b[4], b[5]]) % 60000);
        let dport = 1 + (u16::from_le_bytes([b[6], b[7]]) % 1024);
        buf.push_str(&format!(
            "-I -s {src} -d {dst} -p tcp --sport {sport} --dport {dport} --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 7200\n"
        ));
    }
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.node_netns_name(),
            "conntrack",
            "-R",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("conntrack -R")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(buf.as_bytes())?;
    }
    // Duplicate tuples fail individually; the status is not what matters, the count is.
    let _ = wait_child(&mut child, Duration::from_secs(120))?;
    Ok(())
}

/// Waits for a child we started, killing it after `timeout`.
pub fn wait_child(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            bail!("child {} did not finish within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `conntrack -C` of the lab node.
pub fn conntrack_count(lab: &Lab) -> Result<u64> {
    c::sh(&[
        "ip",
        "netns",
        "exec",
        lab.node_netns_name(),
        "conntrack",
        "-C",
    ])?
    .trim()
    .parse()
    .context("conntrack -C")
}

/// A child process killed (by pid) and reaped when dropped.
pub struct ChildGuard(pub Option<std::process::Child>);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Kills and reaps it now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
