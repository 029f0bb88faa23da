//! Small helpers for reading kernel text files safely (bounded, line-capped).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// `/proc/thread-self/net/<rel>`: after `setns` only the calling thread is in the
/// target netns, and `/proc/self/net` still follows the main thread.
pub fn thread_net(rel: &str) -> PathBuf {
    Path::new("/proc/thread-self/net").join(rel)
}

/// Reads at most `cap` bytes of a file as (lossy) UTF-8.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<String> {
    let mut buf = Vec::new();
    File::open(path)?.take(cap).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads a small file (sysctl, cgroup, comm …) and trims the final newline.
pub fn read_small(path: &Path) -> io::Result<String> {
    let s = read_capped(path, 64 * 1024)?;
    Ok(s.trim_end_matches('\n').to_string())
}

/// Outcome of copying a line-oriented file with a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCount {
    /// Lines written to the sink.
    pub kept: u64,
    /// Lines seen in total (the rest was counted, not kept).
    pub total: u64,
}

/// Copies `reader` to `sink` line by line: the first `header_lines` lines always, then
/// at most `max_lines` more; every line is counted. Memory stays at one line.
pub fn copy_lines_capped<R: Read, W: Write>(
    reader: R,
    sink: &mut W,
    header_lines: u64,
    max_lines: u64,
) -> io::Result<LineCount> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line = Vec::with_capacity(512);
    let (mut seen, mut kept) = (0u64, 0u64);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        seen += 1;
        if seen <= header_lines {
            sink.write_all(&line)?;
            continue;
        }
        if kept < max_lines {
            sink.write_all(&line)?;
            kept += 1;
        }
    }
    Ok(LineCount {
        kept,
        total: seen.saturating_sub(header_lines),
    })
}

/// Whether the kernel feature of module `name` can be used without making the kernel
/// load a module: it is loaded (`/sys/module/<name>`), or built in (listed in
/// `/lib/modules/<release>/modules.builtin`; built-ins without parameters have no
/// /sys/module entry), or the kernel cannot load modules at all (no /proc/modules),
/// so a request can only find the feature or fail. Checked before any request that
/// could trigger an autoload (nfnetlink subsystems, ctnetlink, ip_set).
/// `modules.builtin` is looked for in `/` and in `host_root`.
pub fn module_present(name: &str, host_root: &Path) -> bool {
    if Path::new("/sys/module").join(name).exists() || !Path::new("/proc/modules").exists() {
        return true;
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let rel = format!("lib/modules/{release}/modules.builtin");
    let extra = (host_root != Path::new("/")).then_some(host_root);
    std::iter::once(Path::new("/")).chain(extra).any(|root| {
        read_capped(&root.join(&rel), 4 << 20)
            .map(|list| builtin_lists(&list, name))
            .unwrap_or(false)
    })
}

/// `modules.builtin` lines are paths like `kernel/net/netfilter/nf_tables.ko`; module
/// names treat `-` and `_` alike.
pub fn builtin_lists(list: &str, name: &str) -> bool {
    let want = name.replace('-', "_");
    list.lines().any(|l| {
        l.rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".ko"))
            .is_some_and(|m| m.replace('-', "_") == want)
    })
}

/// Effective uid is 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list() {
        let list =
            "kernel/net/netfilter/nf_tables.ko\nkernel/net/netfilter/nf_conntrack_netlink.ko\n";
        assert!(builtin_lists(list, "nf_tables"));
        assert!(builtin_lists(list, "nf_conntrack_netlink"));
        assert!(!builtin_lists(list, "ip_set"));
        assert!(!builtin_lists(list, "nf_table"));
    }

    #[test]
    fn capped_copy_counts_everything() {
        let text = "h1\nh2\na\nb\nc\nd";
        let mut out = Vec::new();
        let n = copy_lines_capped(text.as_bytes(), &mut out, 2, 2).unwrap();
        assert_eq!(n, LineCount { kept: 2, total: 4 });
        assert_eq!(out, b"h1\nh2\na\nb\n");
        let mut out = Vec::new();
        let n = copy_lines_capped("".as_bytes(), &mut out, 1, 10).unwrap();
        assert_eq!(n, LineCount { kept: 0, total: 0 });
    }
}
