//! Hand-built node models for the checks' unit tests: a node netns with an uplink and
//! a `cni0` bridge, pods joined by veths, kube-proxy services — healthy by default,
//! so each test breaks exactly one thing.

use super::{Context, Evidence, Finding, Selection, Thresholds};
use crate::graph::{self, NodeGraph};
use crate::model::netns::Table;
use crate::model::services::{
    Endpoint, Frontend, FrontendKind, Protocol, Proxier, Service, ServiceName,
};
use crate::model::{Model, Netns, Resolv};
use netsnap_schema::model::{
    Addr, BridgePort, Link, LinkState, PodIdentity, PodIdentitySource, Route, Socket, SocketProto,
};
use std::net::IpAddr;

pub const ROOT: &str = "root";
pub const BRIDGE_IF: u32 = 3;

/// (id, subject) of each finding, for compact assertions.
pub fn ids(f: &[Finding]) -> Vec<(&str, &str)> {
    f.iter()
        .map(|f| (f.id.as_str(), f.subject.as_str()))
        .collect()
}

pub fn ev(path: &str) -> Evidence {
    Evidence::new(path, Some(1), "test")
}

pub fn link(ifindex: u32, name: &str, kind: Option<&str>) -> Link {
    Link {
        kind: kind.map(String::from),
        ..Link::new(ifindex, name, 1500)
            .with_state(LinkState::Up)
            .with_flags(&["UP", "LOWER_UP"])
    }
}

pub fn addr(ifindex: u32, ip: &str, len: u8) -> Addr {
    let a = Addr::new(ifindex, ip, len);
    if ip.starts_with("127.") {
        a.with_scope("host")
    } else {
        a
    }
}

pub fn route(dst: &str, gw: Option<&str>, oif: u32) -> Route {
    let r = Route {
        family: "inet".into(),
        gateway: gw.map(String::from),
        ..Route::new(dst).dev(oif).with_protocol("boot")
    };
    if gw.is_some() {
        r
    } else {
        r.with_scope("link")
    }
}

fn sysctls(
    pairs: &[(&str, &str)],
    path: &str,
) -> std::collections::BTreeMap<String, (String, Evidence)> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                (
                    v.to_string(),
                    Evidence::new(path, None, format!("{k} = {v}")),
                ),
            )
        })
        .collect()
}

pub struct Kit {
    pub model: Model,
    pub thresholds: Thresholds,
    next_if: u32,
    next_nsid: i32,
}

impl Kit {
    /// A healthy node: lo, eth0 10.0.0.10/24 (default via 10.0.0.1), cni0 10.244.1.1/24.
    pub fn node() -> Kit {
        let mut root = Netns {
            id: ROOT.into(),
            is_root: true,
            inode: 4026531840,
            ..Netns::default()
        };
        let mut lo = link(1, "lo", None);
        lo.state = LinkState::Unknown;
        let mut cni0 = link(BRIDGE_IF, "cni0", Some("bridge"));
        cni0.mtu = 1500;
        root.links = Table::new(
            "netns/root/links.json",
            vec![lo, link(2, "eth0", None), cni0],
        );
        root.addrs = Table::new(
            "netns/root/addrs.json",
            vec![
                addr(1, "127.0.0.1", 8),
                addr(2, "10.0.0.10", 24),
                addr(BRIDGE_IF, "10.244.1.1", 24),
            ],
        );
        root.routes = Table::new(
            "netns/root/routes.json",
            vec![
                route("default", Some("10.0.0.1"), 2),
                route("10.0.0.0/24", None, 2),
                route("10.244.1.0/24", None, BRIDGE_IF),
            ],
        );
        root.sockets = Table::new("netns/root/sockets.json", Vec::new());
        root.neigh = Table::new("netns/root/neigh.json", Vec::new());
        root.sysctls = sysctls(
            &[
                ("net.ipv4.ip_forward", "1"),
                ("net.bridge.bridge-nf-call-iptables", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.neigh.default.gc_thresh3", "1024"),
                ("net.ipv4.ip_local_port_range", "32768\t60999"),
            ],
            "netns/root/sysctl.json",
        );
        let mut model = Model {
            hostname: "node-1".into(),
            ..Model::default()
        };
        model.netns.insert(ROOT.into(), root);
        Kit {
            model,
            thresholds: Thresholds::default(),
            next_if: 10,
            next_nsid: 0,
        }
    }

    pub fn root(&mut self) -> &mut Netns {
        self.ns(ROOT)
    }

    pub fn ns(&mut self, id: &str) -> &mut Netns {
        self.model.netns.get_mut(id).expect("netns in test model")
    }

    /// A pod `default/<name>` in netns `pod-<name>` with eth0 `ip`/24, a host veth
    /// enslaved to cni0 (hairpin on), a default route via 10.244.1.1, a TCP
    /// listener on 8080, a UDP socket on 53 and a ClusterFirst resolv.conf.
    pub fn pod(&mut self, name: &str, ip: &str) -> &mut Kit {
        let id = format!("pod-{name}");
        let host_if = self.next_if;
        self.next_if += 1;
        let nsid = self.next_nsid;
        self.next_nsid += 1;
        let mut veth = link(host_if, &format!("veth{name}"), Some("veth"));
        veth.master = Some(BRIDGE_IF);
        veth.link = Some(2);
        veth.link_netnsid = Some(nsid);
        veth.bridge_port = Some(BridgePort {
            hairpin: true,
            state: Some(3),
            learning: Some(true),
        });
        self.root().links.items.push(veth);
        self.root().links.lines.push(None);
        let mut eth0 = link(2, "eth0", Some("veth"));
        eth0.link = Some(host_if);
        eth0.link_netnsid = Some(0);
        let mut lo = link(1, "lo", None);
        lo.state = LinkState::Unknown;
        let path = |f: &str| format!("netns/{id}/{f}");
        let ns = Netns {
            id: id.clone(),
            is_root: false,
            inode: 4026532000 + nsid as u64,
            nsid: Some(nsid),
            hostname: Some(name.into()),
            pod: Some(PodIdentity {
                namespace: Some("default".into()),
                name: Some(name.into()),
                uid: None,
                source: PodIdentitySource::CgroupAndPodLogs,
                tried: Vec::new(),
            }),
            links: Table::new(path("links.json"), vec![lo, eth0]),
            addrs: Table::new(
                path("addrs.json"),
                vec![addr(1, "127.0.0.1", 8), addr(2, ip, 24)],
            ),
            routes: Table::new(
                path("routes.json"),
                vec![
                    route("default", Some("10.244.1.1"), 2),
                    route("10.244.1.0/24", None, 2),
                ],
            ),
            rules: Vec::new(),
            neigh: Table::new(path("neigh.json"), Vec::new()),
            sockets: Table::new(
                path("sockets.json"),
                vec![
                    Socket {
                        proto: SocketProto::Tcp,
                        local: "0.0.0.0".into(),
                        port: 8080,
                        inode: 1,
                        uid: 0,
                    },
                    Socket {
                        proto: SocketProto::Udp,
                        local: "0.0.0.0".into(),
                        port: 53,
                        inode: 2,
                        uid: 0,
                    },
                ],
            ),
            sysctls: Default::default(),
            resolv: Some(resolv(
                &path("resolv.conf"),
                &["10.96.0.10"],
                &[
                    "default.svc.cluster.local",
                    "svc.cluster.local",
                    "cluster.local",
                ],
            )),
        };
        self.model.netns.insert(id, ns);
        self
    }

    /// A kube-proxy iptables-mode ClusterIP service with endpoints (equal shares).
    pub fn service(
        &mut self,
        name: &str,
        vip: &str,
        port: u16,
        protocol: Protocol,
        endpoints: &[(&str, u16)],
    ) -> &mut Kit {
        let n = ServiceName::parse(name).expect("service name");
        let mut s = Service::new(
            format!("KUBE-SVC-{}", name.len()),
            protocol,
            Proxier::IptablesNft,
        );
        s.name = Some(n);
        s.frontends.push(Frontend {
            kind: FrontendKind::ClusterIp,
            ip: Some(vip.parse().expect("vip")),
            port,
            evidence: ev("netfilter/iptables-nft-save.txt"),
        });
        let k = endpoints.len();
        for (ip, p) in endpoints {
            s.endpoints.push(Endpoint {
                ip: ip.parse().expect("endpoint ip"),
                port: *p,
                chain: None,
                share: Some(1.0 / k as f64),
                weight: None,
                active_conns: None,
                inactive_conns: None,
                evidence: ev("netfilter/iptables-nft-save.txt"),
            });
        }
        if endpoints.is_empty() {
            s.no_endpoints.push(ev("netfilter/iptables-nft-save.txt"));
        }
        self.model.services.push(s);
        self
    }

    pub fn service_mut(&mut self, name: &str) -> &mut Service {
        self.model
            .services
            .iter_mut()
            .find(|s| s.name.as_ref().is_some_and(|n| n.to_string() == name))
            .expect("service in test model")
    }

    /// The cluster DNS service with one endpoint in pod `dns` (10.244.1.53).
    pub fn with_dns(&mut self) -> &mut Kit {
        self.pod("coredns", "10.244.1.53");
        self.service(
            "kube-system/kube-dns:dns",
            "10.96.0.10",
            53,
            Protocol::Udp,
            &[("10.244.1.53", 53)],
        )
    }

    /// Model with derived topology, and its graph.
    pub fn build(&mut self) -> (Model, NodeGraph) {
        let mut m = self.model.clone();
        crate::model::build::derive_topology(&mut m);
        let g = graph::build(&m);
        (m, g)
    }

    /// Findings of the checks selected by `only` (ids or families).
    pub fn run(&mut self, only: &[&str]) -> Vec<Finding> {
        let (m, g) = self.build();
        let ctx = Context {
            model: &m,
            graph: &g,
            thresholds: &self.thresholds,
        };
        super::run(
            &ctx,
            &Selection {
                only: only.iter().map(|s| s.to_string()).collect(),
                skip: Vec::new(),
            },
        )
    }
}

pub fn resolv(path: &str, servers: &[&str], search: &[&str]) -> Resolv {
    Resolv {
        path: path.into(),
        nameservers: servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.to_string(),
                    Evidence::new(path, Some(i + 2), format!("nameserver {s}")),
                )
            })
            .collect(),
        search: search.iter().map(|s| s.to_string()).collect(),
        search_evidence: Some(Evidence::new(
            path,
            Some(1),
            format!("search {}", search.join(" ")),
        )),
        options: Vec::new(),
    }
}

/// (id, subject) of every finding at warning or above.
pub fn alarms(f: &[Finding]) -> Vec<(String, String)> {
    f.iter()
        .filter(|f| f.severity >= super::Severity::Warning)
        .map(|f| (f.id.to_string(), f.subject.clone()))
        .collect()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// A healthy node with three web pods behind one service and cluster DNS.
pub fn healthy() -> Kit {
    let mut k = Kit::node();
    k.pod("web-1", "10.244.1.11")
        .pod("web-2", "10.244.1.12")
        .pod("client", "10.244.1.20");
    k.service(
        "default/web:http",
        "10.96.1.1",
        80,
        Protocol::Tcp,
        &[("10.244.1.11", 8080), ("10.244.1.12", 8080)],
    );
    k.with_dns();
    k
}
