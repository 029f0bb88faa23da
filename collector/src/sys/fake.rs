//! A scripted [`Sys`] for unit tests: host files and directories from memory, tools
//! that print, fail or hang, rtnetlink dumps that fail or time out, threads that
//! "enter" a netns without any `setns`. Nothing here needs root.

use super::netlink::{Dump, NetlinkError};
use super::netns_thread::NetnsTarget;
use super::tools::{RunOutput, Tool, ToolError};
use super::{HostDirEntry, NetnsWork, Rtnl, Sys, ToolRun};
use netsnap_schema::model::{Addr, FdbEntry, Link, Neigh, Route, Rule};
use netsnap_schema::Spool;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// What a fake host path holds.
#[derive(Debug, Clone)]
enum FakeFile {
    Bytes(Vec<u8>),
    /// Reading fails with this errno.
    Error(i32),
    /// A symlink that leaves the host root.
    Refused(String),
    /// A directory entry that is not a regular file.
    Other,
}

/// A fake tool's behaviour.
#[derive(Debug, Clone, Default)]
pub struct FakeTool {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub exit_code: i32,
    /// How long the tool runs.
    pub runs_for: Duration,
    /// Keeps running past its timeout (a runner that failed to kill it).
    pub ignores_timeout: bool,
}

/// How a fake rtnetlink dump ends.
#[derive(Debug, Clone, Copy)]
pub enum FakeDump {
    /// The kernel answers with this errno.
    Kernel(i32),
    /// The kernel never answers: the dump times out.
    Hangs,
    /// The dump is flagged as interrupted (a concurrent change).
    Interrupted,
}

#[derive(Debug, Clone, Default)]
pub struct FakeSys {
    root: PathBuf,
    files: BTreeMap<PathBuf, FakeFile>,
    tools: HashMap<String, FakeTool>,
    /// Modules absent (every other one is present).
    absent_modules: HashSet<String>,
    /// Dumps by name (`links`, `rules` …) that do not succeed.
    dumps: HashMap<&'static str, FakeDump>,
    links: Vec<Link>,
}

impl FakeSys {
    pub fn host_file(mut self, path: &str, bytes: &[u8]) -> Self {
        self.files
            .insert(path.into(), FakeFile::Bytes(bytes.to_vec()));
        self
    }

    pub fn host_file_error(mut self, path: &str, errno: i32) -> Self {
        self.files.insert(path.into(), FakeFile::Error(errno));
        self
    }

    pub fn host_symlink_refused(mut self, path: &str, reason: &str) -> Self {
        self.files
            .insert(path.into(), FakeFile::Refused(reason.into()));
        self
    }

    /// A directory entry of `dir`: a file (empty) or something else.
    pub fn host_dir_entry(mut self, dir: &str, name: &str, is_file: bool) -> Self {
        let f = if is_file {
            FakeFile::Bytes(Vec::new())
        } else {
            FakeFile::Other
        };
        self.files.insert(Path::new(dir).join(name), f);
        self
    }

    pub fn tool(mut self, name: &str, tool: FakeTool) -> Self {
        self.tools.insert(name.into(), tool);
        self
    }

    pub fn module_absent(mut self, name: &str) -> Self {
        self.absent_modules.insert(name.into());
        self
    }

    pub fn dump(mut self, name: &'static str, how: FakeDump) -> Self {
        self.dumps.insert(name, how);
        self
    }

    pub fn links(mut self, links: Vec<Link>) -> Self {
        self.links = links;
        self
    }
}

impl Sys for FakeSys {
    fn host_root(&self) -> &Path {
        &self.root
    }

    fn spawn_in_netns(
        &self,
        name: String,
        _target: &NetnsTarget,
        work: NetnsWork,
    ) -> io::Result<()> {
        std::thread::Builder::new()
            .name(name)
            .spawn(move || work(Ok(())))
            .map(|_| ())
    }

    fn rtnetlink(&self) -> Result<Box<dyn Rtnl>, NetlinkError> {
        Ok(Box::new(FakeRtnl {
            dumps: self.dumps.clone(),
            links: self.links.clone(),
        }))
    }

    fn find_tool(&self, name: &str) -> Result<Tool, ToolError> {
        if !self.tools.contains_key(name) {
            return Err(ToolError::NotFound {
                name: name.into(),
                dirs: "/usr/sbin".into(),
                root: "/fake".into(),
            });
        }
        Ok(Tool {
            name: name.into(),
            path: Path::new("/fake/usr/sbin").join(name),
            inner: Path::new("/usr/sbin").join(name),
            chroot: None,
        })
    }

    fn run_tool(&self, tool: &Tool, _args: &[&str], timeout: Duration, spool: Spool) -> ToolRun {
        let mut spool = spool;
        match self.run(tool, timeout) {
            Ok((out, stdout)) => match spool.write_all(&stdout) {
                Ok(()) => (Ok(out), Some(spool)),
                Err(source) => (
                    Err(ToolError::Output {
                        path: tool.path.display().to_string(),
                        source,
                    }),
                    None,
                ),
            },
            Err(e) => (Err(e), Some(spool)),
        }
    }

    fn run_tool_capture(
        &self,
        tool: &Tool,
        _args: &[&str],
        timeout: Duration,
    ) -> Result<(RunOutput, Vec<u8>), ToolError> {
        self.run(tool, timeout)
    }

    fn read_host_file(&self, inner: &Path, cap: u64) -> io::Result<Vec<u8>> {
        match self.files.get(inner) {
            Some(FakeFile::Bytes(b)) => Ok(b.iter().take(cap as usize).copied().collect()),
            Some(FakeFile::Error(errno)) => Err(io::Error::from_raw_os_error(*errno)),
            Some(FakeFile::Refused(_)) | Some(FakeFile::Other) | None => {
                Err(io::Error::from_raw_os_error(libc::ENOENT))
            }
        }
    }

    fn read_host_dir(&self, inner: &Path) -> io::Result<Vec<HostDirEntry>> {
        let entries: Vec<HostDirEntry> = self
            .files
            .iter()
            .filter(|(p, _)| p.parent() == Some(inner))
            .map(|(p, f)| HostDirEntry {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path: p.clone(),
                is_file: matches!(f, FakeFile::Bytes(_) | FakeFile::Error(_)),
                refused: match f {
                    FakeFile::Refused(r) => Some(r.clone()),
                    _ => None,
                },
            })
            .collect();
        if entries.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(entries) // BTreeMap order: sorted by name
    }

    fn module_present(&self, name: &str) -> bool {
        !self.absent_modules.contains(name)
    }
}

impl FakeSys {
    fn run(&self, tool: &Tool, timeout: Duration) -> Result<(RunOutput, Vec<u8>), ToolError> {
        let Some(t) = self.tools.get(&tool.name) else {
            return Err(self
                .find_tool(&tool.name)
                .err()
                .unwrap_or(ToolError::Terminating));
        };
        let path = tool.path.display().to_string();
        let timed_out = t.runs_for > timeout;
        let sleep = if t.ignores_timeout {
            t.runs_for
        } else {
            t.runs_for.min(timeout)
        };
        std::thread::sleep(sleep);
        if timed_out {
            return Err(ToolError::Timeout {
                path,
                secs: timeout.as_secs_f64(),
                stderr: t.stderr.clone(),
            });
        }
        let out = RunOutput {
            status: ExitStatus::from_raw(t.exit_code << 8),
            stderr: t.stderr.clone(),
            stdout_bytes: t.stdout.len() as u64,
            duration: sleep,
        };
        Ok((out, t.stdout.clone()))
    }
}

struct FakeRtnl {
    dumps: HashMap<&'static str, FakeDump>,
    links: Vec<Link>,
}

impl FakeRtnl {
    fn dump<M>(
        &self,
        name: &str,
        timeout: Duration,
        messages: Vec<M>,
    ) -> Result<Dump<M>, NetlinkError> {
        let mut d = Dump {
            messages,
            ..Dump::default()
        };
        match self.dumps.get(name) {
            None => {}
            Some(FakeDump::Kernel(errno)) => return Err(NetlinkError::Kernel(-errno)),
            Some(FakeDump::Hangs) => {
                std::thread::sleep(timeout);
                return Err(NetlinkError::Timeout(timeout.as_secs_f64()));
            }
            Some(FakeDump::Interrupted) => d.interrupted = true,
        }
        Ok(d)
    }
}

impl Rtnl for FakeRtnl {
    fn links(&mut self, timeout: Duration) -> Result<Dump<Link>, NetlinkError> {
        self.dump("links", timeout, self.links.clone())
    }
    fn addrs(&mut self, timeout: Duration) -> Result<Dump<Addr>, NetlinkError> {
        self.dump("addrs", timeout, Vec::new())
    }
    fn routes(&mut self, timeout: Duration) -> Result<Dump<Route>, NetlinkError> {
        self.dump("routes", timeout, Vec::new())
    }
    fn rules(&mut self, timeout: Duration) -> Result<Dump<Rule>, NetlinkError> {
        self.dump("rules", timeout, Vec::new())
    }
    fn neighbours(&mut self, timeout: Duration) -> Result<Dump<Neigh>, NetlinkError> {
        self.dump("neighbours", timeout, Vec::new())
    }
    fn fdb(&mut self, timeout: Duration) -> Result<Dump<FdbEntry>, NetlinkError> {
        self.dump("fdb", timeout, Vec::new())
    }
    fn nsid_of(
        &mut self,
        _target: &NetnsTarget,
        _timeout: Duration,
    ) -> Result<Option<i32>, String> {
        Ok(None)
    }
}
