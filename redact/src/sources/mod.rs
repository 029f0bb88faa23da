//! Per-format knowledge: where names are collected from, and how each bundle entry
//! is rewritten. Everything not listed here is text.

mod ipset;
mod iptables;
mod ipvs;
mod json;
mod netns;
mod nft;
mod resolv;

use crate::pseudonyms::Pseudonyms;
use crate::text;
use netsnap_schema::layout::{self, NetnsFile};
use std::io::{self, Write};

/// Text entries are rewritten in line-aligned chunks of about this size, so a large
/// conntrack table never exists twice in memory.
const CHUNK: usize = 1 << 20;

/// Names from the structured places of one entry (phase 1 of a redaction).
pub(crate) fn collect(path: &str, content: &[u8], found: &mut Vec<String>) {
    match path {
        layout::IPTABLES_NFT_SAVE
        | layout::IPTABLES_LEGACY_SAVE
        | layout::IP6TABLES_NFT_SAVE
        | layout::IP6TABLES_LEGACY_SAVE => iptables::collect(content, found),
        layout::IPSET => ipset::collect(content, found),
        layout::NFT_JSON => nft::collect(content, found),
        layout::NETNS_INDEX | layout::HOST_FACTS => netns::collect(content, found),
        layout::HOST_RESOLV_CONF | layout::HOST_KUBELET_RESOLV_CONF => {
            resolv::collect(content, found)
        }
        _ => match layout::parse_netns_path(path) {
            Some((id, file)) => {
                found.extend(text::words(id.as_bytes()));
                if file == NetnsFile::ResolvConf {
                    resolv::collect(content, found);
                }
            }
            None => {
                // Unknown iptables-like files (future sources) still give their comments.
                if path.ends_with("-save.txt") {
                    iptables::collect(content, found);
                }
            }
        },
    }
}

/// Rewrites one entry's content into `out`.
pub(crate) fn rewrite(
    p: &mut Pseudonyms,
    path: &str,
    content: &[u8],
    out: &mut impl Write,
) -> io::Result<()> {
    let mut buf = Vec::new();
    match path {
        layout::IPVS => ipvs::rewrite_ip_vs(p, content, &mut buf),
        layout::IPVS_CONN => ipvs::rewrite_ip_vs_conn(p, content, &mut buf),
        _ if path.ends_with(".json") => {
            if !json::rewrite(p, content, &mut buf) {
                // Not JSON after all: still rewrite every address and name in it.
                return rewrite_text(p, content, out);
            }
        }
        _ => return rewrite_text(p, content, out),
    }
    out.write_all(&buf)
}

fn rewrite_text(p: &mut Pseudonyms, content: &[u8], out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK.min(content.len()) + CHUNK / 8);
    let mut rest = content;
    while !rest.is_empty() {
        let cut = if rest.len() <= CHUNK {
            rest.len()
        } else {
            rest[CHUNK..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |k| CHUNK + k + 1)
        };
        buf.clear();
        text::rewrite(p, &rest[..cut], &mut buf);
        out.write_all(&buf)?;
        rest = &rest[cut..];
    }
    Ok(())
}
