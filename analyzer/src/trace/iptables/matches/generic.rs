//! Matches the parser keeps generically (module name and raw options): the ones a
//! packet and the netns facts decide are evaluated from their options; any other
//! module, or an option not understood, cannot be evaluated.

use std::net::IpAddr;

use crate::parse::iptables::{parse_cidr, GenericMatch, Opt};

use super::super::super::packet::{CtState, NetnsFacts, Packet, Proto};
use super::{ct_states, proto_is, Eval, YES};

pub(super) fn eval(g: &GenericMatch, p: &Packet, facts: &NetnsFacts) -> Eval {
    if g.unsupported_revision {
        return Eval::Unknown(format!(
            "match {} [unsupported revision]: iptables-nft could not decode it",
            g.module
        ));
    }
    let v6 = p.is_v6();
    let each = |f: &dyn Fn(&Opt) -> Option<bool>| options(g, f);
    match g.module.as_str() {
        "comment" | "nfacct" => YES,
        // The rate is not simulated: the packet is taken as within it.
        "limit" | "hashlimit" => YES,
        "tcp" if p.proto != Proto::Tcp => Eval::No,
        "udp" if p.proto != Proto::Udp => Eval::No,
        "tcp" | "udp" => each(&|o| l4_option(o, p)),
        "icmp" if p.proto != Proto::Icmp || v6 => Eval::No,
        "icmp6" | "ipv6-icmp" | "icmpv6" if p.proto != Proto::Icmp || !v6 => Eval::No,
        "icmp" | "icmp6" | "ipv6-icmp" | "icmpv6" => {
            each(&|o| match (o.name.as_str(), o.args.as_slice()) {
                ("--icmp-type" | "--icmpv6-type", [t]) => is_echo_request(t, v6),
                _ => None,
            })
        }
        "state" => each(&|o| match (o.name.as_str(), o.args.as_slice()) {
            ("--state", [list]) => ct_states(list.split(','), p).ok(),
            _ => None,
        }),
        "conntrack" => each(&|o| conntrack_option(o, p)),
        "connmark" => each(&|o| match (o.name.as_str(), o.args.as_slice()) {
            ("--mark", [m]) => {
                let (value, mask) = parse_mark(m)?;
                Some(p.ct_mark & mask.unwrap_or(u32::MAX) == value)
            }
            _ => None,
        }),
        "iprange" => each(&|o| match (o.name.as_str(), o.args.as_slice()) {
            ("--src-range", [r]) => in_range(r, p.src),
            ("--dst-range", [r]) => in_range(r, p.dst),
            _ => None,
        }),
        "length" => each(&|o| match (o.name.as_str(), o.args.as_slice()) {
            ("--length", [r]) => {
                let (lo, hi) = num_range(r, ':')?;
                Some((lo..=hi).contains(&p.size))
            }
            _ => None,
        }),
        "pkttype" => each(&|o| match (o.name.as_str(), o.args.as_slice()) {
            ("--pkt-type", [t]) => pkt_type(t, p.dst, facts),
            _ => None,
        }),
        "socket" if facts.no_socket_for(p) => Eval::No,
        "owner" | "socket" | "cgroup" => Eval::Unknown(format!(
            "match {} depends on the sending socket, which the bundle does not hold",
            g.module
        )),
        "u32" | "bpf" | "string" => Eval::Unknown(format!(
            "match {} reads the packet's bytes, which a trace does not have",
            g.module
        )),
        other => Eval::Unknown(format!("match {other} is not evaluated offline")),
    }
}

/// All options of `g` must hold; `f` says whether one does (`None`: not understood).
fn options(g: &GenericMatch, f: &dyn Fn(&Opt) -> Option<bool>) -> Eval {
    let mut unknown = None;
    for o in &g.options {
        match f(o) {
            Some(b) if b == o.negated => return Eval::No,
            Some(_) => {}
            None => {
                unknown.get_or_insert_with(|| {
                    let args = o.args.join(" ");
                    format!(
                        "match {} option {}{} {args} is not evaluated offline",
                        g.module,
                        if o.negated { "! " } else { "" },
                        o.name
                    )
                });
            }
        }
    }
    unknown.map_or(YES, Eval::Unknown)
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The TCP flags of a traced packet: a connection's first packet (NEW, or RELATED as
/// an expected connection's) is a SYN, an ESTABLISHED one an ACK.
fn tcp_flags(p: &Packet) -> u8 {
    match p.ct {
        CtState::New | CtState::Related => SYN,
        CtState::Established => ACK,
    }
}

fn l4_option(o: &Opt, p: &Packet) -> Option<bool> {
    let flags = tcp_flags(p);
    match (o.name.as_str(), o.args.as_slice()) {
        ("--sport" | "--source-port", [r]) => port_in(r, p.sport),
        ("--dport" | "--destination-port", [r]) => port_in(r, p.dport),
        ("--syn", []) if p.proto == Proto::Tcp => Some(flags & (FIN | SYN | RST | ACK) == SYN),
        ("--tcp-flags", [mask, comp]) if p.proto == Proto::Tcp => {
            Some(flags & tcp_flag_set(mask)? == tcp_flag_set(comp)?)
        }
        _ => None,
    }
}

fn tcp_flag_set(list: &str) -> Option<u8> {
    list.split(',').try_fold(0u8, |acc, f| {
        let bit = match f {
            "FIN" => FIN,
            "SYN" => SYN,
            "RST" => RST,
            "PSH" => 0x08,
            "ACK" => ACK,
            "URG" => 0x20,
            "ECE" => 0x40,
            "CWR" => 0x80,
            "ALL" => 0x3f,
            "NONE" => 0,
            _ => return None,
        };
        Some(acc | bit)
    })
}

/// `P` or `P:P` (open ends allowed) contains `port`.
fn port_in(r: &str, port: u16) -> Option<bool> {
    let (lo, hi) = num_range(r, ':')?;
    Some((lo..=hi).contains(&u32::from(port)))
}

/// `A`, `A<sep>B`, `<sep>B`, `A<sep>` as an inclusive range (open ends 0 and 65535).
fn num_range(r: &str, sep: char) -> Option<(u32, u32)> {
    let num = |s: &str, default: u32| {
        if s.is_empty() {
            Some(default)
        } else {
            s.parse().ok()
        }
    };
    match r.split_once(sep) {
        Some((a, b)) => Some((num(a, 0)?, num(b, 65535)?)),
        None => {
            let v = r.parse().ok()?;
            Some((v, v))
        }
    }
}

/// A traced ICMP packet is an echo request (type 8, ICMPv6 128, code 0).
fn is_echo_request(t: &str, v6: bool) -> Option<bool> {
    if matches!(t, "any" | "echo-request" | "ping") || (v6 && t == "ipv6-echo-request") {
        return Some(true);
    }
    let echo = if v6 { 128 } else { 8 };
    let (ty, code) = match t.split_once('/') {
        Some((ty, code)) => (ty, Some(code)),
        None => (ty_or_name(t)?, None),
    };
    let ty: u32 = ty.parse().ok()?;
    let code_ok = match code {
        None => true,
        Some(c) => num_range(c, ':').is_some_and(|(lo, _)| lo == 0),
    };
    Some(ty == echo && code_ok)
}

/// A numeric type as is; another type's name (any name but the echo request's) is
/// `"256"`, which no packet type equals.
fn ty_or_name(t: &str) -> Option<&str> {
    if t.bytes().all(|b| b.is_ascii_digit()) {
        Some(t)
    } else if t.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        Some("256")
    } else {
        None
    }
}

fn conntrack_option(o: &Opt, p: &Packet) -> Option<bool> {
    // The original tuple is the packet's own before any NAT of its connection, and
    // only for a connection's first packet (later ones may be replies).
    let orig = p.ct == CtState::New;
    match (o.name.as_str(), o.args.as_slice()) {
        ("--ctstate", [list]) => ct_states(list.split(','), p).ok(),
        ("--ctproto", [name]) => Some(proto_is(name, p.proto, p.is_v6())),
        ("--ctorigsrc", [c]) if orig && !p.ct_snat => Some(parse_cidr(c).ok()?.contains(&p.src)),
        ("--ctorigdst", [c]) if orig && !p.ct_dnat => Some(parse_cidr(c).ok()?.contains(&p.dst)),
        ("--ctorigsrcport", [r]) if orig && !p.ct_snat => port_in(r, p.sport),
        ("--ctorigdstport", [r]) if orig && !p.ct_dnat => port_in(r, p.dport),
        ("--ctdir", [d]) if orig => Some(d.eq_ignore_ascii_case("ORIGINAL")),
        _ => None,
    }
}

/// `V[/M]`, hex or decimal.
pub(in super::super) fn parse_mark(s: &str) -> Option<(u32, Option<u32>)> {
    let num = |s: &str| match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    match s.split_once('/') {
        Some((v, m)) => Some((num(v)?, Some(num(m)?))),
        None => Some((num(s)?, None)),
    }
}

/// `A-B` (`A` alone is one address) contains `ip`.
fn in_range(r: &str, ip: IpAddr) -> Option<bool> {
    let (a, b) = r.split_once('-').unwrap_or((r, r));
    let (a, b): (IpAddr, IpAddr) = (a.parse().ok()?, b.parse().ok()?);
    Some(a.is_ipv6() == ip.is_ipv6() && a <= ip && ip <= b)
}

/// `--pkt-type`: what the destination address makes of the frame.
fn pkt_type(t: &str, dst: IpAddr, facts: &NetnsFacts) -> Option<bool> {
    let actual = match dst {
        d if d.is_multicast() => "multicast",
        IpAddr::V4(v4) if v4.is_broadcast() => "broadcast",
        d if facts.broadcast.contains(&d) => "broadcast",
        _ => "unicast",
    };
    match t {
        "unicast" | "host" => Some(actual == "unicast"),
        "broadcast" | "multicast" => Some(actual == t),
        "otherhost" => Some(false),
        _ => None,
    }
}
