//! Test hooks, compiled only with the `test-hooks` feature (the end-to-end tests build
//! the binary with it; a release build has none). They let the tests change the node
//! between discovery and the netns captures (delete pods, kill their processes, start
//! a second collector), deterministically. Both stay inside the capture deadline.
//! - `NETSNAP_COLLECT_TEST_PAUSE_MS=N`: sleep N ms;
//! - `NETSNAP_COLLECT_TEST_GATE=DIR`: create `DIR/paused`, then wait until `DIR/go`
//!   exists.

use crate::deadline::Deadline;

#[cfg(feature = "test-hooks")]
pub(super) fn pause(deadline: &Deadline) {
    use std::path::PathBuf;
    use std::time::Duration;
    if let Some(ms) = std::env::var("NETSNAP_COLLECT_TEST_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms).min(deadline.remaining()));
    }
    if let Some(dir) = std::env::var_os("NETSNAP_COLLECT_TEST_GATE").map(PathBuf::from) {
        let _ = std::fs::write(dir.join("paused"), std::process::id().to_string());
        let go = dir.join("go");
        while !go.exists() && !deadline.expired() {
            std::thread::sleep(Duration::from_millis(10).min(deadline.remaining()));
        }
    }
}

/// Without the feature: nothing, and no environment is read.
#[cfg(not(feature = "test-hooks"))]
pub(super) fn pause(_deadline: &Deadline) {}
