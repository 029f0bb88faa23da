//! The walk: a packet moves through the node's netns as a set of [`State`]s (one per
//! branch), each at a [`Stage`] of a netns's stack. Stages hand the packet on until a
//! verdict ends its branch. Netfilter runs only in the node netns: the bundle holds
//! the node's rulesets, not those of pods (a pod netns is traversed as having none,
//! and its hops say so once).
//!
//! Replies: a request delivered to a socket is followed back (the reply of a TCP
//! connect or a UDP request), with conntrack reversing the NAT the request got, so a
//! connection that reaches its endpoint but whose reply is lost (br_netfilter off, a
//! FORWARD drop of established traffic, a missing masquerade on hairpin) is not
//! called delivered.

use super::packet::{
    CtState, Detail, Hook, HookChain, HookOutcome, NetnsFacts, Packet, Ruleset, Step,
};
use super::path::{Branch, Hop, Verdict};
use crate::evidence::Evidence;
use crate::graph::NodeGraph;
use crate::model::services::sockaddr;
use crate::model::{Model, Netns};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// How many interface crossings a branch may make before it is called a loop.
pub(super) const MAX_CROSSINGS: usize = 24;

/// Where a packet is in a netns's stack.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Stage {
    /// Sent by a socket of this netns.
    Output,
    /// Arrived on `iif`; `prerouted` when br_netfilter already ran PREROUTING.
    Receive { iif: String, prerouted: bool },
    /// Entered bridge `bridge` (ifindex) on `port`, addressed (at L2) to the owner of
    /// `l2_dst`.
    Bridge {
        bridge: u32,
        port: String,
        l2_dst: IpAddr,
    },
}

/// The request a reply answers: what the client expects back and how it went.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ReplyOf {
    /// The client's 5-tuple as sent (before any NAT).
    pub orig: Tuple,
    pub endpoint: String,
    pub ended_in: Option<String>,
    /// The netns whose conntrack NATed the request, if any.
    pub nat_netns: Option<String>,
    /// Conntrack gave the reply back the client's address as destination (undoing a
    /// source NAT of the request) …
    pub dst_restored: bool,
    /// … and the address the client called as source (undoing a destination NAT).
    pub src_restored: bool,
    /// The destination refused the request: this is its reset or ICMP error.
    pub refusal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tuple {
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

impl Tuple {
    pub fn of(p: &Packet) -> Tuple {
        Tuple {
            src: p.src,
            sport: p.sport,
            dst: p.dst,
            dport: p.dport,
        }
    }
}

/// The hops of a branch so far: a shared list, so that a branch splitting (every rule
/// that can match both ways, every chain run) does not copy its history.
#[derive(Debug, Clone, Default)]
pub(super) struct Hops(Option<std::sync::Arc<HopNode>>);

#[derive(Debug)]
pub(super) struct HopNode {
    hop: Hop,
    prev: Option<std::sync::Arc<HopNode>>,
}

impl Hops {
    pub fn push(&mut self, hop: Hop) {
        let prev = self.0.take();
        self.0 = Some(std::sync::Arc::new(HopNode { hop, prev }));
    }

    /// Pushes `hop`; with `all` off it replaces the history (only the last is kept).
    pub fn push_kept(&mut self, all: bool, hop: Hop) {
        if !all {
            self.0 = None;
        }
        self.push(hop);
    }

    /// The last hop with evidence.
    pub fn deciding(&self) -> Option<Hop> {
        let mut at = self.0.as_deref();
        while let Some(n) = at {
            if n.hop.evidence.is_some() {
                return Some(n.hop.clone());
            }
            at = n.prev.as_deref();
        }
        None
    }

    /// The hops in order.
    pub fn to_vec(&self) -> Vec<Hop> {
        let mut out = Vec::new();
        let mut at = self.0.as_deref();
        while let Some(n) = at {
            out.push(n.hop.clone());
            at = n.prev.as_deref();
        }
        out.reverse();
        out
    }
}

/// One branch in flight.
#[derive(Debug, Clone)]
pub(super) struct State {
    pub netns: String,
    pub packet: Packet,
    pub stage: Stage,
    pub probability: f64,
    pub hops: Hops,
    pub crossings: usize,
    /// The client's tuple as sent, for the reply.
    pub orig: Tuple,
    /// The netns whose conntrack NATed this connection.
    pub nat_netns: Option<String>,
    /// NAT of this connection is bound at the destination (resp. source) hooks.
    pub dnat_bound: bool,
    pub snat_bound: bool,
    pub reply: Option<Box<ReplyOf>>,
    /// A note that a pod netns's rules are not in the bundle was made.
    pub noted_no_rules: bool,
    /// `--established`: the backend conntrack bound this connection to (from the
    /// bundle's entries), applied at the node's first destination-NAT hook.
    pub ct_binding: Option<(IpAddr, u16, crate::evidence::Evidence)>,
    /// The address a node NAT chain sent the request to (a service's endpoint).
    pub dnat_to: Option<IpAddr>,
    /// Follow only the branches whose request a node NAT chain sends to one of these
    /// addresses (or to none): the reachability matrix traces the rest once per class
    /// of pods (`reach.rs`).
    pub only_dnat_to: Option<std::sync::Arc<[IpAddr]>>,
}

/// How a packet leaves the node (a `left-node` branch), for a trace across nodes
/// to continue it in the bundle of the node it goes to (`trace::cluster`).
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The branch as it left (its packet after POSTROUTING, its NAT and reply state).
    pub(super) state: State,
    /// The device it leaves by, and that device's kind (`vxlan`, `veth` …).
    pub device: String,
    pub kind: String,
    /// The next hop routing chose.
    pub nexthop: IpAddr,
    /// The remote VTEP address a VXLAN device's FDB entry names, and the device's VNI.
    pub vtep: Option<IpAddr>,
    pub vni: Option<u32>,
}

/// Two branches are equal by what they say, not by how they would continue.
impl PartialEq for Handoff {
    fn eq(&self, other: &Self) -> bool {
        (&self.device, self.nexthop, self.vtep) == (&other.device, other.nexthop, other.vtep)
    }
}

/// What the walk may do.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Follow the reply of a delivered request back to the sender.
    pub replies: bool,
    /// The hops a branch keeps: every one, only the deciding one (the last with
    /// evidence), or none.
    pub detail: Detail,
    /// As if the node forwarded pod traffic through its rules (forwarding on, bridged
    /// frames handed to iptables): what the rules do once those sysctls are fixed.
    pub assume_forwarding: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            replies: true,
            detail: Detail::Every,
            assume_forwarding: false,
        }
    }
}

/// The engine over one node's model, graph and rulesets.
pub struct Engine<'a> {
    pub(super) model: &'a Model,
    pub(super) graph: &'a NodeGraph,
    /// Shared: engines over one node that differ only in their options (the matrix's
    /// two) index the rulesets once.
    rulesets: Rulesets<'a>,
    /// Base chains per (hook, IPv6), in priority order.
    chains: BTreeMap<(Hook, bool), Vec<HookChain>>,
    facts: BTreeMap<String, NetnsFacts>,
    /// How each netns is named in hops: its pod, else its id.
    places: BTreeMap<String, String>,
    /// Every address of each netns, parsed once: (ifindex, address, global).
    addrs: BTreeMap<String, Vec<(u32, IpAddr, bool)>>,
    /// Per (netns, bridge ifindex): the port (link index) behind which each global
    /// address lives, and a port into a netns the bundle does not hold.
    pub(super) bridges: std::collections::HashMap<(String, u32), BridgePorts>,
    pub(super) root: String,
    pub(super) options: Options,
    /// Evidence of each link and route of each netns, rendered once (every crossing
    /// and routing decision cites one).
    link_evidence: std::collections::HashMap<&'a str, Vec<Evidence>>,
    route_evidence: std::collections::HashMap<&'a str, Vec<Evidence>>,
    /// The node's name in a trace across nodes (every hop says it).
    pub(super) node: Option<String>,
    /// The destinations of each netns's routes, read once (every routing decision
    /// tries every route of a table).
    prefixes: std::collections::HashMap<&'a str, super::route::Prefixes>,
    /// Cilium's BPF services by frontend (address, port): (service, frontend) index
    /// of the first that has it. Every trace asks; most nodes have none.
    pub(super) cilium_frontends: std::collections::HashMap<(IpAddr, u16), (usize, usize)>,
}

/// A node's rulesets, indexed for running.
pub type Rulesets<'a> = std::sync::Arc<Vec<Box<dyn Ruleset + Send + Sync + 'a>>>;

impl<'a> Engine<'a> {
    pub fn new(
        model: &'a Model,
        graph: &'a NodeGraph,
        rulesets: Vec<Box<dyn Ruleset + Send + Sync + 'a>>,
        options: Options,
    ) -> Engine<'a> {
        Engine::with_rulesets(model, graph, std::sync::Arc::new(rulesets), options)
    }

    /// [`Engine::new`] over rulesets another engine of the node may share.
    pub fn with_rulesets(
        model: &'a Model,
        graph: &'a NodeGraph,
        rulesets: Rulesets<'a>,
        options: Options,
    ) -> Engine<'a> {
        let mut chains = BTreeMap::new();
        for hook in [
            Hook::Prerouting,
            Hook::Input,
            Hook::Forward,
            Hook::Output,
            Hook::Postrouting,
        ] {
            for v6 in [false, true] {
                let mut list: Vec<HookChain> = rulesets
                    .iter()
                    .flat_map(|r| r.hook_chains(hook, v6))
                    .collect();
                // Stable: equal priorities keep backend order (see `hooks`).
                list.sort_by_key(|c| c.priority);
                chains.insert((hook, v6), list);
            }
        }
        let facts = model
            .netns
            .values()
            .map(|n| (n.id.clone(), netns_facts(n)))
            .collect();
        let root = model.root().map(|n| n.id.clone()).unwrap_or_default();
        let places = model
            .pods
            .iter()
            .filter(|p| p.name.is_some())
            .map(|p| (p.netns.clone(), p.display_name()))
            .collect();
        let addrs = model
            .netns
            .values()
            .map(|n| {
                let global: Vec<usize> = n.global_ips().map(|(i, _)| i).collect();
                let list = n
                    .addrs
                    .items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| {
                        let ip = crate::model::net::parse_ip(&a.address)?;
                        Some((a.ifindex, ip, global.contains(&i)))
                    })
                    .collect();
                (n.id.clone(), list)
            })
            .collect();
        let bridges = bridge_ports(model, graph, &addrs);
        let link_evidence = model
            .netns
            .values()
            .map(|n| {
                let all = (0..n.links.items.len()).map(|i| n.link_evidence(i));
                (n.id.as_str(), all.collect())
            })
            .collect();
        let route_evidence = model
            .netns
            .values()
            .map(|n| {
                let all = (0..n.routes.items.len()).map(|i| n.route_evidence(i));
                (n.id.as_str(), all.collect())
            })
            .collect();
        let prefixes = model
            .netns
            .values()
            .map(|n| (n.id.as_str(), super::route::Prefixes::of(n)))
            .collect();
        Engine {
            node: None,
            prefixes,
            cilium_frontends: cilium_frontends(model),
            link_evidence,
            route_evidence,
            places,
            addrs,
            bridges,
            model,
            graph,
            rulesets,
            chains,
            facts,
            root,
            options,
        }
    }

    /// Names the node in every hop (a trace across nodes, `trace::cluster`).
    pub fn on_node(mut self, name: &str) -> Self {
        self.node = Some(name.to_string());
        self
    }

    pub(super) fn netns(&self, id: &str) -> Option<&'a Netns> {
        self.model.netns.get(id)
    }

    /// The routing decision of `ns` (a netns of the engine's model, which it borrows
    /// unchanged) with its routes' destinations read when the engine was built.
    pub(super) fn decide_route(
        &self,
        ns: &Netns,
        lookup: &super::route::Lookup,
    ) -> super::route::Decision {
        match self.prefixes.get(ns.id.as_str()) {
            Some(p) => super::route::decide_with(ns, p, lookup),
            None => super::route::decide(ns, lookup),
        }
    }

    /// Moves `st` on until every branch has a verdict.
    pub(super) fn run(&self, st: State, out: &mut Vec<Branch>) {
        if st.probability <= 0.0 {
            return;
        }
        match st.stage.clone() {
            Stage::Output => self.output(st, out),
            Stage::Receive { iif, prerouted } => self.receive(st, iif, prerouted, out),
            Stage::Bridge {
                bridge,
                port,
                l2_dst,
            } => self.bridge_in(st, bridge, port, l2_dst, out),
        }
    }

    /// Runs every base chain of `hook` in the netns of `st`, in priority order; returns
    /// the branches that passed (ended ones go to `out`).
    pub(super) fn hooks(&self, mut st: State, hook: Hook, out: &mut Vec<Branch>) -> Vec<State> {
        if st.netns != self.root || self.rulesets.is_empty() {
            if st.netns != self.root && !st.noted_no_rules {
                st.noted_no_rules = true;
                let ns = st.netns.clone();
                self.hop(&mut st, &ns, None, "netfilter", "no rules in the bundle for this netns (the collector captures the node's): passed as if it had none", None);
            }
            return vec![st];
        }
        self.reverse_nat(&mut st, hook);
        self.apply_binding(&mut st, hook);
        let chains = &self.chains[&(hook, st.packet.is_v6())];
        let empty = NetnsFacts::default();
        let facts = self.facts.get(&st.netns).unwrap_or(&empty);
        let bound_on_entry = nat_bound(&st, hook);
        let mut live = vec![st];
        let mut previous: Option<&HookChain> = None;
        for chain in chains {
            // Base chains of several backends at one priority run in registration
            // order, which no bundle shows: said once, before the first of them runs,
            // so that it is in the branches any of them ends too.
            let shared = chains
                .iter()
                .any(|c| c.priority == chain.priority && c.ruleset != chain.ruleset);
            let first_of_group = previous.is_none_or(|p| p.priority != chain.priority);
            previous = Some(chain);
            if shared && first_of_group {
                let what = self.equal_priority(chains, chain.priority);
                let group: Vec<&HookChain> = chains
                    .iter()
                    .filter(|c| c.priority == chain.priority)
                    .collect();
                for s in &mut live {
                    // NAT chains only see a connection's first packet, until bound.
                    let any_runs = group
                        .iter()
                        .any(|c| !c.nat || (s.packet.ct == CtState::New && !nat_bound(s, hook)));
                    if !any_runs {
                        continue;
                    }
                    let iface = s.packet.iif.clone().or(s.packet.oif.clone());
                    let ns = s.netns.clone();
                    self.hop(s, &ns, iface, "netfilter", &what, None);
                }
            }
            let mut next = Vec::with_capacity(live.len());
            for mut s in live {
                let bound = nat_bound(&s, hook);
                if chain.nat && (s.packet.ct != CtState::New || bound) {
                    if shared && bound && !bound_on_entry && s.packet.ct == CtState::New {
                        // Another backend's NAT chain at this priority bound it first.
                        let what = format!(
                            "{} {}/{} is not consulted: this connection's NAT is already bound by the chain that ran before it at priority {} (the first to NAT binds; had this one run first, its rules would have decided)",
                            self.rulesets[chain.ruleset].label(),
                            chain.table,
                            chain.chain,
                            chain.priority
                        );
                        let iface = s.packet.iif.clone().or(s.packet.oif.clone());
                        let ns = s.netns.clone();
                        self.hop(&mut s, &ns, iface, "netfilter", &what, None);
                    }
                    next.push(s);
                    continue;
                }
                self.run_chain(s, chain, hook, facts, &mut next, out);
            }
            live = next;
        }
        live
    }

    /// What a trace says of the base chains of several backends at one priority.
    fn equal_priority(&self, chains: &[HookChain], priority: i32) -> String {
        let names: Vec<String> = chains
            .iter()
            .filter(|c| c.priority == priority)
            .map(|c| {
                format!(
                    "{} {}/{}",
                    self.rulesets[c.ruleset].label(),
                    c.table,
                    c.chain
                )
            })
            .collect();
        format!(
            "{} run at the same priority {priority}: their order is registration order, which a bundle cannot show; taken in this order, so whichever runs first decides (a drop, or the NAT of the connection)",
            names.join(", ")
        )
    }

    fn run_chain(
        &self,
        s: State,
        chain: &HookChain,
        hook: Hook,
        facts: &NetnsFacts,
        next: &mut Vec<State>,
        out: &mut Vec<Branch>,
    ) {
        let ruleset = &self.rulesets[chain.ruleset];
        let label = || ruleset.label();
        let detail = self.options.detail;
        for b in ruleset.run(chain, &s.packet, facts, detail) {
            // The address a node NAT chain sends the request to (an endpoint).
            let dnat_to = (chain.nat
                && is_dnat_hook(hook)
                && s.reply.is_none()
                && b.packet.dst != s.packet.dst)
                .then_some(b.packet.dst);
            if let (Some(d), Some(only)) = (dnat_to, s.only_dnat_to.as_deref()) {
                if !only.contains(&d) {
                    continue;
                }
            }
            let mut s2 = s.clone();
            s2.probability *= b.probability;
            if !b.steps.is_empty() {
                let place = self.place(&s.netns);
                let iface = s.packet.iif.clone().or(s.packet.oif.clone());
                for step in b.steps {
                    let at = (self.node.clone(), place.as_str(), iface.clone());
                    push_step(&mut s2, at, step, detail);
                }
            }
            if chain.nat && nat_changed(&s.packet, &b.packet) {
                if let Some(d) = dnat_to {
                    s2.dnat_to.get_or_insert(d);
                }
                s2.nat_netns = Some(s.netns.clone());
                if is_dnat_hook(hook) {
                    s2.dnat_bound = true;
                } else {
                    s2.snat_bound = true;
                }
            }
            s2.packet = b.packet;
            match b.outcome {
                HookOutcome::Accept => next.push(s2),
                HookOutcome::Drop => {
                    let why = format!("dropped by {} {}/{}", label(), chain.table, chain.chain);
                    out.push(self.end(s2, Verdict::Dropped, why, None));
                }
                HookOutcome::Reject { with } => {
                    let why = format!(
                        "rejected ({with}) by {} {}/{}",
                        label(),
                        chain.table,
                        chain.chain
                    );
                    // A reset for a bridged frame leaves by the bridge port at once
                    // (nf_send_reset → dev_queue_xmit), past the NAT hooks: for a
                    // DNATed connection it comes from the endpoint's address, which
                    // the client, who called the service address, ignores.
                    let reset = with.contains("tcp-reset") || with.contains("tcp reset");
                    if reset && s2.packet.physdev_in.is_some() && s2.dnat_bound {
                        let why = format!(
                            "{why}: the reset of a bridged, DNATed packet skips NAT, so it comes from {} and the client, which called {}, ignores it",
                            sockaddr(s2.packet.dst, s2.packet.dport),
                            sockaddr(s2.orig.dst, s2.orig.dport)
                        );
                        out.push(self.end(s2, Verdict::Dropped, why, None));
                    } else {
                        out.push(self.end(s2, Verdict::Rejected, why, None));
                    }
                }
                HookOutcome::Unknown { reason } => {
                    out.push(self.end(s2, Verdict::Unknown, reason, None));
                }
            }
        }
    }

    /// Conntrack reverses the request's NAT on its reply in the netns that NATed it,
    /// as the kernel's NAT hooks do: the hooks that rewrite destinations (PREROUTING,
    /// OUTPUT) undo the request's source NAT, those that rewrite sources (INPUT,
    /// POSTROUTING) its destination NAT. So the routing decision and FORWARD see the
    /// reply still coming from the real endpoint (not from the VIP or node address it
    /// gets back at the end, which a martian check would take for the node's own).
    fn reverse_nat(&self, st: &mut State, hook: Hook) {
        let Some(r) = st.reply.as_mut() else { return };
        if r.nat_netns.as_deref() != Some(st.netns.as_str()) {
            return;
        }
        let (o, before) = (r.orig, Tuple::of(&st.packet));
        let mut undone = Vec::new();
        if !r.dst_restored && hook != Hook::Forward {
            r.dst_restored = true;
            if (st.packet.dst, st.packet.dport) != (o.src, o.sport) {
                st.packet.dst = o.src;
                st.packet.dport = o.sport;
                undone.push("source");
            }
        }
        if !r.src_restored && matches!(hook, Hook::Input | Hook::Postrouting) {
            r.src_restored = true;
            if (st.packet.src, st.packet.sport) != (o.dst, o.dport) {
                st.packet.src = o.dst;
                st.packet.sport = o.dport;
                undone.push("destination");
            }
        }
        // Its words are made only if the hop is kept.
        if undone.is_empty() || !self.keeps(false) {
            return;
        }
        let after = Tuple::of(&st.packet);
        let what = format!(
            "conntrack reverses the request's {} NAT: {} → {} becomes {} → {}",
            undone.join(" and "),
            sockaddr(before.src, before.sport),
            sockaddr(before.dst, before.dport),
            sockaddr(after.src, after.sport),
            sockaddr(after.dst, after.dport)
        );
        let ns = st.netns.clone();
        self.hop(st, &ns, None, "conntrack", &what, None);
    }

    pub(super) fn hop(
        &self,
        st: &mut State,
        netns: &str,
        iface: Option<String>,
        at: &str,
        what: &str,
        evidence: Option<crate::evidence::Evidence>,
    ) {
        if !self.keeps(evidence.is_some()) {
            return;
        }
        let at = if st.reply.is_some() {
            format!("reply {at}")
        } else {
            at.to_string()
        };
        st.hops.push_kept(
            self.options.detail == Detail::Every,
            Hop {
                node: self.node.clone(),
                netns: self.place(netns),
                iface,
                at,
                what: what.to_string(),
                evidence,
            },
        );
    }

    /// Ends a branch. A reply's end decides its request's verdict.
    pub(super) fn end(
        &self,
        st: State,
        verdict: Verdict,
        reason: String,
        endpoint: Option<String>,
    ) -> Branch {
        let ended_in = Some(self.place(&st.netns));
        match st.reply {
            None => Branch {
                probability: st.probability,
                verdict,
                reason,
                endpoint,
                ended_in,
                hops: self.kept(&st.hops),
                dnat_to: st.dnat_to,
                handoff: None,
            },
            Some(r) => {
                // A reply that leaves the node for a client outside it (`--from` an
                // outside address) goes where it should: the rest is in no bundle.
                let client_outside = !self
                    .model
                    .netns
                    .values()
                    .any(|n| n.global_ips().any(|(_, ip)| ip == r.orig.src));
                if verdict == Verdict::LeftNode && client_outside {
                    let what = if r.refusal { "refused it" } else { "answered" };
                    return Branch {
                        probability: st.probability,
                        verdict,
                        reason: format!(
                            "{} {what}, and the reply leaves the node towards the client {}, outside it: {reason}",
                            r.endpoint, r.orig.src
                        ),
                        endpoint: Some(r.endpoint),
                        ended_in: r.ended_in,
                        hops: self.kept(&st.hops),
                        dnat_to: st.dnat_to,
                        handoff: None,
                    };
                }
                let verdict = match verdict {
                    Verdict::Unknown => Verdict::Unknown,
                    _ => Verdict::Dropped,
                };
                let what = if r.refusal {
                    "refused it, but the reset (or ICMP error)"
                } else {
                    "answered, but its reply"
                };
                Branch {
                    probability: st.probability,
                    verdict,
                    reason: format!("{} {what} never reaches the client: {reason}", r.endpoint),
                    endpoint: Some(r.endpoint),
                    ended_in: r.ended_in,
                    hops: self.kept(&st.hops),
                    dnat_to: st.dnat_to,
                    handoff: None,
                }
            }
        }
    }

    fn kept(&self, hops: &Hops) -> Vec<Hop> {
        match self.options.detail {
            Detail::Every => hops.to_vec(),
            Detail::Deciding => hops.deciding().into_iter().collect(),
            Detail::Verdicts => Vec::new(),
        }
    }

    /// Whether a hop (with or without evidence) is kept: callers skip writing one
    /// that is not.
    pub(super) fn keeps(&self, with_evidence: bool) -> bool {
        match self.options.detail {
            Detail::Every => true,
            Detail::Deciding => with_evidence,
            Detail::Verdicts => false,
        }
    }

    /// Whether `ip` is an address of `netns` (any scope with `any`, else global only).
    pub(super) fn owns(&self, netns: &str, ip: IpAddr, any: bool) -> bool {
        self.addrs
            .get(netns)
            .is_some_and(|l| l.iter().any(|(_, a, g)| *a == ip && (any || *g)))
    }

    /// Whether `ip` is an address of interface `ifindex` of `netns`.
    pub(super) fn owns_on(&self, netns: &str, ifindex: u32, ip: IpAddr) -> bool {
        self.addrs
            .get(netns)
            .is_some_and(|l| l.iter().any(|(i, a, _)| *i == ifindex && *a == ip))
    }

    /// The evidence of link `i` of `netns`.
    pub(super) fn link_evidence(&self, netns: &Netns, i: usize) -> Evidence {
        match self
            .link_evidence
            .get(netns.id.as_str())
            .and_then(|l| l.get(i))
        {
            Some(ev) => ev.clone(),
            None => netns.link_evidence(i),
        }
    }

    /// The evidence of route `i` of `netns`.
    pub(super) fn route_evidence(&self, netns: &Netns, i: usize) -> Evidence {
        match self
            .route_evidence
            .get(netns.id.as_str())
            .and_then(|l| l.get(i))
        {
            Some(ev) => ev.clone(),
            None => netns.route_evidence(i),
        }
    }

    /// A netns as people name it: the pod `ns/name`, else its id.
    pub fn place(&self, netns: &str) -> String {
        self.places
            .get(netns)
            .cloned()
            .unwrap_or_else(|| netns.to_string())
    }
}

impl Engine<'_> {
    /// An established connection's packet gets the NAT conntrack bound it to, not the
    /// rules' (nat chains see only a connection's first packet).
    fn apply_binding(&self, st: &mut State, hook: Hook) {
        if st.netns != self.root || !is_dnat_hook(hook) || st.dnat_bound || st.reply.is_some() {
            return;
        }
        let Some((ip, port, ev)) = st.ct_binding.take() else {
            return;
        };
        let what = format!(
            "the established connection to {} is bound to {}",
            sockaddr(st.packet.dst, st.packet.dport),
            sockaddr(ip, port)
        );
        st.packet.dst = ip;
        st.packet.dport = port;
        st.packet.ct_dnat = true;
        st.dnat_bound = true;
        st.nat_netns = Some(self.root.clone());
        let ns = st.netns.clone();
        self.hop(st, &ns, None, "conntrack", &what, Some(ev));
    }
}

/// Where a bridge forwards: by the addresses behind each port.
#[derive(Debug, Default)]
pub(super) struct BridgePorts {
    pub by_ip: std::collections::HashMap<IpAddr, usize>,
    /// A port whose far end is not in the bundle (dangling or unresolvable).
    pub hidden: Option<usize>,
}

fn bridge_ports(
    model: &Model,
    graph: &NodeGraph,
    addrs: &BTreeMap<String, Vec<(u32, IpAddr, bool)>>,
) -> std::collections::HashMap<(String, u32), BridgePorts> {
    let mut out: std::collections::HashMap<(String, u32), BridgePorts> = Default::default();
    for ns in model.netns.values() {
        for (i, l) in ns.links.items.iter().enumerate() {
            let Some(bridge) = l.master else { continue };
            let entry = out.entry((ns.id.clone(), bridge)).or_default();
            match graph.peer(&ns.id, l.ifindex) {
                Some(crate::graph::Peer::Found { netns, .. }) => {
                    for (_, ip, global) in addrs.get(&netns).into_iter().flatten() {
                        if *global {
                            // The first port in link order wins, as the scan did.
                            entry.by_ip.entry(*ip).or_insert(i);
                        }
                    }
                }
                _ => {
                    entry.hidden.get_or_insert(i);
                }
            }
        }
    }
    out
}

fn is_dnat_hook(hook: Hook) -> bool {
    matches!(hook, Hook::Prerouting | Hook::Output)
}

/// Whether the NAT this hook's NAT chains would set is already bound for `st`.
fn nat_bound(st: &State, hook: Hook) -> bool {
    if is_dnat_hook(hook) {
        st.dnat_bound
    } else {
        st.snat_bound
    }
}

fn nat_changed(a: &Packet, b: &Packet) -> bool {
    a.src != b.src || a.dst != b.dst || a.sport != b.sport || a.dport != b.dport
}

/// Where a step was taken: (node, netns, interface).
type StepAt<'s> = (Option<String>, &'s str, Option<String>);

fn push_step(st: &mut State, (node, netns, iface): StepAt<'_>, step: Step, detail: Detail) {
    let kept = match detail {
        Detail::Every => true,
        Detail::Deciding => step.evidence.is_some(),
        Detail::Verdicts => false,
    };
    if !kept {
        return;
    }
    let all = detail == Detail::Every;
    let at = if st.reply.is_some() {
        format!("reply {}", step.at)
    } else {
        step.at
    };
    st.hops.push_kept(
        all,
        Hop {
            node,
            netns: netns.to_string(),
            iface,
            at,
            what: step.what,
            evidence: step.evidence,
        },
    );
}

/// Addresses by interface name, broadcast addresses and sockets of one netns.
fn netns_facts(ns: &Netns) -> NetnsFacts {
    use crate::trace::packet::Proto;
    use netsnap_schema::model::SocketProto;
    let sockets = ns.sockets.present.then(|| {
        ns.sockets
            .items
            .iter()
            .filter_map(|s| {
                let proto = match s.proto {
                    SocketProto::Tcp | SocketProto::Tcp6 => Proto::Tcp,
                    SocketProto::Udp | SocketProto::Udp6 => Proto::Udp,
                };
                Some((proto, crate::model::net::parse_ip(&s.local)?, s.port))
            })
            .collect()
    });
    let mut f = NetnsFacts {
        sockets,
        ..NetnsFacts::default()
    };
    let mut by_index: Vec<&netsnap_schema::model::Addr> = ns.addrs.items.iter().collect();
    by_index.sort_by_key(|a| a.ifindex);
    f.first_global_v4 = by_index
        .iter()
        .filter(|a| matches!(a.scope.as_str(), "global" | "universe" | "0"))
        .filter_map(|a| crate::model::net::parse_ip(&a.address))
        .find(IpAddr::is_ipv4);
    for a in &ns.addrs.items {
        let Some(ip) = crate::model::net::parse_ip(&a.address) else {
            continue;
        };
        let name = ns
            .link(a.ifindex)
            .map(|(_, l)| l.name.clone())
            .unwrap_or_else(|| a.ifindex.to_string());
        f.iface_addrs.entry(name).or_default().push(ip);
        // The kernel adds the subnet's broadcast address to the local table.
        if let (IpAddr::V4(_), Ok(net)) = (ip, ipnet::IpNet::new(ip, a.prefix_len)) {
            if a.prefix_len < 31 {
                f.broadcast.push(net.broadcast());
            }
        }
    }
    f
}

/// The frontends of Cilium's services by (address, port), the first service and
/// frontend in model order winning, as a scan of the services would find them.
fn cilium_frontends(model: &Model) -> std::collections::HashMap<(IpAddr, u16), (usize, usize)> {
    let mut out = std::collections::HashMap::new();
    let cilium = model
        .services
        .iter()
        .enumerate()
        .filter(|(_, s)| s.proxier == crate::model::Proxier::Cilium);
    for (si, s) in cilium {
        for (fi, f) in s.frontends.iter().enumerate() {
            if let Some(ip) = f.ip {
                out.entry((ip, f.port)).or_insert((si, fi));
            }
        }
    }
    out
}
