//! kube-proxy's rule shapes, rendered from the lab's services.
//!
//! Chain names are computed exactly as kube-proxy computes them (sha256, base32,
//! truncated) so that the analyzer sees real names. The iptables text is
//! `iptables-restore` input in kube-proxy's own layout; the nftables text is an
//! `nft -f` transaction in the shape of kube-proxy's nftables mode.

use super::model::Service;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::net::SocketAddrV4;

/// RFC 4648 base32 (the alphabet Go's `base32.StdEncoding` uses), no padding needed
/// since callers truncate.
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn hash_prefix(s: &str, n: usize) -> String {
    let mut h = base32(&Sha256::digest(s.as_bytes()));
    h.truncate(n);
    h
}

/// `KUBE-SVC-` + 16 chars of base32(sha256(servicePortName + protocol)).
pub fn svc_chain(service_port_name: &str, protocol: &str) -> String {
    format!(
        "KUBE-SVC-{}",
        hash_prefix(&format!("{service_port_name}{protocol}"), 16)
    )
}

/// `KUBE-SEP-` + 16 chars of base32(sha256(servicePortName + protocol + "ip:port")).
pub fn sep_chain(service_port_name: &str, protocol: &str, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        hash_prefix(&format!("{service_port_name}{protocol}{endpoint}"), 16)
    )
}

/// nftables mode: `service-<8>-ns/name/proto/port`.
pub fn nft_service_chain(s: &Service) -> String {
    let base = format!(
        "{}/{}/{}/{}",
        s.namespace,
        s.name,
        s.protocol.lower(),
        s.port_name
    );
    format!("service-{}-{base}", hash_prefix(&base, 8))
}

/// nftables mode: `endpoint-<8>-ns/name/proto/port__ip/port`.
pub fn nft_endpoint_chain(s: &Service, ep: &SocketAddrV4) -> String {
    let base = format!(
        "{}/{}/{}/{}__{}/{}",
        s.namespace,
        s.name,
        s.protocol.lower(),
        s.port_name,
        ep.ip(),
        ep.port()
    );
    format!("endpoint-{}-{base}", hash_prefix(&base, 8))
}

/// kube-proxy's `--probability` for endpoint `i` of `n` (1/n, 1/(n-1), …),
/// printed with `%0.10f` as it does. The last endpoint gets no statistic match.
pub fn probability(i: usize, n: usize) -> String {
    format!("{:.10}", 1.0 / (n - i) as f64)
}

/// A comment argument quoted the way kube-proxy writes it: quotes only when needed.
fn comment(text: &str) -> String {
    if text.contains(' ') || text.contains('"') {
        format!("\"{}\"", text.replace('"', "\\\""))
    } else {
        text.to_string()
    }
}

/// Full `iptables-restore` input (filter, nat, mangle) for `services`.
/// `cluster_cidr` feeds the "masquerade off-cluster traffic" rule of each KUBE-SVC.
pub fn render_iptables(services: &[Service], cluster_cidr: &str) -> String {
    let mut f = String::new();
    // filter
    f.push_str("*filter\n");
    for c in [
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FIREWALL",
        "KUBE-FORWARD",
        "KUBE-KUBELET-CANARY",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-CANARY",
        "KUBE-PROXY-FIREWALL",
        "KUBE-SERVICES",
    ] {
        let _ = writeln!(f, ":{c} - [0:0]");
    }
    f.push_str(concat!(
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n",
        "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n",
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n",
        "-A INPUT -j KUBE-FIREWALL\n",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n",
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n",
        "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n",
        "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        "-A OUTPUT -j KUBE-FIREWALL\n",
        "-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n",
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n",
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n",
    ));
    for s in services.iter().filter(|s| s.endpoints.is_empty()) {
        let p = s.protocol.lower();
        let _ = writeln!(
            f,
            "-A KUBE-SERVICES -m comment --comment {} -m {p} -p {p} -d {} --dport {} -j REJECT",
            comment(&format!("{} has no endpoints", s.port_name_string())),
            s.cluster_ip,
            s.port
        );
    }
    f.push_str("COMMIT\n");

    // nat
    f.push_str("*nat\n");
    for c in [
        "KUBE-KUBELET-CANARY",
        "KUBE-MARK-MASQ",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-PROXY-CANARY",
        "KUBE-SERVICES",
    ] {
        let _ = writeln!(f, ":{c} - [0:0]");
    }
    for s in services.iter().filter(|s| !s.endpoints.is_empty()) {
        let _ = writeln!(f, ":{} - [0:0]", s.svc_chain);
        for sep in &s.sep_chains {
            let _ = writeln!(f, ":{sep} - [0:0]");
        }
    }
    f.push_str(concat!(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n",
    ));
    for s in services.iter().filter(|s| !s.endpoints.is_empty()) {
        let spn = s.port_name_string();
        let p = s.protocol.lower();
        let cip = comment(&format!("{spn} cluster IP"));
        let _ = writeln!(
            f,
            "-A KUBE-SERVICES -m comment --comment {cip} -m {p} -p {p} -d {} --dport {} -j {}",
            s.cluster_ip, s.port, s.svc_chain
        );
        let _ = writeln!(
            f,
            "-A {} -m comment --comment {cip} -m {p} -p {p} -d {} --dport {} ! -s {cluster_cidr} -j KUBE-MARK-MASQ",
            s.svc_chain, s.cluster_ip, s.port
        );
        let n = s.endpoints.len();
        for (i, (ep, sep)) in s.endpoints.iter().zip(&s.sep_chains).enumerate() {
            let c = comment(&format!("{spn} -> {ep}"));
            if i + 1 < n {
                let _ = writeln!(
                    f,
                    "-A {} -m comment --comment {c} -m statistic --mode random --probability {} -j {sep}",
                    s.svc_chain,
                    probability(i, n)
                );
            } else {
                let _ = writeln!(f, "-A {} -m comment --comment {c} -j {sep}", s.svc_chain);
            }
        }
        for (ep, sep) in s.endpoints.iter().zip(&s.sep_chains) {
            let c = comment(&spn);
            let _ = writeln!(
                f,
                "-A {sep} -m comment --comment {c} -s {} -j KUBE-MARK-MASQ",
                ep.ip()
            );
            let _ = writeln!(
                f,
                "-A {sep} -m comment --comment {c} -m {p} -p {p} -j DNAT --to-destination {ep}"
            );
        }
    }
    f.push_str("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    f.push_str("COMMIT\n");

    // mangle: the canary and hint chains kubelet and kube-proxy create.
    f.push_str("*mangle\n:KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n");
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from kube-proxy's own test fixtures and real nodes.
    #[test]
    fn chain_hashes_match_kube_proxy() {
        assert_eq!(
            svc_chain("default/kubernetes:https", "tcp"),
            "KUBE-SVC-NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            svc_chain("kube-system/kube-dns:dns", "udp"),
            "KUBE-SVC-TCOU7JCQXEZGVUNU"
        );
        assert_eq!(
            svc_chain("kube-system/kube-dns:dns-tcp", "tcp"),
            "KUBE-SVC-ERIFXISQEP7F7OF4"
        );
        assert_eq!(
            svc_chain("ns1/svc1:p80", "tcp"),
            "KUBE-SVC-XPGD46QRK7WJZT7O"
        );
        assert_eq!(
            sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80"),
            "KUBE-SEP-SXIVWICOYRO3J4NJ"
        );
    }

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

    #[test]
    fn probabilities_are_one_over_remaining() {
        assert_eq!(probability(0, 3), "0.3333333333");
        assert_eq!(probability(1, 3), "0.5000000000");
        assert_eq!(probability(0, 4), "0.2500000000");
    }
}
