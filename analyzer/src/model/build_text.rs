//! Model parts built from the text sources: IPVS and ipset, conntrack (flow aggregates
//! made while parsing), resolv.conf files and the kernel log.

use super::dns::Resolv;
use super::ipvs::{IpsetMember, RealServer, VirtualServer};
use super::services::{Endpoint, Frontend, FrontendKind, Protocol, Proxier, Service};
use super::{Evidence, KernelEvent, KernelLogLine, Model};
use crate::parse::kmsg::KmsgKind;
use crate::parse::resolv::ResolvConf;
use crate::parse::Parsed;
use crate::sources::{Flows, Sources};
use netsnap_schema::layout;

/// IPVS virtual servers become services; kube-proxy's KUBE-CLUSTER-IP ipset is kept.
pub fn services_ipvs(model: &mut Model, src: &Sources<'_>) {
    model.ipvs.present = src.ipvs.is_some();
    let ipvs_name = netsnap_schema::registry::SourceId::Ipvs.name();
    model.ipvs.not_loaded = src
        .manifest()
        .sources
        .iter()
        .find(|r| r.name == ipvs_name && r.netns.is_none())
        .filter(|r| r.status == netsnap_schema::SourceStatus::Unavailable)
        .map(|r| {
            let why = r.error.as_deref().unwrap_or("unavailable");
            Evidence::new(
                netsnap_schema::manifest::MANIFEST_PATH,
                None,
                format!("{ipvs_name} unavailable: {why}"),
            )
        });
    if let Some(p) = &src.ipvs {
        let path = layout::IPVS;
        for vs in &p.model.services {
            let (Some(ip), Some(port)) = (vs.addr, vs.port) else {
                continue;
            };
            let Some(protocol) = Protocol::parse(&vs.protocol) else {
                continue;
            };
            let ev = Evidence::new(path, Some(vs.line), src.excerpt(path, vs.line));
            let mut s = Service::new(
                format!("{}/{protocol}", super::services::sockaddr(ip, port)),
                protocol,
                Proxier::Ipvs,
            );
            s.frontends.push(Frontend {
                kind: FrontendKind::ClusterIp,
                ip: Some(ip),
                port,
                evidence: ev.clone(),
            });
            s.affinity_seconds = vs.persistent;
            let mut virtual_server = VirtualServer {
                protocol,
                ip,
                port,
                scheduler: vs.scheduler.clone(),
                persistent: vs.persistent,
                evidence: ev.clone(),
                real_servers: Vec::new(),
            };
            for d in &vs.destinations {
                virtual_server.real_servers.push(RealServer {
                    ip: d.addr,
                    port: d.port,
                    forward: d.forward.clone(),
                    weight: u32::try_from(d.weight).unwrap_or(0),
                    evidence: Evidence::new(path, Some(d.line), src.excerpt(path, d.line)),
                });
                s.endpoints.push(Endpoint {
                    ip: d.addr,
                    port: d.port,
                    chain: None,
                    share: None,
                    weight: Some(u32::try_from(d.weight).unwrap_or(0)),
                    active_conns: Some(u64::from(d.active)),
                    inactive_conns: Some(u64::from(d.inactive)),
                    evidence: Evidence::new(path, Some(d.line), src.excerpt(path, d.line)),
                });
            }
            if s.endpoints.is_empty() {
                s.no_endpoints.push(ev);
            }
            // Name it after the iptables/nft service on the same VIP, if any names it.
            s.name = model
                .services
                .iter()
                .find(|o| o.protocol == protocol && o.answers_on(ip, port) && o.name.is_some())
                .and_then(|o| o.name.clone());
            model.services.push(s);
            model.ipvs.virtual_servers.push(virtual_server);
        }
    }
    if let Some(p) = &src.ipset {
        if let Some(set) = p.model.set("KUBE-CLUSTER-IP") {
            let members = set
                .entries
                .iter()
                .filter_map(|e| {
                    // `10.96.0.10,udp:53`
                    let (ip, rest) = e.value.split_once(',')?;
                    let (proto, port) = rest.split_once(':')?;
                    Some(IpsetMember {
                        ip: super::net::parse_ip(ip)?,
                        protocol: Protocol::parse(proto)?,
                        port: port.parse().ok()?,
                        evidence: Evidence::new(
                            layout::IPSET,
                            Some(e.line),
                            src.excerpt(layout::IPSET, e.line),
                        ),
                    })
                })
                .collect();
            model.ipvs.cluster_ip_set = Some(members);
        }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

pub fn conntrack(model: &mut Model, src: &Sources<'_>, flows: Option<Flows>) {
    if let Some(j) = &src.conntrack_sysctl {
        let root_id = model.root().map(|n| n.id.clone());
        let get = |k: &str| {
            let v = j.value.node.get(k)?;
            let n = parse_u64(v)?;
            Some((n, Evidence::new(&j.path, None, format!("node.{k} = {v}"))))
        };
        let ct = &mut model.conntrack;
        ct.count = get("net.netfilter.nf_conntrack_count").or_else(|| {
            let id = root_id.as_ref()?;
            let n = *j.value.count_by_netns.get(id)?;
            Some((
                n,
                Evidence::new(&j.path, None, format!("count_by_netns.{id} = {n}")),
            ))
        });
        ct.max = get("net.netfilter.nf_conntrack_max");
        ct.buckets = get("net.netfilter.nf_conntrack_buckets");
    }
    if let Some((v, ev)) = model.node_sysctl("net.ipv4.ip_local_port_range") {
        let mut it = v.split_whitespace().filter_map(|x| x.parse::<u16>().ok());
        if let (Some(a), Some(b)) = (it.next(), it.next()) {
            model.conntrack.port_range = Some((a, b, ev));
        }
    }
    let ct = &mut model.conntrack;
    if let Some(p) = &src.conntrack_stat {
        for (k, v) in &p.model.totals {
            ct.stats.insert(k.clone(), *v);
        }
        if let Some(c) = p.model.clash_resolve() {
            ct.stats.insert("clash_resolve".into(), c);
        }
        let line = p
            .model
            .cpus
            .first()
            .map(|r| r.line.saturating_sub(1))
            .filter(|l| *l > 0);
        ct.stats_evidence = Some(Evidence::new(
            layout::CONNTRACK_STAT,
            line,
            line.map(|l| src.excerpt(layout::CONNTRACK_STAT, l))
                .unwrap_or_default(),
        ));
    }
    ct.rates = src
        .counter_samples
        .as_ref()
        .and_then(|p| super::conntrack::rates_of(&p.model));
    // A verified bundle holds exactly the entries its manifest lists (the raw table
    // itself may have been released once parsed).
    let record = src.manifest().source_at(layout::CONNTRACK_ENTRIES);
    ct.entries_present = record.is_some();
    if let Some(t) = record.and_then(|r| r.truncated) {
        ct.total_on_node = Some(t.total);
    }
    if let Some(flows) = flows {
        ct.entries = flows.entries;
        (ct.dnat, ct.snat) = super::conntrack::flows_from(flows, layout::CONNTRACK_ENTRIES);
    }
}

fn resolv(p: &Parsed<ResolvConf>, src: &Sources<'_>) -> Resolv {
    let path = p.coverage.path.clone();
    let r = &p.model;
    Resolv {
        nameservers: r
            .nameservers
            .iter()
            .map(|n| {
                (
                    n.addr.to_string(),
                    Evidence::new(path.clone(), Some(n.line), src.excerpt(&path, n.line)),
                )
            })
            .collect(),
        search: r.search.clone(),
        search_evidence: r
            .search_line
            .map(|l| Evidence::new(path.clone(), Some(l), src.excerpt(&path, l))),
        options: {
            let mut o = Vec::new();
            if let Some(n) = r.options.ndots {
                o.push(format!("ndots:{n}"));
            }
            o.extend(r.options.unknown.iter().cloned());
            o
        },
        path,
    }
}

pub fn dns(model: &mut Model, src: &Sources<'_>) {
    model.dns.host = src.host_resolv.as_ref().map(|p| resolv(p, src));
    model.dns.kubelet = src.kubelet_resolv.as_ref().map(|p| resolv(p, src));
}

pub fn kernel_log(model: &mut Model, src: &Sources<'_>) {
    let Some(p) = &src.kmsg else { return };
    for r in &p.model.records {
        let (kind, netns_inode) = match &r.kind {
            KmsgKind::ConntrackTableFull { netns } => (KernelEvent::ConntrackTableFull, *netns),
            KmsgKind::NeighbourTableOverflow { .. } => (KernelEvent::NeighbourTableOverflow, None),
            _ => continue,
        };
        model.kernel_log.push(KernelLogLine {
            kind,
            netns_inode,
            evidence: Evidence::new(
                layout::HOST_KMSG,
                Some(r.line),
                src.excerpt(layout::HOST_KMSG, r.line),
            ),
        });
    }
}

pub fn netns_resolv(id: &str, src: &Sources<'_>) -> Option<Resolv> {
    src.netns.get(id)?.resolv.as_ref().map(|p| resolv(p, src))
}
