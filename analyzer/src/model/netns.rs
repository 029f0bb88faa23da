//! Network namespaces and pods.

use super::net::{cidr, parse_ip, Cidr};
use super::{Evidence, Resolv};
use netsnap_schema::model::{
    Addr, FdbEntry, Link, LinkState, Neigh, PodIdentity, Route, Rule, Socket,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The items of one JSON array source, with where each item starts in the file.
#[derive(Debug, Clone, Serialize)]
pub struct Table<T> {
    pub path: String,
    /// False when the source is missing from the bundle (checks then stay silent).
    pub present: bool,
    pub items: Vec<T>,
    /// 1-based line of each item in the pretty-printed JSON, when known.
    #[serde(skip)]
    pub lines: Vec<Option<usize>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            path: String::new(),
            present: false,
            items: Vec::new(),
            lines: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    pub fn new(path: impl Into<String>, items: Vec<T>) -> Self {
        let lines = vec![None; items.len()];
        Table {
            path: path.into(),
            present: true,
            items,
            lines,
        }
    }

    /// Evidence pointing at item `i`, with `excerpt` describing it.
    pub fn evidence(&self, i: usize, excerpt: impl Into<String>) -> Evidence {
        Evidence::new(
            self.path.clone(),
            self.lines.get(i).copied().flatten(),
            excerpt.into(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items.iter().enumerate()
    }
}

/// One network namespace of the node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Netns {
    pub id: String,
    pub is_root: bool,
    pub inode: u64,
    /// nsid as seen from the node netns.
    pub nsid: Option<i32>,
    pub hostname: Option<String>,
    pub pod: Option<PodIdentity>,
    pub links: Table<Link>,
    pub addrs: Table<Addr>,
    pub routes: Table<Route>,
    pub rules: Vec<Rule>,
    pub neigh: Table<Neigh>,
    /// Forwarding entries of bridges and VXLAN devices (same file as `neigh`).
    pub fdb: Table<FdbEntry>,
    pub sockets: Table<Socket>,
    /// Per-netns sysctls with the line of each key.
    pub sysctls: BTreeMap<String, (String, Evidence)>,
    pub resolv: Option<Resolv>,
}

impl Netns {
    pub fn link(&self, ifindex: u32) -> Option<(usize, &Link)> {
        self.links.iter().find(|(_, l)| l.ifindex == ifindex)
    }

    pub fn link_named(&self, name: &str) -> Option<(usize, &Link)> {
        self.links.iter().find(|(_, l)| l.name == name)
    }

    /// Evidence for link `i` with an `ip link`-like summary.
    pub fn link_evidence(&self, i: usize) -> Evidence {
        let excerpt = self
            .links
            .items
            .get(i)
            .map(link_summary)
            .unwrap_or_default();
        self.links.evidence(i, excerpt)
    }

    /// Evidence for address `i`.
    pub fn addr_evidence(&self, i: usize) -> Evidence {
        let excerpt = self
            .addrs
            .items
            .get(i)
            .map(|a| {
                let dev = self
                    .link(a.ifindex)
                    .map(|(_, l)| l.name.clone())
                    .unwrap_or_else(|| format!("if{}", a.ifindex));
                format!(
                    "{} {}/{} dev {dev} scope {}",
                    a.family, a.address, a.prefix_len, a.scope
                )
            })
            .unwrap_or_default();
        self.addrs.evidence(i, excerpt)
    }

    /// Evidence for route `i`.
    pub fn route_evidence(&self, i: usize) -> Evidence {
        let excerpt = self
            .routes
            .items
            .get(i)
            .map(|r| route_summary(r, self))
            .unwrap_or_default();
        self.routes.evidence(i, excerpt)
    }

    /// Global (non loopback, non link-local) addresses of the netns with their index.
    pub fn global_ips(&self) -> impl Iterator<Item = (usize, IpAddr)> + '_ {
        self.addrs.iter().filter_map(|(i, a)| {
            let ip = parse_ip(&a.address)?;
            (!super::net::is_local_only(ip) && a.scope != "host").then_some((i, ip))
        })
    }

    /// Prefixes of the netns' addresses (directly connected subnets).
    pub fn connected(&self) -> Vec<Cidr> {
        self.addrs
            .items
            .iter()
            .filter_map(|a| cidr(parse_ip(&a.address)?, a.prefix_len))
            .collect()
    }

    pub fn sysctl(&self, key: &str) -> Option<(&str, Evidence)> {
        self.sysctls
            .get(key)
            .map(|(v, ev)| (v.as_str(), ev.clone()))
    }

    /// Whether the link is up (oper state up or unknown with the UP flag, like lo).
    pub fn link_is_up(l: &Link) -> bool {
        match l.state {
            LinkState::Up => true,
            LinkState::Unknown => l.flags.iter().any(|f| f == "UP"),
            _ => false,
        }
    }
}

/// `name ifindex N kind K mtu M state S master X link L nsid I`.
pub fn link_summary(l: &Link) -> String {
    let mut s = format!("{} ifindex {}", l.name, l.ifindex);
    if let Some(k) = &l.kind {
        s.push_str(&format!(" {k}"));
    }
    s.push_str(&format!(" mtu {} state {}", l.mtu, state_name(l.state)));
    if let Some(m) = l.master {
        s.push_str(&format!(" master {m}"));
    }
    if let Some(p) = l.link {
        s.push_str(&format!(" link {p}"));
    }
    if let Some(n) = l.link_netnsid {
        s.push_str(&format!(" link-netnsid {n}"));
    }
    if let Some(bp) = &l.bridge_port {
        s.push_str(&format!(
            " hairpin {}",
            if bp.hairpin { "on" } else { "off" }
        ));
    }
    if l.promiscuity > 0 {
        s.push_str(&format!(" promiscuity {}", l.promiscuity));
    }
    s
}

pub fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Up => "UP",
        LinkState::Down => "DOWN",
        LinkState::Unknown => "UNKNOWN",
        LinkState::Dormant => "DORMANT",
        LinkState::Lowerlayerdown => "LOWERLAYERDOWN",
        LinkState::Notpresent => "NOTPRESENT",
        LinkState::Testing => "TESTING",
    }
}

/// `dst via gw dev X table T proto P scope S`.
pub fn route_summary(r: &Route, ns: &Netns) -> String {
    let mut s = r.dst.clone();
    if let Some(g) = &r.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(o) = r.oif {
        let dev = ns
            .link(o)
            .map(|(_, l)| l.name.clone())
            .unwrap_or_else(|| format!("if{o}"));
        s.push_str(&format!(" dev {dev}"));
    }
    if r.table != 254 {
        s.push_str(&format!(" table {}", r.table));
    }
    if r.kind != "unicast" {
        s = format!("{} {s}", r.kind);
    }
    if let Some(m) = r.mtu {
        s.push_str(&format!(" mtu {m}"));
    }
    s.push_str(&format!(" proto {} scope {}", r.protocol, r.scope));
    s
}

/// A pod: a non-node netns with its identity and interfaces.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pod {
    pub netns: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
    pub hostname: Option<String>,
    /// Global addresses of the pod.
    pub ips: Vec<IpAddr>,
    /// The pod's veth interfaces (ifindex in the pod netns) and their host peers.
    pub interfaces: Vec<PodInterface>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodInterface {
    pub ifindex: u32,
    pub name: String,
    /// The host side (node netns ifindex), when resolved.
    pub host_ifindex: Option<u32>,
    pub host_name: Option<String>,
}

impl Pod {
    /// `ns/name`, else the hostname, else the netns id.
    pub fn display_name(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            (None, Some(n)) => n.clone(),
            _ => self
                .hostname
                .clone()
                .unwrap_or_else(|| format!("netns {}", self.netns)),
        }
    }

    /// The subject string of findings about this pod: `pod default/web-1`.
    pub fn subject(&self) -> String {
        format!("pod {}", self.display_name())
    }
}
