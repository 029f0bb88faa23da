//! What the lab built, as plain data (also written to `<lab dir>/lab.json`).

use super::kube_proxy;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

/// How kube-proxy programs the service VIPs on the lab node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProxyMode {
    /// iptables mode, loaded with `iptables-nft-restore` (the default backend).
    Iptables,
    /// nftables mode: `table ip kube-proxy`.
    Nftables,
    /// IPVS mode: VIPs on `kube-ipvs0`, kube-proxy's ipsets and set-matching iptables
    /// rules; the kernel's virtual servers are rendered text (see [`super::ipvs`]).
    Ipvs,
}

impl ProxyMode {
    /// How the analyzer's datapath summary names what programs the services (the lab
    /// loads iptables rules with the nft backend).
    pub fn datapath_name(self) -> &'static str {
        match self {
            ProxyMode::Iptables => "kube-proxy iptables (nft backend)",
            ProxyMode::Nftables => "kube-proxy nftables",
            ProxyMode::Ipvs => "kube-proxy ipvs",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// `tcp` / `udp`, as kube-proxy hashes and as iptables and nft spell it.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A pod: its own netns, a veth to the node bridge, a long-lived process with
/// its own UTS and mount namespace, in a kubepods cgroup.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// Kubernetes UID (`xxxxxxxx-xxxx-4xxx-…`).
    pub uid: String,
    pub netns_name: String,
    pub netns_path: PathBuf,
    pub ip: Ipv4Addr,
    /// The pod's IPv6 address (dual-stack labs).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// Host side of the veth, in the node netns (`veth` + 8 hex).
    pub host_veth: String,
    /// The long-lived process (the pod's "pause"); 0 once the pod was deleted.
    pub pid: u32,
    pub hostname: String,
    /// Current content of the pod's /etc/resolv.conf.
    pub resolv_conf: String,
    /// TCP ports something listens on in the pod.
    pub listen_ports: Vec<u16>,
    /// UDP ports something is bound to in the pod.
    pub udp_ports: Vec<u16>,
    /// Cgroup path of the pod's processes as `/proc/<pid>/cgroup` shows it.
    pub cgroup_path: String,
    /// Container name (`web` / `coredns`) and its 64-hex ID (in the cgroup path).
    pub container: String,
    pub container_id: String,
    /// `<host_root>/var/log/pods/<namespace>_<name>_<uid>`.
    pub log_dir: PathBuf,
    /// Set by faults that delete the pod (its netns and processes are gone).
    pub deleted: bool,
}

/// One service port, the unit kube-proxy programs (`ns/name:port`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub target_port: u16,
    /// Endpoints as programmed in the rules (a fault may leave stale ones).
    pub endpoints: Vec<SocketAddrV4>,
    /// `KUBE-SVC-<16>` (iptables mode).
    pub svc_chain: String,
    /// `KUBE-SEP-<16>`, one per endpoint, same order.
    pub sep_chains: Vec<String>,
    /// `service-<8>-ns/name/proto/port` (nftables mode).
    pub nft_service_chain: String,
    /// `endpoint-<8>-ns/name/proto/port__ip/port`, one per endpoint.
    pub nft_endpoint_chains: Vec<String>,
    /// The service's IPv6 side (dual-stack labs): its own ClusterIP and endpoints,
    /// programmed by the IPv6 proxier with the same service chain names.
    #[serde(default)]
    pub v6: Option<ServiceV6>,
}

/// The IPv6 ClusterIP of a dual-stack service port and its IPv6 endpoints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceV6 {
    pub cluster_ip: Ipv6Addr,
    /// As programmed in the ip6tables / `table ip6 kube-proxy` rules.
    pub endpoints: Vec<SocketAddrV6>,
    /// `KUBE-SEP-<16>` of each endpoint (hash of `[ip]:port`).
    pub sep_chains: Vec<String>,
    /// `endpoint-<8>-…__<ip with dots>/port`, one per endpoint.
    pub nft_endpoint_chains: Vec<String>,
}

impl Service {
    pub(crate) fn new(
        namespace: &str,
        name: &str,
        port_name: &str,
        protocol: Protocol,
        vip: SocketAddrV4,
        target_port: u16,
        endpoints: Vec<SocketAddrV4>,
    ) -> Service {
        let mut s = Service {
            namespace: namespace.into(),
            name: name.into(),
            port_name: port_name.into(),
            protocol,
            cluster_ip: *vip.ip(),
            port: vip.port(),
            target_port,
            endpoints,
            svc_chain: String::new(),
            sep_chains: Vec::new(),
            nft_service_chain: String::new(),
            nft_endpoint_chains: Vec::new(),
            v6: None,
        };
        s.refresh_chains();
        s
    }

    /// `ns/name:port`, kube-proxy's ServicePortName string (used in comments).
    pub fn port_name_string(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{}:{}", self.namespace, self.name, self.port_name)
        }
    }

    /// The VIP as a socket address.
    pub fn vip(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.cluster_ip, self.port)
    }

    /// Recomputes the chain names after the endpoints changed.
    pub(crate) fn refresh_chains(&mut self) {
        let spn = self.port_name_string();
        let proto = self.protocol.lower();
        self.svc_chain = kube_proxy::svc_chain(&spn, proto);
        self.sep_chains = self
            .endpoints
            .iter()
            .map(|e| kube_proxy::sep_chain(&spn, proto, &e.to_string()))
            .collect();
        self.nft_service_chain = kube_proxy::nft_service_chain(self);
        self.nft_endpoint_chains = self
            .endpoints
            .iter()
            .map(|e| kube_proxy::nft_endpoint_chain(self, SocketAddr::V4(*e)))
            .collect();
        if let Some(mut v6) = self.v6.take() {
            v6.sep_chains = v6
                .endpoints
                .iter()
                .map(|e| kube_proxy::sep_chain(&spn, proto, &e.to_string()))
                .collect();
            v6.nft_endpoint_chains = v6
                .endpoints
                .iter()
                .map(|e| kube_proxy::nft_endpoint_chain(self, SocketAddr::V6(*e)))
                .collect();
            self.v6 = Some(v6);
        }
    }

    /// The IPv6 VIP, when the service has one.
    pub fn vip6(&self) -> Option<SocketAddrV6> {
        let v6 = self.v6.as_ref()?;
        Some(SocketAddrV6::new(v6.cluster_ip, self.port, 0, 0))
    }
}

/// What a fault injector did, and the finding the analyzer should raise for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InjectedFault {
    /// Injector name without the `fault_` prefix, e.g. `hairpin_off`.
    pub kind: String,
    /// Finding ID from the design catalog, e.g. `LNK005`.
    pub finding: String,
    /// What it is about, e.g. `pod default/web-3` or `service default/svc-1:http`.
    pub subject: String,
}
