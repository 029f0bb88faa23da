//! Services from kube-proxy's iptables mode (either backend, either family).
//!
//! Walks the nat table's chain graph: KUBE-SERVICES / KUBE-NODEPORTS → KUBE-SVC-,
//! KUBE-EXT-, KUBE-FW-, KUBE-SVL-`<hash>` → KUBE-SEP-`<hash>` → DNAT, and the filter
//! table's "has no endpoints" / "has no local endpoints" rules. kube-proxy uses the
//! same 16-character hash for every per-service chain, so the hash is the key.

use super::services::{
    Endpoint, Frontend, FrontendKind, Protocol, Proxier, RuleDefect, Service, ServiceName,
};
use super::Evidence;
use crate::evidence::Excerpt;
use crate::fx::Fx;
use crate::parse::iptables::{Chain, Match, Recent, RecentAction, Rule, Ruleset, Table, Target};
use rayon::prelude::*;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

/// Prefixes of kube-proxy's per-service chains.
const SERVICE_PREFIXES: [&str; 5] = [
    "KUBE-SVC-",
    "KUBE-SVL-",
    "KUBE-EXT-",
    "KUBE-FW-",
    "KUBE-XLB-",
];

/// Splits `KUBE-SVC-ABC…` into (`KUBE-SVC-`, `ABC…`).
fn service_chain(name: &str) -> Option<(&'static str, &str)> {
    SERVICE_PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p).map(|h| (*p, h)))
}

/// Name and frontend kind from a KUBE-SERVICES comment (`ns/svc:port cluster IP`).
fn parse_frontend_comment(c: &str) -> Option<(ServiceName, Option<FrontendKind>)> {
    for (suffix, kind) in [
        (" cluster IP", FrontendKind::ClusterIp),
        (" external IP", FrontendKind::ExternalIp),
        (" loadbalancer IP", FrontendKind::LoadBalancer),
    ] {
        if let Some(n) = c.strip_suffix(suffix) {
            return ServiceName::parse(n).map(|n| (n, Some(kind)));
        }
    }
    ServiceName::parse(c.split(" -> ").next().unwrap_or(c)).map(|n| (n, None))
}

/// The most rules or services one task of a parallel walk takes: services differ in
/// cost (endpoints, affinity), and rayon splits a range only so far by itself, so
/// with two threads one could be left alone on the last long part while the other
/// idles.
const PARALLEL_PART: usize = 256;

/// Builds the services programmed in one iptables save file.
pub fn services(
    rs: &Ruleset,
    path: &str,
    proxier: Proxier,
    excerpt: &(dyn Fn(usize) -> Excerpt + Sync),
) -> Vec<Service> {
    let ev = |r: &Rule| Evidence::new(path, Some(r.line), excerpt(r.line));
    // Which name each hash gets is decided as it is inserted; the order of the map
    // does not matter.
    let mut names: HashMap<String, ServiceName, Fx> = HashMap::default();
    let Some(nat) = rs.table("nat") else {
        return no_endpoint_services(rs, proxier, &ev, &mut BTreeMap::new());
    };
    let ix = Chains::new(nat);

    // Frontends: KUBE-SERVICES and KUBE-NODEPORTS jumps into per-service chains. Each
    // rule is read on its own in parallel (tens of thousands on a big node, with
    // evidence and comment parsing each); the services are then made in rule order.
    let frontend_rules: Vec<&Rule> = ix
        .rules("KUBE-SERVICES")
        .chain(ix.rules("KUBE-NODEPORTS"))
        .collect();
    let frontends: Vec<Option<FrontendRule<'_>>> = frontend_rules
        .par_iter()
        .with_max_len(PARALLEL_PART)
        .map(|r| frontend_rule(&ix, r, &ev))
        .collect();
    // Made in a list found through a hash map, then ordered once: ordered inserts and
    // lookups of ~10k hashes, one per frontend rule, were most of this serial step.
    let mut made: Vec<(String, Service)> = Vec::new();
    let mut made_at: HashMap<&str, usize, Fx> = HashMap::default();
    for f in frontends.into_iter().flatten() {
        let at = *made_at.entry(f.hash).or_insert_with(|| {
            let svc = Service::new(format!("KUBE-SVC-{}", f.hash), f.protocol, proxier);
            made.push((f.hash.to_string(), svc));
            made.len() - 1
        });
        let svc = &mut made[at].1;
        svc.frontends.push(f.frontend);
        svc.defects.extend(f.defect);
        if let Some(n) = f.name {
            if !names.contains_key(f.hash) {
                names.insert(f.hash.to_string(), n);
            }
        }
    }
    let mut by_hash: BTreeMap<String, Service> = made.into_iter().collect();

    // Per-service chains: policy, endpoints, affinity. Services are independent (a
    // big node has tens of thousands), so they are walked in parallel; the names found
    // are folded in hash order afterwards, as a serial walk would.
    let found: Vec<(&String, Option<ServiceName>)> = by_hash
        .iter_mut()
        .collect::<Vec<_>>()
        .into_par_iter()
        .with_max_len(PARALLEL_PART)
        .map(|(hash, svc)| (hash, per_service_chains(&ix, hash, svc, &ev)))
        .collect();
    for (hash, n) in found {
        if let Some(n) = n {
            names.entry(hash.clone()).or_insert(n);
        }
    }

    for (hash, n) in names {
        if let Some(s) = by_hash.get_mut(&hash) {
            s.name = Some(n);
        }
    }
    let mut out = no_endpoint_services(rs, proxier, &ev, &mut by_hash);
    super::services::sort_by_name(&mut out);
    out
}

/// What one KUBE-SERVICES / KUBE-NODEPORTS rule says about its service.
struct FrontendRule<'a> {
    /// The service chain's hash.
    hash: &'a str,
    protocol: Protocol,
    /// The name its comment gives.
    name: Option<ServiceName>,
    frontend: Frontend,
    /// A jump to a chain that does not exist.
    defect: Option<RuleDefect>,
}

/// Reads a frontend rule; `None` when it does not jump into a service chain.
fn frontend_rule<'a>(
    ix: &Chains<'a>,
    r: &'a Rule,
    ev: &(dyn Fn(&Rule) -> Evidence + Sync),
) -> Option<FrontendRule<'a>> {
    let target = r.jump_chain()?;
    let (prefix, hash) = service_chain(target)?;
    let comment = r.comment().and_then(parse_frontend_comment);
    let (port, dst) = frontend_address(r);
    let kind = if &*r.chain == "KUBE-NODEPORTS" {
        FrontendKind::NodePort
    } else {
        match (comment.as_ref().and_then(|(_, k)| *k), prefix) {
            (Some(k), _) => k,
            (None, "KUBE-FW-") => FrontendKind::LoadBalancer,
            (None, "KUBE-EXT-") => FrontendKind::ExternalIp,
            _ => FrontendKind::ClusterIp,
        }
    };
    let defect = (!ix.exists(target)).then(|| RuleDefect {
        what: format!("{} jumps to {target}, which does not exist", r.chain),
        evidence: ev(r),
    });
    Some(FrontendRule {
        hash,
        protocol: rule_protocol(r).unwrap_or(Protocol::Tcp),
        name: comment.map(|(n, _)| n),
        frontend: Frontend {
            kind,
            ip: if kind == FrontendKind::NodePort {
                None
            } else {
                dst
            },
            port,
            evidence: ev(r),
        },
        defect,
    })
}

/// The port (0 when none) and the destination address (when not negated) a frontend
/// rule matches.
fn frontend_address(r: &Rule) -> (u16, Option<IpAddr>) {
    let port = r.dport().map(|p| p.value.first).unwrap_or(0);
    let dst = r
        .destination
        .as_ref()
        .filter(|d| !d.negated)
        .map(|d| d.value.addr());
    (port, dst)
}

/// The policy, endpoints and affinity of one service from its own chains; returns
/// the name a chain comment gives it.
fn per_service_chains(
    ix: &Chains<'_>,
    hash: &str,
    svc: &mut Service,
    ev: &(dyn Fn(&Rule) -> Evidence + Sync),
) -> Option<ServiceName> {
    let svc_chain = format!("KUBE-SVC-{hash}");
    let svl_chain = format!("KUBE-SVL-{hash}");
    for ext in [
        format!("KUBE-EXT-{hash}"),
        format!("KUBE-FW-{hash}"),
        format!("KUBE-XLB-{hash}"),
    ] {
        for r in ix.rules(&ext) {
            let Some(t) = r.jump_chain() else { continue };
            // Local external policy: EXT/FW → SVL (or the pre-1.24 XLB chain) → local SEPs.
            if t == svl_chain
                || t.starts_with("KUBE-XLB-")
                || (ext.starts_with("KUBE-XLB-") && t.starts_with("KUBE-SEP-"))
            {
                svc.external_local = true;
            }
            if service_chain(t).is_some() && !ix.exists(t) {
                svc.defects.push(RuleDefect {
                    what: format!("{ext} jumps to {t}, which does not exist"),
                    evidence: ev(r),
                });
            }
        }
    }
    // The cluster chain holds every endpoint; with internalTrafficPolicy Local only SVL exists.
    let main = if ix.exists(&svc_chain) {
        svc_chain
    } else if ix.exists(&svl_chain) {
        svl_chain
    } else {
        return None;
    };
    svc.internal_local = main.starts_with("KUBE-SVL-");
    svc.key = main.clone();
    let mut names = BTreeMap::new();
    endpoints_of(ix, &main, svc, ev, &mut names, hash);
    names.into_values().next()
}

/// A table's rules and declarations by chain name (kube-proxy tables hold tens of
/// thousands of rules; per-service lookups must not scan them all).
struct Chains<'a> {
    table: &'a [Rule],
    /// Where each chain's rules are in `table`.
    rules: HashMap<&'a str, Runs, Fx>,
    decls: HashMap<&'a str, &'a Chain, Fx>,
}

/// The places of one chain's rules in its table: runs of consecutive rules, in file
/// order. A save lists each chain's rules together, so nearly every chain is one run,
/// kept inline: no list per chain to build (a big nat table has ~100k chains), and a
/// chain's rules are read where they lie, side by side.
enum Runs {
    One(Range<usize>),
    Many(Vec<Range<usize>>),
}

impl Runs {
    fn ranges(&self) -> &[Range<usize>] {
        match self {
            Runs::One(r) => std::slice::from_ref(r),
            Runs::Many(v) => v,
        }
    }

    fn push(&mut self, run: Range<usize>) {
        match self {
            Runs::One(first) => *self = Runs::Many(vec![first.clone(), run]),
            Runs::Many(v) => v.push(run),
        }
    }

    fn len(&self) -> usize {
        self.ranges().iter().map(ExactSizeIterator::len).sum()
    }
}

impl<'a> Chains<'a> {
    fn new(t: &'a Table) -> Chains<'a> {
        // Sized once: a big nat table declares ~100k chains.
        let mut rules: HashMap<&str, Runs, Fx> =
            HashMap::with_capacity_and_hasher(t.chains.len(), Fx::default());
        let mut start = 0;
        for end in 1..=t.rules.len() {
            let chain = &t.rules[start].chain;
            // Rules of one chain share its name (interned), so the pointers usually
            // tell; a model built otherwise is compared by name.
            let same = |r: &Rule| Arc::ptr_eq(&r.chain, chain) || r.chain == *chain;
            if t.rules.get(end).is_some_and(same) {
                continue;
            }
            match rules.entry(&**chain) {
                Entry::Occupied(mut runs) => runs.get_mut().push(start..end),
                Entry::Vacant(slot) => {
                    slot.insert(Runs::One(start..end));
                }
            }
            start = end;
        }
        Chains {
            table: &t.rules,
            rules,
            decls: t.chains.iter().map(|c| (c.name.as_str(), c)).collect(),
        }
    }

    fn rules(&self, chain: &str) -> impl Iterator<Item = &'a Rule> + '_ {
        self.rules_in(self.rules.get(chain))
    }

    /// The rules of the runs found for a chain (none when it has no rules).
    fn rules_in<'r>(&self, runs: Option<&'r Runs>) -> impl Iterator<Item = &'a Rule> + 'r
    where
        'a: 'r,
    {
        let table = self.table;
        runs.map_or(&[][..], Runs::ranges)
            .iter()
            .flat_map(move |r| &table[r.clone()])
    }

    /// Declared, or used as the chain of a rule.
    fn exists(&self, chain: &str) -> bool {
        self.decls.contains_key(chain) || self.rules.contains_key(chain)
    }

    fn decl(&self, chain: &str) -> Option<&'a Chain> {
        self.decls.get(chain).copied()
    }

    fn any_rule(&self) -> Option<&'a Rule> {
        self.table.first()
    }
}

fn rule_protocol(r: &Rule) -> Option<Protocol> {
    r.protocol
        .as_ref()
        .filter(|p| !p.negated)
        .and_then(|p| Protocol::parse(&p.value))
        .or_else(|| {
            r.matches.iter().find_map(|m| match m {
                Match::Port(p) => Protocol::parse(&p.protocol),
                _ => None,
            })
        })
}

fn recent(r: &Rule) -> Option<&Recent> {
    r.matches.iter().find_map(|m| match m {
        Match::Recent(x) => Some(&**x),
        _ => None,
    })
}

/// Walks a KUBE-SVC/SVL chain: each SEP jump gets its share of new connections.
fn endpoints_of(
    ix: &Chains<'_>,
    chain: &str,
    svc: &mut Service,
    ev: &dyn Fn(&Rule) -> Evidence,
    names: &mut BTreeMap<String, ServiceName>,
    hash: &str,
) {
    // About one endpoint per rule of the chain: room made once.
    svc.endpoints
        .reserve(ix.rules.get(chain).map_or(0, Runs::len));
    let mut remaining = 1.0f64;
    // The rule, not its evidence: the evidence is made only if a later rule cites it.
    let mut unconditional: Option<&Rule> = None;
    let mut last_jump: Option<(&Rule, f64)> = None;
    for r in ix.rules(chain) {
        // The first name found wins; later comments (one per endpoint) are not parsed.
        if !names.contains_key(hash) {
            if let Some((n, _)) = r.comment().and_then(parse_frontend_comment) {
                names.insert(hash.to_string(), n);
            }
        }
        let Some(sep) = r.jump_chain().filter(|t| t.starts_with("KUBE-SEP-")) else {
            continue;
        };
        if let Some(rc) =
            recent(r).filter(|x| matches!(x.action, RecentAction::Rcheck | RecentAction::Update))
        {
            // Session affinity: sticky jumps come before the balanced ones.
            svc.affinity_seconds = rc.seconds.or(svc.affinity_seconds);
            continue;
        }
        let p = r.probability().unwrap_or(1.0).clamp(0.0, 1.0);
        let share = remaining * p;
        if let Some(u) = unconditional {
            svc.defects.push(RuleDefect {
                what: format!("endpoint rule for {sep} is never reached: an earlier rule takes every connection ({})", ev(u).location()),
                evidence: ev(r),
            });
        }
        if p >= 1.0 {
            unconditional = Some(r);
        }
        remaining *= 1.0 - p;
        last_jump = Some((r, p));
        // One lookup of the SEP chain for both questions (a big node has 100k).
        let sep_runs = ix.rules.get(sep);
        if sep_runs.is_none() && !ix.decls.contains_key(sep) {
            svc.defects.push(RuleDefect {
                what: format!("{chain} jumps to {sep}, which does not exist"),
                evidence: ev(r),
            });
            continue;
        }
        match sep_dnat(ix.rules_in(sep_runs)) {
            Some((ip, port, dnat)) => svc.endpoints.push(Endpoint {
                ip,
                port,
                chain: Some(sep.to_string()),
                share: Some(share),
                weight: None,
                active_conns: None,
                inactive_conns: None,
                evidence: ev(dnat),
            }),
            None => svc.defects.push(RuleDefect {
                what: format!("{sep} has no DNAT rule"),
                evidence: ev(r),
            }),
        }
    }
    if let Some((r, _)) = last_jump {
        if remaining > 1e-3 {
            svc.defects.push(RuleDefect {
                what: format!(
                    "{:.1} % of new connections match no endpoint rule (the last endpoint rule is probabilistic)",
                    remaining * 100.0
                ),
                evidence: ev(r),
            });
        }
    }
    if svc.endpoints.is_empty() && last_jump.is_none() && svc.defects.is_empty() {
        // A service chain with no endpoint jumps: traffic falls through undnatted.
        if let Some(r) = ix.rules(chain).next() {
            svc.no_endpoints.push(ev(r));
        } else if let Some(c) = ix.decl(chain) {
            svc.no_endpoints.push(Evidence::new(
                ev_path(ev, ix),
                Some(c.line),
                format!(":{chain} - [0:0]  (chain has no rules)"),
            ));
        }
    }
}

fn ev_path(ev: &dyn Fn(&Rule) -> Evidence, ix: &Chains<'_>) -> String {
    ix.any_rule().map(|r| ev(r).path).unwrap_or_default()
}

/// The DNAT destination of a KUBE-SEP chain, from its rules.
fn sep_dnat<'a>(mut rules: impl Iterator<Item = &'a Rule>) -> Option<(IpAddr, u16, &'a Rule)> {
    rules.find_map(|r| match &r.target {
        Some(Target::Dnat(n)) => {
            let (ip, port) = n.endpoint()?;
            Some((ip, port.unwrap_or(0), r))
        }
        _ => None,
    })
}

/// Services the filter table rejects or drops because they have no (local) endpoints.
fn no_endpoint_services(
    rs: &Ruleset,
    proxier: Proxier,
    ev: &dyn Fn(&Rule) -> Evidence,
    by_hash: &mut BTreeMap<String, Service>,
) -> Vec<Service> {
    let mut extra: BTreeMap<(ServiceName, Protocol), Service> = BTreeMap::new();
    if let Some(filter) = rs.table("filter") {
        for r in &filter.rules {
            let Some(c) = r.comment() else { continue };
            let (name, local) = if let Some(n) = c.strip_suffix(" has no local endpoints") {
                (n, true)
            } else if let Some(n) = c.strip_suffix(" has no endpoints") {
                (n, false)
            } else {
                continue;
            };
            let Some(name) = ServiceName::parse(name) else {
                continue;
            };
            let protocol = rule_protocol(r).unwrap_or(Protocol::Tcp);
            let known = by_hash
                .values_mut()
                .find(|s| s.name.as_ref() == Some(&name) && s.protocol == protocol);
            let svc = match known {
                Some(s) => s,
                None => extra.entry((name.clone(), protocol)).or_insert_with(|| {
                    let mut s = Service::new(format!("{name}/{protocol}"), protocol, proxier);
                    s.name = Some(name.clone());
                    s
                }),
            };
            if local {
                svc.no_local_endpoints.push(ev(r));
                svc.external_local = true;
            } else {
                svc.no_endpoints.push(ev(r));
            }
            let (port, dst) = frontend_address(r);
            let kind = match (&dst, &*r.chain) {
                (None, _) => FrontendKind::NodePort,
                (Some(_), "KUBE-SERVICES") => FrontendKind::ClusterIp,
                (Some(_), _) => FrontendKind::ExternalIp,
            };
            if !svc.frontends.iter().any(|f| f.ip == dst && f.port == port) {
                svc.frontends.push(Frontend {
                    kind,
                    ip: dst,
                    port,
                    evidence: ev(r),
                });
            }
        }
    }
    std::mem::take(by_hash)
        .into_values()
        .chain(extra.into_values())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::iptables::parse_iptables;

    /// A chain's rules in file order whether they come in one run or several (restore
    /// input may interleave chains), counted, and found by name; a declared chain
    /// without rules exists but has none.
    #[test]
    fn chains_find_their_rules_in_every_run() {
        let text = "*nat\n:A - [0:0]\n:B - [0:0]\n:EMPTY - [0:0]\n\
                    -A A -s 10.0.0.1 -j ACCEPT\n-A A -s 10.0.0.2 -j ACCEPT\n\
                    -A B -s 10.0.0.3 -j ACCEPT\n-A A -s 10.0.0.4 -j ACCEPT\n\
                    -A UNDECLARED -j ACCEPT\n-A B -s 10.0.0.5 -j ACCEPT\nCOMMIT\n";
        let parsed = parse_iptables("t", text);
        let table = &parsed.model.tables[0];
        let ix = Chains::new(table);
        let lines = |chain: &str| -> Vec<usize> { ix.rules(chain).map(|r| r.line).collect() };
        assert_eq!(lines("A"), [5, 6, 8]);
        assert_eq!(lines("B"), [7, 10]);
        assert_eq!(lines("UNDECLARED"), [9]);
        assert_eq!(lines("EMPTY"), Vec::<usize>::new());
        assert_eq!(ix.rules.get("A").map(Runs::len), Some(3));
        assert_eq!(ix.rules.get("B").map(Runs::len), Some(2));
        assert!(ix.exists("EMPTY") && ix.exists("UNDECLARED") && !ix.exists("C"));
        assert_eq!(ix.any_rule().map(|r| r.line), Some(5));
    }

    /// Rules whose chain names are equal but not shared (a model not built by the
    /// parser) still make one chain.
    #[test]
    fn chains_compare_unshared_names() {
        let parsed = parse_iptables("t", "*nat\n-A A -j ACCEPT\n-A A -j DROP\nCOMMIT\n");
        let mut table = parsed.model.tables[0].clone();
        table.rules[1].chain = Arc::from("A");
        let ix = Chains::new(&table);
        assert_eq!(ix.rules("A").count(), 2);
        assert!(matches!(ix.rules.get("A"), Some(Runs::One(r)) if *r == (0..2)));
    }
}
