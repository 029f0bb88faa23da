//! Chain names and statistic probabilities.

use sha2::{Digest, Sha256};

/// RFC 4648 base32 (the alphabet Go's `base32.StdEncoding` uses), unpadded: callers
/// truncate anyway.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
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

/// The first `n` characters of base32(sha256(s)).
pub fn hash_prefix(s: &str, n: usize) -> String {
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
pub fn nft_service_chain(namespace: &str, name: &str, protocol: &str, port_name: &str) -> String {
    let base = format!("{namespace}/{name}/{protocol}/{port_name}");
    format!("service-{}-{base}", hash_prefix(&base, 8))
}

/// nftables mode: `endpoint-<8>-ns/name/proto/port__ip/port`; an IPv6 address has
/// its colons turned into dots (a chain name cannot hold a colon), as kube-proxy does.
pub fn nft_endpoint_chain(
    namespace: &str,
    name: &str,
    protocol: &str,
    port_name: &str,
    endpoint: std::net::SocketAddr,
) -> String {
    let base = format!(
        "{namespace}/{name}/{protocol}/{port_name}__{}/{}",
        endpoint.ip().to_string().replace(':', "."),
        endpoint.port()
    );
    format!("endpoint-{}-{base}", hash_prefix(&base, 8))
}

/// kube-proxy's `--probability` for endpoint `i` of `n` (1/n, 1/(n-1), …), printed
/// with `%0.10f` as it does. The last endpoint gets no statistic match.
pub fn probability(i: usize, n: usize) -> String {
    format!("{:.10}", 1.0 / n.saturating_sub(i).max(1) as f64)
}

/// The same probability as `iptables-save` prints it back: the kernel keeps it as
/// `lround(p * 2^31)` and the save prints `%.11f` of that (`0.3333333333` comes back
/// as `0.33333333349`).
pub fn saved_probability(i: usize, n: usize) -> String {
    const SCALE: f64 = 2_147_483_648.0; // 0x80000000
    let given: f64 = probability(i, n).parse().unwrap_or(1.0);
    let fixed = (given * SCALE).round();
    format!("{:.11}", fixed / SCALE)
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
            sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80"),
            "KUBE-SEP-SXIVWICOYRO3J4NJ"
        );
        assert_eq!(
            nft_service_chain("ns1", "svc1", "tcp", "p80"),
            "service-ULMVA6XW-ns1/svc1/tcp/p80"
        );
        assert_eq!(
            nft_endpoint_chain(
                "ns1",
                "svc1",
                "tcp",
                "p80",
                "10.180.0.1:80".parse().unwrap()
            ),
            "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
        );
        // IPv6: colons become dots before hashing (kube-proxy's
        // servicePortEndpointChainNameBase).
        let v6 = nft_endpoint_chain(
            "ns1",
            "svc1",
            "tcp",
            "p80",
            "[fd00:10::1]:80".parse().unwrap(),
        );
        let base = "ns1/svc1/tcp/p80__fd00.10..1/80";
        assert_eq!(v6, format!("endpoint-{}-{base}", hash_prefix(base, 8)));
    }

    #[test]
    fn probabilities() {
        assert_eq!(probability(0, 3), "0.3333333333");
        assert_eq!(probability(1, 3), "0.5000000000");
        // As iptables-nft-save printed them on a real node (analyzer/tests/integration/data).
        assert_eq!(saved_probability(0, 3), "0.33333333349");
        assert_eq!(saved_probability(1, 3), "0.50000000000");
        assert_eq!(saved_probability(0, 10), "0.10000000009");
    }
}
