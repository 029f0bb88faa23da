//! Pod processes: the long-lived "pause" process of each pod, its listeners,
//! the kubepods cgroups that tie them to a pod UID, and the pod socket tables.

use super::cmd;
use super::model::Protocol;
use super::server::{self, Reply};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a freshly spawned process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut v);
    }
    v
}

pub fn random_hex(n_chars: usize) -> String {
    random_bytes(n_chars.div_ceil(2))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..n_chars]
        .to_string()
}

/// A random RFC 4122 version-4 UUID, like the API server assigns to pods.
pub fn random_uid() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The cgroup hierarchy the lab uses, and the lab's own subtree in it.
#[derive(Clone, Debug)]
pub struct Cgroups {
    /// Mount point of the hierarchy, e.g. `/sys/fs/cgroup/pids`.
    pub hierarchy: PathBuf,
    /// `<hierarchy>/netsnap-lab-<lab name>`, removed at teardown.
    pub lab_root: PathBuf,
}

/// The first usable hierarchy: cgroup v1 `pids` (moving a process there changes
/// no resource limit), else the v2 tree.
pub fn pick_hierarchy() -> Option<PathBuf> {
    [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("cgroup.procs").is_file())
}

impl Cgroups {
    pub fn for_lab(lab_name: &str) -> Result<Cgroups> {
        let hierarchy =
            pick_hierarchy().context("no writable cgroup hierarchy found under /sys/fs/cgroup")?;
        let lab_root = hierarchy.join(format!("netsnap-lab-{lab_name}"));
        Ok(Cgroups {
            hierarchy,
            lab_root,
        })
    }

    /// Directory of a pod's container, systemd-driver style:
    /// `…/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid with _>.slice/cri-containerd-<id>.scope`.
    pub fn pod_dir(&self, uid: &str, container_id: &str) -> PathBuf {
        let u = uid.replace('-', "_");
        self.lab_root
            .join("kubepods.slice")
            .join("kubepods-besteffort.slice")
            .join(format!("kubepods-besteffort-pod{u}.slice"))
            .join(format!("cri-containerd-{container_id}.scope"))
    }

    /// The path as `/proc/<pid>/cgroup` prints it.
    pub fn as_proc_path(&self, dir: &Path) -> String {
        format!(
            "/{}",
            dir.strip_prefix(&self.hierarchy).unwrap_or(dir).display()
        )
    }

    /// Every PID in the lab's subtree (all of them are processes the lab started
    /// or their children).
    pub fn pids(&self) -> Vec<u32> {
        let mut out = Vec::new();
        collect_pids(&self.lab_root, &mut out);
        out
    }

    /// Removes the subtree bottom-up; cgroup dirs vanish only once empty, so
    /// callers kill the processes first.
    pub fn remove(&self) -> Result<()> {
        if !self.lab_root.exists() {
            return Ok(());
        }
        cmd::poll(
            Duration::from_secs(10),
            "lab cgroups to become removable",
            || {
                let mut dirs = Vec::new();
                collect_dirs(&self.lab_root, &mut dirs);
                // Deepest first.
                dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
                let mut busy = false;
                for d in dirs {
                    if fs::remove_dir(&d).is_err() && d.exists() {
                        busy = true;
                    }
                }
                Ok((!busy).then_some(()))
            },
        )
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<u32>) {
    let mut dirs = Vec::new();
    collect_dirs(dir, &mut dirs);
    for d in dirs {
        if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
    }
}

/// Spawns `argv` after the shell moved itself into `cgroup_dir`; `exec` keeps
/// the PID, so the returned child's PID is the final program's. Output goes to
/// `log` (kept for debugging a failed start).
pub fn spawn_in_cgroup(cgroup_dir: &Path, log: &Path, argv: &[&str]) -> Result<Child> {
    fs::create_dir_all(cgroup_dir).with_context(|| format!("mkdir {}", cgroup_dir.display()))?;
    let procs = cgroup_dir.join("cgroup.procs");
    let logf = fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(r#"echo $$ > "$0" && exec "$@""#)
        .arg(&procs)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf);
    c.spawn()
        .with_context(|| format!("spawning {}", cmd::describe(&c)))
}

/// Fails with the process log if `child` already exited.
pub fn check_alive(child: &mut Child, log: &Path, what: &str) -> Result<()> {
    if let Some(st) = child.try_wait()? {
        let text = fs::read_to_string(log).unwrap_or_default();
        bail!("{what} exited early ({st}): {}", text.trim());
    }
    Ok(())
}

/// Starts a pod's long-lived process: joins the pod netns, gets its own UTS
/// namespace (hostname = pod name) and mount namespace (its own resolv.conf
/// bind-mounted on /etc/resolv.conf), then sleeps. Call [`wait_pod_ready`] next.
pub fn start_pod_process(
    cgroup_dir: &Path,
    log: &Path,
    netns_path: &Path,
    hostname: &str,
    resolv: &Path,
) -> Result<Child> {
    let net = format!("--net={}", netns_path.display());
    let resolv = resolv.to_string_lossy();
    spawn_in_cgroup(
        cgroup_dir,
        log,
        &[
            "nsenter",
            &net,
            "unshare",
            "--uts",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"hostname "$0" && mount --bind "$1" /etc/resolv.conf && exec sleep infinity"#,
            hostname,
            &resolv,
        ],
    )
}

/// Waits until the pod process set its hostname and resolv.conf (its image is
/// then `sleep`).
pub fn wait_pod_ready(child: &mut Child, log: &Path, what: &str) -> Result<()> {
    let pid = child.id();
    cmd::poll(READY_TIMEOUT, &format!("{what} to start"), || {
        check_alive(child, log, what)?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Ok((comm.trim() == "sleep").then_some(()))
    })
}

/// Starts a listener inside the pod (its netns, UTS and mount namespace):
/// `server` (the `netsnap-lab` binary) when given, else socat (IPv4 only). With
/// `dual_stack` the server answers on IPv6 too. Call [`wait_listening`] next.
#[allow(clippy::too_many_arguments)]
pub fn start_listener(
    cgroup_dir: &Path,
    log: &Path,
    pod_pid: u32,
    proto: Protocol,
    port: u16,
    reply: &Reply,
    server: Option<&Path>,
    dual_stack: bool,
) -> Result<Child> {
    let pid = pod_pid.to_string();
    let mut argv: Vec<String> = ["nsenter", "-t", &pid, "-n", "-u", "-m"]
        .map(String::from)
        .to_vec();
    if let Some(bin) = server {
        argv.push(bin.to_string_lossy().into_owned());
        argv.extend(server::args(proto, port, reply, dual_stack));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        return spawn_in_cgroup(cgroup_dir, log, &argv);
    }
    let listen = match proto {
        Protocol::Tcp => format!("TCP4-LISTEN:{port},fork,reuseaddr"),
        Protocol::Udp => format!("UDP4-RECVFROM:{port},fork"),
    };
    let answer = match reply {
        Reply::Text(t) => format!("EXEC:echo {t}"),
        Reply::Echo => "EXEC:cat".to_string(),
    };
    spawn_in_cgroup(
        cgroup_dir,
        log,
        &[
            "nsenter", "-t", &pid, "-n", "-u", "-m", "socat", &listen, &answer,
        ],
    )
}

/// Waits until `port` is bound in the pod's netns.
pub fn wait_listening(
    child: &mut Child,
    log: &Path,
    pod_pid: u32,
    proto: Protocol,
    port: u16,
) -> Result<()> {
    cmd::poll(
        READY_TIMEOUT,
        &format!("listener {proto:?}/{port} in pod pid {pod_pid}"),
        || {
            check_alive(child, log, "listener")?;
            Ok(bound_ports(pod_pid, proto)?.contains(&port).then_some(()))
        },
    )
}

/// Ports bound in the netns of `pid` (TCP: listening; UDP: any bound socket),
/// read from `/proc/<pid>/net/{tcp,udp}`, which show that process's netns.
pub fn bound_ports(pid: u32, proto: Protocol) -> Result<Vec<u16>> {
    let file = format!("/proc/{pid}/net/{}", proto.lower());
    let text = fs::read_to_string(&file).with_context(|| format!("read {file}"))?;
    Ok(parse_socket_table(&text, proto))
}

fn parse_socket_table(text: &str, proto: Protocol) -> Vec<u16> {
    let mut v: Vec<u16> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            if proto == Protocol::Tcp && state != "0A" {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_v4_shaped() {
        let u = random_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn socket_table_parsing() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n   1: 0100007F:0050 0200007F:1234 01 00000000:00000000 00:00000000 00000000     0        0 2\n";
        assert_eq!(parse_socket_table(t, Protocol::Tcp), vec![20000]);
        assert_eq!(parse_socket_table(t, Protocol::Udp), vec![80, 20000]);
    }
}
