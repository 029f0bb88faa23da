//! The conntrack path the analysis takes: every line of the table reduced to what
//! flow aggregation reads ([`CtFlow`]), without building a [`CtEntry`].
//!
//! Nearly every line of a real table is in the kernel's fixed field order
//! (`ct_seq_show`: `ipv4 2 tcp 6 117 STATE src= dst= sport= dport= [packets= bytes=]
//! [UNREPLIED] src= … [ASSURED] mark= zone= use=`), so such lines are read by a strict
//! single-pass scanner on the raw bytes ([`scan`]). A line it does not accept in full —
//! another protocol, a field it does not know, a field out of place, a bad value, a tab,
//! non-ASCII — goes to the full parser, which decides it (and reports a miss with its
//! line) exactly as before. The scanner accepts only lines the full parser accepts, with
//! the same values, so the result does not depend on which of the two read a line:
//! unit tests and the conntrack fuzz body hold the two equal.

use super::{
    dec_bytes, dec_prefix, is_state_bytes, parse_line, parse_v6_full, strip_cr, v4_prefix, CtEntry,
    L4Proto,
};
use crate::parse::coverage::Coverage;
use std::net::IpAddr;

/// What flow aggregation reads of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtFlow {
    pub line: usize,
    pub protocol: L4Proto,
    pub orig_src: IpAddr,
    pub orig_dst: IpAddr,
    pub orig_dport: Option<u16>,
    pub reply_src: IpAddr,
    pub reply_dst: IpAddr,
    pub reply_sport: Option<u16>,
    pub unreplied: bool,
}

impl CtFlow {
    /// The fields of a fully parsed entry.
    pub fn of(e: &CtEntry) -> CtFlow {
        CtFlow {
            line: e.line,
            protocol: e.protocol,
            orig_src: e.original.src,
            orig_dst: e.original.dst,
            orig_dport: e.original.dport,
            reply_src: e.reply.src,
            reply_dst: e.reply.dst,
            reply_sport: e.reply.sport,
            unreplied: e.unreplied,
        }
    }
}

/// [`super::parse_conntrack_stream`] reduced to [`CtFlow`]s: the same coverage, summary
/// count, entries and byte offsets, with the kernel's usual lines read by [`scan`].
pub fn parse_conntrack_flows(
    path: &str,
    data: &[u8],
    first_line_no: usize,
    mut each: impl FnMut(CtFlow, usize),
) -> (Coverage, Option<u64>) {
    let mut cov = Coverage::new(path);
    let mut reported = None;
    super::for_each_line(data, first_line_no, |bytes, no, at, terminated| {
        if let Some(flow) = scan(bytes, no) {
            cov.ok();
            return each(flow, at);
        }
        let decoded = String::from_utf8_lossy(bytes);
        let raw = strip_cr(&decoded, terminated);
        if let Some(e) = parse_line(raw, no, &mut cov, &mut reported) {
            each(CtFlow::of(&e), at);
        }
    });
    (cov, reported)
}

/// The words of a line, split at runs of spaces. Any other byte is part of a word, so
/// a tab or a `\r` makes a word the scanner rejects, and the full parser (which splits
/// at every ASCII space) reads the line.
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    /// Skips the spaces before the next word; false at the end of the line. The
    /// kernel puts one space between most words: that case skips the search.
    #[inline]
    fn start(&mut self) -> bool {
        let skip = match self.rest {
            [] => return false,
            [b' ', b, ..] if *b != b' ' => 1,
            [b, ..] if *b != b' ' => 0,
            _ => match find(self.rest, first_non_space, |b| b != b' ') {
                Some(i) => i,
                None => {
                    self.rest = &[];
                    return false;
                }
            },
        };
        self.rest = &self.rest[skip..];
        true
    }

    /// Whether the next word starts with `prefix` (which holds no space); the word
    /// is not taken.
    #[inline]
    fn starts_with(&mut self, prefix: &[u8]) -> bool {
        self.start() && self.rest.starts_with(prefix)
    }

    /// Whether the next word is `word`; it is not taken.
    #[inline]
    fn is_word(&mut self, word: &[u8]) -> bool {
        self.starts_with(word) && ends_word(self.rest, word.len())
    }

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if !self.start() {
            return None;
        }
        let len = word_len(self.rest);
        let (word, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(word)
    }

    /// The next word after `key` (which holds no space) as a dotted IPv4 address or
    /// the kernel's full-length IPv6 (the full parser's own fast paths; any other form,
    /// `::1` or the compressed IPv6 of `conntrack -L`, takes the full parser). IPv4 is
    /// read in the pass that finds its end and must run to a space or the end of the
    /// line; a word that starts with one and goes on is no address of either family
    /// (an IPv6 one has no dot in its first five bytes).
    #[inline]
    fn address(&mut self, key: &[u8]) -> Option<IpAddr> {
        if !self.start() {
            return None;
        }
        let value = self.rest.strip_prefix(key)?;
        if let Some((v4, len)) = v4_prefix(value) {
            if !ends_word(value, len) {
                return None;
            }
            self.rest = &value[len..];
            return Some(IpAddr::V4(v4));
        }
        let len = word_len(value);
        let v6 = parse_v6_full(&value[..len])?;
        self.rest = &value[len..];
        Some(IpAddr::V6(v6))
    }

    /// The next word as `dec_bytes` reads it after `key` (which holds no space), read
    /// in the same pass that finds its end: the digits must run to a space or the end
    /// of the line, as they would fill the word.
    #[inline]
    fn number<T: TryFrom<u64>>(&mut self, key: &[u8]) -> Option<T> {
        if !self.start() {
            return None;
        }
        let value = self.rest.strip_prefix(key)?;
        let (v, len) = dec_prefix(value)?;
        if !ends_word(value, len) {
            return None;
        }
        self.rest = &value[len..];
        T::try_from(v).ok()
    }
}

/// The length of the word `bytes` starts with: up to its first space.
#[inline]
fn word_len(bytes: &[u8]) -> usize {
    find(bytes, first_space, |b| b == b' ').unwrap_or(bytes.len())
}

/// Whether a word of `bytes` ends at `at`: a space or the end of the line follows.
#[inline]
fn ends_word(bytes: &[u8], at: usize) -> bool {
    bytes.get(at).is_none_or(|&b| b == b' ')
}

/// The first index of `bytes` that `is` holds for, eight bytes at a time (`in_eight`
/// finds it in eight bytes read as a little-endian word), then byte by byte for the
/// last few. Splitting a line byte by byte cost a branch per byte; a table's words
/// are ~10 bytes long.
#[inline]
fn find(bytes: &[u8], in_eight: fn(u64) -> Option<usize>, is: fn(u8) -> bool) -> Option<usize> {
    let mut at = 0;
    while let Some(eight) = bytes.get(at..at + 8) {
        let Ok(eight) = <[u8; 8]>::try_from(eight) else {
            break;
        };
        if let Some(i) = in_eight(u64::from_le_bytes(eight)) {
            return Some(at + i);
        }
        at += 8;
    }
    let tail = bytes.get(at..).unwrap_or_default();
    tail.iter().position(|&b| is(b)).map(|i| at + i)
}

const EACH_BYTE_1: u64 = u64::from_le_bytes([0x01; 8]);
const EACH_BYTE_7F: u64 = u64::from_le_bytes([0x7f; 8]);
const EACH_BYTE_80: u64 = u64::from_le_bytes([0x80; 8]);
const EACH_BYTE_SPACE: u64 = u64::from_le_bytes([b' '; 8]);

/// The first of eight bytes that is a space. Bytes equal to a space become zero; the
/// zero-byte test flags the first zero byte exactly (a borrow only corrupts the flags
/// of bytes above it, and the lowest flag is the one taken).
#[inline]
fn first_space(eight: u64) -> Option<usize> {
    let x = eight ^ EACH_BYTE_SPACE;
    let zero = x.wrapping_sub(EACH_BYTE_1) & !x & EACH_BYTE_80;
    (zero != 0).then(|| (zero.trailing_zeros() / 8) as usize)
}

/// The first of eight bytes that is not a space: a byte's high bit is set when any of
/// its bits is (the low seven added to 0x7f cannot carry into the next byte).
#[inline]
fn first_non_space(eight: u64) -> Option<usize> {
    let x = eight ^ EACH_BYTE_SPACE;
    let nonzero = (((x & EACH_BYTE_7F).wrapping_add(EACH_BYTE_7F)) | x) & EACH_BYTE_80;
    (nonzero != 0).then(|| (nonzero.trailing_zeros() / 8) as usize)
}

/// One tuple as the kernel prints it for protocols with ports.
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

/// A line in the kernel's order, every field checked as the full parser checks it;
/// `None` for anything else (the full parser then reads the line).
fn scan(line: &[u8], no: usize) -> Option<CtFlow> {
    let (protocol, mut words) = match kernel_head(line) {
        Some((protocol, rest)) => (protocol, Words { rest }),
        None => head_words(line)?,
    };
    words.number::<u32>(b"")?; // timeout
    if !words.starts_with(b"src=") {
        // One state word before the first tuple (its value is not aggregated).
        if !is_state_bytes(words.next()?) {
            return None;
        }
    }
    let original = tuple(&mut words)?;
    let unreplied = words.is_word(b"[UNREPLIED]");
    if unreplied {
        words.next();
    }
    let reply = tuple(&mut words)?;
    while let Some(word) = words.next() {
        if !tail_word(word) {
            return None;
        }
    }
    Some(CtFlow {
        line: no,
        protocol,
        orig_src: original.src,
        orig_dst: original.dst,
        orig_dport: Some(original.dport),
        reply_src: reply.src,
        reply_dst: reply.dst,
        reply_sport: Some(reply.sport),
        unreplied,
    })
}

/// How the kernel starts nearly every line of a table (`%-8s %u %-8s %u `): taken
/// whole, they are what [`head_words`] reads word by word.
const KERNEL_HEADS: [(&[u8], L4Proto); 2] = [
    (b"ipv4     2 tcp      6 ", L4Proto::Tcp),
    (b"ipv4     2 udp      17 ", L4Proto::Udp),
];

/// The protocol of a line that starts with one of [`KERNEL_HEADS`], and the rest.
fn kernel_head(line: &[u8]) -> Option<(L4Proto, &[u8])> {
    KERNEL_HEADS
        .iter()
        .find_map(|&(head, protocol)| Some((protocol, line.strip_prefix(head)?)))
}

/// The words before the timeout: `[ipv4|ipv6 N] PROTOCOL NUMBER`, for the protocols
/// printed with ports (ICMP, GRE and `unknown` take the full parser); the protocol
/// and the words after them.
fn head_words(line: &[u8]) -> Option<(L4Proto, Words<'_>)> {
    let mut words = Words { rest: line };
    let mut word = words.next()?;
    if word == b"ipv4" || word == b"ipv6" {
        words.number::<u8>(b"")?;
        word = words.next()?;
    }
    let protocol = match word {
        b"tcp" => L4Proto::Tcp,
        b"udp" => L4Proto::Udp,
        b"sctp" => L4Proto::Sctp,
        b"udplite" => L4Proto::Udplite,
        b"dccp" => L4Proto::Dccp,
        _ => return None,
    };
    words.number::<u8>(b"")?; // protocol number
    Some((protocol, words))
}

/// `src= dst= sport= dport= [packets= bytes=]`.
#[inline]
fn tuple(words: &mut Words<'_>) -> Option<Tuple> {
    let src = words.address(b"src=")?;
    let dst = words.address(b"dst=")?;
    let sport = words.number::<u16>(b"sport=")?;
    let dport = words.number::<u16>(b"dport=")?;
    if words.starts_with(b"packets=") {
        words.number::<u64>(b"packets=")?;
        words.number::<u64>(b"bytes=")?;
    }
    Some(Tuple {
        src,
        dst,
        sport,
        dport,
    })
}

/// The words after the reply tuple that the scanner knows; any other goes to the full
/// parser (secctx, labels, zone directions, `[DYING]`, …).
#[inline]
fn tail_word(word: &[u8]) -> bool {
    match word {
        b"[ASSURED]" | b"[OFFLOAD]" | b"[HW_OFFLOAD]" => true,
        _ => match word.split_first() {
            Some((b'm', _)) => word
                .strip_prefix(b"mark=")
                .is_some_and(|v| dec_bytes::<u32>(v).is_some()),
            Some((b'z', _)) => word
                .strip_prefix(b"zone=")
                .is_some_and(|v| dec_bytes::<u16>(v).is_some()),
            Some((b'u', _)) => word
                .strip_prefix(b"use=")
                .is_some_and(|v| dec_bytes::<u32>(v).is_some()),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_conntrack_stream, parse_entry};
    use super::*;
    use netsnap_scale::{Plan, Size, Spec};

    /// Everything a stream gives: coverage, summary count, flows with offsets.
    type Streamed = (Coverage, Option<u64>, Vec<(CtFlow, usize)>);

    fn full_parser(data: &[u8]) -> Streamed {
        let mut got = Vec::new();
        let (cov, n) =
            parse_conntrack_stream("ct", data, 5, |e, at| got.push((CtFlow::of(&e), at)));
        (cov, n, got)
    }

    fn flows(data: &[u8]) -> Streamed {
        let mut got = Vec::new();
        let (cov, n) = parse_conntrack_flows("ct", data, 5, |f, at| got.push((f, at)));
        (cov, n, got)
    }

    /// The scanner's reading of one line, checked against the full parser's: when it
    /// accepts a line, the full parser accepts it with the same fields.
    fn scan_checked(line: &[u8]) -> Option<CtFlow> {
        let fast = scan(line, 1)?;
        let text = String::from_utf8_lossy(line);
        let full = parse_entry(text.trim_end_matches('\r'), 1);
        let full = full.unwrap_or_else(|e| panic!("scanner accepted {text:?}, parser: {e}"));
        assert_eq!(fast, CtFlow::of(&full), "{text:?}");
        Some(fast)
    }

    /// The kernel's forms: the scanner reads each of them itself.
    const KERNEL: &[&str] = &[
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [ASSURED] mark=0 zone=0 use=2",
        "ipv4     2 udp      17 29 src=10.244.0.5 dst=10.96.0.10 sport=5353 dport=53 [UNREPLIED] src=10.244.0.9 dst=10.244.0.5 sport=53 dport=5353 mark=0 use=1",
        "ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 packets=12 bytes=3400 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 packets=10 bytes=9000 [ASSURED] mark=0 zone=0 use=2",
        "ipv6     10 tcp      6 86399 ESTABLISHED src=fd00:0010:0244:0001:0000:0000:0000:0005 dst=fd00:0010:0096:0000:0000:0000:0000:0001 sport=40000 dport=443 src=fd00:0010:0244:0001:0000:0000:0000:0009 dst=fd00:0010:0244:0001:0000:0000:0000:0005 sport=8443 dport=40000 [ASSURED] mark=0 zone=0 use=2",
        "ipv6     10 udp      17 12 src=FD00:0010:0244:0001:0000:0000:0000:000A dst=fd00:0010:0096:0000:0000:0000:0000:000a sport=5353 dport=53 src=fd00:0010:0244:0001:0000:0000:0000:0009 dst=fd00:0010:0244:0001:0000:0000:0000:000a sport=53 dport=5353 mark=0 use=2",
        "tcp      6 431999 ESTABLISHED src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [ASSURED] mark=0 use=1",
        "ipv4     2 sctp     132 3 ESTABLISHED src=10.244.0.5 dst=10.96.0.7 sport=3868 dport=3868 src=10.244.0.8 dst=10.244.0.5 sport=3868 dport=3868 [ASSURED] mark=0 zone=0 use=2",
        "ipv4     2 udplite  136 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=2",
        "ipv4     2 dccp     33 3 REQUEST src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [OFFLOAD] mark=7 zone=65535 use=4294967295",
        "ipv4     2 tcp      6 10 SYN_SENT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 [UNREPLIED] src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [HW_OFFLOAD] mark=4294967295 zone=3 use=1",
        "ipv4     2 tcp      6 10 SOME_NEW_STATE2 src=10.244.0.5 dst=10.96.0.1 sport=0 dport=65535 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000",
        "  ipv4  2  tcp  6  10  CLOSE  src=0.0.0.0  dst=255.255.255.255 sport=1 dport=2 src=1.2.3.4 dst=5.6.7.8 sport=3 dport=4 use=1  ",
    ];

    /// Lines the scanner leaves to the full parser: other protocols and forms, fields it
    /// does not know, and malformed lines (which must still be reported, with their line).
    const OTHERS: &[&str] = &[
        "ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 mark=0 use=1",
        "ipv4     2 unknown  47 599 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 mark=0 use=1",
        "tcp      6 100 ESTABLISHED src=fd00::5 dst=fd00:10:96::1 sport=40000 dport=443 src=fd00::9 dst=fd00::5 sport=8443 dport=40000 [ASSURED] mark=0 use=1",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [ASSURED] mark=0 secctx=system_u:object_r:unlabeled_t:s0 zone=0 use=2",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [ASSURED] mark=0 zone=0 delta-time=12 use=2",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 [UNREPLIED] mark=0 use=2",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 dport=443 sport=40000 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 use=2",
        "ipv4\t2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 use=2",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=40000 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 use=2\r",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=65536 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 use=2",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.256 sport=1 dport=443 src=10.0.0.1 dst=10.244.0.5 sport=6443 dport=40000 use=2",
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.5 dst=10.96.0.1 sport=1 dport=443",
        "ipv4     2 tcp      6 117 src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1 src=1.1.1.3 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 -1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     x tcp      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 foo      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 1 CLOSE CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 1 src=1.1.1.1 CLOSE dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1 mark=-1",
        "ipv4     2 tcp      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1 zone=70000",
        "ipv4     2 tcp      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1 use=2 x",
        "ipv4     2 tcp      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 packets=1 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 1 CLOSE src=fd00:0010:0244:0001:0000:0000:0000:000g dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 1 [ASSURED] src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1",
        "ipv4     2 tcp      6 1 CLOSE src=1.1.1.1 dst=1.1.1.2 sport=1 dport=2 src=1.1.1.2 dst=1.1.1.1 sport=2 dport=1 labels=0x1 use=2",
        "",
        "   ",
        "conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.",
        "garbage",
    ];

    fn joined(lines: &[&str]) -> Vec<u8> {
        lines.join("\n").into_bytes()
    }

    /// The eight-at-a-time search finds what a byte-by-byte search finds, on slices of
    /// every length up to 40 (whole words and tails) made of spaces and the bytes
    /// nearest to one in the bit tricks (0xA0 is a space with the high bit set).
    #[test]
    fn word_search_finds_what_a_byte_search_finds() {
        const BYTES: [u8; 10] = [b' ', b' ', b'x', 0x00, 0x80, 0xa0, 0xff, 0x1f, 0x21, b'\t'];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..200_000 {
            let len = case % 41;
            let bytes = super::super::tests::random_bytes(&mut seed, &BYTES, len);
            assert_eq!(
                find(&bytes, first_space, |b| b == b' '),
                bytes.iter().position(|&b| b == b' '),
                "{bytes:?}"
            );
            assert_eq!(
                find(&bytes, first_non_space, |b| b != b' '),
                bytes.iter().position(|&b| b != b' '),
                "{bytes:?}"
            );
        }
    }

    /// Each whole head is what the words give, so a line read either way is the same.
    #[test]
    fn kernel_heads_read_as_their_words() {
        for (head, protocol) in KERNEL_HEADS {
            let (read, rest) = head_words(head).expect("a head of words");
            assert_eq!((read, rest.rest), (protocol, &b" "[..]));
        }
    }

    #[test]
    fn scanner_reads_the_kernel_forms_as_the_parser() {
        for line in KERNEL {
            assert!(scan_checked(line.as_bytes()).is_some(), "{line}");
        }
    }

    #[test]
    fn other_lines_are_left_to_the_parser() {
        for line in OTHERS {
            assert_eq!(scan(line.as_bytes(), 1), None, "{line}");
        }
        let data = joined(&[KERNEL, OTHERS, KERNEL].concat());
        let got = flows(&data);
        assert_eq!(got, full_parser(&data));
        // Malformed lines are still reported, with their line in the file (from 5).
        let missed: Vec<usize> = got.0.unrecognised.iter().map(|u| u.line).collect();
        let first_other = 5 + KERNEL.len();
        assert!(missed.contains(&(first_other + 9)), "{missed:?}"); // sport=65536
        assert!(
            missed.contains(&(first_other + OTHERS.len() - 1)),
            "{missed:?}"
        );
        assert_eq!(got.1, Some(4));
    }

    #[test]
    fn line_ends_and_invalid_utf8_read_as_the_parser() {
        let mut data = joined(KERNEL);
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(KERNEL[0].as_bytes());
        data.extend_from_slice(b" \xff\n\n");
        data.extend_from_slice(KERNEL[1].replace("mark=0", "mark=\u{e9}").as_bytes());
        data.extend_from_slice(b"\r\r\n");
        data.extend_from_slice(KERNEL[2].as_bytes()); // last line, no newline
        assert_eq!(flows(&data), full_parser(&data));
    }

    /// Every single-byte change of every kernel line: whatever the scanner accepts, the
    /// parser accepts with the same fields, and the streams agree line for line.
    #[test]
    fn mutated_lines_read_as_the_parser() {
        let mut all = Vec::new();
        for line in KERNEL {
            let b = line.as_bytes();
            for i in 0..b.len() {
                for with in [
                    b' ', b'\t', b'\r', b'x', b'9', b'0', b'=', b'.', b':', b'[', 0xff,
                ] {
                    let mut m = b.to_vec();
                    m[i] = with;
                    scan_checked(&m);
                    all.extend_from_slice(&m);
                    all.push(b'\n');
                }
                let mut cut = b.to_vec();
                cut.remove(i);
                scan_checked(&cut);
                all.extend_from_slice(&cut);
                all.push(b'\n');
            }
        }
        assert_eq!(flows(&all), full_parser(&all));
    }

    /// The scale generator's table (the bench's input): every line through the
    /// scanner, and the same flows as the parser's.
    #[test]
    fn generated_table_reads_as_the_parser() {
        let plan = Plan::new(&Spec {
            conntrack: 5_000,
            ..Spec::preset(Size::Small)
        })
        .expect("valid spec");
        let mut data = Vec::new();
        plan.write_conntrack(&mut data).expect("rendered");
        let got = flows(&data);
        assert_eq!(got, full_parser(&data));
        assert_eq!(got.2.len(), 5_000);
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            assert!(scan_checked(line).is_some());
        }
    }
}
