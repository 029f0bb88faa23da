//! Helpers for the end-to-end tests of `netsnap-collect` and `netsnap`
//! (`tests/collect_*.rs`, `tests/analyze_*.rs`).
//!
//! # Finding the binary
//!
//! `env!("CARGO_BIN_EXE_…")` exists only inside the binary's own crate, so
//! [`collector_bin`] and [`analyzer_bin`] resolve them at run time:
//! 1. `$NETSNAP_COLLECT_BIN` / `$NETSNAP_BIN`, when set (e.g. the static musl build);
//! 2. otherwise they run `cargo build -p <package> --bin <bin>` once
//!    per test process, into the *same* target directory and profile as the running
//!    test executable (derived from its path), and returns
//!    `<target>/<profile>/netsnap-collect`. Cargo is a no-op when the binary is up to
//!    date, so `cargo test --workspace` (which already built it) pays nothing, and
//!    `cargo test -p netsnap-tests` never tests a stale binary.
//!
//! [`collector_bin_release`] does the same with `--release` (the memory test measures
//! the binary users run; `$NETSNAP_COLLECT_BIN` takes precedence there too).
//!
//! The collector is built with its `test-hooks` feature (both profiles, so that one
//! path never alternates between two builds): the gated tests
//! ([`crate::collect_support::Gate`]) stop it between discovery and the netns
//! captures. A binary given in `$NETSNAP_COLLECT_BIN` needs that feature for those
//! tests. Builds for users (`cargo build`, `scripts/build-static`) have no hooks.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A workspace binary the end-to-end tests run: package, binary name, and the
/// environment variable that may point at a prebuilt one.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceBin {
    pub package: &'static str,
    pub bin: &'static str,
    pub env: &'static str,
    /// Cargo features of the build the tests run.
    pub test_features: &'static str,
}

pub const COLLECTOR: WorkspaceBin = WorkspaceBin {
    package: "netsnap-collector",
    bin: "netsnap-collect",
    env: "NETSNAP_COLLECT_BIN",
    test_features: "test-hooks",
};

pub const ANALYZER: WorkspaceBin = WorkspaceBin {
    package: "netsnap-analyzer",
    bin: "netsnap",
    env: "NETSNAP_BIN",
    test_features: "",
};

pub const KUBECTL_PLUGIN: WorkspaceBin = WorkspaceBin {
    package: "netsnap-kubectl",
    bin: "kubectl-netsnap",
    env: "NETSNAP_KUBECTL_BIN",
    test_features: "",
};

/// Path of the `netsnap-collect` binary under test (built on first use).
pub fn collector_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| locate_or_build(COLLECTOR, false).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The release build of `netsnap-collect` (built on first use).
pub fn collector_bin_release() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| locate_or_build(COLLECTOR, true).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Path of the `netsnap` analyzer binary under test (built on first use).
pub fn analyzer_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| locate_or_build(ANALYZER, false).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Path of the `kubectl-netsnap` plugin under test (built on first use).
pub fn kubectl_plugin_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| locate_or_build(KUBECTL_PLUGIN, false).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate_or_build(target: WorkspaceBin, force_release: bool) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(target.env) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("{}={} does not exist", target.env, p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    // <target>[/<triple>]/<profile>/deps/<test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable is not in <target>/<profile>/deps")?
        .to_path_buf();
    let mut profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let mut target_dir = profile_dir
        .parent()
        .context("no target directory above the profile directory")?
        .to_path_buf();
    let mut triple = None;
    if !target_dir.join("CACHEDIR.TAG").exists() {
        if let Some(parent) = target_dir
            .parent()
            .filter(|p| p.join("CACHEDIR.TAG").exists())
        {
            triple = target_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            target_dir = parent.to_path_buf();
        }
    }
    let mut profile_dir = profile_dir;
    if force_release {
        profile = "release".into();
        profile_dir.set_file_name("release");
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--quiet",
            "-p",
            target.package,
            "--bin",
            target.bin,
        ]);
    if !target.test_features.is_empty() {
        cmd.args(["--features", target.test_features]);
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(t) = &triple {
        cmd.args(["--target", t]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running cargo build for {}", target.bin))?;
    if !out.status.success() {
        bail!(
            "cargo build -p {} failed: {}",
            target.package,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bin = profile_dir.join(target.bin);
    if !bin.is_file() {
        bail!("{} not found after cargo build", bin.display());
    }
    Ok(bin)
}

/// A directory removed (recursively) on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Result<TempDir> {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new()
            .prefix(&format!("netsnap-collect-test-{tag}-"))
            // Traversable by the unprivileged collector runs, like a plain mkdir.
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir()
            .map(TempDir)
            .context("creating a temporary directory")
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// How one collector run went.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub wall: Duration,
    /// Peak resident set size of the collector process, in KiB. With
    /// [`RunOpts::own_rss`] it is measured by GNU time, which forks the collector from
    /// a small process; otherwise it is `wait4`'s `ru_maxrss` of the direct child,
    /// which the kernel also raises to the *spawning* process's peak at exec (the
    /// child starts life sharing the test process's memory), so it can only over-state.
    pub max_rss_kib: u64,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Options of [`run`].
#[derive(Default)]
pub struct RunOpts<'a> {
    /// Extra environment.
    pub env: Vec<(&'a str, String)>,
    /// Command to run the collector under (e.g. `setpriv …`, `unshare -m …`); the
    /// collector path and args are appended.
    pub wrapper: Vec<String>,
    /// Kill after this long (default 120 s).
    pub kill_after: Option<Duration>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Called with the child's pid once it runs (e.g. to send a signal).
    pub on_start: Option<Box<dyn FnOnce(u32) + 'a>>,
    /// Binary to run instead of [`collector_bin`].
    pub bin: Option<PathBuf>,
    /// Measure the collector's own peak RSS through `/usr/bin/time` (GNU time) when
    /// it exists (see [`Run::max_rss_kib`]). Signals then reach time, not the
    /// collector: do not combine with `on_start` signalling.
    pub own_rss: bool,
}

/// Runs the collector with `args`, measuring wall time and peak RSS.
pub fn run(args: &[&str], opts: RunOpts) -> Result<Run> {
    let bin = match &opts.bin {
        Some(b) => b.clone(),
        None => collector_bin()?,
    };
    let out_dir = TempDir::new("run")?;
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");
    let rss_path = out_dir.path().join("maxrss");
    let mut wrapper = opts.wrapper.clone();
    let gnu_time = Path::new("/usr/bin/time");
    let timed = opts.own_rss && gnu_time.is_file();
    if timed {
        let mut w = vec![
            gnu_time.display().to_string(),
            "-f".into(),
            "%M".into(),
            "-o".into(),
            rss_path.display().to_string(),
        ];
        w.extend(wrapper);
        wrapper = w;
    }
    let mut cmd = if wrapper.is_empty() {
        Command::new(&bin)
    } else {
        let mut c = Command::new(&wrapper[0]);
        c.args(&wrapper[1..]).arg(&bin);
        c
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?);
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if let Some(d) = &opts.cwd {
        cmd.current_dir(d);
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    if let Some(f) = opts.on_start {
        f(pid);
    }
    let kill_after = opts.kill_after.unwrap_or(Duration::from_secs(120));
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: plain wait4 on our own child, with valid out-pointers.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid as i32 {
            break (status, ru);
        }
        if r < 0 {
            bail!("wait4: {}", std::io::Error::last_os_error());
        }
        if started.elapsed() > kill_after {
            // SAFETY: our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    // The std handle must not wait again: the child is already reaped.
    std::mem::forget(child);
    use std::os::unix::process::ExitStatusExt;
    let mut max_rss_kib = u64::try_from(rusage.ru_maxrss).unwrap_or(0);
    if timed {
        // GNU time may prefix a "Command exited with non-zero status" line.
        let text = std::fs::read_to_string(&rss_path).unwrap_or_default();
        if let Some(kib) = text.lines().last().and_then(|l| l.trim().parse().ok()) {
            max_rss_kib = kib;
        }
    }
    Ok(Run {
        status: ExitStatus::from_raw(status),
        stdout: std::fs::read(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        wall,
        max_rss_kib,
    })
}

/// `iptables-save` text without counters and comment lines, for comparing a
/// `-c` capture with a live save.
pub fn normalize_iptables_save(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut l = line.to_string();
        // Rule counters: `[pkts:bytes] -A …`.
        if l.starts_with('[') {
            if let Some(end) = l.find("] ") {
                l = l[end + 2..].to_string();
            }
        }
        // Chain counters: `:CHAIN POLICY [pkts:bytes]`.
        if l.starts_with(':') {
            if let Some(i) = l.rfind(" [") {
                l.truncate(i);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Runs a command and returns stdout; fails on a non-zero exit.
pub fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n <netns> <args…>` with JSON output, parsed.
pub fn ip_json(netns: &str, args: &[&str]) -> Result<serde_json::Value> {
    let mut full = vec!["ip", "-n", netns, "-j"];
    full.extend_from_slice(args);
    let text = sh(&full)?;
    serde_json::from_str(&text).with_context(|| format!("parsing {full:?}"))
}

/// A read-only snapshot of a netns, for before/after comparisons: links (without
/// statistics), addresses, routes of all tables, rules.
pub fn netns_snapshot(netns: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    let mut links = ip_json(netns, &["-d", "link", "show"])?;
    if let Some(arr) = links.as_array_mut() {
        for l in arr {
            if let Some(o) = l.as_object_mut() {
                // Counters and timers change with traffic; everything else must not.
                for k in [
                    "stats",
                    "stats64",
                    "carrier_changes",
                    "carrier_up_count",
                    "carrier_down_count",
                ] {
                    o.remove(k);
                }
                if let Some(li) = o.get_mut("linkinfo").and_then(|v| v.as_object_mut()) {
                    if let Some(sd) = li
                        .get_mut("info_slave_data")
                        .and_then(|v| v.as_object_mut())
                    {
                        for k in [
                            "hold_timer",
                            "message_age_timer",
                            "forward_delay_timer",
                            "topology_change_ack",
                            "config_pending",
                        ] {
                            sd.remove(k);
                        }
                    }
                    if let Some(d) = li.get_mut("info_data").and_then(|v| v.as_object_mut()) {
                        for k in [
                            "hello_timer",
                            "tcn_timer",
                            "topology_change_timer",
                            "gc_timer",
                        ] {
                            d.remove(k);
                        }
                    }
                }
            }
        }
    }
    m.insert("links".into(), links.to_string());
    let mut addrs = ip_json(netns, &["addr", "show"])?;
    for l in addrs.as_array_mut().into_iter().flatten() {
        for a in l["addr_info"].as_array_mut().into_iter().flatten() {
            if let Some(o) = a.as_object_mut() {
                // Lifetimes count down and IPv6 DAD finishes on its own.
                for k in ["valid_life_time", "preferred_life_time", "tentative"] {
                    o.remove(k);
                }
            }
        }
    }
    m.insert("addrs".into(), addrs.to_string());
    m.insert(
        "routes4".into(),
        ip_json(netns, &["-4", "route", "show", "table", "all"])?.to_string(),
    );
    m.insert(
        "routes6".into(),
        ip_json(netns, &["-6", "route", "show", "table", "all"])?.to_string(),
    );
    m.insert(
        "rules4".into(),
        ip_json(netns, &["-4", "rule", "show"])?.to_string(),
    );
    m.insert(
        "rules6".into(),
        ip_json(netns, &["-6", "rule", "show"])?.to_string(),
    );
    Ok(m)
}

/// Waits (up to 10 s) until no address in these netns is still tentative: IPv6 DAD
/// finishing adds local routes, which must not be mistaken for a change made by the
/// collector.
pub fn wait_settled(netns: &[String]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut busy = false;
        for ns in netns {
            if sh(&["ip", "-n", ns, "addr", "show"])?.contains("tentative") {
                busy = true;
                break;
            }
        }
        if !busy {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("addresses still tentative after 10 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads a bundle with the schema's safe reader.
pub fn open_bundle(path: &Path) -> Result<netsnap_schema::Bundle> {
    netsnap_schema::Bundle::open(path, &netsnap_schema::ReadLimits::default())
        .with_context(|| format!("reading bundle {}", path.display()))
}

/// The manifest record of a node-wide source by name.
pub fn record<'a>(
    b: &'a netsnap_schema::Bundle,
    name: &str,
) -> Option<&'a netsnap_schema::SourceRecord> {
    b.manifest
        .sources
        .iter()
        .find(|r| r.name == name && r.netns.is_none())
}

/// Copies a host root (symlinks kept as symlinks) so a test can change it.
pub fn copy_host_root(from: &Path, to: &Path) -> Result<()> {
    sh(&[
        "cp",
        "-a",
        &format!("{}/.", from.display()),
        &to.display().to_string(),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_normalisation() {
        let with_counters = "# Generated by iptables-nft-save v1.8.9\n*nat\n:PREROUTING ACCEPT [3:180]\n:KUBE-SERVICES - [0:0]\n[5:300] -A PREROUTING -j KUBE-SERVICES\nCOMMIT\n# Completed\n";
        let live = "# Generated by x\n*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n";
        assert_eq!(
            normalize_iptables_save(with_counters),
            normalize_iptables_save(live)
        );
    }
}
