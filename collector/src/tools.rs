//! Running node tools (iptables-save, nft, ipset, crictl) safely.
//!
//! - Tools are looked up only in fixed system directories under the host root, never
//!   through `PATH`, so a user's `PATH` cannot substitute a binary.
//! - Each run has a timeout; on expiry the whole process group is killed.
//! - Every live child is registered so that Ctrl-C/SIGTERM can kill them all.
//! - With `--host-root DIR` a tool runs chrooted into DIR, so that a host binary finds
//!   the host's own libraries and configuration (crictl.yaml …), unless DIR lacks the
//!   tool's interpreter (a test tree with a fake script): then it is exec'd directly.
//! - A child runs in the netns of the thread that spawns it.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where tools are looked for, in order, under the host root.
pub const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Stderr kept from a tool (for the reason in the manifest).
const STDERR_CAP: usize = 16 * 1024;

/// After a kill (or exit), how long to wait for the output readers to see EOF.
const READER_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{name} not found in {dirs} under {root}")]
    NotFound {
        name: String,
        dirs: String,
        root: String,
    },
    #[error("starting {path}: {source}")]
    Spawn { path: String, source: io::Error },
    #[error("{path} timed out after {secs:.1}s and was killed{stderr}", stderr = tail(stderr))]
    Timeout {
        path: String,
        secs: f64,
        stderr: String,
    },
    #[error("{path} exited with {status}{stderr}", stderr = tail(stderr))]
    Failed {
        path: String,
        status: String,
        stderr: String,
    },
    #[error("reading output of {path}: {source}")]
    Output { path: String, source: io::Error },
    #[error("{path}: output still open {secs:.1}s after the tool exited (a child of it holds it)")]
    OutputStuck { path: String, secs: f64 },
    #[error("capture is being interrupted")]
    Terminating,
}

fn tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        return String::new();
    }
    let last: Vec<&str> = s.lines().rev().take(3).collect();
    let joined: Vec<&str> = last.into_iter().rev().collect();
    format!(": {}", joined.join(" / "))
}

impl ToolError {
    /// Whether this looks like missing privileges (non-root capture).
    pub fn is_permission(&self) -> bool {
        match self {
            ToolError::Spawn { source, .. } | ToolError::Output { source, .. } => {
                crate::source::is_permission(source)
            }
            ToolError::Failed { stderr, .. } => {
                let s = stderr.to_ascii_lowercase();
                s.contains("permission denied") || s.contains("operation not permitted")
            }
            _ => false,
        }
    }

    /// The reason as recorded in the manifest.
    pub fn reason(&self) -> String {
        if self.is_permission() && !self.to_string().starts_with("permission denied") {
            format!("permission denied: {self}")
        } else {
            self.to_string()
        }
    }
}

/// A located tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    /// Path on this filesystem (`<root>/usr/sbin/nft`, symlinks resolved inside the
    /// root where possible).
    pub path: PathBuf,
    /// Path inside the host root (`/usr/sbin/nft`).
    pub inner: PathBuf,
    /// Host root to chroot into before exec, when the tool should run there.
    pub chroot: Option<PathBuf>,
}

/// Looks up tools under a host root.
#[derive(Debug, Clone)]
pub struct Tools {
    root: PathBuf,
}

impl Tools {
    pub fn new(root: impl Into<PathBuf>) -> Tools {
        Tools { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn is_host_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The first executable `name` in [`TOOL_DIRS`] under the root.
    pub fn find(&self, name: &str) -> Result<Tool, ToolError> {
        for dir in TOOL_DIRS {
            let inner = Path::new(dir).join(name);
            let path = host_path(&self.root, &inner);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                continue;
            }
            let chroot = if self.is_host_root() || !crate::procfs::is_root() {
                None
            } else if interpreter_available(&self.root, &path) {
                Some(self.root.clone())
            } else {
                None
            };
            return Ok(Tool {
                name: name.to_string(),
                path,
                inner,
                chroot,
            });
        }
        Err(ToolError::NotFound {
            name: name.to_string(),
            dirs: TOOL_DIRS.join(", "),
            root: self.root.display().to_string(),
        })
    }
}

/// `root` + absolute `inner`, without resolving anything.
pub fn join_root(root: &Path, inner: &Path) -> PathBuf {
    let rel = inner.strip_prefix("/").unwrap_or(inner);
    root.join(rel)
}

/// Resolves `inner` inside `root` the way a process chrooted there would: absolute
/// symlink targets are taken relative to `root` (a node's `/etc/resolv.conf` or
/// `/usr/sbin/iptables-save` are often absolute symlinks, which would otherwise be
/// followed into the collector's own filesystem).
pub fn resolve_in_root(root: &Path, inner: &Path) -> io::Result<PathBuf> {
    use std::collections::VecDeque;
    use std::path::Component;
    let mut todo: VecDeque<std::ffi::OsString> = inner
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut cur: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&cur);
        here.push(&c);
        let meta = std::fs::symlink_metadata(&here)?;
        if !meta.file_type().is_symlink() {
            cur.push(c);
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = std::fs::read_link(&here)?;
        if target.is_absolute() {
            cur.clear();
        }
        for (i, t) in target
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .enumerate()
        {
            todo.insert(i, t);
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&cur);
    Ok(out)
}

/// A host file's path on this filesystem: resolved inside the host root when that
/// works, else the plain join (a test tree whose symlinks point at the real system).
pub fn host_path(root: &Path, inner: &Path) -> PathBuf {
    if root == Path::new("/") {
        return inner.to_path_buf();
    }
    resolve_in_root(root, inner).unwrap_or_else(|_| join_root(root, inner))
}

/// Whether the program's interpreter (script `#!` line or ELF `PT_INTERP`) exists
/// inside `root`; a static binary needs none.
fn interpreter_available(root: &Path, program: &Path) -> bool {
    match interpreter_of(program) {
        Ok(Some(interp)) => resolve_in_root(root, &interp).is_ok_and(|p| p.exists()),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The interpreter a program needs: `#!` line or the ELF64 `PT_INTERP` segment.
pub fn interpreter_of(program: &Path) -> io::Result<Option<PathBuf>> {
    let mut head = Vec::new();
    File::open(program)?
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        return Ok(line.split_whitespace().next().map(PathBuf::from));
    }
    Ok(elf_interp(&head).map(PathBuf::from))
}

fn elf_interp(b: &[u8]) -> Option<String> {
    // 64-bit little-endian ELF only; anything else is treated as needing nothing.
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
    };
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != 3 {
            continue; // not PT_INTERP
        }
        let off = usize::try_from(u64_at(ph + 8)?).ok()?;
        let len = usize::try_from(u64_at(ph + 0x20)?).ok()?;
        let s = b.get(off..off.checked_add(len)?)?;
        let s = s.split(|&c| c == 0).next().unwrap_or_default();
        return Some(String::from_utf8_lossy(s).into_owned());
    }
    None
}

/// Result of a successful run (exit status 0 or not).
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stderr: String,
    pub stdout_bytes: u64,
    pub duration: Duration,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Live children (process group ids), for the signal handler.
struct Registry {
    terminating: bool,
    pgids: Vec<i32>,
}

static CHILDREN: Mutex<Registry> = Mutex::new(Registry {
    terminating: false,
    pgids: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding this lock cannot leave it inconsistent: recover.
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills every running tool (whole process groups) and refuses new ones. Called on
/// Ctrl-C/SIGTERM.
pub fn kill_all_children() {
    let mut reg = registry();
    reg.terminating = true;
    for &pgid in &reg.pgids {
        // SAFETY: plain syscall; a stale pgid at worst yields ESRCH.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

struct Registered(i32);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().pgids.retain(|&p| p != self.0);
    }
}

/// Spawns under the registry lock so that a concurrent signal either sees the child
/// registered or prevents the spawn.
fn spawn_registered(cmd: &mut Command, path: &str) -> Result<(Child, Registered), ToolError> {
    let mut reg = registry();
    if reg.terminating {
        return Err(ToolError::Terminating);
    }
    let child = cmd.spawn().map_err(|source| ToolError::Spawn {
        path: path.to_string(),
        source,
    })?;
    let pgid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    reg.pgids.push(pgid);
    Ok((child, Registered(pgid)))
}

impl Tool {
    fn command(&self, args: &[&str]) -> Result<Command, ToolError> {
        let program = if self.chroot.is_some() {
            &self.inner
        } else {
            &self.path
        };
        let mut cmd = Command::new(program);
        // Multi-call binaries (xtables-nft-multi) dispatch on argv[0]: keep the tool's
        // name even when its symlink was resolved.
        cmd.arg0(&self.name);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a timeout kills the tool and anything it started.
            .process_group(0);
        if let Some(root) = &self.chroot {
            let root = CString::new(root.as_os_str().as_bytes()).map_err(|_| ToolError::Spawn {
                path: self.path.display().to_string(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "NUL in --host-root"),
            })?;
            // SAFETY: only async-signal-safe syscalls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        Ok(cmd)
    }

    /// Runs the tool with `args`, streaming stdout into `sink`, killing it after
    /// `timeout`. Returns the sink back in every case where it is still usable.
    pub fn run<W: Write + Send + 'static>(
        &self,
        args: &[&str],
        timeout: Duration,
        sink: W,
    ) -> (Result<RunOutput, ToolError>, Option<W>) {
        let started = Instant::now();
        let display = self.path.display().to_string();
        let mut cmd = match self.command(args) {
            Ok(c) => c,
            Err(e) => return (Err(e), Some(sink)),
        };
        let (mut child, _registered) = match spawn_registered(&mut cmd, &display) {
            Ok(c) => c,
            Err(e) => return (Err(e), Some(sink)),
        };
        let (out_tx, out_rx) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        if let Some(mut stdout) = child.stdout.take() {
            let mut sink = sink;
            std::thread::spawn(move || {
                let r = io::copy(&mut stdout, &mut sink).and_then(|n| sink.flush().map(|_| n));
                let _ = out_tx.send((r, sink));
            });
        }
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = STDERR_CAP.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
                let _ = err_tx.send(String::from_utf8_lossy(&kept).into_owned());
            });
        }

        let end = started + timeout;
        let mut pause = Duration::from_millis(2);
        let (status, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(st)) => break (Some(st), false),
                Ok(None) => {}
                Err(_) => break (None, false),
            }
            let now = Instant::now();
            if now >= end {
                kill_group(&mut child);
                break (child.wait().ok(), true);
            }
            std::thread::sleep(pause.min(end - now));
            pause = (pause * 2).min(Duration::from_millis(25));
        };
        // Whatever happened, nothing of the group may outlive this call.
        if !timed_out {
            kill_group(&mut child);
        }
        let grace = Instant::now() + READER_GRACE;
        let wait = |deadline: Instant| deadline.saturating_duration_since(Instant::now());
        let stdout = out_rx.recv_timeout(wait(grace)).ok();
        let stderr = err_rx.recv_timeout(wait(grace)).unwrap_or_default();
        let secs = started.elapsed().as_secs_f64();

        let Some((copy, sink)) = stdout else {
            return (
                Err(ToolError::OutputStuck {
                    path: display,
                    secs,
                }),
                None,
            );
        };
        if timed_out {
            return (
                Err(ToolError::Timeout {
                    path: display,
                    secs,
                    stderr,
                }),
                Some(sink),
            );
        }
        let Some(status) = status else {
            return (
                Err(ToolError::Output {
                    path: display,
                    source: io::Error::other("lost track of the child"),
                }),
                Some(sink),
            );
        };
        match copy {
            Ok(n) => (
                Ok(RunOutput {
                    status,
                    stderr,
                    stdout_bytes: n,
                    duration: started.elapsed(),
                }),
                Some(sink),
            ),
            Err(source) => (
                Err(ToolError::Output {
                    path: display,
                    source,
                }),
                Some(sink),
            ),
        }
    }

    /// Runs the tool and collects stdout in memory (small outputs: versions, lists).
    pub fn run_capture(
        &self,
        args: &[&str],
        timeout: Duration,
    ) -> Result<(RunOutput, Vec<u8>), ToolError> {
        let (r, sink) = self.run(args, timeout, Vec::new());
        let out = r?;
        Ok((out, sink.unwrap_or_default()))
    }
}

/// SIGKILL to the child's process group (it leads its own group).
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: plain syscall on a group we created.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Converts a non-zero exit into an error carrying stderr.
pub fn check_status(tool: &Tool, out: &RunOutput) -> Result<(), ToolError> {
    if out.success() {
        return Ok(());
    }
    Err(ToolError::Failed {
        path: tool.path.display().to_string(),
        status: out.status.to_string(),
        stderr: out.stderr.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_tool(root: &Path, name: &str, script: &str) {
        let dir = root.join("usr/sbin");
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn finds_tools_only_in_fixed_dirs() {
        let t = tempfile::tempdir().unwrap();
        fake_tool(t.path(), "hello", "echo hi");
        // Not executable: ignored.
        fs::create_dir_all(t.path().join("bin")).unwrap();
        fs::write(t.path().join("bin/noexec"), "x").unwrap();
        // In a directory that is not a system dir: ignored.
        fs::create_dir_all(t.path().join("opt/bin")).unwrap();
        fs::write(t.path().join("opt/bin/other"), "x").unwrap();
        let tools = Tools::new(t.path());
        let hello = tools.find("hello").unwrap();
        assert_eq!(hello.inner, Path::new("/usr/sbin/hello"));
        // The fake tree has no /bin/sh: the script must run unchrooted.
        assert_eq!(hello.chroot, None);
        assert!(matches!(
            tools.find("noexec"),
            Err(ToolError::NotFound { .. })
        ));
        assert!(matches!(
            tools.find("other"),
            Err(ToolError::NotFound { .. })
        ));
    }

    #[test]
    fn runs_and_captures_output_and_stderr() {
        let t = tempfile::tempdir().unwrap();
        fake_tool(
            t.path(),
            "talk",
            "echo \"out $1\"; echo \"PATH=$PATH\"; echo oops >&2; exit 3",
        );
        let tool = Tools::new(t.path()).find("talk").unwrap();
        let (out, stdout) = tool.run_capture(&["x"], Duration::from_secs(5)).unwrap();
        let text = String::from_utf8(stdout).unwrap();
        assert!(text.starts_with("out x\n"));
        assert!(text.contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stderr.trim(), "oops");
        let err = check_status(&tool, &out).unwrap_err().to_string();
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let t = tempfile::tempdir().unwrap();
        let pidfile = t.path().join("child.pid");
        // The tool starts a grandchild that would hold stdout open, then hangs.
        fake_tool(
            t.path(),
            "hang",
            &format!(
                "sleep 300 & echo $! > {}; echo started; sleep 300",
                pidfile.display()
            ),
        );
        let tool = Tools::new(t.path()).find("hang").unwrap();
        let started = Instant::now();
        let (r, sink) = tool.run(&[], Duration::from_millis(500), Vec::new());
        let elapsed = started.elapsed();
        assert!(matches!(r, Err(ToolError::Timeout { .. })), "{r:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert_eq!(sink.unwrap(), b"started\n");
        let pid: i32 = fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild is gone (or a zombie reaped by init shortly).
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = !state.is_empty() && !state.contains(") Z");
            if !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "grandchild {pid} survived: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("usr/sbin")).unwrap();
        fs::create_dir_all(r.join("etc/alternatives")).unwrap();
        fs::create_dir_all(r.join("run/systemd")).unwrap();
        fs::write(r.join("usr/sbin/xtables-nft-multi"), "x").unwrap();
        symlink(
            "/usr/sbin/xtables-nft-multi",
            r.join("etc/alternatives/iptables-save"),
        )
        .unwrap();
        symlink(
            "/etc/alternatives/iptables-save",
            r.join("usr/sbin/iptables-save"),
        )
        .unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/usr/sbin/iptables-save")).unwrap(),
            r.join("usr/sbin/xtables-nft-multi")
        );
        fs::write(r.join("run/systemd/resolv.conf"), "nameserver 1.1.1.1").unwrap();
        symlink("../run/systemd/resolv.conf", r.join("etc/resolv.conf")).unwrap();
        assert_eq!(
            host_path(r, Path::new("/etc/resolv.conf")),
            r.join("run/systemd/resolv.conf")
        );
        // A link to itself (a test tree pointing at the real system): plain join.
        symlink("/usr/sbin/loop", r.join("usr/sbin/loop")).unwrap();
        assert!(resolve_in_root(r, Path::new("/usr/sbin/loop")).is_err());
        assert_eq!(
            host_path(r, Path::new("/usr/sbin/loop")),
            r.join("usr/sbin/loop")
        );
        // `..` never escapes the root.
        assert_eq!(
            resolve_in_root(r, Path::new("/../../etc")).unwrap(),
            r.join("etc")
        );
    }

    #[test]
    fn multi_call_binaries_see_their_name() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        fake_tool(t.path(), "multi", "true");
        symlink("/usr/sbin/multi", t.path().join("usr/sbin/alias")).unwrap();
        let tool = Tools::new(t.path()).find("alias").unwrap();
        assert_eq!(tool.path, t.path().join("usr/sbin/multi"));
        // `sh -c 'echo $0'` prints its own argv[0].
        symlink("/bin/sh", t.path().join("usr/sbin/shell")).unwrap();
        let tool = Tools::new(t.path()).find("shell").unwrap();
        let (_, out) = tool
            .run_capture(&["-c", "echo $0"], Duration::from_secs(5))
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim(), "shell");
    }

    #[test]
    fn elf_interpreter_is_read() {
        // The test binary itself is a dynamically linked ELF (gnu target).
        let exe = std::env::current_exe().unwrap();
        if let Ok(Some(interp)) = interpreter_of(&exe) {
            assert!(interp.to_string_lossy().contains("ld"), "{interp:?}");
        }
        let t = tempfile::tempdir().unwrap();
        fake_tool(t.path(), "s", "true");
        assert_eq!(
            interpreter_of(&t.path().join("usr/sbin/s")).unwrap(),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(elf_interp(b"\x7fELF"), None);
        assert_eq!(elf_interp(&[0u8; 100]), None);
    }
}
