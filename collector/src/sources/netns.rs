//! The per-netns sources, read from a thread already switched into the netns:
//! links, addresses, routes and rules, neighbours and fdb (rtnetlink), sockets,
//! sysctls, and resolv.conf and hostname as one of the netns's processes sees them.

use crate::source::Captured;
use crate::sources::{sockets, sysctl};
use crate::sys::netlink::NetlinkError;
use crate::sys::netns_thread;
use crate::sys::{Rtnl, Sys};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::{NeighTable, RouteTable};
use netsnap_schema::SourceStatus;
use std::path::Path;
use std::time::Duration;

/// `links.json`, and whether the netns has `kube-ipvs0` (a kube-proxy hint).
pub fn links(rtnl: &mut dyn Rtnl, id: &str, budget: Duration) -> (Captured, bool) {
    match rtnl.links(budget) {
        Ok(d) => {
            let kube_ipvs0 = d.messages.iter().any(|l| l.name == "kube-ipvs0");
            let c = dump_record(NetnsFile::Links, id, d.problem(), &d.messages);
            (c, kube_ipvs0)
        }
        Err(e) => (failed(NetnsFile::Links, &e), false),
    }
}

/// `addrs.json`.
pub fn addrs(rtnl: &mut dyn Rtnl, id: &str, budget: Duration) -> Captured {
    match rtnl.addrs(budget) {
        Ok(d) => dump_record(NetnsFile::Addrs, id, d.problem(), &d.messages),
        Err(e) => failed(NetnsFile::Addrs, &e),
    }
}

/// `routes.json`: routes of all tables and the rules; rules that fail make it partial.
pub fn routes(rtnl: &mut dyn Rtnl, id: &str, budget: Duration) -> Captured {
    let routes = rtnl.routes(budget);
    let rules = rtnl.rules(budget);
    match (routes, rules) {
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
        (Err(e), _) => failed(NetnsFile::Routes, &e),
    }
}

/// `neigh.json`: neighbours and the bridge fdb; an fdb that fails makes it partial.
pub fn neigh(rtnl: &mut dyn Rtnl, id: &str, budget: Duration) -> Captured {
    let neigh = rtnl.neighbours(budget);
    let fdb = rtnl.fdb(budget);
    match (neigh, fdb) {
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
            let problem = Some(format!("bridge fdb: {e}"));
            dump_record(NetnsFile::Neigh, id, problem, &table)
        }
        (Err(e), _) => failed(NetnsFile::Neigh, &e),
    }
}

fn failed(f: NetnsFile, e: &NetlinkError) -> Captured {
    Captured::failed(f.source_name(), e.to_string())
}

/// `sockets.json` of the calling thread's netns.
pub fn sockets(sys: &dyn Sys, id: &str) -> Captured {
    let scan = sockets::scan_thread_netns(sys);
    let mut problems = scan.errors.clone();
    if scan.unparsed > 0 {
        problems.push(format!(
            "{} socket table line(s) not understood",
            scan.unparsed
        ));
    }
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    if scan.sockets.is_empty() && scan.errors.len() == 4 {
        Captured::failed(NetnsFile::Sockets.source_name(), problems.join("; "))
    } else {
        dump_record(NetnsFile::Sockets, id, problem, &scan.sockets)
    }
}

/// The netns's sysctls: the record when `wanted`, and the conntrack count (read
/// always: it feeds `conntrack/sysctl.json`).
pub fn sysctls(id: &str, wanted: bool) -> (Option<Captured>, Option<u64>) {
    let r = sysctl::netns_sysctls();
    let ct_count = r
        .values
        .get("net.netfilter.nf_conntrack_count")
        .and_then(|v| v.parse().ok());
    let c = wanted.then(|| dump_record(NetnsFile::Sysctl, id, r.error(), &r.values));
    (c, ct_count)
}

/// `resolv.conf` of the netns from what [`read_netns_resolv`] gave.
pub fn resolv_record(id: &str, read: ResolvRead) -> Captured {
    let name = NetnsFile::ResolvConf.source_name();
    match read {
        ResolvRead::Read { text, pid } => Captured::bytes(
            name,
            layout::netns_path(id, NetnsFile::ResolvConf),
            SourceStatus::Ok,
            text.into_bytes(),
        )
        .with_note(format!("from pid {pid}")),
        ResolvRead::Failed { reason, .. } => Captured::failed(name, reason),
        ResolvRead::NoProcess => Captured::unavailable(name, "no process lives in this netns"),
    }
}

/// What reading a netns's resolv.conf through its processes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum ResolvRead {
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
pub fn read_netns_resolv(proc_root: &Path, pids: &[u32]) -> ResolvRead {
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

/// The UTS hostname of `pid` (switching this throwaway thread's UTS namespace), or
/// its /etc/hostname when that is not permitted.
pub fn pod_hostname(pid: u32) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{FakeDump, FakeSys};
    use std::fs;
    use std::time::Instant;

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

    fn rtnl(sys: &FakeSys) -> Box<dyn Rtnl> {
        sys.rtnetlink().unwrap()
    }

    const BUDGET: Duration = Duration::from_secs(5);

    #[test]
    fn a_failed_second_dump_makes_the_record_partial() {
        let sys = FakeSys::default()
            .dump("rules", FakeDump::Kernel(libc::EPERM))
            .dump("fdb", FakeDump::Kernel(libc::EOPNOTSUPP));
        let c = routes(&mut *rtnl(&sys), "pod-1", BUDGET);
        assert_eq!(c.record.status, SourceStatus::Partial);
        assert_eq!(c.record.path.as_deref(), Some("netns/pod-1/routes.json"));
        let e = c.record.error.unwrap();
        assert!(e.starts_with("rules: permission denied"), "{e}");
        let c = neigh(&mut *rtnl(&sys), "pod-1", BUDGET);
        assert_eq!(c.record.status, SourceStatus::Partial);
        assert!(c.record.error.unwrap().starts_with("bridge fdb: "));
        // The first dump failing fails the record: nothing to keep.
        let sys = FakeSys::default().dump("routes", FakeDump::Kernel(libc::EPERM));
        let c = routes(&mut *rtnl(&sys), "pod-1", BUDGET);
        assert_eq!(c.record.status, SourceStatus::Failed);
        assert!(c.record.path.is_none());
    }

    #[test]
    fn an_interrupted_dump_is_partial_and_a_hung_one_ends_at_its_budget() {
        let sys = FakeSys::default().dump("addrs", FakeDump::Interrupted);
        let c = addrs(&mut *rtnl(&sys), "root", BUDGET);
        assert_eq!(c.record.status, SourceStatus::Partial);
        assert!(c.record.error.is_some());
        let sys = FakeSys::default().dump("links", FakeDump::Hangs);
        let started = Instant::now();
        let (c, _) = links(&mut *rtnl(&sys), "root", Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(c.record.status, SourceStatus::Failed);
        assert!(c.record.error.unwrap().contains("timed out after 0.1s"));
    }

    #[test]
    fn kube_ipvs0_is_noticed() {
        let link = |name: &str| {
            netsnap_schema::model::Link::new(1, name, 1500)
                .with_state(netsnap_schema::model::LinkState::Up)
        };
        let sys = FakeSys::default().links(vec![link("lo"), link("kube-ipvs0")]);
        let (c, ipvs0) = links(&mut *rtnl(&sys), "root", BUDGET);
        assert!(ipvs0);
        assert_eq!(c.record.status, SourceStatus::Ok);
        let sys = FakeSys::default().links(vec![link("lo")]);
        assert!(!links(&mut *rtnl(&sys), "root", BUDGET).1);
    }
}
