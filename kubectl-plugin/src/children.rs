//! The kubectl children alive right now, each in a process group of its own (so that
//! a kill reaches whatever it started too), and the partial files being written: on
//! Ctrl-C/SIGTERM every group is killed and every partial file removed before exit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// How long a killed group may take to be gone.
pub const GONE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Process group id (= the child's pid) → its partial output file.
static LIVE: Mutex<BTreeMap<i32, Option<PathBuf>>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<i32, Option<PathBuf>>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn register(pgid: i32, partial: Option<PathBuf>) {
    live().insert(pgid, partial);
}

pub fn unregister(pgid: i32) {
    live().remove(&pgid);
}

/// SIGKILL to the whole process group `pgid` (a child this process started with
/// `process_group(0)`); a group already gone is fine.
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals exactly that process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Waits (at most `limit`) until no process of group `pgid` is left: a SIGKILL is
/// delivered asynchronously, and a process that returns must leave none behind.
/// With `reap_leader` the group's leader (this process's child) is reaped here.
pub fn await_group_gone(pgid: i32, limit: std::time::Duration, reap_leader: bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if reap_leader {
            // SAFETY: waitpid on our own child, without blocking.
            unsafe { libc::waitpid(pgid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        // SAFETY: signal 0 only asks whether any process of the group exists.
        let gone = unsafe { libc::kill(-pgid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Blocks the termination signals in this (main) thread before any other thread
/// exists, so only the thread started here receives them: it kills every live
/// group, removes their partial files and exits 130.
pub fn install_signal_thread() -> std::io::Result<()> {
    // SAFETY: sigset_t is plain data filled in by sigemptyset/sigaddset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: sigwait on the set blocked above.
            while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
            let groups: Vec<(i32, Option<PathBuf>)> =
                live().iter().map(|(k, v)| (*k, v.clone())).collect();
            for (pgid, _) in &groups {
                kill_group(*pgid);
            }
            for (pgid, partial) in groups {
                await_group_gone(pgid, GONE_LIMIT, true);
                if let Some(p) = partial {
                    let _ = std::fs::remove_file(p);
                }
            }
            eprintln!("kubectl-netsnap: interrupted; every kubectl exec stopped");
            std::process::exit(130);
        })?;
    Ok(())
}
