//! Hand-sized fixture nodes: a [`Node`] describes a small node (pods, services, and a
//! knob for each fault the analyzer's checks look for: a detached or down veth, hairpin
//! off, an MTU mismatch, a duplicate IP, a failed source …) and [`Node::write`] writes it
//! as an unpacked bundle with `BundleWriter::write_dir`, so manifests and sha256s are
//! always right. The committed `fixtures/analyzer/*` come from here
//! (`cargo test -p netsnap-analyzer --test integration -- --ignored
//! regen_fixtures::regenerate` rewrites them); the large synthetic nodes come from
//! [`crate::Plan`]. Both are the scale crate's, so one crate builds every fixture bundle.

use netsnap_kube_shapes::{hash_prefix, sep_chain, svc_chain, FILTER_CHAINS};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::*;
use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus, Truncation};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::ScaleError;

pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
pub const NODE_IP: &str = "10.0.0.10";
pub const BRIDGE_IF: u32 = 3;

#[derive(Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub ip: String,
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    pub resolv: String,
    pub mtu: u32,
    pub hairpin: bool,
    pub enslaved: bool,
    pub host_up: bool,
    pub default_route: bool,
    /// Pod netns missing from the bundle (the host veth dangles).
    pub gone: bool,
    pub host_rp_filter: Option<&'static str>,
    /// The netns id when the runtime named it (`/run/netns/<name>`); by default the
    /// collector's inode id.
    pub netns_name: Option<String>,
    /// How else discovery found the netns (besides its process).
    pub extra_found_by: Vec<Discovery>,
}

impl Pod {
    pub fn new(namespace: &str, name: &str, ip: &str) -> Pod {
        Pod {
            namespace: namespace.into(),
            name: name.into(),
            ip: ip.into(),
            tcp: vec![8080],
            udp: vec![],
            resolv: format!(
                "search {namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
            ),
            mtu: 1450,
            hairpin: true,
            enslaved: true,
            host_up: true,
            default_route: true,
            gone: false,
            host_rp_filter: None,
            netns_name: None,
            extra_found_by: Vec::new(),
        }
    }
    pub fn id(&self) -> String {
        if let Some(name) = &self.netns_name {
            return name.clone();
        }
        format!(
            "ino-{}",
            4026532100
                + self
                    .ip
                    .rsplit('.')
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0)
        )
    }
    pub fn veth(&self) -> String {
        format!("veth{}", hash_prefix(&self.name, 8).to_ascii_lowercase())
    }
}

#[derive(Clone)]
pub struct Svc {
    pub name: String,
    pub proto: &'static str,
    pub vip: String,
    pub port: u16,
    pub endpoints: Vec<(String, u16)>,
    pub node_port: Option<u16>,
}

impl Svc {
    pub fn new(name: &str, proto: &'static str, vip: &str, port: u16, eps: &[(&str, u16)]) -> Svc {
        Svc {
            name: name.into(),
            proto,
            vip: vip.into(),
            port,
            endpoints: eps.iter().map(|(a, p)| (a.to_string(), *p)).collect(),
            node_port: None,
        }
    }
    fn svc_chain(&self) -> String {
        svc_chain(&self.name, self.proto)
    }
    fn ext_chain(&self) -> String {
        format!(
            "KUBE-EXT-{}",
            hash_prefix(&format!("{}{}", self.name, self.proto), 16)
        )
    }
    fn sep_chain(&self, ep: &(String, u16)) -> String {
        sep_chain(&self.name, self.proto, &format!("{}:{}", ep.0, ep.1))
    }
}

/// Which kube-proxy shape the iptables text takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Iptables,
    Ipvs,
}

pub struct Node {
    pub hostname: String,
    pub mode: Mode,
    pub pods: Vec<Pod>,
    pub services: Vec<Svc>,
    pub sysctls: BTreeMap<String, String>,
    pub root_sockets: Vec<(SocketProto, u16)>,
    /// Extra raw files (path, content); a host or node-level file given here replaces
    /// the one the description would generate.
    pub files: BTreeMap<String, String>,
    /// Extra manifest records (a failed or skipped source as the collector records it).
    pub records: Vec<SourceRecord>,
    /// The collector options the manifest records.
    pub options: BTreeMap<String, String>,
    /// Bridge FDB entries of the node netns.
    pub fdb: Vec<FdbEntry>,
    pub failed: Vec<(&'static str, &'static str)>,
    pub unavailable: Vec<&'static str>,
    pub conntrack: Vec<String>,
    pub conntrack_count: u64,
    pub conntrack_max: u64,
    pub stat_row: BTreeMap<&'static str, u64>,
    pub kmsg: Vec<String>,
    pub host_resolv: String,
    pub neigh: Vec<Neigh>,
    /// Rules removed from the iptables-nft text (by substring), for faults.
    pub drop_rules: Vec<&'static str>,
    /// Extra raw lines appended to the nat table.
    pub extra_nat: Vec<String>,
    /// Chains the extra nat lines need declared (a CNI's `CNI-…`); rules in an
    /// undeclared chain are left out of the save.
    pub extra_nat_chains: Vec<String>,
    /// Extra raw lines appended to the filter table (`-A CHAIN …`: a CNI's accept, a
    /// firewall's drop).
    pub extra_filter: Vec<String>,
    pub forward_policy: &'static str,
    pub extra_root_links: Vec<Link>,
    pub extra_root_addrs: Vec<Addr>,
    /// Routes appended to the node netns's main table (an overlay's, a CNI's).
    pub extra_root_routes: Vec<Route>,
    /// Policy routing rules appended to the node netns's.
    pub extra_root_rules: Vec<Rule>,
    /// A second pod netns claims an address (LNK007).
    pub duplicate_ip: Option<(usize, String)>,
    /// The manifest's capture start: RFC 3339, seconds and (optionally) milliseconds
    /// since the epoch (two captures of one node some time apart, for `netsnap diff`).
    pub captured_at: String,
    pub captured_at_unix: u64,
    pub captured_at_unix_ms: Option<u64>,
    /// `host/facts.json` boot id.
    pub boot_id: String,
    /// The node's own address (eth0, the VXLAN local address); [`NODE_IP`] by default.
    pub node_ip: String,
    /// Third octet of the node's pod CIDR `10.244.N.0/24` (cni0 is `.1`); 1 by default.
    /// The pods' addresses are theirs to give ([`Pod::ip`]).
    pub pod_subnet: u8,
    /// MAC and MTU of the node's VXLAN device `flannel.1` (several nodes of one
    /// cluster need distinct VTEP MACs).
    pub vtep_mac: String,
    pub overlay_mtu: u32,
}

impl Node {
    pub fn new(hostname: &str) -> Node {
        let sysctls = [
            ("net.ipv4.ip_forward", "1"),
            ("net.bridge.bridge-nf-call-iptables", "1"),
            ("net.bridge.bridge-nf-call-ip6tables", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.ip_local_port_range", "32768\t60999"),
            ("net.ipv4.neigh.default.gc_thresh1", "128"),
            ("net.ipv4.neigh.default.gc_thresh2", "512"),
            ("net.ipv4.neigh.default.gc_thresh3", "1024"),
            ("net.netfilter.nf_conntrack_max", "262144"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Node {
            hostname: hostname.into(),
            mode: Mode::Iptables,
            pods: Vec::new(),
            services: Vec::new(),
            sysctls,
            root_sockets: vec![
                (SocketProto::Tcp, 6443),
                (SocketProto::Tcp, 10250),
                (SocketProto::Tcp, 22),
            ],
            files: BTreeMap::new(),
            records: Vec::new(),
            options: [("timeout".to_string(), "60s".to_string())].into(),
            fdb: Vec::new(),
            failed: Vec::new(),
            unavailable: vec![
                "iptables-legacy-save",
                "ip6tables-legacy-save",
                "ipvs",
                "ipset",
            ],
            conntrack: Vec::new(),
            conntrack_count: 0,
            conntrack_max: 262144,
            stat_row: BTreeMap::new(),
            kmsg: vec![
                "6,1201,5123456789,-;cni0: port 1(veth1b2c3d4e) entered forwarding state".into(),
            ],
            host_resolv: "nameserver 10.0.0.2\nsearch example.internal\n".into(),
            neigh: Vec::new(),
            drop_rules: Vec::new(),
            extra_nat: Vec::new(),
            extra_nat_chains: Vec::new(),
            extra_filter: Vec::new(),
            forward_policy: "ACCEPT",
            extra_root_links: Vec::new(),
            extra_root_addrs: Vec::new(),
            extra_root_routes: Vec::new(),
            extra_root_rules: Vec::new(),
            duplicate_ip: None,
            captured_at: "2026-11-21T17:44:41Z".into(),
            captured_at_unix: 1_795_282_681,
            captured_at_unix_ms: None,
            boot_id: "00000000-0000-4000-8000-000000000001".into(),
            node_ip: NODE_IP.into(),
            pod_subnet: 1,
            vtep_mac: "0a:0b:0c:0d:0e:0f".into(),
            overlay_mtu: 1450,
        }
    }

    /// A healthy node: web (2 endpoints), api (1), kube-dns (udp+tcp), kubernetes.
    pub fn healthy(hostname: &str) -> Node {
        let mut n = Node::new(hostname);
        let mut dns = Pod::new("kube-system", "coredns-5d78c9869d-abcde", "10.244.1.10");
        dns.tcp = vec![53, 8181];
        dns.udp = vec![53];
        dns.resolv = n.host_resolv.clone();
        n.pods = vec![
            dns,
            Pod::new("default", "web-7f9c6b5d4-x2k8p", "10.244.1.11"),
            Pod::new("default", "web-7f9c6b5d4-q7r2m", "10.244.1.12"),
            Pod::new("default", "api-6d8f7c9b8-m4n5p", "10.244.1.13"),
            Pod::new("default", "client-0", "10.244.1.20"),
        ];
        n.services = vec![
            Svc::new(
                "default/kubernetes:https",
                "tcp",
                "10.96.0.1",
                443,
                &[(NODE_IP, 6443)],
            ),
            Svc::new(
                "kube-system/kube-dns:dns",
                "udp",
                "10.96.0.10",
                53,
                &[("10.244.1.10", 53)],
            ),
            Svc::new(
                "kube-system/kube-dns:dns-tcp",
                "tcp",
                "10.96.0.10",
                53,
                &[("10.244.1.10", 53)],
            ),
            Svc::new(
                "default/web:http",
                "tcp",
                "10.96.12.34",
                80,
                &[("10.244.1.11", 8080), ("10.244.1.12", 8080)],
            ),
            Svc::new(
                "default/api:http",
                "tcp",
                "10.96.56.78",
                8080,
                &[("10.244.1.13", 8080)],
            ),
        ];
        n.services[3].node_port = Some(30080);
        n.conntrack = vec![
            ct_udp(
                "10.244.1.20",
                40001,
                "10.96.0.10",
                53,
                "10.244.1.10",
                53,
                25,
            ),
            ct_tcp(
                "10.244.1.20",
                50001,
                "10.96.12.34",
                80,
                "10.244.1.11",
                8080,
                "ESTABLISHED",
            ),
            ct_tcp(
                "10.244.1.20",
                50002,
                "10.96.12.34",
                80,
                "10.244.1.12",
                8080,
                "TIME_WAIT",
            ),
            ct_tcp(
                "10.244.1.11",
                41000,
                "10.96.0.1",
                443,
                NODE_IP,
                6443,
                "ESTABLISHED",
            ),
        ];
        n.conntrack_count = 4;
        n.neigh = vec![Neigh {
            ifindex: 2,
            family: "inet".into(),
            dst: "10.0.0.1".into(),
            lladdr: Some("52:54:00:00:00:01".into()),
            state: "REACHABLE".into(),
        }];
        n
    }

    fn sysctl_json(&self) -> Sysctls {
        self.sysctls.clone()
    }

    /// Writes the bundle into `dir` (which must not exist).
    pub fn write(&self, dir: &Path) -> Result<(), ScaleError> {
        // The writer's spools live here; the bundle itself goes to `dir`.
        let tmp = tempfile::tempdir().map_err(|source| ScaleError::Io {
            path: "temporary directory".into(),
            source,
        })?;
        let (w, manifest) = self.writer(tmp.path())?;
        w.write_dir(manifest, dir)?;
        Ok(())
    }

    /// Every source of the bundle in a writer spooling under `spool`, as the collector
    /// holds them before writing, and the manifest to write them with.
    pub fn writer(&self, spool: &Path) -> Result<(BundleWriter, Manifest), ScaleError> {
        let mut w = BundleWriter::new(spool);
        let rec = |name: &str, path: &str| {
            let mut r = SourceRecord::new(name, SourceStatus::Ok);
            r.path = Some(path.to_string());
            r.duration_ms = 1;
            r
        };
        // A file given in `files` replaces the generated one.
        let add = |w: &mut BundleWriter, name: &str, path: &str, text: &str| {
            if self.files.contains_key(path) {
                return Ok(());
            }
            w.add_bytes(rec(name, path), text.as_bytes())
        };
        let json = |w: &mut BundleWriter, name: &str, path: &str, v: &dyn erased::Ser| {
            if self.files.contains_key(path) {
                return Ok(());
            }
            let mut s = v.to_pretty();
            s.push('\n');
            w.add_bytes(rec(name, path), s.as_bytes())
        };

        // Host files.
        let facts = HostFacts {
            hostname: self.hostname.clone(),
            kernel_release: "6.18.0-netsnap".into(),
            kernel_version: "#1 SMP PREEMPT_DYNAMIC".into(),
            machine: "x86_64".into(),
            boot_id: Some(self.boot_id.clone()),
            cpus: 2,
            memory_bytes: 4 << 30,
            uptime_secs: 86400,
            collected_as_root: true,
            kube_proxy: KubeProxyHints {
                kube_ipvs0: self.mode == Mode::Ipvs,
                ip_vs: self.mode == Mode::Ipvs,
                legacy_tables: Vec::new(),
                legacy6_tables: Vec::new(),
            },
        };
        json(&mut w, "host/facts", layout::HOST_FACTS, &facts)?;
        json(
            &mut w,
            "host/sysctl",
            layout::HOST_SYSCTL,
            &self.sysctl_json(),
        )?;
        add(
            &mut w,
            "host/resolv.conf",
            layout::HOST_RESOLV_CONF,
            &self.host_resolv,
        )?;
        let mut kmsg = self.kmsg.join("\n");
        kmsg.push('\n');
        add(&mut w, "host/kmsg", layout::HOST_KMSG, &kmsg)?;

        // Netns index and per-netns files.
        let mut index = NetnsIndex::default();
        index.netns.push(NetnsEntry {
            id: "root".into(),
            inode: 4026531840,
            dev: 4,
            is_root: true,
            found_by: vec![Discovery::Node {
                path: "/proc/1/ns/net".into(),
            }],
            nsid: None,
            pids: vec![1],
            hostname: Some(self.hostname.clone()),
            pod: None,
        });
        let mut root_links = vec![
            loopback(),
            Link::new(2, "eth0", 1500)
                .up()
                .with_mac("52:54:00:12:34:56"),
            Link {
                bridge: Some(BridgeInfo {
                    stp_state: Some(0),
                    vlan_filtering: Some(false),
                }),
                ..Link::new(BRIDGE_IF, "cni0", 1450)
                    .with_kind("bridge")
                    .up()
                    .with_mac("0a:58:0a:f4:01:01")
            },
            Link {
                vxlan: Some(Vxlan {
                    id: 1,
                    local: Some(self.node_ip.clone()),
                    group: None,
                    dev: Some(2),
                    port: Some(8472),
                    ..Vxlan::default()
                }),
                ..Link::new(4, "flannel.1", self.overlay_mtu)
                    .with_kind("vxlan")
                    .up()
                    .with_state(LinkState::Unknown)
                    .with_mac(self.vtep_mac.clone())
            },
        ];
        let subnet = format!("10.244.{}", self.pod_subnet);
        let pod_cidr = format!("{subnet}.0/24");
        let mut root_addrs = vec![
            loopback_addr(),
            Addr::new(2, self.node_ip.clone(), 24).with_label("eth0"),
            Addr::new(BRIDGE_IF, format!("{subnet}.1"), 24).with_label("cni0"),
            Addr::new(4, format!("{subnet}.0"), 32).with_label("flannel.1"),
        ];
        let mut routes = RouteTable {
            routes: vec![
                route("default", Some("10.0.0.1"), 2, "dhcp", "universe"),
                route("10.0.0.0/24", None, 2, "kernel", "link"),
                route("10.244.0.0/24", Some("10.244.0.0"), 4, "boot", "universe"),
                route(&pod_cidr, None, BRIDGE_IF, "kernel", "link"),
            ],
            rules: vec![
                Rule::lookup("inet", 0, 255),
                Rule::lookup("inet", 32766, 254),
            ],
        };
        routes.routes[2].scope = "universe".into();
        let mut root_sysctl: Sysctls = [
            ("net.ipv4.conf.all.forwarding", "1"),
            (
                "net.ipv4.conf.all.rp_filter",
                self.sysctls
                    .get("net.ipv4.conf.all.rp_filter")
                    .map(String::as_str)
                    .unwrap_or("0"),
            ),
            (
                "net.ipv4.ip_forward",
                self.sysctls
                    .get("net.ipv4.ip_forward")
                    .map(String::as_str)
                    .unwrap_or("1"),
            ),
            (
                "net.bridge.bridge-nf-call-iptables",
                self.sysctls
                    .get("net.bridge.bridge-nf-call-iptables")
                    .map(String::as_str)
                    .unwrap_or("1"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (i, p) in self.pods.iter().enumerate() {
            let nsid = i as i32;
            let host_if = 10 + i as u32;
            let host_veth = Link::new(host_if, p.veth(), 1450)
                .with_kind("veth")
                .up()
                .with_mac(format!("ee:ee:ee:00:00:{:02x}", host_if))
                .with_master(p.enslaved.then_some(BRIDGE_IF))
                .with_peer(2, if p.gone { 90 + nsid } else { nsid });
            root_links.push(Link {
                promiscuity: u32::from(p.enslaved),
                bridge_port: p.enslaved.then_some(BridgePort {
                    hairpin: p.hairpin,
                    state: Some(3),
                    learning: Some(true),
                }),
                ..if p.host_up {
                    host_veth
                } else {
                    host_veth
                        .with_state(LinkState::Down)
                        .with_flags(&["BROADCAST", "MULTICAST"])
                }
            });
            root_sysctl.insert(
                format!("net.ipv4.conf.{}.rp_filter", p.veth()),
                p.host_rp_filter.unwrap_or("0").into(),
            );
            root_sysctl.insert(format!("net.ipv4.conf.{}.forwarding", p.veth()), "1".into());
            if p.gone {
                continue;
            }
            let id = p.id();
            index.netns.push(NetnsEntry {
                id: id.clone(),
                inode: 4026532100 + i as u64,
                dev: 4,
                is_root: false,
                found_by: std::iter::once(Discovery::Proc {
                    pid: 1000 + i as u32,
                })
                .chain(p.extra_found_by.iter().cloned())
                .collect(),
                nsid: Some(nsid),
                pids: vec![1000 + i as u32],
                hostname: Some(p.name.clone()),
                pod: Some(PodIdentity {
                    namespace: Some(p.namespace.clone()),
                    name: Some(p.name.clone()),
                    uid: Some(format!("00000000-0000-4000-8000-{:012}", i)),
                    source: PodIdentitySource::CgroupAndPodLogs,
                    tried: vec![
                        PodIdentitySource::Crictl,
                        PodIdentitySource::CgroupAndPodLogs,
                    ],
                }),
            });
            let links = vec![
                loopback(),
                Link::new(2, "eth0", p.mtu)
                    .with_kind("veth")
                    .up()
                    .with_state(if p.host_up {
                        LinkState::Up
                    } else {
                        LinkState::Lowerlayerdown
                    })
                    .with_mac(format!("0a:58:0a:f4:01:{:02x}", i + 10))
                    .with_peer(host_if, 0),
            ];
            let ip = match &self.duplicate_ip {
                Some((d, dup)) if *d == i => dup.clone(),
                _ => p.ip.clone(),
            };
            let addrs = vec![loopback_addr(), Addr::new(2, ip, 24).with_label("eth0")];
            let mut pr = vec![route(&pod_cidr, None, 2, "kernel", "link")];
            if p.default_route {
                pr.insert(
                    0,
                    route(
                        "default",
                        Some(&format!("{subnet}.1")),
                        2,
                        "boot",
                        "universe",
                    ),
                );
            }
            let sockets: Vec<Socket> = p
                .tcp
                .iter()
                .map(|port| Socket {
                    inode: 100 + u64::from(*port),
                    ..Socket::new(SocketProto::Tcp, "0.0.0.0", *port)
                })
                .chain(p.udp.iter().map(|port| Socket {
                    inode: 200 + u64::from(*port),
                    ..Socket::new(SocketProto::Udp, "0.0.0.0", *port)
                }))
                .collect();
            let nsys: Sysctls = [
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.ip_forward", "0"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let pn = |f: NetnsFile| layout::netns_path(&id, f);
            let nrec = |f: NetnsFile| {
                let mut r = rec(f.source_name(), &pn(f));
                r.netns = Some(id.clone());
                r
            };
            let pretty = |v: &dyn erased::Ser| {
                let mut s = v.to_pretty();
                s.push('\n');
                s
            };
            w.add_bytes(nrec(NetnsFile::Links), pretty(&links).as_bytes())?;
            w.add_bytes(nrec(NetnsFile::Addrs), pretty(&addrs).as_bytes())?;
            w.add_bytes(
                nrec(NetnsFile::Routes),
                pretty(&RouteTable {
                    routes: pr,
                    rules: vec![],
                })
                .as_bytes(),
            )?;
            w.add_bytes(
                nrec(NetnsFile::Neigh),
                pretty(&NeighTable::default()).as_bytes(),
            )?;
            w.add_bytes(nrec(NetnsFile::Sockets), pretty(&sockets).as_bytes())?;
            w.add_bytes(nrec(NetnsFile::Sysctl), pretty(&nsys).as_bytes())?;
            w.add_bytes(nrec(NetnsFile::ResolvConf), p.resolv.as_bytes())?;
        }
        root_links.extend(self.extra_root_links.iter().cloned());
        root_addrs.extend(self.extra_root_addrs.iter().cloned());
        routes.routes.extend(self.extra_root_routes.iter().cloned());
        routes.rules.extend(self.extra_root_rules.iter().cloned());
        let root_sockets: Vec<Socket> = self
            .root_sockets
            .iter()
            .map(|(proto, port)| Socket {
                inode: 10 + u64::from(*port),
                ..Socket::new(*proto, "0.0.0.0", *port)
            })
            .collect();
        let rrec = |f: NetnsFile| {
            let mut r = rec(f.source_name(), &layout::netns_path("root", f));
            r.netns = Some("root".into());
            r
        };
        let pretty = |v: &dyn erased::Ser| {
            let mut s = v.to_pretty();
            s.push('\n');
            s
        };
        w.add_bytes(rrec(NetnsFile::Links), pretty(&root_links).as_bytes())?;
        w.add_bytes(rrec(NetnsFile::Addrs), pretty(&root_addrs).as_bytes())?;
        w.add_bytes(rrec(NetnsFile::Routes), pretty(&routes).as_bytes())?;
        w.add_bytes(
            rrec(NetnsFile::Neigh),
            pretty(&NeighTable {
                neighbours: self.neigh.clone(),
                fdb: self.fdb.clone(),
            })
            .as_bytes(),
        )?;
        w.add_bytes(rrec(NetnsFile::Sockets), pretty(&root_sockets).as_bytes())?;
        w.add_bytes(rrec(NetnsFile::Sysctl), pretty(&root_sysctl).as_bytes())?;
        w.add_bytes(rrec(NetnsFile::ResolvConf), self.host_resolv.as_bytes())?;
        json(&mut w, "netns/index", layout::NETNS_INDEX, &index)?;

        // Netfilter.
        add(
            &mut w,
            "iptables-nft-save",
            layout::IPTABLES_NFT_SAVE,
            &self.iptables_save("nf_tables", &self.drop_rules),
        )?;
        add(&mut w, "ip6tables-nft-save", layout::IP6TABLES_NFT_SAVE, "# Generated by ip6tables-nft-save v1.8.9 (nf_tables) on Sat Nov 21 17:44:41 2026\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n# Completed on Sat Nov 21 17:44:41 2026\n")?;
        add(&mut w, "nft", layout::NFT_JSON, "{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"release_name\": \"Lester Gooch #5\", \"json_schema_version\": 1}}]}\n")?;

        // Conntrack.
        let mut ct = self.conntrack.join("\n");
        if !ct.is_empty() {
            ct.push('\n');
        }
        add(&mut w, "conntrack", layout::CONNTRACK_ENTRIES, &ct)?;
        add(
            &mut w,
            "conntrack-stat",
            layout::CONNTRACK_STAT,
            &self.stat_text(),
        )?;
        let mut node = Sysctls::new();
        node.insert(
            "net.netfilter.nf_conntrack_count".into(),
            self.conntrack_count.to_string(),
        );
        node.insert(
            "net.netfilter.nf_conntrack_max".into(),
            self.conntrack_max.to_string(),
        );
        node.insert("net.netfilter.nf_conntrack_buckets".into(), "65536".into());
        node.insert("net.netfilter.nf_conntrack_udp_timeout".into(), "30".into());
        let mut count_by_netns = BTreeMap::new();
        count_by_netns.insert("root".to_string(), self.conntrack_count);
        json(
            &mut w,
            "conntrack-sysctl",
            layout::CONNTRACK_SYSCTL,
            &ConntrackSysctl {
                node,
                count_by_netns,
            },
        )?;

        for (path, content) in &self.files {
            let name = path
                .rsplit('/')
                .next()
                .unwrap_or(path)
                .trim_end_matches(".txt");
            w.add_bytes(rec(name, path), content.as_bytes())?;
        }
        for r in &self.records {
            w.add_record(r.clone())?;
        }
        for (name, err) in &self.failed {
            w.add_record(SourceRecord::new(*name, SourceStatus::Failed).with_error(*err))?;
        }
        for name in &self.unavailable {
            if self
                .files
                .keys()
                .any(|p| p.contains(&name.replace("-save", "")))
                || self.failed.iter().any(|(f, _)| f == name)
            {
                continue;
            }
            w.add_record(
                SourceRecord::new(*name, SourceStatus::Unavailable)
                    .with_error("not in use on this node"),
            )?;
        }
        let mut m = Manifest::new(
            "0.1.0",
            &self.hostname,
            "6.18.0-netsnap",
            &self.captured_at,
            self.captured_at_unix,
        );
        m.captured_at_unix_ms = self.captured_at_unix_ms;
        m.duration_ms = 1234;
        m.options.extend(self.options.clone());
        Ok((w, m))
    }

    fn stat_text(&self) -> String {
        let cols = [
            "entries",
            "clashres",
            "found",
            "new",
            "invalid",
            "ignore",
            "delete",
            "chainlength",
            "insert",
            "insert_failed",
            "drop",
            "early_drop",
            "icmp_error",
            "expect_new",
            "expect_create",
            "expect_delete",
            "search_restart",
        ];
        let mut s = String::from("entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n");
        for cpu in 0..2u64 {
            let vals: Vec<String> = cols
                .iter()
                .map(|c| {
                    let v = if *c == "entries" {
                        self.conntrack_count
                    } else {
                        self.stat_row.get(c).copied().unwrap_or(0) * (cpu + 1)
                    };
                    format!("{v:08x}")
                })
                .collect();
            let _ = writeln!(s, "{}", vals.join(" "));
        }
        s
    }

    /// iptables-save output of kube-proxy's rules for this node.
    pub fn iptables_save(&self, backend: &str, drop: &[&str]) -> String {
        let mut filter: Vec<(String, String)> = Vec::new();
        let mut nat: Vec<(String, String)> = Vec::new();
        let f = |v: &mut Vec<(String, String)>, chain: &str, rest: &str| {
            v.push((chain.to_string(), format!("-A {chain} {rest}")))
        };
        f(&mut filter, "INPUT", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL");
        f(
            &mut filter,
            "INPUT",
            "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
        );
        f(&mut filter, "INPUT", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES");
        f(&mut filter, "INPUT", "-j KUBE-FIREWALL");
        f(&mut filter, "FORWARD", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL");
        f(
            &mut filter,
            "FORWARD",
            "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
        );
        f(&mut filter, "FORWARD", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
        f(&mut filter, "OUTPUT", "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
        f(&mut filter, "OUTPUT", "-j KUBE-FIREWALL");
        f(&mut filter, "KUBE-FIREWALL", "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP");
        f(
            &mut filter,
            "KUBE-FORWARD",
            "-m conntrack --ctstate INVALID -j DROP",
        );
        f(&mut filter, "KUBE-FORWARD", "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT");
        f(&mut filter, "KUBE-FORWARD", "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        f(
            &mut nat,
            "PREROUTING",
            "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        );
        f(
            &mut nat,
            "OUTPUT",
            "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        );
        f(
            &mut nat,
            "POSTROUTING",
            "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        );
        f(
            &mut nat,
            "KUBE-MARK-MASQ",
            "-j MARK --set-xmark 0x4000/0x4000",
        );
        if self.mode == Mode::Ipvs {
            // IPVS mode masquerades a pod's connection to a service that lands on itself.
            f(&mut nat, "KUBE-POSTROUTING", "-m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE");
        }
        f(
            &mut nat,
            "KUBE-POSTROUTING",
            "-m mark ! --mark 0x4000/0x4000 -j RETURN",
        );
        f(
            &mut nat,
            "KUBE-POSTROUTING",
            "-j MARK --set-xmark 0x4000/0x0",
        );
        f(&mut nat, "KUBE-POSTROUTING", "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully");
        let mut user_nat = vec![
            "KUBE-MARK-MASQ",
            "KUBE-NODEPORTS",
            "KUBE-POSTROUTING",
            "KUBE-PROXY-CANARY",
            "KUBE-SERVICES",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if self.mode == Mode::Ipvs {
            f(&mut nat, "KUBE-SERVICES", "-m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ");
            f(
                &mut nat,
                "KUBE-SERVICES",
                "-m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
            );
            f(
                &mut nat,
                "KUBE-SERVICES",
                "-m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
            );
            user_nat.push("KUBE-NODE-PORT".into());
        }
        for s in self.services.iter().filter(|_| self.mode == Mode::Iptables) {
            let p = s.proto;
            if s.endpoints.is_empty() {
                f(&mut filter, "KUBE-SERVICES", &format!("-d {}/32 -p {p} -m comment --comment \"{} has no endpoints\" -m {p} --dport {} -j REJECT --reject-with icmp-port-unreachable", s.vip, s.name, s.port));
                if let Some(np) = s.node_port {
                    f(&mut filter, "KUBE-EXTERNAL-SERVICES", &format!("-p {p} -m comment --comment \"{} has no endpoints\" -m addrtype --dst-type LOCAL -m {p} --dport {np} -j REJECT --reject-with icmp-port-unreachable", s.name));
                }
                continue;
            }
            let svc = s.svc_chain();
            user_nat.push(svc.clone());
            f(&mut nat, "KUBE-SERVICES", &format!("-d {}/32 -p {p} -m comment --comment \"{} cluster IP\" -m {p} --dport {} -j {svc}", s.vip, s.name, s.port));
            if let Some(np) = s.node_port {
                let ext = s.ext_chain();
                user_nat.push(ext.clone());
                f(
                    &mut nat,
                    "KUBE-NODEPORTS",
                    &format!(
                        "-p {p} -m comment --comment \"{}\" -m {p} --dport {np} -j {ext}",
                        s.name
                    ),
                );
                f(&mut nat, &ext, "-m comment --comment \"masquerade traffic for default/web:http external destinations\" -j KUBE-MARK-MASQ");
                f(&mut nat, &ext, &format!("-j {svc}"));
            }
            f(&mut nat, &svc, &format!("! -s {CLUSTER_CIDR} -d {}/32 -p {p} -m comment --comment \"{} cluster IP\" -m {p} --dport {} -j KUBE-MARK-MASQ", s.vip, s.name, s.port));
            let n = s.endpoints.len();
            for (i, ep) in s.endpoints.iter().enumerate() {
                let sep = s.sep_chain(ep);
                user_nat.push(sep.clone());
                let stat = if i + 1 < n {
                    format!(
                        " -m statistic --mode random --probability {:.11}",
                        1.0 / (n - i) as f64
                    )
                } else {
                    String::new()
                };
                f(
                    &mut nat,
                    &svc,
                    &format!(
                        "-m comment --comment \"{} -> {}:{}\"{stat} -j {sep}",
                        s.name, ep.0, ep.1
                    ),
                );
                f(
                    &mut nat,
                    &sep,
                    &format!(
                        "-s {}/32 -m comment --comment \"{}\" -j KUBE-MARK-MASQ",
                        ep.0, s.name
                    ),
                );
                f(
                    &mut nat,
                    &sep,
                    &format!(
                        "-p {p} -m comment --comment \"{}\" -m {p} -j DNAT --to-destination {}:{}",
                        s.name, ep.0, ep.1
                    ),
                );
            }
        }
        if self.mode == Mode::Iptables {
            f(&mut nat, "KUBE-SERVICES", "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
        }
        for l in &self.extra_filter {
            let chain = l.split_whitespace().nth(1).unwrap_or("FORWARD").to_string();
            filter.push((chain, l.clone()));
        }
        for l in &self.extra_nat {
            let chain = l
                .split_whitespace()
                .nth(1)
                .unwrap_or("KUBE-SERVICES")
                .to_string();
            nat.push((chain, l.clone()));
        }
        user_nat.extend(self.extra_nat_chains.iter().cloned());
        user_nat.sort();
        user_nat.dedup();
        let keep = |line: &String| !drop.iter().any(|d| line.contains(d));
        let table =
            |name: &str, builtin: &[(&str, &str)], user: &[String], rules: &[(String, String)]| {
                let mut t = format!("*{name}\n");
                for (c, pol) in builtin {
                    let _ = writeln!(t, ":{c} {pol} [0:0]");
                }
                for c in user {
                    let _ = writeln!(t, ":{c} - [0:0]");
                }
                let order: Vec<String> = builtin
                    .iter()
                    .map(|(c, _)| c.to_string())
                    .chain(user.iter().cloned())
                    .collect();
                for c in &order {
                    for (_, r) in rules.iter().filter(|(rc, r)| rc == c && keep(r)) {
                        let _ = writeln!(t, "[0:0] {r}");
                    }
                }
                t.push_str("COMMIT\n");
                t
            };
        let user_filter: Vec<String> = FILTER_CHAINS.into_iter().map(String::from).collect();
        let header = format!(
            "# Generated by iptables-{}-save v1.8.9 ({backend}) on Sat Nov 21 17:44:41 2026\n",
            if backend == "nf_tables" {
                "nft"
            } else {
                "legacy"
            }
        );
        let mut out = String::new();
        out.push_str(&header);
        out.push_str(&table(
            "mangle",
            &[
                ("PREROUTING", "ACCEPT"),
                ("INPUT", "ACCEPT"),
                ("FORWARD", "ACCEPT"),
                ("OUTPUT", "ACCEPT"),
                ("POSTROUTING", "ACCEPT"),
            ],
            &[
                "KUBE-IPTABLES-HINT".into(),
                "KUBE-KUBELET-CANARY".into(),
                "KUBE-PROXY-CANARY".into(),
            ],
            &[],
        ));
        out.push_str("# Completed on Sat Nov 21 17:44:41 2026\n");
        out.push_str(&header);
        out.push_str(&table(
            "filter",
            &[
                ("INPUT", "ACCEPT"),
                ("FORWARD", self.forward_policy),
                ("OUTPUT", "ACCEPT"),
            ],
            &user_filter,
            &filter,
        ));
        out.push_str("# Completed on Sat Nov 21 17:44:41 2026\n");
        out.push_str(&header);
        out.push_str(&table(
            "nat",
            &[
                ("PREROUTING", "ACCEPT"),
                ("INPUT", "ACCEPT"),
                ("OUTPUT", "ACCEPT"),
                ("POSTROUTING", "ACCEPT"),
            ],
            &user_nat,
            &nat,
        ));
        out.push_str("# Completed on Sat Nov 21 17:44:41 2026\n");
        out
    }
}

/// `lo`, as every netns of the fixtures has it.
fn loopback() -> Link {
    Link::loopback()
}

fn loopback_addr() -> Addr {
    Addr::new(1, "127.0.0.1", 8)
        .with_scope("host")
        .with_label("lo")
}

/// A main-table route `dst [via gw] dev oif proto … scope …`.
pub fn route(dst: &str, gw: Option<&str>, oif: u32, proto: &str, scope: &str) -> Route {
    Route {
        gateway: gw.map(String::from),
        ..Route::new(dst)
            .dev(oif)
            .with_protocol(proto)
            .with_scope(scope)
    }
}

pub fn ct_tcp(
    src: &str,
    sport: u16,
    vip: &str,
    vport: u16,
    be: &str,
    bport: u16,
    state: &str,
) -> String {
    format!("ipv4     2 tcp      6 86395 {state} src={src} dst={vip} sport={sport} dport={vport} src={be} dst={src} sport={bport} dport={sport} [ASSURED] mark=0 zone=0 use=2")
}

pub fn ct_udp(
    src: &str,
    sport: u16,
    vip: &str,
    vport: u16,
    be: &str,
    bport: u16,
    timeout: u32,
) -> String {
    format!("ipv4     2 udp      17 {timeout} src={src} dst={vip} sport={sport} dport={vport} src={be} dst={src} sport={bport} dport={sport} mark=0 zone=0 use=2")
}

/// SNATed flow: pod → remote, masqueraded to the node IP.
pub fn ct_snat(src: &str, sport: u16, dst: &str, dport: u16, snat: &str, nport: u16) -> String {
    format!("ipv4     2 tcp      6 431990 ESTABLISHED src={src} dst={dst} sport={sport} dport={dport} src={dst} dst={snat} sport={dport} dport={nport} [ASSURED] mark=0 zone=0 use=2")
}

/// Object-safe pretty JSON for the generator's closures.
pub mod erased {
    pub trait Ser {
        fn to_pretty(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_pretty(&self) -> String {
            serde_json::to_string_pretty(self).unwrap_or_default()
        }
    }
}

pub fn truncation(kept: u64, total: u64) -> Truncation {
    Truncation { kept, total }
}
