//! Dual-stack labs (`.dual_stack(true)`): IPv6 beside IPv4, as a dual-stack cluster
//! wires a node.
//!
//! * Node: `eth0` also 2001:db8:100::2/64 (upstream 2001:db8:100::1/64, default
//!   route via it; the upstream routes the IPv6 cluster CIDR back), IPv6 forwarding
//!   on (`net.ipv6.conf.all.forwarding=1`, in the lab's node netns only).
//! * Pods: fd00:10:244:1::/64, gateway fd00:10:244:1::1 on the bridge, pod `i` at
//!   `::<i + 2>`, an IPv6 default route via the gateway. Hand-built: the lab adds the
//!   addresses; [`CniMode::Bridge`]: host-local gets a second range (the IPv6 subnet)
//!   as a dual-stack cluster configures it, and the plugin adds them.
//! * Every address is `nodad` and every lab netns has `accept_dad=0` before its links
//!   exist, so nothing waits for duplicate address detection.
//! * Services: each service port also has an IPv6 ClusterIP in fd00:10:96::/112
//!   (service `i` at `::100 + i`, kube-dns at `::a`) with the IPv6 addresses of the
//!   same endpoint pods. A second kube-proxy programs them, as kube-proxy's
//!   per-family proxiers do: iptables mode writes an `ip6tables-nft-restore` input
//!   (same chain names; SEP hashes and DNAT targets over `[ip]:port`), nftables mode
//!   `table ip6 kube-proxy` (`ip6` matches, `ipv6_addr` keys, endpoint chains with
//!   the address's colons as dots).
//! * Listeners answer on IPv6 too (a second, IPv6-only socket per port).
//!
//! These addresses exist only inside the lab's netns; fd00::/64 (this machine's own
//! eth0) is not used.

use super::cni::CniMode;
use super::model::{Protocol, ServiceV6};
use super::{cmd, kube_proxy, netns, nft, traffic, Config, Lab, ProxyMode};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

pub const NODE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 2);
pub const UPSTREAM_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1);
/// The node's IPv6 pod subnet and its gateway (on the bridge).
pub const POD_CIDR6: &str = "fd00:10:244:1::/64";
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 1);
pub const CLUSTER_CIDR6: &str = "fd00:10:244::/56";
pub const SERVICE_CIDR6: &str = "fd00:10:96::/112";
pub const CLUSTER_DNS_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0xa);

/// Pod `i`'s IPv6 address in hand-built labs (host-local hands out the same order).
pub fn pod_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(GATEWAY6) + 1 + i as u128)
}

/// Workload service `i`'s IPv6 ClusterIP.
pub fn service_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(Ipv6Addr::new(0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0x100)) + i as u128)
}

/// Dual stack is built for hand-built and CNI bridge pods.
pub fn validate(cfg: &Config) -> Result<()> {
    ensure!(
        !cfg.dual_stack || matches!(cfg.cni, CniMode::HandBuilt | CniMode::Bridge),
        "dual stack is built for hand-built or CNI bridge pods, not {}",
        cfg.cni.lower()
    );
    Ok(())
}

/// No duplicate address detection in netns `ns` (for links made from now on).
pub fn no_dad(ns: &str) -> Result<()> {
    for conf in ["all", "default"] {
        netns::sysctl_set(ns, &format!("net/ipv6/conf/{conf}/accept_dad"), "0")?;
    }
    Ok(())
}

/// Gives the conflist's host-local IPAM a second range, the IPv6 pod subnet (one
/// range set per family, as a dual-stack cluster's CNI configuration has).
pub fn add_ipv6_range(list: &mut Value) {
    let Some(plugins) = list["plugins"].as_array_mut() else {
        return;
    };
    for p in plugins {
        // `get_mut`, not indexing: indexing would add `"ipam": {"ranges": null}` to
        // the plugins that have none.
        let ranges = p
            .get_mut("ipam")
            .and_then(|i| i.get_mut("ranges"))
            .and_then(Value::as_array_mut);
        if let Some(ranges) = ranges {
            ranges.push(json!([{ "subnet": POD_CIDR6, "gateway": GATEWAY6.to_string() }]));
        }
    }
}

impl Lab {
    /// The node's and upstream's IPv6 side (after their IPv4 side is up).
    pub(super) fn setup_node_v6(&self) -> Result<()> {
        let (node, up) = (self.node_ns.clone(), self.up_ns.clone());
        Self::ip_batch(
            &up,
            &format!(
                "addr add {UPSTREAM_IP6}/64 dev eth0 nodad\n\
                 route add {CLUSTER_CIDR6} via {NODE_IP6}\n"
            ),
        )?;
        let mut batch =
            format!("addr add {NODE_IP6}/64 dev eth0 nodad\nroute add ::/0 via {UPSTREAM_IP6}\n");
        if self.cfg.cni == CniMode::HandBuilt {
            let _ = writeln!(
                batch,
                "addr add {GATEWAY6}/64 dev {} nodad",
                self.cfg.bridge
            );
        }
        Self::ip_batch(&node, &batch)?;
        netns::sysctl_set(&node, "net/ipv6/conf/all/forwarding", "1")
    }

    /// Hand-built pods: each gets its IPv6 address and default route.
    pub(super) fn setup_pods_v6(&mut self) -> Result<()> {
        for i in 0..self.pods.len() {
            let ns = self.pods[i].netns_name.clone();
            let ip6 = pod_ip6(i);
            Self::ip_batch(
                &ns,
                &format!(
                    "addr add {ip6}/64 dev eth0 nodad\nroute add ::/0 via {GATEWAY6} dev eth0\n"
                ),
            )?;
            self.pods[i].ip6 = Some(ip6);
        }
        Ok(())
    }

    /// Every service port gets an IPv6 ClusterIP and the IPv6 addresses of its
    /// endpoint pods (same target port).
    pub(super) fn setup_services_v6(&mut self) {
        let dns = self.dns_service_indices();
        for i in 0..self.services.len() {
            let s = &self.services[i];
            let cluster_ip = if dns.contains(&i) {
                CLUSTER_DNS_IP6
            } else {
                service_ip6(i)
            };
            let endpoints = s
                .endpoints
                .iter()
                .filter_map(|e| {
                    let p = self.pods.iter().find(|p| p.ip == *e.ip())?;
                    Some(SocketAddrV6::new(p.ip6?, e.port(), 0, 0))
                })
                .collect();
            self.services[i].v6 = Some(ServiceV6 {
                cluster_ip,
                endpoints,
                sep_chains: Vec::new(),
                nft_endpoint_chains: Vec::new(),
            });
            self.services[i].refresh_chains();
        }
    }

    /// The IPv6 proxier's rules: ip6tables (nft backend) or `table ip6 kube-proxy`.
    pub(super) fn load_proxy_rules_v6(&mut self) -> Result<()> {
        match self.cfg.proxy_mode {
            ProxyMode::Iptables => {
                let rules = kube_proxy::render_ip6tables(&self.services, CLUSTER_CIDR6);
                self.restore_ip6tables(&rules)
            }
            ProxyMode::Nftables => {
                let script = nft::render_ip6(
                    &self.services,
                    SERVICE_CIDR6,
                    CLUSTER_CIDR6,
                    &NODE_IP6.to_string(),
                );
                fs::write(self.dir.join("kube-proxy-ip6.nft"), &script)?;
                cmd::run_stdin(
                    &mut netns::exec(&self.node_ns, &["nft", "-f", "-"]),
                    Some(script.as_bytes()),
                )
                .context("loading table ip6 kube-proxy (the script is in the lab dir)")?;
                Ok(())
            }
            ProxyMode::Ipvs => anyhow::bail!("dual stack is not built for IPVS mode"),
        }
    }

    /// `ip6tables-nft-restore` of kube-proxy's IPv6 rules, keeping the CNI plugins'
    /// IPv6 chains (the bridge plugin masquerades IPv6 pods too).
    fn restore_ip6tables(&self, rules: &str) -> Result<()> {
        let merged;
        let rules = if self.cfg.cni.runs_plugins() {
            let saved = cmd::stdout(&mut netns::exec(&self.node_ns, &["ip6tables-nft-save"]))?;
            merged = super::cni::keep_cni_rules(rules, &saved);
            merged.as_str()
        } else {
            rules
        };
        fs::write(self.dir.join("ip6tables-nft-restore.rules"), rules)?;
        cmd::run_stdin(
            &mut netns::exec(&self.node_ns, &["ip6tables-nft-restore", "-w", "5"]),
            Some(rules.as_bytes()),
        )
        .context("ip6tables-nft-restore of the kube-proxy rules (the input is in the lab dir)")?;
        Ok(())
    }

    /// One request through every IPv6 VIP with endpoints (same cap and clients as
    /// the IPv4 traffic), each answer checked, then the IPv6 DNAT entries' timeouts
    /// raised to 1 h.
    pub(super) fn run_traffic_v6(&mut self) -> Result<()> {
        let mut by_client: Vec<Vec<usize>> = vec![Vec::new(); self.pods.len()];
        let with_eps = (0..self.services.len()).filter(|&i| {
            self.services[i]
                .v6
                .as_ref()
                .is_some_and(|v| !v.endpoints.is_empty())
        });
        for svc in with_eps.take(super::TRAFFIC_MAX_SERVICES) {
            by_client[self.client_for(svc)?].push(svc);
        }
        for (client, svcs) in by_client.into_iter().enumerate() {
            if svcs.is_empty() {
                continue;
            }
            let batch = svcs
                .iter()
                .map(|&svc| {
                    let s = &self.services[svc];
                    let vip = s.vip6().map(SocketAddr::V6).context("IPv6 VIP")?;
                    Ok((s.protocol, vip, self.payload_for(svc)))
                })
                .collect::<Result<Vec<_>>>()?;
            let payloads: Vec<Vec<u8>> = batch.iter().map(|b| b.2.clone()).collect();
            let results = traffic::requests(&self.pods[client].netns_path, batch)?;
            for ((svc, payload), res) in svcs.iter().zip(&payloads).zip(results) {
                let reply = res.with_context(|| {
                    format!(
                        "IPv6 request from pod {} to {}",
                        self.pods[client].name,
                        self.services[*svc].port_name_string()
                    )
                })?;
                self.check_reply(*svc, payload, &reply)?;
            }
        }
        for p in [Protocol::Tcp, Protocol::Udp] {
            // Non-zero when nothing matched; that is fine.
            cmd::output(&mut netns::exec(
                &self.node_ns,
                &[
                    "conntrack",
                    "-U",
                    "-f",
                    "ipv6",
                    "-p",
                    p.lower(),
                    "--orig-dst",
                    SERVICE_CIDR6,
                    "-t",
                    "3600",
                ],
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_lab_prefixes() {
        assert_eq!(pod_ip6(0).to_string(), "fd00:10:244:1::2");
        assert_eq!(pod_ip6(254).to_string(), "fd00:10:244:1::100");
        assert_eq!(service_ip6(3).to_string(), "fd00:10:96::103");
        // Never this machine's own fd00::/64.
        for ip in [pod_ip6(0), service_ip6(0), CLUSTER_DNS_IP6, GATEWAY6] {
            assert_ne!(ip.segments()[..4], [0xfd00, 0, 0, 0], "{ip}");
        }
    }

    #[test]
    fn host_local_gets_one_range_per_family() {
        let mut list = super::super::cni::conflist(
            CniMode::Bridge,
            "cni0",
            "10.244.1.0/24",
            std::net::Ipv4Addr::new(10, 244, 1, 1),
            std::path::Path::new("/tmp/x"),
        );
        add_ipv6_range(&mut list);
        let ranges = &list["plugins"][0]["ipam"]["ranges"];
        assert_eq!(ranges[0][0]["subnet"], "10.244.1.0/24");
        assert_eq!(ranges[1][0]["subnet"], POD_CIDR6);
        assert_eq!(ranges[1][0]["gateway"], "fd00:10:244:1::1");
        assert!(list["plugins"][1].get("ipam").is_none(), "{list}");
    }
}
