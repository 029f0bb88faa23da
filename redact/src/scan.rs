//! The lexer every rewrite and every name collection goes through: it splits text
//! into addresses (IPv4, IPv6, hardware), UUIDs, words (`[A-Za-z0-9-]+`) and the
//! bytes in between. Works on bytes, so invalid UTF-8 passes through untouched.
//!
//! Addresses are only recognised at a boundary (not glued to a letter, digit, `.` or
//! `:` on the left, nor to a letter or digit on the right), so `v1.2.3.4` and
//! `17:44:41` stay what they are. A network in `addr/len` form whose host bits are
//! zero is one piece (so its pseudonym can be the mapped network); any other
//! `/number` (a port in an nft chain name, an interface address's prefix) is not.

use crate::ip::is_network_address;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Bytes copied as they are.
    Raw(&'a [u8]),
    V4 {
        addr: Ipv4Addr,
        /// `Some(len)` when the piece is a canonical network `addr/len`.
        prefix: Option<u8>,
    },
    V6 {
        addr: Ipv6Addr,
        prefix: Option<u8>,
        /// All 8 groups written with 4 digits (conntrack, ip_vs), no `::`.
        expanded: bool,
        upper: bool,
    },
    /// A colon-separated hardware address of 6 or more bytes.
    Hw {
        bytes: Vec<u8>,
        upper: bool,
    },
    /// A UUID (`-` or `_` separated, as in cgroup paths).
    Uuid(&'a [u8]),
    Word(&'a [u8]),
}

pub(crate) const UUID_LEN: usize = 36;

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Left context that glues a would-be address to something else.
fn is_glue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b':'
}

/// Calls `f` for every piece of `s`, in order; the pieces cover `s` exactly.
pub(crate) fn scan<'a>(s: &'a [u8], f: &mut impl FnMut(Piece<'a>)) {
    let n = s.len();
    let mut i = 0;
    let mut raw = 0;
    let flush = |f: &mut dyn FnMut(Piece<'a>), from: usize, to: usize| {
        if from < to {
            f(Piece::Raw(&s[from..to]));
        }
    };
    while i < n {
        let c = s[i];
        if c.is_ascii_hexdigit() && uuid_at(s, i) {
            flush(f, raw, i);
            f(Piece::Uuid(&s[i..i + UUID_LEN]));
            i += UUID_LEN;
            raw = i;
            continue;
        }
        if (c.is_ascii_hexdigit() || c == b':') && (i == 0 || !is_glue(s[i - 1])) {
            if let Some((piece, len)) = address_at(s, i) {
                flush(f, raw, i);
                f(piece);
                i += len;
                raw = i;
                continue;
            }
        }
        if is_word_byte(c) {
            let e = word_end(s, i);
            flush(f, raw, i);
            f(Piece::Word(&s[i..e]));
            i = e;
            raw = i;
            continue;
        }
        i += 1;
    }
    flush(f, raw, n);
}

/// End of the word starting at `i`; a word stops before a UUID or an address that
/// follows a `-` (`cni-<uuid>`, `node-10.0.0.1`) so those are still seen.
fn word_end(s: &[u8], i: usize) -> usize {
    let mut e = i + 1;
    while e < s.len() && is_word_byte(s[e]) {
        if s[e].is_ascii_hexdigit() && uuid_at(s, e) {
            break;
        }
        if s[e - 1] == b'-' && s[e].is_ascii_digit() && address_at(s, e).is_some() {
            break;
        }
        e += 1;
    }
    e
}

/// A UUID starting at `i`, with one separator kind, not followed by a word byte.
pub(crate) fn uuid_at(s: &[u8], i: usize) -> bool {
    if i + UUID_LEN > s.len() {
        return false;
    }
    let sep = s[i + 8];
    if sep != b'-' && sep != b'_' {
        return false;
    }
    let u = &s[i..i + UUID_LEN];
    let ok = u.iter().enumerate().all(|(k, b)| match k {
        8 | 13 | 18 | 23 => *b == sep,
        _ => b.is_ascii_hexdigit(),
    });
    ok && s
        .get(i + UUID_LEN)
        .is_none_or(|b| !b.is_ascii_alphanumeric())
}

fn right_ok(s: &[u8], end: usize) -> bool {
    s.get(end).is_none_or(|b| !b.is_ascii_alphanumeric())
}

/// Longest run of address characters worth parsing: IPv6 text is at most 45
/// characters and a 32-byte hardware address 95. Longer runs are not addresses, and
/// the cap keeps hostile input (a megabyte of `1:1:1:…`) linear.
const MAX_ADDRESS_RUN: usize = 100;

fn address_at(s: &[u8], i: usize) -> Option<(Piece<'static>, usize)> {
    let run = s[i..]
        .iter()
        .take(MAX_ADDRESS_RUN + 1)
        .take_while(|b| b.is_ascii_hexdigit() || **b == b':' || **b == b'.')
        .count();
    if run > MAX_ADDRESS_RUN {
        return None;
    }
    let r = i + run;
    let colons = s[i..r].iter().filter(|b| **b == b':').count();
    if colons >= 2 {
        if let Some(found) = v6_at(s, i, r, false) {
            return Some(found);
        }
        // A whole run of byte pairs is a hardware address even when a prefix of it
        // would parse as IPv6 (the 14-byte `MAC=` of iptables LOG).
        if right_ok(s, r) {
            if let Some(bytes) = parse_hw(&s[i..r]) {
                let upper = s[i..r].iter().any(|b| b.is_ascii_uppercase());
                return Some((Piece::Hw { bytes, upper }, run));
            }
        }
        if let Some(found) = v6_at(s, i, r, true) {
            return Some(found);
        }
    }
    v4_at(s, i)
}

/// An IPv6 address at `i` within the run ending at `r`: the whole run or the run
/// without a trailing `.`/`:`; with `cut`, the longest prefix of the run ending
/// before one of its colons (`::ffff:10.0.0.1:80`).
fn v6_at(s: &[u8], i: usize, r: usize, cut: bool) -> Option<(Piece<'static>, usize)> {
    let mut ends = Vec::new();
    if cut {
        ends.extend(
            (i + 1..r)
                .rev()
                .filter(|k| s[*k] == b':' && s[k - 1] != b':'),
        );
    } else {
        ends.push(r);
        if r > i + 1 && matches!(s[r - 1], b'.' | b':') {
            ends.push(r - 1);
        }
    }
    for end in ends {
        let cand = &s[i..end];
        if cand.iter().filter(|b| **b == b':').count() < 2 {
            continue;
        }
        let after_ok = end == r && right_ok(s, end) || end < r;
        let Some(addr) = std::str::from_utf8(cand)
            .ok()
            .and_then(|t| t.parse::<Ipv6Addr>().ok())
        else {
            continue;
        };
        if !after_ok {
            continue;
        }
        let expanded = cand.len() == 39 && !cand.windows(2).any(|w| w == b"::");
        let upper = cand.iter().any(|b| b.is_ascii_uppercase());
        let (prefix, extra) = match prefix_at(s, end, 128) {
            Some((len, n)) if is_network_address(addr.into(), len) => (Some(len), n),
            _ => (None, 0),
        };
        let piece = Piece::V6 {
            addr,
            prefix,
            expanded,
            upper,
        };
        return Some((piece, end - i + extra));
    }
    None
}

fn v4_at(s: &[u8], i: usize) -> Option<(Piece<'static>, usize)> {
    let mut octets = [0u8; 4];
    let mut k = i;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if s.get(k) != Some(&b'.') {
                return None;
            }
            k += 1;
        }
        let digits = s[k..]
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 3 {
            return None;
        }
        let mut v: u32 = 0;
        for b in &s[k..k + digits] {
            v = v * 10 + u32::from(b - b'0');
        }
        *octet = u8::try_from(v).ok()?;
        k += digits;
    }
    // Not part of a longer dotted number (`1.2.3.4.5`) or a word.
    if !right_ok(s, k) || (s.get(k) == Some(&b'.') && s.get(k + 1).is_some_and(u8::is_ascii_digit))
    {
        return None;
    }
    let addr = Ipv4Addr::from(octets);
    let (prefix, extra) = match prefix_at(s, k, 32) {
        Some((len, n)) if is_network_address(addr.into(), len) => (Some(len), n),
        _ => (None, 0),
    };
    Some((Piece::V4 { addr, prefix }, k - i + extra))
}

/// `/len` at `k` with `len <= max`, not followed by another digit or a `.`.
fn prefix_at(s: &[u8], k: usize, max: u8) -> Option<(u8, usize)> {
    if s.get(k) != Some(&b'/') {
        return None;
    }
    let digits = s[k + 1..]
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let end = k + 1 + digits;
    if s.get(end)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.')
    {
        return None;
    }
    let mut v: u32 = 0;
    for b in &s[k + 1..end] {
        v = v * 10 + u32::from(b - b'0');
    }
    let len = u8::try_from(v).ok().filter(|l| *l <= max)?;
    Some((len, 1 + digits))
}

/// `aa:bb:cc:dd:ee:ff` and longer colon-separated byte strings (6 to 32 bytes).
fn parse_hw(run: &[u8]) -> Option<Vec<u8>> {
    let parts: Vec<&[u8]> = run.split(|b| *b == b':').collect();
    if parts.len() < 6 || parts.len() > 32 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            if p.len() != 2 {
                return None;
            }
            let t = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(t, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        scan(s.as_bytes(), &mut |p| {
            v.push(match p {
                Piece::Raw(r) => format!("raw:{}", String::from_utf8_lossy(r)),
                Piece::V4 { addr, prefix } => format!("v4:{addr}{prefix:?}"),
                Piece::V6 {
                    addr,
                    prefix,
                    expanded,
                    ..
                } => {
                    format!("v6:{addr}{prefix:?}{}", if expanded { "x" } else { "" })
                }
                Piece::Hw { bytes, .. } => format!("hw:{}", bytes.len()),
                Piece::Uuid(u) => format!("uuid:{}", String::from_utf8_lossy(u)),
                Piece::Word(w) => format!("w:{}", String::from_utf8_lossy(w)),
            })
        });
        v
    }

    #[test]
    fn addresses_and_words() {
        assert_eq!(
            pieces("-d 10.96.0.10/32 -s 10.244.0.0/16 --to 10.244.1.5:8080"),
            [
                "w:-d",
                "raw: ",
                "v4:10.96.0.10Some(32)",
                "raw: ",
                "w:-s",
                "raw: ",
                "v4:10.244.0.0Some(16)",
                "raw: ",
                "w:--to",
                "raw: ",
                "v4:10.244.1.5None",
                "raw::",
                "w:8080"
            ]
        );
        assert_eq!(
            pieces("v1.2.3.4"),
            ["w:v1", "raw:.", "w:2", "raw:.", "w:3", "raw:.", "w:4"]
        );
        assert_eq!(
            pieces("17:44:41"),
            ["w:17", "raw::", "w:44", "raw::", "w:41"]
        );
        assert_eq!(pieces("1.2.3.4.5")[0], "w:1");
        assert_eq!(
            pieces("10.244.1.5/24"),
            ["v4:10.244.1.5None", "raw:/", "w:24"]
        );
        assert_eq!(pieces("__10.244.1.5/8080")[1], "v4:10.244.1.5None");
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(pieces("fe80::1%eth0")[0], "v6:fe80::1None");
        assert_eq!(
            pieces("src=fd00:0010:0244:0000:0000:0000:0000:0003 ")[2],
            "v6:fd00:10:244::3Nonex"
        );
        assert_eq!(pieces("[fd00::a]:0035")[1], "v6:fd00::aNone");
        assert_eq!(pieces("fd00:10:96::/108")[0], "v6:fd00:10:96::Some(108)");
        assert_eq!(pieces("::ffff:10.0.0.1:80")[0], "v6:::ffff:10.0.0.1None");
        assert_eq!(pieces("::1")[0], "v6:::1None");
    }

    #[test]
    fn hardware_and_uuids() {
        assert_eq!(pieces("5e:4a:3b:2e:13:a3")[0], "hw:6");
        assert_eq!(
            pieces("MAC=aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:08:00 ")[2],
            "hw:14"
        );
        assert_eq!(
            pieces("pod79311748_fc2f_4cf7_8b5e_990b2d4a229c.slice")[..2],
            ["w:pod", "uuid:79311748_fc2f_4cf7_8b5e_990b2d4a229c"]
        );
        assert_eq!(
            pieces("cni-79311748-fc2f-4cf7-8b5e-990b2d4a229c")[..2],
            ["w:cni-", "uuid:79311748-fc2f-4cf7-8b5e-990b2d4a229c"]
        );
        assert_eq!(pieces("node-10.0.0.1")[1], "v4:10.0.0.1None");
    }

    #[test]
    fn hostile_runs_stay_linear() {
        let long = "1:".repeat(200_000);
        let t = std::time::Instant::now();
        assert!(pieces(&long).iter().all(|p| !p.starts_with("v6")));
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
    }
}
