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

/// The cargo target directory the tests were built in (the first directory above the
/// test executable with a `CACHEDIR.TAG`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The static collector for `target` (a musl triple) in the `static-test` profile,
/// built once per target directory by `scripts/build-static` (cargo's cache makes
/// later calls a no-op); panics with the script's output when the build fails.
/// Builds are one at a time: two tests adding the same rustup target at once make
/// rustup fail with a file conflict (seen on a fresh machine).
pub fn static_collector(target: &str) -> PathBuf {
    static ONE_BUILD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A build that panicked poisons the lock; the next one may still succeed.
    let _building = ONE_BUILD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let out = std::process::Command::new(workspace().join("scripts/build-static"))
        .args(["--target", target, "--profile", "static-test"])
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run scripts/build-static");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/build-static --target {target} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target_dir()
        .join(target)
        .join("static-test/netsnap-collect");
    assert!(bin.is_file(), "{} not built:\n{stdout}", bin.display());
    bin
}

/// An ELF executable's machine (`e_machine`) and whether it asks for an interpreter
/// (a `PT_INTERP` program header: dynamically linked).
pub fn elf_machine_and_interp(bytes: &[u8]) -> Option<(u16, bool)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    // 64-bit little-endian ELF only.
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let machine = u16_at(18)?;
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let (phentsize, phnum) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    const PT_INTERP: u32 = 3;
    let mut interp = false;
    for i in 0..phnum {
        interp |= u32_at(phoff + i * phentsize)? == PT_INTERP;
    }
    Some((machine, interp))
}
