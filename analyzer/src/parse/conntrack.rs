//! Conntrack entries: `/proc/net/nf_conntrack` text (`ipv4     2 tcp      6 117 …`) and
//! `conntrack -L` text (same without the two leading l3 fields).
//!
//! Built for large tables: one pass per line, no regex, no per-field allocation
//! (addresses, ports and states are parsed into plain values). A big file can be cut
//! into line-aligned chunks with [`split_chunks`], parsed in parallel with
//! [`parse_conntrack_lines`] and joined with [`merge`]. The analysis itself streams
//! each line to flow aggregation through [`parse_conntrack_flows`] (module `flow`: a
//! fast path for the kernel's fixed field order, this parser for everything else).

mod digits;
mod flow;

pub use flow::{parse_conntrack_flows, CtFlow};

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::coverage::{Coverage, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConntrackTable {
    pub entries: Vec<CtEntry>,
    /// `N flow entries have been shown.` when the tool's summary was captured too.
    pub reported_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtEntry {
    pub line: usize,
    /// L3 protocol number from the /proc form (2 = IPv4, 10 = IPv6); `None` for
    /// `conntrack -L` output, which does not print it.
    pub l3num: Option<u8>,
    pub protocol: L4Proto,
    /// L4 protocol number as printed (6, 17, 1, 58, 132, …).
    pub protonum: u8,
    /// Seconds until the entry expires.
    pub timeout: u32,
    /// Protocol state (TCP, SCTP, DCCP); `None` for stateless protocols.
    pub state: Option<CtState>,
    pub original: CtTuple,
    pub reply: CtTuple,
    pub unreplied: bool,
    pub assured: bool,
    pub offload: bool,
    pub hw_offload: bool,
    pub mark: Option<u32>,
    pub zone: Option<u16>,
    pub use_count: Option<u32>,
    /// Rarely present fields, boxed to keep entries small (a table can be large).
    pub extra: Option<Box<CtExtra>>,
}

/// The rare parts of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CtExtra {
    /// SELinux context (`secctx=`).
    pub secctx: Option<String>,
    /// Fields without a typed slot (`labels=`, `helper=`, `[DYING]`, an unknown state
    /// word, …), kept verbatim.
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// ICMP / ICMPv6 type, code, id.
    pub icmp: Option<Icmp>,
    /// With `nf_conntrack_acct=1`.
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icmp {
    pub kind: u8,
    pub code: u8,
    pub id: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum L4Proto {
    Tcp,
    Udp,
    Udplite,
    Icmp,
    Icmpv6,
    Sctp,
    Dccp,
    Gre,
    /// Anything else (`unknown` in the kernel's words), by number.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CtState {
    // TCP
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
    Listen,
    None,
    // SCTP
    Closed,
    CookieWait,
    CookieEchoed,
    ShutdownSent,
    ShutdownRecd,
    ShutdownAckSent,
    HeartbeatSent,
    HeartbeatAcked,
    // DCCP
    Request,
    Respond,
    PartOpen,
    Open,
    CloseReq,
    Closing,
    /// A state this parser does not know; the word is kept in [`CtExtra::fields`].
    Other,
}

impl CtState {
    fn parse(s: &str) -> CtState {
        match s {
            "SYN_SENT" => CtState::SynSent,
            "SYN_RECV" => CtState::SynRecv,
            "ESTABLISHED" => CtState::Established,
            "FIN_WAIT" => CtState::FinWait,
            "CLOSE_WAIT" => CtState::CloseWait,
            "LAST_ACK" => CtState::LastAck,
            "TIME_WAIT" | "TIMEWAIT" => CtState::TimeWait,
            "CLOSE" => CtState::Close,
            "SYN_SENT2" => CtState::SynSent2,
            "LISTEN" => CtState::Listen,
            "NONE" => CtState::None,
            "CLOSED" => CtState::Closed,
            "COOKIE_WAIT" => CtState::CookieWait,
            "COOKIE_ECHOED" => CtState::CookieEchoed,
            "SHUTDOWN_SENT" => CtState::ShutdownSent,
            "SHUTDOWN_RECD" => CtState::ShutdownRecd,
            "SHUTDOWN_ACK_SENT" => CtState::ShutdownAckSent,
            "HEARTBEAT_SENT" => CtState::HeartbeatSent,
            "HEARTBEAT_ACKED" => CtState::HeartbeatAcked,
            "REQUEST" => CtState::Request,
            "RESPOND" => CtState::Respond,
            "PARTOPEN" => CtState::PartOpen,
            "OPEN" => CtState::Open,
            "CLOSEREQ" => CtState::CloseReq,
            "CLOSING" => CtState::Closing,
            _ => CtState::Other,
        }
    }
}

impl L4Proto {
    fn parse(s: &str) -> L4Proto {
        match s {
            "tcp" => L4Proto::Tcp,
            "udp" => L4Proto::Udp,
            "udplite" => L4Proto::Udplite,
            "icmp" => L4Proto::Icmp,
            "icmpv6" => L4Proto::Icmpv6,
            "sctp" => L4Proto::Sctp,
            "dccp" => L4Proto::Dccp,
            "gre" => L4Proto::Gre,
            _ => L4Proto::Other,
        }
    }
}

impl CtEntry {
    pub fn secctx(&self) -> Option<&str> {
        self.extra.as_ref()?.secctx.as_deref()
    }

    /// Verbatim fields without a typed slot.
    pub fn extra_fields(&self) -> &[String] {
        self.extra
            .as_ref()
            .map(|x| x.fields.as_slice())
            .unwrap_or(&[])
    }

    /// The address the client connected to (a service VIP for DNATed flows).
    pub fn orig_dst(&self) -> IpAddr {
        self.original.dst
    }

    /// Where the flow really goes after DNAT: the reply tuple's source.
    pub fn real_dst(&self) -> IpAddr {
        self.reply.src
    }

    /// Destination NAT happened (reply source differs from original destination).
    pub fn is_dnat(&self) -> bool {
        self.reply.src != self.original.dst || self.reply.sport != self.original.dport
    }

    /// Source NAT happened (reply destination differs from original source).
    pub fn is_snat(&self) -> bool {
        self.reply.dst != self.original.src || self.reply.dport != self.original.sport
    }
}

/// Parse a whole file.
pub fn parse_conntrack(path: &str, text: &str) -> Parsed<ConntrackTable> {
    parse_conntrack_lines(path, text, 1)
}

/// Parse a chunk of whole lines whose first line is line `first_line_no` of the file.
pub fn parse_conntrack_lines(
    path: &str,
    text: &str,
    first_line_no: usize,
) -> Parsed<ConntrackTable> {
    let mut cov = Coverage::new(path);
    let mut table = ConntrackTable {
        // A rough guess (~200 bytes per line) avoids most regrowth.
        entries: Vec::with_capacity(text.len() / 200 + 1),
        reported_count: None,
    };
    for (i, raw) in text.lines().enumerate() {
        if let Some(e) = parse_line(raw, first_line_no + i, &mut cov, &mut table.reported_count) {
            table.entries.push(e);
        }
    }
    Parsed {
        model: table,
        coverage: cov,
    }
}

/// Streams the entries of a chunk of raw bytes (whole lines, line `first_line_no`
/// first) to `each` with the byte offset of their line in the chunk, without keeping
/// them: a million-entry table is aggregated, never held. Lines are decoded one by one
/// (invalid UTF-8 replaced), which reads exactly as [`parse_conntrack_lines`] on the
/// lossily decoded chunk.
pub fn parse_conntrack_stream(
    path: &str,
    data: &[u8],
    first_line_no: usize,
    mut each: impl FnMut(CtEntry, usize),
) -> (Coverage, Option<u64>) {
    let mut cov = Coverage::new(path);
    let mut reported = None;
    for_each_line(data, first_line_no, |bytes, no, at, terminated| {
        let decoded = String::from_utf8_lossy(bytes);
        if let Some(e) = parse_line(strip_cr(&decoded, terminated), no, &mut cov, &mut reported) {
            each(e, at);
        }
    });
    (cov, reported)
}

/// Calls `f(line bytes, line number, byte offset, ended by a newline)` for every line
/// of `data` (whose first line is `first_line_no`), the last one even without a
/// newline, as `str::lines` cuts them.
fn for_each_line(data: &[u8], first_line_no: usize, mut f: impl FnMut(&[u8], usize, usize, bool)) {
    let (mut start, mut no) = (0usize, first_line_no);
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
        f(&data[start..end], no, start, end < data.len());
        start = end + 1;
        no += 1;
    }
}

/// As `str::lines`: one `\r` before a `\n` goes ([`parse_line`] strips another).
fn strip_cr(line: &str, terminated: bool) -> &str {
    match terminated {
        true => line.strip_suffix('\r').unwrap_or(line),
        false => line,
    }
}

/// One line of the table: an entry, or a counted blank/summary line, or a miss.
fn parse_line(
    raw: &str,
    no: usize,
    cov: &mut Coverage,
    reported: &mut Option<u64>,
) -> Option<CtEntry> {
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    if line.bytes().all(|b| b.is_ascii_whitespace()) {
        cov.ok();
        return None;
    }
    if line.as_bytes()[0] == b'c' {
        if let Some(n) = summary_count(line) {
            *reported = Some(n);
            cov.ok();
            return None;
        }
    }
    match parse_entry(line, no) {
        Ok(e) => {
            cov.ok();
            Some(e)
        }
        Err(reason) => {
            cov.miss(no, line, reason);
            None
        }
    }
}

/// `conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.`
fn summary_count(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("conntrack v")?;
    let (_, tail) = rest.split_once("): ")?;
    let (n, what) = tail.split_once(' ')?;
    if what.starts_with("flow entries have been shown") {
        n.parse().ok()
    } else {
        None
    }
}

/// Cut `text` into at most `n` pieces at line boundaries. Each piece comes with the
/// 1-based number of its first line, ready for [`parse_conntrack_lines`].
pub fn split_chunks(text: &str, n: usize) -> Vec<(usize, &str)> {
    let n = n.max(1);
    let bytes = text.as_bytes();
    let target = bytes.len() / n + 1;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    let mut line_no = 1;
    while start < bytes.len() {
        let mut end = (start + target).min(bytes.len());
        // Move to just after the next newline so chunks hold whole lines.
        while end < bytes.len() && bytes[end - 1] != b'\n' {
            end += 1;
        }
        let chunk = &text[start..end];
        out.push((line_no, chunk));
        line_no += chunk.bytes().filter(|&b| b == b'\n').count();
        start = end;
    }
    out
}

/// Join chunk results, each with the number of its chunk's first line in the file (as
/// [`split_chunks`] gives it), in any order, into the whole file's result: entries in
/// line order, and the summary count of the file's last summary line, as
/// [`parse_conntrack`] keeps it.
pub fn merge(
    path: &str,
    mut parts: Vec<(usize, Parsed<ConntrackTable>)>,
) -> Parsed<ConntrackTable> {
    // By where each chunk starts: a chunk without entries (only a summary line, say)
    // still has its place.
    parts.sort_by_key(|(first_line, _)| *first_line);
    let mut cov = Coverage::new(path);
    let total: usize = parts.iter().map(|(_, p)| p.model.entries.len()).sum();
    let mut table = ConntrackTable {
        entries: Vec::with_capacity(total),
        reported_count: None,
    };
    for (_, p) in parts {
        table.entries.extend(p.model.entries);
        table.reported_count = p.model.reported_count.or(table.reported_count);
        cov.merge(p.coverage);
    }
    Parsed {
        model: table,
        coverage: cov,
    }
}

#[derive(Clone, Copy)]
struct TupleBuilder {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    kind: Option<u8>,
    code: Option<u8>,
    id: Option<u16>,
    packets: Option<u64>,
    bytes: Option<u64>,
}

impl TupleBuilder {
    const EMPTY: TupleBuilder = TupleBuilder {
        src: None,
        dst: None,
        sport: None,
        dport: None,
        kind: None,
        code: None,
        id: None,
        packets: None,
        bytes: None,
    };

    fn build(self, which: &str) -> Result<CtTuple, String> {
        let icmp = match (self.kind, self.code, self.id) {
            (None, None, None) => None,
            (Some(kind), Some(code), id) => Some(Icmp {
                kind,
                code,
                id: id.unwrap_or(0),
            }),
            _ => return Err(format!("{which} tuple: incomplete icmp type/code")),
        };
        Ok(CtTuple {
            src: self
                .src
                .ok_or_else(|| format!("{which} tuple without src="))?,
            dst: self
                .dst
                .ok_or_else(|| format!("{which} tuple without dst="))?,
            sport: self.sport,
            dport: self.dport,
            icmp,
            packets: self.packets,
            bytes: self.bytes,
        })
    }
}

/// `[ipv4|ipv6 L3NUM] PROTO PROTONUM TIMEOUT`: the words before the state and tuples.
struct EntryHead {
    l3num: Option<u8>,
    protocol: L4Proto,
    protonum: u8,
    timeout: u32,
}

fn parse_head<'a>(it: &mut impl Iterator<Item = &'a str>) -> Result<EntryHead, String> {
    let mut first = it.next().ok_or("empty line")?;
    let mut l3num = None;
    if first == "ipv4" || first == "ipv6" {
        let n = it.next().ok_or("missing l3 protocol number")?;
        l3num = Some(dec::<u8>(n).ok_or_else(|| format!("bad l3 protocol number {n:?}"))?);
        first = it.next().ok_or("missing l4 protocol")?;
    }
    let protocol = L4Proto::parse(first);
    if protocol == L4Proto::Other && first != "unknown" {
        return Err(format!("unknown l4 protocol {first:?}"));
    }
    let n = it.next().ok_or("missing l4 protocol number")?;
    let protonum: u8 = dec(n).ok_or_else(|| format!("bad l4 protocol number {n:?}"))?;
    let t = it.next().ok_or("missing timeout")?;
    let timeout: u32 = dec(t).ok_or_else(|| format!("bad timeout {t:?}"))?;
    Ok(EntryHead {
        l3num,
        protocol,
        protonum,
        timeout,
    })
}

/// The key of a `key=value` word.
#[inline]
fn key_of(k: &[u8]) -> Key {
    // Dispatch on (length, first byte) first: cheaper than comparing every key.
    match (k.len(), k.first().copied().unwrap_or(0)) {
        (3, b's') if k == b"src" => Key::Src,
        (3, b'd') if k == b"dst" => Key::Dst,
        (5, b's') if k == b"sport" => Key::Sport,
        (5, b'd') if k == b"dport" => Key::Dport,
        (7, b'p') if k == b"packets" => Key::Packets,
        (5, b'b') if k == b"bytes" => Key::Bytes,
        (4, b'm') if k == b"mark" => Key::Mark,
        (4, b'z') if k == b"zone" => Key::Zone,
        (3, b'u') if k == b"use" => Key::Use,
        (4, b't') if k == b"type" => Key::Type,
        (4, b'c') if k == b"code" => Key::Code,
        (2, b'i') if k == b"id" => Key::Id,
        (6, b's') if k == b"secctx" => Key::Secctx,
        _ => Key::Other,
    }
}

fn parse_entry(line: &str, no: usize) -> Result<CtEntry, String> {
    let mut it = line.split_ascii_whitespace();
    let head = parse_head(&mut it)?;
    let mut state = None;
    let mut tuples = [TupleBuilder::EMPTY; 2];
    let mut cur = 0usize; // 0 = original, 1 = reply; the second `src=` switches
    let mut seen_src = 0;
    let mut e_unreplied = false;
    let mut e_assured = false;
    let mut e_offload = false;
    let mut e_hw = false;
    let mut mark = None;
    let mut zone = None;
    let mut use_count = None;
    let mut extra: Option<Box<CtExtra>> = None;
    let mut keep = |f: &str, secctx: bool| {
        let x = extra.get_or_insert_with(Box::default);
        if secctx {
            x.secctx = Some(f.to_string());
        } else {
            x.fields.push(f.to_string());
        }
    };

    for tok in it {
        let b = tok.as_bytes();
        let Some(eq) = b.iter().position(|&c| c == b'=') else {
            match tok {
                "[UNREPLIED]" => e_unreplied = true,
                "[ASSURED]" => e_assured = true,
                "[OFFLOAD]" => e_offload = true,
                "[HW_OFFLOAD]" => e_hw = true,
                t if t.starts_with('[') && t.ends_with(']') => keep(t, false),
                t if state.is_none() && seen_src == 0 && is_state_word(t) => {
                    let st = CtState::parse(t);
                    if st == CtState::Other {
                        keep(t, false);
                    }
                    state = Some(st);
                }
                t => return Err(format!("unexpected {t:?}")),
            }
            continue;
        };
        let (k, v) = (&b[..eq], &tok[eq + 1..]);
        let bad = || format!("bad {tok:?}");
        let tb = &mut tuples[cur];
        match key_of(k) {
            Key::Src => {
                seen_src += 1;
                if seen_src > 2 {
                    return Err("more than two tuples".into());
                }
                cur = seen_src - 1;
                tuples[cur].src = Some(parse_ip(v)?);
            }
            Key::Dst => tb.dst = Some(parse_ip(v)?),
            Key::Sport => tb.sport = Some(dec(v).ok_or_else(bad)?),
            Key::Dport => tb.dport = Some(dec(v).ok_or_else(bad)?),
            Key::Packets => tb.packets = Some(dec(v).ok_or_else(bad)?),
            Key::Bytes => tb.bytes = Some(dec(v).ok_or_else(bad)?),
            Key::Mark => mark = Some(dec(v).ok_or_else(bad)?),
            Key::Zone => zone = Some(dec(v).ok_or_else(bad)?),
            Key::Use => use_count = Some(dec(v).ok_or_else(bad)?),
            Key::Type => tb.kind = Some(dec(v).ok_or_else(bad)?),
            Key::Code => tb.code = Some(dec(v).ok_or_else(bad)?),
            // `id=` of an icmp tuple; a later `id=` is the entry id (`conntrack -o id`).
            Key::Id if tb.kind.is_some() && tb.id.is_none() => {
                tb.id = Some(dec(v).ok_or_else(bad)?)
            }
            Key::Secctx => keep(v, true),
            Key::Id | Key::Other => keep(tok, false),
        }
    }
    if seen_src != 2 {
        return Err(format!("expected two tuples, found {seen_src}"));
    }
    Ok(CtEntry {
        line: no,
        l3num: head.l3num,
        protocol: head.protocol,
        protonum: head.protonum,
        timeout: head.timeout,
        state,
        original: tuples[0].build("original")?,
        reply: tuples[1].build("reply")?,
        unreplied: e_unreplied,
        assured: e_assured,
        offload: e_offload,
        hw_offload: e_hw,
        mark,
        zone,
        use_count,
        extra,
    })
}

#[derive(Clone, Copy)]
enum Key {
    Src,
    Dst,
    Sport,
    Dport,
    Packets,
    Bytes,
    Mark,
    Zone,
    Use,
    Type,
    Code,
    Id,
    Secctx,
    Other,
}

/// Decimal without sign; `None` on anything else or on overflow.
fn dec<T: TryFrom<u64>>(s: &str) -> Option<T> {
    dec_bytes(s.as_bytes())
}

/// [`dec`] on raw bytes.
#[inline]
fn dec_bytes<T: TryFrom<u64>>(b: &[u8]) -> Option<T> {
    match dec_prefix(b) {
        Some((v, len)) if len == b.len() => T::try_from(v).ok(),
        _ => None,
    }
}

/// The decimal number `b` starts with, and how many digits: one to twenty (leading
/// zeros count), up to the first byte that is not a digit; `None` on overflow (the
/// scanner reads a number and finds its end in one pass).
#[inline]
fn dec_prefix(b: &[u8]) -> Option<(u64, usize)> {
    if let Some((len, v)) = digits::digit_run(b) {
        return (len > 0).then_some((v, len));
    }
    let mut v: u64 = 0;
    let mut len = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
        len += 1;
    }
    (1..=20).contains(&len).then_some((v, len))
}

fn is_state_word(t: &str) -> bool {
    is_state_bytes(t.as_bytes())
}

/// [`is_state_word`] on raw bytes.
fn is_state_bytes(t: &[u8]) -> bool {
    !t.is_empty()
        && t.iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'_' || b.is_ascii_digit())
}

/// Fast paths for dotted IPv4 and the kernel's full-length IPv6 form; std otherwise.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let b = s.as_bytes();
    if let Some(v4) = parse_v4(b) {
        return Ok(IpAddr::V4(v4));
    }
    if let Some(v6) = parse_v6_full(b) {
        return Ok(IpAddr::V6(v6));
    }
    s.parse().map_err(|_| format!("bad address {s:?}"))
}

/// `2001:0db8:0000:0000:0000:0000:0000:0001`: eight groups of four hex digits, as
/// /proc/net/nf_conntrack prints them (`%pI6`).
fn parse_v6_full(b: &[u8]) -> Option<std::net::Ipv6Addr> {
    if b.len() != 39 {
        return None;
    }
    let mut groups = [0u16; 8];
    for (g, group) in groups.iter_mut().enumerate() {
        let at = g * 5;
        if g < 7 && b[at + 4] != b':' {
            return None;
        }
        let mut v: u16 = 0;
        for &c in &b[at..at + 4] {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            v = (v << 4) | u16::from(d);
        }
        *group = v;
    }
    Some(std::net::Ipv6Addr::from(groups))
}

fn parse_v4(b: &[u8]) -> Option<Ipv4Addr> {
    match v4_prefix(b) {
        Some((addr, len)) if len == b.len() => Some(addr),
        _ => None,
    }
}

/// The dotted IPv4 address `b` starts with, and its length: four octets of one to
/// three digits (at most 255) joined by dots, up to the first byte that is neither a
/// digit nor a dot (the scanner reads an address and finds its end in one pass). A
/// fourth digit or a fifth octet is no address, as in [`parse_v4`].
fn v4_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            if b.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let (value, len) = octet_prefix(b.get(at..).unwrap_or_default())?;
        *octet = value;
        at += len;
    }
    match b.get(at) {
        Some(b'.') => None,
        _ => Some((Ipv4Addr::from(octets), at)),
    }
}

/// One to three digits at the start of `b` worth at most 255, and how many; `None`
/// when a fourth digit follows (the run is read as [`dec_prefix`] reads it).
#[inline]
fn octet_prefix(b: &[u8]) -> Option<(u8, usize)> {
    match dec_prefix(b)? {
        (value, len @ 1..=3) => Some((u8::try_from(value).ok()?, len)),
        _ => None,
    }
}

/// Renders an entry as the kernel prints it: the /proc form when `l3num` is set,
/// the `conntrack -L` form otherwise. IPv6 addresses in the /proc form use all eight
/// zero-padded groups, as `%pI6` does. Used by tests and generators (parse(render(e))
/// gives `e` back).
pub fn render_entry(e: &CtEntry) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(200);
    let proc_form = e.l3num.is_some();
    if let Some(l3) = e.l3num {
        let family = if e.original.src.is_ipv6() {
            "ipv6"
        } else {
            "ipv4"
        };
        let _ = write!(s, "{family:<8} {l3} ");
    }
    let _ = write!(
        s,
        "{:<8} {} {}",
        proto_name(e.protocol),
        e.protonum,
        e.timeout
    );
    if let Some(state) = e.state.filter(|st| *st != CtState::Other) {
        let _ = write!(s, " {}", state_name(state));
    }
    render_tuple(&mut s, &e.original, proc_form);
    if e.unreplied {
        s.push_str(" [UNREPLIED]");
    }
    render_tuple(&mut s, &e.reply, proc_form);
    for (set, word) in [
        (e.offload, "[OFFLOAD]"),
        (e.hw_offload, "[HW_OFFLOAD]"),
        (e.assured, "[ASSURED]"),
    ] {
        if set {
            let _ = write!(s, " {word}");
        }
    }
    if let Some(m) = e.mark {
        let _ = write!(s, " mark={m}");
    }
    if let Some(c) = e.secctx() {
        let _ = write!(s, " secctx={c}");
    }
    if let Some(z) = e.zone {
        let _ = write!(s, " zone={z}");
    }
    if let Some(u) = e.use_count {
        let _ = write!(s, " use={u}");
    }
    for f in e.extra_fields() {
        let _ = write!(s, " {f}");
    }
    s
}

fn render_tuple(s: &mut String, t: &CtTuple, proc_form: bool) {
    use std::fmt::Write;
    let _ = write!(
        s,
        " src={} dst={}",
        render_ip(t.src, proc_form),
        render_ip(t.dst, proc_form)
    );
    if let Some(icmp) = t.icmp {
        let _ = write!(s, " type={} code={} id={}", icmp.kind, icmp.code, icmp.id);
    }
    if let Some(p) = t.sport {
        let _ = write!(s, " sport={p}");
    }
    if let Some(p) = t.dport {
        let _ = write!(s, " dport={p}");
    }
    if let Some(p) = t.packets {
        let _ = write!(s, " packets={p}");
    }
    if let Some(b) = t.bytes {
        let _ = write!(s, " bytes={b}");
    }
}

fn render_ip(ip: IpAddr, proc_form: bool) -> String {
    match ip {
        IpAddr::V6(v6) if proc_form => {
            let g = v6.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
            )
        }
        other => other.to_string(),
    }
}

fn proto_name(p: L4Proto) -> &'static str {
    match p {
        L4Proto::Tcp => "tcp",
        L4Proto::Udp => "udp",
        L4Proto::Udplite => "udplite",
        L4Proto::Icmp => "icmp",
        L4Proto::Icmpv6 => "icmpv6",
        L4Proto::Sctp => "sctp",
        L4Proto::Dccp => "dccp",
        L4Proto::Gre => "gre",
        L4Proto::Other => "unknown",
    }
}

fn state_name(s: CtState) -> &'static str {
    match s {
        CtState::SynSent => "SYN_SENT",
        CtState::SynRecv => "SYN_RECV",
        CtState::Established => "ESTABLISHED",
        CtState::FinWait => "FIN_WAIT",
        CtState::CloseWait => "CLOSE_WAIT",
        CtState::LastAck => "LAST_ACK",
        CtState::TimeWait => "TIME_WAIT",
        CtState::Close => "CLOSE",
        CtState::SynSent2 => "SYN_SENT2",
        CtState::Listen => "LISTEN",
        CtState::None => "NONE",
        CtState::Closed => "CLOSED",
        CtState::CookieWait => "COOKIE_WAIT",
        CtState::CookieEchoed => "COOKIE_ECHOED",
        CtState::ShutdownSent => "SHUTDOWN_SENT",
        CtState::ShutdownRecd => "SHUTDOWN_RECD",
        CtState::ShutdownAckSent => "SHUTDOWN_ACK_SENT",
        CtState::HeartbeatSent => "HEARTBEAT_SENT",
        CtState::HeartbeatAcked => "HEARTBEAT_ACKED",
        CtState::Request => "REQUEST",
        CtState::Respond => "RESPOND",
        CtState::PartOpen => "PARTOPEN",
        CtState::Open => "OPEN",
        CtState::CloseReq => "CLOSEREQ",
        CtState::Closing => "CLOSING",
        CtState::Other => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` bytes drawn from `alphabet` by a fixed LCG (`seed` carries its state), for
    /// the differential tests of the scanner's pieces.
    pub(super) fn random_bytes(seed: &mut u64, alphabet: &[u8], len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(*seed >> 33) as usize % alphabet.len()]
            })
            .collect()
    }

    /// The byte-at-a-time reading `parse_v4` had before it was built on `v4_prefix`.
    fn v4_reference(b: &[u8]) -> Option<Ipv4Addr> {
        let (mut octets, mut idx, mut acc, mut digits) = ([0u8; 4], 0, 0u16, 0);
        for &c in b {
            match c {
                b'0'..=b'9' => {
                    acc = acc * 10 + u16::from(c - b'0');
                    digits += 1;
                    if digits > 3 || acc > 255 {
                        return None;
                    }
                }
                b'.' if digits > 0 && idx < 3 => {
                    octets[idx] = acc as u8;
                    (idx, acc, digits) = (idx + 1, 0, 0);
                }
                _ => return None,
            }
        }
        (idx == 3 && digits > 0).then(|| {
            octets[3] = acc as u8;
            Ipv4Addr::from(octets)
        })
    }

    /// `v4_prefix` reads the longest run of digits and dots as the reference reads a
    /// whole word, and `parse_v4` is the reference, on 300k strings of digits near the
    /// octet limits, dots and word ends.
    #[test]
    fn v4_prefix_reads_as_the_byte_at_a_time_parser() {
        const BYTES: [u8; 9] = [b'0', b'1', b'2', b'5', b'6', b'9', b'.', b'.', b' '];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for case in 0..300_000 {
            let len = case % 19;
            let b = random_bytes(&mut seed, &BYTES, len);
            let run = b
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b'.')
                .count();
            let want = v4_reference(&b[..run]).map(|a| (a, run));
            assert_eq!(v4_prefix(&b), want, "{:?}", String::from_utf8_lossy(&b));
            assert_eq!(
                parse_v4(&b),
                v4_reference(&b),
                "{:?}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    /// The whole-word reading `dec_bytes` had before it was built on `dec_prefix`.
    fn dec_reference(b: &[u8]) -> Option<u64> {
        if b.is_empty() || b.len() > 20 {
            return None;
        }
        b.iter().try_fold(0u64, |v, &c| {
            let d = c.wrapping_sub(b'0');
            (d <= 9).then_some(())?;
            v.checked_mul(10)?.checked_add(u64::from(d))
        })
    }

    /// `dec_prefix` reads the longest run of digits as the reference reads a whole
    /// word, and `dec_bytes` is the reference, on 300k strings around 20 digits and
    /// u64's limit (mostly nines and zeros) with word ends in them.
    #[test]
    fn dec_prefix_reads_as_the_whole_word_parser() {
        const BYTES: [u8; 7] = [b'0', b'1', b'8', b'9', b'9', b'x', b' '];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..300_000 {
            let len = case % 25;
            let b = random_bytes(&mut seed, &BYTES, len);
            let run = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let want = dec_reference(&b[..run]).map(|v| (v, run));
            assert_eq!(dec_prefix(&b), want, "{:?}", String::from_utf8_lossy(&b));
            assert_eq!(dec_bytes::<u64>(&b), dec_reference(&b), "{b:?}");
        }
        assert_eq!(dec_prefix(b"18446744073709551615 "), Some((u64::MAX, 20)));
        assert_eq!(dec_prefix(b"18446744073709551616"), None);
        assert_eq!(dec_prefix(b"000000000000000000001"), None);
    }

    #[test]
    fn v4_fast_path() {
        assert_eq!(parse_v4(b"10.244.1.3"), Some(Ipv4Addr::new(10, 244, 1, 3)));
        assert_eq!(parse_v4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        for bad in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "a.b.c.d",
            "",
            "1.2.3.4.",
        ] {
            assert_eq!(parse_v4(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn v6_fast_path() {
        let full = "fd00:0010:0244:0000:0000:0000:0000:000a";
        assert_eq!(
            parse_v6_full(full.as_bytes()),
            "fd00:10:244::a".parse().ok()
        );
        assert_eq!(
            parse_v6_full(b"fd00:0010:0244:0000:0000:0000:0000:000g"),
            None
        );
        assert_eq!(
            parse_v6_full(b"fd00:0010:0244:0000:0000:0000:0000-000a"),
            None
        );
        assert_eq!(parse_ip("fd00:10::a").ok(), "fd00:10::a".parse().ok());
    }

    #[test]
    fn dec_parses_only_plain_decimals() {
        assert_eq!(dec::<u16>("65535"), Some(65535));
        assert_eq!(dec::<u16>("65536"), None);
        assert_eq!(dec::<u64>("18446744073709551615"), Some(u64::MAX));
        assert_eq!(dec::<u64>("18446744073709551616"), None);
        assert_eq!(dec::<u8>(""), None);
        assert_eq!(dec::<u8>("-1"), None);
        assert_eq!(dec::<u8>("+1"), None);
    }

    #[test]
    fn chunks_are_line_aligned_and_numbered() {
        let text = "a\nbb\nccc\ndddd\ne\n";
        for n in 1..8 {
            let chunks = split_chunks(text, n);
            let joined: String = chunks.iter().map(|c| c.1).collect();
            assert_eq!(joined, text);
            let mut expect = 1;
            for (first, c) in &chunks {
                assert_eq!(*first, expect);
                assert!(c.ends_with('\n'));
                expect += c.lines().count();
            }
        }
        assert_eq!(split_chunks("", 4), vec![]);
        assert_eq!(split_chunks("x", 4), vec![(1, "x")]);
    }

    #[test]
    fn summary_line() {
        assert_eq!(
            summary_count("conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown."),
            Some(4)
        );
        assert_eq!(
            summary_count("conntrack v1.4.7 (conntrack-tools): oops"),
            None
        );
    }

    #[test]
    fn stream_reads_as_the_line_parser() {
        let raw: &[u8] = b"ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [ASSURED] mark=0 use=1\r\n\
garbage \xff\xfe line\n\
\n\
ipv4     2 udp      17 29 src=10.244.0.5 dst=10.96.0.10 sport=5353 dport=53 [UNREPLIED] src=10.244.0.9 dst=10.244.0.5 sport=53 dport=5353 mark=0 use=1";
        let whole = parse_conntrack_lines("c", &String::from_utf8_lossy(raw), 7);
        let mut got = Vec::new();
        let (cov, _) = parse_conntrack_stream("c", raw, 7, |e, at| got.push((e, at)));
        assert_eq!(cov, whole.coverage);
        assert_eq!(
            got.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
            whole.model.entries
        );
        // Offsets point at the start of each entry's line in the raw bytes.
        assert_eq!(got[0].1, 0);
        assert!(raw[got[1].1..].starts_with(b"ipv4     2 udp"));
    }
}
