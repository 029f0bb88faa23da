//! Node models for the checks' unit tests, built from the scale crate's fixture
//! description (the one every committed fixture bundle comes from) through the real
//! write → parse → model path: a node netns with an uplink and a `cni0` bridge, pods
//! joined by veths, kube-proxy services — healthy by default, so each test breaks
//! exactly one thing, with a fixture knob where one exists ([`super::faults`]).

use super::{Context, Evidence, Finding, Selection, Thresholds};
use crate::graph::{self, NodeGraph};
use crate::model::services::{Protocol, Service};
use crate::model::{Model, Netns, Resolv};
use crate::trace::firewall::Firewall;
use crate::trace::reach::Reachability;
use netsnap_scale::fixture;
use netsnap_schema::model::{Addr, Link, LinkState, Route};
use netsnap_schema::{Bundle, ReadLimits};
use std::net::IpAddr;

pub const ROOT: &str = "root";

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

/// A node described by the scale crate's [`fixture::Node`] (the same description every
/// committed fixture bundle comes from) and modelled through the real path: written as
/// a bundle, parsed and built. Describe first (`pod`, `service`, `describe`), then
/// poke the model (`root`, `ns`, `model`) to break exactly one thing.
pub struct Kit {
    node: fixture::Node,
    model: Option<Model>,
    /// The node's rulesets, for the trace engine (built with the model).
    firewall: Option<Firewall>,
    pub thresholds: Thresholds,
}

impl Kit {
    /// A healthy node with no pods: lo, eth0 10.0.0.10/24 (default via 10.0.0.1),
    /// cni0 10.244.1.1/24, flannel.1, kube-proxy's iptables rules.
    pub fn node() -> Kit {
        Kit {
            node: fixture::Node::new("node-1"),
            model: None,
            firewall: None,
            thresholds: Thresholds::default(),
        }
    }

    /// Changes the description with any of the fixture's knobs.
    pub fn describe(&mut self, change: impl FnOnce(&mut fixture::Node)) -> &mut Kit {
        assert!(
            self.model.is_none(),
            "describe the node before poking its model"
        );
        change(&mut self.node);
        self
    }

    /// Changes pod `<name>`'s description (its fault knobs).
    pub fn describe_pod(&mut self, name: &str, change: impl FnOnce(&mut fixture::Pod)) -> &mut Kit {
        let i = self.pod_index(name);
        self.describe(|n| change(&mut n.pods[i]))
    }

    /// Position of pod `<name>` in the description.
    pub fn pod_index(&self, name: &str) -> usize {
        self.node
            .pods
            .iter()
            .position(|p| p.name == name)
            .expect("pod in test description")
    }

    /// The model, built from the description on first use.
    pub fn model(&mut self) -> &mut Model {
        if self.model.is_none() {
            let (model, firewall) = model_of(&self.node);
            self.model = Some(model);
            self.firewall = Some(firewall);
        }
        self.model.as_mut().expect("built above")
    }

    pub fn root(&mut self) -> &mut Netns {
        self.ns(ROOT)
    }

    pub fn ns(&mut self, id: &str) -> &mut Netns {
        self.model().netns.get_mut(id).expect("netns in test model")
    }

    /// The netns of pod `default/<name>`.
    pub fn pod_ns(&mut self, name: &str) -> &mut Netns {
        let id = self.pod_netns_id(name);
        self.ns(&id)
    }

    /// The netns id of pod `<name>` (the fixture names a pod's netns by its inode).
    pub fn pod_netns_id(&self, name: &str) -> String {
        self.node
            .pods
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.id())
            .expect("pod in test description")
    }

    /// The host-side veth of pod `<name>`.
    pub fn host_veth(&self, name: &str) -> String {
        self.node
            .pods
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.veth())
            .expect("pod in test description")
    }

    /// A pod `default/<name>` with eth0 `ip`/24, a host veth enslaved to cni0
    /// (hairpin on), a default route via 10.244.1.1, a TCP listener on 8080, a UDP
    /// socket on 53 and a ClusterFirst resolv.conf.
    pub fn pod(&mut self, name: &str, ip: &str) -> &mut Kit {
        let mut pod = fixture::Pod::new("default", name, ip);
        pod.udp = vec![53];
        self.describe(|n| n.pods.push(pod))
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
        let proto = match protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        let svc = fixture::Svc::new(name, proto, vip, port, endpoints);
        self.describe(|n| n.services.push(svc))
    }

    pub fn service_mut(&mut self, name: &str) -> &mut Service {
        self.model()
            .services
            .iter_mut()
            .find(|s| s.name.as_ref().is_some_and(|n| n.to_string() == name))
            .expect("service in test model")
    }

    /// The cluster DNS service with one endpoint in pod `coredns` (10.244.1.53).
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
        let mut m = self.model().clone();
        crate::model::build::derive_topology(&mut m);
        let g = graph::build(&m);
        (m, g)
    }

    /// The trace engine's pods × service ports on the (poked) model.
    pub fn reach(&mut self, m: &Model, g: &NodeGraph) -> Reachability {
        self.model();
        let firewall = self.firewall.as_ref().expect("built with the model");
        crate::trace::reach::compute(m, g, firewall)
    }

    /// Findings of the checks selected by `only` (ids or families).
    pub fn run(&mut self, only: &[&str]) -> Vec<Finding> {
        let (m, g) = self.build();
        let reach = self.reach(&m, &g);
        let ctx = Context::new(&m, &g, &self.thresholds).with_reach(Some(&reach));
        super::run(
            &ctx,
            &Selection {
                only: only.iter().map(|s| s.to_string()).collect(),
                ..Selection::default()
            },
        )
    }
}

/// Writes `node` as a bundle and models it as `netsnap analyze` would.
fn model_of(node: &fixture::Node) -> (Model, Firewall) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("bundle");
    node.write(&dir).expect("fixture bundle writes");
    let bundle = Bundle::open(&dir, &ReadLimits::default()).expect("fixture bundle opens");
    let mut parsed = crate::sources::parse_all(&bundle);
    let model = crate::model::build(&mut parsed);
    (model, Firewall::take(&mut parsed))
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

/// The CNI configuration of the healthy node: flannel's bridge on cni0, MTU 1450,
/// hairpin on, host-local in 10.244.1.0/24.
pub const CNI_BRIDGE: &str = r#"{
  "cniVersion": "0.3.1",
  "name": "cbr0",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "mtu": 1450,
      "hairpinMode": true,
      "isGateway": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}"#;

/// Replaces the node's CNI configuration directory with `files` (name, text).
pub fn set_cni(k: &mut Kit, files: &[(&str, &str)]) {
    let parsed = files
        .iter()
        .map(|(name, text)| {
            crate::parse::cni::parse_cni(&format!("host/cni/{name}"), name, text).model
        })
        .collect();
    k.model().cni = crate::parse::cni::CniConfigs::new(parsed);
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
