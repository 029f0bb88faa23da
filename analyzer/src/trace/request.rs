//! What to trace, as people say it: `--from` a pod (`ns/name` or a unique name), a
//! netns id, `node`, or an IP (a pod's, the node's, or one outside the node, which
//! then arrives on the uplink); `--to` a service (`ns/svc[:port]`, port name or
//! number), `IP:PORT`, a pod, or an IP. Resolution reads the model only.

use super::engine::{Engine, Stage, State, Tuple};
use super::packet::{CtState, Packet, Proto};
use super::path::{Branch, Verdict};
use super::route::{self, Lookup, Verdict as Route};
use crate::model::services::{FrontendKind, Protocol, Service};
use crate::model::{Model, Netns};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The source port a traced connection uses (any ephemeral port would do: no rule
/// kube-proxy or a CNI writes depends on it).
pub const SOURCE_PORT: u16 = 40000;
/// Bytes of a packet when `--size` is not given: a TCP SYN with options.
pub const DEFAULT_SIZE: u32 = 60;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("--from {0}: no pod, netns or address of that name in the bundle")]
    UnknownSource(String),
    #[error("--from {0}: several pods are called that: {1} (use ns/name)")]
    AmbiguousSource(String, String),
    #[error("--to {0}: no service, pod or address of that name in the bundle")]
    UnknownDestination(String),
    #[error("--to {0}: several pods are called that: {1} (use ns/name)")]
    AmbiguousDestination(String, String),
    #[error("--to {0}: give a port (--port N or IP:PORT)")]
    NeedPort(String),
    #[error("--from {0}: it has no {1} address to send from")]
    NoSourceAddress(String, &'static str),
}

/// One packet to follow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// The netns it starts in.
    pub netns: String,
    /// Set when the source is outside the node: the interface it arrives on.
    pub arrives_on: Option<String>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
    #[serde(serialize_with = "proto_name")]
    pub proto: Proto,
    pub size: u32,
    pub established: bool,
    /// The destination as asked (`default/web:http` …).
    pub to: String,
}

fn proto_name<S: serde::Serializer>(p: &Proto, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// The CLI's words.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub from: String,
    pub to: String,
    pub port: Option<u16>,
    pub proto: Option<Proto>,
    pub size: Option<u32>,
    pub established: bool,
}

/// The requests `ask` means (a service name without a port means each of its ports).
pub fn resolve(model: &Model, ask: &Ask) -> Result<Vec<Request>, RequestError> {
    let dests = destinations(model, ask)?;
    requests_to(model, ask, dests)
}

/// The requests `ask` means on a cluster: sent from `model`'s node (which holds the
/// source), to a destination it knows or, failing that, the first of `others` does
/// (a pod of another node).
pub fn resolve_across(
    model: &Model,
    others: &[&Model],
    ask: &Ask,
) -> Result<Vec<Request>, RequestError> {
    let dests = match destinations(model, ask) {
        Err(e @ RequestError::UnknownDestination(_)) => others
            .iter()
            .find_map(|m| destinations(m, ask).ok())
            .ok_or(e)?,
        other => other?,
    };
    requests_to(model, ask, dests)
}

/// Whether `from` names a pod, a netns or an address of `model`'s node.
pub fn holds_source(model: &Model, from: &str) -> bool {
    match from.parse::<IpAddr>() {
        Ok(ip) => model
            .netns
            .values()
            .any(|n| n.global_ips().any(|(_, a)| a == ip)),
        Err(_) => from != "node" && pod_netns(model, from).is_ok(),
    }
}

fn requests_to(
    model: &Model,
    ask: &Ask,
    dests: Vec<Destination>,
) -> Result<Vec<Request>, RequestError> {
    let mut out = Vec::new();
    for (dst, dport, proto, to) in dests {
        let (netns, arrives_on, src) = source(model, &ask.from, dst)?;
        out.push(Request {
            netns,
            arrives_on,
            src,
            dst,
            dport,
            proto,
            size: ask.size.unwrap_or(DEFAULT_SIZE),
            established: ask.established,
            to,
        });
    }
    Ok(out)
}

type Destination = (IpAddr, u16, Proto, String);

fn destinations(model: &Model, ask: &Ask) -> Result<Vec<Destination>, RequestError> {
    let to = ask.to.as_str();
    let proto = ask.proto.unwrap_or(Proto::Tcp);
    let need_port = || {
        if proto == Proto::Icmp {
            Ok(0)
        } else {
            ask.port
                .ok_or_else(|| RequestError::NeedPort(to.to_string()))
        }
    };
    if let Ok(sa) = to.parse::<SocketAddr>() {
        return Ok(vec![(sa.ip(), sa.port(), proto, to.to_string())]);
    }
    if let Ok(ip) = to.parse::<IpAddr>() {
        return Ok(vec![(ip, need_port()?, proto, to.to_string())]);
    }
    let services = services_named(model, to, ask);
    if !services.is_empty() {
        return Ok(services);
    }
    let netns = pod_netns(model, to).map_err(|e| match e {
        RequestError::UnknownSource(s) => RequestError::UnknownDestination(s),
        RequestError::AmbiguousSource(s, l) => RequestError::AmbiguousDestination(s, l),
        other => other,
    })?;
    let ns = &model.netns[&netns];
    let ip = ns
        .global_ips()
        .map(|(_, ip)| ip)
        .next()
        .ok_or_else(|| RequestError::UnknownDestination(to.to_string()))?;
    Ok(vec![(ip, need_port()?, proto, to.to_string())])
}

/// ClusterIP frontends of the services `to` names (`ns/svc`, `ns/svc:port`).
fn services_named(model: &Model, to: &str, ask: &Ask) -> Vec<Destination> {
    let Some((ns, rest)) = to.split_once('/') else {
        return Vec::new();
    };
    let (svc, port) = rest.split_once(':').unwrap_or((rest, ""));
    let name = format!("{ns}/{svc}");
    let mut out: Vec<Destination> = Vec::new();
    for s in &model.services {
        let Some(n) = &s.name else { continue };
        if format!("{}/{}", n.namespace, n.name) != name {
            continue;
        }
        for f in s
            .frontends
            .iter()
            .filter(|f| f.kind == FrontendKind::ClusterIp)
        {
            let Some(ip) = f.ip else { continue };
            let port_matches = port.is_empty() || port == n.port || port == f.port.to_string();
            let asked_port = ask.port.is_none_or(|p| p == f.port);
            if port_matches && asked_port {
                let d = (ip, f.port, proto_of(s), service_label(s, f.port));
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    out
}

fn service_label(s: &Service, port: u16) -> String {
    match &s.name {
        Some(n) if !n.port.is_empty() => n.to_string(),
        Some(n) => format!("{n}:{port}"),
        None => s.key.clone(),
    }
}

fn proto_of(s: &Service) -> Proto {
    match s.protocol {
        Protocol::Udp => Proto::Udp,
        _ => Proto::Tcp,
    }
}

/// The netns of pod `name` (`ns/name` or a unique name) or netns id `name`.
fn pod_netns(model: &Model, name: &str) -> Result<String, RequestError> {
    if model.netns.contains_key(name) {
        return Ok(name.to_string());
    }
    let matches: Vec<&crate::model::netns::Pod> = model
        .pods
        .iter()
        .filter(|p| p.display_name() == name || p.name.as_deref() == Some(name))
        .collect();
    match matches.as_slice() {
        [] => Err(RequestError::UnknownSource(name.to_string())),
        [p] => Ok(p.netns.clone()),
        many => Err(RequestError::AmbiguousSource(
            name.to_string(),
            many.iter()
                .map(|p| p.display_name())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// The netns a packet to `dst` starts in, the interface it arrives on (for a source
/// outside the node) and its source address.
fn source(
    model: &Model,
    from: &str,
    dst: IpAddr,
) -> Result<(String, Option<String>, IpAddr), RequestError> {
    let family = if dst.is_ipv6() { "IPv6" } else { "IPv4" };
    let root = model
        .root()
        .ok_or_else(|| RequestError::UnknownSource(from.to_string()))?;
    if let Ok(ip) = from.parse::<IpAddr>() {
        if let Some(ns) = model
            .netns
            .values()
            .find(|n| n.global_ips().any(|(_, a)| a == ip))
        {
            return Ok((ns.id.clone(), None, ip));
        }
        // Outside the node: it arrives where the node would send a reply.
        let d = route::decide(root, &Lookup::output(ip));
        let iif = match d.verdict {
            Route::Unicast { oif: Some(o), .. } => root.link(o).map(|(_, l)| l.name.clone()),
            _ => None,
        };
        let iif = iif.ok_or_else(|| RequestError::UnknownSource(from.to_string()))?;
        return Ok((root.id.clone(), Some(iif), ip));
    }
    let netns = if from == "node" {
        root.id.clone()
    } else {
        pod_netns(model, from)?
    };
    let ns = &model.netns[&netns];
    let src = source_address(ns, dst)
        .ok_or_else(|| RequestError::NoSourceAddress(from.to_string(), family))?;
    Ok((netns, None, src))
}

/// The address the kernel would pick: the route's preferred source, else the first
/// global address of the outgoing interface, else any global address of the family.
fn source_address(ns: &Netns, dst: IpAddr) -> Option<IpAddr> {
    let d = route::decide(ns, &Lookup::output(dst));
    if let Some(src) = d
        .route
        .and_then(|i| ns.routes.items.get(i))
        .and_then(|r| r.prefsrc.as_deref())
        .and_then(crate::model::net::parse_ip)
    {
        return Some(src);
    }
    let same_family = |ip: &IpAddr| ip.is_ipv6() == dst.is_ipv6();
    if let Route::Unicast { oif: Some(o), .. } = d.verdict {
        let on_oif = ns
            .global_ips()
            .filter(|(i, _)| ns.addrs.items[*i].ifindex == o)
            .map(|(_, ip)| ip)
            .find(same_family);
        if on_oif.is_some() {
            return on_oif;
        }
    }
    if d.verdict == Route::Local && ns.global_ips().any(|(_, ip)| ip == dst) {
        return Some(dst);
    }
    ns.global_ips().map(|(_, ip)| ip).find(same_family)
}

/// One traced request: the packet, and every way it can go.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The node the packet starts on, in a trace across several bundles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub from: String,
    pub request: Request,
    pub verdicts: Vec<Branch>,
}

impl<'a> Engine<'a> {
    /// `--established`: the connection follows the binding the bundle's conntrack
    /// entries hold for its destination, one branch per backend weighted by how many
    /// entries go there. A service address with no entry cannot be followed.
    fn established(&self, st: State, req: &Request, out: &mut Vec<Branch>) {
        let proto = match req.proto {
            Proto::Tcp => Protocol::Tcp,
            Proto::Udp => Protocol::Udp,
            Proto::Icmp => return self.run(st, out),
        };
        let bound: Vec<&crate::model::conntrack::DnatFlows> = self
            .model
            .conntrack
            .dnat
            .iter()
            .filter(|f| f.protocol == proto && f.vip == req.dst && f.vport == req.dport)
            .collect();
        let total: u64 = bound.iter().map(|f| f.flows).sum();
        if bound.is_empty() || total == 0 {
            let is_vip = self.model.services.iter().any(|s| {
                s.frontends
                    .iter()
                    .any(|f| f.ip == Some(req.dst) && f.port == req.dport)
            });
            if is_vip {
                let why = format!(
                    "no conntrack entry of the bundle binds a connection to {}: which backend an established one uses cannot be known",
                    crate::model::services::sockaddr(req.dst, req.dport)
                );
                return out.push(self.end(st, Verdict::Unknown, why, None));
            }
            return self.run(st, out);
        }
        for f in bound {
            let mut s = st.clone();
            s.probability = f.flows as f64 / total as f64;
            s.ct_binding = Some((f.backend, f.backend_port, f.first.clone()));
            self.run(s, out);
        }
    }

    /// Follows `req` through the node.
    pub fn trace(&self, req: &Request) -> Trace {
        let st = self.start(req);
        let mut verdicts = Vec::new();
        if let Some(branch) = self.cilium_service(req) {
            verdicts.push(branch);
        } else if req.established {
            self.established(st, req, &mut verdicts);
        } else {
            self.run(st, &mut verdicts);
        }
        self.note_cilium_programs(&req.netns, &mut verdicts);
        Trace {
            node: self.node.clone(),
            from: self.place(&req.netns),
            request: req.clone(),
            verdicts,
        }
    }

    /// The branches of a new connection's `req` whose request a node NAT chain sends
    /// to one of `only` (or to no address): the rest are dropped where NAT splits them.
    pub(super) fn branches_only(&self, req: &Request, only: Arc<[IpAddr]>) -> Vec<Branch> {
        let st = State {
            only_dnat_to: Some(only),
            ..self.start(req)
        };
        let mut out = Vec::new();
        self.run(st, &mut out);
        out
    }

    /// On a Cilium node the kernel's path is not the whole story: its BPF programs on
    /// the `lxc*` and `cilium_*` devices (network policy, redirects) are not in the
    /// bundle. A full trace says so first, rather than let a verdict look complete.
    fn note_cilium_programs(&self, netns: &str, verdicts: &mut [Branch]) {
        let cilium = self
            .model
            .datapath
            .cni
            .as_ref()
            .is_some_and(|c| c.name == "cilium");
        if !cilium || self.options.detail != super::packet::Detail::Every {
            return;
        }
        for b in verdicts
            .iter_mut()
            .filter(|b| b.hops.first().is_none_or(|h| h.at != "cilium"))
        {
            b.hops.insert(
                0,
                super::path::Hop {
                    node: self.node.clone(),
                    netns: self.place(netns),
                    iface: None,
                    at: "cilium".into(),
                    what: "note: Cilium's BPF programs on lxc*/cilium_* devices (network policy, redirects) are not in the bundle; what follows is the kernel's path without them".into(),
                    evidence: None,
                },
            );
        }
    }

    /// A request to a service Cilium's BPF load balancer takes: not simulated (its
    /// programs are not in the bundle), said with the listing's line and backends.
    fn cilium_service(&self, req: &Request) -> Option<Branch> {
        let &(si, fi) = self.cilium_frontends.get(&(req.dst, req.dport))?;
        let s = &self.model.services[si];
        let f = &s.frontends[fi];
        let backends: Vec<String> = s
            .endpoints
            .iter()
            .map(|e| crate::model::services::sockaddr(e.ip, e.port))
            .collect();
        let reason = format!(
            "{} is a service of Cilium's BPF load balancer ({} active backends: {}); netsnap does not simulate Cilium's BPF programs",
            crate::model::services::sockaddr(req.dst, req.dport),
            backends.len(),
            if backends.is_empty() { "none".to_string() } else { backends.join(", ") }
        );
        Some(Branch {
            probability: 1.0,
            verdict: Verdict::Unknown,
            reason: reason.clone(),
            endpoint: None,
            ended_in: None,
            hops: vec![super::path::Hop {
                node: self.node.clone(),
                netns: self.place(&req.netns),
                iface: None,
                at: "cilium".into(),
                what: reason,
                evidence: Some(f.evidence.clone()),
            }],
            dnat_to: None,
            handoff: None,
        })
    }

    /// The packet of `req` as its sender emits it.
    fn start(&self, req: &Request) -> State {
        let packet = Packet {
            src: req.src,
            dst: req.dst,
            proto: req.proto,
            sport: if req.proto == Proto::Icmp {
                0
            } else {
                SOURCE_PORT
            },
            dport: req.dport,
            size: req.size,
            mark: 0,
            ct_mark: 0,
            ct: if req.established {
                CtState::Established
            } else {
                CtState::New
            },
            ct_dnat: false,
            ct_snat: false,
            iif: None,
            oif: None,
            physdev_in: None,
            physdev_out: None,
            bridged: false,
        };
        let stage = match &req.arrives_on {
            Some(iif) => Stage::Receive {
                iif: iif.clone(),
                prerouted: false,
            },
            None => Stage::Output,
        };
        State {
            netns: req.netns.clone(),
            orig: Tuple::of(&packet),
            packet,
            stage,
            probability: 1.0,
            hops: Default::default(),
            crossings: 0,
            nat_netns: None,
            dnat_bound: false,
            snat_bound: false,
            reply: None,
            noted_no_rules: false,
            ct_binding: None,
            dnat_to: None,
            only_dnat_to: None,
        }
    }
}
