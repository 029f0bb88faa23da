//! Named network namespaces (`/run/netns/<name>`) and running code inside them.
//!
//! Everything here acts on a namespace the lab created; nothing takes a
//! namespace argument that could default to the root one.

use super::cmd;
use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn add(name: &str) -> Result<()> {
    cmd::run(Command::new("ip").args(["netns", "add", name]))
        .with_context(|| format!("creating netns {name}"))?;
    Ok(())
}

/// Removes the name; the kernel frees the namespace once no process, fd or
/// mount holds it any more.
pub fn del(name: &str) -> Result<()> {
    if !path(name).exists() {
        return Ok(());
    }
    cmd::run(Command::new("ip").args(["netns", "del", name]))
        .with_context(|| format!("deleting netns {name}"))?;
    Ok(())
}

/// Names in /run/netns starting with `prefix`.
pub fn list_with_prefix(prefix: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// `ip netns exec <name> <args…>`: the child runs in that netns with a /sys
/// that shows it.
pub fn exec(name: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", name]).args(args);
    c
}

/// `ip -n <name> <args…>`
pub fn ip(name: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["-n", name]).args(args);
    c
}

/// Reads a sysctl of the netns (e.g. `net/ipv4/ip_forward`).
pub fn sysctl_get(name: &str, key: &str) -> Result<String> {
    let p = format!("/proc/sys/{key}");
    Ok(cmd::stdout(&mut exec(name, &["cat", &p]))?
        .trim()
        .to_string())
}

/// Writes a sysctl of the netns and reads it back: `sysctl -w` reports success
/// for keys that are read-only outside the init netns, so the read-back is the
/// only proof.
pub fn sysctl_set(name: &str, key: &str, value: &str) -> Result<()> {
    let p = format!("/proc/sys/{key}");
    let script = "printf '%s' \"$1\" > \"$2\"";
    cmd::run(&mut exec(name, &["sh", "-c", script, "sh", value, &p]))
        .with_context(|| format!("setting {key}={value} in netns {name}"))?;
    let got = sysctl_get(name, key)?;
    if got != value {
        bail!("sysctl {key} in netns {name} is {got:?} after writing {value:?}");
    }
    Ok(())
}

/// Inode of a namespace file (what `/proc/<pid>/ns/net` links to).
pub fn inode(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("stat {}", p.display()))?
        .ino())
}

/// Runs `f` on a fresh OS thread that has joined the netns at `ns_path`.
/// `setns` only moves the calling thread, and that thread exits afterwards, so
/// no other code ever runs in the wrong namespace. Sockets created by `f`
/// stay in that netns.
pub fn run_in<T, F>(ns_path: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let file = File::open(ns_path).with_context(|| format!("open {}", ns_path.display()))?;
    let shown = ns_path.display().to_string();
    std::thread::Builder::new()
        .name("lab-netns".into())
        .spawn(move || {
            // SAFETY: plain syscall on an fd we own; affects this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(anyhow!(
                    "setns({shown}): {}",
                    std::io::Error::last_os_error()
                ));
            }
            f()
        })
        .context("spawning netns thread")?
        .join()
        .map_err(|_| anyhow!("thread in netns {} panicked", ns_path.display()))?
}
