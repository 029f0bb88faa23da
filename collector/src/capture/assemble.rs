//! Stage 6: the sources assembled from what the other stages found (the netns index,
//! conntrack sysctls, host facts), and the manifest.

use super::discover::{self, Candidate, Discovered};
use super::identity::Identities;
use super::pod_identity::{self, Crictl};
use super::pool::Pooled;
use super::results::Results;
use super::survey::Survey;
use super::Ctx;
use crate::deadline::millis;
use crate::source::{Captured, Timer};
use crate::sources::host;
use crate::time::UtcTime;
use netsnap_schema::layout;
use netsnap_schema::model::{ConntrackSysctl, KubeProxyHints, NetnsEntry, NetnsIndex};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{Manifest, SourceStatus};

/// What discovery and the survey found.
pub(super) struct Found<'a> {
    pub discovered: &'a Discovered,
    /// When discovery ended (ms since the start).
    pub discovery_ms: u64,
    pub survey: &'a Survey,
    pub selected: &'a [&'a Candidate],
}

/// Adds the assembled sources to the results; returns how many pods were identified.
pub(super) fn sources(ctx: &Ctx, found: &Found, pooled: &Pooled, results: &mut Results) -> usize {
    let node_hostname = host::hostname();
    let mut pod_count = 0;
    if ctx.wants(SourceId::NetnsIndex.name()) {
        let t0 = ctx.deadline.elapsed_ms();
        let index = netns_index(ctx, found, pooled, &node_hostname);
        pod_count = index.netns.iter().filter(|n| n.pod.is_some()).count();
        let mut c = index_record(ctx, found, pooled, &results.errors, &index);
        // Discovery ran from the start; assembling took from t0 until now.
        c.record.started_ms = 0;
        c.record.duration_ms = found.discovery_ms + ctx.deadline.elapsed_ms().saturating_sub(t0);
        results.add(c);
    }
    if ctx.wants(SourceId::ConntrackSysctl.name()) {
        let t = Timer::start(&ctx.deadline);
        let c = conntrack_sysctl(ctx, pooled, results);
        results.add(c.timed(&t));
    }
    if ctx.wants(SourceId::HostFacts.name()) {
        let t = Timer::start(&ctx.deadline);
        let hints = KubeProxyHints {
            kube_ipvs0: pooled
                .netns_done
                .values()
                .any(|d| d.kube_ipvs0 && d.id == "root"),
            ip_vs: results.hints.ip_vs.unwrap_or(false),
            legacy_tables: results.hints.legacy4.clone().unwrap_or_default(),
            legacy6_tables: results.hints.legacy6.clone().unwrap_or_default(),
        };
        let facts = host::facts(hints);
        let name = SourceId::HostFacts.name();
        let c = Captured::json(name, layout::HOST_FACTS, SourceStatus::Ok, &facts);
        results.add(c.timed(&t));
    }
    pod_count
}

/// One entry per captured netns, with its pod when identified.
fn netns_index(ctx: &Ctx, found: &Found, pooled: &Pooled, node_hostname: &str) -> NetnsIndex {
    let mut index = NetnsIndex::default();
    for c in found.selected {
        let hostname = pooled
            .netns_done
            .get(&c.id)
            .and_then(|d| d.hostname.clone());
        let pod = pooled.identities.as_ref().and_then(|ids| {
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
            let root = ctx.sys.host_root();
            pod_identity::resolve(&facts, &ids.logs, &ids.crictl, root, node_hostname)
        });
        index.netns.push(NetnsEntry {
            id: c.id.clone(),
            inode: c.target.ino,
            dev: c.target.dev,
            is_root: c.is_root,
            found_by: c.found_by.clone(),
            nsid: found.survey.nsids.get(&c.id).copied().flatten(),
            pids: c.pids.iter().take(discover::MAX_PIDS).copied().collect(),
            hostname,
            pod,
        });
    }
    index.inaccessible = found.discovered.inaccessible.clone();
    index
}

/// The index's record: partial with every problem met on the way, and notes.
fn index_record(
    ctx: &Ctx,
    found: &Found,
    pooled: &Pooled,
    errors: &[String],
    index: &NetnsIndex,
) -> Captured {
    let discovered = found.discovered;
    let mut problems: Vec<String> = discovered.errors.clone();
    problems.extend(errors.iter().cloned());
    if discovered.inaccessible_pids > 0 {
        problems.push(format!(
            "permission denied: the netns of {} process(es) could not be inspected",
            discovered.inaccessible_pids
        ));
    }
    if let Some(e) = &found.survey.error {
        problems.push(format!("nsid survey: {e}"));
    }
    if pooled.identities.is_none() && !found.selected.is_empty() {
        problems.push("pod identity resolution did not finish before the deadline".into());
    }
    let status = if problems.is_empty() {
        SourceStatus::Ok
    } else {
        SourceStatus::Partial
    };
    let name = SourceId::NetnsIndex.name();
    let mut c = Captured::json(name, layout::NETNS_INDEX, status, index);
    if !problems.is_empty() {
        c = c.with_error(problems.join("; "));
    }
    let mut notes = vec![format!(
        "{} netns found, {} captured{}",
        discovered.candidates.len(),
        found.selected.len(),
        if ctx.cfg.node_netns.is_some() {
            " (--node-netns: the node and netns with a veth peer in it)"
        } else {
            ""
        }
    )];
    if let Some(ids) = &pooled.identities {
        notes.extend(identity_notes(ids));
    }
    c.with_note(notes.join("; "))
}

fn identity_notes(ids: &Identities) -> [String; 2] {
    let logs = format!("{} pod log dir(s) under the host root", ids.logs.len());
    let crictl = match &ids.crictl {
        Crictl::NotRun(r) => format!("crictl not used: {r}"),
        Crictl::Failed(r) => format!("crictl failed: {r}"),
        Crictl::Pods(p) => format!("crictl: {} sandbox(es)", p.len()),
    };
    [logs, crictl]
}

/// `conntrack/sysctl.json`: the node's conntrack sysctls and the count per netns.
fn conntrack_sysctl(ctx: &Ctx, pooled: &Pooled, results: &mut Results) -> Captured {
    let name = SourceId::ConntrackSysctl.name();
    let mut ct = ConntrackSysctl::default();
    let mut problem = None;
    match results.hints.ct_sysctl.take() {
        Some(Ok(v)) => ct.node = v,
        Some(Err(e)) => problem = Some(e),
        None => problem = Some("node conntrack sysctls were not read before the deadline".into()),
    }
    for (id, d) in &pooled.netns_done {
        if let Some(n) = d.ct_count {
            ct.count_by_netns.insert(id.clone(), n);
        }
    }
    if ct.node.is_empty() && !ctx.sys.module_present("nf_conntrack") {
        return Captured::unavailable(name, "nf_conntrack is not loaded");
    }
    let status = if problem.is_some() {
        SourceStatus::Partial
    } else {
        SourceStatus::Ok
    };
    let c = Captured::json(name, layout::CONNTRACK_SYSCTL, status, &ct);
    match problem {
        Some(p) => c.with_error(p),
        None => c,
    }
}

/// The manifest: who, when, and with which options.
pub(super) fn manifest(ctx: &Ctx, started_at: &UtcTime) -> Manifest {
    let mut manifest = Manifest::new(
        env!("CARGO_PKG_VERSION"),
        &host::hostname(),
        &host::kernel_release(),
        &started_at.rfc3339(),
        started_at.secs(),
    );
    manifest.captured_at_unix_ms = Some(started_at.unix_ms);
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
    manifest
}
