//! Services from kube-proxy's nftables mode (`table ip kube-proxy` / `ip6 kube-proxy`).
//!
//! Both shapes: `service-ips` vmap → `service-…` chain → `numgen … vmap` → `endpoint-…`
//! chain with `dnat to`, and the direct `dnat to numgen random mod N map { … }` form.
//! JSON has no useful lines: evidence lines are the object index in the `nftables`
//! array, as the parser reports them.

use super::services::{
    Endpoint, Frontend, FrontendKind, Protocol, Proxier, RuleDefect, Service, ServiceName,
};
use super::Evidence;
use crate::parse::nft::{parse_kube_proxy_chain, NftRule, NftRuleset, NftSet, Val, Verdict};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

pub const TABLE: &str = "kube-proxy";

/// A one-line rendering of a value for excerpts.
pub fn show(v: &Val) -> String {
    match v {
        Val::Str(s) => s.clone(),
        Val::Num(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::SetRef(s) => format!("@{s}"),
        Val::Prefix { addr, len } => format!("{addr}/{len}"),
        Val::Range(a, b) => format!("{}-{}", show(a), show(b)),
        Val::Concat(vs) => vs.iter().map(show).collect::<Vec<_>>().join(" . "),
        Val::Set(vs) => format!(
            "{{ {} }}",
            vs.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Val::MapLit(kv) => format!(
            "{{ {} }}",
            kv.iter()
                .map(|(k, v)| format!("{} : {}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Val::Elem { val, .. } => show(val),
        Val::Verdict(v) => verdict(v),
        Val::Payload { protocol, field } => format!("{protocol} {field}"),
        Val::Meta { key } => format!("meta {key}"),
        Val::Ct { key, .. } => format!("ct {key}"),
        Val::Numgen { mode, modulus, .. } => format!("numgen {mode} mod {modulus}"),
        Val::Fib { result, .. } => format!("fib {result}"),
        Val::Binop { op, left, right } => format!("{} {op} {}", show(left), show(right)),
        Val::Map { key, data } => format!("{} map {}", show(key), show(data)),
        Val::Other(j) => j.to_string(),
    }
}

pub fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Return => "return".into(),
        Verdict::Queue => "queue".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
    }
}

fn rule_evidence(path: &str, r: &NftRule, what: &str) -> Evidence {
    Evidence::new(
        path,
        Some(r.index),
        format!("table {} {} chain {}: {what}", r.family, r.table, r.chain),
    )
}

fn set_evidence(path: &str, s: &NftSet, what: &str) -> Evidence {
    Evidence::new(
        path,
        Some(s.index),
        format!("table {} {} map {}: {what}", s.family, s.table, s.name),
    )
}

fn chain_target(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
        _ => None,
    }
}

/// (ip, proto, port) of a `ipv4_addr . inet_proto . inet_service` key, or (proto, port).
fn key_parts(k: &Val) -> (Option<IpAddr>, Option<Protocol>, u16) {
    let parts: Vec<&Val> = match k.unwrap_elem() {
        Val::Concat(vs) => vs.iter().collect(),
        v => vec![v],
    };
    let mut ip = None;
    let mut proto = None;
    let mut port = 0;
    for p in parts {
        match p {
            Val::Str(s) => {
                if let Ok(a) = s.parse::<IpAddr>() {
                    ip = Some(a);
                } else if let Some(pr) = Protocol::parse(s) {
                    proto = Some(pr);
                } else if let Ok(n) = s.parse::<u16>() {
                    port = n;
                }
            }
            Val::Num(n) => port = u16::try_from(*n).unwrap_or(0),
            _ => {}
        }
    }
    (ip, proto, port)
}

fn elem_comment(k: &Val) -> Option<&str> {
    match k {
        Val::Elem { comment, .. } => comment.as_deref(),
        _ => None,
    }
}

/// The service a kube-proxy chain belongs to, created on first sight.
fn service_for<'a>(
    by_chain: &'a mut BTreeMap<String, Service>,
    chain: &str,
    proto: Option<Protocol>,
) -> Option<&'a mut Service> {
    let p = parse_kube_proxy_chain(chain)?;
    let base = format!(
        "{}-{}/{}/{}/{}",
        p.hash, p.namespace, p.service, p.protocol, p.port_name
    );
    let protocol = Protocol::parse(&p.protocol)
        .or(proto)
        .unwrap_or(Protocol::Tcp);
    let svc = by_chain.entry(base.clone()).or_insert_with(|| {
        let mut s = Service::new(format!("service-{base}"), protocol, Proxier::Nftables);
        s.name = Some(ServiceName {
            namespace: p.namespace.clone(),
            name: p.service.clone(),
            port: p.port_name.clone(),
        });
        s
    });
    Some(svc)
}

/// Builds the services of kube-proxy's nftables tables.
pub fn services(rs: &NftRuleset, path: &str) -> Vec<Service> {
    let mut out = Vec::new();
    for fam in ["ip", "ip6"] {
        if rs.table(fam, TABLE).is_some() {
            out.extend(services_of(rs, path, fam));
        }
    }
    out
}

/// The kube-proxy table's chains and rules by chain name (one lookup per endpoint).
struct TableIndex<'a> {
    chains: HashSet<&'a str>,
    rules: HashMap<&'a str, Vec<&'a NftRule>>,
}

impl<'a> TableIndex<'a> {
    fn new(rs: &'a NftRuleset, fam: &str) -> TableIndex<'a> {
        let mut rules: HashMap<&str, Vec<&NftRule>> = HashMap::new();
        for r in rs
            .rules
            .iter()
            .filter(|r| r.family == fam && r.table == TABLE)
        {
            rules.entry(r.chain.as_str()).or_default().push(r);
        }
        TableIndex {
            chains: rs
                .chains
                .iter()
                .filter(|c| c.family == fam && c.table == TABLE)
                .map(|c| c.name.as_str())
                .collect(),
            rules,
        }
    }

    fn has(&self, chain: &str) -> bool {
        self.chains.contains(chain)
    }

    fn rules(&self, chain: &str) -> impl Iterator<Item = &'a NftRule> + '_ {
        self.rules.get(chain).into_iter().flatten().copied()
    }
}

/// Services keyed by the `service-…`/`local-…` chain's name after the kind
/// (HASH-ns/svc/proto/port).
type ByChain = BTreeMap<String, Service>;

fn services_of(rs: &NftRuleset, path: &str, fam: &str) -> Vec<Service> {
    let ix = TableIndex::new(rs, fam);
    let mut by_chain = ByChain::new();
    frontends_from_maps(rs, &ix, path, fam, &mut by_chain);
    endpoints_from_chains(rs, &ix, path, fam, &mut by_chain);
    affinity_from_sets(rs, fam, &mut by_chain);
    services_without_endpoints(rs, path, fam, &mut by_chain);
    // A service with frontends and nothing behind them has no endpoints.
    for s in by_chain.values_mut() {
        if s.endpoints.is_empty()
            && s.no_endpoints.is_empty()
            && !s.frontends.is_empty()
            && s.defects.is_empty()
        {
            if let Some(f) = s.frontends.first() {
                let ev = f.evidence.clone();
                s.no_endpoints.push(ev);
            }
        }
    }
    let mut out: Vec<Service> = by_chain.into_values().collect();
    super::services::sort_by_name(&mut out);
    out
}

/// Frontends from the service maps (ClusterIP, NodePort, load balancer, external IPs).
fn frontends_from_maps(
    rs: &NftRuleset,
    ix: &TableIndex<'_>,
    path: &str,
    fam: &str,
    by_chain: &mut ByChain,
) {
    let cluster_ips: Vec<IpAddr> = rs
        .set(fam, TABLE, "cluster-ips")
        .map(|s| {
            s.elements
                .iter()
                .filter_map(|e| key_parts(&e.key).0)
                .collect()
        })
        .unwrap_or_default();

    for (map, nodeport) in [
        ("service-ips", false),
        ("service-nodeports", true),
        ("firewall-ips", false),
    ] {
        let Some(set) = rs.set(fam, TABLE, map) else {
            continue;
        };
        for (k, v, _) in set.verdict_elements() {
            let Some(target) = chain_target(v) else {
                continue;
            };
            let (ip, proto, port) = key_parts(k);
            let kind = if nodeport {
                FrontendKind::NodePort
            } else if map == "firewall-ips" {
                FrontendKind::LoadBalancer
            } else if ip.is_some_and(|a| cluster_ips.contains(&a))
                || cluster_ips.is_empty() && target.starts_with("service-")
            {
                FrontendKind::ClusterIp
            } else {
                FrontendKind::ExternalIp
            };
            let excerpt = format!("{} : {}", show(k), verdict(v));
            if let Some(svc) = service_for(by_chain, target, proto) {
                svc.frontends.push(Frontend {
                    kind,
                    ip: if nodeport { None } else { ip },
                    port,
                    evidence: set_evidence(path, set, &excerpt),
                });
                if !ix.has(target) {
                    svc.defects.push(RuleDefect {
                        what: format!("map {map} points at chain {target}, which does not exist"),
                        evidence: set_evidence(path, set, &excerpt),
                    });
                }
            }
        }
    }
}

/// Endpoints of every service/local/external chain, even one no map points at.
fn endpoints_from_chains(
    rs: &NftRuleset,
    ix: &TableIndex<'_>,
    path: &str,
    fam: &str,
    by_chain: &mut ByChain,
) {
    for c in rs
        .chains
        .iter()
        .filter(|c| c.family == fam && c.table == TABLE)
    {
        let Some(kp) = parse_kube_proxy_chain(&c.name) else {
            continue;
        };
        if kp.endpoint.is_some() || !matches!(kp.kind.as_str(), "service" | "local" | "external") {
            continue;
        }
        let Some(svc) = service_for(by_chain, &c.name, None) else {
            continue;
        };
        for r in ix.rules(&c.name) {
            if kp.kind == "external" {
                if r.verdicts()
                    .filter_map(chain_target)
                    .any(|t| t.starts_with("local-"))
                {
                    svc.external_local = true;
                }
                continue;
            }
            if kp.kind == "local" {
                svc.external_local = true;
            }
            endpoints_from_rule(ix, path, r, svc);
        }
    }
}

/// Session affinity: one `affinity-…` set per endpoint, with the affinity timeout.
fn affinity_from_sets(rs: &NftRuleset, fam: &str, by_chain: &mut ByChain) {
    for set in rs
        .sets
        .iter()
        .filter(|x| x.family == fam && x.table == TABLE)
    {
        let Some(kp) = parse_kube_proxy_chain(&set.name).filter(|k| k.kind == "affinity") else {
            continue;
        };
        let base = format!(
            "{}-{}/{}/{}/{}",
            kp.hash, kp.namespace, kp.service, kp.protocol, kp.port_name
        );
        let named = |s: &&mut Service| {
            s.name.as_ref().is_some_and(|n| {
                n.namespace == kp.namespace && n.name == kp.service && n.port == kp.port_name
            })
        };
        if let Some(svc) = by_chain.get_mut(&base) {
            svc.affinity_seconds = set.timeout.and_then(|t| u32::try_from(t).ok());
        } else if let Some(svc) = by_chain.values_mut().find(named) {
            svc.affinity_seconds = set.timeout.and_then(|t| u32::try_from(t).ok());
        }
    }
}

/// Services the no-endpoint maps name.
fn services_without_endpoints(rs: &NftRuleset, path: &str, fam: &str, by_chain: &mut ByChain) {
    for map in ["no-endpoint-services", "no-endpoint-nodeports"] {
        let Some(set) = rs.set(fam, TABLE, map) else {
            continue;
        };
        for (k, v, comment) in set.verdict_elements() {
            let comment = comment.or_else(|| elem_comment(k));
            let (ip, proto, port) = key_parts(k);
            let protocol = proto.unwrap_or(Protocol::Tcp);
            let name = comment.and_then(ServiceName::parse);
            let excerpt = format!(
                "{} comment {:?} : {}",
                show(k),
                comment.unwrap_or(""),
                verdict(v)
            );
            let ev = set_evidence(path, set, &excerpt);
            let existing = by_chain.values_mut().find(|s| {
                s.protocol == protocol
                    && (name.is_some() && s.name == name
                        || ip.is_some_and(|a| s.answers_on(a, port)))
            });
            match existing {
                Some(s) if !s.endpoints.is_empty() => s.no_local_endpoints.push(ev),
                Some(s) => s.no_endpoints.push(ev),
                None => {
                    let key = match &name {
                        Some(n) => format!("{n}/{protocol}"),
                        None => format!("{}/{protocol}", show(k)),
                    };
                    let s = by_chain.entry(format!("~{key}")).or_insert_with(|| {
                        let mut s = Service::new(key.clone(), protocol, Proxier::Nftables);
                        s.name = name.clone();
                        s
                    });
                    s.frontends.push(Frontend {
                        kind: if map == "no-endpoint-nodeports" {
                            FrontendKind::NodePort
                        } else {
                            FrontendKind::ClusterIp
                        },
                        ip: if map == "no-endpoint-nodeports" {
                            None
                        } else {
                            ip
                        },
                        port,
                        evidence: ev.clone(),
                    });
                    s.no_endpoints.push(ev);
                }
            }
        }
    }
}

/// Endpoints reached from one rule of a service chain (vmap to endpoint chains or a
/// direct numgen DNAT map).
fn endpoints_from_rule(ix: &TableIndex<'_>, path: &str, r: &NftRule, svc: &mut Service) {
    if let Some((modulus, slots)) = r.numgen_vmap() {
        let share = if modulus > 0 {
            1.0 / modulus as f64
        } else {
            0.0
        };
        if (slots.len() as u64) < modulus {
            svc.defects.push(RuleDefect {
                what: format!("numgen mod {modulus} has only {} slots: some new connections match no endpoint", slots.len()),
                evidence: rule_evidence(path, r, "numgen vmap"),
            });
        }
        for (_, v) in slots {
            let Some(target) = chain_target(&v) else {
                continue;
            };
            let ep_rules: Vec<&NftRule> = ix.rules(target).collect();
            if !ix.has(target) {
                svc.defects.push(RuleDefect {
                    what: format!("numgen vmap points at chain {target}, which does not exist"),
                    evidence: rule_evidence(path, r, &verdict(&v)),
                });
                continue;
            }
            let dnat = ep_rules
                .iter()
                .find_map(|er| er.dnat_targets().into_iter().next().map(|d| (d, *er)));
            match dnat {
                Some((d, er)) if !svc.has_endpoint(d.addr, d.port.unwrap_or(0)) => {
                    svc.endpoints.push(Endpoint {
                        ip: d.addr,
                        port: d.port.unwrap_or(0),
                        chain: Some(target.to_string()),
                        share: Some(share),
                        weight: None,
                        active_conns: None,
                        inactive_conns: None,
                        evidence: rule_evidence(
                            path,
                            er,
                            &format!(
                                "dnat to {}",
                                super::services::sockaddr(d.addr, d.port.unwrap_or(0))
                            ),
                        ),
                    })
                }
                Some(_) => {}
                None => svc.defects.push(RuleDefect {
                    what: format!("endpoint chain {target} has no dnat rule"),
                    evidence: rule_evidence(path, r, &verdict(&v)),
                }),
            }
        }
        return;
    }
    let targets = r.dnat_targets();
    if targets.is_empty() {
        return;
    }
    let n = targets.len();
    for d in targets {
        let port = d.port.unwrap_or(0);
        if svc.has_endpoint(d.addr, port) {
            continue;
        }
        svc.endpoints.push(Endpoint {
            ip: d.addr,
            port,
            chain: None,
            share: Some(1.0 / n as f64),
            weight: None,
            active_conns: None,
            inactive_conns: None,
            evidence: rule_evidence(
                path,
                r,
                &format!(
                    "dnat to numgen map slot {}: {}",
                    d.slot.unwrap_or(0),
                    super::services::sockaddr(d.addr, port)
                ),
            ),
        });
    }
}

/// Whether the kube-proxy table masquerades marked traffic (NF005 in nftables mode).
pub fn masquerade_rule(rs: &NftRuleset, path: &str) -> Option<Evidence> {
    rs.rules
        .iter()
        .filter(|r| r.table == TABLE)
        .find(|r| {
            r.stmts
                .iter()
                .any(|s| matches!(s, crate::parse::nft::Stmt::Masquerade(_)))
        })
        .map(|r| rule_evidence(path, r, "masquerade"))
}

/// Whether the node has a kube-proxy nftables table at all.
pub fn has_kube_proxy(rs: &NftRuleset) -> Option<usize> {
    rs.tables.iter().find(|t| t.name == TABLE).map(|t| t.index)
}
