//! Shared by the deploy tests (the manifest's schema validation, the aarch64 build
//! under qemu): tools that scripts/test installs from a package registry, and the
//! workspace's files.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `tool` on PATH: true when found; else a visible skip (false), or a panic when
/// `NETSNAP_LAB=required` (CI), where scripts/test has installed it (`install`).
pub fn require_tool(tool: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    let required = matches!(
        std::env::var("NETSNAP_LAB").unwrap_or_default().as_str(),
        "required" | "1" | "yes" | "true"
    );
    let reason = format!("{tool} not found on PATH (scripts/test installs it: {install})");
    assert!(!required, "NETSNAP_LAB=required but {reason}");
    crate::notice(&format!("SKIPPED: {reason}"));
    false
}
