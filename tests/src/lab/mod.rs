//! The lab: a simulated Kubernetes node built from real network namespaces,
//! with fault injectors, for end-to-end tests of the collector and analyzer.
//!
//! ```no_run
//! use netsnap_tests::lab::{require_lab, Lab, ProxyMode};
//! let Some(_env) = require_lab() else { return };
//! let mut lab = Lab::builder("my-test")
//!     .pods(20).services(50).endpoints_per_service(2)
//!     .bridge_name("cni0").proxy_mode(ProxyMode::Iptables)
//!     .cluster_dns(true).traffic(true)
//!     .build().unwrap();
//! lab.fault_hairpin_off(3).unwrap();
//! let out = lab.node(&["iptables-save"]);
//! # drop(out);
//! ```
//!
//! # What gets built
//!
//! Lab name: `nsl-<prefix>-<6 hex>` (tests; unique, tests run in parallel) or
//! `nsm-<name>` (`scripts/lab`). Every netns is `/run/netns/<lab>.<role>`:
//!
//! * `<lab>.up`: the "upstream" router, `eth0` 198.51.100.1/24. The node's uplink
//!   is a veth into it, never into the root netns.
//! * `<lab>.node`: the node. `eth0` 198.51.100.2/24 (default route via upstream),
//!   bridge (default `cni0`, gateway of the pod CIDR, MTU 1500), one host veth
//!   per pod (`veth` + 8 random hex, hairpin on, like the CNI bridge plugin),
//!   `ip_forward=1`, `bridge-nf-call-iptables=1`, kube-proxy rules:
//!   iptables mode via `iptables-nft-restore` (exact kube-proxy shape, see
//!   [`kube_proxy`]), nftables mode (`table ip kube-proxy`, see [`nft`]) or IPVS
//!   mode (`kube-ipvs0`, ipsets, set-matching iptables rules and rendered
//!   `/proc/net/ip_vs` text, see [`ipvs`]; no service traffic: no kernel IPVS here).
//! * `<lab>.pod<i>`: one per pod, `eth0` (peer of the host veth), pod IP,
//!   default route via the bridge.
//!
//! Addresses (TEST-NET-2 uplink, chosen not to match this machine's own
//! 192.0.2.0/24): pod CIDR 10.244.1.0/24 (10.244.0.0/16 above 250 pods), cluster
//! CIDR 10.244.0.0/16, service CIDR 10.96.0.0/16 (kube-dns 10.96.0.10, service
//! `i` at 10.96.1.1 + i). All exist only inside lab netns.
//!
//! Pods `0..n` are `default/web-<i>`; with cluster DNS, pod `n` is
//! `kube-system/coredns-0` (dnsPolicy Default: it gets the node's resolv.conf).
//! Services `0..m` are `default/svc-<i>` (TCP `http` 80, every 4th one UDP
//! `echo` 7), target port `20000 + i`, endpoints on pods `(i*k + j) % n`; with
//! cluster DNS, two more service ports follow: `kube-system/kube-dns:dns` (UDP
//! 53) and `kube-system/kube-dns:dns-tcp` (TCP 53), endpoint the coredns pod.
//! Endpoint pods run one listener process per target port that answers with
//! the pod name; the coredns pod runs an echo stub on 53/udp and 53/tcp (every
//! query gets a reply). Listeners are `netsnap-lab serve …` (this crate's
//! binary, found next to the test executable or via `$NETSNAP_LAB_BIN`; see
//! [`server`]), socat when the binary cannot be found.
//!
//! With `.cni(CniMode::Bridge | CniMode::Ptp)` the CNI reference plugins wire the
//! pods instead (run inside the node netns as a runtime runs them; host-local
//! addresses; conflist in the host root): see [`cni`]. Two nodes joined by a
//! Flannel-style VXLAN overlay (`.node_index(2).join_upstream(&first)`): see
//! [`flannel`]; N such nodes as one cluster, with the cluster fault injectors
//! (CLU001–CLU006): see [`cluster`].
//!
//! With `.dual_stack(true)` every pod also has an IPv6 address, every service an
//! IPv6 ClusterIP programmed by an IPv6 kube-proxy (ip6tables or `table ip6
//! kube-proxy`): see [`dual_stack`].
//!
//! # How pod identity is discoverable (as on a real node)
//!
//! Each pod has a long-lived process ([`Pod::pid`], image `sleep`, the pod's
//! "pause"): `nsenter --net=<pod netns> unshare --uts --mount` with hostname =
//! pod name and the pod's own resolv.conf bind-mounted on /etc/resolv.conf, so
//! `/proc/<pid>/ns/net` is the pod netns and `/proc/<pid>/root/etc/resolv.conf`
//! is the pod's file. It and the pod's listeners live in the cgroup
//! `<hierarchy>/netsnap-lab-<lab>/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid with _>.slice/cri-containerd-<64 hex>.scope`
//! (systemd driver naming; hierarchy: cgroup v1 `pids` here, else the v2
//! tree), so `/proc/<pid>/cgroup` shows `pod<uid>` ([`Pod::cgroup_path`]).
//! [`Lab::host_root`] is a directory to pass to `netsnap-collect --host-root`:
//! `var/log/pods/<ns>_<name>_<uid>/<container>/0.log`, `etc/resolv.conf`
//! (node resolver 198.51.100.53), symlinks to the real `iptables*-save`, `nft`,
//! `ipset`, `conntrack`, `ip` at their usual paths (no `crictl`), and
//! `proc -> /proc`, `run/netns -> /run/netns`.
//!
//! # Teardown and leaks
//!
//! [`Lab::teardown`] (also run by `Drop`, so on panic too) kills every process
//! in the lab's cgroup by PID, deletes its netns, cgroups and
//! `/run/netsnap-lab-<lab>`. Take [`Lab::footprint`] first and check it with
//! [`assert_no_leaks`]. Labs left by a killed test process are removed by the
//! next `build()` ([`cleanup_stale`]).
//!
//! # Fault injectors
//!
//! One `fault_*` method each, usable alone or together; each records an
//! [`InjectedFault`] (with the finding ID the analyzer should raise) in
//! [`Lab::faults`] and `lab.json`. See `faults.rs` for the list.
//!
//! # Mutations
//!
//! [`mutate`]: random, seeded, revertible changes of the node's rules, links and
//! routes ([`Lab::random_mutation`], [`mutate::Mutation::apply`] / `revert`,
//! [`Lab::mutable_state`] to check a revert), for the trace engine's differential
//! test under mutations.

pub mod cilium;
mod cleanup;
pub mod cluster;
mod cmd;
pub mod cni;
mod conntrack;
pub mod dual_stack;
mod faults;
pub mod flannel;
mod icmp;
pub mod ipvs;
pub mod kube_proxy;
mod model;
pub mod mutate;
pub mod netns;
pub mod nft;
mod pod;
pub mod probe;
mod require;
pub mod server;
mod traffic;

pub use cleanup::{
    assert_no_leaks, cleanup_stale, lab_dir, leaks, owner_record, teardown_by_name, Footprint,
    MANUAL_PREFIX, TEST_PREFIX,
};
pub use cmd::{ok_json, ok_stdout};
pub use cni::CniMode;
pub use faults::{conntrack_stat, table_full_logged};
pub use model::{InjectedFault, Pod, Protocol, ProxyMode, Service, ServiceV6};
pub use require::{may_run, require_lab, unavailable_reason, LabEnv};

use anyhow::{bail, ensure, Context, Result};
use ipnet::Ipv4Net;
use pod::Cgroups;
use serde::{Deserialize, Serialize};
use server::Reply;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Once;

/// The uplink address of node 1 (every lab but the second node of a pair).
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const NODE_RESOLVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
pub const CLUSTER_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// Target port of workload service `i` is `TARGET_PORT_BASE + i`.
pub const TARGET_PORT_BASE: u16 = 20000;
/// At most this many service ports get a request when `traffic(true)`.
const TRAFFIC_MAX_SERVICES: usize = 200;

/// The uplink address of node `n` (198.51.100.(1+n); `n` is at most 200).
pub fn node_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, n.saturating_add(1))
}

/// Lab options (see [`LabBuilder`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    pub prefix: String,
    pub pods: usize,
    pub services: usize,
    pub endpoints_per_service: usize,
    pub bridge: String,
    pub proxy_mode: ProxyMode,
    pub cluster_dns: bool,
    pub traffic: bool,
    pub listeners: bool,
    /// `scripts/lab`: fixed name `nsm-<prefix>`, survives the process.
    pub manual: bool,
    /// Who wires the pods: the lab's own `ip` commands or the CNI reference plugins.
    #[serde(default)]
    pub cni: CniMode,
    /// IPv6 beside IPv4 for pods, services and the node (see [`dual_stack`]).
    #[serde(default)]
    pub dual_stack: bool,
    /// Node number `n` of a multi-node lab: node IP 198.51.100.(1+n), pod subnet
    /// 10.244.n.0/24 (1, the default: the single node's addresses).
    #[serde(default = "first_node")]
    pub node: u8,
    /// The upstream netns of another lab this node's uplink joins (a second node
    /// of a [`flannel::FlannelPair`]); `None`: the lab makes its own `<lab>.up`.
    #[serde(default)]
    pub join_upstream: Option<String>,
}

fn first_node() -> u8 {
    1
}

/// Builder for [`Lab`]; defaults: 4 pods, 4 services, 2 endpoints each,
/// bridge `cni0`, iptables mode, cluster DNS, listeners and traffic on.
#[derive(Clone, Debug)]
pub struct LabBuilder {
    cfg: Config,
}

impl LabBuilder {
    pub fn pods(mut self, n: usize) -> Self {
        self.cfg.pods = n;
        self
    }
    pub fn services(mut self, n: usize) -> Self {
        self.cfg.services = n;
        self
    }
    pub fn endpoints_per_service(mut self, n: usize) -> Self {
        self.cfg.endpoints_per_service = n;
        self
    }
    pub fn bridge_name(mut self, name: &str) -> Self {
        self.cfg.bridge = name.to_string();
        self
    }
    pub fn proxy_mode(mut self, m: ProxyMode) -> Self {
        self.cfg.proxy_mode = m;
        self
    }
    /// A kube-dns service (10.96.0.10:53 udp+tcp) backed by a coredns pod
    /// running a resolver stub.
    pub fn cluster_dns(mut self, on: bool) -> Self {
        self.cfg.cluster_dns = on;
        self
    }
    /// One bounded request through every service VIP (up to 200), so the
    /// node's conntrack holds DNAT entries (their timeouts are raised to 1 h).
    pub fn traffic(mut self, on: bool) -> Self {
        self.cfg.traffic = on;
        self
    }
    /// Listeners in endpoint pods (on by default; off for rule-only big labs,
    /// which also turns traffic off).
    pub fn listeners(mut self, on: bool) -> Self {
        self.cfg.listeners = on;
        self
    }
    /// Wire the pods with the CNI reference plugins ([`CniMode::Bridge`],
    /// [`CniMode::Ptp`]; see [`cni`]) instead of the lab's own `ip` commands.
    pub fn cni(mut self, mode: CniMode) -> Self {
        self.cfg.cni = mode;
        self
    }
    /// Pods and services in IPv4 and IPv6 ([`dual_stack`]); hand-built or
    /// [`CniMode::Bridge`] pods.
    pub fn dual_stack(mut self, on: bool) -> Self {
        self.cfg.dual_stack = on;
        self
    }
    /// Make this lab node `n` of several (see [`Config::node`]).
    pub fn node_index(mut self, n: u8) -> Self {
        self.cfg.node = n;
        self
    }
    /// Plug this node's uplink into `other`'s upstream netns instead of a new one,
    /// so the two nodes reach each other (the upstream routes between them).
    pub fn join_upstream(mut self, other: &Lab) -> Self {
        self.cfg.join_upstream = Some(other.up_ns.clone());
        self
    }
    /// Name the lab `nsm-<prefix>` and keep it when the process exits
    /// (for `scripts/lab`; tear down with [`teardown_by_name`]).
    pub fn manual(mut self, on: bool) -> Self {
        self.cfg.manual = on;
        self
    }

    pub fn build(self) -> Result<Lab> {
        static STALE: Once = Once::new();
        STALE.call_once(|| {
            for name in cleanup_stale() {
                eprintln!("lab: removed stale lab {name} left by a dead process");
            }
        });
        if let Some(r) = unavailable_reason() {
            bail!("the lab cannot run here: {r}");
        }
        let cfg = self.cfg;
        validate(&cfg)?;
        let name = if cfg.manual {
            format!("{MANUAL_PREFIX}{}", cfg.prefix)
        } else {
            format!("{TEST_PREFIX}{}-{}", cfg.prefix, pod::random_hex(6))
        };
        let dir = cleanup::lab_dir(&name);
        if dir.exists() {
            bail!("lab {name} already exists ({} is there)", dir.display());
        }
        fs::create_dir_all(dir.join("logs")).with_context(|| format!("mkdir {}", dir.display()))?;
        let owner = if cfg.manual {
            "manual".to_string()
        } else {
            cleanup::owner_record()
        };
        fs::write(dir.join("owner"), owner)?;
        let cgroups = Cgroups::for_lab(&name)?;
        let net = Net::new(cfg.pods + usize::from(cfg.cluster_dns), cfg.node);
        let mut lab = Lab {
            node_ns: format!("{name}.node"),
            up_ns: cfg
                .join_upstream
                .clone()
                .unwrap_or_else(|| format!("{name}.up")),
            host_root: dir.join("host"),
            name,
            cfg,
            dir,
            cgroups,
            net,
            pods: Vec::new(),
            rt: Vec::new(),
            services: Vec::new(),
            faults: Vec::new(),
            held_netns: Vec::new(),
            ipvs: ipvs::IpvsFaults::default(),
            spawned_pids: Vec::new(),
            torn_down: false,
        };
        // From here on, an error drops `lab`, which tears down what was built.
        let name = lab.name.clone();
        lab.setup()
            .with_context(|| format!("building lab {name}"))?;
        Ok(lab)
    }
}

fn validate(cfg: &Config) -> Result<()> {
    ensure!(
        !cfg.prefix.is_empty()
            && cfg.prefix.len() <= 24
            && cfg
                .prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "lab name {:?}: use 1-24 chars of [a-z0-9-]",
        cfg.prefix
    );
    ensure!(cfg.pods >= 1 && cfg.pods <= 60000, "pods must be 1..=60000");
    ensure!(
        (1..=200).contains(&cfg.node)
            && (cfg.node == 1 || cfg.pods + usize::from(cfg.cluster_dns) <= 250),
        "node must be 1..=200 (nodes above 1 get one /24: at most 250 pods)"
    );
    ensure!(
        cfg.join_upstream.is_none() || cfg.node > 1,
        "a lab joining another's upstream must be node 2 or above"
    );
    ensure!(cfg.services <= 40000, "services must be at most 40000");
    ensure!(
        cfg.endpoints_per_service <= cfg.pods,
        "endpoints_per_service ({}) exceeds pods ({})",
        cfg.endpoints_per_service,
        cfg.pods
    );
    cni::validate(cfg.cni, cfg.pods + usize::from(cfg.cluster_dns))?;
    dual_stack::validate(cfg)?;
    ensure!(
        !cfg.bridge.is_empty()
            && cfg.bridge.len() <= 15
            && cfg.bridge != "eth0"
            && cfg.bridge != "lo",
        "bad bridge name {:?}",
        cfg.bridge
    );
    Ok(())
}

/// Pod addressing: the bridge's address within the pod subnet (`10.244.1.1/24`).
#[derive(Clone, Debug)]
struct Net {
    bridge: Ipv4Net,
}

impl Net {
    fn new(total_pods: usize, node: u8) -> Net {
        let bridge = if total_pods <= 250 || node > 1 {
            Ipv4Net::new_assert(Ipv4Addr::new(10, 244, node, 1), 24)
        } else {
            Ipv4Net::new_assert(Ipv4Addr::new(10, 244, 0, 1), 16)
        };
        Net { bridge }
    }
    fn gateway(&self) -> Ipv4Addr {
        self.bridge.addr()
    }
    fn prefix_len(&self) -> u8 {
        self.bridge.prefix_len()
    }
    /// Pods are numbered from the address after the gateway.
    fn pod_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.gateway()) + 1 + i as u32)
    }
    fn pod_cidr(&self) -> String {
        self.bridge.trunc().to_string()
    }
}

/// Runtime handles of a pod (not part of the public model).
struct PodRt {
    cgroup_dir: PathBuf,
    process: Option<Child>,
    listeners: Vec<ListenerRt>,
    /// The sandbox as the CNI plugins saw it and the cached ADD result, while the
    /// pod is attached (CNI modes).
    cni: Option<(cni::Sandbox, cni::Attached)>,
}

struct ListenerRt {
    proto: Protocol,
    port: u16,
    child: Child,
}

/// Serialized to `<lab dir>/lab.json` for people and for `scripts/lab`.
#[derive(Serialize)]
struct State<'a> {
    name: &'a str,
    config: &'a Config,
    node_netns: &'a str,
    upstream_netns: &'a str,
    host_root: &'a Path,
    pod_cidr: String,
    pods: &'a [Pod],
    services: &'a [Service],
    faults: &'a [InjectedFault],
}

/// A running lab. Dropping it tears it down.
pub struct Lab {
    name: String,
    cfg: Config,
    dir: PathBuf,
    host_root: PathBuf,
    cgroups: Cgroups,
    node_ns: String,
    up_ns: String,
    net: Net,
    pods: Vec<Pod>,
    rt: Vec<PodRt>,
    services: Vec<Service>,
    faults: Vec<InjectedFault>,
    /// Netns kept alive only by these fds (pod "deleted" but its netns leaked).
    held_netns: Vec<fs::File>,
    /// IPVS mode: service ports whose sync kube-proxy "failed" (faults).
    ipvs: ipvs::IpvsFaults,
    /// Every PID the lab started, for the leak check.
    spawned_pids: Vec<u32>,
    torn_down: bool,
}

impl Lab {
    /// Starts a lab description; `prefix` names it (a unique suffix is added).
    pub fn builder(prefix: &str) -> LabBuilder {
        LabBuilder {
            cfg: Config {
                prefix: prefix.to_string(),
                pods: 4,
                services: 4,
                endpoints_per_service: 2,
                bridge: "cni0".into(),
                proxy_mode: ProxyMode::Iptables,
                cluster_dns: true,
                traffic: true,
                listeners: true,
                manual: false,
                cni: CniMode::HandBuilt,
                dual_stack: false,
                node: 1,
                join_upstream: None,
            },
        }
    }

    // ---- accessors -------------------------------------------------------

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn node_netns_name(&self) -> &str {
        &self.node_ns
    }
    pub fn node_netns_path(&self) -> PathBuf {
        netns::path(&self.node_ns)
    }
    pub fn upstream_netns_name(&self) -> &str {
        &self.up_ns
    }
    /// Prefix of every netns name of this lab (`<lab>.`).
    pub fn netns_prefix(&self) -> String {
        cleanup::netns_prefix(&self.name)
    }
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }
    pub fn services(&self) -> &[Service] {
        &self.services
    }
    /// The coredns pod, when built with cluster DNS.
    pub fn dns_pod(&self) -> Option<&Pod> {
        self.cfg.cluster_dns.then(|| &self.pods[self.cfg.pods])
    }
    /// Indices in [`Lab::services`] of the kube-dns ports (udp `dns`, tcp `dns-tcp`).
    pub fn dns_service_indices(&self) -> Vec<usize> {
        (self.cfg.services..self.services.len()).collect()
    }
    pub fn host_root(&self) -> &Path {
        &self.host_root
    }
    /// `/run/netsnap-lab-<lab>`: host root, pod resolv.conf files, logs, lab.json.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn bridge_name(&self) -> &str {
        &self.cfg.bridge
    }
    pub fn proxy_mode(&self) -> ProxyMode {
        self.cfg.proxy_mode
    }
    pub fn cni_mode(&self) -> CniMode {
        self.cfg.cni
    }
    /// `<host root>/etc/cni/net.d/10-lab-<mode>.conflist` (CNI modes).
    pub fn cni_conflist_path(&self) -> Option<PathBuf> {
        (self.cfg.cni != CniMode::HandBuilt).then(|| {
            self.host_root
                .join("etc/cni/net.d")
                .join(self.cfg.cni.conflist_file())
        })
    }
    /// The node's uplink address ([`NODE_IP`] for node 1).
    pub fn node_address(&self) -> Ipv4Addr {
        node_ip(self.cfg.node)
    }
    pub fn gateway_ip(&self) -> Ipv4Addr {
        self.net.gateway()
    }
    pub fn pod_cidr(&self) -> String {
        self.net.pod_cidr()
    }
    /// The kubepods cgroup subtree of this lab.
    pub fn cgroup_root(&self) -> &Path {
        &self.cgroups.lab_root
    }
    /// Faults injected so far, in order.
    pub fn faults(&self) -> &[InjectedFault] {
        &self.faults
    }

    /// What must be gone after teardown (see [`assert_no_leaks`]).
    pub fn footprint(&self) -> Footprint {
        let mut link_names: Vec<String> = self.pods.iter().map(|p| p.host_veth.clone()).collect();
        if matches!(
            self.cfg.cni,
            CniMode::HandBuilt | CniMode::Bridge | CniMode::Flannel
        ) {
            link_names.push(self.cfg.bridge.clone());
        }
        if self.cfg.proxy_mode == ProxyMode::Ipvs {
            link_names.push(ipvs::KUBE_IPVS0.into());
        }
        if self.cfg.cni == CniMode::Flannel {
            link_names.push(flannel::VXLAN_DEVICE.to_string());
        }
        Footprint {
            lab_name: self.name.clone(),
            netns_prefix: self.netns_prefix(),
            cgroup_root: self.cgroups.lab_root.clone(),
            lab_dir: self.dir.clone(),
            pids: self.spawned_pids.clone(),
            link_names,
        }
    }

    // ---- running things --------------------------------------------------

    /// Runs a command in the node netns (`ip netns exec`); panics only if it
    /// cannot be started at all.
    pub fn node(&self, args: &[&str]) -> Output {
        self.try_node(args)
            .expect("running a command in the lab node netns")
    }

    pub fn try_node(&self, args: &[&str]) -> Result<Output> {
        cmd::output(&mut netns::exec(&self.node_ns, args))
    }

    /// Runs a command inside pod `i` (its netns, UTS and mount namespace, so
    /// `hostname` and `cat /etc/resolv.conf` show the pod's). /sys is still the
    /// host's and shows the root netns: use `ip`, not /sys/class/net.
    pub fn pod_exec(&self, i: usize, args: &[&str]) -> Output {
        self.try_pod_exec(i, args)
            .expect("running a command in a lab pod")
    }

    pub fn try_pod_exec(&self, i: usize, args: &[&str]) -> Result<Output> {
        let p = self.pod(i)?;
        ensure!(!p.deleted, "pod {i} ({}) was deleted", p.name);
        let pid = p.pid.to_string();
        cmd::output(
            Command::new("nsenter")
                .args(["-t", &pid, "-n", "-u", "-m", "--"])
                .args(args),
        )
    }

    /// A TCP request from pod `from` to `to`; returns what the server sent.
    pub fn tcp_request(&self, from: usize, to: SocketAddrV4) -> Result<String> {
        let reply = self.request(from, Protocol::Tcp, to, Vec::new())?;
        Ok(String::from_utf8_lossy(&reply).trim().to_string())
    }

    /// Sends `count` UDP datagrams from pod `from` to `to` without waiting for an
    /// answer (one socket: one flow). Bounded by `count`.
    pub fn udp_send(&self, from: usize, to: SocketAddrV4, count: usize) -> Result<()> {
        let p = self.pod(from)?;
        ensure!(!p.deleted, "pod {from} ({}) was deleted", p.name);
        traffic::udp_send(&p.netns_path, to, count)
    }

    /// A UDP request from pod `from` to `to`; returns the reply datagram.
    pub fn udp_request(&self, from: usize, to: SocketAddrV4, payload: &[u8]) -> Result<Vec<u8>> {
        self.request(from, Protocol::Udp, to, payload.to_vec())
    }

    /// One request to service `svc`'s VIP from pod `from`; returns the reply
    /// (an endpoint pod name for workload services).
    pub fn service_request(&self, from: usize, svc: usize) -> Result<String> {
        let s = self.service(svc)?;
        let payload = self.payload_for(svc);
        let reply = self.request(from, s.protocol, s.vip(), payload)?;
        Ok(String::from_utf8_lossy(&reply).trim().to_string())
    }

    fn request(
        &self,
        from: usize,
        proto: Protocol,
        to: SocketAddrV4,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let p = self.pod(from)?;
        ensure!(!p.deleted, "pod {from} ({}) was deleted", p.name);
        traffic::requests(&p.netns_path, vec![(proto, to.into(), payload)])?
            .pop()
            .context("no result")?
    }

    /// One ICMP echo from pod `from` to `to` (bounded by 2 s); the round trip.
    pub fn ping(&self, from: usize, to: Ipv4Addr) -> Result<std::time::Duration> {
        let p = self.pod(from)?;
        ensure!(!p.deleted, "pod {from} ({}) was deleted", p.name);
        icmp::ping(&p.netns_path, to, std::time::Duration::from_secs(2))
    }

    /// `conntrack -L` of the node netns (stdout).
    pub fn conntrack_list(&self) -> Result<String> {
        cmd::stdout(&mut netns::exec(&self.node_ns, &["conntrack", "-L"]))
    }

    /// `iptables-save` of the node netns for the nft (`false`) or legacy (`true`) backend.
    pub fn iptables_save(&self, legacy: bool) -> Result<String> {
        let tool = if legacy {
            "iptables-legacy-save"
        } else {
            "iptables-nft-save"
        };
        cmd::stdout(&mut netns::exec(&self.node_ns, &[tool]))
    }

    /// Tears the lab down now (Drop would do it too) and reports errors.
    pub fn teardown(mut self) -> Result<()> {
        self.teardown_inner()
    }

    /// Keeps the lab after this value is gone (`scripts/lab up`); remove it
    /// later with [`teardown_by_name`]. Only for `manual(true)` labs.
    pub fn persist(mut self) -> Result<String> {
        ensure!(self.cfg.manual, "only manual labs can be kept");
        ensure!(
            self.held_netns.is_empty(),
            "a lab holding leaked netns by fd cannot be kept"
        );
        self.torn_down = true;
        Ok(self.name.clone())
    }

    fn pod(&self, i: usize) -> Result<&Pod> {
        self.pods
            .get(i)
            .with_context(|| format!("no pod {i} (lab has {})", self.pods.len()))
    }

    fn service(&self, i: usize) -> Result<&Service> {
        self.services
            .get(i)
            .with_context(|| format!("no service {i} (lab has {})", self.services.len()))
    }

    // ---- building --------------------------------------------------------

    fn setup(&mut self) -> Result<()> {
        self.setup_node()?;
        // flanneld comes up before pods can be wired: its plugin needs subnet.env.
        if self.cfg.cni == CniMode::Flannel {
            self.flannel_up()?;
        }
        self.setup_pods()?;
        self.setup_host_root()?;
        self.start_pod_processes()?;
        self.setup_services();
        if self.cfg.dual_stack {
            self.setup_services_v6();
        }
        self.load_proxy_rules()?;
        if self.cfg.listeners {
            self.start_listeners()?;
            if self.cfg.traffic {
                self.run_traffic()?;
            }
        }
        self.save_state()
    }

    fn ip_batch(ns: &str, lines: &str) -> Result<()> {
        cmd::run_stdin(&mut netns::ip(ns, &["-batch", "-"]), Some(lines.as_bytes()))
            .with_context(|| format!("configuring netns {ns}"))?;
        Ok(())
    }

    fn setup_node(&mut self) -> Result<()> {
        netns::add(&self.node_ns)?;
        let node_ip = self.node_address();
        let (node, up) = (&self.node_ns, &self.up_ns);
        // The upstream's end of this node's uplink: `eth0` in its own upstream,
        // `eth<n-1>` when it joins another lab's.
        let up_if = if self.cfg.join_upstream.is_some() {
            format!("eth{}", self.cfg.node - 1)
        } else {
            netns::add(up)?;
            "eth0".to_string()
        };
        // Before any address exists: no DAD anywhere in the lab (a joined upstream is
        // the first node's, already set).
        if self.cfg.dual_stack {
            if self.cfg.join_upstream.is_none() {
                dual_stack::no_dad(up)?;
            }
            dual_stack::no_dad(node)?;
        }
        cmd::run(&mut netns::ip(
            node,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", &up_if, "netns", up,
            ],
        ))
        .context("creating the uplink veth")?;
        if self.cfg.join_upstream.is_some() {
            self.join_upstream_router(&up_if)?;
        } else {
            Self::ip_batch(
                up,
                &format!(
                    "link set lo up\naddr add {UPSTREAM_IP}/24 dev eth0\nlink set eth0 up\n\
                     route add {CLUSTER_CIDR} via {node_ip}\n"
                ),
            )?;
        }
        let br = &self.cfg.bridge;
        // The CNI bridge plugin makes its bridge itself; ptp has none.
        let bridge = if self.cfg.cni == CniMode::HandBuilt {
            format!(
                "link add {br} type bridge\nlink set {br} mtu 1500\n\
                 addr add {}/{} dev {br}\nlink set {br} up\n",
                self.net.gateway(),
                self.net.prefix_len()
            )
        } else {
            String::new()
        };
        Self::ip_batch(
            node,
            &format!(
                "link set lo up\naddr add {node_ip}/24 dev eth0\nlink set eth0 up\n\
                 route add default via {UPSTREAM_IP}\n{bridge}"
            ),
        )?;
        if self.cfg.dual_stack {
            self.setup_node_v6()?;
        }
        netns::sysctl_set(node, "net/ipv4/ip_forward", "1")?;
        netns::sysctl_set(node, "net/bridge/bridge-nf-call-iptables", "1")?;
        netns::sysctl_set(node, "net/bridge/bridge-nf-call-ip6tables", "1")?;
        Ok(())
    }

    /// A second node's uplink in the first node's upstream: the upstream routes
    /// this node's address and pod subnet to `up_if` and answers ARP for the other
    /// node on each side (proxy ARP), so nodes of one /24 reach each other through it.
    fn join_upstream_router(&self, up_if: &str) -> Result<()> {
        let up = &self.up_ns;
        Self::ip_batch(
            up,
            &format!(
                "link set {up_if} up\nroute add {}/32 dev {up_if}\nroute add {} via {}\n",
                self.node_address(),
                self.net.pod_cidr(),
                self.node_address()
            ),
        )?;
        netns::sysctl_set(up, "net/ipv4/ip_forward", "1")?;
        for i in ["eth0", up_if] {
            netns::sysctl_set(up, &format!("net/ipv4/conf/{i}/proxy_arp"), "1")?;
        }
        Ok(())
    }

    fn setup_pods(&mut self) -> Result<()> {
        let total = self.cfg.pods + usize::from(self.cfg.cluster_dns);
        for i in 0..total {
            let dns = i == self.cfg.pods;
            let (namespace, name, container) = if dns {
                (
                    "kube-system".to_string(),
                    "coredns-0".to_string(),
                    "coredns",
                )
            } else {
                ("default".to_string(), self.workload_pod_name(i), "web")
            };
            let uid = pod::random_uid();
            let container_id = pod::random_hex(64);
            let cgroup_dir = self.cgroups.pod_dir(&uid, &container_id);
            let netns_name = format!("{}.pod{i}", self.name);
            let resolv_conf = if dns {
                self.node_resolv_conf()
            } else {
                pod_resolv_conf(&namespace)
            };
            self.pods.push(Pod {
                log_dir: self
                    .host_root
                    .join("var/log/pods")
                    .join(format!("{namespace}_{name}_{uid}")),
                cgroup_path: self.cgroups.as_proc_path(&cgroup_dir),
                netns_path: netns::path(&netns_name),
                netns_name,
                ip: self.net.pod_ip(i),
                ip6: None,
                host_veth: match self.cfg.cni {
                    CniMode::CalicoRouted => format!("cali{}", pod::random_hex(11)),
                    CniMode::CiliumShape => format!("lxc{}", pod::random_hex(12)),
                    _ => format!("veth{}", pod::random_hex(8)),
                },
                pid: 0,
                hostname: name.clone(),
                resolv_conf,
                listen_ports: Vec::new(),
                udp_ports: Vec::new(),
                namespace,
                name,
                uid,
                container: container.to_string(),
                container_id,
                deleted: false,
            });
            self.rt.push(PodRt {
                cgroup_dir,
                process: None,
                listeners: Vec::new(),
                cni: None,
            });
        }
        if self.cfg.cni.runs_plugins() {
            return self.cni_attach_pods();
        }
        match self.cfg.cni {
            CniMode::CalicoRouted => return self.calico_attach_pods(),
            CniMode::CiliumShape => return self.cilium_attach_pods(),
            _ => {}
        }
        let mut node_batch = String::new();
        for p in &self.pods {
            netns::add(&p.netns_name)?;
            if self.cfg.dual_stack {
                dual_stack::no_dad(&p.netns_name)?;
            }
            let v = &p.host_veth;
            let _ = writeln!(
                node_batch,
                "link add {v} type veth peer name eth0 netns {}\nlink set {v} master {}\n\
                 link set {v} type bridge_slave hairpin on\nlink set {v} up",
                p.netns_name, self.cfg.bridge
            );
        }
        Self::ip_batch(&self.node_ns, &node_batch)?;
        for p in &self.pods {
            Self::ip_batch(
                &p.netns_name,
                &format!(
                    "link set lo up\naddr add {}/{} dev eth0\nlink set eth0 up\n\
                     route add default via {} dev eth0\n",
                    p.ip,
                    self.net.prefix_len(),
                    self.net.gateway()
                ),
            )?;
        }
        if self.cfg.dual_stack {
            self.setup_pods_v6()?;
        }
        Ok(())
    }

    /// `web-<i>`; on node `n` > 1 `web-n<n>-<i>` (pod names are unique in a cluster).
    fn workload_pod_name(&self, i: usize) -> String {
        match self.cfg.node {
            1 => format!("web-{i}"),
            n => format!("web-n{n}-{i}"),
        }
    }

    fn node_resolv_conf(&self) -> String {
        format!("nameserver {NODE_RESOLVER}\nsearch lab.internal\n")
    }

    fn setup_host_root(&mut self) -> Result<()> {
        let root = &self.host_root;
        for d in ["etc", "var/log/pods", "usr/sbin", "usr/bin", "run"] {
            fs::create_dir_all(root.join(d))?;
        }
        fs::write(root.join("etc/resolv.conf"), self.node_resolv_conf())?;
        std::os::unix::fs::symlink("/proc", root.join("proc"))?;
        std::os::unix::fs::symlink("/run/netns", root.join("run/netns"))?;
        for tool in [
            "iptables-save",
            "iptables-legacy-save",
            "iptables-nft-save",
            "ip6tables-save",
            "ip6tables-legacy-save",
            "ip6tables-nft-save",
            "nft",
            "ipset",
            "conntrack",
            "ip",
        ] {
            if let Some(real) = cmd::which(tool) {
                let under = if real.starts_with("/usr/bin") || real.starts_with("/bin") {
                    "usr/bin"
                } else {
                    "usr/sbin"
                };
                std::os::unix::fs::symlink(&real, root.join(under).join(tool))?;
            }
        }
        for p in &self.pods {
            let cdir = p.log_dir.join(&p.container);
            fs::create_dir_all(&cdir)?;
            fs::write(cdir.join("0.log"), "")?;
        }
        Ok(())
    }

    fn resolv_path(&self, i: usize) -> PathBuf {
        let p = &self.pods[i];
        self.dir
            .join("pods")
            .join(format!("{}_{}", p.namespace, p.name))
            .join("resolv.conf")
    }

    fn start_pod_processes(&mut self) -> Result<()> {
        // Start all, then wait for all: the waits overlap.
        for i in 0..self.pods.len() {
            let resolv = self.resolv_path(i);
            fs::create_dir_all(resolv.parent().context("resolv dir")?)?;
            fs::write(&resolv, &self.pods[i].resolv_conf)?;
            let log = self.dir.join("logs").join(format!("pod{i}.log"));
            let child = pod::start_pod_process(
                &self.rt[i].cgroup_dir,
                &log,
                &self.pods[i].netns_path,
                &self.pods[i].hostname,
                &resolv,
            )?;
            self.pods[i].pid = child.id();
            self.spawned_pids.push(child.id());
            self.rt[i].process = Some(child);
        }
        for i in 0..self.pods.len() {
            let log = self.dir.join("logs").join(format!("pod{i}.log"));
            let what = format!("pod process of {}", self.pods[i].name);
            let child = self.rt[i].process.as_mut().context("pod process")?;
            pod::wait_pod_ready(child, &log, &what)?;
        }
        Ok(())
    }

    fn setup_services(&mut self) {
        let n = self.cfg.pods;
        let k = self.cfg.endpoints_per_service;
        for i in 0..self.cfg.services {
            let (proto, port_name, port) = if i % 4 == 3 {
                (Protocol::Udp, "echo", 7)
            } else {
                (Protocol::Tcp, "http", 80)
            };
            let target = TARGET_PORT_BASE + i as u16;
            let endpoints = (0..k)
                .map(|j| SocketAddrV4::new(self.pods[(i * k + j) % n].ip, target))
                .collect();
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 1, 1)) + i as u32);
            self.services.push(Service::new(
                "default",
                &format!("svc-{i}"),
                port_name,
                proto,
                SocketAddrV4::new(ip, port),
                target,
                endpoints,
            ));
        }
        if let Some(dns_ip) = self.dns_pod().map(|p| p.ip) {
            let ep = vec![SocketAddrV4::new(dns_ip, 53)];
            for (port_name, proto) in [("dns", Protocol::Udp), ("dns-tcp", Protocol::Tcp)] {
                self.services.push(Service::new(
                    "kube-system",
                    "kube-dns",
                    port_name,
                    proto,
                    SocketAddrV4::new(CLUSTER_DNS_IP, 53),
                    53,
                    ep.clone(),
                ));
            }
        }
    }

    /// (Re)loads kube-proxy's rules for the current services, replacing the
    /// previous ones (iptables-restore without --noflush; nft transaction that
    /// replaces `table ip kube-proxy`).
    pub fn load_proxy_rules(&mut self) -> Result<()> {
        for s in &mut self.services {
            s.refresh_chains();
        }
        // Cilium replaces kube-proxy.
        if self.cfg.cni == CniMode::CiliumShape {
            return self.load_cilium_datapath();
        }
        match self.cfg.proxy_mode {
            ProxyMode::Iptables => {
                let rules = kube_proxy::render_iptables(&self.services, CLUSTER_CIDR);
                self.restore_iptables(false, &rules)?;
            }
            ProxyMode::Nftables => {
                let script = nft::render(
                    &self.services,
                    SERVICE_CIDR,
                    CLUSTER_CIDR,
                    &self.node_address().to_string(),
                );
                fs::write(self.dir.join("kube-proxy.nft"), &script)?;
                cmd::run_stdin(
                    &mut netns::exec(&self.node_ns, &["nft", "-f", "-"]),
                    Some(script.as_bytes()),
                )
                .context("loading table ip kube-proxy (the script is in the lab dir)")?;
            }
            ProxyMode::Ipvs => self.load_ipvs()?,
        }
        if self.cfg.dual_stack {
            self.load_proxy_rules_v6()?;
        }
        Ok(())
    }

    fn restore_iptables(&self, legacy: bool, rules: &str) -> Result<()> {
        let tool = if legacy {
            "iptables-legacy-restore"
        } else {
            "iptables-nft-restore"
        };
        // The restore replaces whole tables: keep what the CNI plugins (which use
        // `iptables`, the nft backend here) put there.
        let merged;
        let rules = if !legacy && self.cfg.cni.runs_plugins() {
            let saved = cmd::stdout(&mut netns::exec(&self.node_ns, &["iptables-nft-save"]))?;
            merged = cni::keep_cni_rules(rules, &saved);
            merged.as_str()
        } else {
            rules
        };
        fs::write(self.dir.join(format!("{tool}.rules")), rules)?;
        cmd::run_stdin(
            &mut netns::exec(&self.node_ns, &[tool, "-w", "5"]),
            Some(rules.as_bytes()),
        )
        .with_context(|| format!("{tool} of the kube-proxy rules (the input is in the lab dir)"))?;
        Ok(())
    }

    fn start_listeners(&mut self) -> Result<()> {
        let mut wanted: Vec<(usize, Protocol, u16, Reply)> = Vec::new();
        for (si, s) in self.services.iter().enumerate() {
            let dns = si >= self.cfg.services;
            for ep in &s.endpoints {
                let Some(pi) = self.pods.iter().position(|p| p.ip == *ep.ip()) else {
                    continue;
                };
                if wanted
                    .iter()
                    .any(|w| w.0 == pi && w.1 == s.protocol && w.2 == ep.port())
                {
                    continue;
                }
                let reply = if dns {
                    Reply::Echo
                } else {
                    Reply::Text(self.pods[pi].name.clone())
                };
                wanted.push((pi, s.protocol, ep.port(), reply));
            }
        }
        let bin = server::binary();
        if bin.is_none() {
            eprintln!("lab: netsnap-lab binary not found (set NETSNAP_LAB_BIN); using socat, whose UDP mode can drop datagrams");
        }
        let mut started = Vec::new();
        for (pi, proto, port, reply) in wanted {
            let log = self.listener_log(pi, proto, port);
            let child = pod::start_listener(
                &self.rt[pi].cgroup_dir,
                &log,
                self.pods[pi].pid,
                proto,
                port,
                &reply,
                bin.as_deref(),
                self.pods[pi].ip6.is_some(),
            )?;
            self.spawned_pids.push(child.id());
            self.rt[pi]
                .listeners
                .push(ListenerRt { proto, port, child });
            started.push((pi, proto, port));
        }
        for (pi, proto, port) in started {
            let log = self.listener_log(pi, proto, port);
            let pid = self.pods[pi].pid;
            let l = self.rt[pi]
                .listeners
                .iter_mut()
                .find(|l| l.proto == proto && l.port == port)
                .context("listener")?;
            pod::wait_listening(&mut l.child, &log, pid, proto, port)?;
            let ports = match proto {
                Protocol::Tcp => &mut self.pods[pi].listen_ports,
                Protocol::Udp => &mut self.pods[pi].udp_ports,
            };
            ports.push(port);
            ports.sort_unstable();
        }
        Ok(())
    }

    fn listener_log(&self, pi: usize, proto: Protocol, port: u16) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("pod{pi}-{}-{port}.log", proto.lower()))
    }

    /// What a request to service `svc` carries: a DNS query for kube-dns
    /// (length-prefixed over TCP), nothing over TCP otherwise, a probe over UDP.
    pub fn payload_for(&self, svc: usize) -> Vec<u8> {
        let s = &self.services[svc];
        if svc >= self.cfg.services {
            let q = dns_query("kubernetes.default.svc.cluster.local");
            return match s.protocol {
                Protocol::Udp => q,
                Protocol::Tcp => {
                    let mut v = (q.len() as u16).to_be_bytes().to_vec();
                    v.extend(q);
                    v
                }
            };
        }
        match s.protocol {
            Protocol::Tcp => Vec::new(),
            Protocol::Udp => b"probe\n".to_vec(),
        }
    }

    /// A pod that is not an endpoint of `svc` (falls back to any live pod).
    fn client_for(&self, svc: usize) -> Result<usize> {
        let s = &self.services[svc];
        let n = self.pods.len();
        let live = |i: &usize| !self.pods[*i].deleted;
        (0..n)
            .map(|k| (svc * 7 + k) % n)
            .filter(live)
            .find(|&i| !s.endpoints.iter().any(|e| *e.ip() == self.pods[i].ip))
            .or_else(|| (0..n).find(live))
            .context("no live pod to send traffic from")
    }

    /// Checks `reply` is what service `svc`'s endpoints answer.
    fn check_reply(&self, svc: usize, payload: &[u8], reply: &[u8]) -> Result<()> {
        let s = &self.services[svc];
        if svc >= self.cfg.services {
            ensure!(
                reply == payload,
                "{}: DNS stub did not echo the query",
                s.port_name_string()
            );
            return Ok(());
        }
        let text = String::from_utf8_lossy(reply).trim().to_string();
        let ok = s
            .endpoints
            .iter()
            .any(|e| self.pods.iter().any(|p| p.ip == *e.ip() && p.name == text));
        ensure!(
            ok,
            "{} answered {text:?}, not one of its endpoint pods",
            s.port_name_string()
        );
        Ok(())
    }

    fn run_traffic(&mut self) -> Result<()> {
        let mut by_client: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); self.pods.len()];
        let with_eps: Vec<usize> = (0..self.services.len())
            .filter(|&i| !self.services[i].endpoints.is_empty())
            .collect();
        // Always include kube-dns; then workload services up to the cap.
        let dns = self.dns_service_indices();
        let chosen = dns
            .iter()
            .copied()
            .chain(with_eps.into_iter().filter(|i| !dns.contains(i)))
            .take(TRAFFIC_MAX_SERVICES);
        for svc in chosen {
            by_client[self.client_for(svc)?].push((svc, self.payload_for(svc)));
        }
        for (client, reqs) in by_client.into_iter().enumerate() {
            if reqs.is_empty() {
                continue;
            }
            let batch = reqs
                .iter()
                .map(|(svc, payload)| {
                    let s = &self.services[*svc];
                    (s.protocol, self.traffic_target(s).into(), payload.clone())
                })
                .collect();
            let results = traffic::requests(&self.pods[client].netns_path, batch)?;
            for ((svc, payload), res) in reqs.iter().zip(results) {
                let reply = res.with_context(|| {
                    format!(
                        "request from pod {} to {}",
                        self.pods[client].name,
                        self.services[*svc].port_name_string()
                    )
                })?;
                self.check_reply(*svc, payload, &reply)?;
            }
        }
        if self.cfg.dual_stack {
            self.run_traffic_v6()?;
        }
        self.extend_conntrack_timeouts()
    }

    /// Where a request for service `s` goes: its VIP, or (IPVS mode: no kernel IPVS
    /// here, a VIP is only a local address) its first endpoint.
    fn traffic_target(&self, s: &Service) -> SocketAddrV4 {
        match (self.cfg.proxy_mode, s.endpoints.first()) {
            (ProxyMode::Ipvs, Some(e)) => *e,
            _ => s.vip(),
        }
    }

    /// Raises the timeout of every TCP/UDP conntrack entry of the node to 1 h so
    /// the DNAT entries outlive a slow test (TIME_WAIT would expire in 120 s).
    fn extend_conntrack_timeouts(&self) -> Result<()> {
        for p in ["tcp", "udp"] {
            // Exit status is non-zero when nothing matched; that is fine.
            cmd::output(&mut netns::exec(
                &self.node_ns,
                &[
                    "conntrack",
                    "-U",
                    "-p",
                    p,
                    "--orig-dst",
                    SERVICE_CIDR,
                    "-t",
                    "3600",
                ],
            ))?;
        }
        Ok(())
    }

    /// Writes `<lab dir>/lab.json`.
    fn save_state(&self) -> Result<()> {
        let st = State {
            name: &self.name,
            config: &self.cfg,
            node_netns: &self.node_ns,
            upstream_netns: &self.up_ns,
            host_root: &self.host_root,
            pod_cidr: self.net.pod_cidr(),
            pods: &self.pods,
            services: &self.services,
            faults: &self.faults,
        };
        fs::write(self.dir.join("lab.json"), serde_json::to_vec_pretty(&st)?)?;
        Ok(())
    }

    // ---- teardown --------------------------------------------------------

    fn teardown_inner(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        // Our own children first, by PID, and reap them so none stays a zombie.
        for rt in &mut self.rt {
            for l in &mut rt.listeners {
                let _ = l.child.kill();
                let _ = l.child.wait();
            }
            if let Some(c) = rt.process.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.held_netns.clear();
        // As a runtime does before it removes a sandbox's netns; the netns go
        // whatever DEL says.
        for i in 0..self.pods.len() {
            if let Err(e) = self.cni_detach(i) {
                eprintln!("lab {}: {e:#}", self.name);
            }
        }
        teardown_by_name(&self.name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_inner() {
            eprintln!("lab {}: teardown failed: {e:#}", self.name);
        }
    }
}

/// kubelet's resolv.conf for a ClusterFirst pod.
fn pod_resolv_conf(namespace: &str) -> String {
    format!(
        "search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n\
         nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n"
    )
}

/// A minimal DNS query (A, IN, recursion desired) for `name`.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x4e, 0x53, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}
