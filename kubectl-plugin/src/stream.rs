//! One `kubectl exec` streaming a bundle into a file: the child in a process group of
//! its own, stdout copied with a byte counter (the progress line) and a size cap,
//! stderr's tail kept for the reason, a deadline after which the whole group is
//! killed by its id. Nothing here knows what a bundle is.

use crate::children;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stderr kept from kubectl (the end says what went wrong).
const STDERR_CAP: usize = 16 * 1024;

/// After kubectl exits, how long its output may stay open (a child of it holding the
/// pipe) before the group is killed.
const READER_GRACE: Duration = Duration::from_secs(2);

/// How often the child is polled.
const POLL: Duration = Duration::from_millis(20);

/// How a stream ended.
#[derive(Debug)]
pub enum End {
    /// kubectl exited by itself.
    Exited(ExitStatus),
    /// The deadline passed: the group was killed.
    TimedOut,
    /// More than the cap arrived: the group was killed.
    TooLarge,
}

/// What one stream did.
#[derive(Debug)]
pub struct Streamed {
    pub end: End,
    /// Bytes written to the sink, or the error that stopped the copy.
    pub copied: io::Result<u64>,
    pub stderr: String,
}

/// Limits of one stream.
pub struct Limits {
    pub deadline: Duration,
    pub max_bytes: u64,
}

/// Runs `cmd` (stdin closed), copying its stdout into `sink` and counting into
/// `counter`. `partial` is the named file being written, removed on Ctrl-C.
pub fn run(
    mut cmd: Command,
    sink: &mut (dyn Write + Send),
    counter: &Arc<AtomicU64>,
    limits: &Limits,
    partial: Option<PathBuf>,
) -> io::Result<Streamed> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pgid = child.id() as i32;
    children::register(pgid, partial);
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        children::kill_group(pgid);
        let _ = child.wait();
        children::unregister(pgid);
        return Err(io::Error::other("kubectl started without pipes"));
    };
    let too_large = AtomicBool::new(false);
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        let copier =
            s.spawn(|| copy_counted(&mut stdout, sink, counter, limits.max_bytes, &too_large));
        let errs = s.spawn(move || read_tail(&mut stderr, STDERR_CAP));
        let end = loop {
            match child.try_wait() {
                Ok(Some(status)) => break End::Exited(status),
                Ok(None) => {}
                Err(_) => {
                    // Cannot poll: stop it rather than wait forever.
                    children::kill_group(pgid);
                    break End::TimedOut;
                }
            }
            if too_large.load(Ordering::SeqCst) {
                children::kill_group(pgid);
                break End::TooLarge;
            }
            if started.elapsed() >= limits.deadline {
                children::kill_group(pgid);
                break End::TimedOut;
            }
            std::thread::sleep(POLL);
        };
        let _ = child.wait();
        // kubectl is gone; something it started may still hold the pipes.
        let grace = Instant::now() + READER_GRACE;
        while !(copier.is_finished() && errs.is_finished()) && Instant::now() < grace {
            std::thread::sleep(POLL);
        }
        if !(copier.is_finished() && errs.is_finished()) {
            children::kill_group(pgid);
        }
        if !matches!(end, End::Exited(_)) {
            // Killed: return only once the whole group is gone.
            children::await_group_gone(pgid, children::GONE_LIMIT, false);
        }
        let copied = copier
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("copy thread panicked")));
        let stderr = errs.join().unwrap_or_default();
        Streamed {
            end,
            copied,
            stderr,
        }
    });
    children::unregister(pgid);
    Ok(result)
}

/// Copies until EOF or until more than `max` bytes came (then sets `too_large` and
/// stops reading: the caller kills the writer).
fn copy_counted(
    from: &mut dyn Read,
    to: &mut (dyn Write + Send),
    counter: &AtomicU64,
    max: u64,
    too_large: &AtomicBool,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > max {
            too_large.store(true, Ordering::SeqCst);
            return Ok(total);
        }
        to.write_all(&buf[..n])?;
        counter.store(total, Ordering::Relaxed);
    }
    to.flush()?;
    Ok(total)
}

/// The last `cap` bytes of a stream, as text.
fn read_tail(from: &mut dyn Read, cap: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > cap {
            kept.drain(..kept.len() - cap);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    fn limits(ms: u64, max: u64) -> Limits {
        Limits {
            deadline: Duration::from_millis(ms),
            max_bytes: max,
        }
    }

    #[test]
    fn copies_and_counts() {
        let counter = Arc::new(AtomicU64::new(0));
        let mut out = Vec::new();
        let r = run(
            sh("printf hello; echo oops >&2"),
            &mut out,
            &counter,
            &limits(10_000, 1 << 20),
            None,
        )
        .unwrap();
        assert!(matches!(r.end, End::Exited(s) if s.success()));
        assert_eq!(r.copied.unwrap(), 5);
        assert_eq!(out, b"hello");
        assert_eq!(counter.load(Ordering::SeqCst), 5);
        assert_eq!(r.stderr.trim(), "oops");
    }

    #[test]
    fn a_hang_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The shell's background child would keep the pipe open if only the shell died.
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let counter = Arc::new(AtomicU64::new(0));
        let mut out = Vec::new();
        let r = run(sh(&script), &mut out, &counter, &limits(300, 1 << 20), None).unwrap();
        assert!(matches!(r.end, End::TimedOut), "{:?}", r.end);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        let zombie_or_gone = !alive
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
        assert!(zombie_or_gone, "sleep {pid} survived the kill");
    }

    #[test]
    fn too_much_output_is_cut() {
        let counter = Arc::new(AtomicU64::new(0));
        let mut out = Vec::new();
        let r = run(
            sh("yes"),
            &mut out,
            &counter,
            &limits(10_000, 100_000),
            None,
        )
        .unwrap();
        assert!(matches!(r.end, End::TooLarge), "{:?}", r.end);
        assert!(out.len() <= 100_000);
    }
}
