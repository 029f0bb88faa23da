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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where tools are looked for, in order, under the host root.
pub const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Stderr kept from a tool (for the reason in the manifest).
const STDERR_CAP: usize = 16 * 1024;

/// After a kill (or exit), how long to wait for the output readers to see EOF.
const READER_GRACE: Duration = Duration::from_secs(2);

/// Largest output of a tool streamed into the bundle (iptables saves, ipset): the
/// biggest real rulesets are ~100 MB; a tool printing garbage in a loop must not fill
/// the node's disk until its timeout.
pub const MAX_OUTPUT: u64 = 1 << 30;

/// Largest output collected in memory (versions, nft JSON, crictl): bounds the
/// collector's memory on a node that may already be short of it.
pub const MAX_CAPTURED_OUTPUT: u64 = 64 << 20;

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
    #[error("{path} printed more than {} MiB and was killed", .limit >> 20)]
    TooLarge { path: String, limit: u64 },
    #[error("capture is being interrupted")]
    Terminating,
}

/// Longest stderr excerpt kept in a reason (a tool printing garbage must not put
/// 16 KiB into every manifest record and summary line).
const REASON_STDERR_CHARS: usize = 512;

fn tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        return String::new();
    }
    let last: Vec<&str> = s.lines().rev().take(3).collect();
    let joined: Vec<&str> = last.into_iter().rev().collect();
    let joined = joined.join(" / ");
    let n = joined.chars().count();
    if n <= REASON_STDERR_CHARS {
        return format!(": {joined}");
    }
    // Keep the end: the last words of a tool usually say what went wrong.
    let kept: String = joined.chars().skip(n - REASON_STDERR_CHARS).collect();
    format!(": …{kept}")
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
            let chroot = if self.is_host_root() || !crate::sys::procfs::is_root() {
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
        let root =
            match &self.chroot {
                Some(root) => Some(CString::new(root.as_os_str().as_bytes()).map_err(|_| {
                    ToolError::Spawn {
                        path: self.path.display().to_string(),
                        source: io::Error::new(io::ErrorKind::InvalidInput, "NUL in --host-root"),
                    }
                })?),
                None => None,
            };
        // SAFETY: getpid(2) cannot fail.
        let parent = unsafe { libc::getpid() };
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // If the collector is SIGKILLed (or OOM-killed) nothing can kill the
                // group; the kernel then kills the tool when the thread that started
                // it dies (that thread always outlives a tool it waits for).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                if let Some(root) = &root {
                    if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// Runs the tool with `args`, streaming stdout into `sink`, killing it after
    /// `timeout` or once it printed more than [`MAX_OUTPUT`]. Returns the sink back
    /// in every case where it is still usable.
    pub fn run<W: Write + Send + 'static>(
        &self,
        args: &[&str],
        timeout: Duration,
        sink: W,
    ) -> (Result<RunOutput, ToolError>, Option<W>) {
        self.run_capped(args, timeout, sink, MAX_OUTPUT)
    }

    /// [`Tool::run`] with an output cap of `limit` bytes: what fits is written, then
    /// the tool is killed and [`ToolError::TooLarge`] returned with the sink.
    pub fn run_capped<W: Write + Send + 'static>(
        &self,
        args: &[&str],
        timeout: Duration,
        sink: W,
        limit: u64,
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
        let over = Arc::new(AtomicBool::new(false));
        if let Some(mut stdout) = child.stdout.take() {
            let mut sink = Capped {
                inner: sink,
                left: limit,
                over: Arc::clone(&over),
            };
            std::thread::spawn(move || {
                let r = io::copy(&mut stdout, &mut sink).and_then(|n| sink.flush().map(|_| n));
                let _ = out_tx.send((r, sink.inner));
            });
        }
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = err_tx.send(read_stderr(stderr));
            });
        }
        let (status, timed_out) = wait_or_kill(&mut child, started + timeout, &over);
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
        if over.load(Ordering::Relaxed) {
            return (
                Err(ToolError::TooLarge {
                    path: display,
                    limit,
                }),
                Some(sink),
            );
        }
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

    /// Runs the tool and collects stdout in memory (at most
    /// [`MAX_CAPTURED_OUTPUT`]: versions, lists, JSON documents).
    pub fn run_capture(
        &self,
        args: &[&str],
        timeout: Duration,
    ) -> Result<(RunOutput, Vec<u8>), ToolError> {
        let (r, sink) = self.run_capped(args, timeout, Vec::new(), MAX_CAPTURED_OUTPUT);
        let out = r?;
        Ok((out, sink.unwrap_or_default()))
    }
}

/// At most [`STDERR_CAP`] bytes of a tool's stderr (the rest is drained), with
/// control characters escaped: this text reaches the manifest and the user's terminal.
fn read_stderr(mut stderr: impl Read) -> String {
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
    crate::source::printable(&String::from_utf8_lossy(&kept))
}

/// Waits for the child until `end`, or until its output went over the cap (`over`);
/// kills its group then. Returns its exit status and whether it timed out.
fn wait_or_kill(child: &mut Child, end: Instant, over: &AtomicBool) -> (Option<ExitStatus>, bool) {
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), false),
            Ok(None) => {}
            Err(_) => return (None, false),
        }
        let now = Instant::now();
        if now >= end || over.load(Ordering::Relaxed) {
            kill_group(child);
            return (child.wait().ok(), now >= end);
        }
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// A sink that takes at most `left` more bytes, then fails and raises `over` (the
/// runner then kills the tool instead of waiting for its timeout).
struct Capped<W> {
    inner: W,
    left: u64,
    over: Arc<AtomicBool>,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            self.over.store(true, Ordering::Relaxed);
            return Err(io::Error::other("output cap reached"));
        }
        let n = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.write(&buf[..n])?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
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
    fn a_tool_dies_with_the_thread_that_started_it() {
        // Stands in for a SIGKILLed collector, which cannot kill its tools' groups.
        use std::os::unix::process::ExitStatusExt;
        let t = tempfile::tempdir().unwrap();
        fake_tool(t.path(), "linger", "exec sleep 300");
        let tool = Tools::new(t.path()).find("linger").unwrap();
        let mut child = std::thread::spawn(move || tool.command(&[]).unwrap().spawn().unwrap())
            .join()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the tool outlived the thread that started it");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }

    #[test]
    fn garbage_on_stderr_is_escaped_and_bounded() {
        let t = tempfile::tempdir().unwrap();
        fake_tool(
            t.path(),
            "noisy",
            "printf '\\033]0;owned\\007\\033[2J' >&2; head -c 20000 /dev/zero | tr '\\0' x >&2; exit 1",
        );
        let tool = Tools::new(t.path()).find("noisy").unwrap();
        let (out, _) = tool.run_capture(&[], Duration::from_secs(5)).unwrap();
        assert!(
            !out.stderr.chars().any(|c| c.is_control()),
            "{:?}",
            &out.stderr[..40]
        );
        assert!(
            out.stderr.starts_with("\\x1b]0;owned\\x07"),
            "{:?}",
            &out.stderr[..40]
        );
        let reason = check_status(&tool, &out).unwrap_err().reason();
        assert!(
            reason.chars().count() < 1024,
            "{} chars",
            reason.chars().count()
        );
        assert!(reason.ends_with("xxxx"), "{reason}");
    }

    #[test]
    fn endless_output_is_cut_at_the_cap_without_waiting_for_the_timeout() {
        let t = tempfile::tempdir().unwrap();
        fake_tool(t.path(), "spew", "exec yes garbage");
        let tool = Tools::new(t.path()).find("spew").unwrap();
        let started = Instant::now();
        let (r, sink) = tool.run_capped(&[], Duration::from_secs(30), Vec::new(), 1 << 20);
        assert!(matches!(r, Err(ToolError::TooLarge { .. })), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(sink.unwrap().len(), 1 << 20);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("more than 1 MiB"), "{e}");
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
