//! Two lab nodes joined by a Flannel-style VXLAN overlay, in the shape flanneld (vxlan
//! backend) and flannel's CNI plugin leave a node (flannel-io/flannel
//! `pkg/backend/vxlan`, `pkg/trafficmngr/iptables`, `Documentation/kube-flannel.yml`;
//! flannel-io/cni-plugin `flannel_linux.go`).
//!
//! [`FlannelPair::build`] makes node A (198.51.100.2, pods 10.244.1.0/24, the kube-dns
//! pod) and node B (198.51.100.3, pods 10.244.2.0/24), B's uplink in A's upstream
//! netns ([`super::LabBuilder::join_upstream`]), pods wired with [`CniMode::Flannel`]:
//!
//! * `/etc/cni/net.d/10-flannel.conflist` as kube-flannel writes it (`flannel` with
//!   delegate `hairpinMode`, `isDefaultGateway`; `portmap`) and
//!   `/run/flannel/subnet.env` in the host root; the plugins actually run are what
//!   the flannel plugin delegates: `bridge` (cni0, isGateway, ipMasq off because
//!   flanneld masquerades, MTU 1450, host-local with the node's subnet and a route to
//!   the cluster CIDR) → `portmap`.
//! * `flannel.1`: VXLAN VNI 1, dstport 8472, `nolearning`, `local` = node IP on
//!   `eth0`, MTU = uplink − 50, address `10.244.X.0/32`.
//! * per peer: FDB `peer VTEP MAC → dst peer node IP` (self, permanent), neighbour
//!   `10.244.Y.0 → peer VTEP MAC` (permanent), route `10.244.Y.0/24 via 10.244.Y.0
//!   dev flannel.1 onlink`.
//! * flanneld's iptables rules (`--ip-masq`): nat `FLANNEL-POSTRTG`, filter
//!   `FLANNEL-FWD`.
//! * one set of cluster services on both nodes: each workload service has endpoints
//!   on both nodes, kube-dns's endpoint is on A; each node's kube-proxy rules send to
//!   the remote endpoints over the overlay.
//!
//! Teardown: each node is a [`Lab`] of its own (own netns prefix, cgroups, directory,
//! owner record), so teardown, the leak check and stale-lab cleanup cover both; B's
//! uplink goes with either netns.

use super::cni::CniMode;
use super::{cmd, netns, Footprint, Lab, LabBuilder, CLUSTER_CIDR};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The VXLAN device flanneld makes for VNI 1.
pub const VXLAN_DEVICE: &str = "flannel.1";
pub const VNI: u32 = 1;
/// The kernel's (and so flannel's) default VXLAN port when none is configured.
pub const VXLAN_PORT: u16 = 8472;
/// Outer Ethernet + IPv4 + UDP + VXLAN headers: flannel's MTU is the uplink's minus this.
pub const VXLAN_OVERHEAD: u32 = 50;
/// The uplink MTU of a lab node.
const UPLINK_MTU: u32 = 1500;
/// The MTU flanneld gives `flannel.1` and writes to subnet.env (the pods' MTU).
pub const OVERLAY_MTU: u32 = UPLINK_MTU - VXLAN_OVERHEAD;
/// kube-proxy's masquerade mark; flanneld leaves marked packets to kube-proxy.
const KUBE_PROXY_MARK: &str = "0x4000/0x4000";
/// Requests to a two-node service before giving up on hearing from both nodes
/// (each answer comes from either node with ~1/2 chance).
const SERVICE_TRIES: usize = 40;

/// `10-flannel.conflist` as kube-flannel's `cni-conf.json` writes it.
pub fn flannel_conflist() -> Value {
    json!({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            { "type": "flannel", "delegate": { "hairpinMode": true, "isDefaultGateway": true } },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    })
}

/// The chain the lab runs in flannel's place: the `bridge` configuration flannel's
/// plugin builds from its delegate and subnet.env (`doCmdAdd`, `getDelegateIPAM`),
/// then `portmap`. `ipam` is the lab's host-local section (subnet, lab-owned dataDir).
pub(super) fn delegated_conflist(mut ipam: Value) -> Value {
    // flannel's IPAM: only the subnet (host-local picks .1 as gateway) and a route
    // to the whole cluster network.
    if let Some(range) = ipam["ranges"][0][0].as_object_mut() {
        range.remove("gateway");
    }
    ipam["routes"] = json!([{ "dst": CLUSTER_CIDR }]);
    json!({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "bridge",
                "hairpinMode": true,
                "isDefaultGateway": true,
                // FLANNEL_IPMASQ=true: flanneld masquerades, so the bridge must not.
                "ipMasq": false,
                "mtu": OVERLAY_MTU,
                "isGateway": true,
                "ipam": ipam,
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    })
}

/// `/run/flannel/subnet.env` of a node whose gateway is `gateway`/`prefix`.
pub fn subnet_env(gateway: Ipv4Addr, prefix: u8) -> String {
    format!(
        "FLANNEL_NETWORK={CLUSTER_CIDR}\nFLANNEL_SUBNET={gateway}/{prefix}\n\
         FLANNEL_MTU={OVERLAY_MTU}\nFLANNEL_IPMASQ=true\n"
    )
}

/// flanneld's rules for a node with pod subnet `subnet` (`masqRules` with
/// --random-fully, `forwardRules`), as `iptables-restore --noflush` input.
pub fn iptables_rules(subnet: &str) -> String {
    let c = CLUSTER_CIDR;
    let masq = "-m comment --comment \"flanneld masq\"";
    let fwd = "-m comment --comment \"flanneld forward\"";
    format!(
        "*nat\n:FLANNEL-POSTRTG - [0:0]\n\
         -A POSTROUTING {masq} -j FLANNEL-POSTRTG\n\
         -A FLANNEL-POSTRTG -m mark --mark {KUBE_PROXY_MARK} {masq} -j RETURN\n\
         -A FLANNEL-POSTRTG -s {subnet} -d {c} {masq} -j RETURN\n\
         -A FLANNEL-POSTRTG -s {c} -d {subnet} {masq} -j RETURN\n\
         -A FLANNEL-POSTRTG ! -s {c} -d {subnet} {masq} -j RETURN\n\
         -A FLANNEL-POSTRTG -s {c} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully\n\
         -A FLANNEL-POSTRTG ! -s {c} -d {c} {masq} -j MASQUERADE --random-fully\n\
         COMMIT\n\
         *filter\n:FLANNEL-FWD - [0:0]\n\
         -A FORWARD {fwd} -j FLANNEL-FWD\n\
         -A FLANNEL-FWD -s {c} {fwd} -j ACCEPT\n\
         -A FLANNEL-FWD -d {c} {fwd} -j ACCEPT\n\
         COMMIT\n"
    )
}

/// A node's VXLAN endpoint as its peers learn it (flannel's lease attributes).
#[derive(Clone, Debug)]
pub struct Vtep {
    pub node_ip: Ipv4Addr,
    /// The node's pod subnet (`10.244.X.0/24`); its network address is the VTEP's.
    pub subnet: ipnet::Ipv4Net,
    pub mac: String,
}

impl Lab {
    /// subnet.env into the host root; returns the conflist kubelet sees.
    pub(super) fn write_flannel_evidence(&self) -> Result<Value> {
        let dir = self.host_root.join("run/flannel");
        fs::create_dir_all(&dir)?;
        fs::write(
            dir.join("subnet.env"),
            subnet_env(self.net.gateway(), self.net.prefix_len()),
        )?;
        Ok(flannel_conflist())
    }

    /// flanneld's start on this node (part of building a [`CniMode::Flannel`] lab):
    /// `flannel.1` and its /32, its iptables rules. Peers come with [`FlannelPair`].
    pub(super) fn flannel_up(&self) -> Result<()> {
        let subnet = self.net.bridge.trunc();
        Self::ip_batch(
            &self.node_ns,
            &format!(
                "link add {VXLAN_DEVICE} type vxlan id {VNI} local {} dev eth0 dstport {VXLAN_PORT} nolearning\n\
                 link set {VXLAN_DEVICE} mtu {OVERLAY_MTU}\n\
                 addr add {}/32 dev {VXLAN_DEVICE}\nlink set {VXLAN_DEVICE} up\n",
                self.node_address(),
                subnet.network()
            ),
        )?;
        let rules = iptables_rules(&subnet.to_string());
        fs::write(self.dir.join("flanneld.rules"), &rules)?;
        cmd::run_stdin(
            &mut netns::exec(
                &self.node_ns,
                &["iptables-nft-restore", "-w", "5", "--noflush"],
            ),
            Some(rules.as_bytes()),
        )
        .context("flanneld's iptables rules (the input is in the lab dir)")?;
        Ok(())
    }

    /// This node's VXLAN endpoint as its peers learn it (`flannel.1`'s MAC).
    pub fn flannel_vtep(&self) -> Result<Vtep> {
        ensure!(self.cfg.cni == CniMode::Flannel, "not a flannel lab");
        let link = cmd::stdout(&mut netns::ip(
            &self.node_ns,
            &["-j", "link", "show", "dev", VXLAN_DEVICE],
        ))?;
        let link: Value = serde_json::from_str(&link)?;
        let mac = link[0]["address"]
            .as_str()
            .context("flannel.1 without a MAC")?
            .to_string();
        Ok(Vtep {
            node_ip: self.node_address(),
            subnet: self.net.bridge.trunc(),
            mac,
        })
    }

    /// What flanneld does when a peer's lease appears (`handleSubnetEvents`, no
    /// direct routing): neighbour, FDB entry, then the on-link route.
    fn flannel_add_peer(&self, peer: &Vtep) -> Result<()> {
        let gw = peer.subnet.network();
        Self::ip_batch(
            &self.node_ns,
            &format!(
                "neigh replace {gw} lladdr {} dev {VXLAN_DEVICE} nud permanent\n",
                peer.mac
            ),
        )?;
        cmd::run(&mut netns::exec(
            &self.node_ns,
            &[
                "bridge",
                "fdb",
                "replace",
                &peer.mac,
                "dev",
                VXLAN_DEVICE,
                "dst",
                &peer.node_ip.to_string(),
                "self",
                "permanent",
            ],
        ))
        .context("flannel.1 FDB entry")?;
        Self::ip_batch(
            &self.node_ns,
            &format!(
                "route replace {} via {gw} dev {VXLAN_DEVICE} onlink\n",
                peer.subnet
            ),
        )
    }
}

/// Joins flannel nodes into one cluster, as flanneld on each and kube-proxy would:
/// every node gets every other node's VTEP (neighbour, FDB entry, route), and one
/// service list — each service's endpoints on every node; kube-dns (the first
/// node's) a service of all — is loaded on every node. Returns the VTEPs in order.
pub(super) fn join(nodes: &mut [Lab]) -> Result<Vec<Vtep>> {
    let vteps = nodes
        .iter()
        .map(Lab::flannel_vtep)
        .collect::<Result<Vec<_>>>()?;
    for (i, lab) in nodes.iter().enumerate() {
        for (j, peer) in vteps.iter().enumerate() {
            if i != j {
                lab.flannel_add_peer(peer)?;
            }
        }
    }
    let mut cluster = nodes.first().context("no node")?.services.clone();
    for other in &nodes[1..] {
        for (s, theirs) in cluster.iter_mut().zip(&other.services) {
            s.endpoints.extend(theirs.endpoints.iter().copied());
        }
    }
    for lab in nodes.iter_mut() {
        lab.services = cluster.clone();
        lab.load_proxy_rules()?;
        lab.save_state()?;
    }
    Ok(vteps)
}

/// Two lab nodes with a Flannel VXLAN overlay between them (see the module doc).
pub struct FlannelPair {
    pub a: Lab,
    pub b: Lab,
    pub vteps: [Vtep; 2],
}

/// What [`FlannelPair::prove_overlay`] saw.
#[derive(Debug)]
pub struct OverlayProof {
    /// Direct pod-to-pod requests that crossed the overlay (both directions).
    pub pod_to_pod: usize,
    /// Requests to two-node services until both nodes' pods had answered, per client.
    pub service_requests: usize,
    /// Distinct endpoint pods that answered service requests.
    pub answering_pods: usize,
    /// kube-dns queries from node B to the coredns pod on A.
    pub dns_queries: usize,
}

impl FlannelPair {
    /// Builds both nodes from `base` (its pods, services and endpoints per service
    /// on each node; named `<prefix>-a` and `<prefix>-b`; flannel CNI), the overlay
    /// between them, and the cluster services.
    pub fn build(base: LabBuilder) -> Result<FlannelPair> {
        let node = |suffix: &str| {
            let mut b = base.clone().cni(CniMode::Flannel);
            b.cfg.prefix = format!("{}-{suffix}", base.cfg.prefix);
            b
        };
        let a = node("a").node_index(1).build()?;
        let b = node("b")
            .node_index(2)
            .join_upstream(&a)
            .cluster_dns(false)
            .build()?;
        let mut nodes = vec![a, b];
        let vteps = join(&mut nodes)?;
        let (b, a) = (nodes.pop(), nodes.pop());
        let [va, vb]: [Vtep; 2] = vteps.try_into().map_err(|_| anyhow::anyhow!("two VTEPs"))?;
        Ok(FlannelPair {
            a: a.context("node A")?,
            b: b.context("node B")?,
            vteps: [va, vb],
        })
    }

    pub fn nodes(&self) -> [&Lab; 2] {
        [&self.a, &self.b]
    }

    /// Footprints of both nodes (check each with [`super::assert_no_leaks`]).
    pub fn footprints(&self) -> [Footprint; 2] {
        [self.a.footprint(), self.b.footprint()]
    }

    /// Keeps both nodes after this value is gone (`scripts/lab up --cni flannel`;
    /// manual labs only); returns their names, B first (take it down first).
    pub fn persist(self) -> Result<[String; 2]> {
        let FlannelPair { a, b, .. } = self;
        let nb = b.persist()?;
        Ok([nb, a.persist()?])
    }

    /// Tears down B, then A (whose upstream B's uplink was in); every step runs.
    pub fn teardown(self) -> Result<()> {
        let FlannelPair { a, b, .. } = self;
        let rb = b.teardown();
        let ra = a.teardown();
        rb.and(ra)
    }

    /// Real traffic over the overlay, bounded: every workload pod of each node
    /// requests one listening pod of the other node directly; one pod of each node
    /// requests each two-node service until pods of both nodes have answered (at
    /// most [`SERVICE_TRIES`] requests each); a pod on B queries kube-dns (its
    /// endpoint is on A).
    pub fn prove_overlay(&self) -> Result<OverlayProof> {
        let mut pod_to_pod = 0;
        for (from, to) in [(&self.a, &self.b), (&self.b, &self.a)] {
            let target = tcp_listener(to)?;
            for i in 0..from.cfg.pods {
                let reply = from.tcp_request(i, target.1)?;
                ensure!(
                    reply == to.pods[target.0].name,
                    "{} → {}: answered {reply:?}",
                    from.pods[i].name,
                    target.1
                );
                pod_to_pod += 1;
            }
        }
        let mut service_requests = 0;
        let mut answering = BTreeSet::new();
        for from in [&self.a, &self.b] {
            for svc in (0..from.cfg.services).filter(|&s| self.on_both(s)) {
                let (n, names) = self.until_both_answer(from, svc)?;
                service_requests += n;
                answering.extend(names);
            }
        }
        let dns = self.b.dns_service_indices();
        ensure!(!dns.is_empty(), "node B has no kube-dns service");
        for &svc in &dns {
            self.b.service_request(0, svc).with_context(|| {
                format!("kube-dns from {} over the overlay", self.b.pods[0].name)
            })?;
        }
        Ok(OverlayProof {
            pod_to_pod,
            service_requests,
            answering_pods: answering.len(),
            dns_queries: dns.len(),
        })
    }

    /// Whether workload service `svc` has endpoints on both nodes.
    fn on_both(&self, svc: usize) -> bool {
        let eps = &self.a.services[svc].endpoints;
        [&self.a, &self.b]
            .iter()
            .all(|n| eps.iter().any(|e| n.net.bridge.trunc().contains(e.ip())))
    }

    /// Requests to `svc` from `from`'s first pod until a pod of each node answered.
    fn until_both_answer(&self, from: &Lab, svc: usize) -> Result<(usize, BTreeSet<String>)> {
        let mut names = BTreeSet::new();
        let mut nodes = BTreeSet::new();
        for n in 1..=SERVICE_TRIES {
            let reply = from.service_request(0, svc)?;
            let node = [&self.a, &self.b]
                .iter()
                .position(|l| l.pods.iter().any(|p| p.name == reply))
                .with_context(|| format!("service {svc} answered {reply:?}: no pod"))?;
            nodes.insert(node);
            names.insert(reply);
            if nodes.len() == 2 {
                return Ok((n, names));
            }
        }
        anyhow::bail!(
            "service {svc}: {SERVICE_TRIES} requests from {} reached only {names:?}",
            from.pods[0].name
        )
    }
}

/// A live pod of `lab` with a TCP listener: (pod index, its address and port).
pub fn tcp_listener(lab: &Lab) -> Result<(usize, SocketAddrV4)> {
    lab.pods
        .iter()
        .enumerate()
        .find_map(|(i, p)| {
            let port = p.listen_ports.first()?;
            (!p.deleted).then(|| (i, SocketAddrV4::new(p.ip, *port)))
        })
        .context("no pod with a TCP listener")
}

impl Lab {
    /// flanneld never programmed `peer`'s VTEP on this node: its FDB entry is gone
    /// (neighbour and route stay), so `flannel.1` drops what it should send there.
    /// Recorded once per service port with an endpoint on the peer (TRC001 on each:
    /// the pods here lose that share of its connections).
    pub fn fault_overlay_fdb_missing(&mut self, peer: &Vtep) -> Result<()> {
        cmd::run(&mut netns::exec(
            &self.node_ns,
            &[
                "bridge",
                "fdb",
                "del",
                &peer.mac,
                "dev",
                VXLAN_DEVICE,
                "dst",
                &peer.node_ip.to_string(),
                "self",
            ],
        ))
        .context("deleting flannel.1's FDB entry")?;
        let remote: Vec<usize> = (0..self.services.len())
            .filter(|&i| {
                let eps = &self.services[i].endpoints;
                eps.iter().any(|e| peer.subnet.contains(e.ip()))
            })
            .collect();
        ensure!(!remote.is_empty(), "no service has an endpoint on the peer");
        for i in remote {
            self.record("overlay_fdb_missing", "TRC001", self.svc_subject(i))?;
        }
        Ok(())
    }

    /// Pod `pod`'s eth0 and host veth both at `mtu` (flannel's pods get
    /// [`OVERLAY_MTU`]): the veth pair agrees, the overlay cannot carry it.
    pub fn fault_pod_mtu_over_overlay(&mut self, pod: usize, mtu: u32) -> Result<()> {
        let p = self.live_pod(pod)?;
        let (ns, veth) = (p.netns_name.clone(), p.host_veth.clone());
        let mtu = mtu.to_string();
        cmd::run(&mut netns::ip(
            &self.node_ns,
            &["link", "set", "dev", &veth, "mtu", &mtu],
        ))?;
        cmd::run(&mut netns::ip(
            &ns,
            &["link", "set", "dev", "eth0", "mtu", &mtu],
        ))?;
        self.record("pod_mtu_over_overlay", "LNK006", self.pod_subject(pod))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_bridge_is_what_flannel_builds() {
        let ipam = json!({
            "type": "host-local",
            "ranges": [[{ "subnet": "10.244.2.0/24", "gateway": "10.244.2.1" }]],
            "dataDir": "/run/x",
        });
        let list = delegated_conflist(ipam);
        let bridge = &list["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(
            bridge["ipam"]["ranges"],
            json!([[{ "subnet": "10.244.2.0/24" }]])
        );
        assert_eq!(bridge["ipam"]["routes"], json!([{ "dst": CLUSTER_CIDR }]));
        assert_eq!(list["plugins"][1]["type"], "portmap");
    }

    /// A reload of kube-proxy's rules (whole tables) keeps flanneld's chains and jumps.
    #[test]
    fn flanneld_rules_survive_a_kube_proxy_reload() {
        let saved = format!(
            "*nat\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n{}",
            iptables_rules("10.244.1.0/24").replacen("*nat\n", "", 1)
        );
        let reload =
            "*nat\n:KUBE-POSTROUTING - [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n\
                      *filter\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n";
        let merged = super::super::cni::keep_cni_rules(reload, &saved);
        for line in [
            ":FLANNEL-POSTRTG - [0:0]",
            "-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG",
            "-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
            ":FLANNEL-FWD - [0:0]",
            "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD",
        ] {
            assert!(merged.lines().any(|l| l == line), "{line} lost:\n{merged}");
        }
        assert!(merged.contains("-A POSTROUTING -j KUBE-POSTROUTING\n"));
    }

    #[test]
    fn subnet_env_and_rules_name_the_node_subnet() {
        let env = subnet_env(Ipv4Addr::new(10, 244, 2, 1), 24);
        assert!(env.contains("FLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_MTU=1450\n"));
        let rules = iptables_rules("10.244.2.0/24");
        assert!(rules.contains("-A FLANNEL-POSTRTG -s 10.244.2.0/24 -d 10.244.0.0/16 "));
        assert!(
            rules.contains("-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD")
        );
    }
}
