//! Fault injectors: one method each, usable alone or together. Each changes
//! real kernel state in the lab's own namespaces (never the root netns) and
//! records an [`InjectedFault`] with the finding ID the analyzer should raise.
//!
//! | method | what it does | finding |
//! |---|---|---|
//! | `fault_service_without_endpoints(svc)` | drops all endpoints of the service, reloads rules (filter `has no endpoints` REJECT / nft `no-endpoint-services` / IPVS virtual server without real servers) | SVC001 (DNS003 for kube-dns) |
//! | `fault_dns_without_endpoints()` | the same for both kube-dns ports | DNS003 |
//! | `fault_endpoint_pod_deleted(pod)` | kills the pod and deletes its netns (and so its veth); rules keep its endpoints | SVC002 |
//! | `fault_target_port_not_listening(svc)` | kills the listeners of the target port in every endpoint pod | SVC003 |
//! | `fault_dangling_host_veth(pod)` | pod killed and its netns name deleted, netns kept alive only by an fd of the lab, so the host veth stays with a peer in no discoverable netns | LNK001 |
//! | `fault_veth_detached(pod)` | `ip link set <veth> nomaster` | LNK003 |
//! | `fault_link_down(pod)` | host veth down | LNK004 |
//! | `fault_hairpin_off(pod)` | hairpin off on the host veth's bridge port (bridge not promiscuous) | LNK005 |
//! | `fault_mtu_mismatch(pod)` | pod eth0 MTU 9000, host veth 1500 | LNK006 |
//! | `fault_pod_mtu_over_overlay(pod, mtu)` (flannel.rs) | pod eth0 and host veth at `mtu`, above the overlay's | LNK006 |
//! | `fault_overlay_fdb_missing(peer)` (flannel.rs) | `flannel.1`'s FDB entry for the peer's VTEP deleted: the kernel drops what goes to the peer's pods | TRC001 per service with an endpoint on the peer |
//! | `fault_duplicate_pod_ip(a, b)` | pod b's eth0 gets pod a's IP (b's own removed) | LNK007 |
//! | `fault_no_default_route(pod)` | deletes the pod's default route | LNK008 |
//! | `fault_bridge_nf_call_iptables_off()` | node `net.bridge.bridge-nf-call-iptables=0` | NF002 |
//! | `fault_ip_forward_off()` | node `net.ipv4.ip_forward=0` | NF003 |
//! | `fault_forward_policy_drop()` | filter FORWARD policy DROP and the KUBE-FORWARD jump removed (iptables and IPVS modes) | NF004 |
//! | `fault_masquerade_missing()` | nat POSTROUTING → KUBE-POSTROUTING jump removed (iptables and IPVS modes) | NF005 |
//! | `fault_rp_filter_strict(pod)` | `rp_filter=1` on the pod's host veth | NF006 |
//! | `fault_kube_rules_in_both_backends()` | the kube-proxy iptables rules also loaded with iptables-legacy (nftables mode: into both iptables backends) | NF001 |
//! | `fault_conntrack_table_full()` | fills the node conntrack table with ASSURED entries (`conntrack -R`) until count = max, then sends packets until the kernel drops and logs `nf_conntrack: table full` | CT001, CT002, CT004 |
//! | `fault_stale_udp_conntrack(svc)` | real UDP request through the VIP, then the endpoint that answered is removed from the rules while its conntrack entry stays (timeout 1 h; not in IPVS mode: no VIP traffic) | CT005 |
//! | `fault_ipvs_virtual_server_missing(svc)` | IPVS mode: the service port stays in `KUBE-CLUSTER-IP` but IPVS has no virtual server for it (a failed sync) | SVC006 |
//! | `fault_ipvs_vip_unbound(svc)` | IPVS mode: the virtual server stays, its VIP is not on kube-ipvs0 | SVC006 |
//! | `fault_resolv_wrong_nameserver(pod)` | pod resolv.conf nameserver 198.51.100.53 | DNS001 |
//! | `fault_resolv_too_many_search(pod)` | 8 search domains | DNS002 |
//! | `fault_resolv_too_many_nameservers(pod)` | 4 nameservers | DNS005 |
//! | `fault_node_resolv_local_stub()` | host-root etc/resolv.conf → 127.0.0.53 | DNS004 |
//! | `fault_pod_gone_without_cni_del(pod)` | CNI modes: the pod's processes and netns vanish without CNI DEL (a crashed runtime), so the plugins' nat rules for its address stay | NF007 (SVC002 too when it was an endpoint) |
//! | `fault_duplicate_cni_config()` | CNI modes: an older configuration `00-old-<network>.conflist` sorts first in the conf dir and wins | CNI001 |
//!
//! Dual-stack labs add the IPv6 side of three (the link faults — MTU, hairpin —
//! are the same for both families):
//!
//! | method | what it does | finding |
//! |---|---|---|
//! | `fault_service_without_endpoints_v6(svc)` | drops the IPv6 endpoints of the service (its IPv4 ones stay), reloads rules | SVC001 (DNS003 for kube-dns), naming the IPv6 VIP |
//! | `fault_endpoint_pod_deleted_v6(pod)` | `fault_endpoint_pod_deleted`; also recorded as the stale IPv6 endpoint | SVC002 on `endpoint [ip6]:port` |
//! | `fault_no_default_route6(pod)` | deletes the pod's IPv6 default route (its IPv4 one stays) | LNK008 (IPv6) |
//! | `fault_stale_udp_conntrack_v6(svc)` | `fault_stale_udp_conntrack` through the IPv6 VIP | CT005 |
//! | `fault_ip6_forward_off()` | node `net.ipv6.conf.all.forwarding=0` | NF003 (IPv6) |
//! | `fault_bridge_nf_call_ip6tables_off()` | node `net.bridge.bridge-nf-call-ip6tables=0` | NF002 (IPv6) |

use super::model::{InjectedFault, Protocol, ProxyMode};
use super::{cmd, kube_proxy, netns, traffic, Lab, CLUSTER_CIDR, CLUSTER_DNS_IP, NODE_RESOLVER};
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

const FAULT_TIMEOUT: Duration = Duration::from_secs(15);

impl Lab {
    pub(super) fn record(&mut self, kind: &str, finding: &str, subject: String) -> Result<()> {
        self.faults.push(InjectedFault {
            kind: kind.into(),
            finding: finding.into(),
            subject,
        });
        self.save_state()
    }

    pub(super) fn live_pod(&self, i: usize) -> Result<&super::Pod> {
        let p = self.pod(i)?;
        ensure!(!p.deleted, "pod {i} ({}) was already deleted", p.name);
        Ok(p)
    }

    pub(super) fn pod_subject(&self, i: usize) -> String {
        let p = &self.pods[i];
        format!("pod {}/{}", p.namespace, p.name)
    }

    /// How the analyzer names service `i`: IPVS mode names no service (virtual servers
    /// and ipsets hold addresses only), its subject is the VIP.
    pub(super) fn svc_subject(&self, i: usize) -> String {
        let s = &self.services[i];
        // A Cilium listing names a service's port by number, not by name.
        if self.cfg.cni == super::CniMode::CiliumShape {
            return format!("service {}/{}:{}", s.namespace, s.name, s.port);
        }
        match self.cfg.proxy_mode {
            ProxyMode::Ipvs => format!("service {}/{}", s.vip(), s.protocol.lower()),
            _ => format!("service {}", s.port_name_string()),
        }
    }

    fn node_ip(&self, args: &[&str]) -> Result<()> {
        cmd::run(&mut netns::ip(&self.node_ns, args))?;
        Ok(())
    }

    fn node_run(&self, args: &[&str]) -> Result<()> {
        cmd::run(&mut netns::exec(&self.node_ns, args))?;
        Ok(())
    }

    /// kube-proxy's iptables jumps (FORWARD → KUBE-FORWARD, POSTROUTING →
    /// KUBE-POSTROUTING) exist in iptables and IPVS modes.
    fn ensure_iptables_mode(&self, what: &str) -> Result<()> {
        ensure!(
            matches!(self.cfg.proxy_mode, ProxyMode::Iptables | ProxyMode::Ipvs),
            "{what} needs iptables or IPVS proxy mode"
        );
        Ok(())
    }

    fn ensure_ipvs_mode(&self, what: &str) -> Result<()> {
        ensure!(
            self.cfg.proxy_mode == ProxyMode::Ipvs,
            "{what} needs IPVS proxy mode"
        );
        Ok(())
    }

    /// Kills every process of pod `i` (by PID: our children, then whatever is
    /// left in its cgroup) and removes its cgroup and log dirs.
    fn kill_pod(&mut self, i: usize) -> Result<()> {
        let rt = &mut self.rt[i];
        for l in &mut rt.listeners {
            let _ = l.child.kill();
            let _ = l.child.wait();
        }
        rt.listeners.clear();
        if let Some(mut c) = rt.process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let scope = rt.cgroup_dir.clone();
        cmd::poll(FAULT_TIMEOUT, "pod processes to exit", || {
            let procs = fs::read_to_string(scope.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            for &pid in &pids {
                // SAFETY: kill(2) on a PID from this pod's own cgroup.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            Ok(pids.is_empty().then_some(()))
        })?;
        for d in [Some(scope.as_path()), scope.parent()]
            .into_iter()
            .flatten()
        {
            let dir = d.to_path_buf();
            cmd::poll(FAULT_TIMEOUT, "pod cgroup removal", || {
                Ok((fs::remove_dir(&dir).is_ok() || !dir.exists()).then_some(()))
            })?;
        }
        let p = &mut self.pods[i];
        if p.log_dir.exists() {
            fs::remove_dir_all(&p.log_dir)?;
        }
        p.deleted = true;
        p.pid = 0;
        p.listen_ports.clear();
        p.udp_ports.clear();
        Ok(())
    }

    fn host_veth_exists(&self, veth: &str) -> Result<bool> {
        Ok(cmd::output(&mut netns::ip(
            &self.node_ns,
            &["link", "show", "dev", veth],
        ))?
        .status
        .success())
    }

    // ---- services ----------------------------------------------------------

    /// Service `svc` loses all its endpoints (rules reloaded).
    pub fn fault_service_without_endpoints(&mut self, svc: usize) -> Result<()> {
        self.service(svc)?;
        ensure!(
            !self.services[svc].endpoints.is_empty(),
            "service {svc} has no endpoints already"
        );
        self.services[svc].endpoints.clear();
        self.load_proxy_rules()?;
        let finding = if self.dns_service_indices().contains(&svc) {
            "DNS003"
        } else {
            "SVC001"
        };
        self.record("service_without_endpoints", finding, self.svc_subject(svc))
    }

    /// Both kube-dns ports lose their endpoint.
    pub fn fault_dns_without_endpoints(&mut self) -> Result<()> {
        let dns = self.dns_service_indices();
        ensure!(!dns.is_empty(), "the lab has no cluster DNS");
        for &i in &dns {
            self.services[i].endpoints.clear();
        }
        self.load_proxy_rules()?;
        // IPVS names no service: the analyzer says the VIP of each port.
        let subject = match self.cfg.proxy_mode {
            ProxyMode::Ipvs => self.svc_subject(dns[0]),
            _ => "service kube-system/kube-dns".into(),
        };
        self.record("dns_without_endpoints", "DNS003", subject)
    }

    /// The endpoint pod `pod` is deleted (processes, netns, veth) while the
    /// rules still send traffic to it.
    pub fn fault_endpoint_pod_deleted(&mut self, pod: usize) -> Result<()> {
        let ip = self.live_pod(pod)?.ip;
        ensure!(
            self.services
                .iter()
                .any(|s| s.endpoints.iter().any(|e| *e.ip() == ip)),
            "pod {pod} is not an endpoint of any service"
        );
        self.kill_pod(pod)?;
        // A runtime removing the sandbox runs CNI DEL first (CNI modes).
        self.cni_detach(pod)?;
        netns::del(&self.pods[pod].netns_name)?;
        let veth = self.pods[pod].host_veth.clone();
        cmd::poll(FAULT_TIMEOUT, "the deleted pod's veth to vanish", || {
            Ok((!self.host_veth_exists(&veth)?).then_some(()))
        })?;
        self.record("endpoint_pod_deleted", "SVC002", self.pod_subject(pod))
    }

    /// Nothing listens on service `svc`'s target port in its endpoint pods.
    pub fn fault_target_port_not_listening(&mut self, svc: usize) -> Result<()> {
        let s = self.service(svc)?.clone();
        let mut killed = 0;
        for ep in &s.endpoints {
            let Some(pi) = self
                .pods
                .iter()
                .position(|p| !p.deleted && p.ip == *ep.ip())
            else {
                continue;
            };
            let pid = self.pods[pi].pid;
            let rt = &mut self.rt[pi];
            if let Some(k) = rt
                .listeners
                .iter()
                .position(|l| l.proto == s.protocol && l.port == ep.port())
            {
                let mut l = rt.listeners.remove(k);
                let _ = l.child.kill();
                let _ = l.child.wait();
                killed += 1;
            }
            // A socat listener may have forked a child that still holds the port.
            let port = ep.port();
            let proto = s.protocol;
            let scope = self.rt[pi].cgroup_dir.clone();
            cmd::poll(FAULT_TIMEOUT, "the target port to be closed", || {
                if !super::pod::bound_ports(pid, proto)?.contains(&port) {
                    return Ok(Some(()));
                }
                kill_socat_children(&scope, port);
                Ok(None)
            })?;
            let p = &mut self.pods[pi];
            p.listen_ports
                .retain(|&x| !(proto == Protocol::Tcp && x == port));
            p.udp_ports
                .retain(|&x| !(proto == Protocol::Udp && x == port));
        }
        ensure!(killed > 0, "service {svc} has no listener to stop");
        self.record("target_port_not_listening", "SVC003", self.svc_subject(svc))
    }

    /// IPVS mode: kube-proxy's sync of service `svc` failed after the ipsets were
    /// written: `KUBE-CLUSTER-IP` holds it, IPVS has no virtual server for it.
    pub fn fault_ipvs_virtual_server_missing(&mut self, svc: usize) -> Result<()> {
        self.ensure_ipvs_mode("fault_ipvs_virtual_server_missing")?;
        self.service(svc)?;
        self.ipvs.no_virtual_server.insert(svc);
        self.load_proxy_rules()?;
        self.record(
            "ipvs_virtual_server_missing",
            "SVC006",
            self.svc_subject(svc),
        )
    }

    /// IPVS mode: service `svc`'s VIP is not bound to kube-ipvs0 (its virtual
    /// server stays), so the node does not take packets for it.
    pub fn fault_ipvs_vip_unbound(&mut self, svc: usize) -> Result<()> {
        self.ensure_ipvs_mode("fault_ipvs_vip_unbound")?;
        let ip = self.service(svc)?.cluster_ip;
        ensure!(
            self.services.iter().filter(|s| s.cluster_ip == ip).count() == 1,
            "service {svc}'s VIP {ip} is shared by other service ports"
        );
        self.ipvs.unbound_vip.insert(svc);
        self.load_proxy_rules()?;
        self.record("ipvs_vip_unbound", "SVC006", self.svc_subject(svc))
    }

    // ---- links -------------------------------------------------------------

    /// Pod `pod` is gone (processes killed, netns name removed) but its netns
    /// is kept alive by an fd only the lab holds, so the host veth stays with
    /// a peer in a netns no one can find.
    pub fn fault_dangling_host_veth(&mut self, pod: usize) -> Result<()> {
        self.live_pod(pod)?;
        self.kill_pod(pod)?;
        let p = &self.pods[pod];
        let fd = fs::File::open(&p.netns_path)
            .with_context(|| format!("open {}", p.netns_path.display()))?;
        self.held_netns.push(fd);
        netns::del(&p.netns_name)?;
        ensure!(
            self.host_veth_exists(&p.host_veth)?,
            "host veth {} vanished",
            p.host_veth
        );
        self.record("dangling_host_veth", "LNK001", self.pod_subject(pod))
    }

    pub fn fault_veth_detached(&mut self, pod: usize) -> Result<()> {
        let v = self.live_pod(pod)?.host_veth.clone();
        self.node_ip(&["link", "set", "dev", &v, "nomaster"])?;
        self.record("veth_detached", "LNK003", self.pod_subject(pod))
    }

    pub fn fault_link_down(&mut self, pod: usize) -> Result<()> {
        let v = self.live_pod(pod)?.host_veth.clone();
        self.node_ip(&["link", "set", "dev", &v, "down"])?;
        self.record("link_down", "LNK004", self.pod_subject(pod))
    }

    pub fn fault_hairpin_off(&mut self, pod: usize) -> Result<()> {
        let v = self.live_pod(pod)?.host_veth.clone();
        self.node_ip(&[
            "link",
            "set",
            "dev",
            &v,
            "type",
            "bridge_slave",
            "hairpin",
            "off",
        ])?;
        self.record("hairpin_off", "LNK005", self.pod_subject(pod))
    }

    pub fn fault_mtu_mismatch(&mut self, pod: usize) -> Result<()> {
        let ns = self.live_pod(pod)?.netns_name.clone();
        cmd::run(&mut netns::ip(
            &ns,
            &["link", "set", "dev", "eth0", "mtu", "9000"],
        ))?;
        self.record("mtu_mismatch", "LNK006", self.pod_subject(pod))
    }

    /// Pod `b` gets pod `a`'s IP (its own is removed), as a double IPAM
    /// allocation would do.
    pub fn fault_duplicate_pod_ip(&mut self, a: usize, b: usize) -> Result<()> {
        ensure!(a != b, "pick two different pods");
        let ip = self.live_pod(a)?.ip;
        let ns = self.live_pod(b)?.netns_name.clone();
        let gw = self.net.gateway().to_string();
        let cidr = format!("{ip}/{}", self.net.prefix_len());
        cmd::run(&mut netns::ip(&ns, &["addr", "flush", "dev", "eth0"]))?;
        cmd::run(&mut netns::ip(&ns, &["addr", "add", &cidr, "dev", "eth0"]))?;
        cmd::run(&mut netns::ip(
            &ns,
            &["route", "replace", "default", "via", &gw, "dev", "eth0"],
        ))?;
        self.pods[b].ip = ip;
        let subject = format!(
            "ip {ip} in {} and {}",
            self.pod_subject(a),
            self.pod_subject(b)
        );
        self.record("duplicate_pod_ip", "LNK007", subject)
    }

    /// Service `svc`'s IPv6 side loses its endpoints; its IPv4 side keeps them, as
    /// when the IPv6 EndpointSlice is empty (dual-stack labs).
    pub fn fault_service_without_endpoints_v6(&mut self, svc: usize) -> Result<()> {
        let v6 = self
            .service(svc)?
            .v6
            .as_ref()
            .context("not a dual-stack service")?;
        ensure!(
            !v6.endpoints.is_empty(),
            "service {svc} has no IPv6 endpoints already"
        );
        if let Some(v6) = self.services[svc].v6.as_mut() {
            v6.endpoints.clear();
        }
        self.load_proxy_rules()?;
        let finding = if self.dns_service_indices().contains(&svc) {
            "DNS003"
        } else {
            "SVC001"
        };
        self.record(
            "service_without_endpoints_v6",
            finding,
            self.svc_subject(svc),
        )
    }

    /// Endpoint pod `pod` is deleted while both families' rules keep it: recorded
    /// as `endpoint_pod_deleted` and as the stale IPv6 endpoint (dual-stack labs).
    pub fn fault_endpoint_pod_deleted_v6(&mut self, pod: usize) -> Result<()> {
        let ip6 = self.live_pod(pod)?.ip6.context("pod has no IPv6 address")?;
        ensure!(
            self.services.iter().any(|s| s
                .v6
                .as_ref()
                .is_some_and(|v| v.endpoints.iter().any(|e| *e.ip() == ip6))),
            "pod {pod} is not an IPv6 endpoint of any service"
        );
        self.fault_endpoint_pod_deleted(pod)?;
        self.record("endpoint_pod_deleted_v6", "SVC002", self.pod_subject(pod))
    }

    /// Pod `pod` loses its IPv6 default route; its IPv4 one stays.
    pub fn fault_no_default_route6(&mut self, pod: usize) -> Result<()> {
        let p = self.live_pod(pod)?;
        ensure!(p.ip6.is_some(), "pod {pod} has no IPv6 address");
        let ns = p.netns_name.clone();
        cmd::run(&mut netns::ip(&ns, &["-6", "route", "del", "default"]))?;
        self.record("no_default_route6", "LNK008", self.pod_subject(pod))
    }

    pub fn fault_no_default_route(&mut self, pod: usize) -> Result<()> {
        let ns = self.live_pod(pod)?.netns_name.clone();
        cmd::run(&mut netns::ip(&ns, &["route", "del", "default"]))?;
        self.record("no_default_route", "LNK008", self.pod_subject(pod))
    }

    // ---- netfilter and sysctls -------------------------------------------

    pub fn fault_bridge_nf_call_iptables_off(&mut self) -> Result<()> {
        netns::sysctl_set(&self.node_ns, "net/bridge/bridge-nf-call-iptables", "0")?;
        self.record("bridge_nf_call_iptables_off", "NF002", "node".into())
    }

    /// The node stops routing IPv6 (dual-stack labs).
    pub fn fault_ip6_forward_off(&mut self) -> Result<()> {
        netns::sysctl_set(&self.node_ns, "net/ipv6/conf/all/forwarding", "0")?;
        self.record("ip6_forward_off", "NF003", "node".into())
    }

    /// Bridged IPv6 traffic stops going through ip6tables / nft (dual-stack labs).
    pub fn fault_bridge_nf_call_ip6tables_off(&mut self) -> Result<()> {
        netns::sysctl_set(&self.node_ns, "net/bridge/bridge-nf-call-ip6tables", "0")?;
        self.record("bridge_nf_call_ip6tables_off", "NF002", "node".into())
    }

    pub fn fault_ip_forward_off(&mut self) -> Result<()> {
        netns::sysctl_set(&self.node_ns, "net/ipv4/ip_forward", "0")?;
        self.record("ip_forward_off", "NF003", "node".into())
    }

    pub fn fault_forward_policy_drop(&mut self) -> Result<()> {
        self.ensure_iptables_mode("fault_forward_policy_drop")?;
        self.node_run(&["iptables-nft", "-P", "FORWARD", "DROP"])?;
        self.node_run(&[
            "iptables-nft",
            "-D",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            "kubernetes forwarding rules",
            "-j",
            "KUBE-FORWARD",
        ])?;
        self.record("forward_policy_drop", "NF004", "node".into())
    }

    pub fn fault_masquerade_missing(&mut self) -> Result<()> {
        self.ensure_iptables_mode("fault_masquerade_missing")?;
        self.node_run(&[
            "iptables-nft",
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-m",
            "comment",
            "--comment",
            "kubernetes postrouting rules",
            "-j",
            "KUBE-POSTROUTING",
        ])?;
        self.record("masquerade_missing", "NF005", "node".into())
    }

    pub fn fault_rp_filter_strict(&mut self, pod: usize) -> Result<()> {
        let v = self.live_pod(pod)?.host_veth.clone();
        netns::sysctl_set(&self.node_ns, &format!("net/ipv4/conf/{v}/rp_filter"), "1")?;
        self.record("rp_filter_strict", "NF006", self.pod_subject(pod))
    }

    /// KUBE-* rules in both iptables-legacy and iptables-nft, as left by a
    /// node whose iptables backend changed.
    pub fn fault_kube_rules_in_both_backends(&mut self) -> Result<()> {
        let rules = match self.cfg.proxy_mode {
            ProxyMode::Ipvs => super::ipvs::render_iptables(&self.services, CLUSTER_CIDR),
            _ => kube_proxy::render_iptables(&self.services, CLUSTER_CIDR),
        };
        if self.cfg.proxy_mode == ProxyMode::Nftables {
            self.restore_iptables(false, &rules)?;
        }
        self.restore_iptables(true, &rules)?;
        self.record("kube_rules_in_both_backends", "NF001", "node".into())
    }

    // ---- conntrack -----------------------------------------------------------

    /// Fills the node's conntrack table with ASSURED entries (which the kernel
    /// never early-drops) until count = max, then sends packets that need a
    /// new entry until the kernel drops them and logs `table full`.
    /// Costs ~230 MB of kernel memory at max = 262144; freed with the netns.
    pub fn fault_conntrack_table_full(&mut self) -> Result<()> {
        let node = self.node_ns.clone();
        // Counted before the fill: inserts past max may already log (rate-limited).
        let ino = netns::inode(&self.node_netns_path())?;
        let logged_before = table_full_logged(ino)?;
        let max = self.conntrack_max()?;
        let have = self.conntrack_load(max, |k, buf| {
            // Unique tuples from the benchmarking range 198.18.0.0/15.
            let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + (k / 50_000) as u32);
            let sport = 1024 + k % 50_000;
            let _ = writeln!(
                buf,
                "-I -s {src} -d 198.19.0.1 -p tcp --sport {sport} --dport 443 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 7200"
            );
        })?;
        ensure!(
            have >= max,
            "conntrack count {have} did not reach max {max}"
        );

        let drops_before = conntrack_stat(&node, "drop")?;
        let client = (0..self.pods.len())
            .find(|&i| !self.pods[i].deleted)
            .context("no live pod")?;
        let ns_path = self.pods[client].netns_path.clone();
        let to = SocketAddrV4::new(self.net.gateway(), 9);
        // The kernel's log is rate-limited machine-wide (10 lines per 5 s), and other
        // labs may be filling their tables at the same time: keep sending until a
        // line for this table gets through.
        cmd::poll(
            Duration::from_secs(20),
            "a conntrack drop and a `table full` kernel log line",
            || {
                traffic::udp_send(&ns_path, to, 3)?;
                Ok((conntrack_stat(&node, "drop")? > drops_before
                    && table_full_logged(ino)? > logged_before)
                    .then_some(()))
            },
        )?;
        self.record(
            "conntrack_table_full",
            "CT001",
            "node conntrack table".into(),
        )?;
        self.record(
            "conntrack_table_full",
            "CT002",
            "node conntrack stats".into(),
        )?;
        self.record("conntrack_table_full", "CT004", "kernel log".into())
    }

    /// A real UDP flow through service `svc` (UDP) is DNATed to an endpoint;
    /// that endpoint is then removed from the rules while the conntrack entry
    /// stays (kube-proxy would have flushed it). With a single endpoint the
    /// service is also left without endpoints.
    pub fn fault_stale_udp_conntrack(&mut self, svc: usize) -> Result<()> {
        self.stale_udp_conntrack(svc, false)
    }

    /// The same through the service's IPv6 VIP: the IPv6 endpoint that answered is
    /// removed from the IPv6 rules while its conntrack entry stays (dual-stack labs).
    pub fn fault_stale_udp_conntrack_v6(&mut self, svc: usize) -> Result<()> {
        self.stale_udp_conntrack(svc, true)
    }

    fn stale_udp_conntrack(&mut self, svc: usize, v6: bool) -> Result<()> {
        ensure!(
            self.cfg.proxy_mode != ProxyMode::Ipvs,
            "fault_stale_udp_conntrack needs traffic through a VIP, which this kernel cannot proxy in IPVS mode"
        );
        let s = self.service(svc)?.clone();
        ensure!(s.protocol == Protocol::Udp, "service {svc} is not UDP");
        let vip: SocketAddr = match v6 {
            false => s.vip().into(),
            true => s.vip6().context("not a dual-stack service")?.into(),
        };
        let client = self.client_for(svc)?;
        let client_ip: IpAddr = match v6 {
            false => self.pods[client].ip.into(),
            true => self.pods[client].ip6.context("client without IPv6")?.into(),
        };
        let payload = self.payload_for(svc);
        let ns_path = self.pods[client].netns_path.clone();
        // A datagram can be lost on a loaded machine: up to three tries.
        let mut tries = 0;
        let reply = loop {
            tries += 1;
            let res = traffic::requests(&ns_path, vec![(Protocol::Udp, vip, payload.clone())])?
                .pop()
                .context("no result")?;
            match res {
                Err(e) if tries < 3 => eprintln!("lab {}: {e:#}; sending again", self.name),
                r => break r?,
            }
        };
        self.check_reply(svc, &payload, &reply)?;
        let (vip_ip, port) = (vip.ip().to_string(), vip.port().to_string());
        let family = if v6 { "ipv6" } else { "ipv4" };
        let filter = [
            "-f",
            family,
            "-p",
            "udp",
            "--orig-dst",
            &vip_ip,
            "--orig-port-dst",
            &port,
        ];
        let mut list = vec!["conntrack", "-L"];
        list.extend(filter);
        let text = cmd::stdout(&mut netns::exec(&self.node_ns, &list))?;
        let ep_ip: IpAddr = text
            .lines()
            .filter(|l| l.contains(&format!("src={client_ip} ")))
            .find_map(|l| {
                l.split_whitespace()
                    .filter_map(|f| f.strip_prefix("src="))
                    .nth(1)
            })
            .context("no conntrack entry for the UDP request")?
            .parse()?;
        // Only this client's entry: a broad update also touches the other pods'
        // entries, and one of them changing under it makes ctnetlink refuse the lot
        // ("Protocol error", seen on a loaded CI machine). Tried again if it does.
        let client_s = client_ip.to_string();
        let mut update = vec!["conntrack", "-U"];
        update.extend(filter);
        update.extend(["--orig-src", &client_s, "-t", "3600"]);
        let mut attempt = 0;
        while let Err(e) = cmd::run(&mut netns::exec(&self.node_ns, &update)) {
            attempt += 1;
            ensure!(attempt < 3, "{e:#}");
            eprintln!("lab {}: {e:#}; updating again", self.name);
        }
        match (ep_ip, self.services[svc].v6.as_mut()) {
            (IpAddr::V6(ip), Some(v6)) => v6.endpoints.retain(|e| *e.ip() != ip),
            (ip, _) => self.services[svc]
                .endpoints
                .retain(|e| IpAddr::V4(*e.ip()) != ip),
        }
        self.load_proxy_rules()?;
        let after = cmd::stdout(&mut netns::exec(&self.node_ns, &list))?;
        ensure!(
            after.contains(&format!("src={ep_ip} ")),
            "the conntrack entry to {ep_ip} is gone"
        );
        let kind = if v6 {
            "stale_udp_conntrack_v6"
        } else {
            "stale_udp_conntrack"
        };
        self.record(
            kind,
            "CT005",
            format!("{} -> {ep_ip}", self.svc_subject(svc)),
        )
    }

    // ---- DNS -----------------------------------------------------------------

    fn write_pod_resolv(&mut self, pod: usize, content: String) -> Result<()> {
        self.live_pod(pod)?;
        // Rewritten in place: the bind mount in the pod follows the inode.
        fs::write(self.resolv_path(pod), &content)?;
        self.pods[pod].resolv_conf = content;
        Ok(())
    }

    pub fn fault_resolv_wrong_nameserver(&mut self, pod: usize) -> Result<()> {
        let ns = self.live_pod(pod)?.namespace.clone();
        let c = format!(
            "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {NODE_RESOLVER}\noptions ndots:5\n"
        );
        self.write_pod_resolv(pod, c)?;
        self.record("resolv_wrong_nameserver", "DNS001", self.pod_subject(pod))
    }

    pub fn fault_resolv_too_many_search(&mut self, pod: usize) -> Result<()> {
        let ns = self.live_pod(pod)?.namespace.clone();
        let c = format!(
            "search {ns}.svc.cluster.local svc.cluster.local cluster.local corp.example.com \
             eu.corp.example.com us.corp.example.com lab.example.com example.com\n\
             nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n"
        );
        self.write_pod_resolv(pod, c)?;
        self.record("resolv_too_many_search", "DNS002", self.pod_subject(pod))
    }

    pub fn fault_resolv_too_many_nameservers(&mut self, pod: usize) -> Result<()> {
        let ns = self.live_pod(pod)?.namespace.clone();
        let c = format!(
            "search {ns}.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver {CLUSTER_DNS_IP}\nnameserver {NODE_RESOLVER}\nnameserver 198.51.100.54\nnameserver 198.51.100.55\n\
             options ndots:5\n"
        );
        self.write_pod_resolv(pod, c)?;
        self.record(
            "resolv_too_many_nameservers",
            "DNS005",
            self.pod_subject(pod),
        )
    }

    pub fn fault_node_resolv_local_stub(&mut self) -> Result<()> {
        fs::write(
            self.host_root.join("etc/resolv.conf"),
            "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lab.internal\n",
        )?;
        self.record("node_resolv_local_stub", "DNS004", "node".into())
    }
}

/// SIGKILLs socat processes in `scope` whose command line names `port`
/// (children a listener forked for a connection still in progress).
fn kill_socat_children(scope: &std::path::Path, port: u16) {
    let procs = fs::read_to_string(scope.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("socat") && cmdline.contains(&format!(":{port},")) {
            // SAFETY: kill(2) on a PID from the pod's own cgroup.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Lab {
    // ---- CNI ---------------------------------------------------------------

    /// Pod `pod` vanishes without CNI DEL (the runtime crashed mid-delete, or the
    /// node rebooted): netns and veth go; the plugins' nat rules for its address stay.
    pub fn fault_pod_gone_without_cni_del(&mut self, pod: usize) -> Result<()> {
        ensure!(self.cfg.cni.runs_plugins(), "needs a CNI plugin mode");
        let ip = self.live_pod(pod)?.ip;
        self.kill_pod(pod)?;
        // Forget the attachment so that teardown does not run the DEL either.
        self.rt[pod].cni = None;
        netns::del(&self.pods[pod].netns_name)?;
        let veth = self.pods[pod].host_veth.clone();
        cmd::poll(FAULT_TIMEOUT, "the vanished pod's veth to go", || {
            Ok((!self.host_veth_exists(&veth)?).then_some(()))
        })?;
        self.record("pod_gone_without_cni_del", "NF007", format!("ip {ip}"))
    }

    /// A configuration left by an earlier CNI sorts first in the conf dir, so the
    /// runtime uses it (a copy of the lab's under another network name: the pods
    /// stay as they are, only the directory is ambiguous).
    pub fn fault_duplicate_cni_config(&mut self) -> Result<()> {
        let path = self.cni_conflist_path().context("needs a CNI mode")?;
        let mut list: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
        let name = format!("old-{}", self.cfg.cni.network_name());
        list["name"] = serde_json::Value::String(name.clone());
        let old = path.with_file_name(format!("00-{name}.conflist"));
        fs::write(&old, serde_json::to_vec_pretty(&list)?)?;
        self.record("duplicate_cni_config", "CNI001", "node".into())
    }
}

/// Kernel log lines saying that the conntrack table of the netns with inode `ino`
/// is full. Kernels that do not name the netns ("table full, dropping packet")
/// count every table's lines: there is no telling them apart.
pub fn table_full_logged(ino: u64) -> Result<usize> {
    let ours = format!("table full in netns {ino},");
    let out = cmd::run(&mut std::process::Command::new("dmesg"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.contains(&ours) || (l.contains("nf_conntrack: table full") && !l.contains("in netns"))
        })
        .count())
}

/// Sum over CPUs of one `conntrack -S` counter in netns `ns`.
pub fn conntrack_stat(ns: &str, key: &str) -> Result<u64> {
    let text = cmd::stdout(&mut netns::exec(ns, &["conntrack", "-S"]))?;
    let prefix = format!("{key}=");
    let mut total = 0;
    let mut seen = false;
    for f in text.split_whitespace() {
        if let Some(v) = f.strip_prefix(&prefix) {
            total += v.parse::<u64>().context("conntrack -S value")?;
            seen = true;
        }
    }
    if !seen {
        bail!("conntrack -S has no {key}");
    }
    Ok(total)
}
