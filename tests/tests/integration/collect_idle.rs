//! `netsnap-collect --idle`, the DaemonSet pod's main process: it waits, capturing
//! nothing (no bundle, no output), until SIGTERM, and then exits 0.

use netsnap_tests::collect_support::wait_for;
use netsnap_tests::collector::{collector_bin, TempDir};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether `pid` sleeps in sigtimedwait(2) (its kernel wait channel): from then on a
/// SIGTERM is waited for, not fatal. (`SigBlk` would not tell: while a thread sleeps
/// in sigtimedwait the kernel shows the signals it waits for as unblocked.)
fn waits_for_signals(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("sigtimedwait"))
}

#[test]
fn idle_waits_for_sigterm_and_exits_0() {
    let dir = TempDir::new("idle").unwrap();
    let mut child = Command::new(collector_bin().expect("netsnap-collect"))
        .arg("--idle")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start --idle");
    let pid = child.id();
    let ready = wait_for(
        Duration::from_secs(10),
        "--idle to wait for signals",
        || waits_for_signals(pid).then_some(()),
    );
    if ready.is_err() {
        let _ = child.kill();
    }
    ready.unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "--idle exited by itself"
    );
    // SAFETY: kill(2) on the child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "--idle wrote {left:?}");
}
