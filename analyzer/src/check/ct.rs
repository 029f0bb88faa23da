//! CT: conntrack saturation, drops, races, stale and skewed flows.

use super::{CheckId, Evidence, Facts, Finding, Severity};
use crate::model::services::sockaddr;
use crate::model::{FrontendKind, KernelEvent, Protocol, Service};
use std::collections::HashMap;

/// Collects what `check` pushes.
fn collect(ctx: &Facts<'_>, check: fn(&Facts<'_>, &mut Vec<Finding>)) -> Vec<Finding> {
    let mut out = Vec::new();
    check(ctx, &mut out);
    out
}

/// CT001.
pub fn table_nearly_full(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, table_usage)
}

/// CT002.
pub fn conntrack_drops(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, drop_counters)
}

/// CT003.
pub fn insert_failures(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, insert_counters)
}

/// CT004.
pub fn kernel_logged_table_full(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, table_full_log)
}

/// CT005.
pub fn stale_dnat_entries(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, dnat_to_removed_endpoints)
}

/// CT006.
pub fn snat_port_exhaustion(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, flows_per_snat_tuple)
}

/// CT007.
pub fn skewed_endpoint_traffic(ctx: &Facts<'_>) -> Vec<Finding> {
    collect(ctx, flows_per_endpoint)
}

fn table_usage(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let ct = &ctx.model.conntrack;
    let (Some((count, cev)), Some((max, mev))) = (&ct.count, &ct.max) else {
        return;
    };
    if *max == 0 {
        return;
    }
    let usage = *count as f64 / *max as f64;
    let t = ctx.thresholds;
    let severity = if usage >= t.conntrack_critical {
        Severity::Critical
    } else if usage >= t.conntrack_warning {
        Severity::Warning
    } else {
        return;
    };
    out.push(
        Finding::new(
            CheckId::Ct001,
            severity,
            "node conntrack table",
            format!(
                "the conntrack table holds {count} of {max} entries ({:.1} %): at 100 % new connections are dropped.",
                usage * 100.0
            ),
        )
        .evidence(cev.clone())
        .evidence(mev.clone()),
    );
}

fn stat(ctx: &Facts<'_>, key: &str) -> u64 {
    ctx.model.conntrack.stats.get(key).copied().unwrap_or(0)
}

fn stat_evidence(ctx: &Facts<'_>, keys: &[(&str, u64)]) -> Evidence {
    let base = ctx
        .model
        .conntrack
        .stats_evidence
        .clone()
        .unwrap_or_else(|| {
            Evidence::new(netsnap_schema::layout::CONNTRACK_STAT, None, String::new())
        });
    let summed: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Evidence::new(
        base.path,
        base.line,
        format!("summed over CPUs: {}", summed.join(" ")),
    )
}

/// Drops for lack of room: `drop` less the lost insert races, which the kernel
/// counts in `drop` and `insert_failed` both (nf_ct_resolve_clash) and which are
/// CT003's (e.g. a flooded multicast clone on a br_netfilter bridge).
fn no_room(drop: u64, insert_failed: u64) -> u64 {
    drop - drop.min(insert_failed)
}

fn drop_counters(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let (drop, early) = (stat(ctx, "drop"), stat(ctx, "early_drop"));
    let raced = drop.min(stat(ctx, "insert_failed"));
    let no_room_total = no_room(drop, stat(ctx, "insert_failed"));
    if no_room_total == 0 && early == 0 {
        return;
    }
    let races = if raced > 0 {
        format!("; CT003 counts {raced} of them as lost insert races")
    } else {
        String::new()
    };
    let since_boot = format!(
        "since boot: {no_room_total} packet(s) dropped for lack of room for a new entry (drop={drop}{races}), early_drop={early} (entries evicted to make room)"
    );
    let evidence = stat_evidence(ctx, &[("drop", drop), ("early_drop", early)]);
    let Some(r) = &ctx.model.conntrack.rates else {
        out.push(
            Finding::new(
                CheckId::Ct002,
                if no_room_total > 0 { Severity::Critical } else { Severity::Warning },
                "node conntrack stats",
                format!("conntrack dropped packets {since_boot}. Whether it still does is a rate: collect with --samples N to see it."),
            )
            .evidence(evidence),
        );
        return;
    };
    let now = match (
        r.delta("drop"),
        r.delta("insert_failed"),
        r.delta("early_drop"),
    ) {
        (Some(d), Some(f), Some(e)) => Some((no_room(d, f), e)),
        (Some(d), None, Some(e)) => Some((d, e)),
        _ => None,
    };
    let (severity, message) = match now {
        Some((0, 0)) => (
            Severity::Info,
            format!("conntrack is not dropping now: no drop {} of the capture; {since_boot}.", r.span()),
        ),
        Some((d, e)) => (
            if d > 0 { Severity::Critical } else { Severity::Warning },
            format!(
                "conntrack is dropping now: {:.1}/s for lack of room, {:.1}/s evicted early ({d} and {e} {}); {since_boot}.",
                r.per_second(d),
                r.per_second(e),
                r.span()
            ),
        ),
        None => (
            if no_room_total > 0 { Severity::Critical } else { Severity::Warning },
            format!("conntrack dropped packets {since_boot}; the counters went down between the readings (a reset), so no rate."),
        ),
    };
    out.push(
        Finding::new(CheckId::Ct002, severity, "node conntrack stats", message)
            .evidence(evidence)
            .evidence(r.evidence.clone()),
    );
}

fn insert_counters(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let (failed, chain, clash) = (
        stat(ctx, "insert_failed"),
        stat(ctx, "chaintoolong"),
        stat(ctx, "clash_resolve"),
    );
    let evidence = || {
        stat_evidence(
            ctx,
            &[
                ("insert_failed", failed),
                ("chaintoolong", chain),
                ("clash_resolve", clash),
            ],
        )
    };
    if failed > 0 || chain > 0 {
        let totals = format!("insert_failed={failed}, chaintoolong={chain} since boot");
        let rates = ctx.model.conntrack.rates.as_ref();
        let now = rates.and_then(|r| {
            let f = r.delta("insert_failed")?;
            let c = r.delta("chaintoolong").unwrap_or(0);
            Some((r, f, c))
        });
        let (severity, message) = match now {
            Some((r, 0, 0)) => (
                Severity::Info,
                format!("conntrack lost insert races earlier ({totals}) but none {} of the capture.", r.span()),
            ),
            Some((r, f, c)) => (
                Severity::Warning,
                format!(
                    "conntrack is losing insert races now: insert_failed {:.1}/s, chaintoolong {:.1}/s ({f} and {c} {}; {totals}): racing inserts lose packets (the DNS 5-second delay) or hash chains are too long for the bucket count.",
                    r.per_second(f),
                    r.per_second(c),
                    r.span()
                ),
            ),
            None => (
                Severity::Warning,
                format!("conntrack {totals}: racing inserts lost packets (the DNS 5-second delay) or hash chains are too long for the bucket count."),
            ),
        };
        let mut f = Finding::new(CheckId::Ct003, severity, "node conntrack stats", message)
            .evidence(evidence());
        if let Some(r) = rates {
            f = f.evidence(r.evidence.clone());
        }
        out.push(f);
    } else if clash > 0 {
        out.push(
            Finding::new(
                CheckId::Ct003,
                Severity::Info,
                "node conntrack stats",
                format!("conntrack clash_resolve={clash}: parallel inserts of the same flow (typically A/AAAA DNS over UDP) clashed and were resolved; no packet was lost."),
            )
            .evidence(evidence()),
        );
    }
}

fn table_full_log(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let root_inode = ctx.model.root().map(|r| r.inode).filter(|i| *i != 0);
    let lines: Vec<Evidence> = ctx
        .model
        .kernel_log
        .iter()
        .filter(|l| l.kind == KernelEvent::ConntrackTableFull)
        // A message naming another netns (another node on the same kernel) is not ours.
        .filter(|l| match (l.netns_inode, root_inode) {
            (Some(n), Some(r)) => n == r,
            _ => true,
        })
        .map(|l| l.evidence.clone())
        .collect();
    // The kernel counts every such drop in the netns' `drop` stat. A netns inode is
    // reused after a netns dies, so a logged line with our inode but a zero drop
    // counter belongs to an earlier netns.
    let drops_known_zero = ctx.model.conntrack.stats.get("drop") == Some(&0);
    if lines.is_empty() || drops_known_zero {
        return;
    }
    let n = lines.len();
    out.push(
        Finding::new(
            CheckId::Ct004,
            Severity::Critical,
            "kernel log",
            format!("the kernel logged `nf_conntrack: table full` {n} time(s): packets were dropped for lack of conntrack entries."),
        )
        .with_evidence(lines.into_iter().take(ctx.thresholds.max_evidence_lines)),
    );
}

/// Services reachable at a fixed address (not NodePorts) by (ip, port, protocol), as
/// indices into the model's list, each service once per address in its own order.
/// Hashed: it is looked up once per DNAT aggregate (a big node has a hundred
/// thousand).
type ServicesAt = HashMap<(std::net::IpAddr, u16, Protocol), Vec<usize>, crate::fx::Fx>;

fn services_at(ctx: &Facts<'_>) -> ServicesAt {
    let mut m = ServicesAt::default();
    for (i, s) in ctx.model.services.iter().enumerate() {
        for f in s
            .frontends
            .iter()
            .filter(|f| f.kind != FrontendKind::NodePort)
        {
            if let Some(ip) = f.ip {
                let at = m.entry((ip, f.port, s.protocol)).or_default();
                // Two frontends of one service at one address (an external IP that
                // is also its cluster IP) still name it once.
                if !at.contains(&i) {
                    at.push(i);
                }
            }
        }
    }
    m
}

fn dnat_to_removed_endpoints(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let at = services_at(ctx);
    let services = &ctx.model.services;
    for d in &ctx.model.conntrack.dnat {
        let Some(svcs) = at.get(&(d.vip, d.vport, d.protocol)) else {
            continue;
        };
        if svcs
            .iter()
            .any(|&s| services[s].has_endpoint(d.backend, d.backend_port))
        {
            continue;
        }
        let s = &services[svcs[0]];
        let udp = d.protocol == Protocol::Udp;
        out.push(
            Finding::new(
                CheckId::Ct005,
                if udp { Severity::Warning } else { Severity::Info },
                format!("{} -> {}", s.subject(), d.backend),
                format!(
                    "{} conntrack {} entr{} DNAT {} {} to {}, which is no longer an endpoint of {}{}.",
                    d.flows,
                    d.protocol,
                    if d.flows == 1 { "y" } else { "ies" },
                    d.protocol,
                    d.vip_string(),
                    d.backend_string(),
                    s.display_name(),
                    if udp {
                        ": UDP clients keep being sent to the old backend until the entry times out"
                    } else {
                        " (existing connections only)"
                    }
                ),
            )
            .evidence(d.first.clone()),
        );
    }
}

fn flows_per_snat_tuple(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let ct = &ctx.model.conntrack;
    let Some((lo, hi, rev)) = &ct.port_range else {
        return;
    };
    let ports = u64::from(hi.saturating_sub(*lo)) + 1;
    let limit = (ports as f64 * ctx.thresholds.snat_ports_warning).ceil() as u64;
    for s in ct.snat.iter().filter(|s| s.flows >= limit.max(1)) {
        out.push(
            Finding::new(
                CheckId::Ct006,
                Severity::Warning,
                format!("snat {} -> {}", s.snat_ip, sockaddr(s.dst, s.dst_port)),
                format!(
                    "{} {} flows are source-NATed to {} towards {}: {:.0} % of the {ports} ports of ip_local_port_range; new connections start failing when it is exhausted.",
                    s.flows,
                    s.protocol,
                    s.snat_ip,
                    sockaddr(s.dst, s.dst_port),
                    s.flows as f64 * 100.0 / ports as f64
                ),
            )
            .evidence(s.first.clone())
            .evidence(rev.clone()),
        );
    }
}

fn flows_per_endpoint(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let t = ctx.thresholds;
    let services = &ctx.model.services;
    let skewable = |s: &Service| s.endpoints.len() >= 2;
    // The flows to each endpoint of each service (through its fixed addresses), with
    // the first such aggregate (evidence): one slot per endpoint, in one list, filled
    // in one pass over the aggregates (a big node has a hundred thousand of each).
    let mut first_slot = Vec::with_capacity(services.len());
    let mut slots = 0;
    for s in services {
        first_slot.push(slots);
        if skewable(s) {
            slots += s.endpoints.len();
        }
    }
    let mut sums: Vec<(u64, Option<&crate::model::DnatFlows>)> = vec![(0, None); slots];
    let at = services_at(ctx);
    for d in &ctx.model.conntrack.dnat {
        let Some(svcs) = at.get(&(d.vip, d.vport, d.protocol)) else {
            continue;
        };
        for &i in svcs.iter().filter(|&&i| skewable(&services[i])) {
            let endpoints = services[i].endpoints.iter().enumerate();
            for (e, _) in endpoints.filter(|(_, e)| e.ip == d.backend && e.port == d.backend_port) {
                let sum = &mut sums[first_slot[i] + e];
                sum.0 += d.flows;
                sum.1.get_or_insert(d);
            }
        }
    }
    for (i, s) in services.iter().enumerate().filter(|(_, s)| skewable(s)) {
        let flows = &sums[first_slot[i]..first_slot[i] + s.endpoints.len()];
        let total: u64 = flows.iter().map(|(n, _)| n).sum();
        if total < t.skew_min_flows {
            continue;
        }
        // Load per endpoint relative to its programmed share (1.0 = fair).
        let n = s.endpoints.len() as f64;
        let loads: Vec<f64> = s
            .endpoints
            .iter()
            .zip(flows)
            .map(|(e, (f, _))| *f as f64 / (e.share.filter(|p| *p > 0.0).unwrap_or(1.0 / n) * n))
            .collect();
        let (Some(hi), Some(lo)) = (
            loads
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1)),
            loads.iter().copied().min_by(|a, b| a.total_cmp(b)),
        ) else {
            continue;
        };
        let ratio = (hi.1 + 1.0) / (lo + 1.0);
        if ratio < t.skew_ratio {
            continue;
        }
        let (e, (f, d)) = (&s.endpoints[hi.0], &flows[hi.0]);
        let per: Vec<String> = s
            .endpoints
            .iter()
            .zip(flows)
            .map(|(e, (f, _))| format!("{}: {f}", sockaddr(e.ip, e.port)))
            .collect();
        out.push(
            Finding::new(
                CheckId::Ct007,
                if s.affinity_seconds.is_some() { Severity::Info } else { Severity::Warning },
                s.subject(),
                format!(
                    "{} of {total} flows of {} go to {} ({ratio:.1}× the least loaded endpoint, relative to their shares){}: {}.",
                    f,
                    s.display_name(),
                    sockaddr(e.ip, e.port),
                    if s.affinity_seconds.is_some() { ", expected with session affinity" } else { "" },
                    per.join(", ")
                ),
            )
            .with_evidence(d.map(|d| d.first.clone())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::model::{DnatFlows, KernelEvent, KernelLogLine, Protocol, SnatFlows};

    fn dnat(
        vip: &str,
        vport: u16,
        backend: &str,
        port: u16,
        flows: u64,
        protocol: Protocol,
    ) -> DnatFlows {
        DnatFlows {
            protocol,
            vip: ip(vip),
            vport,
            backend: ip(backend),
            backend_port: port,
            flows,
            unreplied: 0,
            first: ev("conntrack/nf_conntrack.txt"),
        }
    }

    #[test]
    fn ct001_usage_levels() {
        let mut k = healthy();
        k.model().conntrack.max = Some((1000, ev("c")));
        k.model().conntrack.count = Some((500, ev("c")));
        assert!(k.run(&["CT"]).is_empty());
        k.model().conntrack.count = Some((850, ev("c")));
        let f = k.run(&["CT"]);
        assert_eq!(ids(&f), vec![("CT001", "node conntrack table")]);
        assert_eq!(f[0].severity, crate::check::Severity::Warning);
        k.model().conntrack.count = Some((1000, ev("c")));
        assert_eq!(k.run(&["CT"])[0].severity, crate::check::Severity::Critical);
        k.thresholds.conntrack_warning = 0.4;
        k.model().conntrack.count = Some((500, ev("c")));
        assert_eq!(
            ids(&k.run(&["CT"])),
            vec![("CT001", "node conntrack table")]
        );
    }

    #[test]
    fn ct002_ct003_stats() {
        let mut k = healthy();
        k.model().conntrack.stats.insert("drop".into(), 3);
        k.model().conntrack.stats.insert("insert_failed".into(), 2);
        let f = k.run(&["CT"]);
        assert_eq!(
            ids(&f),
            vec![
                ("CT002", "node conntrack stats"),
                ("CT003", "node conntrack stats")
            ]
        );
        assert!(
            f[0].message
                .contains("since boot: 1 packet(s) dropped for lack of room"),
            "{}",
            f[0].message
        );
        let mut k = healthy();
        k.model().conntrack.stats.insert("clash_resolve".into(), 2);
        let f = k.run(&["CT"]);
        assert_eq!(f[0].severity, crate::check::Severity::Info);
    }

    /// With `--samples`, CT002/CT003 say whether the node is dropping *now*: a rate
    /// over the readings, or info when the totals since boot did not move.
    #[test]
    fn ct002_ct003_rates_from_samples() {
        use crate::model::conntrack::CounterRates;
        let rates = |first: &[(&str, u64)], last: &[(&str, u64)]| CounterRates {
            seconds: 10.0,
            readings: 5,
            first: first.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            last: last.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            count: Some((100, 120)),
            evidence: ev("samples/counters.json"),
        };
        let base = [
            ("drop", 500),
            ("early_drop", 0),
            ("insert_failed", 10),
            ("chaintoolong", 0),
        ];
        let with = |r: CounterRates| {
            let mut k = healthy();
            for (key, v) in &r.last {
                k.model().conntrack.stats.insert(key.clone(), *v);
            }
            k.model().conntrack.rates = Some(r);
            k
        };
        // 1300 more drops in 10 s, 10 of them lost races: 129/s for lack of room.
        let mut k = with(rates(
            &base,
            &[
                ("drop", 1800),
                ("early_drop", 0),
                ("insert_failed", 20),
                ("chaintoolong", 0),
            ],
        ));
        let f = k.run(&["CT"]);
        assert_eq!(
            ids(&f),
            vec![
                ("CT002", "node conntrack stats"),
                ("CT003", "node conntrack stats")
            ]
        );
        assert_eq!(f[0].severity, crate::check::Severity::Critical);
        assert!(
            f[0].message
                .contains("dropping now: 129.0/s for lack of room"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message.contains("over 10.0 s (5 readings)"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].evidence.len(), 2);
        assert!(
            f[1].message.contains("insert_failed 1.0/s"),
            "{}",
            f[1].message
        );
        assert_eq!(f[1].severity, crate::check::Severity::Warning);
        // The same totals, nothing new during the capture: info, both.
        let mut k = with(rates(&base, &base));
        let f = k.run(&["CT"]);
        assert!(
            f.iter().all(|f| f.severity == crate::check::Severity::Info),
            "{f:#?}"
        );
        assert!(
            f[0].message.contains("not dropping now"),
            "{}",
            f[0].message
        );
        // A counter that went down (reset): no rate, the totals speak.
        let mut k = with(rates(
            &[("drop", 900), ("early_drop", 0), ("insert_failed", 10)],
            &base,
        ));
        let f = k.run(&["CT002"]);
        assert_eq!(f[0].severity, crate::check::Severity::Critical);
        assert!(f[0].message.contains("a reset"), "{}", f[0].message);
    }

    /// Drops the kernel also counted as failed inserts are lost races (CT003), not a
    /// full table: no CT002 for them.
    #[test]
    fn ct002_not_for_drops_that_are_lost_insert_races() {
        let mut k = healthy();
        k.model().conntrack.stats.insert("drop".into(), 2);
        k.model().conntrack.stats.insert("insert_failed".into(), 2);
        let f = k.run(&["CT"]);
        assert_eq!(ids(&f), vec![("CT003", "node conntrack stats")]);
        // With early drops, the table was short of room after all.
        k.model().conntrack.stats.insert("early_drop".into(), 1);
        let f = k.run(&["CT002"]);
        assert_eq!(f[0].severity, crate::check::Severity::Warning);
        assert!(
            f[0].message
                .contains("CT003 counts 2 of them as lost insert races"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn ct004_table_full_in_this_netns_only() {
        // The node's conntrack stats count drops.
        let mut k = healthy();
        k.describe(|n| {
            n.stat_row.insert("drop", 3);
        });
        let line = |inode| KernelLogLine {
            kind: KernelEvent::ConntrackTableFull,
            netns_inode: inode,
            evidence: ev("host/kmsg.txt"),
        };
        k.model().kernel_log.push(line(Some(4026539999)));
        assert!(
            k.run(&["CT004"]).is_empty(),
            "another netns' table is not ours"
        );
        k.model().kernel_log.push(line(Some(4026531840)));
        assert_eq!(ids(&k.run(&["CT004"])), vec![("CT004", "kernel log")]);
        // Same inode but no drop counted in this netns: an earlier netns' line.
        k.model().conntrack.stats.insert("drop".into(), 0);
        assert!(k.run(&["CT004"]).is_empty());
    }

    #[test]
    fn ct005_stale_dnat() {
        let mut k = healthy();
        k.model().conntrack.dnat = vec![
            dnat("10.96.0.10", 53, "10.244.1.53", 53, 4, Protocol::Udp),
            dnat("10.96.0.10", 53, "10.244.1.77", 53, 1, Protocol::Udp),
        ];
        let f = k.run(&["CT"]);
        assert_eq!(
            ids(&f),
            vec![("CT005", "service kube-system/kube-dns:dns -> 10.244.1.77")]
        );
    }

    #[test]
    fn ct006_snat_ports() {
        let mut k = healthy();
        k.model().conntrack.port_range = Some((32768, 32867, ev("s")));
        k.model().conntrack.snat = vec![SnatFlows {
            protocol: Protocol::Tcp,
            snat_ip: ip("10.0.0.10"),
            dst: ip("93.184.216.34"),
            dst_port: 443,
            flows: 60,
            first: ev("conntrack/nf_conntrack.txt"),
        }];
        assert_eq!(
            ids(&k.run(&["CT"])),
            vec![("CT006", "snat 10.0.0.10 -> 93.184.216.34:443")]
        );
        k.model().conntrack.snat[0].flows = 10;
        assert!(k.run(&["CT"]).is_empty());
    }

    #[test]
    fn ct007_skew() {
        let mut k = healthy();
        k.model().conntrack.dnat = vec![
            dnat("10.96.1.1", 80, "10.244.1.11", 8080, 190, Protocol::Tcp),
            dnat("10.96.1.1", 80, "10.244.1.12", 8080, 10, Protocol::Tcp),
        ];
        let f = k.run(&["CT"]);
        assert_eq!(ids(&f), vec![("CT007", "service default/web:http")]);
        k.model().conntrack.dnat[0].flows = 120;
        k.model().conntrack.dnat[1].flows = 80;
        assert!(k.run(&["CT"]).is_empty(), "1.5× is under the 3× threshold");
        k.thresholds.skew_ratio = 1.4;
        assert_eq!(
            ids(&k.run(&["CT"])),
            vec![("CT007", "service default/web:http")]
        );
    }

    /// An endpoint's flows are summed over every fixed address of its service (an
    /// address two frontends share counted once), not over its NodePorts nor another
    /// service's address; the evidence is the first aggregate summed.
    #[test]
    fn ct007_sums_every_fixed_address_once() {
        use crate::model::{Frontend, FrontendKind};
        let mut k = healthy();
        let frontend = |kind, ip: Option<&str>, port| Frontend {
            kind,
            ip: ip.map(super::super::testkit::ip),
            port,
            evidence: ev("f"),
        };
        let web = k.service_mut("default/web:http");
        web.frontends.extend([
            frontend(FrontendKind::ExternalIp, Some("203.0.113.9"), 80),
            frontend(FrontendKind::LoadBalancer, Some("10.96.1.1"), 80),
            frontend(FrontendKind::NodePort, None, 30080),
        ]);
        let mut first = dnat("203.0.113.9", 80, "10.244.1.11", 8080, 90, Protocol::Tcp);
        first.first = ev("first");
        k.model().conntrack.dnat = vec![
            first,
            dnat("10.96.1.1", 80, "10.244.1.11", 8080, 100, Protocol::Tcp),
            dnat("10.96.1.1", 80, "10.244.1.12", 8080, 10, Protocol::Tcp),
            dnat("10.0.0.1", 30080, "10.244.1.12", 8080, 1000, Protocol::Tcp),
            dnat("10.96.1.1", 80, "10.244.1.12", 8080, 1000, Protocol::Udp),
            dnat("10.96.0.10", 53, "10.244.1.12", 8080, 1000, Protocol::Tcp),
        ];
        let f = k.run(&["CT007"]);
        assert_eq!(ids(&f), vec![("CT007", "service default/web:http")]);
        assert!(
            f[0].message
                .starts_with("190 of 200 flows of default/web:http go to 10.244.1.11:8080"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].evidence[0].path, "first");
    }
}
