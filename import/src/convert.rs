//! Tool output whose bundle form is the kernel's text: `conntrack -S` becomes
//! `/proc/net/stat/nf_conntrack` rows, `ipvsadm -Lnc` becomes `/proc/net/ip_vs_conn`
//! lines, and `sysctl -a` is split into the bundle's sysctl maps.

use netsnap_schema::model::Sysctls;
use std::net::IpAddr;

/// `cpu=0 found=0 invalid=3 …` rows → a header of the names and one hex row per CPU
/// (the analyzer reads the columns by name). Returns the text and lines not read.
pub fn conntrack_stat_from_cmd(text: &str) -> (String, Vec<usize>) {
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<(String, u64)>> = Vec::new();
    let mut unread = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let pairs: Option<Vec<(String, u64)>> = line
            .split_whitespace()
            .filter(|w| !w.starts_with("cpu="))
            .map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        match pairs {
            Some(p) if !p.is_empty() => {
                for (k, _) in &p {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
                rows.push(p);
            }
            _ if line.trim().is_empty() => {}
            _ => unread.push(i + 1),
        }
    }
    let mut out = names.join(" ");
    out.push('\n');
    for row in rows {
        let vals: Vec<String> = names
            .iter()
            .map(|n| {
                let v = row
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| *v)
                    .unwrap_or(0);
                format!("{v:08x}")
            })
            .collect();
        out.push_str(&vals.join(" "));
        out.push('\n');
    }
    (out, unread)
}

fn hex_addr(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => format!("{:08X}", u32::from(*v4)),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s.iter()
                .map(|g| format!("{g:04x}"))
                .collect::<Vec<_>>()
                .join(":")
        }
    }
}

fn split_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    let a = a.trim_start_matches('[').trim_end_matches(']');
    Some((a.parse().ok()?, p.parse().ok()?))
}

/// `ipvsadm -Lnc` → `/proc/net/ip_vs_conn`:
/// `TCP 14:54 ESTABLISHED 10.0.0.5:38714 10.96.0.1:443 192.168.0.2:6443` →
/// `TCP 0A000005 970A 0A600001 01BB C0A80002 192B ESTABLISHED 894`.
pub fn ipvs_conn_from_ipvsadm(text: &str) -> (String, Vec<usize>) {
    let mut out = String::from(
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
    );
    let mut unread = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first().is_some_and(|f| *f == "pro" || *f == "IPVS") || w.is_empty() {
            continue;
        }
        let parsed = (|| {
            let (m, s) = w.get(1)?.split_once(':')?;
            let expires = m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?;
            let (sa, sp) = split_addr(w.get(3)?)?;
            let (va, vp) = split_addr(w.get(4)?)?;
            let (da, dp) = split_addr(w.get(5)?)?;
            Some(format!(
                "{} {} {sp:04X} {} {vp:04X} {} {dp:04X} {:<11} {expires:7}\n",
                w[0],
                hex_addr(&sa),
                hex_addr(&va),
                hex_addr(&da),
                w[2]
            ))
        })();
        match parsed {
            Some(l) => out.push_str(&l),
            None => unread.push(i + 1),
        }
    }
    (out, unread)
}

/// `sysctl -a` split as the collector writes it: `net.*` (the node's and the root
/// netns's sysctls) and `net.netfilter.nf_conntrack_*` (conntrack settings).
pub struct SysctlSplit {
    pub net: Sysctls,
    pub conntrack: Sysctls,
    pub unread: Vec<usize>,
}

pub fn split_sysctl(text: &str) -> SysctlSplit {
    let mut out = SysctlSplit {
        net: Sysctls::new(),
        conntrack: Sysctls::new(),
        unread: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let pair = line
            .split_once(" = ")
            .or_else(|| line.trim_end().strip_suffix(" =").map(|k| (k, "")));
        let Some((k, v)) = pair else {
            if !line.trim().is_empty() && !line.starts_with("sysctl: ") {
                out.unread.push(i + 1);
            }
            continue;
        };
        let k = k.trim();
        if k.starts_with("net.netfilter.nf_conntrack_") {
            out.conntrack.insert(k.into(), v.trim().into());
        }
        if k.starts_with("net.") {
            out.net.insert(k.into(), v.trim().into());
        }
    }
    out
}

/// `nft -j list ruleset` as the bundle keeps it: without the tables iptables-nft
/// manages (they are in the iptables-save dumps). Returns the JSON and how many
/// tables were left out.
pub fn nft_without_iptables_tables(text: &str) -> Result<(String, usize), String> {
    let mut doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("line {}: {e}", e.line()))?;
    let items = doc
        .get_mut("nftables")
        .and_then(|v| v.as_array_mut())
        .ok_or("no `nftables` array")?;
    let managed = |o: &serde_json::Value| {
        let Some((kind, inner)) = o.as_object().and_then(|m| m.iter().next()) else {
            return false;
        };
        let family = inner.get("family").and_then(|f| f.as_str()).unwrap_or("");
        let table = match kind.as_str() {
            "table" => inner.get("name"),
            _ => inner.get("table"),
        };
        table
            .and_then(|t| t.as_str())
            .is_some_and(|t| netsnap_schema::layout::managed_by_iptables_nft(family, t))
    };
    let tables = items
        .iter()
        .filter(|o| o.get("table").is_some() && managed(o))
        .count();
    items.retain(|o| !managed(o));
    let mut out = serde_json::to_string(&doc).map_err(|e| e.to_string())?;
    out.push('\n');
    Ok((out, tables))
}

/// `ipvsadm --save` → the `ipvsadm -Ln` table the analyzer reads. The save format has
/// schedulers, flags and weights but no connection counts: those are written as 0.
pub fn ipvs_from_save(text: &str) -> (String, Vec<usize>) {
    let mut out = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    let mut unread = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let opt = |k: &str| {
            w.iter()
                .position(|x| *x == k)
                .and_then(|p| w.get(p + 1).copied())
        };
        let proto = match w.get(1).copied() {
            Some("-t") => "TCP",
            Some("-u") => "UDP",
            Some("-f") => "FWM",
            _ if line.trim().is_empty() => continue,
            _ => {
                unread.push(i + 1);
                continue;
            }
        };
        let Some(vip) = w.get(2) else {
            unread.push(i + 1);
            continue;
        };
        match w[0] {
            "-A" => {
                let mut l = format!("{proto}  {vip} {}", opt("-s").unwrap_or("wlc"));
                if let Some(p) = opt("-p") {
                    l.push_str(&format!(" persistent {p}"));
                }
                out.push_str(&l);
                out.push('\n');
            }
            "-a" => {
                let fwd = if w.contains(&"-g") {
                    "Route"
                } else if w.contains(&"-i") {
                    "Tunnel"
                } else {
                    "Masq"
                };
                match opt("-r") {
                    Some(rip) => out.push_str(&format!(
                        "  -> {rip:<28} {fwd:<7} {:<6} 0          0\n",
                        opt("-w").unwrap_or("1")
                    )),
                    None => unread.push(i + 1),
                }
            }
            _ => unread.push(i + 1),
        }
    }
    (out, unread)
}

/// The listening TCP and bound UDP sockets of `ss` output (`-ltnu`, or `-peaonmi`
/// whose other rows are skipped): `tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:* … ino:123`.
/// `*` and `[::]` are the IPv6 wildcard (a dual-stack socket), as /proc lists them.
pub fn sockets_from_ss(text: &str) -> (Vec<netsnap_schema::model::Socket>, Vec<usize>) {
    use netsnap_schema::model::{Socket, SocketProto};
    let (mut out, mut unread) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(netid), Some(state), Some(local)) = (w.first(), w.get(1), w.get(4)) else {
            continue;
        };
        if !matches!(*netid, "tcp" | "udp") || !matches!(*state, "LISTEN" | "UNCONN") {
            continue;
        }
        let parsed = (|| {
            let (addr, port) = local.rsplit_once(':')?;
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr = addr.split('%').next()?;
            let ip: std::net::IpAddr = if addr == "*" {
                "::".parse().ok()?
            } else {
                addr.parse().ok()?
            };
            let proto = match (*netid, ip.is_ipv6()) {
                ("tcp", false) => SocketProto::Tcp,
                ("tcp", true) => SocketProto::Tcp6,
                ("udp", false) => SocketProto::Udp,
                _ => SocketProto::Udp6,
            };
            let field = |k: &str| {
                w.iter()
                    .find_map(|x| x.strip_prefix(k))
                    .and_then(|v| v.parse().ok())
            };
            Some(Socket {
                proto,
                local: ip.to_string(),
                port: port.parse().ok()?,
                inode: field("ino:").unwrap_or(0),
                uid: field("uid:")
                    .and_then(|u: u64| u32::try_from(u).ok())
                    .unwrap_or(0),
            })
        })();
        match parsed {
            Some(s) => out.push(s),
            None => unread.push(i + 1),
        }
    }
    (out, unread)
}
