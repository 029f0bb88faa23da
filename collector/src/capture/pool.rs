//! Stage 5: the netns pool. One fresh thread per netns, at most `parallelism` at once,
//! node netns first; each sends links/addrs/routes (cheap, first), then
//! neigh/sockets/sysctl/resolv. The main thread takes every message meanwhile.

use super::discover::Candidate;
use super::identity::Identities;
use super::lanes::{fail_all, send};
use super::results::{recv, Results};
use super::{Ctx, Msg};
use crate::deadline::budgets;
use crate::source::{Captured, Timer};
use crate::sources::netns::{self, ResolvRead};
use crate::sys::netlink::NetlinkError;
use crate::sys::netns_thread::{self, NetnsError, NetnsTarget};
use netsnap_schema::layout::NetnsFile;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

/// What a netns thread learnt besides its records.
pub(super) struct NetnsDone {
    pub id: String,
    pub hostname: Option<String>,
    pub ct_count: Option<u64>,
    pub kube_ipvs0: bool,
}

impl NetnsDone {
    fn new(id: &str) -> NetnsDone {
        NetnsDone {
            id: id.to_string(),
            hostname: None,
            ct_count: None,
            kube_ipvs0: false,
        }
    }
}

/// What the pool stage hands to the assembly.
pub(super) struct Pooled {
    pub netns_done: HashMap<String, NetnsDone>,
    pub identities: Option<Identities>,
}

/// One netns job.
struct NetnsJob {
    id: String,
    target: NetnsTarget,
    pids: Vec<u32>,
    is_root: bool,
}

/// The main thread's loop: keeps up to `parallelism` netns threads running and takes
/// every message until all work is done or the deadline.
pub(super) fn run(
    ctx: &Arc<Ctx>,
    selected: &[&Candidate],
    (tx, rx): (&Sender<Msg>, &Receiver<Msg>),
    results: &mut Results,
    mut identity_running: bool,
) -> Pooled {
    let mut queue: VecDeque<NetnsJob> = selected
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
            results.expect(f.source_name(), Some(&job.id), planned_ms);
        }
    }
    let mut running = 0usize;
    let mut pooled = Pooled {
        netns_done: HashMap::new(),
        identities: None,
    };
    loop {
        while running < ctx.cfg.parallelism.max(1) && !ctx.deadline.expired() {
            let Some(job) = queue.pop_front() else {
                break;
            };
            match spawn_job(ctx, tx, job) {
                Ok(()) => running += 1,
                // Recorded as pending → failed at the end with this reason.
                Err(e) => results.errors.push(format!("starting a netns thread: {e}")),
            }
        }
        let all_done =
            running == 0 && queue.is_empty() && results.lanes_running == 0 && !identity_running;
        if all_done {
            break;
        }
        match recv(rx, &ctx.deadline).map(|m| results.take(m)) {
            Some(Some(Msg::NetnsDone(d))) => {
                running -= 1;
                pooled.netns_done.insert(d.id.clone(), d);
            }
            Some(Some(Msg::Identity(i))) => {
                identity_running = false;
                pooled.identities = Some(i);
            }
            Some(_) => {}
            None => break, // deadline
        }
    }
    // Late results that are already queued still count.
    while let Ok(m) = rx.try_recv() {
        match results.take(m) {
            Some(Msg::NetnsDone(d)) => {
                pooled.netns_done.insert(d.id.clone(), d);
            }
            Some(Msg::Identity(i)) => pooled.identities = Some(i),
            _ => {}
        }
    }
    pooled
}

fn spawn_job(ctx: &Arc<Ctx>, tx: &Sender<Msg>, job: NetnsJob) -> std::io::Result<()> {
    let ctx2 = Arc::clone(ctx);
    let tx2 = tx.clone();
    let target = job.target.clone();
    let name = format!("netns-{}", job.id);
    let work = Box::new(move |entered: Result<(), NetnsError>| {
        let d = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            netns_job(&ctx2, &tx2, &job, entered)
        }))
        .unwrap_or_else(|_| NetnsDone::new(&job.id));
        let _ = tx2.send(Msg::NetnsDone(d));
    });
    ctx.sys.spawn_in_netns(name, &target, work)
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

/// Captures one netns; runs on its own fresh thread, already switched.
fn netns_job(
    ctx: &Ctx,
    tx: &Sender<Msg>,
    job: &NetnsJob,
    entered: Result<(), NetnsError>,
) -> NetnsDone {
    let mut done = NetnsDone::new(&job.id);
    let id = job.id.as_str();
    if let Err(e) = enter_job(job, entered) {
        let all_names: Vec<&str> = NetnsFile::ALL.iter().map(|f| f.source_name()).collect();
        fail_all(ctx, tx, &all_names, Some(id), &e.to_string());
        return done;
    }
    let out = |c: Captured, t: &Timer| send(tx, c.in_netns(id), t);
    let wants = |f: NetnsFile| ctx.wants(f.source_name());
    if !netlink_sources(ctx, tx, id, &mut done) {
        return done;
    }
    if wants(NetnsFile::Sockets) {
        let t = Timer::start(&ctx.deadline);
        out(netns::sockets(&*ctx.sys, id), &t);
    }
    let t = Timer::start(&ctx.deadline);
    let (sysctl, ct_count) = netns::sysctls(id, wants(NetnsFile::Sysctl));
    done.ct_count = ct_count;
    if let Some(c) = sysctl {
        out(c, &t);
    }
    // resolv.conf and hostname as one of the netns's processes sees them.
    let t = Timer::start(&ctx.deadline);
    let read = netns::read_netns_resolv(Path::new("/proc"), &job.pids);
    let host_pid = match &read {
        ResolvRead::Read { pid, .. } => Some(*pid),
        ResolvRead::Failed { pid, .. } => *pid,
        ResolvRead::NoProcess => None,
    };
    if wants(NetnsFile::ResolvConf) {
        out(netns::resolv_record(id, read), &t);
    }
    if !job.is_root {
        if let Some(pid) = host_pid {
            done.hostname = netns::pod_hostname(pid);
        }
    }
    done
}

/// The rtnetlink sources of the netns; `false` when the netns job must stop (no
/// runtime could be built on this thread).
fn netlink_sources(ctx: &Ctx, tx: &Sender<Msg>, id: &str, done: &mut NetnsDone) -> bool {
    const FILES: [NetnsFile; 4] = [
        NetnsFile::Links,
        NetnsFile::Addrs,
        NetnsFile::Routes,
        NetnsFile::Neigh,
    ];
    let wanted: Vec<NetnsFile> = FILES
        .into_iter()
        .filter(|f| ctx.wants(f.source_name()))
        .collect();
    if wanted.is_empty() {
        return true;
    }
    let mut rtnl = match ctx.sys.rtnetlink() {
        Ok(r) => r,
        Err(e) => {
            let names: Vec<&str> = FILES.iter().map(|f| f.source_name()).collect();
            fail_all(ctx, tx, &names, Some(id), &e.to_string());
            return !matches!(e, NetlinkError::Runtime(_));
        }
    };
    let budget = || ctx.deadline.budget(budgets::NETLINK_DUMP);
    for f in wanted {
        let t = Timer::start(&ctx.deadline);
        let c = match f {
            NetnsFile::Links => {
                let (c, kube_ipvs0) = netns::links(&mut *rtnl, id, budget());
                done.kube_ipvs0 = kube_ipvs0;
                c
            }
            NetnsFile::Addrs => netns::addrs(&mut *rtnl, id, budget()),
            NetnsFile::Routes => netns::routes(&mut *rtnl, id, budget()),
            _ => netns::neigh(&mut *rtnl, id, budget()),
        };
        send(tx, c.in_netns(id), &t);
    }
    true
}
