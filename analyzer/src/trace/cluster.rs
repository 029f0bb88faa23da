//! A trace across nodes (`netsnap trace A B C …`): each node's bundle has its own
//! engine; a branch that leaves a node ([`Verdict::LeftNode`], with the
//! [`Handoff`] the engine left on it) goes on in the bundle of the node it goes to, as
//! the kernel there would receive it:
//!
//! * through a VXLAN device to a remote VTEP: the node whose root netns owns the
//!   VTEP's address (or whose VXLAN device has it as `local`), arriving decapsulated
//!   on its VXLAN device of the same VNI;
//! * through the uplink to a next hop a node owns: that node, arriving on the
//!   interface that holds the address;
//! * through the uplink to a gateway no bundle holds: the underlay (in no bundle) is
//!   taken to deliver it to the one node that holds the destination address, arriving
//!   on the interface that node would use to answer the sending node.
//!
//! Conntrack is per node: a request arrives on the next node as a new connection with
//! no NAT of its own; a reply that comes back to the node that NATed its request gets
//! that node's NAT state back, so the node reverses it as its conntrack would. Every
//! hop names its node. A branch that cannot be followed stays `left-node`, its reason
//! saying why.

use super::engine::{Engine, Handoff, Options, Stage, State};
use super::path::{Branch, Verdict};
use super::request::{self, Ask, Request, RequestError, Trace};
use super::route::{self, Lookup, Verdict as Route};
use super::Prepared;
use crate::model::{Model, Netns};
use std::net::IpAddr;

/// How many times one branch may move to another node before it is called a loop.
const MAX_NODE_CROSSINGS: usize = 8;

/// The engines of several nodes' bundles, traced as one cluster.
pub struct Cluster<'a> {
    names: Vec<String>,
    models: Vec<&'a Model>,
    engines: Vec<Engine<'a>>,
}

/// Where a branch that left a node goes on.
struct Arrival {
    node: usize,
    iif: String,
    how: String,
}

/// A node's NAT state of a connection, for the reply that comes back to it.
#[derive(Clone)]
struct NatContext {
    node: usize,
    nat_netns: Option<String>,
    dnat_bound: bool,
    snat_bound: bool,
    ct_dnat: bool,
    ct_snat: bool,
}

impl<'a> Cluster<'a> {
    /// One engine per `(node name, prepared bundle)`.
    pub fn new(nodes: &[(String, &'a Prepared)], options: Options) -> Cluster<'a> {
        Cluster {
            names: nodes.iter().map(|(n, _)| n.clone()).collect(),
            models: nodes.iter().map(|(_, p)| &p.model).collect(),
            engines: nodes
                .iter()
                .map(|(n, p)| p.engine(options).on_node(n))
                .collect(),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// What `ask` means: the node that holds the source (a pod, netns or address of
    /// it; else the first node) and the requests it sends there; a destination pod
    /// may be on any node.
    pub fn resolve(&self, ask: &Ask) -> Result<(usize, Vec<Request>), RequestError> {
        let node = (0..self.models.len())
            .find(|&i| request::holds_source(self.models[i], &ask.from))
            .unwrap_or(0);
        let others: Vec<&Model> = (0..self.models.len())
            .filter(|&i| i != node)
            .map(|i| self.models[i])
            .collect();
        let requests = request::resolve_across(self.models[node], &others, ask)?;
        Ok((node, requests))
    }

    /// Traces what `ask` means across the nodes.
    pub fn trace_ask(&self, ask: &Ask) -> Result<Vec<Trace>, RequestError> {
        let (node, requests) = self.resolve(ask)?;
        Ok(requests.iter().map(|r| self.trace(node, r)).collect())
    }

    /// Follows `req`, sent on node `node`, until every branch has a final verdict or
    /// leaves the nodes given.
    pub fn trace(&self, node: usize, req: &Request) -> Trace {
        let mut t = self.engines[node].trace(req);
        let mut out = Vec::new();
        for b in std::mem::take(&mut t.verdicts) {
            self.follow(node, b, (0, &[]), &mut out);
        }
        t.verdicts = out;
        t
    }

    /// Continues branch `b` (ended on `node`) on the node it goes to, if it left;
    /// `crossed`: how many times it moved to another node so far, and the NAT state
    /// of each node its request left.
    fn follow(
        &self,
        node: usize,
        mut b: Branch,
        (crossed, nat): (usize, &[NatContext]),
        out: &mut Vec<Branch>,
    ) {
        let handoff = b.handoff.take();
        let Some(h) = handoff.filter(|_| b.verdict == Verdict::LeftNode) else {
            return out.push(b);
        };
        if crossed >= MAX_NODE_CROSSINGS {
            b.verdict = Verdict::Dropped;
            b.reason = format!(
                "routing loop between nodes: the packet crossed {MAX_NODE_CROSSINGS} nodes; its TTL runs out: {}",
                b.reason
            );
            return out.push(b);
        }
        let arrival = match self.arrival(node, &h) {
            Ok(a) => a,
            Err(why) => {
                b.reason = format!("{}; {why}", b.reason);
                return out.push(b);
            }
        };
        let mut nat = nat.to_vec();
        let st = self.continued(node, &h, &arrival, &mut nat);
        let mut sub = Vec::new();
        self.engines[arrival.node].run(st, &mut sub);
        for s in sub {
            self.follow(arrival.node, s, (crossed + 1, &nat), out);
        }
    }

    /// The node a branch goes to and the interface it arrives on, or why not known.
    fn arrival(&self, from: usize, h: &Handoff) -> Result<Arrival, String> {
        if h.kind == "vxlan" {
            let vtep = h.vtep.ok_or_else(|| {
                format!(
                    "the bundle does not say which VTEP {} sends it to",
                    h.device
                )
            })?;
            return self.vtep_arrival(from, h, vtep);
        }
        if let Some(node) = self.other_owner(from, h.nexthop, true) {
            let root = self.root(node)?;
            let iif = interface_owning(root, h.nexthop).unwrap_or_default();
            let how = format!(
                "arrives on node {} on {iif} (its address {} is the next hop)",
                self.names[node], h.nexthop
            );
            return Ok(Arrival { node, iif, how });
        }
        let dst = h.state.packet.dst;
        let node = self
            .other_owner(from, dst, false)
            .ok_or_else(|| format!("no other node given holds {} or {dst}", h.nexthop))?;
        let root = self.root(node)?;
        let sender = self.root(from)?;
        let iif = answer_interface(root, sender, &h.device).ok_or_else(|| {
            format!(
                "node {} has no route back to the sending node",
                self.names[node]
            )
        })?;
        let how = format!(
            "the underlay (in no bundle) takes it from gateway {} to node {}, which holds {dst}: arrives on {iif}",
            h.nexthop, self.names[node]
        );
        Ok(Arrival { node, iif, how })
    }

    fn vtep_arrival(&self, from: usize, h: &Handoff, vtep: IpAddr) -> Result<Arrival, String> {
        let owns_vtep = |n: &Netns| {
            n.global_ips().any(|(_, ip)| ip == vtep)
                || n.links.items.iter().any(|l| is_vtep(l, h.vni, Some(vtep)))
        };
        let node = (0..self.models.len())
            .filter(|&i| i != from)
            .find(|&i| self.models[i].root().is_some_and(&owns_vtep))
            .ok_or_else(|| format!("no other node given has the VTEP address {vtep}"))?;
        let root = self.root(node)?;
        let dev = root
            .links
            .items
            .iter()
            .find(|l| is_vtep(l, h.vni, Some(vtep)))
            .or_else(|| root.links.items.iter().find(|l| is_vtep(l, h.vni, None)))
            .ok_or_else(|| {
                format!(
                    "node {} (VTEP {vtep}) has no VXLAN device with VNI {}: the kernel drops it",
                    self.names[node],
                    h.vni.map_or("?".into(), |v| v.to_string())
                )
            })?;
        let how = format!(
            "arrives on node {} (VTEP {vtep}) and is decapsulated on {}",
            self.names[node], dev.name
        );
        Ok(Arrival {
            node,
            iif: dev.name.clone(),
            how,
        })
    }

    fn root(&self, node: usize) -> Result<&'a Netns, String> {
        self.models[node]
            .root()
            .ok_or_else(|| format!("the bundle of node {} has no node netns", self.names[node]))
    }

    /// The one node other than `from` that holds `ip` (in its node netns only, with
    /// `root_only`; else in any netns). Several: none (the bundles cannot tell which).
    fn other_owner(&self, from: usize, ip: IpAddr, root_only: bool) -> Option<usize> {
        let holds = |m: &Model| {
            m.netns
                .values()
                .filter(|n| n.is_root || !root_only)
                .any(|n| n.global_ips().any(|(_, a)| a == ip))
        };
        let owners: Vec<usize> = (0..self.models.len())
            .filter(|&i| i != from && holds(self.models[i]))
            .collect();
        match owners.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The state the branch arrives with on the next node.
    fn continued(
        &self,
        from: usize,
        h: &Handoff,
        arrival: &Arrival,
        nat: &mut Vec<NatContext>,
    ) -> State {
        let mut st = h.state.clone();
        if st.reply.is_none() {
            nat.push(NatContext {
                node: from,
                nat_netns: st.nat_netns.clone(),
                dnat_bound: st.dnat_bound,
                snat_bound: st.snat_bound,
                ct_dnat: st.packet.ct_dnat,
                ct_snat: st.packet.ct_snat,
            });
        }
        // The node it arrives on: its conntrack's NAT of this connection, if it NATed
        // the request (a reply coming back), else none.
        let back = nat
            .iter()
            .rev()
            .find(|c| c.node == arrival.node && st.reply.is_some())
            .cloned();
        let engine = &self.engines[arrival.node];
        st.netns = engine.root.clone();
        st.stage = Stage::Receive {
            iif: arrival.iif.clone(),
            prerouted: false,
        };
        st.crossings = 0;
        st.noted_no_rules = false;
        st.ct_binding = None;
        let p = &mut st.packet;
        (p.iif, p.oif, p.physdev_in, p.physdev_out) = (None, None, None, None);
        (p.bridged, p.mark, p.ct_mark) = (false, 0, 0);
        let c = back.unwrap_or(NatContext {
            node: arrival.node,
            nat_netns: None,
            dnat_bound: false,
            snat_bound: false,
            ct_dnat: false,
            ct_snat: false,
        });
        (p.ct_dnat, p.ct_snat) = (c.ct_dnat, c.ct_snat);
        st.nat_netns = c.nat_netns.clone();
        (st.dnat_bound, st.snat_bound) = (c.dnat_bound, c.snat_bound);
        if let Some(r) = st.reply.as_mut() {
            r.nat_netns = c.nat_netns;
            (r.dst_restored, r.src_restored) = (false, false);
        }
        let netns = st.netns.clone();
        engine.hop(
            &mut st,
            &netns,
            Some(arrival.iif.clone()),
            "node",
            &arrival.how,
            None,
        );
        st
    }
}

/// Whether `l` is a VXLAN device of VNI `vni` (any when unknown), with `local` = `vtep`
/// when one is given.
fn is_vtep(l: &netsnap_schema::model::Link, vni: Option<u32>, vtep: Option<IpAddr>) -> bool {
    let Some(vx) = l.vxlan.as_ref() else {
        return false;
    };
    let local = vx.local.as_deref().and_then(crate::model::net::parse_ip);
    vni.is_none_or(|v| v == vx.id) && vtep.is_none_or(|t| local == Some(t))
}

/// The name of the interface of `ns` that has address `ip`.
fn interface_owning(ns: &Netns, ip: IpAddr) -> Option<String> {
    let (i, _) = ns.global_ips().find(|(_, a)| *a == ip)?;
    let ifindex = ns.addrs.items[i].ifindex;
    ns.link(ifindex).map(|(_, l)| l.name.clone())
}

/// The interface of `ns` on which it would answer `sender` (routing towards the
/// sender's address on `device`): where the underlay hands it packets from there.
fn answer_interface(ns: &Netns, sender: &Netns, device: &str) -> Option<String> {
    let (_, dev) = sender.link_named(device)?;
    let (_, addr) = sender
        .global_ips()
        .find(|(i, _)| sender.addrs.items[*i].ifindex == dev.ifindex)?;
    match route::decide(ns, &Lookup::output(addr)).verdict {
        Route::Unicast { oif: Some(o), .. } => ns.link(o).map(|(_, l)| l.name.clone()),
        _ => None,
    }
}

/// Names for the nodes of several bundles: each hostname, unless two bundles share
/// it (labs, copies); then each file's name; then `node-<n>`.
pub fn node_names(hostnames: &[String], files: &[String]) -> Vec<String> {
    let unique = |v: &[String]| {
        let set: std::collections::BTreeSet<&String> = v.iter().collect();
        set.len() == v.len() && v.iter().all(|s| !s.is_empty())
    };
    if unique(hostnames) {
        return hostnames.to_vec();
    }
    let stems: Vec<String> = files
        .iter()
        .map(|f| {
            let name = std::path::Path::new(f)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.split(".netsnap")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    if unique(&stems) {
        return stems;
    }
    (1..=hostnames.len()).map(|n| format!("node-{n}")).collect()
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
