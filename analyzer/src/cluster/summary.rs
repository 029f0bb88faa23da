//! What one node contributes to the cluster picture: its [`NodeSummary`], made from
//! the node's model once its own analysis is done, so that the bundle, the parsed
//! sources and the model can be dropped. Every fact keeps the [`Evidence`] (file:line
//! in that node's bundle) a cluster finding cites.

use crate::evidence::Evidence;
use crate::model::net::{cidr, parse_cidr, parse_ip, Cidr};
use crate::model::{Model, Netns, Service};
use crate::report::Analysis;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

/// The node sysctls compared across nodes (CLU006).
pub const DRIFT_SYSCTLS: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.bridge.bridge-nf-call-iptables",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.ip_forward",
];

/// A value and where the node's bundle says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact<T> {
    pub value: T,
    pub evidence: Evidence,
}

/// A pod of the node, by one of its addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFact {
    /// `namespace/name` (else what [`crate::model::Pod::display_name`] gives).
    pub name: String,
    pub evidence: Evidence,
}

/// A service as this node programs it. Kept small (lines, not evidence; file names
/// shared; nodes that program it alike share one, see [`Shared`]): a hundred nodes of
/// a thousand services each are held at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceFact {
    /// `ns/name:port` when the rules name it, else `VIP:port/proto`.
    pub display: String,
    /// internalTrafficPolicy Local: each node programs only its own endpoints, so the
    /// endpoint sets legitimately differ between nodes.
    pub internal_local: bool,
    /// Endpoints, sorted and unique, with the line programming each (in
    /// `endpoint_path`).
    pub endpoints: Vec<(SocketAddr, Option<u32>)>,
    /// The file and line where the service itself is programmed (its first frontend).
    pub path: Arc<str>,
    pub line: Option<u32>,
    /// The file its endpoints are programmed in.
    pub endpoint_path: Arc<str>,
}

impl ServiceFact {
    /// Where the service is programmed.
    pub fn evidence(&self) -> Evidence {
        Evidence::new(
            &*self.path,
            self.line.map(|l| l as usize),
            format!("service {}", self.display),
        )
    }

    /// Evidence of one endpoint of the service.
    pub fn endpoint_evidence(&self, ep: &SocketAddr) -> Evidence {
        let line = self
            .endpoints
            .iter()
            .find(|(e, _)| e == ep)
            .and_then(|(_, l)| *l);
        Evidence::new(
            &*self.endpoint_path,
            line.map(|l| l as usize),
            format!("endpoint {ep} of {}", self.display),
        )
    }

    /// The endpoint addresses.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.endpoints.iter().map(|(e, _)| *e)
    }
}

/// A forwarding entry of an overlay device: frames for `mac` go to `dst` (a VTEP).
#[derive(Debug, Clone, PartialEq)]
pub struct FdbFact {
    pub mac: String,
    pub dst: Option<IpAddr>,
    pub evidence: Evidence,
}

/// A neighbour entry of an overlay device: the next hop `ip` is the VTEP MAC `lladdr`.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighFact {
    pub ip: IpAddr,
    pub lladdr: Option<String>,
    pub state: String,
    pub evidence: Evidence,
}

impl NeighFact {
    /// Whether the entry can be used to send (has a MAC and is not FAILED/INCOMPLETE).
    pub fn usable(&self) -> bool {
        self.lladdr.is_some()
            && !self.state.contains("FAILED")
            && !self.state.contains("INCOMPLETE")
    }
}

/// An overlay device of the node (VXLAN …).
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayFact {
    pub ifindex: u32,
    pub name: String,
    pub kind: String,
    pub mtu: u32,
    /// The VTEP's own (local) address, from the VXLAN data.
    pub local: Option<IpAddr>,
    pub mac: Option<String>,
    /// `external` (collect_metadata): a program picks each packet's tunnel, the FDB and
    /// neighbour entries are not used.
    pub external: bool,
    /// The kernel learns (or a daemon is asked for) remote MACs / neighbours: entries
    /// missing from the capture may come when needed.
    pub learns_fdb: bool,
    pub learns_neigh: bool,
    pub fdb: Vec<FdbFact>,
    pub neigh: Vec<NeighFact>,
    pub evidence: Evidence,
}

/// A main-table route of the node to a prefix outside its own pod CIDRs.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFact {
    pub dst: Cidr,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    /// Index in [`NodeSummary::overlays`] when the route leaves through an overlay.
    pub overlay: Option<usize>,
    /// `unicast`, `blackhole`, …
    pub kind: String,
    pub evidence: Evidence,
}

/// What the summaries of one cluster share: the nodes of a cluster program the same
/// services, mostly to the same lines of the same files, and a hundred copies of a
/// thousand services were most of a cluster run's memory (100 medium nodes: ~0.4 MiB
/// per node kept, docs/performance.md).
#[derive(Debug, Default)]
pub struct Shared {
    keys: Mutex<HashSet<Arc<str>>>,
    services: Mutex<HashSet<Arc<ServiceFact>>>,
}

impl Shared {
    fn key(&self, key: String) -> Arc<str> {
        intern::<str, str, _>(&self.keys, key)
    }

    fn service(&self, fact: ServiceFact) -> Arc<ServiceFact> {
        intern::<_, ServiceFact, _>(&self.services, fact)
    }
}

/// The value equal to `value` in `set`, which takes `value` when there is none. A
/// poisoned lock (a panic elsewhere while interning) still holds a valid set.
fn intern<T, K, V>(set: &Mutex<HashSet<Arc<T>>>, value: V) -> Arc<T>
where
    T: ?Sized + Eq + std::hash::Hash,
    K: ?Sized + Eq + std::hash::Hash,
    V: std::borrow::Borrow<K>,
    Arc<T>: std::borrow::Borrow<K> + From<V>,
{
    let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = set.get(value.borrow()) {
        return found.clone();
    }
    let made = Arc::from(value);
    set.insert(made.clone());
    made
}

/// What one node contributes to the cluster checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSummary {
    pub hostname: String,
    /// Global addresses of the node netns.
    pub addresses: Vec<Fact<IpAddr>>,
    pub pod_cidrs: Vec<Fact<Cidr>>,
    /// Pods by address (the first pod when one node has an address twice: LNK007's).
    pub pods: BTreeMap<IpAddr, PodFact>,
    /// Services by [`service_key`].
    pub services: BTreeMap<Arc<str>, Arc<ServiceFact>>,
    pub overlays: Vec<OverlayFact>,
    pub routes: Vec<RouteFact>,
    /// The node netns's routes file (where a missing route would be).
    pub routes_path: String,
    /// [`DRIFT_SYSCTLS`] the bundle has.
    pub sysctls: BTreeMap<String, Fact<String>>,
    /// What programs the services (`kube-proxy iptables (nft backend)` …), when found.
    pub service_proxy: Option<Fact<String>>,
}

impl NodeSummary {
    /// The summary of an analysed node.
    pub fn of(a: &Analysis<'_>) -> NodeSummary {
        NodeSummary::of_shared(a, &Shared::default())
    }

    /// The summary of an analysed node, sharing with the other nodes' summaries.
    pub fn of_shared(a: &Analysis<'_>, shared: &Shared) -> NodeSummary {
        let m = &a.model;
        let root = m.root();
        let pod_cidrs = pod_cidrs(m, root);
        let overlays = root.map(|r| overlays(m, r)).unwrap_or_default();
        let routes = root
            .map(|r| routes(r, &pod_cidrs, &overlays))
            .unwrap_or_default();
        NodeSummary {
            hostname: m.hostname.clone(),
            addresses: root
                .map(|r| {
                    r.global_ips()
                        .map(|(i, ip)| Fact {
                            value: ip,
                            evidence: r.addr_evidence(i),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            pods: pods(m),
            services: services(m, shared),
            sysctls: sysctls(m),
            service_proxy: service_proxy(m),
            routes_path: root.map(|r| r.routes.path.clone()).unwrap_or_default(),
            pod_cidrs,
            overlays,
            routes,
        }
    }

    /// The pod CIDR of this node that holds `ip`.
    pub fn pod_cidr_of(&self, ip: IpAddr) -> Option<&Fact<Cidr>> {
        self.pod_cidrs.iter().find(|c| c.value.contains(&ip))
    }

    /// Whether `ip` is one of the node's own addresses.
    pub fn has_address(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.value == ip)
            || self.overlays.iter().any(|o| o.local == Some(ip))
    }
}

/// How services are matched across nodes: `VIP:port/proto` of the cluster IP, which
/// every node programs alike whatever its proxier (iptables rules name a service,
/// IPVS virtual servers do not); the name when there is no cluster IP.
pub fn service_key(s: &Service) -> String {
    match s.cluster_ip().and_then(|f| Some((f.ip?, f.port))) {
        Some((ip, port)) => format!(
            "{}/{}",
            crate::model::services::sockaddr(ip, port),
            s.protocol
        ),
        None => format!("{}/{}", s.display_name(), s.protocol),
    }
}

fn services(m: &Model, shared: &Shared) -> BTreeMap<Arc<str>, Arc<ServiceFact>> {
    // File names shared by every service of the node.
    let mut files: Vec<Arc<str>> = Vec::new();
    let mut file = |p: &str| -> Arc<str> {
        if let Some(f) = files.iter().find(|f| &***f == p) {
            return f.clone();
        }
        let f: Arc<str> = Arc::from(p);
        files.push(f.clone());
        f
    };
    let line = |l: Option<usize>| l.and_then(|l| u32::try_from(l).ok());
    let mut out: BTreeMap<String, ServiceFact> = BTreeMap::new();
    for s in &m.services {
        let Some(anchor) = s.anchor() else { continue };
        let key = service_key(s);
        let endpoint_path = s
            .endpoints
            .first()
            .map_or(&anchor.path, |e| &e.evidence.path);
        let fact = out.entry(key).or_insert_with(|| ServiceFact {
            display: s.display_name(),
            internal_local: s.internal_local,
            endpoints: Vec::new(),
            path: file(&anchor.path),
            line: line(anchor.line),
            endpoint_path: file(endpoint_path),
        });
        // One node may program a service twice (both iptables backends, IPVS and
        // its iptables helpers): the node's set is the union.
        if s.name.is_some() && fact.display != s.display_name() {
            fact.display = s.display_name();
        }
        fact.internal_local |= s.internal_local;
        for e in &s.endpoints {
            fact.endpoints
                .push((SocketAddr::new(e.ip, e.port), line(e.evidence.line)));
        }
    }
    out.into_iter()
        .map(|(key, mut fact)| {
            fact.endpoints.sort_by_key(|(e, _)| *e);
            fact.endpoints.dedup_by_key(|(e, _)| *e);
            fact.endpoints.shrink_to_fit();
            (shared.key(key), shared.service(fact))
        })
        .collect()
}

fn pods(m: &Model) -> BTreeMap<IpAddr, PodFact> {
    let mut out = BTreeMap::new();
    for p in &m.pods {
        let Some(ns) = m.netns.get(&p.netns) else {
            continue;
        };
        for (i, ip) in ns.global_ips() {
            out.entry(ip).or_insert_with(|| PodFact {
                name: p.display_name(),
                evidence: ns.addr_evidence(i),
            });
        }
    }
    out
}

/// The node's pod CIDRs (model.node.pod_cidrs) with the fact each comes from: the
/// address that makes it, the route to it, else the CNI configuration.
fn pod_cidrs(m: &Model, root: Option<&Netns>) -> Vec<Fact<Cidr>> {
    m.node
        .pod_cidrs
        .iter()
        .map(|pc| {
            let by_addr = root.and_then(|r| {
                r.addrs.iter().find_map(|(i, a)| {
                    let c = cidr(parse_ip(&a.address)?, a.prefix_len)?;
                    (c == pc.cidr).then(|| r.addr_evidence(i))
                })
            });
            let by_route = || {
                root.and_then(|r| {
                    r.routes.iter().find_map(|(i, rt)| {
                        (parse_cidr(&rt.dst).ok() == Some(pc.cidr)).then(|| r.route_evidence(i))
                    })
                })
            };
            let by_config = || {
                m.cni
                    .in_use()
                    .map(|f| Evidence::new(f.path.clone(), None, pc.from.clone()))
            };
            let evidence = by_addr
                .or_else(by_route)
                .or_else(by_config)
                .unwrap_or_else(|| Evidence::new("netns/root/addrs.json", None, pc.from.clone()));
            Fact {
                value: pc.cidr,
                evidence,
            }
        })
        .collect()
}

fn overlays(m: &Model, root: &Netns) -> Vec<OverlayFact> {
    m.node
        .overlays
        .iter()
        .filter_map(|o| {
            let (li, link) = root.link(o.ifindex)?;
            let vx = link.vxlan.as_ref();
            let fdb = root
                .fdb
                .iter()
                .filter(|(_, f)| f.ifindex == o.ifindex)
                .map(|(i, f)| FdbFact {
                    mac: f.mac.to_ascii_lowercase(),
                    dst: f.dst.as_deref().and_then(parse_ip),
                    evidence: root.fdb.evidence(
                        i,
                        format!(
                            "{} dev {} dst {} {}",
                            f.mac,
                            o.name,
                            f.dst.as_deref().unwrap_or("-"),
                            f.state
                        ),
                    ),
                })
                .collect();
            let neigh = root
                .neigh
                .iter()
                .filter(|(_, n)| n.ifindex == o.ifindex)
                .filter_map(|(i, n)| {
                    Some(NeighFact {
                        ip: parse_ip(&n.dst)?,
                        lladdr: n.lladdr.as_ref().map(|l| l.to_ascii_lowercase()),
                        state: n.state.clone(),
                        evidence: root.neigh.evidence(
                            i,
                            format!(
                                "{} dev {} lladdr {} {}",
                                n.dst,
                                o.name,
                                n.lladdr.as_deref().unwrap_or("-"),
                                n.state
                            ),
                        ),
                    })
                })
                .collect();
            Some(OverlayFact {
                ifindex: o.ifindex,
                name: o.name.clone(),
                kind: o.kind.clone(),
                mtu: o.mtu,
                local: vx.and_then(|v| v.local.as_deref()).and_then(parse_ip),
                mac: link.mac.as_ref().map(|m| m.to_ascii_lowercase()),
                external: vx.and_then(|v| v.external) == Some(true),
                learns_fdb: vx.is_some_and(|v| v.learning == Some(true) || v.l2miss == Some(true)),
                learns_neigh: vx.is_some_and(|v| v.l3miss == Some(true) || v.proxy == Some(true)),
                fdb,
                neigh,
                evidence: root.link_evidence(li),
            })
        })
        .collect()
}

/// Main-table routes to prefixes outside the node's own pod CIDRs (those are where
/// other nodes' pods may be).
fn routes(root: &Netns, own: &[Fact<Cidr>], overlays: &[OverlayFact]) -> Vec<RouteFact> {
    root.routes
        .iter()
        .filter(|(_, r)| r.table == 254)
        .filter_map(|(i, r)| {
            let dst = parse_cidr(&r.dst).ok()?;
            if own.iter().any(|c| c.value.contains(&dst)) {
                return None;
            }
            Some(RouteFact {
                dst,
                gateway: r.gateway.as_deref().and_then(parse_ip),
                dev: r.oif.map(|o| {
                    root.link(o)
                        .map_or_else(|| format!("if{o}"), |(_, l)| l.name.clone())
                }),
                overlay: r
                    .oif
                    .and_then(|o| overlays.iter().position(|ov| ov.ifindex == o)),
                kind: r.kind.clone(),
                evidence: root.route_evidence(i),
            })
        })
        .collect()
}

fn sysctls(m: &Model) -> BTreeMap<String, Fact<String>> {
    let mut out = BTreeMap::new();
    for key in DRIFT_SYSCTLS {
        let found = m.node_sysctl(key).map(|(v, ev)| (v.to_string(), ev));
        // conntrack's own sysctl file, when host/sysctl.json lacks the max.
        let found = found.or_else(|| match *key {
            "net.netfilter.nf_conntrack_max" => m
                .conntrack
                .max
                .as_ref()
                .map(|(v, ev)| (v.to_string(), ev.clone())),
            _ => None,
        });
        if let Some((value, evidence)) = found {
            out.insert(
                key.to_string(),
                Fact {
                    value: value.trim().to_string(),
                    evidence,
                },
            );
        }
    }
    out
}

/// kube-proxy's mode (or its replacement), as the node's datapath names it.
fn service_proxy(m: &Model) -> Option<Fact<String>> {
    let proxies = &m.datapath.service_proxy;
    let first = proxies.first()?;
    let value = proxies
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(" + ");
    let evidence = first
        .evidence
        .first()
        .cloned()
        .unwrap_or_else(|| Evidence::new("manifest.json", None, first.from.clone()));
    Some(Fact { value, evidence })
}
