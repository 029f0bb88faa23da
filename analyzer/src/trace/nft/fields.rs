//! What the packet gives each kind of nft expression: payload fields, meta and ct
//! keys, the fib address type. A header the packet does not carry is [`Miss::Absent`]
//! (nft's implicit protocol dependency fails and the rule stops); what the packet
//! model does not hold is [`Miss::Unknown`] or, when other fields of the same
//! comparison may still decide, [`V::Any`].

use super::expr::{Sym, V};
use crate::trace::packet::{CtState, NetnsFacts, Packet, Proto};
use std::net::{IpAddr, Ipv4Addr};

/// Why a field cannot be read: the packet does not carry that header (the rule stops
/// there, as nft's implicit protocol dependency makes it), or the engine cannot know.
pub(super) enum Miss {
    Absent,
    Unknown(String),
}

type Field = Result<V, Miss>;

fn unknown<T>(why: impl Into<String>) -> Result<T, Miss> {
    Err(Miss::Unknown(why.into()))
}

fn port(p: &Packet, field: &str) -> Field {
    match field {
        "sport" => Ok(V::Int(p.sport.into(), Sym::Num)),
        "dport" => Ok(V::Int(p.dport.into(), Sym::Num)),
        other => unknown(format!(
            "{} {other} is not in the packet model",
            p.proto.name()
        )),
    }
}

/// `PROTOCOL FIELD` (`ip saddr`, `tcp dport`, `th dport`, `icmp type`, …).
pub(super) fn payload(p: &Packet, protocol: &str, field: &str) -> Field {
    let v6 = p.is_v6();
    let l4 = V::Int(p.proto.number(v6).into(), Sym::Proto);
    match (protocol, field) {
        ("ip", _) if v6 => Err(Miss::Absent),
        ("ip6", _) if !v6 => Err(Miss::Absent),
        ("ip" | "ip6", "saddr") => Ok(V::Ip(p.src)),
        ("ip" | "ip6", "daddr") => Ok(V::Ip(p.dst)),
        ("ip", "protocol") | ("ip6", "nexthdr") => Ok(l4),
        ("ip", "length") => Ok(V::Int(p.size.into(), Sym::Num)),
        ("ip" | "ip6", f) => unknown(format!("{protocol} {f} is not in the packet model")),
        ("tcp", f) if p.proto == Proto::Tcp => port(p, f),
        ("udp", f) if p.proto == Proto::Udp => port(p, f),
        ("th", f) if p.proto != Proto::Icmp => port(p, f),
        ("th", _) => Ok(V::Any(format!(
            "th {field} of an ICMP packet reads its ICMP header, which the packet model does not hold"
        ))),
        ("icmp", f) if p.proto == Proto::Icmp && !v6 => icmp(p, f, Sym::IcmpType),
        ("icmpv6", f) if p.proto == Proto::Icmp && v6 => icmp(p, f, Sym::Icmp6Type),
        (
            "tcp" | "udp" | "udplite" | "sctp" | "dccp" | "icmp" | "icmpv6" | "ah" | "esp" | "comp"
            | "igmp" | "gre",
            _,
        ) => Err(Miss::Absent),
        _ => unknown(format!("{protocol} {field} is not in the packet model")),
    }
}

/// ICMP type and code: a `New` ICMP packet is an echo request (conntrack starts ICMP
/// connections only with requests, and a ping is the one the engine sends); otherwise
/// an echo request or reply (Established), or an error (Related): Unknown.
fn icmp(p: &Packet, field: &str, sym: Sym) -> Field {
    let (request, reply) = match sym {
        Sym::IcmpType => (8, 0),
        _ => (128, 129),
    };
    match (field, p.ct) {
        ("type", CtState::New) => Ok(V::Int(request, sym)),
        ("type", CtState::Established) => {
            Ok(V::OneOf(vec![V::Int(request, sym), V::Int(reply, sym)]))
        }
        ("code", CtState::New | CtState::Established) => Ok(V::Int(0, Sym::Num)),
        ("type" | "code", CtState::Related) => Ok(V::Any(
            "the ICMP error type of a related packet is not in the packet model".into(),
        )),
        (f, _) => unknown(format!("icmp {f} is not in the packet model")),
    }
}

/// `meta KEY`.
pub(super) fn meta(p: &Packet, key: &str, facts: &NetnsFacts) -> Field {
    let v6 = p.is_v6();
    // The kernel reads a missing interface as "" (names) or index 0.
    let name = |i: &Option<String>| V::Str(i.clone().unwrap_or_default());
    match key {
        "l4proto" => Ok(V::Int(p.proto.number(v6).into(), Sym::Proto)),
        "nfproto" => Ok(V::Int(if v6 { 10 } else { 2 }, Sym::NfProto)),
        "protocol" => Ok(V::Int(if v6 { 0x86dd } else { 0x0800 }, Sym::EtherType)),
        "mark" => Ok(V::Int(p.mark.into(), Sym::Num)),
        "length" => Ok(V::Int(p.size.into(), Sym::Num)),
        "iifname" | "iif" => Ok(name(&p.iif)),
        "oifname" | "oif" => Ok(name(&p.oif)),
        "pkttype" => Ok(pkttype(p, facts)),
        other => unknown(format!("meta {other} is not in the packet model")),
    }
}

/// Link-layer packet type, from the destination address: what a received frame's
/// MAC says for unicast, broadcast (the netns's broadcast addresses and
/// 255.255.255.255) and multicast IP. For a packet this netns sends, only unicast is
/// certain.
fn pkttype(p: &Packet, facts: &NetnsFacts) -> V {
    let multicast = p.dst.is_multicast();
    let broadcast = p.dst == IpAddr::V4(Ipv4Addr::BROADCAST) || facts.broadcast.contains(&p.dst);
    if !multicast && !broadcast {
        return V::Int(0, Sym::PktType);
    }
    if p.iif.is_none() {
        return V::Any("meta pkttype of a broadcast or multicast packet this netns sends".into());
    }
    V::Int(if multicast { 2 } else { 1 }, Sym::PktType)
}

/// `ct KEY` (without a direction).
pub(super) fn ct(p: &Packet, key: &str, dir: Option<&str>) -> Field {
    if let Some(d) = dir {
        return unknown(format!(
            "ct {d} {key}: the conntrack tuple is not in the packet model"
        ));
    }
    match key {
        "state" => Ok(V::Int(
            match p.ct {
                CtState::New => 8,
                CtState::Established => 2,
                CtState::Related => 4,
            },
            Sym::CtState,
        )),
        "status" => {
            // snat 16 and dnat 32 are known; a new connection is not yet confirmed,
            // assured or seen-reply (8, 4, 2); an established one is confirmed.
            let nat = u64::from(p.ct_snat) * 16 + u64::from(p.ct_dnat) * 32;
            Ok(match p.ct {
                CtState::New => V::Bits {
                    val: nat,
                    known: 16 | 32 | 8 | 4 | 2,
                },
                _ => V::Bits {
                    val: nat | 8,
                    known: 16 | 32 | 8,
                },
            })
        }
        "mark" => Ok(V::Int(p.ct_mark.into(), Sym::Num)),
        "direction" => match p.ct {
            CtState::New => Ok(V::Int(0, Sym::CtDir)),
            _ => Ok(V::Any(
                "ct direction of a packet of a known connection is not in the packet model".into(),
            )),
        },
        "l3proto" => Ok(V::Int(if p.is_v6() { 10 } else { 2 }, Sym::NfProto)),
        "protocol" => Ok(V::Int(p.proto.number(p.is_v6()).into(), Sym::Proto)),
        other => unknown(format!("ct {other} is not in the packet model")),
    }
}

/// `fib daddr type` / `fib saddr type`: the address's type in the local table.
pub(super) fn fib(p: &Packet, result: &str, flags: &[String], facts: &NetnsFacts) -> Field {
    let addr = match (result, flags) {
        ("type", [f]) if f == "daddr" => p.dst,
        ("type", [f]) if f == "saddr" => p.src,
        _ => {
            return unknown(format!(
                "fib {} {result}: a route lookup the engine does not do here",
                flags.join(" . ")
            ))
        }
    };
    let t = |n| V::Int(n, Sym::FibType);
    Ok(if facts.is_local(addr) {
        t(2)
    } else if addr.is_multicast() {
        t(5)
    } else if facts.broadcast.contains(&addr)
        || addr == IpAddr::V4(Ipv4Addr::BROADCAST)
        || addr == IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    {
        t(3)
    } else if addr.is_ipv4() {
        // inet_addr_type: what the local table does not hold is unicast.
        t(1)
    } else {
        // IPv6 answers with the route's type.
        V::OneOf(vec![t(1), t(6), t(7), t(8)])
    })
}
