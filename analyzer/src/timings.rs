//! Per-stage wall time and memory, printed to stderr when `NETSNAP_TIMINGS` is set.
//! For performance work (`NETSNAP_TIMINGS=1 netsnap analyze BUNDLE`): it shows which
//! stage a change moved, which end-to-end figures cannot.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("NETSNAP_TIMINGS").is_some())
}

/// Runs `f` and, when timings are on, reports how long it took and the process's
/// resident and peak resident memory afterwards.
pub fn stage<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let (start, cpu_start) = (Instant::now(), process_cpu_ms());
    let out = f();
    let (rss, peak) = memory_kib();
    eprintln!(
        "netsnap timings: {name:<12} {:>8.1} ms  cpu {:>8.1} ms  rss {:>7.1} MiB  peak {:>7.1} MiB",
        start.elapsed().as_secs_f64() * 1000.0,
        process_cpu_ms() - cpu_start,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    out
}

/// CPU time of every thread of the process so far, in ms (a stage's CPU beside its
/// wall shows how many cores it kept busy); zero where unavailable.
fn process_cpu_ms() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    match ok {
        true => t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6,
        false => 0.0,
    }
}

/// (VmRSS, VmHWM) in KiB from /proc/self/status; zeros where unavailable.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
