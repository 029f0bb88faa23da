//! `/proc/net/ip_vs` and `/proc/net/ip_vs_conn`: IPv4 addresses are hex
//! (`0A600001:0050`, `%08X`), which no text rule can tell from a counter or a
//! fwmark, so these files are rewritten by their columns. IPv6 addresses are written
//! expanded (`[fd00:0010:…]`) and go through the text rules, which keep that form.

use crate::pseudonyms::Pseudonyms;
use crate::text::rewrite;
use std::net::Ipv4Addr;

/// `/proc/net/ip_vs`: every `HEX8:HEX4` token is an address and port.
pub(crate) fn rewrite_ip_vs(p: &mut Pseudonyms, input: &[u8], out: &mut Vec<u8>) {
    for_tokens(input, out, |_, token, out| match addr_port(token) {
        Some((addr, port)) => {
            out.extend_from_slice(hex_v4(p, addr, is_upper(addr)).as_bytes());
            out.push(b':');
            out.extend_from_slice(port);
        }
        None => rewrite(p, token, out),
    });
}

/// `/proc/net/ip_vs_conn`: columns 2, 4 and 6 (FromIP, ToIP, DestIP) are addresses.
pub(crate) fn rewrite_ip_vs_conn(p: &mut Pseudonyms, input: &[u8], out: &mut Vec<u8>) {
    for_tokens(input, out, |column, token, out| {
        if matches!(column, 1 | 3 | 5) && token.len() == 8 && is_hex(token) {
            out.extend_from_slice(hex_v4(p, token, is_upper(token)).as_bytes());
        } else {
            rewrite(p, token, out);
        }
    });
}

/// Calls `f(column, token, out)` for every whitespace-separated token of every line,
/// copying the whitespace itself.
fn for_tokens(input: &[u8], out: &mut Vec<u8>, mut f: impl FnMut(usize, &[u8], &mut Vec<u8>)) {
    out.reserve(input.len());
    let mut column = 0;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b.is_ascii_whitespace() {
            if b == b'\n' {
                column = 0;
            }
            out.push(b);
            i += 1;
            continue;
        }
        let end = input[i..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .map_or(input.len(), |k| i + k);
        f(column, &input[i..end], out);
        column += 1;
        i = end;
    }
}

fn addr_port(token: &[u8]) -> Option<(&[u8], &[u8])> {
    if token.len() == 13 && token[8] == b':' && is_hex(&token[..8]) && is_hex(&token[9..]) {
        Some((&token[..8], &token[9..]))
    } else {
        None
    }
}

fn is_hex(t: &[u8]) -> bool {
    t.iter().all(u8::is_ascii_hexdigit)
}

fn is_upper(t: &[u8]) -> bool {
    !t.iter().any(u8::is_ascii_lowercase)
}

fn hex_v4(p: &mut Pseudonyms, hex: &[u8], upper: bool) -> String {
    let Some(v) = std::str::from_utf8(hex)
        .ok()
        .and_then(|t| u32::from_str_radix(t, 16).ok())
    else {
        return String::from_utf8_lossy(hex).into_owned();
    };
    let mapped = u32::from(p.ips.map_v4(Ipv4Addr::from(v)));
    if upper {
        format!("{mapped:08X}")
    } else {
        format!("{mapped:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::RedactKey;

    #[test]
    fn hex_columns() {
        let mut p = Pseudonyms::new(&RedactKey::from_bytes([4u8; 32]));
        let mut out = Vec::new();
        rewrite_ip_vs(
            &mut p,
            b"TCP  0A600001:01BB rr  \n  -> C0A83102:192B      Masq    1\nFWM  00000064 rr ops \n",
            &mut out,
        );
        let t = String::from_utf8(out).unwrap();
        assert!(!t.contains("0A600001") && !t.contains("C0A83102"), "{t}");
        assert!(t.contains(":01BB rr  \n  -> C0A8"), "{t}");
        assert!(t.contains("FWM  00000064 rr ops \n"), "{t}");
        let mut out = Vec::new();
        rewrite_ip_vs_conn(
            &mut p,
            b"TCP 0AF40103 9C40 0A600A0A 0050 0AF40106 1F90 ESTABLISHED     899\n",
            &mut out,
        );
        let t = String::from_utf8(out).unwrap();
        assert!(
            t.starts_with("TCP 0A") && t.contains(" 9C40 0A") && t.contains(" 0050 0A"),
            "{t}"
        );
        assert!(!t.contains("0AF40103") && !t.contains("0A600A0A"), "{t}");
    }
}
