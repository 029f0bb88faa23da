//! Rewriting any text: every address, hardware address, UUID, kube-proxy hash and
//! collected name is replaced by its pseudonym, in the same written form; every
//! other byte is copied. Also the word splitter used to collect names.

use crate::names::{is_redactable, kube_chain_hash, nft_chain};
use crate::pseudonyms::{colon_hex, Pseudonyms};
use crate::scan::{scan, Piece};
use std::net::{IpAddr, Ipv6Addr};

/// Rewrites `input` into `out`.
pub(crate) fn rewrite(p: &mut Pseudonyms, input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    scan(input, &mut |piece| emit(p, piece, out));
}

/// Rewrites a string (JSON values, manifest fields).
pub(crate) fn rewrite_str(p: &mut Pseudonyms, input: &str) -> String {
    let mut out = Vec::with_capacity(input.len());
    rewrite(p, input.as_bytes(), &mut out);
    // Only ASCII runs are replaced (by ASCII), so valid UTF-8 stays valid.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn emit(p: &mut Pseudonyms, piece: Piece<'_>, out: &mut Vec<u8>) {
    match piece {
        Piece::Raw(r) => out.extend_from_slice(r),
        Piece::V4 { addr, prefix } => {
            let ip = IpAddr::V4(addr);
            let text = match prefix {
                Some(len) => network(p, ip, len),
                None => p.ips.map(ip).to_string(),
            };
            out.extend_from_slice(text.as_bytes());
        }
        Piece::V6 {
            addr,
            prefix,
            expanded,
            upper,
        } => {
            let text = match prefix {
                Some(len) => {
                    let IpAddr::V6(net) = p.ips.map_network(IpAddr::V6(addr), len) else {
                        return;
                    };
                    let orig = format!("{}/{len}", v6_text(addr, expanded, upper));
                    let mapped = format!("{}/{len}", v6_text(net, expanded, upper));
                    p.cidrs.insert(orig, mapped.clone());
                    mapped
                }
                None => v6_text(p.ips.map_v6(addr), expanded, upper),
            };
            out.extend_from_slice(text.as_bytes());
        }
        Piece::Hw { bytes, upper } => {
            let mapped = hw_text(p, &bytes);
            let mapped = if upper {
                mapped.to_ascii_uppercase()
            } else {
                mapped
            };
            out.extend_from_slice(mapped.as_bytes());
        }
        Piece::Uuid(u) => {
            let text = String::from_utf8_lossy(u);
            out.extend_from_slice(p.names.uuid(&text).as_bytes());
        }
        Piece::Word(w) => word(p, w, out),
    }
}

fn network(p: &mut Pseudonyms, ip: IpAddr, len: u8) -> String {
    format!("{}/{len}", network_addr(p, ip, len))
}

/// The address part of a network's pseudonym (nft writes `{"addr": …, "len": …}`).
pub(crate) fn network_addr(p: &mut Pseudonyms, ip: IpAddr, len: u8) -> String {
    let mapped = p.ips.map_network(ip, len);
    p.cidrs
        .insert(format!("{ip}/{len}"), format!("{mapped}/{len}"));
    mapped.to_string()
}

/// A hardware address: MACs map as a whole; a 14-byte iptables LOG `MAC=` header is
/// destination, source and ethertype, and the ethertype is kept.
fn hw_text(p: &mut Pseudonyms, bytes: &[u8]) -> String {
    if bytes.len() == 14 {
        let mut out = p.macs.map(&bytes[..6]);
        out.extend(p.macs.map(&bytes[6..12]));
        out.extend_from_slice(&bytes[12..]);
        return colon_hex(&out);
    }
    colon_hex(&p.macs.map(bytes))
}

/// IPv6 text in the original's style: 8 zero-padded groups or compressed, case kept.
pub(crate) fn v6_text(a: Ipv6Addr, expanded: bool, upper: bool) -> String {
    let t = if expanded {
        a.segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":")
    } else {
        a.to_string()
    };
    if upper {
        t.to_ascii_uppercase()
    } else {
        t
    }
}

fn word(p: &mut Pseudonyms, w: &[u8], out: &mut Vec<u8>) {
    if !w.iter().any(u8::is_ascii_alphabetic) {
        out.extend_from_slice(w);
        return;
    }
    if let Some(start) = kube_chain_hash(w) {
        out.extend_from_slice(&w[..start]);
        let hash = String::from_utf8_lossy(&w[start..]);
        out.extend_from_slice(p.names.chain_hash(&hash).as_bytes());
        return;
    }
    if let Some((kind, hash, rest)) = nft_chain(w) {
        out.extend_from_slice(kind);
        out.push(b'-');
        let hash = String::from_utf8_lossy(hash);
        out.extend_from_slice(p.names.chain_hash(&hash).as_bytes());
        out.push(b'-');
        word(p, rest, out);
        return;
    }
    // Words are ASCII; lower-case without allocating in the common case.
    let lower: std::borrow::Cow<'_, str> = if w.iter().any(u8::is_ascii_uppercase) {
        String::from_utf8_lossy(w).to_ascii_lowercase().into()
    } else {
        String::from_utf8_lossy(w)
    };
    if let Some(pseudo) = p.names.get(&lower) {
        out.extend_from_slice(pseudo.as_bytes());
        return;
    }
    if !w.contains(&b'-') {
        if is_hex64(w) {
            let id = String::from_utf8_lossy(w);
            out.extend_from_slice(p.names.hex_id(&id).as_bytes());
        } else {
            out.extend_from_slice(w);
        }
        return;
    }
    parts(p, w, &lower, out);
}

/// A word with `-`: the longest runs of parts that are collected names are replaced
/// (`etcd-node-7`, `veth-web`), and 64-hex parts (`cri-containerd-<id>`).
fn parts(p: &mut Pseudonyms, w: &[u8], lower: &str, out: &mut Vec<u8>) {
    let orig: Vec<&[u8]> = w.split(|b| *b == b'-').collect();
    let low: Vec<&str> = lower.split('-').collect();
    let max = p.names.max_parts();
    let mut i = 0;
    while i < orig.len() {
        if i > 0 {
            out.push(b'-');
        }
        let mut matched = None;
        if !p.names.is_empty() && !low[i].is_empty() {
            let longest = (i + max).min(low.len());
            for end in (i + 1..=longest).rev() {
                if let Some(pseudo) = p.names.get(&low[i..end].join("-")) {
                    matched = Some((end, pseudo.to_string()));
                    break;
                }
            }
        }
        match matched {
            Some((end, pseudo)) => {
                out.extend_from_slice(pseudo.as_bytes());
                i = end;
            }
            None => {
                if is_hex64(orig[i]) {
                    let id = String::from_utf8_lossy(orig[i]);
                    out.extend_from_slice(p.names.hex_id(&id).as_bytes());
                } else {
                    out.extend_from_slice(orig[i]);
                }
                i += 1;
            }
        }
    }
}

fn is_hex64(w: &[u8]) -> bool {
    w.len() == 64 && w.iter().all(u8::is_ascii_hexdigit)
}

/// The names to pseudonymise in a piece of text from a structured place (a comment,
/// a hostname, a search domain): its words, minus addresses, numbers, allowlisted
/// words and kube-proxy hashes; nft chain names give their namespace part.
pub(crate) fn words(text: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    scan(text, &mut |piece| {
        if let Piece::Word(w) = piece {
            push_word(w, &mut found);
        }
    });
    found
}

fn push_word(w: &[u8], found: &mut Vec<String>) {
    if let Some((_, _, rest)) = nft_chain(w) {
        push_word(rest, found);
        return;
    }
    let word = String::from_utf8_lossy(w);
    // A trailing `-` is glue before an address or UUID (`cni-<uuid>`), not the name.
    let word = word.trim_end_matches('-');
    if is_redactable(word) {
        found.push(word.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::RedactKey;

    fn p() -> Pseudonyms {
        Pseudonyms::new(&RedactKey::from_bytes([11u8; 32]))
    }

    #[test]
    fn rewrites_addresses_names_and_hashes() {
        let mut p = p();
        p.names.insert("ns1");
        p.names.insert("web");
        let line = r#"-A KUBE-SVC-ULMVA6XWHSNOAJN6 ! -s 10.244.0.0/16 -d 10.96.10.10/32 -m comment --comment "ns1/web:http cluster IP" -j KUBE-MARK-MASQ"#;
        let out = rewrite_str(&mut p, line);
        assert!(!out.contains("ULMVA6XWHSNOAJN6"), "{out}");
        assert!(!out.contains("ns1") && !out.contains("web:"), "{out}");
        assert!(
            out.contains(":http cluster IP\" -j KUBE-MARK-MASQ"),
            "{out}"
        );
        assert!(
            !out.contains("10.244.") && !out.contains("10.96.10.10"),
            "{out}"
        );
        assert_eq!(rewrite_str(&mut p, line), out);
    }

    #[test]
    fn nft_chain_names() {
        let mut p = p();
        p.names.insert("ns1");
        p.names.insert("web");
        let out = rewrite_str(
            &mut p,
            "endpoint-5OJB2KTY-ns1/web/tcp/http__10.244.1.5/8080",
        );
        assert!(out.starts_with("endpoint-"), "{out}");
        assert!(!out.contains("5OJB2KTY") && !out.contains("ns1") && !out.contains("10.244.1.5"));
        assert!(out.ends_with("/8080"), "{out}");
    }

    #[test]
    fn collects_words() {
        assert_eq!(
            words(br#"ns1/web:http -> 10.244.1.5:8080"#),
            vec!["ns1".to_string(), "web".to_string()]
        );
        assert_eq!(words(b"service-ULMVA6XW-ns1/web/tcp/http"), ["ns1", "web"]);
        assert_eq!(
            words(b"kube-system/kube-dns:dns-tcp cluster IP"),
            Vec::<String>::new()
        );
        assert_eq!(words(b"cali:say \"hi\""), ["say", "hi"]);
    }

    #[test]
    fn keeps_expanded_v6_and_case() {
        let mut p = p();
        let out = rewrite_str(&mut p, "src=fd00:0010:0244:0000:0000:0000:0000:0003 x");
        assert_eq!(
            out.len(),
            "src=fd00:0010:0244:0000:0000:0000:0000:0003 x".len()
        );
        assert!(out.starts_with("src=fd"));
        assert!(out.ends_with(":0003 x"));
    }
}
