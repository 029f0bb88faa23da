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
    let start = Instant::now();
    let out = f();
    let (rss, peak) = memory_kib();
    eprintln!(
        "netsnap timings: {name:<12} {:>8.1} ms  rss {:>7.1} MiB  peak {:>7.1} MiB",
        start.elapsed().as_secs_f64() * 1000.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    out
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
