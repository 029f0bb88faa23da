//! Reachability: the trace from every pod of the node to every service port (ClusterIP)
//! — the cluster DNS among them — as `netsnap analyze` uses it (NF004, TRC001).
//!
//! Memoised without guessing: pods fall into classes that the rulesets and the
//! netns cannot tell apart (same shape of pod netns and host veth, same membership
//! in every prefix a rule names as source or destination — the replies a pod gets
//! cross rules by their destination — and in every interface pattern), and one pod
//! of a class is traced for all of them. A pod a rule or a set element names by its
//! own address (a /32 or /128: kube-proxy's hairpin masquerade in an endpoint chain,
//! a CNI's per-pod rule, an ipset) or that is an endpoint of the service is traced on
//! its own — for that service when the rule sits in the service's endpoint chain (and
//! then only towards that endpoint: the other branches are the class's), for every
//! service otherwise. `compute_each` traces every cell in full; tests hold the two
//! equal on fixtures, generated nodes and every lab the kernel checks.

use super::engine::{Engine, Options, Rulesets};
use super::firewall::Firewall;
use super::packet::{Detail, Proto};
use super::path::{Branch, Hop, Verdict};
use super::request::{Request, DEFAULT_SIZE};
use crate::graph::NodeGraph;
use crate::model::netns::Pod;
use crate::model::services::{sockaddr, FrontendKind, Protocol, Proxier, Service};
use crate::model::Model;
use crate::timings::stage;
use ipnet::IpNet;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

mod cells;

pub use cells::{Cell, Cells};
use cells::{Col, Row, Slot};

/// What the traces of one cell say.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Probability of each verdict.
    pub verdicts: BTreeMap<Verdict, f64>,
    /// The failing branches' reasons and the hop that decided each.
    pub failures: Vec<Failure>,
}

impl Outcome {
    /// This outcome, traced from `from`, as said of `to`, a pod of the same class.
    fn for_pod(&self, from: &Pod, to: &Pod) -> Outcome {
        let say = Renamer::new(from, to);
        Outcome {
            verdicts: self.verdicts.clone(),
            failures: self
                .failures
                .iter()
                .map(|f| Failure {
                    reason: say.text(&f.reason),
                    deciding: f.deciding.as_ref().map(|h| say.hop(h)),
                    ..f.clone()
                })
                .collect(),
        }
    }
}

/// The words of one pod's trace said of another pod of its class: addresses, name and
/// netns of the one replaced by the other's (the rules cannot tell them apart; the
/// words name them).
struct Renamer {
    pairs: Vec<(String, String)>,
}

impl Renamer {
    fn new(from: &Pod, to: &Pod) -> Renamer {
        let mut pairs: Vec<(String, String)> = from
            .ips
            .iter()
            .zip(&to.ips)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        pairs.push((from.display_name(), to.display_name()));
        pairs.push((from.netns.clone(), to.netns.clone()));
        Renamer { pairs }
    }

    fn text(&self, text: &str) -> String {
        self.pairs
            .iter()
            .fold(text.to_string(), |t, (a, b)| replace_word(&t, a, b))
    }

    fn hop(&self, h: &Hop) -> Hop {
        Hop {
            netns: self.text(&h.netns),
            what: self.text(&h.what),
            evidence: h.evidence.as_ref().map(|e| crate::evidence::Evidence {
                path: self.text(&e.path),
                ..e.clone()
            }),
            ..h.clone()
        }
    }
}

/// `text` with every whole occurrence of `word` replaced: not inside a longer address
/// or name (`10.244.1.2` is not in `10.244.1.20`).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        // A dot not followed by more of a word ends a sentence, not an address.
        let continues = |c: char| {
            c != '.' || rest[at + word.len() + 1..].starts_with(|d: char| d.is_ascii_alphanumeric())
        };
        let after_is_part = after.is_some_and(|c| part(c) && continues(c));
        out.push_str(&rest[..at]);
        if before.is_some_and(part) || after_is_part {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub verdict: Verdict,
    pub probability: f64,
    pub reason: String,
    /// The last hop with evidence (the rule, route or link that decided).
    pub deciding: Option<Hop>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Reachability {
    pub cells: Cells,
    /// When the node does not forward pod traffic through its rules (ip_forward or
    /// bridge-nf-call-iptables off), one pod per service traced as if it did: what the
    /// rules will do once those are fixed (NF004 reads them; the matrix does not).
    pub masked: Cells,
    /// Pods in the matrix (its rows).
    pub pods: usize,
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
    /// Its endpoint chains and their endpoint's address (a rule there naming a pod
    /// makes the pod its own trace for that endpoint).
    chains: BTreeMap<&'m str, IpAddr>,
}

/// What the matrix needs that the node's graph does not give: the service ports, the
/// pods and their classes, the rulesets indexed. Made while the graph is built.
pub struct Prepared<'a> {
    targets: Vec<Target<'a>>,
    pods: Vec<&'a Pod>,
    rulesets: Rulesets<'a>,
    refs: SourceRefs<'a>,
    plan: Plan,
}

/// The part of the matrix's preparation that does not need the graph.
pub fn prepare<'a>(model: &'a Model, firewall: &'a Firewall) -> Prepared<'a> {
    let targets = targets(model);
    let pods: Vec<&Pod> = model.pods.iter().filter(|p| !p.ips.is_empty()).collect();
    let (rulesets, (refs, plan)) = rayon::join(
        || Arc::new(firewall.rulesets()),
        || {
            let refs = SourceRefs::of(firewall);
            let plan = Plan::new(model, &refs, &pods, &targets);
            (refs, plan)
        },
    );
    Prepared {
        targets,
        pods,
        rulesets,
        refs,
        plan,
    }
}

pub fn compute(model: &Model, graph: &NodeGraph, firewall: &Firewall) -> Reachability {
    compute_prepared(model, graph, prepare(model, firewall))
}

/// [`compute`] with what [`prepare`] made.
pub fn compute_prepared<'a>(
    model: &'a Model,
    graph: &'a NodeGraph,
    prepared: Prepared<'a>,
) -> Reachability {
    let options = Options {
        detail: Detail::Deciding,
        ..Options::default()
    };
    let Prepared {
        targets,
        pods,
        rulesets,
        refs,
        plan,
    } = prepared;
    // The engines and the masked cells are serial stretches of milliseconds each on a
    // big node: side by side, they take the time of the longest.
    let ((verdicts, deciding), masked) = stage("reach:prep", || {
        rayon::join(
            || {
                rayon::join(
                    || {
                        let detail = Detail::Verdicts;
                        let o = Options { detail, ..options };
                        Engine::with_rulesets(model, graph, rulesets.clone(), o)
                    },
                    || Engine::with_rulesets(model, graph, rulesets.clone(), options),
                )
            },
            || masked_cells(model, graph, &rulesets, options, &targets),
        )
    });
    let engine = Tracer { verdicts, deciding };
    let target = |i: usize| (pods[i / plan.width], &targets[i % plan.width]);
    let (full, shared): (Vec<usize>, Vec<usize>) = (0..pods.len() * plan.width)
        .filter(|&i| plan.own(i))
        .partition(|&i| !plan.shares_class(i));
    // Trace what must be traced in full, in parallel, keeping the branches of the
    // cells that stand for a class …
    let full: Vec<(usize, Outcome, Vec<Branch>)> = stage("reach:full", || {
        full.into_par_iter()
            .map(|i| {
                let (pod, t) = target(i);
                let branches = engine.trace(pod, t, None);
                let o = outcome_of(&branches);
                let keep = !plan.special[i];
                (i, o, if keep { branches } else { Vec::new() })
            })
            .collect()
    });
    // Position in `full` (then in `outcomes`) of each traced cell.
    let mut slot = vec![u32::MAX; pods.len() * plan.width];
    for (k, (i, _, _)) in full.iter().enumerate() {
        slot[*i] = k as u32;
    }
    // … then the pods that are special for a service but share their class: only the
    // branches to the endpoints that make them special are theirs (the endpoint is the
    // pod itself, or a rule of its chain names the pod); the others are as for the
    // rest of the class.
    let shared: Vec<(usize, Outcome)> = stage("reach:shared", || {
        shared
            .into_par_iter()
            .map(|i| {
                let (pod, t) = target(i);
                let only = special_endpoints(pod, t, &refs);
                let branches = engine.trace(pod, t, Some(only.clone()));
                let by = plan.stand_in(i);
                let (_, _, class) = &full[slot[by] as usize];
                let rest = class
                    .iter()
                    .filter(|b| b.dnat_to.is_some_and(|d| !only.contains(&d)));
                let say = || Renamer::new(pods[by / plan.width], pod);
                (i, outcome_with(&branches, rest, say))
            })
            .collect()
    });
    let mut outcomes: Vec<Outcome> = full.into_iter().map(|(_, o, _)| o).collect();
    for (i, o) in shared {
        slot[i] = outcomes.len() as u32;
        outcomes.push(o);
    }
    let traced = outcomes.len();
    let cells = stage("reach:cells", || {
        spread(&plan, &pods, &targets, &slot, outcomes)
    });
    Reachability {
        pods: pods.len(),
        reused: cells.len() - traced,
        traced,
        cells,
        masked,
    }
}

/// Every cell of the matrix: its own outcome if it was traced (`slot`: its index into
/// `outcomes`, else `u32::MAX`), else its stand-in's under its own pod's name —
/// shared, unless its failures' words name the pod that was traced (said again of
/// this one).
fn spread(
    plan: &Plan,
    pods: &[&Pod],
    targets: &[Target<'_>],
    slot: &[u32],
    mut outcomes: Vec<Outcome>,
) -> Cells {
    let renamed: Vec<(usize, Outcome)> = (0..slot.len())
        .into_par_iter()
        .filter(|&i| slot[i] == u32::MAX)
        .filter_map(|i| {
            let by = plan.stand_in(i);
            let o = &outcomes[slot[by] as usize];
            let (from, to) = (pods[by / plan.width], pods[i / plan.width]);
            (!o.failures.is_empty()).then(|| (i, o.for_pod(from, to)))
        })
        .collect();
    let mut which: Vec<u32> = (0..slot.len())
        .into_par_iter()
        .map(|i| match slot[i] {
            u32::MAX => slot[plan.stand_in(i)],
            own => own,
        })
        .collect();
    for (i, o) in renamed {
        which[i] = outcomes.len() as u32;
        outcomes.push(o);
    }
    let slots = which
        .into_par_iter()
        .enumerate()
        .map(|(i, outcome)| Slot {
            outcome,
            traced: slot[i] != u32::MAX,
        })
        .collect();
    let (rows, cols) = axes(pods, targets);
    Cells::new(rows, cols, outcomes, slots)
}

/// The rows and columns of a matrix of `pods` × `targets`.
fn axes(pods: &[&Pod], targets: &[Target<'_>]) -> (Vec<Row>, Vec<Col>) {
    let rows = pods.iter().map(|p| Row::of(p)).collect();
    (rows, targets.iter().map(Col::of).collect())
}

/// The matrix without sharing: every cell traced in full from its own pod. What
/// [`compute`] must equal (its tests compare the two); too slow for a big node.
#[doc(hidden)]
pub fn compute_each(model: &Model, graph: &NodeGraph, firewall: &Firewall) -> Reachability {
    let options = Options {
        detail: Detail::Deciding,
        ..Options::default()
    };
    let engine = Engine::new(model, graph, firewall.rulesets(), options);
    let targets = targets(model);
    let pods: Vec<&Pod> = model.pods.iter().filter(|p| !p.ips.is_empty()).collect();
    let outcomes: Vec<Outcome> = pods
        .par_iter()
        .flat_map_iter(|p| {
            let engine = &engine;
            targets
                .iter()
                .map(move |t| outcome_of(&trace(engine, p, t, None)))
        })
        .collect();
    let (rows, cols) = axes(&pods, &targets);
    let cells = Cells::each(rows, cols, outcomes);
    Reachability {
        pods: pods.len(),
        traced: cells.len(),
        cells,
        ..Reachability::default()
    }
}

/// The cells whose outcomes differ between two matrices of one node (verdict
/// probabilities, and each failure's verdict, probability and reason), one line each.
#[doc(hidden)]
pub fn differences(a: &Reachability, b: &Reachability) -> Vec<String> {
    /// Verdicts with their probabilities, and failures (verdict, reason, probability),
    /// probabilities printed to 9 places.
    type Key = (Vec<(Verdict, String)>, Vec<(Verdict, String, String)>);
    fn key(o: &Outcome) -> Key {
        let p = |x: f64| format!("{x:.9}");
        let mut failures: Vec<_> = o
            .failures
            .iter()
            .map(|f| (f.verdict, f.reason.clone(), p(f.probability)))
            .collect();
        failures.sort();
        (
            o.verdicts.iter().map(|(v, x)| (*v, p(*x))).collect(),
            failures,
        )
    }
    fn index(r: &Reachability) -> BTreeMap<(&str, &str), &Outcome> {
        r.cells
            .iter()
            .map(|c| ((c.pod, c.service), c.outcome))
            .collect()
    }
    let (a, b) = (index(a), index(b));
    let mut out = Vec::new();
    for (cell, x) in &a {
        match b.get(cell) {
            None => out.push(format!("{} → {}: only in the first", cell.0, cell.1)),
            Some(y) if key(x) != key(y) => out.push(format!(
                "{} → {}: {:?} ≠ {:?}",
                cell.0,
                cell.1,
                key(x),
                key(y)
            )),
            Some(_) => {}
        }
    }
    out.extend(
        b.keys()
            .filter(|c| !a.contains_key(*c))
            .map(|c| format!("{} → {}: only in the second", c.0, c.1)),
    );
    out
}

/// Which cells are traced, and which traced cell answers for each of the others.
/// Cells are indexed pod-major: cell (pod, target) is `pod * width + target`.
struct Plan {
    width: usize,
    /// Class of each pod: the first pod with the same signature.
    class: Vec<usize>,
    /// The pod is an endpoint of the target, or a rule of its endpoint chains names
    /// the pod: traced on its own.
    special: Vec<bool>,
    /// Per (class representative, target): the first member of the class that is not
    /// special for it, which stands for the rest.
    stands_for: Vec<Option<usize>>,
}

impl Plan {
    fn new(model: &Model, refs: &SourceRefs<'_>, pods: &[&Pod], targets: &[Target<'_>]) -> Plan {
        let width = targets.len();
        let mut first: BTreeMap<String, usize> = BTreeMap::new();
        let class = pods
            .iter()
            .enumerate()
            .map(|(i, p)| *first.entry(signature(model, p, refs)).or_insert(i))
            .collect();
        let mut plan = Plan {
            width,
            class,
            special: vec![false; pods.len() * width],
            stands_for: vec![None; pods.len() * width],
        };
        let mut by_ip: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (pi, p) in pods.iter().enumerate() {
            for ip in &p.ips {
                by_ip.entry(*ip).or_default().push(pi);
            }
        }
        let mut by_chain: HashMap<&str, Vec<usize>> = HashMap::new();
        for (ti, t) in targets.iter().enumerate() {
            for ip in &t.endpoints {
                for &pi in by_ip.get(ip).into_iter().flatten() {
                    plan.special[pi * width + ti] = true;
                }
            }
            for c in t.chains.keys() {
                by_chain.entry(c).or_default().push(ti);
            }
        }
        // The endpoint chains whose rules name each pod by address.
        for (pi, p) in pods.iter().enumerate() {
            let named_in = p.ips.iter().filter_map(|ip| refs.hosts.get(ip)).flatten();
            for c in named_in {
                for &ti in by_chain.get(c).into_iter().flatten() {
                    plan.special[pi * width + ti] = true;
                }
            }
        }
        for i in 0..plan.special.len() {
            if !plan.special[i] {
                let rep = plan.class[i / width] * width + i % width;
                plan.stands_for[rep].get_or_insert(i / width);
            }
        }
        plan
    }

    /// Whether cell `i` is traced (not answered by a pod of its class).
    fn own(&self, i: usize) -> bool {
        let pod = i / self.width;
        self.special[i] || self.stands_for[self.representative(i)] == Some(pod)
    }

    /// Whether cell `i` is special and another pod of its class stands for the rest.
    fn shares_class(&self, i: usize) -> bool {
        self.special[i] && self.stands_for[self.representative(i)].is_some()
    }

    /// The cell of the class's representative pod for cell `i`'s target.
    fn representative(&self, i: usize) -> usize {
        self.class[i / self.width] * self.width + i % self.width
    }

    /// The traced cell that answers for cell `i`.
    fn stand_in(&self, i: usize) -> usize {
        let pod = self.stands_for[self.representative(i)]
            .expect("a pod that is not special has a stand-in");
        pod * self.width + i % self.width
    }
}

/// One pod per service traced as if the node forwarded through its rules, when its
/// sysctls stop pod traffic before the rules see it.
fn masked_cells<'a>(
    model: &'a Model,
    graph: &'a NodeGraph,
    rulesets: &Rulesets<'a>,
    options: Options,
    targets: &[Target<'_>],
) -> Cells {
    if !forwarding_masked(model) {
        return Cells::default();
    }
    let forwarding = Engine::with_rulesets(
        model,
        graph,
        rulesets.clone(),
        Options {
            assume_forwarding: true,
            ..options
        },
    );
    let Some(pod) = model.pods.iter().find(|p| !p.ips.is_empty()) else {
        return Cells::default();
    };
    let outcomes = targets
        .par_iter()
        .map(|t| outcome_of(&trace(&forwarding, pod, t, None)))
        .collect();
    let (rows, cols) = axes(&[pod], targets);
    Cells::each(rows, cols, outcomes)
}

/// Whether the node's sysctls stop pod traffic before its rules see it.
fn forwarding_masked(model: &Model) -> bool {
    let is = |key: &str, v: &str| model.node_sysctl(key).is_some_and(|(x, _)| x.trim() == v);
    is("net.ipv4.ip_forward", "0") || !is("net.bridge.bridge-nf-call-iptables", "1")
}

fn targets(model: &Model) -> Vec<Target<'_>> {
    let mut out: Vec<Target<'_>> = Vec::new();
    // Position in `out` of each destination (address, port, protocol).
    let mut seen: HashMap<(IpAddr, u16, Proto), usize> = HashMap::new();
    // Cilium's BPF load balancer is not simulated: its services are not in the matrix.
    for s in model
        .services
        .iter()
        .filter(|s| s.proxier != Proxier::Cilium)
    {
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
            if let Some(&at) = seen.get(&(ip, f.port, proto)) {
                let t = &mut out[at];
                t.endpoints.extend(s.endpoints.iter().map(|e| e.ip));
                t.chains.extend(
                    s.endpoints
                        .iter()
                        .filter_map(|e| Some((e.chain.as_deref()?, e.ip))),
                );
                continue;
            }
            seen.insert((ip, f.port, proto), out.len());
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
                    .filter_map(|e| Some((e.chain.as_deref()?, e.ip)))
                    .collect(),
            });
        }
    }
    out
}

/// The endpoints of `t` that make `pod` special for it: the pod itself, and those
/// whose endpoint chain has a rule naming the pod.
fn special_endpoints(pod: &Pod, t: &Target<'_>, refs: &SourceRefs<'_>) -> Arc<[IpAddr]> {
    let mut out: Vec<IpAddr> = pod.ips.clone();
    for chain in pod.ips.iter().filter_map(|ip| refs.hosts.get(ip)).flatten() {
        out.extend(t.chains.get(chain));
    }
    out.into()
}

/// Traces without hops, and again with the deciding one when a branch fails: the
/// matrix shows only failing paths' hops, and most paths do not fail.
struct Tracer<'a> {
    verdicts: Engine<'a>,
    deciding: Engine<'a>,
}

impl Tracer<'_> {
    fn trace(&self, pod: &Pod, t: &Target<'_>, only: Option<Arc<[IpAddr]>>) -> Vec<Branch> {
        let branches = trace(&self.verdicts, pod, t, only.clone());
        if branches.iter().any(|b| failing(b.verdict)) {
            trace(&self.deciding, pod, t, only)
        } else {
            branches
        }
    }
}

/// A verdict the matrix reports as a failure.
fn failing(v: Verdict) -> bool {
    matches!(
        v,
        Verdict::Refused | Verdict::Rejected | Verdict::Dropped | Verdict::NoRoute
    )
}

/// The trace from `pod` to `t`; with `only`, of the branches a node NAT chain sends to
/// one of those addresses (or to none).
fn trace(
    engine: &Engine<'_>,
    pod: &Pod,
    t: &Target<'_>,
    only: Option<Arc<[IpAddr]>>,
) -> Vec<Branch> {
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
    match only {
        Some(only) => engine.branches_only(&req, only),
        None => engine.trace(&req).verdicts,
    }
}

/// What a cell's branches say: each verdict's probability, and the failing branches.
fn outcome_of(branches: &[Branch]) -> Outcome {
    outcome_with(branches, std::iter::empty(), || Renamer {
        pairs: Vec::new(),
    })
}

/// [`outcome_of`] the branches `own` then `others`, the branches of another pod's
/// trace said of this one (`say`, made only if one of them fails: the words of the
/// others are not read).
fn outcome_with<'b>(
    own: &[Branch],
    others: impl Iterator<Item = &'b Branch>,
    say: impl FnOnce() -> Renamer,
) -> Outcome {
    let mut verdicts: BTreeMap<Verdict, f64> = BTreeMap::new();
    let mut failures = Vec::new();
    let say = std::cell::LazyCell::new(say);
    let own = own.iter().map(|b| (b, false));
    for (b, renamed) in own.chain(others.map(|b| (b, true))) {
        *verdicts.entry(b.verdict).or_default() += b.probability;
        if !failing(b.verdict) {
            continue;
        }
        let deciding = b.hops.iter().rev().find(|h| h.evidence.is_some());
        let (reason, deciding) = if renamed {
            (say.text(&b.reason), deciding.map(|h| say.hop(h)))
        } else {
            (b.reason.clone(), deciding.cloned())
        };
        failures.push(Failure {
            verdict: b.verdict,
            probability: b.probability,
            reason,
            deciding,
        });
    }
    Outcome { verdicts, failures }
}

impl Col {
    fn of(t: &Target<'_>) -> Col {
        Col {
            service: t.label.clone(),
            address: format!("{}/{}", sockaddr(t.ip, t.port), t.proto.name()),
            to: match &t.service.name {
                Some(_) => t.label.clone(),
                None => format!("{} --proto {}", sockaddr(t.ip, t.port), t.proto.name()),
            },
        }
    }
}

/// What the rulesets say about addresses (sources, destinations, set elements) and
/// the interface names they match on.
#[derive(Default)]
struct SourceRefs<'a> {
    /// Prefixes wider than one address.
    prefixes: BTreeSet<IpNet>,
    /// Single addresses, with the chains that name them (a big node's rules name a
    /// hundred thousand: looked up, never walked in order).
    hosts: HashMap<IpAddr, BTreeSet<&'a str>>,
    /// Interface names and patterns (`veth+`, `cali*`).
    ifaces: BTreeSet<String>,
}

impl<'a> SourceRefs<'a> {
    fn of(fw: &'a Firewall) -> SourceRefs<'a> {
        let mut r = SourceRefs::default();
        for f in &fw.iptables {
            for t in &f.ruleset.tables {
                for rule in &t.rules {
                    // A destination names a pod too: the replies it receives.
                    for a in [&rule.source, &rule.destination].into_iter().flatten() {
                        r.add(a.value, &rule.chain);
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
                    if text.contains("saddr") || text.contains("daddr") {
                        r.add_all(&text, &rule.chain);
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
            // Set elements: named by no chain, so a pod in one is its own class.
            for set in &n.ruleset.sets {
                for e in &set.elements {
                    r.add_all(&super::nft::render::val(&e.key), "");
                }
            }
        }
        for set in fw.ipsets.iter().flat_map(|s| &s.sets) {
            for e in &set.entries {
                r.add_all(&e.value, "");
            }
        }
        r
    }

    /// Every address and prefix written in `text`.
    fn add_all(&mut self, text: &str, chain: &'a str) {
        for tok in text.split(|c: char| c.is_whitespace() || "{},".contains(c)) {
            if let Ok(net) = tok.parse::<IpNet>() {
                self.add(net, chain);
            } else if let Ok(ip) = tok.parse::<IpAddr>() {
                self.add(IpNet::from(ip), chain);
            }
        }
    }

    fn add(&mut self, net: IpNet, chain: &'a str) {
        if net.prefix_len() == net.max_prefix_len() {
            self.hosts.entry(net.addr()).or_default().insert(chain);
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
fn signature(model: &Model, pod: &Pod, refs: &SourceRefs<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::replace_word;

    #[test]
    fn a_word_is_replaced_only_where_it_stands_alone() {
        let r = |t: &str| replace_word(t, "10.244.1.2", "10.244.1.3");
        assert_eq!(r("no route to 10.244.1.2"), "no route to 10.244.1.3");
        assert_eq!(
            r("to 10.244.1.2:80, then 10.244.1.2."),
            "to 10.244.1.3:80, then 10.244.1.3."
        );
        assert_eq!(
            r("10.244.1.20 and 110.244.1.2"),
            "10.244.1.20 and 110.244.1.2"
        );
        assert_eq!(r("10.244.1.2.5"), "10.244.1.2.5");
        let n = replace_word("netns/nsl-a.pod1/routes.json", "nsl-a.pod1", "nsl-a.pod3");
        assert_eq!(n, "netns/nsl-a.pod3/routes.json");
        assert_eq!(
            replace_word("nsl-a.pod10", "nsl-a.pod1", "x"),
            "nsl-a.pod10"
        );
    }
}
