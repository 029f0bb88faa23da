//! System access: namespaces, netlink, tools, kernel and host files.
//!
//! The capture stages and sources reach the node through the narrow [`Sys`] trait
//! wherever their behaviour (deadline, partial, skip) is worth testing without root:
//! run something in a netns, an rtnetlink dump, run a tool with a deadline, read a
//! host file or directory, ask whether a kernel module is present. [`RealSys`] is the
//! node; `fake::FakeSys` (tests only) is a scripted one. The host root is a value
//! of [`RealSys`], passed down, never a process-wide global.
//!
//! The modules below are the implementations: [`netns_thread`] (fresh threads that
//! `setns`), [`netlink`] (rtnetlink dumps), [`nldump`] (raw netlink dumps),
//! [`tools`] (node tools), [`procfs`] (bounded reads of kernel files).

#[cfg(test)]
pub mod fake;
pub mod netlink;
pub mod netns_thread;
pub mod nldump;
pub mod procfs;
pub mod tools;

use netlink::{Conn, Dump, NetlinkError};
use netns_thread::{NetnsError, NetnsTarget};
use netsnap_schema::model::{Addr, FdbEntry, Link, Neigh, Route, Rule};
use netsnap_schema::Spool;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tools::{RunOutput, Tool, ToolError, Tools};

/// Work run on a fresh thread switched into a netns; it receives the switch's outcome.
pub type NetnsWork = Box<dyn FnOnce(Result<(), NetnsError>) + Send + 'static>;

/// What a tool run gives back: its outcome and the spool, when still usable.
pub type ToolRun = (Result<RunOutput, ToolError>, Option<Spool>);

/// One entry of a host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDirEntry {
    pub name: String,
    /// Path on this filesystem, symlinks resolved inside the host root.
    pub path: PathBuf,
    /// A regular file (after resolving a symlink inside the host root).
    pub is_file: bool,
    /// A symlink that leaves the host root or cannot be resolved: never read.
    pub refused: Option<String>,
}

/// Everything the capture needs from the node that its tests replace.
pub trait Sys: Send + Sync {
    /// The host filesystem (`--host-root`).
    fn host_root(&self) -> &Path;
    /// Runs `work` on a fresh OS thread switched into `target`.
    fn spawn_in_netns(&self, name: String, target: &NetnsTarget, work: NetnsWork)
        -> io::Result<()>;
    /// An rtnetlink session of the calling thread's netns.
    fn rtnetlink(&self) -> Result<Box<dyn Rtnl>, NetlinkError>;
    /// A node tool, looked up under the host root.
    fn find_tool(&self, name: &str) -> Result<Tool, ToolError>;
    /// Runs `tool` with a deadline, streaming its stdout into `spool`.
    fn run_tool(&self, tool: &Tool, args: &[&str], timeout: Duration, spool: Spool) -> ToolRun;
    /// Runs `tool` with a deadline, its stdout held in memory (capped).
    fn run_tool_capture(
        &self,
        tool: &Tool,
        args: &[&str],
        timeout: Duration,
    ) -> Result<(RunOutput, Vec<u8>), ToolError>;
    /// At most `cap` bytes of a host file (path inside the host root; symlinks are
    /// resolved inside it, never out of it).
    fn read_host_file(&self, inner: &Path, cap: u64) -> io::Result<Vec<u8>>;
    /// The entries of a host directory (path inside the host root), sorted by name.
    fn read_host_dir(&self, inner: &Path) -> io::Result<Vec<HostDirEntry>>;
    /// Whether a kernel feature can be used without loading a module.
    fn module_present(&self, name: &str) -> bool;
}

/// rtnetlink dumps of one netns, on the thread that opened the session.
pub trait Rtnl {
    fn links(&mut self, timeout: Duration) -> Result<Dump<Link>, NetlinkError>;
    fn addrs(&mut self, timeout: Duration) -> Result<Dump<Addr>, NetlinkError>;
    fn routes(&mut self, timeout: Duration) -> Result<Dump<Route>, NetlinkError>;
    fn rules(&mut self, timeout: Duration) -> Result<Dump<Rule>, NetlinkError>;
    fn neighbours(&mut self, timeout: Duration) -> Result<Dump<Neigh>, NetlinkError>;
    fn fdb(&mut self, timeout: Duration) -> Result<Dump<FdbEntry>, NetlinkError>;
    /// The nsid of `target` as seen from this netns; `Err` when it cannot be asked.
    fn nsid_of(&mut self, target: &NetnsTarget, timeout: Duration) -> Result<Option<i32>, String>;
}

/// The node.
#[derive(Debug, Clone)]
pub struct RealSys {
    host_root: PathBuf,
    tools: Tools,
}

impl RealSys {
    pub fn new(host_root: PathBuf) -> RealSys {
        RealSys {
            tools: Tools::new(host_root.clone()),
            host_root,
        }
    }

    pub fn tools(&self) -> &Tools {
        &self.tools
    }
}

impl Sys for RealSys {
    fn host_root(&self) -> &Path {
        &self.host_root
    }

    fn spawn_in_netns(
        &self,
        name: String,
        target: &NetnsTarget,
        work: NetnsWork,
    ) -> io::Result<()> {
        netns_thread::spawn_in(name, target.clone(), work).map(|_| ())
    }

    fn rtnetlink(&self) -> Result<Box<dyn Rtnl>, NetlinkError> {
        let rt = netlink::runtime()?;
        // The connection task is spawned on this runtime: open inside it.
        let conn = rt.block_on(async { Conn::open() })?;
        Ok(Box::new(RealRtnl { rt, conn }))
    }

    fn find_tool(&self, name: &str) -> Result<Tool, ToolError> {
        self.tools.find(name)
    }

    fn run_tool(&self, tool: &Tool, args: &[&str], timeout: Duration, spool: Spool) -> ToolRun {
        tool.run(args, timeout, spool)
    }

    fn run_tool_capture(
        &self,
        tool: &Tool,
        args: &[&str],
        timeout: Duration,
    ) -> Result<(RunOutput, Vec<u8>), ToolError> {
        tool.run_capture(args, timeout)
    }

    fn read_host_file(&self, inner: &Path, cap: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        // Strictly inside the host root (no fallback to a plain join), and a symlink
        // swapped in after the resolution is not followed.
        let path = tools::resolve_in_root(&self.host_root, inner)?;
        let mut buf = Vec::new();
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?
            .take(cap)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn read_host_dir(&self, inner: &Path) -> io::Result<Vec<HostDirEntry>> {
        let dir = tools::host_path(&self.host_root, inner);
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            out.push(host_dir_entry(&self.host_root, inner, &e, name));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn module_present(&self, name: &str) -> bool {
        procfs::module_present(name, &self.host_root)
    }
}

/// One directory entry; a symlink is followed only inside the host root.
fn host_dir_entry(root: &Path, inner: &Path, e: &std::fs::DirEntry, name: String) -> HostDirEntry {
    let mut entry = HostDirEntry {
        name,
        path: e.path(),
        is_file: false,
        refused: None,
    };
    let Ok(ft) = e.file_type() else {
        return entry;
    };
    if !ft.is_symlink() {
        entry.is_file = ft.is_file();
        return entry;
    }
    match tools::resolve_in_root(root, &inner.join(&entry.name)) {
        Ok(p) if p.starts_with(root) => {
            entry.is_file = std::fs::metadata(&p).is_ok_and(|m| m.is_file());
            entry.path = p;
        }
        Ok(p) => entry.refused = Some(format!("symlink leaves the host root ({})", p.display())),
        Err(err) => entry.refused = Some(format!("symlink cannot be resolved: {err}")),
    }
    entry
}

struct RealRtnl {
    rt: tokio::runtime::Runtime,
    conn: Conn,
}

impl Rtnl for RealRtnl {
    fn links(&mut self, timeout: Duration) -> Result<Dump<Link>, NetlinkError> {
        self.rt
            .block_on(netlink::links::dump(&mut self.conn, timeout))
    }
    fn addrs(&mut self, timeout: Duration) -> Result<Dump<Addr>, NetlinkError> {
        self.rt
            .block_on(netlink::addrs::dump(&mut self.conn, timeout))
    }
    fn routes(&mut self, timeout: Duration) -> Result<Dump<Route>, NetlinkError> {
        self.rt
            .block_on(netlink::routes::dump_routes(&mut self.conn, timeout))
    }
    fn rules(&mut self, timeout: Duration) -> Result<Dump<Rule>, NetlinkError> {
        self.rt
            .block_on(netlink::routes::dump_rules(&mut self.conn, timeout))
    }
    fn neighbours(&mut self, timeout: Duration) -> Result<Dump<Neigh>, NetlinkError> {
        self.rt
            .block_on(netlink::neigh::dump_neighbours(&mut self.conn, timeout))
    }
    fn fdb(&mut self, timeout: Duration) -> Result<Dump<FdbEntry>, NetlinkError> {
        self.rt
            .block_on(netlink::neigh::dump_fdb(&mut self.conn, timeout))
    }
    fn nsid_of(&mut self, target: &NetnsTarget, timeout: Duration) -> Result<Option<i32>, String> {
        // Identity-checked open: a reused path must not map to the wrong netns.
        let f = netns_thread::open_checked(target).map_err(|e| e.to_string())?;
        self.rt
            .block_on(netlink::nsid::nsid_of(&mut self.conn, &f, timeout))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn host_directories_follow_symlinks_only_inside_the_host_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("host");
        let dir = root.join("etc/cni/net.d");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("10-a.conf"), b"a").unwrap();
        std::fs::write(root.join("etc/shared.conf"), b"shared").unwrap();
        let outside = t.path().join("outside.conf");
        std::fs::write(&outside, b"secret").unwrap();
        symlink("/etc/shared.conf", dir.join("20-abs.conf")).unwrap();
        symlink("../../shared.conf", dir.join("30-rel.conf")).unwrap();
        symlink(&outside, dir.join("40-out.conf")).unwrap();
        let sys = RealSys::new(root.clone());
        let entries = sys.read_host_dir(Path::new("/etc/cni/net.d")).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "10-a.conf",
                "20-abs.conf",
                "30-rel.conf",
                "40-out.conf",
                "sub"
            ]
        );
        let by = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
        assert!(by("10-a.conf").is_file && by("10-a.conf").refused.is_none());
        for link in ["20-abs.conf", "30-rel.conf"] {
            assert!(by(link).is_file, "{link}");
            assert_eq!(by(link).path, root.join("etc/shared.conf"));
        }
        // An absolute target is read inside the host root, where it does not exist.
        assert!(!by("40-out.conf").is_file);
        assert!(by("40-out.conf").refused.is_some());
        assert!(!by("sub").is_file);
        let read = sys.read_host_file(Path::new("/etc/cni/net.d/20-abs.conf"), 3);
        assert_eq!(read.unwrap(), b"sha");
        let out = sys.read_host_file(Path::new("/etc/cni/net.d/40-out.conf"), 100);
        assert_eq!(out.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
