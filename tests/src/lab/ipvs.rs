//! kube-proxy's IPVS mode on the lab node, as its proxier (`pkg/proxy/ipvs`) programs
//! a node:
//!
//! * `kube-ipvs0` holding every ClusterIP as a /32. kube-proxy makes it a dummy; this
//!   kernel has no `dummy` module, so a bridge with ARP off stands in, left DOWN like
//!   the real one (`<BROADCAST,NOARP> … state DOWN`): its addresses are still local.
//! * kube-proxy's ipsets, made with the real `ipset` in the node netns (`ipset restore`):
//!   `KUBE-CLUSTER-IP` (hash:ip,port: every VIP), `KUBE-LOOP-BACK` (hash:ip,port,ip:
//!   every local endpoint with itself as source, for hairpin masquerade),
//!   `KUBE-IPVS-IPS` (hash:ip: the addresses bound to kube-ipvs0) and the empty
//!   external-IP, load-balancer, node-port and health-check sets.
//! * The iptables rules of IPVS mode, loaded with `iptables-nft-restore`: `KUBE-SERVICES`
//!   matching `KUBE-CLUSTER-IP` (mark for masquerade when off-cluster, then ACCEPT),
//!   `KUBE-POSTROUTING` masquerading `KUBE-LOOP-BACK` and marked packets,
//!   `KUBE-MARK-MASQ`, `KUBE-FORWARD`, `KUBE-IPVS-FILTER`… and no `KUBE-SVC`/`KUBE-SEP`
//!   chains: the virtual servers do the load balancing.
//! * The virtual servers themselves: this kernel has no IPVS (`/proc/net/ip_vs` is
//!   absent), so their `/proc/net/ip_vs` text is rendered ([`Lab::ipvs_proc_text`],
//!   `<lab dir>/ip_vs.txt`) and a test places it in the collected bundle
//!   (`netsnap_tests::bundle_edit`). Packets to a VIP are delivered locally and refused:
//!   IPVS labs send no service traffic.
//!
//! Faults that break kube-proxy's sync ([`IpvsFaults`]) leave one service port without
//! a virtual server, or its VIP off kube-ipvs0, through every later reload.

use super::model::{Protocol, Service};
use super::{cmd, netns, Lab};
use anyhow::{Context, Result};
use netsnap_kube_shapes::ipvs::{proc_ip_vs, VirtualServer};
use netsnap_kube_shapes::Protocol as ShapeProtocol;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;

/// kube-proxy's dummy device (`defaultDummyDevice`).
pub const KUBE_IPVS0: &str = "kube-ipvs0";

/// kube-proxy's masquerade mark (`--masquerade-bit` 14).
const MASQ_MARK: &str = "0x4000";

/// The comments kube-proxy puts on the rules matching these sets (its `ipsetInfo`).
const LOOP_BACK_COMMENT: &str =
    "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose";
const CLUSTER_IP_COMMENT: &str = "Kubernetes service cluster ip + port for masquerade purpose";

/// Every set kube-proxy makes (`ipsetInfo`), with its type's create options.
const SETS: &[(&str, &str)] = &[
    (
        "KUBE-LOOP-BACK",
        "hash:ip,port,ip family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-CLUSTER-IP",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-EXTERNAL-IP",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-EXTERNAL-IP-LOCAL",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-LOAD-BALANCER",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-LOAD-BALANCER-FW",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-LOAD-BALANCER-LOCAL",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-LOAD-BALANCER-SOURCE-IP",
        "hash:ip,port,ip family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-LOAD-BALANCER-SOURCE-CIDR",
        "hash:ip,port,net family inet hashsize 1024 maxelem 65536",
    ),
    ("KUBE-NODE-PORT-TCP", "bitmap:port range 0-65535"),
    ("KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port range 0-65535"),
    ("KUBE-NODE-PORT-UDP", "bitmap:port range 0-65535"),
    ("KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port range 0-65535"),
    (
        "KUBE-NODE-PORT-SCTP-HASH",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    (
        "KUBE-NODE-PORT-LOCAL-SCTP-HASH",
        "hash:ip,port family inet hashsize 1024 maxelem 65536",
    ),
    ("KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port range 0-65535"),
    (
        "KUBE-IPVS-IPS",
        "hash:ip family inet hashsize 1024 maxelem 65536",
    ),
];

/// Service ports (indices into [`Lab::services`]) whose sync kube-proxy "failed".
#[derive(Clone, Debug, Default)]
pub struct IpvsFaults {
    /// In the ipsets, but IPVS has no virtual server for them.
    pub no_virtual_server: BTreeSet<usize>,
    /// Virtual server in place, VIP not bound to kube-ipvs0.
    pub unbound_vip: BTreeSet<usize>,
}

/// `ip,proto:port`, the ipset member kube-proxy writes for a VIP or endpoint.
fn member(ip: Ipv4Addr, proto: Protocol, port: u16) -> String {
    format!("{ip},{}:{port}", proto.lower())
}

/// `ipset restore` input: every set created (kept if it exists), flushed and filled
/// for `services` (all endpoints are local to the lab node). `bound` are the
/// addresses on kube-ipvs0.
pub fn render_ipsets(services: &[Service], bound: &BTreeSet<Ipv4Addr>) -> String {
    let mut f = String::new();
    for (name, opts) in SETS {
        let _ = writeln!(f, "create {name} {opts} -exist\nflush {name}");
    }
    let mut seen = BTreeSet::new();
    for s in services {
        let vip = member(s.cluster_ip, s.protocol, s.port);
        if seen.insert(format!("c {vip}")) {
            let _ = writeln!(f, "add KUBE-CLUSTER-IP {vip}");
        }
        for e in &s.endpoints {
            let lb = format!("{},{}", member(*e.ip(), s.protocol, e.port()), e.ip());
            if seen.insert(format!("l {lb}")) {
                let _ = writeln!(f, "add KUBE-LOOP-BACK {lb}");
            }
        }
    }
    for ip in bound {
        let _ = writeln!(f, "add KUBE-IPVS-IPS {ip}");
    }
    f
}

/// `iptables-restore` input of IPVS mode (filter and nat, replacing both) in the
/// order `writeIptablesRules` writes it; `cluster_cidr` is the local-traffic detector.
pub fn render_iptables(services: &[Service], cluster_cidr: &str) -> String {
    let any_vip = !services.is_empty();
    let any_endpoint = services.iter().any(|s| !s.endpoints.is_empty());
    let mut f =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for c in [
        "KUBE-FORWARD",
        "KUBE-IPVS-FILTER",
        "KUBE-IPVS-OUT-FILTER",
        "KUBE-NODE-PORT",
        "KUBE-PROXY-FIREWALL",
        "KUBE-SOURCE-RANGES-FIREWALL",
    ] {
        let _ = writeln!(f, ":{c} - [0:0]");
    }
    for (from, to, comment) in [
        ("INPUT", "KUBE-IPVS-FILTER", "kubernetes ipvs access filter"),
        ("INPUT", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"),
        ("INPUT", "KUBE-NODE-PORT", "kubernetes health check rules"),
        (
            "FORWARD",
            "KUBE-PROXY-FIREWALL",
            "kube-proxy firewall rules",
        ),
        ("FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"),
        (
            "OUTPUT",
            "KUBE-IPVS-OUT-FILTER",
            "kubernetes ipvs access filter",
        ),
    ] {
        let _ = writeln!(f, "-A {from} -m comment --comment \"{comment}\" -j {to}");
    }
    f.push_str("-A KUBE-SOURCE-RANGES-FIREWALL -j DROP\n");
    let _ = writeln!(
        f,
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A KUBE-NODE-PORT -m comment --comment \"Kubernetes health check node port\" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT"
    );
    for set in [
        "KUBE-LOAD-BALANCER",
        "KUBE-CLUSTER-IP",
        "KUBE-EXTERNAL-IP",
        "KUBE-EXTERNAL-IP-LOCAL",
    ] {
        let _ = writeln!(
            f,
            "-A KUBE-IPVS-FILTER -m set --match-set {set} dst,dst -j RETURN"
        );
    }
    f.push_str(
        "-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN\n\
         -A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT\n\
         COMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for c in [
        "KUBE-LOAD-BALANCER",
        "KUBE-MARK-MASQ",
        "KUBE-NODE-PORT",
        "KUBE-POSTROUTING",
        "KUBE-SERVICES",
    ] {
        let _ = writeln!(f, ":{c} - [0:0]");
    }
    f.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN\n",
    );
    if any_endpoint {
        let _ = writeln!(
            f,
            "-A KUBE-POSTROUTING -m comment --comment \"{LOOP_BACK_COMMENT}\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"
        );
    }
    if any_vip {
        let _ = writeln!(
            f,
            "-A KUBE-SERVICES -m comment --comment \"{CLUSTER_IP_COMMENT}\" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s {cluster_cidr} -j KUBE-MARK-MASQ"
        );
    }
    f.push_str("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT\n");
    f.push_str("-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ\n");
    if any_vip {
        f.push_str("-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\n");
    }
    let _ = writeln!(
        f,
        "-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}\nCOMMIT"
    );
    f
}

/// `/proc/net/ip_vs` for `services`, less those in `missing` (indices).
pub fn render_proc(services: &[Service], missing: &BTreeSet<usize>) -> String {
    proc_ip_vs(
        services
            .iter()
            .enumerate()
            .filter(|(i, _)| !missing.contains(i))
            .map(|(_, s)| VirtualServer {
                protocol: match s.protocol {
                    Protocol::Tcp => ShapeProtocol::Tcp,
                    Protocol::Udp => ShapeProtocol::Udp,
                },
                vip: s.vip(),
                real_servers: &s.endpoints,
            }),
    )
}

impl Lab {
    /// The `/proc/net/ip_vs` this node would show: the IPVS mode's virtual servers for
    /// the services as last loaded (`None` in other modes).
    pub fn ipvs_proc_text(&self) -> Option<String> {
        fs::read_to_string(self.dir.join("ip_vs.txt")).ok()
    }

    /// The addresses kube-proxy binds to kube-ipvs0 (every ClusterIP but those whose
    /// bind "failed").
    fn ipvs_bound(&self) -> BTreeSet<Ipv4Addr> {
        let unbound: BTreeSet<Ipv4Addr> = self
            .ipvs
            .unbound_vip
            .iter()
            .map(|&i| self.services[i].cluster_ip)
            .collect();
        self.services
            .iter()
            .map(|s| s.cluster_ip)
            .filter(|ip| !unbound.contains(ip))
            .collect()
    }

    /// One kube-proxy sync in IPVS mode: kube-ipvs0 and its addresses, the ipsets,
    /// the iptables rules, and the rendered virtual servers.
    pub(super) fn load_ipvs(&mut self) -> Result<()> {
        let node = self.node_ns.clone();
        let exists = cmd::output(&mut netns::ip(&node, &["link", "show", "dev", KUBE_IPVS0]))?
            .status
            .success();
        if !exists {
            cmd::run(&mut netns::ip(
                &node,
                &["link", "add", KUBE_IPVS0, "type", "bridge"],
            ))
            .context("creating kube-ipvs0 (a bridge stands in for the dummy)")?;
            cmd::run(&mut netns::ip(
                &node,
                &["link", "set", KUBE_IPVS0, "arp", "off"],
            ))?;
        }
        let bound = self.ipvs_bound();
        let have = cmd::stdout(&mut netns::ip(
            &node,
            &["-4", "-o", "addr", "show", "dev", KUBE_IPVS0],
        ))?;
        let have: BTreeSet<Ipv4Addr> = have
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3)?.split('/').next()?.parse().ok())
            .collect();
        let mut batch = String::new();
        for ip in bound.difference(&have) {
            let _ = writeln!(batch, "addr add {ip}/32 dev {KUBE_IPVS0}");
        }
        for ip in have.difference(&bound) {
            let _ = writeln!(batch, "addr del {ip}/32 dev {KUBE_IPVS0}");
        }
        if !batch.is_empty() {
            Self::ip_batch(&node, &batch)?;
        }
        let sets = render_ipsets(&self.services, &bound);
        fs::write(self.dir.join("ipset.restore"), &sets)?;
        cmd::run_stdin(
            &mut netns::exec(&node, &["ipset", "restore"]),
            Some(sets.as_bytes()),
        )
        .context("ipset restore of kube-proxy's sets (the input is in the lab dir)")?;
        let rules = render_iptables(&self.services, super::CLUSTER_CIDR);
        self.restore_iptables(false, &rules)?;
        let text = render_proc(&self.services, &self.ipvs.no_virtual_server);
        fs::write(self.dir.join("ip_vs.txt"), text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(eps: &[&str]) -> Service {
        Service::new(
            "default",
            "web",
            "http",
            Protocol::Tcp,
            "10.96.1.1:80".parse().unwrap(),
            8080,
            eps.iter().map(|e| e.parse().unwrap()).collect(),
        )
    }

    #[test]
    fn sets_hold_vips_local_endpoints_and_bound_addresses() {
        let bound = BTreeSet::from([Ipv4Addr::new(10, 96, 1, 1)]);
        let s = render_ipsets(&[svc(&["10.244.1.2:8080"])], &bound);
        assert!(s.contains("add KUBE-CLUSTER-IP 10.96.1.1,tcp:80\n"), "{s}");
        assert!(
            s.contains("add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2\n"),
            "{s}"
        );
        assert!(s.contains("add KUBE-IPVS-IPS 10.96.1.1\n"), "{s}");
        assert_eq!(s.matches("create ").count(), SETS.len());
    }

    #[test]
    fn rules_match_sets_and_have_no_service_chains() {
        let r = render_iptables(&[svc(&["10.244.1.2:8080"])], "10.244.0.0/16");
        assert!(
            r.contains("--match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ")
        );
        assert!(r.contains("--match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"));
        assert!(!r.contains("KUBE-SVC-") && !r.contains("KUBE-SEP-"));
        // No service: the set rules that kube-proxy writes only for non-empty sets go.
        let r = render_iptables(&[], "10.244.0.0/16");
        assert!(!r.contains("KUBE-CLUSTER-IP dst,dst -j ACCEPT"));
        assert!(!r.contains("KUBE-LOOP-BACK dst,dst,src"));
    }

    #[test]
    fn a_missing_virtual_server_is_left_out() {
        let s = [svc(&["10.244.1.2:8080"]), svc(&[])];
        let all = render_proc(&s, &BTreeSet::new());
        assert_eq!(all.matches("TCP  0A600101:0050 rr  \n").count(), 2);
        let one = render_proc(&s, &BTreeSet::from([0]));
        assert_eq!(one.matches("TCP  ").count(), 1);
        // The header's three lines, then the service left, which has no real server.
        assert_eq!(one.lines().count(), 4, "{one}");
    }
}
