//! Listings whose bundle form is another file the collector writes: `ipset list`
//! becomes `ipset save` text, `bridge fdb show` (text or `-j`) the fdb of the schema's
//! neighbour table, and `dmesg` lines the kernel log the collector keeps.

use crate::kind::Fit;
use netsnap_schema::model::FdbEntry;
use serde_json::Value;

/// The keys of an `ipset list` set header, in the order ipset prints them.
const IPSET_HEADER: [&str; 8] = [
    "Name:",
    "Type:",
    "Revision:",
    "Header:",
    "Size in memory:",
    "References:",
    "Number of entries:",
    "Members:",
];

/// `ipset list` lines: header lines are strong, and so is every member line (any
/// non-blank line after `Members:` until a blank line or the next `Name:`).
pub fn scan_ipset_list(lines: &[&str]) -> Vec<Fit> {
    let mut members = false;
    lines
        .iter()
        .map(|l| {
            let t = l.trim();
            if IPSET_HEADER.iter().any(|k| t.starts_with(k)) {
                members = t == "Members:";
                Fit::Strong
            } else if t.is_empty() {
                members = false;
                Fit::No
            } else if members {
                Fit::Strong
            } else {
                Fit::No
            }
        })
        .collect()
}

/// `ipset list` → `ipset save` (`create NAME TYPE HEADER…`, `add NAME MEMBER…`), the
/// form the collector writes and the analyzer reads. Returns the text and the lines
/// (1-based) not read.
pub fn ipset_save_from_list(text: &str) -> (String, Vec<usize>) {
    let (mut out, mut unread) = (String::new(), Vec::new());
    let mut name: Option<String> = None;
    let mut kind: Option<String> = None;
    let mut in_members = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("Name:") {
            name = Some(n.trim().to_string());
            kind = None;
            in_members = false;
        } else if let Some(k) = t.strip_prefix("Type:") {
            kind = Some(k.trim().to_string());
        } else if let Some(h) = t.strip_prefix("Header:") {
            match (&name, &kind) {
                (Some(n), Some(k)) => out.push_str(&format!("create {n} {k} {}\n", h.trim())),
                _ => unread.push(i + 1),
            }
        } else if t == "Members:" {
            in_members = name.is_some();
        } else if t.is_empty() || IPSET_HEADER.iter().any(|k| t.starts_with(k)) {
            in_members &= !t.is_empty();
        } else if let (true, Some(n)) = (in_members, &name) {
            out.push_str(&format!("add {n} {t}\n"));
        } else {
            unread.push(i + 1);
        }
    }
    (out, unread)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn is_mac(w: &str) -> bool {
    let parts: Vec<&str> = w.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The message of a `dmesg` line (`[  937.610241] message`), `None` for other lines.
pub fn dmesg_message(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (stamp, msg) = rest.split_once("] ")?;
    let (secs, frac) = stamp.trim_start().split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (digits(secs) && digits(frac) && !msg.trim().is_empty()).then_some(msg)
}

/// One fdb entry as `bridge` shows it: the entry with its device and master by name
/// (resolved to indexes through the netns's links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbDraft {
    pub entry: FdbEntry,
    pub dev: String,
    pub master: Option<String>,
}

/// The kernel's state name for `bridge`'s word: `permanent` (NUD_PERMANENT), `static`
/// (NUD_NOARP), `stale`; a learned entry shows none (NUD_REACHABLE).
fn fdb_state(word: Option<&str>) -> String {
    match word.unwrap_or("") {
        "permanent" => "PERMANENT",
        "static" => "NOARP",
        "stale" => "STALE",
        _ => "REACHABLE",
    }
    .into()
}

/// `bridge fdb show`: `MAC dev DEV [vlan N] [dst IP] [master BR] [self] [permanent|static|stale]`.
pub fn parse_fdb_text(text: &str) -> (Vec<FdbDraft>, Vec<usize>) {
    let (mut out, mut unread) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.is_empty() {
            continue;
        }
        let after = |k: &str| {
            w.iter()
                .position(|x| *x == k)
                .and_then(|p| w.get(p + 1).copied())
        };
        let parsed = (|| {
            if !is_mac(w[0]) || w.get(1) != Some(&"dev") {
                return None;
            }
            let vlan = match after("vlan") {
                Some(v) => Some(v.parse().ok()?),
                None => None,
            };
            let dst = match after("dst") {
                Some(d) => Some(d.parse::<std::net::IpAddr>().ok()?.to_string()),
                None => None,
            };
            let state = ["permanent", "static", "stale"]
                .into_iter()
                .find(|s| w.contains(s));
            Some(FdbDraft {
                entry: FdbEntry {
                    ifindex: 0,
                    mac: w[0].to_ascii_lowercase(),
                    master: None,
                    vlan,
                    dst,
                    state: fdb_state(state),
                },
                dev: w.get(2)?.to_string(),
                master: after("master").map(str::to_string),
            })
        })();
        match parsed {
            Some(d) => out.push(d),
            None => unread.push(i + 1),
        }
    }
    (out, unread)
}

/// `bridge -j fdb show`: objects with `mac`, `ifname`, `master`, `vlan`, `dst`, `state`.
pub fn parse_fdb_json(items: &[Value]) -> Result<Vec<FdbDraft>, String> {
    items
        .iter()
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(Value::as_str);
            let mac = s("mac")
                .filter(|m| is_mac(m))
                .ok_or("fdb entry without a MAC")?;
            let vlan = match v.get("vlan") {
                Some(n) => Some(
                    n.as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or("fdb entry with a bad vlan")?,
                ),
                None => None,
            };
            let dst = match s("dst") {
                Some(d) => Some(
                    d.parse::<std::net::IpAddr>()
                        .map_err(|_| format!("fdb entry with a bad dst {d:?}"))?
                        .to_string(),
                ),
                None => None,
            };
            Ok(FdbDraft {
                entry: FdbEntry {
                    ifindex: 0,
                    mac: mac.to_ascii_lowercase(),
                    master: None,
                    vlan,
                    dst,
                    state: fdb_state(s("state")),
                },
                dev: s("ifname").ok_or("fdb entry without ifname")?.to_string(),
                master: s("master").map(str::to_string),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipset_list_becomes_save() {
        let list = "Name: KUBE-X\nType: hash:ip,port\nRevision: 7\nHeader: family inet hashsize 1024 maxelem 65536\nSize in memory: 264\nReferences: 0\nNumber of entries: 2\nMembers:\n10.96.0.1,tcp:443\n10.96.0.10,udp:53 timeout 5\n\nName: EMPTY\nType: hash:net\nRevision: 7\nHeader: family inet6 hashsize 1024 maxelem 65536\nSize in memory: 100\nReferences: 1\nNumber of entries: 0\nMembers:\n";
        let (save, unread) = ipset_save_from_list(list);
        assert_eq!(
            save,
            "create KUBE-X hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-X 10.96.0.1,tcp:443\nadd KUBE-X 10.96.0.10,udp:53 timeout 5\ncreate EMPTY hash:net family inet6 hashsize 1024 maxelem 65536\n"
        );
        assert!(unread.is_empty());
        let (_, unread) = ipset_save_from_list("Header: family inet\nstray\n");
        assert_eq!(unread, vec![1, 2]);
    }

    #[test]
    fn fdb_lines() {
        let (f, unread) = parse_fdb_text(
            "02:42:AC:11:00:02 dev veth1 vlan 1 master cni0 permanent\n00:00:00:00:00:00 dev flannel.1 dst 192.168.1.2 self permanent\n0a:00:00:00:00:01 dev veth2 master cni0\n0a:00:00:00:00:01 dev veth2 vlan x\n",
        );
        assert_eq!(unread, vec![4]);
        assert_eq!(f[0].entry.mac, "02:42:ac:11:00:02");
        assert_eq!(
            (f[0].entry.vlan, f[0].master.as_deref()),
            (Some(1), Some("cni0"))
        );
        assert_eq!(f[1].entry.dst.as_deref(), Some("192.168.1.2"));
        assert_eq!(f[2].entry.state, "REACHABLE");
        assert_eq!(f[0].entry.state, "PERMANENT");
    }

    #[test]
    fn dmesg_lines() {
        assert_eq!(
            dmesg_message("[  937.610241] nf_conntrack: table full, dropping packet"),
            Some("nf_conntrack: table full, dropping packet")
        );
        assert_eq!(dmesg_message("[0:0] -A FORWARD -j ACCEPT"), None);
        assert_eq!(dmesg_message("[Sat Dec  5 06:00:00 2026] x"), None);
    }
}
