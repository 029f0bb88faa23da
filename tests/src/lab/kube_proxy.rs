//! kube-proxy's rule shapes, rendered from the lab's services.
//!
//! Chain names are computed exactly as kube-proxy computes them (sha256, base32,
//! truncated) so that the analyzer sees real names. The iptables text is
//! `iptables-restore` input in kube-proxy's own layout; the nftables text is an
//! `nft -f` transaction in the shape of kube-proxy's nftables mode. The pure naming
//! and rendering live in `netsnap-kube-shapes`, shared with the scale generator.

use super::model::{Protocol, Service};
use netsnap_kube_shapes as shapes;
use std::borrow::Cow;
use std::net::SocketAddr;

/// `KUBE-SVC-` + 16 chars of base32(sha256(servicePortName + protocol)).
pub fn svc_chain(service_port_name: &str, protocol: &str) -> String {
    shapes::svc_chain(service_port_name, protocol)
}

/// `KUBE-SEP-` + 16 chars of base32(sha256(servicePortName + protocol + "ip:port")).
pub fn sep_chain(service_port_name: &str, protocol: &str, endpoint: &str) -> String {
    shapes::sep_chain(service_port_name, protocol, endpoint)
}

/// nftables mode: `service-<8>-ns/name/proto/port`.
pub fn nft_service_chain(s: &Service) -> String {
    shapes::nft_service_chain(&s.namespace, &s.name, s.protocol.lower(), &s.port_name)
}

/// nftables mode: `endpoint-<8>-ns/name/proto/port__ip/port` (IPv6: colons as dots).
pub fn nft_endpoint_chain(s: &Service, ep: SocketAddr) -> String {
    shapes::nft_endpoint_chain(&s.namespace, &s.name, s.protocol.lower(), &s.port_name, ep)
}

/// kube-proxy's `--probability` for endpoint `i` of `n` (1/n, 1/(n-1), …),
/// printed with `%0.10f` as it does. The last endpoint gets no statistic match.
pub fn probability(i: usize, n: usize) -> String {
    shapes::probability(i, n)
}

fn shapes_protocol(p: Protocol) -> shapes::Protocol {
    match p {
        Protocol::Tcp => shapes::Protocol::Tcp,
        Protocol::Udp => shapes::Protocol::Udp,
    }
}

/// The lab's service as kube-shapes sees it, with the chain names the lab computed.
fn service_port(s: &Service) -> shapes::ServicePort<'_> {
    shapes::ServicePort {
        namespace: &s.namespace,
        name: &s.name,
        port_name: &s.port_name,
        protocol: shapes_protocol(s.protocol),
        cluster_ip: s.cluster_ip.into(),
        port: s.port,
        endpoints: s.endpoints.iter().map(|e| SocketAddr::V4(*e)).collect(),
        svc_chain: Cow::Borrowed(&s.svc_chain),
        sep_chains: Cow::Borrowed(&s.sep_chains),
    }
}

/// The IPv6 side of a dual-stack service, as the IPv6 proxier programs it.
fn service_port_v6(s: &Service) -> Option<shapes::ServicePort<'_>> {
    let v6 = s.v6.as_ref()?;
    Some(shapes::ServicePort {
        namespace: &s.namespace,
        name: &s.name,
        port_name: &s.port_name,
        protocol: shapes_protocol(s.protocol),
        cluster_ip: v6.cluster_ip.into(),
        port: s.port,
        endpoints: v6.endpoints.iter().map(|e| SocketAddr::V6(*e)).collect(),
        svc_chain: Cow::Borrowed(&s.svc_chain),
        sep_chains: Cow::Borrowed(&v6.sep_chains),
    })
}

/// Full `iptables-restore` input (filter, nat, mangle) for `services`.
/// `cluster_cidr` feeds the "masquerade off-cluster traffic" rule of each KUBE-SVC.
pub fn render_iptables(services: &[Service], cluster_cidr: &str) -> String {
    let ports: Vec<_> = services.iter().map(service_port).collect();
    shapes::render_restore(&ports, cluster_cidr)
}

/// The IPv6 proxier's `ip6tables-restore` input for the services with an IPv6 side.
/// `cluster_cidr6` is the IPv6 cluster CIDR.
pub fn render_ip6tables(services: &[Service], cluster_cidr6: &str) -> String {
    let ports: Vec<_> = services.iter().filter_map(service_port_v6).collect();
    shapes::render_restore(&ports, cluster_cidr6)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hash and probability vectors are tested in kube-shapes; this checks the wiring.
    #[test]
    fn nft_chain_names_match_kube_proxy() {
        let s = Service::new(
            "ns1",
            "svc1",
            "p80",
            super::super::model::Protocol::Tcp,
            "172.30.0.41:80".parse().unwrap(),
            80,
            vec!["10.180.0.1:80".parse().unwrap()],
        );
        assert_eq!(s.nft_service_chain, "service-ULMVA6XW-ns1/svc1/tcp/p80");
        assert_eq!(
            s.nft_endpoint_chains[0],
            "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
        );
    }
}
