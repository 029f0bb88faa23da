//! The generated node as plain data: services with their endpoints, pods with their
//! netns, veths, addresses and listeners, and the planted faults. Every renderer
//! reads this plan; nothing else draws random numbers for the node's shape.

use crate::rng::Rng;
use crate::spec::Spec;
use crate::ScaleError;
use ipnet::Ipv4Net;
use netsnap_kube_shapes::{self as shapes, Protocol, ServicePort};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// The node's uplink address (eth0) and its gateway.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 49, 2);
pub const NODE_GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 49, 1);
/// The node's upstream resolver (host/resolv.conf).
pub const NODE_RESOLVER: Ipv4Addr = Ipv4Addr::new(192, 168, 49, 1);
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
pub const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// What the pod with the planted DNS fault resolves through (a typo of the cluster DNS).
pub const WRONG_DNS: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 11);
pub const BRIDGE: &str = "cni0";
pub const BRIDGE_IFINDEX: u32 = 3;
pub const UPLINK_IFINDEX: u32 = 2;
/// First host veth ifindex (after lo, eth0, cni0).
pub const FIRST_VETH_IFINDEX: u32 = 4;
/// Pod-side ifindex of eth0.
pub const POD_ETH0_IFINDEX: u32 = 2;
pub const MTU: u32 = 1500;
/// Inode of the init netns (`PROC_NET_INIT_INO`).
pub const ROOT_INODE: u64 = 4_026_531_840;

const NAMESPACES: [&str; 12] = [
    "default",
    "payments",
    "checkout",
    "catalog",
    "search",
    "auth",
    "media",
    "ledger",
    "shipping",
    "reviews",
    "ads",
    "monitoring",
];
const APPS: [&str; 16] = [
    "api", "web", "cart", "orders", "users", "billing", "images", "index", "mailer", "queue",
    "session", "pricing", "stock", "geo", "notify", "reports",
];
/// Characters of the random suffixes of Deployment pod names.
const POD_SUFFIX: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// One service port, the unit kube-proxy programs.
#[derive(Clone, Debug)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub protocol: Protocol,
    pub vip: SocketAddrV4,
    pub target_port: u16,
    pub endpoints: Vec<SocketAddrV4>,
    /// `KUBE-SVC-<16>`.
    pub svc_chain: String,
    /// `KUBE-SEP-<16>`, one per endpoint, same order.
    pub sep_chains: Vec<String>,
}

impl Service {
    fn new(
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
            vip,
            target_port,
            endpoints,
            svc_chain: String::new(),
            sep_chains: Vec::new(),
        };
        s.refresh_chains();
        s
    }

    fn refresh_chains(&mut self) {
        let p = ServicePort::new(
            &self.namespace,
            &self.name,
            &self.port_name,
            self.protocol,
            self.vip.into(),
            Cow::Owned(self.endpoints_any()),
        );
        let (svc, seps) = (p.svc_chain.into_owned(), p.sep_chains.into_owned());
        self.svc_chain = svc;
        self.sep_chains = seps;
    }

    /// `ns/name:port`.
    pub fn port_name_string(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port_name)
    }

    /// The subject the analyzer uses for findings about this service.
    pub fn subject(&self) -> String {
        format!("service {}", self.port_name_string())
    }

    /// kube-shapes' view, borrowing the chain names computed here.
    pub fn port(&self) -> ServicePort<'_> {
        ServicePort {
            namespace: &self.namespace,
            name: &self.name,
            port_name: &self.port_name,
            protocol: self.protocol,
            cluster_ip: IpAddr::V4(*self.vip.ip()),
            port: self.vip.port(),
            endpoints: Cow::Owned(self.endpoints_any()),
            svc_chain: Cow::Borrowed(&self.svc_chain),
            sep_chains: Cow::Borrowed(&self.sep_chains),
        }
    }

    pub fn nft_service_chain(&self) -> String {
        shapes::nft_service_chain(
            &self.namespace,
            &self.name,
            self.protocol.lower(),
            &self.port_name,
        )
    }

    pub fn nft_endpoint_chain(&self, ep: &SocketAddrV4) -> String {
        shapes::nft_endpoint_chain(
            &self.namespace,
            &self.name,
            self.protocol.lower(),
            &self.port_name,
            SocketAddr::V4(*ep),
        )
    }

    /// The endpoints as kube-shapes takes them (either family; these are IPv4).
    fn endpoints_any(&self) -> Vec<SocketAddr> {
        self.endpoints.iter().copied().map(SocketAddr::V4).collect()
    }
}

/// A pod on the node: its netns, veth pair and listeners.
#[derive(Clone, Debug)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Netns id in the bundle: `cni-<uuid>`, as containerd names /run/netns entries.
    pub netns_id: String,
    pub inode: u64,
    /// nsid of the pod netns as the node netns sees it.
    pub nsid: i32,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub host_veth: String,
    pub host_mac: [u8; 6],
    pub host_ifindex: u32,
    pub tcp: BTreeSet<u16>,
    pub udp: BTreeSet<u16>,
    pub pids: Vec<u32>,
    /// dnsPolicy Default (CoreDNS itself): gets the node's resolv.conf.
    pub dns_default: bool,
    /// Planted DNS001: resolves through `WRONG_DNS`.
    pub wrong_dns: bool,
}

impl Pod {
    pub fn subject(&self) -> String {
        format!("pod {}/{}", self.namespace, self.name)
    }
}

/// A host veth left behind by a deleted pod (planted LNK001).
#[derive(Clone, Debug)]
pub struct DanglingVeth {
    pub name: String,
    pub mac: [u8; 6],
    pub ifindex: u32,
    /// The nsid the deleted pod's netns had: no netns has it now.
    pub nsid: i32,
}

/// One planted fault and the finding the analyzer must raise for it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PlantedFault {
    /// What was planted, e.g. `service_without_endpoints`.
    pub kind: String,
    /// Finding id from the design catalog, e.g. `SVC001`.
    pub finding: String,
    /// The finding's subject as the analyzer writes it.
    pub subject: String,
    pub detail: String,
    /// Bundle file that shows it.
    pub evidence: String,
}

/// The node to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    pub spec: Spec,
    pub pod_cidr: Ipv4Net,
    /// Node 0's pod CIDR (the same as `pod_cidr` but on the other nodes of a cluster):
    /// the services' local endpoints and the planted stale endpoint are drawn in it.
    pub first_cidr: Ipv4Net,
    pub services: Vec<Service>,
    pub pods: Vec<Pod>,
    pub dangling: Option<DanglingVeth>,
    /// Planted CT005: kube-dns flows DNATed to this former endpoint.
    pub stale_dns_backend: Option<Ipv4Addr>,
    pub faults: Vec<PlantedFault>,
    pub(crate) rng: Rng,
}

/// Addresses of pods on other nodes. A lone node: 10.244.<block>.<2..=254>, above
/// this node's block. A cluster node ([`Spec::node_index`]): the addresses the pods of
/// the other nodes of the same spec have (node `g`'s pods are at `2 + k` of its block).
struct RemotePool {
    first_block: u32,
    size: u64,
    /// In a cluster: (blocks per node, pods per node).
    cluster: Option<(u32, u32)>,
}

impl RemotePool {
    fn new(pod_cidr: Ipv4Net, spec: &Spec) -> RemotePool {
        let node_size = addresses(&pod_cidr);
        let first_block = node_size.div_ceil(256);
        match spec.node_index {
            None => RemotePool {
                first_block,
                size: u64::from(256 - first_block) * 253,
                cluster: None,
            },
            Some(_) => {
                let pods = spec.pods as u32;
                RemotePool {
                    first_block,
                    size: u64::from(256 / first_block - 1) * u64::from(pods),
                    cluster: Some((first_block, pods)),
                }
            }
        }
    }

    fn ip(&self, r: u64) -> Ipv4Addr {
        let base = u32::from(Ipv4Addr::new(10, 244, 0, 0));
        if let Some((blocks, pods)) = self.cluster {
            let node = 1 + (r / u64::from(pods)) as u32;
            let host = 2 + (r % u64::from(pods)) as u32;
            return Ipv4Addr::from(base + node * blocks * 256 + host);
        }
        let block = self.first_block + (r / 253) as u32;
        let host = 2 + (r % 253) as u32;
        Ipv4Addr::from(base + block * 256 + host)
    }

    fn draw(&self, rng: &mut Rng) -> Ipv4Addr {
        self.ip(rng.below(self.size))
    }
}

/// How many addresses `net` spans.
fn addresses(net: &Ipv4Net) -> u32 {
    u32::from(net.broadcast()) - u32::from(net.network()) + 1
}

/// (port name, protocol, port, target port) of the `i`th ordinary service.
fn port_kind(i: usize) -> (&'static str, Protocol, u16, u16) {
    if i % 13 == 5 {
        ("syslog", Protocol::Udp, 514, 5140)
    } else if i % 7 == 3 {
        ("grpc", Protocol::Tcp, 9090, 9090)
    } else if i % 11 == 4 {
        ("metrics", Protocol::Tcp, 9100, 9100)
    } else if i % 5 == 2 {
        ("https", Protocol::Tcp, 443, 8443)
    } else {
        ("http", Protocol::Tcp, 80, 8080)
    }
}

impl Plan {
    pub fn new(spec: &Spec) -> Result<Plan, ScaleError> {
        spec.validate()?;
        let root = Rng::new(spec.seed);
        let mut rng = root.fork("plan");
        // The smallest block ≥ /24 that leaves room for the pods, the gateway and a
        // few unused addresses (the stale endpoint is one of them).
        let mut first_cidr = Ipv4Net::new_assert(Ipv4Addr::new(10, 244, 0, 0), 24);
        while (addresses(&first_cidr) as usize) < spec.pods + 8 {
            let Some(wider) = first_cidr.supernet() else {
                break;
            };
            first_cidr = wider;
        }
        // Node i of a cluster has the ith block; the services (the same on every node,
        // as kube-proxy programs them cluster-wide) are drawn as node 0 sees them.
        let pod_cidr = match spec.node_index {
            None => first_cidr,
            Some(i) => Ipv4Net::new_assert(
                Ipv4Addr::from(u32::from(first_cidr.network()) + i * addresses(&first_cidr)),
                first_cidr.prefix_len(),
            ),
        };
        let base = u32::from(pod_cidr.network());
        let first_base = u32::from(first_cidr.network());
        let pool = RemotePool::new(first_cidr, spec);

        // Pods: 0 is CoreDNS, the rest are application pods.
        let mut veth_names = BTreeSet::new();
        let mut pods = Vec::with_capacity(spec.pods);
        for k in 0..spec.pods {
            let (namespace, name) = if k == 0 {
                (
                    "kube-system".to_string(),
                    format!(
                        "coredns-{}-{}",
                        rng.chars(10, POD_SUFFIX),
                        rng.chars(5, POD_SUFFIX)
                    ),
                )
            } else {
                (
                    NAMESPACES[k % NAMESPACES.len()].to_string(),
                    format!(
                        "{}-{}-{}",
                        APPS[k % APPS.len()],
                        rng.chars(10, POD_SUFFIX),
                        rng.chars(5, POD_SUFFIX)
                    ),
                )
            };
            let mut host_veth = format!("veth{}", rng.hex(8));
            while !veth_names.insert(host_veth.clone()) {
                host_veth = format!("veth{}", rng.hex(8));
            }
            let pid = 4_000 + 7 * k as u32;
            let mut pod = Pod {
                namespace,
                name,
                uid: rng.uuid(),
                netns_id: format!("cni-{}", rng.uuid()),
                inode: ROOT_INODE + 400 + 3 * k as u64,
                nsid: k as i32,
                ip: Ipv4Addr::from(base + 2 + k as u32),
                mac: rng.mac(),
                host_veth,
                host_mac: rng.mac(),
                host_ifindex: FIRST_VETH_IFINDEX + k as u32,
                tcp: BTreeSet::new(),
                udp: BTreeSet::new(),
                pids: vec![pid, pid + 1, pid + 2],
                dns_default: k == 0,
                wrong_dns: false,
            };
            if k == 0 {
                pod.udp.insert(53);
                pod.tcp.extend([53, 8080, 8181, 9153]);
            } else {
                pod.tcp.insert(8080);
            }
            pods.push(pod);
        }

        // Pod k of node 0 (this node, unless it is another node of a cluster).
        let first_pod_ip = |k: usize| Ipv4Addr::from(first_base + 2 + k as u32);
        // CoreDNS endpoints: the local CoreDNS pod first, the rest on other nodes.
        let mut dns_ips = vec![first_pod_ip(0)];
        while dns_ips.len() < spec.endpoints {
            let ip = pool.draw(&mut rng);
            if !dns_ips.contains(&ip) {
                dns_ips.push(ip);
            }
        }
        let with_port = |ips: &[Ipv4Addr], port: u16| -> Vec<SocketAddrV4> {
            ips.iter().map(|ip| SocketAddrV4::new(*ip, port)).collect()
        };
        let vip = |i: usize, port: u16| {
            SocketAddrV4::new(
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 32)) + i as u32),
                port,
            )
        };
        let apiservers: Vec<Ipv4Addr> = (0..spec.endpoints)
            .map(|j| Ipv4Addr::new(192, 168, 49, 10 + j as u8))
            .collect();
        let mut services = vec![
            Service::new(
                "default",
                "kubernetes",
                "https",
                Protocol::Tcp,
                SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 1), 443),
                6443,
                with_port(&apiservers, 6443),
            ),
            Service::new(
                "kube-system",
                "kube-dns",
                "dns",
                Protocol::Udp,
                SocketAddrV4::new(CLUSTER_DNS, 53),
                53,
                with_port(&dns_ips, 53),
            ),
            Service::new(
                "kube-system",
                "kube-dns",
                "dns-tcp",
                Protocol::Tcp,
                SocketAddrV4::new(CLUSTER_DNS, 53),
                53,
                with_port(&dns_ips, 53),
            ),
        ];

        // Ordinary services: a fifth of the endpoints on this node's pods.
        for i in 3..spec.services {
            let (port_name, protocol, port, target) = port_kind(i);
            let namespace = NAMESPACES[(i / 3) % NAMESPACES.len()];
            let name = format!("{}-{i}", APPS[i % APPS.len()]);
            let mut eps: Vec<SocketAddrV4> = Vec::with_capacity(spec.endpoints);
            let mut guard = 0;
            while eps.len() < spec.endpoints && guard < 100 * spec.endpoints {
                guard += 1;
                let local = pods.len() > 1 && rng.percent(20);
                let ip = if local {
                    first_pod_ip(1 + rng.below(pods.len() as u64 - 1) as usize)
                } else {
                    pool.draw(&mut rng)
                };
                let ep = SocketAddrV4::new(ip, target);
                if !eps.contains(&ep) {
                    eps.push(ep);
                }
            }
            // kube-proxy orders endpoints by address.
            eps.sort();
            services.push(Service::new(
                namespace,
                &name,
                port_name,
                protocol,
                vip(i, port),
                target,
                eps,
            ));
        }

        let mut plan = Plan {
            spec: spec.clone(),
            pod_cidr,
            first_cidr,
            services,
            pods,
            dangling: None,
            stale_dns_backend: None,
            faults: Vec::new(),
            rng: root,
        };
        if spec.faults {
            plan.plant(&mut rng, &pool);
        }
        plan.assign_listeners();
        Ok(plan)
    }

    /// Local endpoint pods listen on their target ports (so SVC003 stays quiet).
    fn assign_listeners(&mut self) {
        let by_ip: std::collections::BTreeMap<Ipv4Addr, usize> = self
            .pods
            .iter()
            .enumerate()
            .map(|(k, p)| (p.ip, k))
            .collect();
        for s in &self.services {
            for ep in &s.endpoints {
                if let Some(&k) = by_ip.get(ep.ip()) {
                    let set = match s.protocol {
                        Protocol::Tcp => &mut self.pods[k].tcp,
                        Protocol::Udp => &mut self.pods[k].udp,
                    };
                    set.insert(ep.port());
                }
            }
        }
    }

    fn plant(&mut self, rng: &mut Rng, pool: &RemotePool) {
        let iptables = self.spec.proxy == crate::spec::ProxyMode::Iptables;
        let rules_file = if iptables {
            netsnap_schema::layout::IPTABLES_NFT_SAVE
        } else {
            netsnap_schema::layout::NFT_JSON
        };

        // SVC001: an ordinary service whose pods are all gone.
        let s = &mut self.services[3];
        s.endpoints.clear();
        s.refresh_chains();
        self.faults.push(PlantedFault {
            kind: "service_without_endpoints".into(),
            finding: "SVC001".into(),
            subject: s.subject(),
            detail: format!(
                "{} ({}) has no endpoints: {}",
                s.port_name_string(),
                s.vip,
                if iptables {
                    "filter KUBE-SERVICES rejects it"
                } else {
                    "it is in the no-endpoint-services map"
                }
            ),
            evidence: rules_file.into(),
        });

        // SVC002: an endpoint inside the node's pod CIDR that no pod owns (on the other
        // nodes of a cluster: in node 0's CIDR, a CLU003 of the cluster, not a SVC002).
        if self.services.len() > 4 {
            let stale = Ipv4Addr::from(u32::from(self.first_cidr.broadcast()) - 1);
            let s = &mut self.services[4];
            let port = s.target_port;
            s.endpoints[0] = SocketAddrV4::new(stale, port);
            s.endpoints.sort();
            s.refresh_chains();
            if self.pod_cidr.contains(&stale) {
                self.faults.push(PlantedFault {
                    kind: "stale_endpoint".into(),
                    finding: "SVC002".into(),
                    subject: s.subject(),
                    detail: format!(
                        "endpoint {stale}:{port} of {} is in the node's pod CIDR but no netns has {stale}",
                        s.port_name_string()
                    ),
                    evidence: rules_file.into(),
                });
            }
        }

        // LNK001: the host end of a deleted pod's veth, still on the bridge.
        let mut name = format!("veth{}", rng.hex(8));
        while self.pods.iter().any(|p| p.host_veth == name) {
            name = format!("veth{}", rng.hex(8));
        }
        let d = DanglingVeth {
            name,
            mac: rng.mac(),
            ifindex: FIRST_VETH_IFINDEX + self.pods.len() as u32,
            nsid: self.pods.len() as i32,
        };
        self.faults.push(PlantedFault {
            kind: "dangling_veth".into(),
            finding: "LNK001".into(),
            subject: format!("link {}", d.name),
            detail: format!(
                "host veth {} (ifindex {}) points at nsid {}, which no netns has",
                d.name, d.ifindex, d.nsid
            ),
            evidence: netsnap_schema::layout::netns_path(
                "root",
                netsnap_schema::layout::NetnsFile::Links,
            ),
        });
        self.dangling = Some(d);

        // DNS001: one application pod resolves through a mistyped nameserver.
        if self.pods.len() > 1 {
            let k = self.pods.len() / 2;
            let k = if k == 0 { 1 } else { k };
            let p = &mut self.pods[k];
            p.wrong_dns = true;
            self.faults.push(PlantedFault {
                kind: "resolv_wrong_nameserver".into(),
                finding: "DNS001".into(),
                subject: p.subject(),
                detail: format!(
                    "resolv.conf of {}/{} has nameserver {WRONG_DNS}, not the cluster DNS {CLUSTER_DNS}",
                    p.namespace, p.name
                ),
                evidence: netsnap_schema::layout::netns_path(
                    &p.netns_id,
                    netsnap_schema::layout::NetnsFile::ResolvConf,
                ),
            });
        }

        // CT005: UDP DNS entries still DNATed to a CoreDNS pod that is gone.
        let dns = &self.services[1];
        let mut old = pool.draw(rng);
        while dns.endpoints.iter().any(|e| *e.ip() == old) {
            old = pool.draw(rng);
        }
        self.stale_dns_backend = Some(old);
        self.faults.push(PlantedFault {
            kind: "stale_udp_conntrack".into(),
            finding: "CT005".into(),
            subject: format!("{} -> {old}", dns.subject()),
            detail: format!(
                "UDP conntrack entries to {} are DNATed to {old}, which is no longer an endpoint",
                dns.vip
            ),
            evidence: netsnap_schema::layout::CONNTRACK_ENTRIES.into(),
        });
    }

    /// Service ports with at least one endpoint.
    pub fn services_with_endpoints(&self) -> usize {
        self.services
            .iter()
            .filter(|s| !s.endpoints.is_empty())
            .count()
    }

    pub fn endpoint_count(&self) -> usize {
        self.services.iter().map(|s| s.endpoints.len()).sum()
    }

    /// kube-shapes views of every service port.
    pub fn ports(&self) -> Vec<ServicePort<'_>> {
        self.services.iter().map(Service::port).collect()
    }

    /// The gateway (bridge) address of the pod CIDR.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.pod_cidr.network()) + 1)
    }

    pub fn pod_broadcast(&self) -> Ipv4Addr {
        self.pod_cidr.broadcast()
    }

    /// A stream for one output file, independent of every other.
    pub fn rng(&self, label: &str) -> Rng {
        self.rng.fork(label)
    }
}
