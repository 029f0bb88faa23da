//! A multi-node lab: N lab nodes (node `k` at 198.51.100.(1+k), pods in
//! 10.244.k.0/24) whose uplinks share the first node's upstream netns (the underlay,
//! which routes each pod CIDR to its node), joined by the Flannel-style VXLAN overlay
//! of [`super::flannel`] (`flannel.1` on each, every peer's neighbour, FDB entry and
//! route), with kube-proxy's rules programmed on every node from one service list
//! whose endpoints span the nodes ([`super::flannel::join`]); kube-dns runs on the
//! first node.
//!
//! Each node is a [`Lab`] of its own (own netns prefix, cgroups, directory, owner
//! record), so teardown, the leak check ([`LabCluster::footprints`]) and stale-lab
//! cleanup cover every node; the other nodes' uplinks go with either end.
//!
//! Cluster faults: one injector each; each records a [`ClusterFault`] with the
//! cluster check ID (design catalog CLU001–CLU006), the node it should be reported
//! on and its subject:
//!
//! | method | what it does | finding |
//! |---|---|---|
//! | `fault_cidr_overlap(node, like)` | `node`'s cni0 also gets `like`'s gateway address (so a route to `like`'s pod CIDR) and its subnet.env names `like`'s subnet | CLU001 |
//! | `fault_proxy_drift(node, svc)` | `node`'s rules reloaded with an old endpoint set of `svc` (its endpoint on the last node missing) | CLU002 |
//! | `fault_endpoint_pod_gone(node, pod)` | an endpoint pod of `node` deleted (its netns gone); every node's rules keep the endpoint | CLU003 (and the node's own SVC002) |
//! | `fault_duplicate_pod_ip(node, pod, like, like_pod)` | pod `pod` of `node` also gets pod `like_pod`'s IP of node `like` | CLU004 |
//! | `fault_fdb_missing(node, peer)` | `node`'s `flannel.1` FDB entry for `peer`'s VTEP deleted | CLU005 (and the node's TRC001s) |
//! | `fault_overlay_mtu(node, mtu)` | `node`'s `flannel.1` at `mtu`, the others at 1450 | CLU005 |
//! | `fault_settings_drift(node)` | `node`'s `net.ipv4.conf.all.rp_filter` differs from the others' | CLU006 |

use super::cni::CniMode;
use super::flannel::{self, Vtep, VXLAN_DEVICE};
use super::{cmd, netns, Footprint, Lab, LabBuilder};
use anyhow::{ensure, Context, Result};
use serde::Serialize;
use std::fs;
use std::net::Ipv4Addr;

/// A cluster fault as the cluster checks should report it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ClusterFault {
    /// Injector name without the `fault_` prefix.
    pub kind: String,
    /// CLU001 … CLU006.
    pub finding: String,
    /// The lab name of the node it should be reported on.
    pub node: String,
    /// What it is about, e.g. `pod CIDR 10.244.1.0/24`, `service default/svc-0:http`.
    pub subject: String,
}

/// Several lab nodes as one cluster (see the module doc).
pub struct LabCluster {
    pub nodes: Vec<Lab>,
    pub vteps: Vec<Vtep>,
    faults: Vec<ClusterFault>,
}

impl LabCluster {
    /// Builds `n` nodes (2..=9) from `base` (pods, services and endpoints per service
    /// on each node; node `k` named `<prefix>-<k>`; flannel CNI), the overlay and the
    /// cluster's services.
    pub fn build(base: LabBuilder, n: u8) -> Result<LabCluster> {
        ensure!((2..=9).contains(&n), "a cluster lab has 2 to 9 nodes");
        let node = |k: u8| {
            let mut b = base.clone().cni(CniMode::Flannel).node_index(k);
            b.cfg.prefix = format!("{}-{k}", base.cfg.prefix);
            b
        };
        let first = node(1).build()?;
        let mut nodes = vec![first];
        for k in 2..=n {
            let lab = node(k)
                .join_upstream(&nodes[0])
                .cluster_dns(false)
                .build()?;
            nodes.push(lab);
        }
        let vteps = flannel::join(&mut nodes)?;
        Ok(LabCluster {
            nodes,
            vteps,
            faults: Vec::new(),
        })
    }

    /// Footprints of every node (check each with [`super::assert_no_leaks`]).
    pub fn footprints(&self) -> Vec<Footprint> {
        self.nodes.iter().map(Lab::footprint).collect()
    }

    /// Cluster faults injected so far, in order.
    pub fn faults(&self) -> &[ClusterFault] {
        &self.faults
    }

    /// The node whose pod has address `ip` (live or deleted).
    pub fn node_of_pod_ip(&self, ip: Ipv4Addr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|l| l.pods().iter().any(|p| p.ip == ip))
    }

    /// Tears down the nodes, last first (the first holds the underlay); every step runs.
    pub fn teardown(mut self) -> Result<()> {
        let mut result = Ok(());
        while let Some(lab) = self.nodes.pop() {
            result = result.and(lab.teardown());
        }
        result
    }

    fn record(&mut self, kind: &str, finding: &str, node: usize, subject: String) {
        self.faults.push(ClusterFault {
            kind: kind.into(),
            finding: finding.into(),
            node: self.nodes[node].name().to_string(),
            subject,
        });
    }

    fn lab(&self, node: usize) -> Result<&Lab> {
        self.nodes
            .get(node)
            .with_context(|| format!("no node {node} (cluster has {})", self.nodes.len()))
    }

    /// Node `node` is also given node `like`'s pod CIDR: its bridge gets `like`'s
    /// gateway address (the kernel adds the subnet's route to cni0) and its
    /// subnet.env names `like`'s subnet.
    pub fn fault_cidr_overlap(&mut self, node: usize, like: usize) -> Result<()> {
        let (lab, other) = (self.lab(node)?, self.lab(like)?);
        let gateway = format!("{}/24", other.gateway_ip());
        cmd::run(&mut netns::ip(
            lab.node_netns_name(),
            &["addr", "add", &gateway, "dev", lab.bridge_name()],
        ))
        .context("adding the other node's gateway to cni0")?;
        fs::write(
            lab.host_root().join("run/flannel/subnet.env"),
            flannel::subnet_env(other.gateway_ip(), 24),
        )?;
        let subject = format!("pod CIDR {}", other.pod_cidr());
        self.record("cidr_overlap", "CLU001", node, subject);
        Ok(())
    }

    /// Node `node`'s kube-proxy missed an update of service `svc`: its rules are
    /// reloaded with the endpoint set before the last node's endpoint was added.
    pub fn fault_proxy_drift(&mut self, node: usize, svc: usize) -> Result<()> {
        let last = self.nodes.len() - 1;
        ensure!(node != last, "the drifting node must not be the last");
        let last_cidr: ipnet::Ipv4Net = self.nodes[last].pod_cidr().parse()?;
        let lab = &mut self.nodes[node];
        let s = lab.services.get_mut(svc).context("no such service")?;
        let before = s.endpoints.len();
        s.endpoints.retain(|e| !last_cidr.contains(e.ip()));
        ensure!(
            s.endpoints.len() < before,
            "service {svc} has no endpoint on the last node"
        );
        lab.load_proxy_rules()?;
        let subject = lab.svc_subject(svc);
        self.record("proxy_drift", "CLU002", node, subject);
        Ok(())
    }

    /// Endpoint pod `pod` of node `node` is deleted; every node's rules keep it.
    pub fn fault_endpoint_pod_gone(&mut self, node: usize, pod: usize) -> Result<()> {
        let lab = self.nodes.get_mut(node).context("no such node")?;
        let ip = lab.live_pod(pod)?.ip;
        let port = lab
            .services
            .iter()
            .flat_map(|s| &s.endpoints)
            .find(|e| *e.ip() == ip)
            .map(|e| e.port())
            .context("not an endpoint")?;
        lab.fault_endpoint_pod_deleted(pod)?;
        self.record(
            "endpoint_pod_gone",
            "CLU003",
            node,
            format!("endpoint {ip}:{port}"),
        );
        Ok(())
    }

    /// Pod `pod` of node `node` also gets the IP of pod `like_pod` of node `like`.
    pub fn fault_duplicate_pod_ip(
        &mut self,
        node: usize,
        pod: usize,
        like: usize,
        like_pod: usize,
    ) -> Result<()> {
        ensure!(node != like, "the same pod IP on two different nodes");
        let ip = self.lab(like)?.live_pod(like_pod)?.ip;
        let ns = self.lab(node)?.live_pod(pod)?.netns_name.clone();
        cmd::run(&mut netns::ip(
            &ns,
            &["addr", "add", &format!("{ip}/32"), "dev", "eth0"],
        ))
        .context("adding the other node's pod IP")?;
        self.record("duplicate_pod_ip", "CLU004", node, format!("pod IP {ip}"));
        Ok(())
    }

    /// Node `node` lost `peer`'s VTEP (its FDB entry): it drops what goes to `peer`'s pods.
    pub fn fault_fdb_missing(&mut self, node: usize, peer: usize) -> Result<()> {
        let vtep = self.vteps.get(peer).context("no such peer")?.clone();
        self.nodes[node].fault_overlay_fdb_missing(&vtep)?;
        let subject = format!("pod CIDR {}", vtep.subnet);
        self.record("fdb_missing", "CLU005", node, subject);
        Ok(())
    }

    /// Node `node`'s overlay device at `mtu`, unlike the other nodes'.
    pub fn fault_overlay_mtu(&mut self, node: usize, mtu: u32) -> Result<()> {
        ensure!(mtu != flannel::OVERLAY_MTU, "that is every node's MTU");
        let lab = self.lab(node)?;
        cmd::run(&mut netns::ip(
            lab.node_netns_name(),
            &["link", "set", "dev", VXLAN_DEVICE, "mtu", &mtu.to_string()],
        ))?;
        self.record(
            "overlay_mtu",
            "CLU005",
            node,
            format!("link {VXLAN_DEVICE}"),
        );
        Ok(())
    }

    /// Node `node`'s `net.ipv4.conf.all.rp_filter` set unlike the others' (loose
    /// where they have it off, off where they have it on).
    pub fn fault_settings_drift(&mut self, node: usize) -> Result<()> {
        const KEY: &str = "net/ipv4/conf/all/rp_filter";
        let lab = self.lab(node)?;
        let now = rp_filter(lab)?;
        let value = if now == "2" { "0" } else { "2" };
        netns::sysctl_set(lab.node_netns_name(), KEY, value)?;
        let subject = "sysctl net.ipv4.conf.all.rp_filter".to_string();
        self.record("settings_drift", "CLU006", node, subject);
        Ok(())
    }
}

/// `net.ipv4.conf.all.rp_filter` of a node.
pub fn rp_filter(lab: &Lab) -> Result<String> {
    let out = cmd::stdout(&mut netns::exec(
        lab.node_netns_name(),
        &["sysctl", "-n", "net.ipv4.conf.all.rp_filter"],
    ))?;
    Ok(out.trim().to_string())
}
