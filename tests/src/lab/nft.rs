//! kube-proxy's nftables mode: `table ip kube-proxy` (and, for the IPv6 side of a
//! dual-stack lab, `table ip6 kube-proxy`: same chains and maps, `ip6` matches and
//! `ipv6_addr` keys), rendered as one `nft -f` transaction that replaces the whole
//! table (so a reload is atomic).

use super::model::{Protocol, Service};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// One service port of one family, as the nft transaction needs it.
struct Port<'a> {
    name: String,
    protocol: Protocol,
    cluster_ip: IpAddr,
    port: u16,
    endpoints: Vec<SocketAddr>,
    svc_chain: &'a str,
    endpoint_chains: &'a [String],
}

impl Port<'_> {
    fn v4(s: &Service) -> Port<'_> {
        Port {
            name: s.port_name_string(),
            protocol: s.protocol,
            cluster_ip: s.cluster_ip.into(),
            port: s.port,
            endpoints: s.endpoints.iter().map(|e| SocketAddr::V4(*e)).collect(),
            svc_chain: &s.nft_service_chain,
            endpoint_chains: &s.nft_endpoint_chains,
        }
    }

    fn v6(s: &Service) -> Option<Port<'_>> {
        let v6 = s.v6.as_ref()?;
        Some(Port {
            name: s.port_name_string(),
            protocol: s.protocol,
            cluster_ip: v6.cluster_ip.into(),
            port: s.port,
            endpoints: v6.endpoints.iter().map(|e| SocketAddr::V6(*e)).collect(),
            svc_chain: &s.nft_service_chain,
            endpoint_chains: &v6.nft_endpoint_chains,
        })
    }
}

/// The transaction: (re)creates `table ip kube-proxy` for `services`.
/// `service_cidr`/`cluster_cidr` are the lab's, `node_ip` the NodePort address.
pub fn render(
    services: &[Service],
    service_cidr: &str,
    cluster_cidr: &str,
    node_ip: &str,
) -> String {
    let ports: Vec<Port<'_>> = services.iter().map(Port::v4).collect();
    render_family(false, &ports, service_cidr, cluster_cidr, node_ip)
}

/// The IPv6 proxier's transaction: (re)creates `table ip6 kube-proxy` for the IPv6
/// side of `services` (IPv6 service and cluster CIDRs, IPv6 node address).
pub fn render_ip6(
    services: &[Service],
    service_cidr6: &str,
    cluster_cidr6: &str,
    node_ip6: &str,
) -> String {
    let ports: Vec<Port<'_>> = services.iter().filter_map(Port::v6).collect();
    render_family(true, &ports, service_cidr6, cluster_cidr6, node_ip6)
}

fn render_family(
    ipv6: bool,
    services: &[Port<'_>],
    service_cidr: &str,
    cluster_cidr: &str,
    node_ip: &str,
) -> String {
    let (t, ip, addr) = if ipv6 {
        ("ip6 kube-proxy", "ip6", "ipv6_addr")
    } else {
        ("ip kube-proxy", "ip", "ipv4_addr")
    };
    let mut f = String::new();
    // "add" then "delete" makes the delete valid whether or not the table exists.
    let _ = writeln!(f, "add table {t}");
    let _ = writeln!(f, "delete table {t}");
    let _ = writeln!(f, "add table {t} {{ comment \"rules for kube-proxy\" ; }}");
    for line in [
        "add set {T} cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }",
        "add set {T} nodeport-ips { type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }",
        "add map {T} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"destinations that are subject to LoadBalancerSourceRanges\" ; }",
        "add map {T} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }",
        "add map {T} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }",
        "add map {T} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }",
        "add map {T} service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }",
        "add chain {T} cluster-ips-check",
        "add chain {T} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }",
        "add chain {T} filter-output-pre-dnat { type filter hook output priority -110 ; }",
        "add chain {T} filter-forward { type filter hook forward priority 0 ; }",
        "add chain {T} filter-input { type filter hook input priority 0 ; }",
        "add chain {T} filter-output { type filter hook output priority 0 ; }",
        "add chain {T} firewall-check",
        "add chain {T} mark-for-masquerade",
        "add chain {T} masquerading",
        "add chain {T} nat-output { type nat hook output priority -100 ; }",
        "add chain {T} nat-postrouting { type nat hook postrouting priority 100 ; }",
        "add chain {T} nat-prerouting { type nat hook prerouting priority -100 ; }",
        "add chain {T} nodeport-endpoints-check",
        "add chain {T} reject-chain { comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; }",
        "add chain {T} services",
        "add chain {T} service-endpoints-check",
        "add rule {T} cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"",
        "add rule {T} cluster-ips-check ip daddr { {SERVICE_CIDR} } drop comment \"Drop traffic to unallocated ClusterIPs\"",
        "add rule {T} filter-prerouting-pre-dnat ct state new jump firewall-check",
        "add rule {T} filter-forward ct state new jump service-endpoints-check",
        "add rule {T} filter-forward ct state new jump cluster-ips-check",
        "add rule {T} filter-input ct state new jump nodeport-endpoints-check",
        "add rule {T} filter-input ct state new jump service-endpoints-check",
        "add rule {T} filter-output ct state new jump service-endpoints-check",
        "add rule {T} filter-output-pre-dnat ct state new jump firewall-check",
        "add rule {T} filter-output ct state new jump cluster-ips-check",
        "add rule {T} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        "add rule {T} mark-for-masquerade mark set mark or 0x4000",
        "add rule {T} masquerading mark and 0x4000 == 0 return",
        "add rule {T} masquerading mark set mark xor 0x4000",
        "add rule {T} masquerading masquerade fully-random",
        "add rule {T} nat-output jump services",
        "add rule {T} nat-postrouting jump masquerading",
        "add rule {T} nat-prerouting jump services",
        "add rule {T} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports",
        "add rule {T} reject-chain reject",
        "add rule {T} services ip daddr . meta l4proto . th dport vmap @service-ips",
        "add rule {T} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
        "add element {T} nodeport-ips { {NODE_IP} }",
        "add rule {T} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
    ] {
        f.push_str(
            &line
                .replace("{T}", t)
                .replace("ip daddr", &format!("{ip} daddr"))
                .replace("ipv4_addr", addr)
                .replace("{SERVICE_CIDR}", service_cidr)
                .replace("{NODE_IP}", node_ip),
        );
        f.push('\n');
    }

    for s in services {
        let p = s.protocol.lower();
        let _ = writeln!(f, "# {}", s.name);
        let _ = writeln!(f, "add element {t} cluster-ips {{ {} }}", s.cluster_ip);
        if s.endpoints.is_empty() {
            let _ = writeln!(
                f,
                "add element {t} no-endpoint-services {{ {} . {p} . {} comment \"{}\" : goto reject-chain }}",
                s.cluster_ip, s.port, s.name
            );
            continue;
        }
        // Endpoint chains first: the service chain's vmap refers to them.
        for (ep, chain) in s.endpoints.iter().zip(s.endpoint_chains) {
            let _ = writeln!(f, "add chain {t} {chain}");
            let _ = writeln!(
                f,
                "add rule {t} {chain} {ip} saddr {} jump mark-for-masquerade",
                ep.ip()
            );
            let _ = writeln!(f, "add rule {t} {chain} meta l4proto {p} dnat to {ep}");
        }
        let svc = s.svc_chain;
        let _ = writeln!(f, "add chain {t} {svc}");
        let _ = writeln!(
            f,
            "add rule {t} {svc} {ip} daddr {} {ip} saddr != {cluster_cidr} jump mark-for-masquerade",
            s.cluster_ip
        );
        let targets: Vec<String> = s
            .endpoint_chains
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i} : goto {c}"))
            .collect();
        let _ = writeln!(
            f,
            "add rule {t} {svc} numgen random mod {} vmap {{ {} }}",
            s.endpoints.len(),
            targets.join(" , ")
        );
        let _ = writeln!(
            f,
            "add element {t} service-ips {{ {} . {p} . {} : goto {svc} }}",
            s.cluster_ip, s.port
        );
    }
    f
}
