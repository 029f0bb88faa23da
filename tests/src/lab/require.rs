//! Whether lab tests can run here, and what to do when they cannot.
//!
//! * `NETSNAP_LAB=required` (CI): run, or panic with the reason.
//! * `NETSNAP_LAB` unset: run when possible, else print a visible skip reason.
//! * `NETSNAP_LAB=skip` (or `0`/`off`): always skip.

use super::cmd;
use super::pod;
use std::path::PathBuf;

/// Tools the lab runs (iproute2, util-linux, socat, iptables both backends,
/// nftables, conntrack-tools).
pub const TOOLS: &[&str] = &[
    "ip",
    "nsenter",
    "unshare",
    "mount",
    "hostname",
    "sh",
    "socat",
    "iptables-nft-restore",
    "iptables-nft-save",
    "iptables-legacy-restore",
    "iptables-legacy-save",
    "nft",
    "conntrack",
];

/// What the lab found usable on this machine.
#[derive(Clone, Debug)]
pub struct LabEnv {
    /// The cgroup hierarchy pod processes are placed in.
    pub cgroup_hierarchy: PathBuf,
}

/// Why the lab cannot run here, if it cannot.
pub fn unavailable_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the lab needs root (network namespaces, veths, iptables)".into());
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| cmd::which(t).is_none())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing tools: {} (Debian: iproute2 util-linux socat iptables nftables conntrack)",
            missing.join(", ")
        ));
    }
    if pod::pick_hierarchy().is_none() {
        return Some("no writable cgroup hierarchy under /sys/fs/cgroup".into());
    }
    if !std::path::Path::new("/proc/sys/net/bridge").exists() {
        return Some("br_netfilter is not loaded (/proc/sys/net/bridge missing)".into());
    }
    None
}

/// Call first in every lab test:
/// `let Some(_env) = require_lab() else { return };`
///
/// Returns `None` (after printing why to stderr) when the test should be
/// skipped; panics when `NETSNAP_LAB=required` and the lab cannot run.
pub fn require_lab() -> Option<LabEnv> {
    if !may_run("the lab", unavailable_reason) {
        return None;
    }
    Some(LabEnv {
        cgroup_hierarchy: pod::pick_hierarchy()?,
    })
}

/// What every test that needs this machine's environment decides (the lab's, the
/// report's browser tests): `true` to run; `false` after a visible skip notice when
/// `NETSNAP_LAB` says skip or `unavailable` gives a reason; a panic with that reason
/// when `NETSNAP_LAB=required`. `what` names the environment in the panic.
pub fn may_run(what: &str, unavailable: impl FnOnce() -> Option<String>) -> bool {
    let mode = std::env::var("NETSNAP_LAB").unwrap_or_default();
    let test = std::thread::current()
        .name()
        .unwrap_or("lab test")
        .to_string();
    if matches!(mode.as_str(), "0" | "skip" | "off" | "no") {
        skip_notice(&format!("SKIPPED {test}: NETSNAP_LAB={mode}"));
        return false;
    }
    let required = matches!(mode.as_str(), "required" | "1" | "yes" | "true");
    match unavailable() {
        None => true,
        Some(reason) if required => {
            panic!("NETSNAP_LAB={mode} but {what} cannot run: {reason}")
        }
        Some(reason) => {
            skip_notice(&format!(
                "SKIPPED {test}: {reason}; set NETSNAP_LAB=required to make this a failure"
            ));
            false
        }
    }
}

/// Writes straight to fd 2: the test harness captures `eprintln!`, and a
/// skip must be visible even when the test passes.
fn skip_notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}
