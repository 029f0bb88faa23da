//! Running code inside a network namespace.
//!
//! `setns(CLONE_NEWNET)` switches only the calling thread. Every netns is therefore
//! read from a *fresh* OS thread that switches first and exits when done; no thread
//! that switched is ever reused (no pool, no tokio worker), so nothing can run in the
//! wrong netns by accident. Inside, `/proc/thread-self/net/*` and netlink sockets
//! created by that thread see the target netns, and children it spawns run there.

use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// A netns to enter, identified by a path and the (dev, inode) it had at discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsTarget {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{reason}", reason = crate::source::io_reason(&format!("opening netns {path}"), source))]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("netns {path} is gone (now {found}, was {expected})")]
    Vanished {
        path: String,
        expected: String,
        found: String,
    },
    #[error("{reason}", reason = crate::source::errno_reason(&format!("setns into {path}"), *errno))]
    Setns {
        path: String,
        errno: nix::errno::Errno,
    },
}

impl NetnsError {
    pub fn is_permission(&self) -> bool {
        match self {
            NetnsError::Open { source, .. } => crate::source::is_permission(source),
            NetnsError::Setns { errno, .. } => {
                matches!(errno, nix::errno::Errno::EPERM | nix::errno::Errno::EACCES)
            }
            NetnsError::Vanished { .. } => false,
        }
    }
}

/// (dev, inode) of the netns the calling thread is in.
pub fn current_netns_id() -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata("/proc/thread-self/ns/net")?;
    Ok((m.dev(), m.ino()))
}

/// Opens the netns file and checks it is still the same netns.
pub fn open_checked(target: &NetnsTarget) -> Result<File, NetnsError> {
    let display = target.path.display().to_string();
    let file = File::open(&target.path).map_err(|source| NetnsError::Open {
        path: display.clone(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| NetnsError::Open {
        path: display.clone(),
        source,
    })?;
    if (meta.dev(), meta.ino()) != (target.dev, target.ino) {
        return Err(NetnsError::Vanished {
            path: display,
            expected: format!("{}:{}", target.dev, target.ino),
            found: format!("{}:{}", meta.dev(), meta.ino()),
        });
    }
    Ok(file)
}

/// Switches the calling thread into `target`. Call only on a fresh thread that will
/// exit afterwards. When the thread is already there (e.g. a non-root run capturing
/// its own netns) no `setns` is needed, and none is done.
pub fn enter(target: &NetnsTarget) -> Result<(), NetnsError> {
    if current_netns_id().ok() == Some((target.dev, target.ino)) {
        return Ok(());
    }
    let file = open_checked(target)?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Setns {
        path: target.path.display().to_string(),
        errno,
    })
}

/// Switches the calling thread into the UTS namespace of `pid` (to read the hostname
/// a pod sees). Same rule: fresh threads only.
pub fn enter_uts_of(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/ns/uts");
    let f = File::open(&path).map_err(|e| crate::source::io_reason(&path, &e))?;
    setns(&f, CloneFlags::CLONE_NEWUTS)
        .map_err(|e| crate::source::errno_reason(&format!("setns into {path}"), e))
}

/// Runs `f` on a new OS thread inside `target`; the thread exits when `f` returns.
/// `f` receives the outcome of the switch, so that it can report a failure per source.
pub fn spawn_in<T, F>(
    thread_name: String,
    target: NetnsTarget,
    f: F,
) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce(Result<(), NetnsError>) -> T + Send + 'static,
{
    std::thread::Builder::new()
        .name(thread_name)
        // Small stacks: many of these may run at once; none recurses deeply.
        .stack_size(512 * 1024)
        .spawn(move || {
            let entered = enter(&target);
            f(entered)
        })
}

/// A target for the path, stat'ed now.
pub fn target_for(path: &Path) -> std::io::Result<NetnsTarget> {
    let m = std::fs::metadata(path)?;
    Ok(NetnsTarget {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entering_own_netns_needs_no_privilege() {
        let me = target_for(Path::new("/proc/self/ns/net")).unwrap();
        let h = spawn_in("t".into(), me, |r| r.is_ok()).unwrap();
        assert!(h.join().unwrap());
    }

    #[test]
    fn a_replaced_netns_is_detected() {
        let mut me = target_for(Path::new("/proc/self/ns/net")).unwrap();
        me.ino += 1;
        let h = spawn_in("t".into(), me, |r| r.map_err(|e| e.to_string())).unwrap();
        let err = h.join().unwrap().unwrap_err();
        assert!(err.contains("is gone"), "{err}");
    }
}
