//! Kernel log lines: `/dev/kmsg` records (`pri,seq,usec,flags;message`, with
//! ` KEY=value` continuation lines) and plain `dmesg` lines (`[  123.456789] message`).
//! Messages that matter to netsnap are classified (conntrack table full, neighbour
//! table overflow, bridge port and veth state changes).

use serde::{Deserialize, Serialize};

use super::coverage::{numbered_lines, Coverage, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Kmsg {
    pub records: Vec<KmsgRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgRecord {
    pub line: usize,
    /// Syslog level (0–7), from `/dev/kmsg` records.
    pub level: Option<u8>,
    /// Syslog facility, from `/dev/kmsg` records.
    pub facility: Option<u8>,
    pub seq: Option<u64>,
    /// Microseconds since boot (`/dev/kmsg`), or the dmesg timestamp converted.
    pub usec: Option<u64>,
    pub message: String,
    pub kind: KmsgKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KmsgKind {
    /// `nf_conntrack: table full, dropping packet` (optionally `in netns N`).
    ConntrackTableFull {
        netns: Option<u64>,
    },
    /// `neighbour: arp_cache: neighbor table overflow!`
    NeighbourTableOverflow {
        table: Option<String>,
    },
    /// `cni0: port 2(veth1a2b) entered forwarding state`
    BridgePortState {
        bridge: String,
        port: u32,
        ifname: String,
        state: String,
    },
    /// A veth event: link becomes ready, renamed, promiscuous mode, …
    Veth {
        ifname: String,
        event: String,
    },
    Other,
}

impl Kmsg {
    pub fn conntrack_full(&self) -> impl Iterator<Item = &KmsgRecord> {
        self.records
            .iter()
            .filter(|r| matches!(r.kind, KmsgKind::ConntrackTableFull { .. }))
    }
}

pub fn parse_kmsg(path: &str, text: &str) -> Parsed<Kmsg> {
    let mut cov = Coverage::new(path);
    let mut k = Kmsg::default();
    for (no, raw) in numbered_lines(text) {
        if raw.trim().is_empty() {
            cov.ok();
            continue;
        }
        // /dev/kmsg dictionary continuation (` SUBSYSTEM=net`).
        if raw.starts_with(' ')
            && !k.records.is_empty()
            && raw.trim_start().contains('=')
            && !raw.trim_start().starts_with('[')
        {
            cov.ok();
            continue;
        }
        match parse_record(raw.trim_start(), no) {
            Some(r) => {
                k.records.push(r);
                cov.ok();
            }
            None => cov.miss(no, raw, "neither a /dev/kmsg record nor a dmesg line"),
        }
    }
    Parsed {
        model: k,
        coverage: cov,
    }
}

fn parse_record(line: &str, no: usize) -> Option<KmsgRecord> {
    if let Some(rest) = line.strip_prefix('[') {
        // dmesg: `[  123.456789] message`
        let (ts, msg) = rest.split_once(']')?;
        let usec = parse_dmesg_ts(ts.trim());
        return Some(record(no, None, None, None, usec, msg.trim_start()));
    }
    // /dev/kmsg: `pri,seq,usec,flags[,…];message`
    let (head, msg) = line.split_once(';')?;
    let mut f = head.split(',');
    let pri: u32 = f.next()?.parse().ok()?;
    let seq: u64 = f.next()?.parse().ok()?;
    let usec: u64 = f.next()?.parse().ok()?;
    Some(record(
        no,
        Some((pri & 7) as u8),
        Some((pri >> 3).min(255) as u8),
        Some(seq),
        Some(usec),
        msg,
    ))
}

fn parse_dmesg_ts(ts: &str) -> Option<u64> {
    let (s, frac) = ts.split_once('.')?;
    let s: u64 = s.parse().ok()?;
    let mut us: u64 = 0;
    let mut digits = 0;
    for c in frac.bytes().take(6) {
        if !c.is_ascii_digit() {
            return None;
        }
        us = us * 10 + u64::from(c - b'0');
        digits += 1;
    }
    for _ in digits..6 {
        us *= 10;
    }
    s.checked_mul(1_000_000)?.checked_add(us)
}

fn record(
    line: usize,
    level: Option<u8>,
    facility: Option<u8>,
    seq: Option<u64>,
    usec: Option<u64>,
    msg: &str,
) -> KmsgRecord {
    KmsgRecord {
        line,
        level,
        facility,
        seq,
        usec,
        message: msg.to_string(),
        kind: classify(msg),
    }
}

/// Classify one message.
pub fn classify(msg: &str) -> KmsgKind {
    if msg.contains("nf_conntrack") && msg.contains("table full") {
        let netns = msg
            .split_once("in netns ")
            .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok());
        return KmsgKind::ConntrackTableFull { netns };
    }
    if msg.contains("table overflow") {
        // `neighbour: arp_cache: neighbor table overflow!`
        let table = msg
            .split(": ")
            .find(|p| p.ends_with("_cache"))
            .map(str::to_string);
        return KmsgKind::NeighbourTableOverflow { table };
    }
    if let Some(k) = bridge_port_state(msg) {
        return k;
    }
    if let Some(k) = veth_event(msg) {
        return k;
    }
    KmsgKind::Other
}

/// `BRIDGE: port N(IFNAME) entered STATE state`
fn bridge_port_state(msg: &str) -> Option<KmsgKind> {
    let (bridge, rest) = msg.split_once(": port ")?;
    let (port, rest) = rest.split_once('(')?;
    let (ifname, rest) = rest.split_once(") entered ")?;
    let state = rest.strip_suffix(" state")?;
    Some(KmsgKind::BridgePortState {
        bridge: bridge.rsplit(' ').next()?.to_string(),
        port: port.parse().ok()?,
        ifname: ifname.to_string(),
        state: state.to_string(),
    })
}

fn veth_event(msg: &str) -> Option<KmsgKind> {
    const EVENTS: &[&str] = &[
        "link becomes ready",
        "link is not ready",
        "renamed from",
        "entered promiscuous mode",
        "left promiscuous mode",
        "entered allmulticast mode",
        "left allmulticast mode",
        "entered disabled state",
    ];
    let event = EVENTS.iter().find(|e| msg.contains(*e))?;
    // The interface is the word ending in ':' before the event, or `device X`.
    let ifname = msg
        .split_whitespace()
        .map(|w| w.trim_end_matches(':'))
        .find(|w| w.starts_with("veth"))?;
    Some(KmsgKind::Veth {
        ifname: ifname.to_string(),
        event: event.to_string(),
    })
}
