//! Stage 2: the node-wide sources, on lanes. A lane is a fresh thread switched into
//! the node netns that runs its sources in order. One lane per tool (or group of
//! cheap file reads): a tool that hangs until the deadline then costs only its own
//! source, never the ones queued behind it.

use super::results::Results;
use super::{Ctx, Msg, NodeHints};
use crate::deadline::budgets;
use crate::source::{Captured, Timer};
use crate::sources::{cilium, cni, conntrack, host, ipvs, kmsg, netfilter, samples, sysctl};
use crate::sys::netns_thread::NetnsError;
use netsnap_schema::registry::{SourceId, SOURCES};
use netsnap_schema::{layout, SourceStatus};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

/// The node-wide lanes, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Conntrack,
    IptNft,
    Ip6tNft,
    Legacy,
    Nft,
    IpsetIpvs,
    Host,
    /// `cilium-dbg` asks the agent over its socket: an agent that hangs must not hold
    /// up another lane.
    Cilium,
    /// `--samples`: readings spread over the capture, on their own clock.
    Samples,
}

const LANES: [Lane; 9] = [
    Lane::Conntrack,
    Lane::IptNft,
    Lane::Ip6tNft,
    Lane::Legacy,
    Lane::Nft,
    Lane::IpsetIpvs,
    Lane::Host,
    Lane::Cilium,
    Lane::Samples,
];

/// Where the collector captures a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Lane(Lane),
    /// The netns pool, once per netns.
    Netns,
    /// Assembled at the end from what the other stages found.
    Assembled,
}

/// How each source is captured. No wildcard arm: a source added to the registry does
/// not compile until it has a place here.
pub(super) fn stage_of(id: SourceId) -> Stage {
    use SourceId::*;
    match id {
        ConntrackEntries | ConntrackStat | HostSysctl => Stage::Lane(Lane::Conntrack),
        IptablesNftSave => Stage::Lane(Lane::IptNft),
        Ip6tablesNftSave => Stage::Lane(Lane::Ip6tNft),
        IptablesLegacySave | Ip6tablesLegacySave => Stage::Lane(Lane::Legacy),
        NftJson => Stage::Lane(Lane::Nft),
        Ipvs | IpvsStats | IpvsConn | Ipset => Stage::Lane(Lane::IpsetIpvs),
        HostResolvConf | HostKubeletResolvConf | HostKmsg | HostCni => Stage::Lane(Lane::Host),
        CiliumServices | CiliumBpfLb => Stage::Lane(Lane::Cilium),
        CounterSamples => Stage::Lane(Lane::Samples),
        NetnsLinks | NetnsAddrs | NetnsRoutes | NetnsNeigh | NetnsSockets | NetnsSysctl
        | NetnsResolvConf => Stage::Netns,
        NetnsIndex | ConntrackSysctl | HostFacts => Stage::Assembled,
    }
}

impl Lane {
    fn name(self) -> &'static str {
        match self {
            Lane::Conntrack => "conntrack",
            Lane::IptNft => "ipt-nft",
            Lane::Ip6tNft => "ip6t-nft",
            Lane::Legacy => "legacy",
            Lane::Nft => "nft",
            Lane::IpsetIpvs => "ipset-ipvs",
            Lane::Host => "host",
            Lane::Cilium => "cilium",
            Lane::Samples => "samples",
        }
    }

    /// The sources this lane reports.
    fn sources(self) -> Vec<&'static str> {
        SOURCES
            .iter()
            .filter(|s| stage_of(s.id) == Stage::Lane(self))
            .map(|s| s.name)
            .collect()
    }

    fn body(self, ctx: &Ctx, tx: &Sender<Msg>) {
        match self {
            Lane::Conntrack => lane_conntrack(ctx, tx),
            Lane::IptNft => run_save(ctx, tx, 0),
            Lane::Ip6tNft => run_save(ctx, tx, 1),
            Lane::Legacy => lane_legacy(ctx, tx),
            Lane::Nft => lane_nft(ctx, tx),
            Lane::IpsetIpvs => lane_ipset_ipvs(ctx, tx),
            Lane::Host => lane_host(ctx, tx),
            Lane::Cilium => lane_cilium(ctx, tx),
            Lane::Samples => run_source(ctx, tx, SourceId::CounterSamples.name(), || {
                samples::capture(ctx.cfg.sampling, &ctx.deadline)
            }),
        }
    }
}

/// Starts every lane, its sources registered as pending first.
pub(super) fn start(ctx: &Arc<Ctx>, tx: &Sender<Msg>, results: &mut Results) {
    for lane in LANES {
        for s in lane.sources().into_iter().filter(|s| ctx.wants(s)) {
            results.expect(s, None, ctx.deadline.elapsed_ms());
        }
        spawn_lane(ctx, tx, lane);
        results.lanes_running += 1;
    }
}

/// Sends a record, stamping its timing.
pub(super) fn send(tx: &Sender<Msg>, c: Captured, t: &Timer) {
    let _ = tx.send(Msg::Source(Box::new(c.timed(t))));
}

/// Runs `f` for `name` if selected (the main thread records skipped sources itself).
pub(super) fn run_source(ctx: &Ctx, tx: &Sender<Msg>, name: &str, f: impl FnOnce() -> Captured) {
    if !ctx.wants(name) {
        return;
    }
    let t = Timer::start(&ctx.deadline);
    let c = if ctx.deadline.expired() {
        Captured::failed(name, "not started: capture deadline reached")
    } else {
        f()
    };
    send(tx, c, &t);
}

/// [`run_source`] for a source that gives one record per file.
pub(super) fn run_source_files(
    ctx: &Ctx,
    tx: &Sender<Msg>,
    name: &str,
    f: impl FnOnce() -> Vec<Captured>,
) {
    if !ctx.wants(name) {
        return;
    }
    let t = Timer::start(&ctx.deadline);
    if ctx.deadline.expired() {
        let c = Captured::failed(name, "not started: capture deadline reached");
        return send(tx, c, &t);
    }
    for c in f() {
        send(tx, c, &t);
    }
}

/// A failed record for each selected source of `names`.
pub(super) fn fail_all(
    ctx: &Ctx,
    tx: &Sender<Msg>,
    names: &[&str],
    netns: Option<&str>,
    reason: &str,
) {
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

fn spawn_lane(ctx: &Arc<Ctx>, tx: &Sender<Msg>, lane: Lane) {
    let ctx2 = Arc::clone(ctx);
    let tx2 = tx.clone();
    let work = Box::new(move |entered: Result<(), NetnsError>| {
        // A bug must cost this lane's sources (recorded as not finished), not make
        // the main thread wait for the deadline.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match entered {
            Ok(()) => lane.body(&ctx2, &tx2),
            Err(e) => fail_all(&ctx2, &tx2, &lane.sources(), None, &e.to_string()),
        }));
        let _ = tx2.send(Msg::LaneDone);
    });
    let name = format!("lane-{}", lane.name());
    if let Err(e) = ctx.sys.spawn_in_netns(name, &ctx.node, work) {
        let reason = format!("starting a thread: {e}");
        fail_all(ctx, tx, &lane.sources(), None, &reason);
        let _ = tx.send(Msg::LaneDone);
    }
}

fn run_save(ctx: &Ctx, tx: &Sender<Msg>, index: usize) {
    let spec = &netfilter::SAVES[index];
    run_source(ctx, tx, spec.id.name(), || {
        netfilter::capture_save(&*ctx.sys, spec, ctx.spool(), &ctx.deadline)
    });
}

fn lane_legacy(ctx: &Ctx, tx: &Sender<Msg>) {
    let hints = NodeHints {
        legacy4: host::legacy_tables(false).ok().flatten(),
        legacy6: host::legacy_tables(true).ok().flatten(),
        ..Default::default()
    };
    let _ = tx.send(Msg::NodeHints(hints));
    run_save(ctx, tx, 2);
    run_save(ctx, tx, 3);
}

fn lane_nft(ctx: &Ctx, tx: &Sender<Msg>) {
    run_source(ctx, tx, SourceId::NftJson.name(), || {
        netfilter::capture_nft(&*ctx.sys, ctx.spool(), &ctx.deadline)
    });
}

fn lane_ipset_ipvs(ctx: &Ctx, tx: &Sender<Msg>) {
    let hints = NodeHints {
        ip_vs: Some(crate::sys::procfs::thread_net("ip_vs").exists()),
        ..Default::default()
    };
    let _ = tx.send(Msg::NodeHints(hints));
    run_source(ctx, tx, SourceId::Ipvs.name(), ipvs::capture_services);
    run_source(ctx, tx, SourceId::IpvsStats.name(), ipvs::capture_stats);
    run_source(ctx, tx, SourceId::IpvsConn.name(), || {
        ipvs::capture_conn(ctx.spool(), ctx.cfg.conntrack_limit)
    });
    run_source(ctx, tx, SourceId::Ipset.name(), || {
        netfilter::capture_ipset(&*ctx.sys, ctx.spool(), &ctx.deadline)
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
    let name = SourceId::HostSysctl.name();
    run_source(ctx, tx, name, || {
        let r = sysctl::node_sysctls();
        let status = if r.errors.is_empty() {
            SourceStatus::Ok
        } else {
            SourceStatus::Partial
        };
        let c = Captured::json(name, layout::HOST_SYSCTL, status, &r.values);
        match r.error() {
            Some(e) => c.with_error(e),
            None => c,
        }
    });
    run_source(
        ctx,
        tx,
        SourceId::ConntrackStat.name(),
        conntrack::capture_stat,
    );
    run_source(ctx, tx, SourceId::ConntrackEntries.name(), || {
        conntrack::capture_entries(
            &*ctx.sys,
            ctx.spool(),
            ctx.cfg.conntrack_limit,
            &ctx.deadline,
        )
    });
}

fn lane_host(ctx: &Ctx, tx: &Sender<Msg>) {
    let root = ctx.sys.host_root();
    run_source(ctx, tx, SourceId::HostResolvConf.name(), || {
        host::capture_resolv_conf(root)
    });
    run_source(ctx, tx, SourceId::HostKubeletResolvConf.name(), || {
        host::capture_kubelet_resolv_conf(root)
    });
    run_source(ctx, tx, SourceId::HostKmsg.name(), || {
        kmsg::capture(Instant::now() + ctx.deadline.budget(budgets::KMSG))
    });
    run_source_files(ctx, tx, SourceId::HostCni.name(), || {
        cni::capture(&*ctx.sys)
    });
}

fn lane_cilium(ctx: &Ctx, tx: &Sender<Msg>) {
    run_source(ctx, tx, SourceId::CiliumServices.name(), || {
        cilium::capture_services(&*ctx.sys, &ctx.deadline)
    });
    run_source(ctx, tx, SourceId::CiliumBpfLb.name(), || {
        cilium::capture_bpf_lb(&*ctx.sys, &ctx.deadline)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsnap_schema::registry::Producer;

    #[test]
    fn every_collector_source_has_one_place() {
        for s in SOURCES
            .iter()
            .filter(|s| s.producers.contains(&Producer::Collector))
        {
            match stage_of(s.id) {
                Stage::Lane(l) => assert!(l.sources().contains(&s.name), "{}", s.name),
                Stage::Netns => assert!(matches!(
                    s.location,
                    netsnap_schema::registry::Location::PerNetns(_)
                )),
                Stage::Assembled => {}
            }
        }
        let in_lanes: usize = LANES.iter().map(|l| l.sources().len()).sum();
        let lane_sources = SOURCES
            .iter()
            .filter(|s| matches!(stage_of(s.id), Stage::Lane(_)))
            .count();
        assert_eq!(in_lanes, lane_sources, "a lane missing from LANES");
    }
}
