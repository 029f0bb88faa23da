//! Network namespace discovery: bind mounts under `/run/netns` and `/var/run/netns`,
//! container runtime netns directories, and every `/proc/<pid>/ns/net`, deduplicated by
//! (dev, inode) — the only identity a netns has.

use crate::sys::netns_thread::NetnsTarget;
use crate::sys::tools::host_path;
use netsnap_schema::model::{Discovery, InaccessibleProcess};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `statfs` magic of nsfs: a file in /run/netns that is not one is a stale leftover.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Pids kept per netns in the index.
pub const MAX_PIDS: usize = 32;

/// Directories where tools and runtimes bind-mount netns files.
const RUN_NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];
const RUNTIME_NETNS_DIRS: [&str; 2] = ["/run/docker/netns", "/var/run/docker/netns"];

/// One network namespace found on the node.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Stable id used in bundle paths.
    pub id: String,
    /// Path to open it by, and its identity.
    pub target: NetnsTarget,
    pub is_root: bool,
    pub found_by: Vec<Discovery>,
    /// All pids found in it, sorted.
    pub pids: Vec<u32>,
}

/// Inaccessible processes recorded one by one (the rest are counted).
pub const MAX_INACCESSIBLE: usize = 64;

#[derive(Debug, Default)]
pub struct Discovered {
    pub candidates: Vec<Candidate>,
    /// Processes whose netns could not be inspected (non-root).
    pub inaccessible_pids: u64,
    /// The first [`MAX_INACCESSIBLE`] of them, with their cgroup.
    pub inaccessible: Vec<InaccessibleProcess>,
    pub errors: Vec<String>,
}

struct Entry {
    dev: u64,
    ino: u64,
    found_by: Vec<Discovery>,
    /// (preference, path): lower is better.
    paths: Vec<(u8, PathBuf)>,
    pids: Vec<u32>,
    run_name: Option<String>,
}

// The field's type differs between glibc (i64) and musl (u64).
#[allow(clippy::unnecessary_cast)]
fn is_nsfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Discovers every netns. `node` is the netns treated as the node; it becomes `root`.
pub fn discover(host_root: &Path, node: &NetnsTarget) -> Discovered {
    discover_in(host_root, Path::new("/proc"), node)
}

pub fn discover_in(host_root: &Path, proc_root: &Path, node: &NetnsTarget) -> Discovered {
    let mut out = Discovered::default();
    let mut seen = Seen::default();
    seen.add(Sighting {
        dev: node.dev,
        ino: node.ino,
        how: Discovery::Node {
            path: node.path.display().to_string(),
        },
        pref: 0,
        path: node.path.clone(),
        pid: None,
        name: None,
    });
    scan_netns_dirs(host_root, &mut seen, &mut out);
    scan_proc(proc_root, &mut seen, &mut out);
    out.candidates = candidates(seen, node);
    out
}

/// One way a netns was found.
struct Sighting {
    dev: u64,
    ino: u64,
    how: Discovery,
    /// Preference of `path` for opening the netns: lower is better.
    pref: u8,
    path: PathBuf,
    pid: Option<u32>,
    /// Name under /run/netns.
    name: Option<String>,
}

/// Every netns seen so far, by (dev, inode).
#[derive(Default)]
struct Seen {
    by_id: BTreeMap<(u64, u64), Entry>,
}

impl Seen {
    fn add(&mut self, s: Sighting) {
        let e = self.by_id.entry((s.dev, s.ino)).or_insert_with(|| Entry {
            dev: s.dev,
            ino: s.ino,
            found_by: Vec::new(),
            paths: Vec::new(),
            pids: Vec::new(),
            run_name: None,
        });
        if !e.found_by.contains(&s.how) {
            e.found_by.push(s.how);
        }
        e.paths.push((s.pref, s.path));
        if let Some(p) = s.pid {
            e.pids.push(p);
        }
        if e.run_name.is_none() {
            e.run_name = s.name;
        }
    }
}

/// Named netns (`/run/netns` …) and the container runtimes' directories.
fn scan_netns_dirs(host_root: &Path, seen: &mut Seen, out: &mut Discovered) {
    for (dirs, runtime) in [(RUN_NETNS_DIRS, false), (RUNTIME_NETNS_DIRS, true)] {
        for dir in dirs {
            let full = host_path(host_root, Path::new(dir));
            let rd = match fs::read_dir(&full) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    out.errors
                        .push(crate::source::io_reason(&full.display().to_string(), &e));
                    continue;
                }
            };
            for ent in rd.flatten() {
                let path = ent.path();
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                if !is_nsfs(&path) {
                    continue;
                }
                let shown = format!("{dir}/{}", ent.file_name().to_string_lossy());
                let (how, pref) = if runtime {
                    (Discovery::Runtime { path: shown }, 2)
                } else {
                    (Discovery::RunNetns { path: shown }, 1)
                };
                let name = (!runtime).then(|| ent.file_name().to_string_lossy().into_owned());
                seen.add(Sighting {
                    dev: meta.dev(),
                    ino: meta.ino(),
                    how,
                    pref,
                    path,
                    pid: None,
                    name,
                });
            }
        }
    }
}

/// The netns of every process.
fn scan_proc(proc_root: &Path, seen: &mut Seen, out: &mut Discovered) {
    let rd = match fs::read_dir(proc_root) {
        Ok(rd) => rd,
        Err(e) => {
            out.errors
                .push(crate::source::io_reason("listing /proc", &e));
            return;
        }
    };
    for ent in rd.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let path = proc_root.join(pid.to_string()).join("ns/net");
        match fs::metadata(&path) {
            Ok(meta) => seen.add(Sighting {
                dev: meta.dev(),
                ino: meta.ino(),
                how: Discovery::Proc { pid },
                pref: 3,
                path,
                pid: Some(pid),
                name: None,
            }),
            Err(e) if crate::source::is_permission(&e) => {
                out.inaccessible_pids += 1;
                if out.inaccessible.len() < MAX_INACCESSIBLE {
                    // The cgroup file stays readable: it says whether this is a pod.
                    let cgroup = proc_root.join(pid.to_string()).join("cgroup");
                    out.inaccessible.push(InaccessibleProcess {
                        pid,
                        cgroup: crate::sys::procfs::read_small(&cgroup)
                            .ok()
                            .map(|t| t.trim().to_string()),
                    });
                }
            }
            // Kernel threads have no netns link; processes exit while we look.
            Err(_) => {}
        }
    }
}

/// One candidate per netns seen: the node first, then by id (deterministic order for
/// the index).
fn candidates(seen: Seen, node: &NetnsTarget) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    used.insert("root".to_string());
    for (_, mut e) in seen.by_id {
        let is_root = (e.dev, e.ino) == (node.dev, node.ino);
        e.paths.sort();
        e.pids.sort_unstable();
        e.pids.dedup();
        // Proc discoveries: keep only a few in `found_by`, the pids list has them all.
        let mut procs = 0;
        e.found_by.sort();
        e.found_by.retain(|d| {
            if matches!(d, Discovery::Proc { .. }) {
                procs += 1;
                procs <= 4
            } else {
                true
            }
        });
        let id = if is_root {
            "root".to_string()
        } else {
            let wanted = e
                .run_name
                .as_deref()
                .filter(|n| is_safe_id(n))
                .map(str::to_string);
            match wanted {
                Some(n) if !used.contains(&n) => n,
                _ => format!("ino-{}", e.ino),
            }
        };
        used.insert(id.clone());
        let Some((_, path)) = e.paths.into_iter().next() else {
            continue;
        };
        out.push(Candidate {
            id,
            target: NetnsTarget {
                path,
                dev: e.dev,
                ino: e.ino,
            },
            is_root,
            found_by: e.found_by,
            pids: e.pids,
        });
    }
    out.sort_by(|a, b| (!a.is_root, &a.id).cmp(&(!b.is_root, &b.id)));
    out
}

/// Ids become bundle path components: keep them boring.
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && !s.starts_with("ino-")
        && s != "root"
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids() {
        assert!(is_safe_id("cni-1234-abcd"));
        assert!(is_safe_id("lab_node.1"));
        assert!(!is_safe_id(""));
        assert!(!is_safe_id(".."));
        assert!(!is_safe_id("a/b"));
        assert!(!is_safe_id("root"));
        assert!(!is_safe_id("ino-5"));
        assert!(!is_safe_id("name with space"));
    }

    #[test]
    fn own_netns_is_found_via_proc_and_deduplicated() {
        let node = crate::sys::netns_thread::target_for(Path::new("/proc/self/ns/net")).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let d = discover(empty.path(), &node);
        let root = d.candidates.iter().find(|c| c.is_root).unwrap();
        assert_eq!(root.id, "root");
        assert_eq!(d.candidates[0].id, "root");
        assert!(root.pids.contains(&std::process::id()));
        assert!(root
            .found_by
            .iter()
            .any(|f| matches!(f, Discovery::Node { .. })));
        // Exactly one candidate per (dev, inode).
        let mut ids: Vec<(u64, u64)> = d
            .candidates
            .iter()
            .map(|c| (c.target.dev, c.target.ino))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn stale_files_in_run_netns_are_ignored() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("run/netns")).unwrap();
        fs::write(root.path().join("run/netns/stale"), "").unwrap();
        let node = crate::sys::netns_thread::target_for(Path::new("/proc/self/ns/net")).unwrap();
        let d = discover_in(root.path(), &root.path().join("noproc"), &node);
        assert_eq!(d.candidates.len(), 1);
        assert!(d.candidates[0].is_root);
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    }
}
