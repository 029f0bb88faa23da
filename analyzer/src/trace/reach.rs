//! Reachability: the trace from every pod of the node to every service port (ClusterIP)
//! — the cluster DNS among them — as `netsnap analyze` uses it (NF004, TRC001).
//!
//! Memoised without guessing: pods fall into classes that the rulesets and the
//! netns cannot tell apart (same shape of pod netns and host veth, same membership
//! in every source prefix and interface pattern a rule names), and one pod of a
//! class is traced for all of them. A pod a rule names by its own address (a /32 or
//! /128: kube-proxy's hairpin masquerade in an endpoint chain, a CNI's per-pod rule)
//! or that is an endpoint of the service is traced on its own — for that service when
//! the rule sits in the service's endpoint chain, for every service otherwise.

use super::engine::{Engine, Options};
use super::firewall::Firewall;
use super::packet::Proto;
use super::path::{Branch, Hop, Verdict};
use super::request::{Request, DEFAULT_SIZE};
use crate::graph::NodeGraph;
use crate::model::netns::Pod;
use crate::model::services::{sockaddr, FrontendKind, Protocol, Service};
use crate::model::Model;
use ipnet::IpNet;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// One (pod, service port) cell of the matrix. Names and the outcome are shared:
/// a big node has a hundred thousand cells and a few thousand distinct outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The pod (`ns/name`) and its netns id.
    #[serde(serialize_with = "as_str")]
    pub pod: Arc<str>,
    #[serde(serialize_with = "as_str")]
    pub netns: Arc<str>,
    /// The service port (`ns/name:port`) and its address.
    #[serde(serialize_with = "as_str")]
    pub service: Arc<str>,
    #[serde(serialize_with = "as_str")]
    pub address: Arc<str>,
    /// `--to` (and `--proto`) of the `netsnap trace` call that shows this cell.
    #[serde(serialize_with = "as_str")]
    pub to: Arc<str>,
    #[serde(flatten, serialize_with = "outcome")]
    pub outcome: Arc<Outcome>,
    /// Traced for this pod (false: the result of a pod of its class).
    pub traced: bool,
}

/// What the traces of one cell say.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Probability of each verdict.
    pub verdicts: BTreeMap<Verdict, f64>,
    /// The failing branches' reasons and the hop that decided each.
    pub failures: Vec<Failure>,
}

fn as_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn outcome<S: serde::Serializer>(v: &Arc<Outcome>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().serialize(s)
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub verdict: Verdict,
    pub probability: f64,
    pub reason: String,
    /// The last hop with evidence (the rule, route or link that decided).
    pub deciding: Option<Hop>,
}

impl Cell {
    /// Probability that a connection fails (refused, rejected, dropped, no route).
    pub fn failing(&self) -> f64 {
        self.outcome.failures.iter().map(|f| f.probability).sum()
    }

    pub fn failures(&self) -> &[Failure] {
        &self.outcome.failures
    }

    pub fn verdicts(&self) -> &BTreeMap<Verdict, f64> {
        &self.outcome.verdicts
    }

    /// The `netsnap trace` arguments that show this cell's paths.
    pub fn command(&self) -> String {
        format!("--from {} --to {}", self.pod, self.to)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Reachability {
    pub cells: Vec<Cell>,
    /// When the node does not forward pod traffic through its rules (ip_forward or
    /// bridge-nf-call-iptables off), one pod per service traced as if it did: what the
    /// rules will do once those are fixed (NF004 reads them; the matrix does not).
    pub masked: Vec<Cell>,
    /// Traces run, and cells answered from a class's trace.
    pub traced: usize,
    pub reused: usize,
}

/// A service port as traced: its ClusterIP frontend.
struct Target<'m> {
    service: &'m Service,
    label: String,
    ip: IpAddr,
    port: u16,
    proto: Proto,
    /// Endpoint addresses (a pod among them is traced on its own).
    endpoints: BTreeSet<IpAddr>,
    /// Its endpoint chains (a rule there naming a pod makes the pod its own trace).
    chains: BTreeSet<&'m str>,
}

pub fn compute(model: &Model, graph: &NodeGraph, firewall: &Firewall) -> Reachability {
    let options = Options {
        all_hops: false,
        ..Options::default()
    };
    let engine = Engine::new(model, graph, firewall.rulesets(), options);
    let targets = targets(model);
    let masked = masked_cells(model, graph, firewall, options, &targets);
    let refs = SourceRefs::of(firewall);
    let pods: Vec<&Pod> = model.pods.iter().filter(|p| !p.ips.is_empty()).collect();
    // Class of each pod: the first pod with the same signature.
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let class: Vec<usize> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| *first.entry(signature(model, p, &refs)).or_insert(i))
        .collect();
    let jobs: Vec<(usize, usize)> = (0..pods.len())
        .flat_map(|pi| (0..targets.len()).map(move |ti| (pi, ti)))
        .collect();
    // The endpoint chains whose rules name each pod by address.
    let named_in: Vec<BTreeSet<&str>> = pods
        .iter()
        .map(|p| {
            p.ips
                .iter()
                .filter_map(|ip| refs.hosts.get(ip))
                .flatten()
                .map(String::as_str)
                .collect()
        })
        .collect();
    // A pod is special for a service when it is one of its endpoints or a rule of its
    // endpoint chains names it: traced on its own.
    let mut by_ip: std::collections::HashMap<IpAddr, Vec<usize>> = Default::default();
    for (pi, p) in pods.iter().enumerate() {
        for ip in &p.ips {
            by_ip.entry(*ip).or_default().push(pi);
        }
    }
    let mut by_chain: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (ti, t) in targets.iter().enumerate() {
        for c in &t.chains {
            by_chain.entry(c).or_default().push(ti);
        }
    }
    let mut special: std::collections::HashSet<(usize, usize)> = Default::default();
    for (ti, t) in targets.iter().enumerate() {
        for ip in &t.endpoints {
            for &pi in by_ip.get(ip).into_iter().flatten() {
                special.insert((pi, ti));
            }
        }
    }
    for (pi, chains) in named_in.iter().enumerate() {
        for c in chains {
            for &ti in by_chain.get(c).into_iter().flatten() {
                special.insert((pi, ti));
            }
        }
    }
    // Per (class, service): the first member that is not special stands for the rest.
    let mut stands_for: std::collections::HashMap<(usize, usize), usize> = Default::default();
    for &(pi, ti) in &jobs {
        if !special.contains(&(pi, ti)) {
            stands_for.entry((class[pi], ti)).or_insert(pi);
        }
    }
    let own = |pi: usize, ti: usize| {
        special.contains(&(pi, ti)) || stands_for.get(&(class[pi], ti)) == Some(&pi)
    };
    // Trace what must be traced, in parallel; then fill in the classes.
    let traced: std::collections::HashMap<(usize, usize), Cell> = jobs
        .par_iter()
        .filter(|(pi, ti)| own(*pi, *ti))
        .map(|&(pi, ti)| {
            let branches = trace(&engine, pods[pi], &targets[ti]);
            ((pi, ti), cell(pods[pi], &targets[ti], &branches, true))
        })
        .collect();
    let names: Vec<(Arc<str>, Arc<str>)> = pods
        .iter()
        .map(|p| (p.display_name().into(), p.netns.as_str().into()))
        .collect();
    let mut out = Reachability {
        masked,
        ..Reachability::default()
    };
    for (pi, ti) in jobs {
        match traced.get(&(pi, ti)) {
            Some(c) => {
                out.traced += 1;
                out.cells.push(c.clone());
            }
            None => {
                out.reused += 1;
                let c = &traced[&(stands_for[&(class[pi], ti)], ti)];
                out.cells.push(Cell {
                    pod: names[pi].0.clone(),
                    netns: names[pi].1.clone(),
                    traced: false,
                    ..c.clone()
                });
            }
        }
    }
    out
}

/// One pod per service traced as if the node forwarded through its rules, when its
/// sysctls stop pod traffic before the rules see it.
fn masked_cells(
    model: &Model,
    graph: &NodeGraph,
    firewall: &Firewall,
    options: Options,
    targets: &[Target<'_>],
) -> Vec<Cell> {
    if !forwarding_masked(model) {
        return Vec::new();
    }
    let forwarding = Engine::new(
        model,
        graph,
        firewall.rulesets(),
        Options {
            assume_forwarding: true,
            ..options
        },
    );
    let Some(pod) = model.pods.iter().find(|p| !p.ips.is_empty()) else {
        return Vec::new();
    };
    targets
        .par_iter()
        .map(|t| cell(pod, t, &trace(&forwarding, pod, t), true))
        .collect()
}

/// Whether the node's sysctls stop pod traffic before its rules see it.
fn forwarding_masked(model: &Model) -> bool {
    let is = |key: &str, v: &str| model.node_sysctl(key).is_some_and(|(x, _)| x.trim() == v);
    is("net.ipv4.ip_forward", "0") || !is("net.bridge.bridge-nf-call-iptables", "1")
}

fn targets(model: &Model) -> Vec<Target<'_>> {
    let mut out = Vec::new();
    for s in &model.services {
        for f in s
            .frontends
            .iter()
            .filter(|f| f.kind == FrontendKind::ClusterIp)
        {
            let Some(ip) = f.ip else { continue };
            let label = match &s.name {
                Some(n) => n.to_string(),
                None => s.key.clone(),
            };
            let proto = match s.protocol {
                Protocol::Udp => Proto::Udp,
                _ => Proto::Tcp,
            };
            // The same service port programmed by two backends is one destination.
            if let Some(t) = out
                .iter_mut()
                .find(|t: &&mut Target<'_>| t.ip == ip && t.port == f.port && t.proto == proto)
            {
                t.endpoints.extend(s.endpoints.iter().map(|e| e.ip));
                t.chains
                    .extend(s.endpoints.iter().filter_map(|e| e.chain.as_deref()));
                continue;
            }
            out.push(Target {
                service: s,
                label,
                ip,
                port: f.port,
                proto,
                endpoints: s.endpoints.iter().map(|e| e.ip).collect(),
                chains: s
                    .endpoints
                    .iter()
                    .filter_map(|e| e.chain.as_deref())
                    .collect(),
            });
        }
    }
    out
}

fn trace(engine: &Engine<'_>, pod: &Pod, t: &Target<'_>) -> Vec<Branch> {
    let Some(src) = pod
        .ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv6() == t.ip.is_ipv6())
    else {
        return Vec::new();
    };
    let req = Request {
        netns: pod.netns.clone(),
        arrives_on: None,
        src,
        dst: t.ip,
        dport: t.port,
        proto: t.proto,
        size: DEFAULT_SIZE,
        established: false,
        to: t.label.clone(),
    };
    engine.trace(&req).verdicts
}

fn cell(pod: &Pod, t: &Target<'_>, branches: &[Branch], traced: bool) -> Cell {
    let mut verdicts: BTreeMap<Verdict, f64> = BTreeMap::new();
    let mut failures = Vec::new();
    for b in branches {
        *verdicts.entry(b.verdict).or_default() += b.probability;
        if matches!(
            b.verdict,
            Verdict::Refused | Verdict::Rejected | Verdict::Dropped | Verdict::NoRoute
        ) {
            failures.push(Failure {
                verdict: b.verdict,
                probability: b.probability,
                reason: b.reason.clone(),
                deciding: b.hops.iter().rev().find(|h| h.evidence.is_some()).cloned(),
            });
        }
    }
    Cell {
        pod: pod.display_name().into(),
        netns: pod.netns.as_str().into(),
        service: t.label.as_str().into(),
        address: format!("{}/{}", sockaddr(t.ip, t.port), t.proto.name()).into(),
        to: match &t.service.name {
            Some(_) => t.label.as_str().into(),
            None => format!("{} --proto {}", sockaddr(t.ip, t.port), t.proto.name()).into(),
        },
        outcome: Arc::new(Outcome { verdicts, failures }),
        traced,
    }
}

/// What the rulesets say about sources: prefixes and interface names they match on.
#[derive(Default)]
struct SourceRefs {
    /// Prefixes wider than one address.
    prefixes: BTreeSet<IpNet>,
    /// Single addresses, with the chains that name them.
    hosts: BTreeMap<IpAddr, BTreeSet<String>>,
    /// Interface names and patterns (`veth+`, `cali*`).
    ifaces: BTreeSet<String>,
}

impl SourceRefs {
    fn of(fw: &Firewall) -> SourceRefs {
        let mut r = SourceRefs::default();
        for f in &fw.iptables {
            for t in &f.ruleset.tables {
                for rule in &t.rules {
                    if let Some(s) = &rule.source {
                        r.add(s.value, &rule.chain);
                    }
                    for i in [&rule.in_iface, &rule.out_iface].into_iter().flatten() {
                        r.ifaces.insert(i.value.clone());
                    }
                    for m in &rule.matches {
                        if let crate::parse::iptables::Match::Physdev(p) = m {
                            for d in [&p.physdev_in, &p.physdev_out].into_iter().flatten() {
                                r.ifaces.insert(d.value.clone());
                            }
                        }
                    }
                }
            }
        }
        if let Some(n) = &fw.nft {
            for rule in &n.ruleset.rules {
                for s in &rule.stmts {
                    let text = super::nft::render::stmt(s);
                    if text.contains("saddr") {
                        for tok in text.split(|c: char| c.is_whitespace() || "{},".contains(c)) {
                            if let Ok(net) = tok.parse::<IpNet>() {
                                r.add(net, &rule.chain);
                            } else if let Ok(ip) = tok.parse::<IpAddr>() {
                                r.add(IpNet::from(ip), &rule.chain);
                            }
                        }
                    }
                    if text.contains("ifname") {
                        for tok in text.split(|c: char| c.is_whitespace() || "{},\"".contains(c)) {
                            if !tok.is_empty()
                                && !tok.contains("ifname")
                                && tok != "!="
                                && tok != "=="
                            {
                                r.ifaces.insert(tok.to_string());
                            }
                        }
                    }
                }
            }
        }
        r
    }

    fn add(&mut self, net: IpNet, chain: &str) {
        if net.prefix_len() == net.max_prefix_len() {
            self.hosts
                .entry(net.addr())
                .or_default()
                .insert(chain.to_string());
        } else {
            self.prefixes.insert(net.trunc());
        }
    }
}

/// An endpoint chain of kube-proxy (named only by its service's rules).
fn endpoint_chain(chain: &str) -> bool {
    chain.starts_with("KUBE-SEP-") || chain.starts_with("endpoint-")
}

/// What tells a pod apart for the engine, without its name and address: the shape of
/// its netns and host veth, and which source prefixes and interface patterns of the
/// rules it falls under. A pod a rule names by address outside an endpoint chain is
/// its own class.
fn signature(model: &Model, pod: &Pod, refs: &SourceRefs) -> String {
    let Some(ns) = model.netns.get(&pod.netns) else {
        return format!("missing {}", pod.netns);
    };
    let mut s = String::new();
    // The local table mirrors the netns's own addresses, which differ by pod.
    for r in ns.routes.items.iter().filter(|r| r.table != 255) {
        s.push_str(&format!(
            "r{} {:?} {:?} {} {} {};",
            r.dst, r.gateway, r.oif, r.table, r.kind, r.scope
        ));
    }
    for r in &ns.rules {
        s.push_str(&format!("R{:?};", r));
    }
    for l in &ns.links.items {
        s.push_str(&format!(
            "l{} {:?} {} {:?} {:?};",
            l.name, l.kind, l.mtu, l.state, l.flags
        ));
    }
    for (k, (v, _)) in &ns.sysctls {
        s.push_str(&format!("s{k}={v};"));
    }
    let root = model.root();
    for i in &pod.interfaces {
        let host = i.host_ifindex.and_then(|h| root.and_then(|r| r.link(h)));
        match host {
            Some((_, l)) => {
                s.push_str(&format!(
                    "h{:?} {} {:?} {:?} {:?} {:?};",
                    l.kind, l.mtu, l.state, l.flags, l.master, l.bridge_port
                ));
                if let Some(r) = root {
                    for (k, (v, _)) in r.sysctls.range(format!("net.ipv4.conf.{}.", l.name)..) {
                        if !k.starts_with(&format!("net.ipv4.conf.{}.", l.name)) {
                            break;
                        }
                        let key = k.rsplit('.').next().unwrap_or(k);
                        s.push_str(&format!("hs{key}={v};"));
                    }
                }
                for pat in &refs.ifaces {
                    s.push(if iface_matches(pat, &l.name) {
                        '1'
                    } else {
                        '0'
                    });
                }
            }
            None => s.push_str("h-;"),
        }
    }
    for ip in &pod.ips {
        for net in &refs.prefixes {
            s.push(if net.contains(ip) { '1' } else { '0' });
        }
        if refs
            .hosts
            .get(ip)
            .is_some_and(|c| c.iter().any(|c| !endpoint_chain(c)))
        {
            s.push_str(&format!("own {ip}"));
        }
    }
    s
}

fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern
        .strip_suffix('+')
        .or_else(|| pattern.strip_suffix('*'))
    {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}
