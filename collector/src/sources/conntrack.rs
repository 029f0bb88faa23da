//! Conntrack: the entries of the node netns, streamed through ctnetlink and written in
//! the `/proc/net/nf_conntrack` text format, plus the raw per-CPU statistics.
//!
//! Entries are rendered one netlink message at a time into the spool (which moves to
//! an unnamed temp file above 1 MiB), so memory stays flat whatever the table size.
//! Beyond `--conntrack-limit` entries are only counted, so `truncated` records the true
//! total. Without the `nf_conntrack_netlink` module (a request would autoload it) the
//! `/proc/thread-self/net/nf_conntrack` file is copied instead.

use crate::deadline::Deadline;
use crate::source::{io_reason, Captured};
use crate::sys::nldump;
use crate::sys::procfs::thread_net;
use crate::sys::Sys;
use netlink_packet_core::{Emitable, NetlinkBuffer, NetlinkMessage, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::protocols::NETLINK_NETFILTER;
use netsnap_schema::{SourceStatus, Spool};
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::time::Instant;

use netsnap_schema::registry::SourceId;

/// ctnetlink attribute types this module reads beyond what the crate decodes.
mod cta {
    pub const COUNTERS_ORIG: u16 = 9;
    pub const COUNTERS_REPLY: u16 = 10;
    pub const USE: u16 = 11;
    pub const ZONE: u16 = 18;
    pub const TIMESTAMP: u16 = 20;
    pub const COUNTERS_PACKETS: u16 = 1;
    pub const COUNTERS_BYTES: u16 = 2;
    pub const COUNTERS32_PACKETS: u16 = 3;
    pub const COUNTERS32_BYTES: u16 = 4;
    pub const TIMESTAMP_START: u16 = 1;
    pub const PROTO_ICMP_ID: u16 = 4;
    pub const PROTO_ICMP_TYPE: u16 = 5;
    pub const PROTO_ICMP_CODE: u16 = 6;
    pub const PROTO_ICMPV6_ID: u16 = 7;
    pub const PROTO_ICMPV6_TYPE: u16 = 8;
    pub const PROTO_ICMPV6_CODE: u16 = 9;
    pub const PROTOINFO_DCCP: u16 = 2;
    pub const PROTOINFO_SCTP: u16 = 3;
    pub const PROTOINFO_STATE: u16 = 1;
}

const IPS_SEEN_REPLY: u32 = 1 << 1;
const IPS_ASSURED: u32 = 1 << 2;
const IPS_OFFLOAD: u32 = 1 << 14;
const IPS_HW_OFFLOAD: u32 = 1 << 15;

const TCP_STATES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];
const SCTP_STATES: [&str; 10] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
    "HEARTBEAT_ACKED",
];
const DCCP_STATES: [&str; 10] = [
    "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE",
    "INVALID",
];

fn l3_name(family: u8) -> &'static str {
    match i32::from(family) {
        libc::AF_INET => "ipv4",
        libc::AF_INET6 => "ipv6",
        _ => "unknown",
    }
}

fn l4_name(proto: u8) -> &'static str {
    match i32::from(proto) {
        libc::IPPROTO_TCP => "tcp",
        libc::IPPROTO_UDP => "udp",
        libc::IPPROTO_UDPLITE => "udplite",
        libc::IPPROTO_ICMP => "icmp",
        libc::IPPROTO_ICMPV6 => "icmpv6",
        libc::IPPROTO_SCTP => "sctp",
        libc::IPPROTO_DCCP => "dccp",
        libc::IPPROTO_GRE => "gre",
        _ => "unknown",
    }
}

fn be_u16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}
fn be_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}
fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

#[derive(Default)]
struct TupleView {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<u8>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_id: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
}

/// A CTA_TUPLE_ORIG / CTA_TUPLE_REPLY value: nested CTA_TUPLE_IP and CTA_TUPLE_PROTO.
fn tuple_view(raw: &[u8]) -> TupleView {
    const TUPLE_IP: u16 = 1;
    const TUPLE_PROTO: u16 = 2;
    const IP_V4_SRC: u16 = 1;
    const IP_V4_DST: u16 = 2;
    const IP_V6_SRC: u16 = 3;
    const IP_V6_DST: u16 = 4;
    const PROTO_NUM: u16 = 1;
    const PROTO_SRC_PORT: u16 = 2;
    const PROTO_DST_PORT: u16 = 3;
    let ip = |v: &[u8]| -> Option<IpAddr> {
        match v.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
            _ => None,
        }
    };
    let mut t = TupleView::default();
    for (k, v) in nldump::attrs(raw) {
        match k {
            TUPLE_IP => {
                for (k, v) in nldump::attrs(v) {
                    match k {
                        IP_V4_SRC | IP_V6_SRC => t.src = ip(v),
                        IP_V4_DST | IP_V6_DST => t.dst = ip(v),
                        _ => {}
                    }
                }
            }
            TUPLE_PROTO => {
                for (k, v) in nldump::attrs(v) {
                    match k {
                        PROTO_NUM => t.proto = v.first().copied(),
                        PROTO_SRC_PORT => t.sport = be_u16(v),
                        PROTO_DST_PORT => t.dport = be_u16(v),
                        cta::PROTO_ICMP_ID | cta::PROTO_ICMPV6_ID => t.icmp_id = be_u16(v),
                        cta::PROTO_ICMP_TYPE | cta::PROTO_ICMPV6_TYPE => {
                            t.icmp_type = v.first().copied()
                        }
                        cta::PROTO_ICMP_CODE | cta::PROTO_ICMPV6_CODE => {
                            t.icmp_code = v.first().copied()
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    t
}

/// Appends `v` in decimal (the hot path formats a few million numbers).
fn push_dec(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// `%pI4` / `%pI6` (the kernel prints IPv6 uncompressed in this file).
fn fmt_ip(out: &mut String, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (i, o) in a.octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_dec(out, u64::from(*o));
            }
        }
        IpAddr::V6(a) => {
            for (i, seg) in a.segments().iter().enumerate() {
                if i > 0 {
                    out.push(':');
                }
                let _ = write!(out, "{seg:04x}");
            }
        }
    }
}

fn fmt_tuple(out: &mut String, t: &TupleView, l4: u8) {
    out.push_str("src=");
    if let Some(a) = &t.src {
        fmt_ip(out, a);
    }
    out.push_str(" dst=");
    if let Some(a) = &t.dst {
        fmt_ip(out, a);
    }
    out.push(' ');
    match i32::from(l4) {
        libc::IPPROTO_TCP
        | libc::IPPROTO_UDP
        | libc::IPPROTO_UDPLITE
        | libc::IPPROTO_SCTP
        | libc::IPPROTO_DCCP => {
            out.push_str("sport=");
            push_dec(out, u64::from(t.sport.unwrap_or(0)));
            out.push_str(" dport=");
            push_dec(out, u64::from(t.dport.unwrap_or(0)));
            out.push(' ');
        }
        libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6 => {
            let _ = write!(
                out,
                "type={} code={} id={} ",
                t.icmp_type.unwrap_or(0),
                t.icmp_code.unwrap_or(0),
                t.icmp_id.unwrap_or(0)
            );
        }
        libc::IPPROTO_GRE => {
            let _ = write!(
                out,
                "srckey=0x{:x} dstkey=0x{:x} ",
                t.sport.unwrap_or(0),
                t.dport.unwrap_or(0)
            );
        }
        _ => {}
    }
}

fn fmt_counters(out: &mut String, raw: Option<&[u8]>) {
    let Some(raw) = raw else {
        return;
    };
    let (mut packets, mut bytes) = (0u64, 0u64);
    for (k, v) in nldump::attrs(raw) {
        match k {
            cta::COUNTERS_PACKETS => packets = be_u64(v).unwrap_or(0),
            cta::COUNTERS_BYTES => bytes = be_u64(v).unwrap_or(0),
            cta::COUNTERS32_PACKETS => packets = u64::from(be_u32(v).unwrap_or(0)),
            cta::COUNTERS32_BYTES => bytes = u64::from(be_u32(v).unwrap_or(0)),
            _ => {}
        }
    }
    let _ = write!(out, "packets={packets} bytes={bytes} ");
}

/// Renders one conntrack entry exactly as `/proc/net/nf_conntrack` prints it
/// (`ct_seq_show` in nf_conntrack_standalone.c), without the final newline, from the
/// entry's ctnetlink attributes (`attrs`: what follows the `nfgenmsg` of an
/// IPCTNL_MSG_CT_NEW message), read in place: no decoded copy of the message is built
/// (that was half of the dump's CPU with 262,144 entries). Returns false, with nothing
/// rendered, when the attributes do not parse or hold no original tuple.
/// `now_ns` is CLOCK_REALTIME, used only for `delta-time` (conntrack timestamps on).
pub fn render_raw(family: u8, attrs: &[u8], now_ns: u64, out: &mut String) -> bool {
    const TUPLE_ORIG: u16 = 1;
    const TUPLE_REPLY: u16 = 2;
    const STATUS: u16 = 3;
    const PROTOINFO: u16 = 4;
    const TIMEOUT: u16 = 7;
    const MARK: u16 = 8;
    const PROTOINFO_TCP: u16 = 1;
    let mut orig = None;
    let mut reply = TupleView::default();
    let mut status = 0u32;
    let mut timeout = None;
    let mut mark = 0u32;
    let mut state: Option<&'static str> = None;
    let mut use_count = 0u32;
    let mut zone = 0u16;
    let mut counters_orig = None;
    let mut counters_reply = None;
    let mut started_ns = None;
    let mut seen = 0;
    for (k, v) in nldump::attrs(attrs) {
        seen += (v.len() + 4 + 3) & !3;
        match k {
            TUPLE_ORIG => orig = Some(tuple_view(v)),
            TUPLE_REPLY => reply = tuple_view(v),
            STATUS => status = be_u32(v).unwrap_or(0),
            TIMEOUT => timeout = be_u32(v),
            MARK => mark = be_u32(v).unwrap_or(0),
            PROTOINFO => {
                for (k, v) in nldump::attrs(v) {
                    let names: &[&'static str; 10] = match k {
                        PROTOINFO_TCP => &TCP_STATES,
                        cta::PROTOINFO_SCTP => &SCTP_STATES,
                        cta::PROTOINFO_DCCP => &DCCP_STATES,
                        _ => continue,
                    };
                    for (k, v) in nldump::attrs(v) {
                        if k == cta::PROTOINFO_STATE {
                            let idx = usize::from(v.first().copied().unwrap_or(0));
                            state = Some(names.get(idx).copied().unwrap_or("UNKNOWN"));
                        }
                    }
                }
            }
            cta::USE => use_count = be_u32(v).unwrap_or(0),
            cta::ZONE => zone = be_u16(v).unwrap_or(0),
            cta::COUNTERS_ORIG => counters_orig = Some(v),
            cta::COUNTERS_REPLY => counters_reply = Some(v),
            cta::TIMESTAMP => {
                started_ns = nldump::attrs(v)
                    .find(|(k, _)| *k == cta::TIMESTAMP_START)
                    .and_then(|(_, v)| be_u64(v))
            }
            _ => {}
        }
    }
    // Every byte accounted for (the last attribute may lack its padding).
    let Some(orig) = orig.filter(|_| seen >= attrs.len() && seen < attrs.len() + 4) else {
        return false;
    };
    let l4 = orig.proto.unwrap_or(0);
    let _ = write!(
        out,
        "{:<8} {} {:<8} {} ",
        l3_name(family),
        family,
        l4_name(l4),
        l4
    );
    if status & IPS_OFFLOAD == 0 {
        let _ = write!(out, "{} ", timeout.unwrap_or(0));
    }
    if let Some(s) = state {
        if matches!(
            i32::from(l4),
            libc::IPPROTO_TCP | libc::IPPROTO_SCTP | libc::IPPROTO_DCCP
        ) {
            out.push_str(s);
            out.push(' ');
        }
    }
    fmt_tuple(out, &orig, l4);
    fmt_counters(out, counters_orig);
    if status & IPS_SEEN_REPLY == 0 {
        out.push_str("[UNREPLIED] ");
    }
    fmt_tuple(out, &reply, l4);
    fmt_counters(out, counters_reply);
    if status & IPS_HW_OFFLOAD != 0 {
        out.push_str("[HW_OFFLOAD] ");
    } else if status & IPS_OFFLOAD != 0 {
        out.push_str("[OFFLOAD] ");
    } else if status & IPS_ASSURED != 0 {
        out.push_str("[ASSURED] ");
    }
    let _ = write!(out, "mark={mark} ");
    // The kernel prints the (default-direction) zone even when it is 0; ctnetlink
    // omits CTA_ZONE then.
    let _ = write!(out, "zone={zone} ");
    if let Some(start) = started_ns {
        let _ = write!(
            out,
            "delta-time={} ",
            now_ns.saturating_sub(start) / 1_000_000_000
        );
    }
    // The /proc reader holds a reference while printing, so the file shows one more
    // than ctnetlink reports; match the file.
    let _ = write!(out, "use={}", use_count.saturating_add(1));
    true
}

/// [`render_raw`] of decoded attributes (emitted back to their wire form first).
pub fn render_entry(family: u8, attrs: &[ConntrackAttribute], now_ns: u64, out: &mut String) {
    let mut raw = vec![0u8; attrs.buffer_len()];
    attrs.emit(&mut raw);
    render_raw(family, &raw, now_ns, out);
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DumpStats {
    /// Entries the kernel sent.
    pub total: u64,
    /// Entries written.
    pub kept: u64,
    /// Messages that could not be decoded (counted in `total`, not written).
    pub undecoded: u64,
    /// The dump stopped at the deadline.
    pub timed_out: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CtError {
    #[error("{}", io_reason(.0, .1))]
    Io(&'static str, #[source] io::Error),
    #[error("{}", io_reason("ctnetlink dump", &io::Error::from_raw_os_error(*.0)))]
    Kernel(i32),
    /// Writing the entries out (the spool in the output directory) failed.
    #[error("{}", io_reason("writing conntrack entries", .0))]
    Sink(#[source] io::Error),
}

impl CtError {
    fn is_permission(&self) -> bool {
        match self {
            CtError::Io(_, e) => crate::source::is_permission(e),
            CtError::Kernel(c) => *c == libc::EPERM || *c == libc::EACCES,
            CtError::Sink(_) => false,
        }
    }
}

/// Dumps the conntrack table of the calling thread's netns through ctnetlink into
/// `sink`, writing at most `limit` entries and counting all of them.
pub fn dump_ctnetlink<W: Write>(
    sink: &mut W,
    limit: u64,
    until: Instant,
) -> Result<DumpStats, CtError> {
    let msg = NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
        ConntrackMessage::Get(vec![]),
    );
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    let sock =
        nldump::send_request(NETLINK_NETFILTER, &buf).map_err(|(what, e)| CtError::Io(what, e))?;

    let mut stats = DumpStats::default();
    let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut line = String::with_capacity(512);
    let now_ns = realtime_ns();
    loop {
        if Instant::now() >= until {
            stats.timed_out = true;
            return Ok(stats);
        }
        if !nldump::recv_batch(&sock, &mut rx)
            .map_err(|e| CtError::Io("receiving the ctnetlink dump", e))?
        {
            continue;
        }
        let mut off = 0;
        while off < rx.len() {
            let Ok(nl) = NetlinkBuffer::new_checked(&rx[off..]) else {
                stats.undecoded += 1;
                break;
            };
            let len = nl.length() as usize;
            let ty = nl.message_type();
            let bytes = &rx[off..off + len];
            off += (len + 3) & !3;
            match ty {
                t if t == libc::NLMSG_DONE as u16 => return Ok(stats),
                t if t == libc::NLMSG_ERROR as u16 => {
                    // An error (or an ack): code in the first 4 bytes of the payload.
                    let code = bytes
                        .get(16..20)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if code != 0 {
                        return Err(CtError::Kernel(code.abs()));
                    }
                    continue;
                }
                t if t < 0x10 => continue, // other control messages
                _ => {}
            }
            stats.total += 1;
            if stats.kept >= limit {
                // Over the cap: counted, not decoded.
                continue;
            }
            // IPCTNL_MSG_CT_NEW of NFNL_SUBSYS_CTNETLINK: nfgenmsg, then attributes.
            const CT_NEW: u16 = 1 << 8;
            line.clear();
            if ty == CT_NEW
                && bytes.len() >= 20
                && render_raw(bytes[16], &bytes[20..], now_ns, &mut line)
            {
                line.push('\n');
                sink.write_all(line.as_bytes()).map_err(CtError::Sink)?;
                stats.kept += 1;
            } else {
                stats.undecoded += 1;
            }
        }
    }
}

/// Captures `conntrack/nf_conntrack.txt` from the calling thread's netns.
pub fn capture_entries(
    sys: &dyn Sys,
    mut spool: Spool,
    limit: u64,
    deadline: &Deadline,
) -> Captured {
    let path = netsnap_schema::layout::CONNTRACK_ENTRIES;
    if !sys.module_present("nf_conntrack") {
        return Captured::unavailable(
            SourceId::ConntrackEntries.name(),
            "nf_conntrack is not loaded (no connection tracking on this node)",
        );
    }
    let mut ct_error = None;
    if sys.module_present("nf_conntrack_netlink") {
        let mut w = BufWriter::with_capacity(256 * 1024, &mut spool);
        let r = dump_ctnetlink(&mut w, limit, deadline.capture_end());
        let flushed = w.flush();
        drop(w);
        match (r, flushed) {
            (Ok(stats), Ok(())) => return finish(spool, path, stats, "ctnetlink"),
            (Ok(_), Err(e)) | (Err(CtError::Sink(e)), _) => {
                // Our own disk is full (or failing), not the node's conntrack: drop
                // what was spooled so the rest of the bundle still has room.
                drop(spool);
                return Captured::failed(
                    SourceId::ConntrackEntries.name(),
                    format!(
                        "{}; the entries spooled so far were dropped to leave room for the rest of the bundle",
                        io_reason("writing conntrack entries", &e)
                    ),
                );
            }
            (Err(e), _) => {
                if !spool.is_empty() {
                    // Some entries were written before the error: keep them.
                    return Captured::spooled(
                        SourceId::ConntrackEntries.name(),
                        path,
                        SourceStatus::Partial,
                        spool,
                    )
                    .with_error(e.to_string());
                }
                ct_error = Some(e);
            }
        }
    }
    // Fallback: the procfs view of the same table.
    let file = thread_net("nf_conntrack");
    let reason_ct = ct_error.as_ref().map(|e| e.to_string());
    match std::fs::File::open(&file) {
        Ok(f) => {
            let r = {
                let mut w = BufWriter::with_capacity(256 * 1024, &mut spool);
                let r = crate::sys::procfs::copy_lines_capped(f, &mut w, 0, limit);
                r.and_then(|n| w.flush().map(|_| n))
            };
            match r {
                Ok(n) => {
                    let stats = DumpStats {
                        total: n.total,
                        kept: n.kept,
                        undecoded: 0,
                        timed_out: false,
                    };
                    let how = match &reason_ct {
                        Some(r) => {
                            format!("/proc/thread-self/net/nf_conntrack (ctnetlink failed: {r})")
                        }
                        None => {
                            "/proc/thread-self/net/nf_conntrack (nf_conntrack_netlink not loaded)"
                                .into()
                        }
                    };
                    finish(spool, path, stats, &how)
                }
                Err(e) => Captured::failed(
                    SourceId::ConntrackEntries.name(),
                    io_reason(&file.display().to_string(), &e),
                ),
            }
        }
        Err(e) => {
            let proc_reason = io_reason(&file.display().to_string(), &e);
            let reason = match (ct_error, crate::source::is_permission(&e)) {
                (Some(ct), _) if ct.is_permission() => {
                    format!("permission denied: ctnetlink dump and {}", file.display())
                }
                (Some(ct), _) => format!("{ct}; fallback {proc_reason}"),
                (None, _) => proc_reason,
            };
            Captured::failed(SourceId::ConntrackEntries.name(), reason)
        }
    }
}

fn finish(spool: Spool, path: &str, stats: DumpStats, how: &str) -> Captured {
    let mut problems = Vec::new();
    if stats.undecoded > 0 {
        problems.push(format!("{} entries could not be decoded", stats.undecoded));
    }
    if stats.timed_out {
        problems.push(format!(
            "stopped at the deadline after {} entries",
            stats.total
        ));
    }
    let status = if problems.is_empty() {
        SourceStatus::Ok
    } else {
        SourceStatus::Partial
    };
    let mut c = Captured::spooled(SourceId::ConntrackEntries.name(), path, status, spool)
        .with_note(format!("via {how}"));
    if !problems.is_empty() {
        c = c.with_error(problems.join("; "));
    }
    if stats.kept < stats.total && !stats.timed_out {
        c = c.truncated(stats.kept, stats.total);
    } else if stats.timed_out {
        // The true total is unknown; what was seen is a lower bound.
        c = c.truncated(stats.kept, stats.total);
    }
    c
}

/// `conntrack/stat.txt`: `/proc/thread-self/net/stat/nf_conntrack`, raw.
pub fn capture_stat() -> Captured {
    let name = SourceId::ConntrackStat.name();
    let file = thread_net("stat/nf_conntrack");
    match crate::sys::procfs::read_capped(&file, 16 << 20) {
        Ok(text) => Captured::bytes(
            name,
            netsnap_schema::layout::CONNTRACK_STAT,
            SourceStatus::Ok,
            text.into_bytes(),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Captured::unavailable(
            name,
            "no /proc/net/stat/nf_conntrack (nf_conntrack not loaded)",
        ),
        Err(e) => Captured::failed(name, io_reason(&file.display().to_string(), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::DefaultNla;
    use netlink_packet_netfilter::conntrack::{
        IPTuple, ProtoInfo, ProtoInfoTCP, ProtoTuple, Protocol, Status, Tuple,
    };

    fn tuple(src: &str, dst: &str, proto: Protocol, sport: u16, dport: u16) -> Vec<Tuple> {
        vec![
            Tuple::Ip(vec![
                IPTuple::SourceAddress(src.parse().unwrap()),
                IPTuple::DestinationAddress(dst.parse().unwrap()),
            ]),
            Tuple::Proto(vec![
                ProtoTuple::Protocol(proto),
                ProtoTuple::SourcePort(sport),
                ProtoTuple::DestinationPort(dport),
            ]),
        ]
    }

    fn nla(kind: u16, v: Vec<u8>) -> DefaultNla {
        DefaultNla::new(kind, v)
    }

    #[test]
    fn tcp_dnat_entry_matches_proc_format() {
        let attrs = vec![
            ConntrackAttribute::CtaTupleOrig(tuple(
                "10.244.0.5",
                "10.96.0.10",
                Protocol::Tcp,
                40000,
                80,
            )),
            ConntrackAttribute::CtaTupleReply(tuple(
                "10.244.0.9",
                "10.244.0.5",
                Protocol::Tcp,
                8080,
                40000,
            )),
            ConntrackAttribute::CtaStatus(Status::from_bits_retain(0x1be)),
            ConntrackAttribute::CtaTimeout(117),
            ConntrackAttribute::CtaMark(0),
            ConntrackAttribute::CtaProtoInfo(vec![ProtoInfo::TCP(vec![ProtoInfoTCP::State(7)])]),
            ConntrackAttribute::Other(nla(cta::USE, 1u32.to_be_bytes().to_vec())),
        ];
        let mut s = String::new();
        render_entry(2, &attrs, 0, &mut s);
        assert_eq!(
            s,
            "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.10 sport=40000 dport=80 \
             src=10.244.0.9 dst=10.244.0.5 sport=8080 dport=40000 [ASSURED] mark=0 zone=0 use=2"
        );
    }

    #[test]
    fn unreplied_udp_with_zone_and_counters() {
        let mut counters = Vec::new();
        // Nested CTA_COUNTERS_PACKETS (u64 BE) and CTA_COUNTERS_BYTES.
        for (k, v) in [(1u16, 3u64), (2, 180)] {
            counters.extend_from_slice(&12u16.to_ne_bytes());
            counters.extend_from_slice(&k.to_ne_bytes());
            counters.extend_from_slice(&v.to_be_bytes());
        }
        let attrs = vec![
            ConntrackAttribute::CtaTupleOrig(tuple(
                "10.244.0.5",
                "10.96.0.10",
                Protocol::Udp,
                5353,
                53,
            )),
            ConntrackAttribute::CtaTupleReply(tuple(
                "10.244.0.7",
                "10.244.0.5",
                Protocol::Udp,
                53,
                5353,
            )),
            ConntrackAttribute::CtaStatus(Status::from_bits_retain(0x188)),
            ConntrackAttribute::CtaTimeout(29),
            ConntrackAttribute::CtaMark(0x4000),
            ConntrackAttribute::Other(nla(cta::COUNTERS_ORIG | 0x8000, counters.clone())),
            ConntrackAttribute::Other(nla(cta::ZONE, 5u16.to_be_bytes().to_vec())),
            ConntrackAttribute::Other(nla(cta::USE, 2u32.to_be_bytes().to_vec())),
        ];
        let mut s = String::new();
        render_entry(2, &attrs, 0, &mut s);
        assert_eq!(
            s,
            "ipv4     2 udp      17 29 src=10.244.0.5 dst=10.96.0.10 sport=5353 dport=53 \
             packets=3 bytes=180 [UNREPLIED] src=10.244.0.7 dst=10.244.0.5 sport=53 dport=5353 \
             mark=16384 zone=5 use=3"
        );
    }

    #[test]
    fn icmp_and_ipv6() {
        let icmp_tuple = |src: &str, dst: &str| {
            vec![
                Tuple::Ip(vec![
                    IPTuple::SourceAddress(src.parse().unwrap()),
                    IPTuple::DestinationAddress(dst.parse().unwrap()),
                ]),
                Tuple::Proto(vec![
                    ProtoTuple::Protocol(Protocol::Ipv6Icmp),
                    ProtoTuple::Other(nla(cta::PROTO_ICMPV6_ID, 7u16.to_be_bytes().to_vec())),
                    ProtoTuple::Other(nla(cta::PROTO_ICMPV6_TYPE, vec![128])),
                    ProtoTuple::Other(nla(cta::PROTO_ICMPV6_CODE, vec![0])),
                ]),
            ]
        };
        let attrs = vec![
            ConntrackAttribute::CtaTupleOrig(icmp_tuple("fd00::1", "fd00::2")),
            ConntrackAttribute::CtaTupleReply(icmp_tuple("fd00::2", "fd00::1")),
            ConntrackAttribute::CtaStatus(Status::from_bits_retain(0x8 | 0x2)),
            ConntrackAttribute::CtaTimeout(25),
        ];
        let mut s = String::new();
        render_entry(10, &attrs, 0, &mut s);
        assert_eq!(
            s,
            "ipv6     10 icmpv6   58 25 src=fd00:0000:0000:0000:0000:0000:0000:0001 \
             dst=fd00:0000:0000:0000:0000:0000:0000:0002 type=128 code=0 id=7 \
             src=fd00:0000:0000:0000:0000:0000:0000:0002 dst=fd00:0000:0000:0000:0000:0000:0000:0001 \
             type=128 code=0 id=7 mark=0 zone=0 use=1"
        );
    }

    #[test]
    fn raw_attributes_that_do_not_parse_render_nothing() {
        let attrs = vec![
            ConntrackAttribute::CtaTupleOrig(tuple("10.0.0.1", "10.0.0.2", Protocol::Tcp, 1, 2)),
            ConntrackAttribute::CtaTimeout(5),
        ];
        let mut raw = vec![0u8; attrs.as_slice().buffer_len()];
        attrs.as_slice().emit(&mut raw);
        let mut s = String::new();
        assert!(render_raw(2, &raw, 0, &mut s));
        assert!(
            s.starts_with("ipv4     2 tcp      6 5 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 "),
            "{s}"
        );
        // Cut inside the last attribute, or no original tuple: not rendered.
        let mut s = String::new();
        assert!(!render_raw(2, &raw[..raw.len() - 2], 0, &mut s));
        assert!(!render_raw(2, &raw[raw.len() - 8..], 0, &mut s));
        assert!(s.is_empty());
    }

    #[test]
    fn decimal() {
        for v in [0u64, 7, 10, 65535, u64::MAX] {
            let mut s = String::new();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
