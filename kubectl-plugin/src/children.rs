//! The kubectl children alive right now, each in a process group of its own (so that
//! a kill reaches whatever it started too), and the partial files being written: on
//! Ctrl-C/SIGTERM every group is killed and every partial file removed before exit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

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
            for (pgid, partial) in groups {
                kill_group(pgid);
                if let Some(p) = partial {
                    let _ = std::fs::remove_file(p);
                }
            }
            eprintln!("kubectl-netsnap: interrupted; every kubectl exec stopped");
            std::process::exit(130);
        })?;
    Ok(())
}
