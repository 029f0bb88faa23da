//! IPVS: `/proc/net/ip_vs` (hex, as printed by the kernel's ip_vs_ctl.c) and
//! `ipvsadm -Ln` (decimal), `/proc/net/ip_vs_stats` and `/proc/net/ip_vs_conn`.
//!
//! Kernel formats (ip_vs_ctl.c / ip_vs_conn.c):
//! - service: `"%s  %08X:%04X %s %s"` (proto, addr, port, scheduler, `ops `), IPv6
//!   `"%s  [%pI6]:%04X %s "`, fwmark `"FWM  %08X %s %s"`, then `"persistent %d %08X"`
//!   (timeout, netmask) or nothing;
//! - destination: `"  -> %08X:%04X      %-7s %-6d %-10d %-10d"` (fwd, weight, active,
//!   inactive), IPv6 `"  -> [%pI6]:%04X …"`;
//! - connection: `"%-3s %08X %04X %08X %04X %s %04X %-11s %7lu%s"`.
//!
//! `%pI6` prints all eight groups with leading zeros, so an IPv6 address alone tells
//! the hex form from ipvsadm's compressed one.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::coverage::{numbered_lines, Coverage, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpvsFormat {
    /// `/proc/net/ip_vs`: hex addresses and ports.
    ProcHex,
    /// `ipvsadm -Ln`: dotted/bracketed addresses, decimal ports.
    Ipvsadm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IpvsTable {
    /// Decided from the first address seen; `None` for a table without services.
    pub format: Option<IpvsFormat>,
    /// `1.2.1` from `IP Virtual Server version 1.2.1 (size=4096)`.
    pub version: Option<String>,
    pub conn_table_size: Option<u32>,
    pub services: Vec<IpvsService>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsService {
    pub line: usize,
    /// `TCP`, `UDP`, `SCTP`, or `FWM` for firewall-mark services.
    pub protocol: String,
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    pub scheduler: String,
    /// One-packet scheduling (`ops`).
    pub ops: bool,
    /// Persistence timeout in seconds (`persistent N`).
    pub persistent: Option<u32>,
    /// Persistence netmask (`FFFFFFFF` in /proc, `mask …` in ipvsadm).
    pub netmask: Option<String>,
    /// Other flags ipvsadm printed (e.g. `sh-fallback`).
    pub flags: Vec<String>,
    pub destinations: Vec<IpvsDest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsDest {
    pub line: usize,
    pub addr: IpAddr,
    pub port: u16,
    /// `Masq`, `Local`, `Tunnel`, `Route`.
    pub forward: String,
    pub weight: i32,
    pub active: u32,
    pub inactive: u32,
}

/// `/proc/net/ip_vs_stats` totals and rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IpvsStats {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub conns_per_sec: u64,
    pub in_packets_per_sec: u64,
    pub out_packets_per_sec: u64,
    pub in_bytes_per_sec: u64,
    pub out_bytes_per_sec: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IpvsConnTable {
    pub conns: Vec<IpvsConn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsConn {
    pub line: usize,
    pub protocol: String,
    pub client: (IpAddr, u16),
    pub virtual_addr: (IpAddr, u16),
    pub dest: (IpAddr, u16),
    pub state: String,
    pub expires: u64,
    /// Persistence engine name and data (`sip …`).
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
}

impl IpvsTable {
    /// Find a virtual service by address, port and protocol (`TCP`/`UDP`/`SCTP`).
    pub fn service(&self, addr: IpAddr, port: u16, protocol: &str) -> Option<&IpvsService> {
        self.services.iter().find(|s| {
            s.addr == Some(addr)
                && s.port == Some(port)
                && s.protocol.eq_ignore_ascii_case(protocol)
        })
    }
}

/// Parse `/proc/net/ip_vs` or `ipvsadm -Ln` output (the form is detected).
pub fn parse_ipvs(path: &str, text: &str) -> Parsed<IpvsTable> {
    let mut cov = Coverage::new(path);
    let mut t = IpvsTable::default();
    for (no, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() {
            cov.ok();
            continue;
        }
        if let Some(rest) = line.strip_prefix("IP Virtual Server version ") {
            let mut parts = rest.split_whitespace();
            t.version = parts.next().map(str::to_string);
            t.conn_table_size = parts
                .next()
                .and_then(|s| s.strip_prefix("(size=")?.strip_suffix(')')?.parse().ok());
            cov.ok();
            continue;
        }
        if line.starts_with("Prot LocalAddress:Port") || line.starts_with("-> RemoteAddress:Port") {
            cov.ok();
            continue;
        }
        let res = if let Some(d) = line.strip_prefix("->") {
            parse_dest(d, no, &mut t)
        } else {
            parse_service(line, no, &mut t)
        };
        match res {
            Ok(()) => cov.ok(),
            Err(e) => cov.miss(no, raw, e),
        }
    }
    Parsed {
        model: t,
        coverage: cov,
    }
}

fn parse_service(line: &str, no: usize, t: &mut IpvsTable) -> Result<(), String> {
    let mut w = line.split_whitespace();
    let protocol = w.next().ok_or("empty service line")?.to_string();
    if !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP" | "FWM") {
        return Err(format!("unknown service protocol {protocol:?}"));
    }
    let addr_tok = w.next().ok_or("service without address")?;
    let (addr, port, fwmark) = if protocol == "FWM" {
        let hex = t.format == Some(IpvsFormat::ProcHex)
            || (t.format.is_none()
                && addr_tok.len() == 8
                && addr_tok.bytes().all(|b| b.is_ascii_hexdigit()));
        let mark = if hex {
            u32::from_str_radix(addr_tok, 16)
        } else {
            addr_tok.parse()
        }
        .map_err(|_| format!("bad fwmark {addr_tok:?}"))?;
        if t.format.is_none() {
            t.format = Some(if hex {
                IpvsFormat::ProcHex
            } else {
                IpvsFormat::Ipvsadm
            });
        }
        (None, None, Some(mark))
    } else {
        let (a, p) = parse_addr_port(addr_tok, t)?;
        (Some(a), Some(p), None)
    };
    let scheduler = w.next().ok_or("service without scheduler")?.to_string();
    let mut svc = IpvsService {
        line: no,
        protocol,
        addr,
        port,
        fwmark,
        scheduler,
        ops: false,
        persistent: None,
        netmask: None,
        flags: Vec::new(),
        destinations: Vec::new(),
    };
    let hex = t.format == Some(IpvsFormat::ProcHex);
    while let Some(f) = w.next() {
        match f {
            "ops" => svc.ops = true,
            "persistent" => {
                let n = w.next().ok_or("persistent without timeout")?;
                svc.persistent = Some(n.parse().map_err(|_| format!("bad timeout {n:?}"))?);
                if hex {
                    svc.netmask = Some(w.next().ok_or("persistent without netmask")?.to_string());
                }
            }
            "mask" => svc.netmask = Some(w.next().ok_or("mask without value")?.to_string()),
            other if !hex => svc.flags.push(other.to_string()),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    t.services.push(svc);
    Ok(())
}

fn parse_dest(rest: &str, no: usize, t: &mut IpvsTable) -> Result<(), String> {
    let mut w = rest.split_whitespace();
    let addr_tok = w.next().ok_or("destination without address")?;
    let (addr, port) = parse_addr_port(addr_tok, t)?;
    let forward = w
        .next()
        .ok_or("destination without forward method")?
        .to_string();
    let mut n = |what: &str| -> Result<i64, String> {
        let s = w
            .next()
            .ok_or_else(|| format!("destination without {what}"))?;
        s.parse().map_err(|_| format!("bad {what} {s:?}"))
    };
    let weight = i32::try_from(n("weight")?).map_err(|_| "weight out of range")?;
    let active = u32::try_from(n("active connections")?).map_err(|_| "active out of range")?;
    let inactive =
        u32::try_from(n("inactive connections")?).map_err(|_| "inactive out of range")?;
    if let Some(x) = w.next() {
        return Err(format!("unexpected {x:?}"));
    }
    let svc = t
        .services
        .last_mut()
        .ok_or("destination before any service")?;
    svc.destinations.push(IpvsDest {
        line: no,
        addr,
        port,
        forward,
        weight,
        active,
        inactive,
    });
    Ok(())
}

/// `0A600001:0050`, `[2001:0db8:…:0001]:0050` (hex) or `10.96.0.1:80`, `[fd00::a]:53`.
fn parse_addr_port(tok: &str, t: &mut IpvsTable) -> Result<(IpAddr, u16), String> {
    let bad = || format!("bad address:port {tok:?}");
    let (a, p, v6) = if let Some(rest) = tok.strip_prefix('[') {
        let (a, p) = rest.split_once("]:").ok_or_else(bad)?;
        (a, p, true)
    } else {
        let (a, p) = tok.rsplit_once(':').ok_or_else(bad)?;
        (a, p, false)
    };
    if t.format.is_none() {
        let hex = if v6 {
            a.len() == 39 && a.split(':').all(|g| g.len() == 4)
        } else {
            !a.contains('.')
        };
        t.format = Some(if hex {
            IpvsFormat::ProcHex
        } else {
            IpvsFormat::Ipvsadm
        });
    }
    let hex = t.format == Some(IpvsFormat::ProcHex);
    let addr: IpAddr = if !v6 && hex {
        if a.len() != 8 {
            return Err(bad());
        }
        IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).map_err(|_| bad())?,
        ))
    } else {
        a.parse().map_err(|_| bad())?
    };
    let port = if hex {
        u16::from_str_radix(p, 16)
    } else {
        p.parse()
    }
    .map_err(|_| bad())?;
    Ok((addr, port))
}

/// Parse `/proc/net/ip_vs_stats` (hex totals, then hex rates).
pub fn parse_ipvs_stats(path: &str, text: &str) -> Parsed<IpvsStats> {
    let mut cov = Coverage::new(path);
    let mut rows: Vec<[u64; 5]> = Vec::new();
    for (no, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() {
            cov.ok();
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let nums: Option<Vec<u64>> = words
            .iter()
            .map(|w| u64::from_str_radix(w, 16).ok())
            .collect();
        match nums {
            Some(n) if n.len() == 5 && rows.len() < 2 => {
                rows.push([n[0], n[1], n[2], n[3], n[4]]);
                cov.ok();
            }
            Some(_) => cov.miss(no, raw, "unexpected row of numbers"),
            None if words.iter().any(|w| {
                w.contains("Conns")
                    || w.contains("Packets")
                    || w.contains("Pkts")
                    || w.contains("Bytes")
                    || w.contains("Total")
                    || w.contains("Incoming")
                    || w.contains("Outgoing")
            }) =>
            {
                cov.ok()
            }
            None => cov.miss(no, raw, "neither a header nor a row of hex numbers"),
        }
    }
    let mut s = IpvsStats::default();
    if let Some(r) = rows.first() {
        (
            s.conns,
            s.in_packets,
            s.out_packets,
            s.in_bytes,
            s.out_bytes,
        ) = (r[0], r[1], r[2], r[3], r[4]);
    }
    if let Some(r) = rows.get(1) {
        (
            s.conns_per_sec,
            s.in_packets_per_sec,
            s.out_packets_per_sec,
            s.in_bytes_per_sec,
            s.out_bytes_per_sec,
        ) = (r[0], r[1], r[2], r[3], r[4]);
    }
    Parsed {
        model: s,
        coverage: cov,
    }
}

/// Parse `/proc/net/ip_vs_conn`.
pub fn parse_ipvs_conn(path: &str, text: &str) -> Parsed<IpvsConnTable> {
    let mut cov = Coverage::new(path);
    let mut t = IpvsConnTable::default();
    for (no, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("Pro FromIP") {
            cov.ok();
            continue;
        }
        match parse_conn(line, no) {
            Ok(c) => {
                t.conns.push(c);
                cov.ok();
            }
            Err(e) => cov.miss(no, raw, e),
        }
    }
    Parsed {
        model: t,
        coverage: cov,
    }
}

fn conn_addr(a: &str) -> Result<IpAddr, String> {
    if a.len() == 8 && !a.contains(':') {
        u32::from_str_radix(a, 16)
            .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
            .map_err(|_| format!("bad address {a:?}"))
    } else {
        a.parse().map_err(|_| format!("bad address {a:?}"))
    }
}

fn conn_port(p: &str) -> Result<u16, String> {
    u16::from_str_radix(p, 16).map_err(|_| format!("bad port {p:?}"))
}

fn parse_conn(line: &str, no: usize) -> Result<IpvsConn, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() < 9 {
        return Err(format!("{} fields, expected at least 9", w.len()));
    }
    let expires = w[8].parse().map_err(|_| format!("bad expiry {:?}", w[8]))?;
    Ok(IpvsConn {
        line: no,
        protocol: w[0].to_string(),
        client: (conn_addr(w[1])?, conn_port(w[2])?),
        virtual_addr: (conn_addr(w[3])?, conn_port(w[4])?),
        dest: (conn_addr(w[5])?, conn_port(w[6])?),
        state: w[7].to_string(),
        expires,
        pe_name: w.get(9).map(|s| s.to_string()),
        pe_data: if w.len() > 10 {
            Some(w[10..].join(" "))
        } else {
            None
        },
    })
}

/// Renders a table in the kernel's `/proc/net/ip_vs` form (hex addresses and ports,
/// `%pI6` for IPv6). Used by tests and generators: parse(render(t)) gives `t` back,
/// line numbers aside.
pub fn render_ip_vs_proc(t: &IpvsTable) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "IP Virtual Server version {} (size={})",
        t.version.as_deref().unwrap_or("1.2.1"),
        t.conn_table_size.unwrap_or(4096)
    );
    s.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    s.push_str("  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n");
    for svc in &t.services {
        match (svc.fwmark, svc.addr, svc.port) {
            (Some(mark), _, _) => {
                let _ = write!(s, "FWM  {mark:08X} {} ", svc.scheduler);
            }
            (None, Some(addr), Some(port)) => {
                let _ = write!(
                    s,
                    "{}  {} {} ",
                    svc.protocol,
                    hex_addr_port(addr, port),
                    svc.scheduler
                );
            }
            _ => continue,
        }
        if svc.ops {
            s.push_str("ops ");
        }
        if let Some(timeout) = svc.persistent {
            let _ = write!(
                s,
                "persistent {timeout} {}",
                svc.netmask.as_deref().unwrap_or("FFFFFFFF")
            );
        }
        s.push('\n');
        for d in &svc.destinations {
            let _ = writeln!(
                s,
                "  -> {}      {:<7} {:<6} {:<10} {:<10}",
                hex_addr_port(d.addr, d.port),
                d.forward,
                d.weight,
                d.active,
                d.inactive
            );
        }
    }
    s
}

fn hex_addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(v4) => format!("{:08X}:{port:04X}", u32::from(v4)),
        IpAddr::V6(v6) => {
            let g = v6.segments();
            format!(
                "[{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}]:{port:04X}",
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
            )
        }
    }
}
