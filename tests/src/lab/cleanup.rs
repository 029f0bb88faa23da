//! Teardown (by lab name, so it also works for a lab left by a dead process or
//! brought up by `scripts/lab`) and the leak check.
//!
//! Everything a lab owns is found from its name:
//! * netns `/run/netns/<name>.*`
//! * cgroup subtree `<hierarchy>/netsnap-lab-<name>` (every process it started)
//! * directory `/run/netsnap-lab-<name>` (host root, pod resolv.conf, logs, lab.json)

use super::{cmd, netns, pod::Cgroups};
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lab names start with this for tests (a random suffix follows).
pub const TEST_PREFIX: &str = "nsl-";
/// ... and with this when brought up by hand with `scripts/lab`.
pub const MANUAL_PREFIX: &str = "nsm-";

pub fn lab_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/netsnap-lab-{name}"))
}

/// Prefix of every netns name of the lab. Lab names never contain '.', so
/// one lab's prefix can never match another lab's netns.
pub fn netns_prefix(name: &str) -> String {
    format!("{name}.")
}

/// Everything that must be gone after a lab's teardown. Take it before
/// tearing down; check it with [`leaks`] / [`assert_no_leaks`].
#[derive(Clone, Debug)]
pub struct Footprint {
    pub lab_name: String,
    pub netns_prefix: String,
    pub cgroup_root: PathBuf,
    pub lab_dir: PathBuf,
    /// PIDs the lab started (pod processes, listeners).
    pub pids: Vec<u32>,
    /// Link names that exist only inside lab netns (must never show up in the root netns).
    pub link_names: Vec<String>,
}

/// SIGKILLs every process in the lab's cgroup subtree (all started by the lab)
/// until none is left.
pub fn kill_cgroup_processes(cg: &Cgroups) -> Result<()> {
    cmd::poll(Duration::from_secs(15), "lab processes to exit", || {
        let pids = cg.pids();
        for &pid in &pids {
            // SAFETY: kill(2) on a PID read from the lab's own cgroup.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        Ok(pids.is_empty().then_some(()))
    })
}

/// Removes everything of lab `name`. Best effort: every step runs, the first
/// error is returned.
pub fn teardown_by_name(name: &str) -> Result<()> {
    let mut first_err: Option<anyhow::Error> = None;
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };
    let cg = Cgroups::for_lab(name);
    if let Ok(cg) = &cg {
        keep(kill_cgroup_processes(cg));
    }
    for ns in netns::list_with_prefix(&netns_prefix(name)) {
        keep(netns::del(&ns));
    }
    if let Ok(cg) = &cg {
        keep(cg.remove());
    }
    let dir = lab_dir(name);
    if dir.exists() {
        keep(fs::remove_dir_all(&dir).with_context(|| format!("rm -r {}", dir.display())));
    }
    match first_err {
        Some(e) => Err(e.context(format!("tearing down lab {name}"))),
        None => Ok(()),
    }
}

fn pid_alive_in_lab(pid: u32, cgroup_marker: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie holds nothing but its PID; a live process is what we look for.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    if stat.is_empty() || state == Some("Z") {
        return false;
    }
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|c| c.contains(cgroup_marker))
        .unwrap_or(false)
}

/// What of the lab is still there (empty = clean).
pub fn leaks(fp: &Footprint) -> Vec<String> {
    let mut out = Vec::new();
    for ns in netns::list_with_prefix(&fp.netns_prefix) {
        out.push(format!("netns {ns}"));
    }
    if fp.cgroup_root.exists() {
        out.push(format!("cgroup {}", fp.cgroup_root.display()));
    }
    if fp.lab_dir.exists() {
        out.push(format!("dir {}", fp.lab_dir.display()));
    }
    let marker = format!("netsnap-lab-{}", fp.lab_name);
    for &pid in &fp.pids {
        if pid_alive_in_lab(pid, &marker) {
            out.push(format!("process {pid}"));
        }
    }
    // Our /sys shows the root netns: none of the lab's links may be there.
    for l in &fp.link_names {
        if Path::new("/sys/class/net").join(l).exists() {
            out.push(format!("link {l} in the root netns"));
        }
    }
    out
}

/// Panics, listing what is left, if the lab leaked anything.
pub fn assert_no_leaks(fp: &Footprint) {
    let l = leaks(fp);
    assert!(l.is_empty(), "lab {} leaked: {}", fp.lab_name, l.join(", "));
}

/// Start time of a process (field 22 of `/proc/<pid>/stat`), to tell a PID from its reuse.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// `<pid> <starttime>` of the current process, written to `<lab dir>/owner`.
pub fn owner_record() -> String {
    let pid = std::process::id();
    format!("{pid} {}", process_start_time(pid).unwrap_or(0))
}

fn owner_is_dead(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join("owner")) else {
        // Being created right now, or written by hand: leave it.
        return false;
    };
    let mut f = text.split_whitespace();
    match (f.next(), f.next()) {
        (Some("manual"), _) => false,
        (Some(pid), Some(start)) => {
            let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
                return false;
            };
            process_start_time(pid) != Some(start)
        }
        _ => false,
    }
}

/// Tears down test labs whose owning process is gone (a test binary killed by
/// a timeout cannot run its Drop). Labs from `scripts/lab` are left alone.
/// Returns the names removed.
pub fn cleanup_stale() -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(rd) = fs::read_dir("/run") else {
        return removed;
    };
    for e in rd.flatten() {
        let fname = e.file_name().to_string_lossy().into_owned();
        let Some(name) = fname.strip_prefix("netsnap-lab-") else {
            continue;
        };
        if name.starts_with(TEST_PREFIX)
            && owner_is_dead(&e.path())
            && teardown_by_name(name).is_ok()
        {
            removed.push(name.to_string());
        }
    }
    removed
}
