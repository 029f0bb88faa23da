//! Orchestration: what runs where, in which order, and within which time.
//!
//! ```text
//! main thread ── owns the BundleWriter, receives every result over one channel
//!   ├─ lane threads (switched into the node netns), started first:
//!   │    netfilter: iptables-{nft,legacy}-save, ip6tables-…
//!   │    nft+ipset+ipvs
//!   │    conntrack: entries (ctnetlink, streamed), stat, sysctls, host sysctls
//!   │    host: resolv.conf, kubelet resolv.conf, kmsg
//!   ├─ discovery (main thread), then a survey thread in the node netns: node links and
//!   │  the nsid of every candidate (RTM_GETNSID with its fd) → which netns are pods
//!   ├─ identity thread: cgroup UIDs, /var/log/pods, crictl when needed
//!   └─ netns pool: one fresh thread per netns, at most N at once, node netns first;
//!      each sends links/addrs/routes (cheap, first), then neigh/sockets/sysctl/resolv
//! ```
//!
//! Every expected record is registered as pending when its work is planned; whatever
//! has not reported by the end of the capture phase is recorded as failed with the
//! reason, and the bundle is written anyway.

pub mod discover;
pub mod pod_identity;

use crate::deadline::{budgets, millis, Deadline};
use discover::{Candidate, Discovered};
use crate::sys::netlink::{self, Conn};
use crate::sys::netns_thread::{self, NetnsError, NetnsTarget};
use pod_identity::{Crictl, PodLogs};
use crate::source::{self as src, Captured, Content, Selection, Timer};
use crate::sources::sysctl;
use crate::sys::tools::Tools;
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::{
    ConntrackSysctl, KubeProxyHints, NeighTable, NetnsEntry, NetnsIndex, RouteTable, Sysctls,
};
use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus, Spool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct Config {
    pub host_root: PathBuf,
    /// `--node-netns`: the netns treated as the node; only netns with a veth peer in
    /// it are then captured (its pods).
    pub node_netns: Option<PathBuf>,
    pub selection: Selection,
    pub conntrack_limit: u64,
    pub timeout: Duration,
    /// Where large sources spill (the output directory).
    pub spool_dir: PathBuf,
    /// Netns captured at once.
    pub parallelism: usize,
}

impl Config {
    pub fn default_parallelism() -> usize {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        (cpus * 2).clamp(2, 8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}", crate::source::io_reason(&format!("node netns {path}"), source))]
    NodeNetns {
        path: String,
        source: std::io::Error,
    },
}

/// The result of a capture: the filled writer and its manifest, ready to be written.
pub struct Capture {
    pub writer: BundleWriter,
    pub manifest: Manifest,
    pub netns_count: usize,
    pub pod_count: usize,
}

/// Messages from worker threads to the main thread.
enum Msg {
    Source(Box<Captured>),
    LaneDone,
    Survey(Survey),
    Identity(Identities),
    NetnsDone(NetnsDone),
    NodeHints(NodeHints),
}

#[derive(Default)]
struct NodeHints {
    ct_sysctl: Option<Result<Sysctls, String>>,
    legacy4: Option<Vec<String>>,
    legacy6: Option<Vec<String>>,
    ip_vs: Option<bool>,
}

struct Survey {
    /// nsid (seen from the node) per candidate id.
    nsids: HashMap<String, Option<i32>>,
    /// link_netnsid of veths in the node netns.
    veth_peer_nsids: HashSet<i32>,
    error: Option<String>,
}

struct Identities {
    cgroup_uids: HashMap<String, String>,
    logs: PodLogs,
    crictl: Crictl,
}

struct NetnsDone {
    id: String,
    hostname: Option<String>,
    ct_count: Option<u64>,
    kube_ipvs0: bool,
}

type Key = (String, Option<String>);

/// A lane: name, the sources it reports, and its body.
type Lane = (
    &'static str,
    &'static [&'static str],
    fn(&Ctx, &Sender<Msg>),
);

struct Pending {
    map: BTreeMap<Key, u64>,
}

impl Pending {
    fn add(&mut self, name: &str, netns: Option<&str>, at_ms: u64) {
        self.map
            .insert((name.to_string(), netns.map(str::to_string)), at_ms);
    }
    fn done(&mut self, r: &SourceRecord) {
        self.map.remove(&(r.name.clone(), r.netns.clone()));
    }
}

/// The node netns: `--node-netns`, else init's (`/proc/1/ns/net`, the host's when
/// running with hostPID), else our own (non-root cannot inspect pid 1).
pub fn node_target(cfg: &Config) -> Result<NetnsTarget, CaptureError> {
    if let Some(p) = &cfg.node_netns {
        return netns_thread::target_for(p).map_err(|source| CaptureError::NodeNetns {
            path: p.display().to_string(),
            source,
        });
    }
    netns_thread::target_for(Path::new("/proc/1/ns/net"))
        .or_else(|_| netns_thread::target_for(Path::new("/proc/self/ns/net")))
        .map_err(|source| CaptureError::NodeNetns {
            path: "/proc/self/ns/net".into(),
            source,
        })
}

struct Ctx {
    cfg: Config,
    deadline: Deadline,
    tools: Tools,
    node: NetnsTarget,
}

impl Ctx {
    fn spool(&self) -> Spool {
        Spool::new_in(&self.cfg.spool_dir)
    }
    fn wants(&self, name: &str) -> bool {
        self.cfg.selection.wants(name)
    }
}

/// Sends a record, stamping its timing.
fn send(tx: &Sender<Msg>, c: Captured, t: &Timer) {
    let _ = tx.send(Msg::Source(Box::new(c.timed(t))));
}

/// Runs `f` for `name` if selected; the lane reports a skipped record otherwise.
fn run_source(ctx: &Ctx, tx: &Sender<Msg>, name: &str, f: impl FnOnce() -> Captured) {
    if !ctx.wants(name) {
        return; // the main thread records skipped sources itself
    }
    let t = Timer::start(&ctx.deadline);
    let c = if ctx.deadline.expired() {
        Captured::failed(name, "not started: capture deadline reached")
    } else {
        f()
    };
    send(tx, c, &t);
}

/// A lane: a fresh thread in the node netns running node-wide sources in order.
fn spawn_lane(
    ctx: &Arc<Ctx>,
    tx: &Sender<Msg>,
    lane: &'static str,
    sources: &'static [&'static str],
    body: fn(&Ctx, &Sender<Msg>),
) {
    let ctx2 = Arc::clone(ctx);
    let tx2 = tx.clone();
    let r = netns_thread::spawn_in(format!("lane-{lane}"), ctx.node.clone(), move |entered| {
        // A bug must cost this lane's sources (recorded as not finished), not make
        // the main thread wait for the deadline.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match entered {
            Ok(()) => body(&ctx2, &tx2),
            Err(e) => fail_all(&ctx2, &tx2, sources, None, &e.to_string()),
        }));
        let _ = tx2.send(Msg::LaneDone);
    });
    if let Err(e) = r {
        fail_all(ctx, tx, sources, None, &format!("starting a thread: {e}"));
        let _ = tx.send(Msg::LaneDone);
    }
}

fn fail_all(ctx: &Ctx, tx: &Sender<Msg>, names: &[&str], netns: Option<&str>, reason: &str) {
    for name in names {
        if ctx.wants(name) {
            let t = Timer::start(&ctx.deadline);
            let mut c = Captured::failed(name, reason);
            if let Some(id) = netns {
                c = c.in_netns(id);
            }
            send(tx, c, &t);
        }
    }
}

// One lane per tool (or group of cheap file reads): a tool that hangs until the
// deadline then costs only its own source, never the ones queued behind it.
const LANE_IPT_NFT: &[&str] = &[src::IPTABLES_NFT_SAVE];
const LANE_IP6T_NFT: &[&str] = &[src::IP6TABLES_NFT_SAVE];
const LANE_LEGACY: &[&str] = &[src::IPTABLES_LEGACY_SAVE, src::IP6TABLES_LEGACY_SAVE];
const LANE_NFT: &[&str] = &[src::NFT];
const LANE_IPSET_IPVS: &[&str] = &[src::IPVS, src::IPVS_STATS, src::IPVS_CONN, src::IPSET];
const LANE_CONNTRACK: &[&str] = &[
    src::CONNTRACK_ENTRIES,
    src::CONNTRACK_STAT,
    src::HOST_SYSCTL,
];
const LANE_HOST: &[&str] = &[
    src::HOST_RESOLV_CONF,
    src::HOST_KUBELET_RESOLV_CONF,
    src::HOST_KMSG,
];

fn run_save(ctx: &Ctx, tx: &Sender<Msg>, index: usize) {
    let spec = &crate::sources::netfilter::SAVES[index];
    run_source(ctx, tx, spec.source, || {
        crate::sources::netfilter::capture_save(&ctx.tools, spec, ctx.spool(), &ctx.deadline)
    });
}

fn lane_ipt_nft(ctx: &Ctx, tx: &Sender<Msg>) {
    run_save(ctx, tx, 0);
}

fn lane_ip6t_nft(ctx: &Ctx, tx: &Sender<Msg>) {
    run_save(ctx, tx, 1);
}

fn lane_legacy(ctx: &Ctx, tx: &Sender<Msg>) {
    let hints = NodeHints {
        legacy4: crate::sources::host::legacy_tables(false).ok().flatten(),
        legacy6: crate::sources::host::legacy_tables(true).ok().flatten(),
        ..Default::default()
    };
    let _ = tx.send(Msg::NodeHints(hints));
    run_save(ctx, tx, 2);
    run_save(ctx, tx, 3);
}

fn lane_nft(ctx: &Ctx, tx: &Sender<Msg>) {
    run_source(ctx, tx, src::NFT, || {
        crate::sources::netfilter::capture_nft(&ctx.tools, ctx.spool(), &ctx.deadline)
    });
}

fn lane_ipset_ipvs(ctx: &Ctx, tx: &Sender<Msg>) {
    let hints = NodeHints {
        ip_vs: Some(crate::sys::procfs::thread_net("ip_vs").exists()),
        ..Default::default()
    };
    let _ = tx.send(Msg::NodeHints(hints));
    run_source(ctx, tx, src::IPVS, crate::sources::ipvs::capture_services);
    run_source(ctx, tx, src::IPVS_STATS, crate::sources::ipvs::capture_stats);
    run_source(ctx, tx, src::IPVS_CONN, || {
        crate::sources::ipvs::capture_conn(ctx.spool(), ctx.cfg.conntrack_limit)
    });
    run_source(ctx, tx, src::IPSET, || {
        crate::sources::netfilter::capture_ipset(&ctx.tools, ctx.spool(), &ctx.deadline)
    });
}

fn lane_conntrack(ctx: &Ctx, tx: &Sender<Msg>) {
    // Cheap first: sysctls and stats, then the (possibly huge) table.
    let ct = sysctl::conntrack_sysctls();
    let ct_result = match ct.error() {
        Some(e) if ct.values.is_empty() => Err(e),
        _ => Ok(ct.values),
    };
    let _ = tx.send(Msg::NodeHints(NodeHints {
        ct_sysctl: Some(ct_result),
        ..Default::default()
    }));
    run_source(ctx, tx, src::HOST_SYSCTL, || {
        let r = sysctl::node_sysctls();
        let status = if r.errors.is_empty() {
            SourceStatus::Ok
        } else {
            SourceStatus::Partial
        };
        let c = Captured::json(src::HOST_SYSCTL, layout::HOST_SYSCTL, status, &r.values);
        match r.error() {
            Some(e) => c.with_error(e),
            None => c,
        }
    });
    run_source(ctx, tx, src::CONNTRACK_STAT, crate::sources::conntrack::capture_stat);
    run_source(ctx, tx, src::CONNTRACK_ENTRIES, || {
        crate::sources::conntrack::capture_entries(ctx.spool(), ctx.cfg.conntrack_limit, &ctx.deadline)
    });
}

fn lane_host(ctx: &Ctx, tx: &Sender<Msg>) {
    run_source(ctx, tx, src::HOST_RESOLV_CONF, || {
        crate::sources::host::capture_resolv_conf(&ctx.cfg.host_root)
    });
    run_source(ctx, tx, src::HOST_KUBELET_RESOLV_CONF, || {
        crate::sources::host::capture_kubelet_resolv_conf(&ctx.cfg.host_root)
    });
    run_source(ctx, tx, src::HOST_KMSG, || {
        crate::sources::kmsg::capture(Instant::now() + ctx.deadline.budget(budgets::KMSG))
    });
}

/// Node links and the nsid of every candidate, read from the node netns.
fn survey(ctx: &Ctx, candidates: &[(String, NetnsTarget)]) -> Survey {
    let mut s = Survey {
        nsids: HashMap::new(),
        veth_peer_nsids: HashSet::new(),
        error: None,
    };
    let rt = match netlink::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            s.error = Some(e.to_string());
            return s;
        }
    };
    rt.block_on(async {
        let mut conn = match Conn::open() {
            Ok(c) => c,
            Err(e) => {
                s.error = Some(e.to_string());
                return;
            }
        };
        match netlink::links::dump(&mut conn, ctx.deadline.budget(budgets::NETLINK_DUMP)).await {
            Ok(d) => {
                for l in d.messages {
                    if l.kind.as_deref() == Some("veth") {
                        if let Some(n) = l.link_netnsid {
                            s.veth_peer_nsids.insert(n);
                        }
                    }
                }
            }
            Err(e) => s.error = Some(format!("node links: {e}")),
        }
        for (id, target) in candidates {
            if ctx.deadline.expired() {
                break;
            }
            // Identity-checked open: a reused path must not map to the wrong netns.
            let Ok(f) = netns_thread::open_checked(target) else {
                continue;
            };
            let budget = ctx.deadline.budget(budgets::NETLINK_DUMP);
            if let Ok(n) = netlink::nsid::nsid_of(&mut conn, &f, budget).await {
                s.nsids.insert(id.clone(), n);
            }
        }
    });
    s
}

fn identities(ctx: &Ctx, cands: &[(String, Vec<u32>, bool)]) -> Identities {
    let logs = PodLogs::read(&ctx.cfg.host_root);
    let mut cgroup_uids = HashMap::new();
    for (id, pids, is_root) in cands {
        if *is_root {
            continue;
        }
        if let Some(uid) = pod_identity::uid_of_pids(Path::new("/proc"), pids) {
            cgroup_uids.insert(id.clone(), uid);
        }
    }
    let unresolved = cands.iter().any(|(id, _, is_root)| {
        !is_root && cgroup_uids.get(id).and_then(|u| logs.get(u)).is_none()
    });
    let crictl = if unresolved {
        pod_identity::run_crictl(&ctx.tools, &ctx.deadline)
    } else {
        Crictl::NotRun("every netns identified from cgroups and /var/log/pods".into())
    };
    Identities {
        cgroup_uids,
        logs,
        crictl,
    }
}

/// Test hooks (documented in the README, not in --help): they let the end-to-end
/// tests change the node between discovery and the netns captures (delete pods, kill
/// their processes, start a second collector), deterministically. Both stay inside
/// the capture deadline.
/// - `NETSNAP_COLLECT_TEST_PAUSE_MS=N`: sleep N ms;
/// - `NETSNAP_COLLECT_TEST_GATE=DIR`: create `DIR/paused`, then wait until `DIR/go`
///   exists.
fn test_hook_pause(deadline: &Deadline) {
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

/// What reading a netns's resolv.conf through its processes gave.
#[derive(Debug, PartialEq, Eq)]
enum ResolvRead {
    Read {
        text: String,
        pid: u32,
    },
    /// Reading failed for a live process (its reason), or every process exited.
    Failed {
        reason: String,
        pid: Option<u32>,
    },
    /// No process lived in the netns at discovery.
    NoProcess,
}

/// Whether `pid` has exited (gone, or a zombie whose root and namespaces are gone).
fn process_exited(proc_root: &Path, pid: u32) -> bool {
    let stat = match std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        Ok(s) => s,
        Err(_) => return true,
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X" | "x"))
}

/// `/proc/<pid>/root/etc/resolv.conf` of the first of `pids` that can be read. A
/// process that exits meanwhile is skipped; if all of them exited, that is a failure
/// with that reason (the pod's data existed and could not be had), not "no process".
fn read_netns_resolv(proc_root: &Path, pids: &[u32]) -> ResolvRead {
    let mut first_err = None;
    let mut exited = Vec::new();
    for &pid in pids.iter().take(8) {
        let p = proc_root.join(pid.to_string()).join("root/etc/resolv.conf");
        match crate::sys::procfs::read_capped(&p, 1 << 20) {
            Ok(text) => return ResolvRead::Read { text, pid },
            Err(_) if process_exited(proc_root, pid) => exited.push(pid.to_string()),
            Err(e) => {
                first_err.get_or_insert_with(|| {
                    (crate::source::io_reason(&p.display().to_string(), &e), pid)
                });
            }
        }
    }
    match (first_err, exited.is_empty()) {
        (Some((reason, pid)), _) => ResolvRead::Failed {
            reason,
            pid: Some(pid),
        },
        (None, false) => ResolvRead::Failed {
            reason: format!(
                "the netns's process(es) {} exited before their resolv.conf could be read",
                exited.join(", ")
            ),
            pid: None,
        },
        (None, true) => ResolvRead::NoProcess,
    }
}

/// One netns job.
struct NetnsJob {
    id: String,
    target: NetnsTarget,
    pids: Vec<u32>,
    is_root: bool,
}

/// Enters the netns by its path, or through one of its processes when the path is
/// gone (a deleted bind mount while the pod still runs).
fn enter_job(job: &NetnsJob, first: Result<(), NetnsError>) -> Result<(), NetnsError> {
    let err = match first {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if err.is_permission() {
        return Err(err);
    }
    for pid in job.pids.iter().take(8) {
        let alt = NetnsTarget {
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
            dev: job.target.dev,
            ino: job.target.ino,
        };
        if netns_thread::enter(&alt).is_ok() {
            return Ok(());
        }
    }
    Err(err)
}

fn netns_file_wanted(ctx: &Ctx, f: NetnsFile) -> bool {
    ctx.wants(f.source_name())
}

/// Captures one netns; runs on its own fresh thread, already switched.
fn netns_job(
    ctx: &Ctx,
    tx: &Sender<Msg>,
    job: &NetnsJob,
    entered: Result<(), NetnsError>,
) -> NetnsDone {
    let mut done = NetnsDone {
        id: job.id.clone(),
        hostname: None,
        ct_count: None,
        kube_ipvs0: false,
    };
    let id = job.id.as_str();
    let all_names: Vec<&str> = NetnsFile::ALL.iter().map(|f| f.source_name()).collect();
    if let Err(e) = enter_job(job, entered) {
        fail_all(ctx, tx, &all_names, Some(id), &e.to_string());
        return done;
    }
    let out = |c: Captured, t: &Timer| {
        let _ = tx.send(Msg::Source(Box::new(c.in_netns(id).timed(t))));
    };
    let netlink_files = [
        NetnsFile::Links,
        NetnsFile::Addrs,
        NetnsFile::Routes,
        NetnsFile::Neigh,
    ];
    let wants_netlink = netlink_files.iter().any(|f| netns_file_wanted(ctx, *f));
    if wants_netlink {
        let rt = netlink::runtime();
        let rt = match rt {
            Ok(rt) => rt,
            Err(e) => {
                let names: Vec<&str> = netlink_files.iter().map(|f| f.source_name()).collect();
                fail_all(ctx, tx, &names, Some(id), &e.to_string());
                return done;
            }
        };
        rt.block_on(async {
            let mut conn = match Conn::open() {
                Ok(c) => c,
                Err(e) => {
                    let names: Vec<&str> = netlink_files.iter().map(|f| f.source_name()).collect();
                    fail_all(ctx, tx, &names, Some(id), &e.to_string());
                    return;
                }
            };
            let budget = || ctx.deadline.budget(budgets::NETLINK_DUMP);
            if netns_file_wanted(ctx, NetnsFile::Links) {
                let t = Timer::start(&ctx.deadline);
                let c = match netlink::links::dump(&mut conn, budget()).await {
                    Ok(d) => {
                        done.kube_ipvs0 = d.messages.iter().any(|l| l.name == "kube-ipvs0");
                        dump_record(NetnsFile::Links, id, d.problem(), &d.messages)
                    }
                    Err(e) => Captured::failed(NetnsFile::Links.source_name(), e.to_string()),
                };
                out(c, &t);
            }
            if netns_file_wanted(ctx, NetnsFile::Addrs) {
                let t = Timer::start(&ctx.deadline);
                let c = match netlink::addrs::dump(&mut conn, budget()).await {
                    Ok(d) => dump_record(NetnsFile::Addrs, id, d.problem(), &d.messages),
                    Err(e) => Captured::failed(NetnsFile::Addrs.source_name(), e.to_string()),
                };
                out(c, &t);
            }
            if netns_file_wanted(ctx, NetnsFile::Routes) {
                let t = Timer::start(&ctx.deadline);
                let routes = netlink::routes::dump_routes(&mut conn, budget()).await;
                let rules = netlink::routes::dump_rules(&mut conn, budget()).await;
                let c = match (routes, rules) {
                    (Ok(r), Ok(u)) => {
                        let problem = join_problems([r.problem(), u.problem()]);
                        let table = RouteTable {
                            routes: r.messages,
                            rules: u.messages,
                        };
                        dump_record(NetnsFile::Routes, id, problem, &table)
                    }
                    (Ok(r), Err(e)) => {
                        let table = RouteTable {
                            routes: r.messages,
                            rules: Vec::new(),
                        };
                        dump_record(NetnsFile::Routes, id, Some(format!("rules: {e}")), &table)
                    }
                    (Err(e), _) => Captured::failed(NetnsFile::Routes.source_name(), e.to_string()),
                };
                out(c, &t);
            }
            if netns_file_wanted(ctx, NetnsFile::Neigh) {
                let t = Timer::start(&ctx.deadline);
                let neigh = netlink::neigh::dump_neighbours(&mut conn, budget()).await;
                let fdb = netlink::neigh::dump_fdb(&mut conn, budget()).await;
                let c = match (neigh, fdb) {
                    (Ok(n), Ok(f)) => {
                        let problem = join_problems([n.problem(), f.problem()]);
                        let table = NeighTable {
                            neighbours: n.messages,
                            fdb: f.messages,
                        };
                        dump_record(NetnsFile::Neigh, id, problem, &table)
                    }
                    (Ok(n), Err(e)) => {
                        let table = NeighTable {
                            neighbours: n.messages,
                            fdb: Vec::new(),
                        };
                        dump_record(
                            NetnsFile::Neigh,
                            id,
                            Some(format!("bridge fdb: {e}")),
                            &table,
                        )
                    }
                    (Err(e), _) => Captured::failed(NetnsFile::Neigh.source_name(), e.to_string()),
                };
                out(c, &t);
            }
        });
    }
    if netns_file_wanted(ctx, NetnsFile::Sockets) {
        let t = Timer::start(&ctx.deadline);
        let scan = crate::sources::sockets::scan_thread_netns();
        let mut problems = scan.errors.clone();
        if scan.unparsed > 0 {
            problems.push(format!(
                "{} socket table line(s) not understood",
                scan.unparsed
            ));
        }
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        let c = if scan.sockets.is_empty() && scan.errors.len() == 4 {
            Captured::failed(NetnsFile::Sockets.source_name(), problems.join("; "))
        } else {
            dump_record(NetnsFile::Sockets, id, problem, &scan.sockets)
        };
        out(c, &t);
    }
    // Always read: the conntrack count feeds conntrack/sysctl.json.
    {
        let t = Timer::start(&ctx.deadline);
        let r = sysctl::netns_sysctls();
        done.ct_count = r
            .values
            .get("net.netfilter.nf_conntrack_count")
            .and_then(|v| v.parse().ok());
        if netns_file_wanted(ctx, NetnsFile::Sysctl) {
            let c = dump_record(NetnsFile::Sysctl, id, r.error(), &r.values);
            out(c, &t);
        }
    }
    // resolv.conf and hostname as one of the netns's processes sees them.
    let t = Timer::start(&ctx.deadline);
    let read = read_netns_resolv(Path::new("/proc"), &job.pids);
    let host_pid = match &read {
        ResolvRead::Read { pid, .. } => Some(*pid),
        ResolvRead::Failed { pid, .. } => *pid,
        ResolvRead::NoProcess => None,
    };
    if netns_file_wanted(ctx, NetnsFile::ResolvConf) {
        let name = NetnsFile::ResolvConf.source_name();
        let c = match read {
            ResolvRead::Read { text, pid } => Captured::bytes(
                name,
                layout::netns_path(id, NetnsFile::ResolvConf),
                SourceStatus::Ok,
                text.into_bytes(),
            )
            .with_note(format!("from pid {pid}")),
            ResolvRead::Failed { reason, .. } => Captured::failed(name, reason),
            ResolvRead::NoProcess => Captured::unavailable(name, "no process lives in this netns"),
        };
        out(c, &t);
    }
    if !job.is_root {
        if let Some(pid) = host_pid {
            done.hostname = pod_hostname(pid);
        }
    }
    done
}

/// The UTS hostname of `pid` (switching this throwaway thread's UTS namespace), or
/// its /etc/hostname when that is not permitted.
fn pod_hostname(pid: u32) -> Option<String> {
    if netns_thread::enter_uts_of(pid).is_ok() {
        if let Ok(u) = nix::sys::utsname::uname() {
            return Some(u.nodename().to_string_lossy().into_owned());
        }
    }
    crate::sys::procfs::read_small(Path::new(&format!("/proc/{pid}/root/etc/hostname")))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn join_problems<const N: usize>(p: [Option<String>; N]) -> Option<String> {
    let v: Vec<String> = p.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.join("; "))
}

fn dump_record<T: serde::Serialize>(
    f: NetnsFile,
    id: &str,
    problem: Option<String>,
    value: &T,
) -> Captured {
    let status = if problem.is_some() {
        SourceStatus::Partial
    } else {
        SourceStatus::Ok
    };
    let c = Captured::json(f.source_name(), layout::netns_path(id, f), status, value);
    match problem {
        Some(p) => c.with_error(p),
        None => c,
    }
}

/// Adds a captured source to the writer; a writer error becomes a failed record.
fn add(writer: &mut BundleWriter, c: Captured) {
    let Captured { record, content } = c;
    let fallback = record.clone();
    let r = match content {
        None => writer.add_record(record),
        Some(Content::Bytes(b)) => writer.add_bytes(record, &b),
        Some(Content::Spool(s)) => writer.add_spooled(record, s),
    };
    if let Err(e) = r {
        let mut rec = fallback;
        rec.path = None;
        rec.status = SourceStatus::Failed;
        rec.error = Some(format!("storing in the bundle: {e}"));
        let _ = writer.add_record(rec);
    }
}

/// Runs the whole capture. Never fails once the node netns is known: every problem is
/// a record in the manifest.
pub fn capture(cfg: Config) -> Result<Capture, CaptureError> {
    let deadline = Deadline::new(cfg.timeout);
    let started_at = crate::time::UtcTime::now();
    let node = node_target(&cfg)?;
    crate::sys::procfs::set_host_root(&cfg.host_root);
    let ctx = Arc::new(Ctx {
        tools: Tools::new(cfg.host_root.clone()),
        cfg,
        deadline,
        node,
    });
    let mut writer = BundleWriter::new(&ctx.cfg.spool_dir);
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut pending = Pending {
        map: BTreeMap::new(),
    };

    // Skipped node-wide sources are recorded right away.
    for d in src::SOURCES.iter().filter(|d| d.path.is_some()) {
        if !ctx.wants(d.name) {
            add(&mut writer, Captured::skipped(d.name));
        }
    }
    for f in NetnsFile::ALL {
        if !ctx.wants(f.source_name()) {
            add(&mut writer, Captured::skipped(f.source_name()));
        }
    }

    // 1. Discovery, before any tool runs: a tool started in the node netns would
    //    otherwise show up as one of its processes.
    let discovered = if ctx.cfg.selection.wants_netns() {
        discover::discover(&ctx.cfg.host_root, &ctx.node)
    } else {
        Discovered::default()
    };
    let discovery_ms = ctx.deadline.elapsed_ms();

    // 2. Node-wide lanes.
    let lanes: [Lane; 7] = [
        ("conntrack", LANE_CONNTRACK, lane_conntrack),
        ("ipt-nft", LANE_IPT_NFT, lane_ipt_nft),
        ("ip6t-nft", LANE_IP6T_NFT, lane_ip6t_nft),
        ("legacy", LANE_LEGACY, lane_legacy),
        ("nft", LANE_NFT, lane_nft),
        ("ipset-ipvs", LANE_IPSET_IPVS, lane_ipset_ipvs),
        ("host", LANE_HOST, lane_host),
    ];
    let mut lanes_running = 0;
    for (name, sources, body) in lanes {
        for s in sources.iter().filter(|s| ctx.wants(s)) {
            pending.add(s, None, ctx.deadline.elapsed_ms());
        }
        spawn_lane(&ctx, &tx, name, sources, body);
        lanes_running += 1;
    }

    // 3. Survey from the node netns: nsids, and which netns are the node's pods.
    let mut survey_result = None;
    if !discovered.candidates.is_empty() {
        let list: Vec<(String, NetnsTarget)> = discovered
            .candidates
            .iter()
            .map(|c| (c.id.clone(), c.target.clone()))
            .collect();
        let ctx2 = Arc::clone(&ctx);
        let tx2 = tx.clone();
        let spawned = netns_thread::spawn_in("survey".into(), ctx.node.clone(), move |entered| {
            let s = match entered {
                Ok(()) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| survey(&ctx2, &list)))
                        .unwrap_or_else(|_| Survey {
                            nsids: HashMap::new(),
                            veth_peer_nsids: HashSet::new(),
                            error: Some("internal error in the survey".into()),
                        })
                }
                Err(e) => Survey {
                    nsids: HashMap::new(),
                    veth_peer_nsids: HashSet::new(),
                    error: Some(e.to_string()),
                },
            };
            let _ = tx2.send(Msg::Survey(s));
        });
        if spawned.is_err() {
            survey_result = Some(Survey {
                nsids: HashMap::new(),
                veth_peer_nsids: HashSet::new(),
                error: Some("could not start the survey thread".into()),
            });
        }
    }

    let mut state = State::default();
    // Wait for the survey (everything else keeps running meanwhile).
    while survey_result.is_none() && !discovered.candidates.is_empty() {
        match recv(&rx, &ctx.deadline) {
            Some(Msg::Survey(s)) => survey_result = Some(s),
            Some(other) => state.handle(other, &mut writer, &mut pending, &mut lanes_running),
            None => break,
        }
    }
    let survey_result = survey_result.unwrap_or(Survey {
        nsids: HashMap::new(),
        veth_peer_nsids: HashSet::new(),
        error: Some("survey did not finish before the deadline".into()),
    });

    // Which netns to capture.
    let selected: Vec<&Candidate> = discovered
        .candidates
        .iter()
        .filter(|c| {
            c.is_root
                || ctx.cfg.node_netns.is_none()
                || survey_result
                    .nsids
                    .get(&c.id)
                    .copied()
                    .flatten()
                    .is_some_and(|n| survey_result.veth_peer_nsids.contains(&n))
        })
        .collect();

    // 4. Pod identity, in parallel with the netns captures.
    let mut identity_running = false;
    if !selected.is_empty() && ctx.wants(src::NETNS_INDEX) {
        let cands: Vec<(String, Vec<u32>, bool)> = selected
            .iter()
            .map(|c| (c.id.clone(), c.pids.clone(), c.is_root))
            .collect();
        let ctx2 = Arc::clone(&ctx);
        let tx2 = tx.clone();
        identity_running = std::thread::Builder::new()
            .name("identity".into())
            .spawn(move || {
                let ids = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    identities(&ctx2, &cands)
                }))
                .unwrap_or_else(|_| Identities {
                    cgroup_uids: HashMap::new(),
                    logs: PodLogs::default(),
                    crictl: Crictl::Failed("internal error in identity resolution".into()),
                });
                let _ = tx2.send(Msg::Identity(ids));
            })
            .is_ok();
    }

    test_hook_pause(&ctx.deadline);

    // 5. Netns pool: the node first (largest), then the pods.
    let mut queue: std::collections::VecDeque<NetnsJob> = selected
        .iter()
        .map(|c| NetnsJob {
            id: c.id.clone(),
            target: c.target.clone(),
            pids: c.pids.clone(),
            is_root: c.is_root,
        })
        .collect();
    let planned_ms = ctx.deadline.elapsed_ms();
    for job in &queue {
        for f in NetnsFile::ALL.iter().filter(|f| ctx.wants(f.source_name())) {
            pending.add(f.source_name(), Some(&job.id), planned_ms);
        }
    }
    let mut running = 0usize;
    let mut netns_done: HashMap<String, NetnsDone> = HashMap::new();
    let mut identities_result = None;
    loop {
        while running < ctx.cfg.parallelism.max(1) && !ctx.deadline.expired() {
            let Some(job) = queue.pop_front() else {
                break;
            };
            let ctx2 = Arc::clone(&ctx);
            let tx2 = tx.clone();
            let target = job.target.clone();
            let name = format!("netns-{}", job.id);
            let r = netns_thread::spawn_in(name, target, move |entered| {
                let d = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    netns_job(&ctx2, &tx2, &job, entered)
                }))
                .unwrap_or_else(|_| NetnsDone {
                    id: job.id.clone(),
                    hostname: None,
                    ct_count: None,
                    kube_ipvs0: false,
                });
                let _ = tx2.send(Msg::NetnsDone(d));
            });
            match r {
                Ok(_) => running += 1,
                Err(e) => {
                    // Recorded as pending → failed at the end with this reason.
                    state.errors.push(format!("starting a netns thread: {e}"));
                }
            }
        }
        let all_done = running == 0 && queue.is_empty() && lanes_running == 0 && !identity_running;
        if all_done {
            break;
        }
        match recv(&rx, &ctx.deadline) {
            Some(Msg::NetnsDone(d)) => {
                running -= 1;
                netns_done.insert(d.id.clone(), d);
            }
            Some(Msg::Identity(i)) => {
                identity_running = false;
                identities_result = Some(i);
            }
            Some(other) => state.handle(other, &mut writer, &mut pending, &mut lanes_running),
            None => break, // deadline
        }
    }
    // Late results that are already queued still count.
    while let Ok(m) = rx.try_recv() {
        match m {
            Msg::NetnsDone(d) => {
                netns_done.insert(d.id.clone(), d);
            }
            Msg::Identity(i) => identities_result = Some(i),
            other => state.handle(other, &mut writer, &mut pending, &mut lanes_running),
        }
    }

    // 6. Whatever did not report in time.
    let timeout_secs = ctx.cfg.timeout.as_secs_f64();
    for ((name, netns), at) in std::mem::take(&mut pending.map) {
        let mut rec = SourceRecord::new(name, SourceStatus::Failed);
        rec.netns = netns;
        rec.started_ms = at;
        rec.duration_ms = ctx.deadline.elapsed_ms().saturating_sub(at);
        rec.error = Some(format!(
            "did not finish before the capture deadline (--timeout {timeout_secs:.0}s)"
        ));
        let _ = writer.add_record(rec);
    }

    // 7. Assembled sources: the netns index, conntrack sysctls, host facts.
    let node_hostname = crate::sources::host::hostname();
    let mut pod_count = 0;
    if ctx.wants(src::NETNS_INDEX) {
        let t0 = ctx.deadline.elapsed_ms();
        let mut index = NetnsIndex::default();
        for c in &selected {
            let done = netns_done.get(&c.id);
            let hostname = done.and_then(|d| d.hostname.clone());
            let pod = identities_result.as_ref().and_then(|ids| {
                if c.is_root {
                    return None;
                }
                let facts = pod_identity::NetnsFacts {
                    dev: c.target.dev,
                    ino: c.target.ino,
                    pids: &c.pids,
                    cgroup_uid: ids.cgroup_uids.get(&c.id).map(String::as_str),
                    hostname: hostname.as_deref(),
                };
                pod_identity::resolve(
                    &facts,
                    &ids.logs,
                    &ids.crictl,
                    &ctx.cfg.host_root,
                    &node_hostname,
                )
            });
            if pod.is_some() {
                pod_count += 1;
            }
            index.netns.push(NetnsEntry {
                id: c.id.clone(),
                inode: c.target.ino,
                dev: c.target.dev,
                is_root: c.is_root,
                found_by: c.found_by.clone(),
                nsid: survey_result.nsids.get(&c.id).copied().flatten(),
                pids: c.pids.iter().take(discover::MAX_PIDS).copied().collect(),
                hostname,
                pod,
            });
        }
        let mut problems: Vec<String> = discovered.errors.clone();
        problems.extend(state.errors.iter().cloned());
        if discovered.inaccessible_pids > 0 {
            problems.push(format!(
                "permission denied: the netns of {} process(es) could not be inspected",
                discovered.inaccessible_pids
            ));
        }
        if let Some(e) = &survey_result.error {
            problems.push(format!("nsid survey: {e}"));
        }
        if identities_result.is_none() && !selected.is_empty() {
            problems.push("pod identity resolution did not finish before the deadline".into());
        }
        let status = if problems.is_empty() {
            SourceStatus::Ok
        } else {
            SourceStatus::Partial
        };
        let mut c = Captured::json(src::NETNS_INDEX, layout::NETNS_INDEX, status, &index);
        if !problems.is_empty() {
            c = c.with_error(problems.join("; "));
        }
        let mut notes = vec![format!(
            "{} netns found, {} captured{}",
            discovered.candidates.len(),
            selected.len(),
            if ctx.cfg.node_netns.is_some() {
                " (--node-netns: the node and netns with a veth peer in it)"
            } else {
                ""
            }
        )];
        if let Some(ids) = &identities_result {
            notes.push(format!(
                "{} pod log dir(s) under the host root",
                ids.logs.len()
            ));
            match &ids.crictl {
                Crictl::NotRun(r) => notes.push(format!("crictl not used: {r}")),
                Crictl::Failed(r) => notes.push(format!("crictl failed: {r}")),
                Crictl::Pods(p) => notes.push(format!("crictl: {} sandbox(es)", p.len())),
            }
        }
        c = c.with_note(notes.join("; "));
        // Discovery ran from the start; assembling took from t0 until now.
        c.record.started_ms = 0;
        c.record.duration_ms = discovery_ms + ctx.deadline.elapsed_ms().saturating_sub(t0);
        add(&mut writer, c);
    }

    if ctx.wants(src::CONNTRACK_SYSCTL) {
        let t = Timer::start(&ctx.deadline);
        let mut ct = ConntrackSysctl::default();
        let mut problem = None;
        match state.hints.ct_sysctl.take() {
            Some(Ok(v)) => ct.node = v,
            Some(Err(e)) => problem = Some(e),
            None => {
                problem = Some("node conntrack sysctls were not read before the deadline".into())
            }
        }
        for (id, d) in &netns_done {
            if let Some(n) = d.ct_count {
                ct.count_by_netns.insert(id.clone(), n);
            }
        }
        let c = if ct.node.is_empty() && !crate::sys::procfs::module_present("nf_conntrack") {
            Captured::unavailable(src::CONNTRACK_SYSCTL, "nf_conntrack is not loaded")
        } else {
            let status = if problem.is_some() {
                SourceStatus::Partial
            } else {
                SourceStatus::Ok
            };
            let c = Captured::json(src::CONNTRACK_SYSCTL, layout::CONNTRACK_SYSCTL, status, &ct);
            match problem {
                Some(p) => c.with_error(p),
                None => c,
            }
        };
        add(&mut writer, c.timed(&t));
    }

    if ctx.wants(src::HOST_FACTS) {
        let t = Timer::start(&ctx.deadline);
        let hints = KubeProxyHints {
            kube_ipvs0: netns_done.values().any(|d| d.kube_ipvs0 && d.id == "root"),
            ip_vs: state.hints.ip_vs.unwrap_or(false),
            legacy_tables: state.hints.legacy4.clone().unwrap_or_default(),
            legacy6_tables: state.hints.legacy6.clone().unwrap_or_default(),
        };
        let facts = crate::sources::host::facts(hints);
        let c = Captured::json(
            src::HOST_FACTS,
            layout::HOST_FACTS,
            SourceStatus::Ok,
            &facts,
        );
        add(&mut writer, c.timed(&t));
    }

    let mut manifest = Manifest::new(
        env!("CARGO_PKG_VERSION"),
        &node_hostname,
        &crate::sources::host::kernel_release(),
        &started_at.rfc3339(),
        started_at.0,
    );
    manifest.duration_ms = millis(ctx.deadline.start().elapsed());
    let o = &mut manifest.options;
    o.insert(
        "timeout_secs".into(),
        format!("{}", ctx.cfg.timeout.as_secs()),
    );
    o.insert(
        "conntrack_limit".into(),
        ctx.cfg.conntrack_limit.to_string(),
    );
    o.insert("host_root".into(), ctx.cfg.host_root.display().to_string());
    o.insert("node_netns".into(), ctx.node.path.display().to_string());
    let (only, skip) = ctx.cfg.selection.describe();
    if !only.is_empty() {
        o.insert("only".into(), only);
    }
    if !skip.is_empty() {
        o.insert("skip".into(), skip);
    }
    o.insert("parallelism".into(), ctx.cfg.parallelism.to_string());

    Ok(Capture {
        writer,
        manifest,
        netns_count: selected.len(),
        pod_count,
    })
}

#[derive(Default)]
struct State {
    hints: NodeHints,
    errors: Vec<String>,
}

impl State {
    fn handle(
        &mut self,
        m: Msg,
        writer: &mut BundleWriter,
        pending: &mut Pending,
        lanes: &mut usize,
    ) {
        match m {
            Msg::Source(c) => {
                pending.done(&c.record);
                add(writer, *c);
            }
            Msg::LaneDone => *lanes = lanes.saturating_sub(1),
            Msg::NodeHints(h) => {
                if h.ct_sysctl.is_some() {
                    self.hints.ct_sysctl = h.ct_sysctl;
                }
                if h.legacy4.is_some() {
                    self.hints.legacy4 = h.legacy4;
                }
                if h.legacy6.is_some() {
                    self.hints.legacy6 = h.legacy6;
                }
                if h.ip_vs.is_some() {
                    self.hints.ip_vs = h.ip_vs;
                }
            }
            // Handled by the caller's loops.
            Msg::Survey(_) | Msg::Identity(_) | Msg::NetnsDone(_) => {}
        }
    }
}

/// Next message, or `None` once the capture phase is over.
fn recv(rx: &Receiver<Msg>, deadline: &Deadline) -> Option<Msg> {
    let left = deadline.results_remaining();
    if left.is_zero() {
        return None;
    }
    match rx.recv_timeout(left) {
        Ok(m) => Some(m),
        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_proc(root: &Path, pid: u32, state: &str, resolv: Option<&str>) {
        let d = root.join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("stat"),
            format!("{pid} (pause (x)) {state} 1 {pid} {pid} 0 -1"),
        )
        .unwrap();
        if let Some(text) = resolv {
            fs::create_dir_all(d.join("root/etc")).unwrap();
            fs::write(d.join("root/etc/resolv.conf"), text).unwrap();
        }
    }

    #[test]
    fn resolv_conf_of_a_netns_whose_processes_exit() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        fake_proc(p, 10, "S", Some("nameserver 10.96.0.10\n"));
        fake_proc(p, 11, "Z", None); // exited, not reaped yet
        fake_proc(p, 13, "S", None); // alive, but its root has no resolv.conf
                                     // 12: exited and reaped (no /proc entry)
        assert_eq!(
            read_netns_resolv(p, &[11, 12, 10]),
            ResolvRead::Read {
                text: "nameserver 10.96.0.10\n".into(),
                pid: 10
            }
        );
        // Every process exited: a failure that says so, not "no process".
        match read_netns_resolv(p, &[11, 12]) {
            ResolvRead::Failed { reason, pid: None } => {
                assert!(reason.contains("11, 12 exited"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match read_netns_resolv(p, &[11, 13]) {
            ResolvRead::Failed {
                reason,
                pid: Some(13),
            } => assert!(reason.contains("No such file"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_netns_resolv(p, &[]), ResolvRead::NoProcess);
    }
}
