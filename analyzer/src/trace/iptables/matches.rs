//! Whether a rule matches a packet: its own options (`-p -s -d -i -o -f`), then every
//! `-m` match. Typed matches are evaluated here, the generic ones in [`generic`]. No
//! allocation unless a match cannot be evaluated (its reason is a `String`).

use std::net::IpAddr;

use crate::parse::iptables::{
    AddrType, Match, Multiport, Neg, Physdev, PortDirection, PortMatch, PortRange, Recent,
    RecentAction, Rule, Statistic,
};

use super::super::packet::{CtState, NetnsFacts, Packet, Proto};
use super::ipset::Sets;

pub(super) mod generic;

/// What a match (or a whole rule) makes of the packet.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Eval {
    No,
    /// Matches with this probability (1 unless a statistic match splits the packet).
    Yes(f64),
    /// Would match but for a `-m recent` check: the client is taken as not seen before.
    AffinityMiss,
    /// Cannot be evaluated from the bundle; why (the caller adds the rule).
    Unknown(String),
}

const YES: Eval = Eval::Yes(1.0);

fn yes_if(b: bool) -> Eval {
    if b {
        YES
    } else {
        Eval::No
    }
}

/// What matches read beyond the packet.
pub(super) struct Cx<'r> {
    pub(super) facts: &'r NetnsFacts,
    pub(super) sets: &'r Sets<'r>,
}

/// The rule matches when all of its parts do; a part that certainly fails wins over
/// one that cannot be evaluated.
pub(super) fn eval_rule(rule: &Rule, p: &Packet, cx: &Cx<'_>) -> Eval {
    if !header(rule, p) {
        return Eval::No;
    }
    let mut prob = 1.0;
    let mut unknown = None;
    let mut affinity = false;
    for m in &rule.matches {
        match eval_match(m, p, cx) {
            Eval::No => return Eval::No,
            Eval::Yes(x) => prob *= x,
            Eval::AffinityMiss => affinity = true,
            Eval::Unknown(why) => {
                unknown.get_or_insert(why);
            }
        }
    }
    match unknown {
        Some(why) => Eval::Unknown(why),
        None if affinity => Eval::AffinityMiss,
        None => Eval::Yes(prob),
    }
}

/// A `[!] option` holds when `b` differs from its negation.
fn held<T>(n: &Neg<T>, b: bool) -> bool {
    b != n.negated
}

/// The rule's own options.
fn header(r: &Rule, p: &Packet) -> bool {
    r.destination
        .as_ref()
        .is_none_or(|d| held(d, d.value.contains(&p.dst)))
        && r.source
            .as_ref()
            .is_none_or(|s| held(s, s.value.contains(&p.src)))
        && r.protocol
            .as_ref()
            .is_none_or(|x| held(x, proto_is(&x.value, p.proto, p.is_v6())))
        && r.in_iface
            .as_deref()
            .is_none_or(|i| held(i, iface_is(&i.value, p.iif.as_deref())))
        && r.out_iface
            .as_deref()
            .is_none_or(|o| held(o, iface_is(&o.value, p.oif.as_deref())))
        // A traced packet is whole: never a non-first fragment.
        && r.fragment != Some(true)
}

/// `-p NAME|NUMBER` against the packet's protocol (`all`/`0` match any).
pub(super) fn proto_is(name: &str, proto: Proto, v6: bool) -> bool {
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    if is("all") || name == "0" {
        return true;
    }
    match proto {
        Proto::Tcp => is("tcp") || name == "6",
        Proto::Udp => is("udp") || name == "17",
        Proto::Icmp if v6 => is("ipv6-icmp") || is("icmpv6") || is("icmp6") || name == "58",
        Proto::Icmp => is("icmp") || name == "1",
    }
}

/// `-i`/`-o` NAME, with a trailing `+` matching any name it starts; no interface (a
/// locally generated packet's input) is the empty name, as in the kernel.
pub(super) fn iface_is(pattern: &str, name: Option<&str>) -> bool {
    let name = name.unwrap_or("");
    match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

fn eval_match(m: &Match, p: &Packet, cx: &Cx<'_>) -> Eval {
    match m {
        Match::Comment(_) | Match::Nfacct(_) => YES,
        Match::Port(pm) => yes_if(ports(pm, p)),
        Match::Multiport(mp) => yes_if(multiport(mp, p)),
        Match::Statistic(s) => statistic(s),
        Match::Recent(r) => recent(r),
        Match::Mark(mm) => {
            yes_if(((p.mark & mm.mask.unwrap_or(u32::MAX)) == mm.value) != mm.negated)
        }
        Match::Conntrack(c) => match &c.ctstate {
            None => YES,
            Some(s) => match ct_states(s.value.iter().map(String::as_str), p) {
                Ok(b) => yes_if(b != s.negated),
                Err(why) => Eval::Unknown(why),
            },
        },
        Match::AddrType(a) => addrtype(a, p, cx.facts),
        Match::Set(s) => match cx.sets.test(s, p) {
            Ok(b) => yes_if(b),
            Err(why) => Eval::Unknown(why),
        },
        Match::Physdev(d) => yes_if(physdev(d, p)),
        Match::Other(g) => generic::eval(g, p, cx.facts),
    }
}

fn ports(pm: &PortMatch, p: &Packet) -> bool {
    let proto_ok = match &*pm.protocol {
        "tcp" => p.proto == Proto::Tcp,
        "udp" => p.proto == Proto::Udp,
        _ => false,
    };
    let port_ok = |r: &Option<Neg<PortRange>>, port: u16| {
        r.as_ref()
            .is_none_or(|r| r.value.contains(port) != r.negated)
    };
    proto_ok && port_ok(&pm.sport, p.sport) && port_ok(&pm.dport, p.dport)
}

fn multiport(mp: &Multiport, p: &Packet) -> bool {
    if !matches!(p.proto, Proto::Tcp | Proto::Udp) {
        return false;
    }
    let listed = |port: u16| mp.ports.iter().any(|r| r.contains(port));
    let hit = match mp.direction {
        PortDirection::Source => listed(p.sport),
        PortDirection::Destination => listed(p.dport),
        PortDirection::Either => listed(p.sport) || listed(p.dport),
    };
    hit != mp.negated
}

fn statistic(s: &Statistic) -> Eval {
    let (q, negated) = match *s {
        Statistic::Random {
            probability,
            negated,
        } => (probability, negated),
        Statistic::Nth { every: 0, .. } => {
            return Eval::Unknown("statistic nth --every 0".to_string())
        }
        Statistic::Nth { every, negated, .. } => (1.0 / f64::from(every), negated),
    };
    Eval::Yes(if negated { 1.0 - q } else { q })
}

/// Recent lists are not captured: the client is one not seen before.
fn recent(r: &Recent) -> Eval {
    match (r.action, r.negated) {
        (RecentAction::Set, negated) => yes_if(!negated),
        (_, true) => YES,
        (_, false) => Eval::AffinityMiss,
    }
}

/// Whether one of the `--ctstate`/`--state` names holds for the packet.
pub(super) fn ct_states<'s>(
    names: impl Iterator<Item = &'s str>,
    p: &Packet,
) -> Result<bool, String> {
    let mut any = false;
    for name in names {
        any |= match name {
            "NEW" => p.ct == CtState::New,
            "ESTABLISHED" => p.ct == CtState::Established,
            "RELATED" => p.ct == CtState::Related,
            "DNAT" => p.ct_dnat,
            "SNAT" => p.ct_snat,
            // A traced packet is tracked and valid.
            "INVALID" | "UNTRACKED" => false,
            other => return Err(format!("conntrack state {other} is not known")),
        };
    }
    Ok(any)
}

fn addrtype(a: &AddrType, p: &Packet, facts: &NetnsFacts) -> Eval {
    // Without the device (`--limit-iface-in` on a locally generated packet) the
    // kernel's lookup is not limited.
    let dev = if a.limit_iface_in {
        p.iif.as_deref()
    } else if a.limit_iface_out {
        p.oif.as_deref()
    } else {
        None
    };
    let mut unknown = None;
    for (want, ip) in [(&a.src_type, p.src), (&a.dst_type, p.dst)] {
        let Some(want) = want else { continue };
        match addr_is(&want.value, ip, dev, facts) {
            Ok(b) if b == want.negated => return Eval::No,
            Ok(_) => {}
            Err(why) => unknown = Some(why),
        }
    }
    unknown.map_or(YES, Eval::Unknown)
}

const ADDR_TYPES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

/// Whether `ip` is of one of `types` (`LOCAL,BROADCAST`), looked up on `dev` when the
/// match is limited to an interface.
fn addr_is(types: &str, ip: IpAddr, dev: Option<&str>, facts: &NetnsFacts) -> Result<bool, String> {
    let local = || match dev {
        None => facts.is_local(ip),
        Some(d) => {
            facts.iface_addrs.get(d).is_some_and(|a| a.contains(&ip))
                || (d == "lo" && ip.is_loopback())
        }
    };
    let mut any = false;
    for t in types.split(',') {
        let Some(&t) = ADDR_TYPES.iter().find(|k| k.eq_ignore_ascii_case(t)) else {
            return Err(format!("address type {t} is not known"));
        };
        any |= match ip {
            // IPv4: the type of the local table's route, else UNICAST (as the kernel).
            IpAddr::V4(v4) => {
                let actual = if v4.is_unspecified() || v4.is_broadcast() {
                    "BROADCAST"
                } else if v4.is_multicast() {
                    "MULTICAST"
                } else if local() {
                    "LOCAL"
                } else if facts.broadcast.contains(&ip) {
                    "BROADCAST"
                } else {
                    "UNICAST"
                };
                t == actual
            }
            IpAddr::V6(v6) => match t {
                "MULTICAST" => v6.is_multicast(),
                "UNICAST" => !v6.is_multicast() && !v6.is_unspecified(),
                "LOCAL" => local(),
                "ANYCAST" | "UNREACHABLE" | "PROHIBIT" | "UNSPEC" => {
                    return Err(format!(
                        "IPv6 address type {t} needs a route lookup the match does not model"
                    ))
                }
                _ => false,
            },
        };
    }
    Ok(any)
}

/// `-m physdev`, as `physdev_mt` in the kernel.
fn physdev(d: &Physdev, p: &Packet) -> bool {
    let (indev, outdev) = (p.physdev_in.as_deref(), p.physdev_out.as_deref());
    if !(p.bridged || indev.is_some() || outdev.is_some()) {
        // No bridge information: only negated options match.
        return d.is_bridged != Some(true)
            && d.is_in != Some(true)
            && d.is_out != Some(true)
            && d.physdev_in.as_ref().is_none_or(|n| n.negated)
            && d.physdev_out.as_ref().is_none_or(|n| n.negated);
    }
    let flag = |want: Option<bool>, has: bool| want.is_none_or(|w| w == has);
    if !flag(d.is_bridged, outdev.is_some())
        || !flag(d.is_in, indev.is_some())
        || !flag(d.is_out, outdev.is_some())
    {
        return false;
    }
    if let (Some(want), Some(indev)) = (&d.physdev_in, indev) {
        if iface_is(&want.value, Some(indev)) == want.negated {
            return false;
        }
    }
    match (&d.physdev_out, outdev) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(want), Some(outdev)) => iface_is(&want.value, Some(outdev)) != want.negated,
    }
}

/// The words of a rule's statistic matches, for the steps of a split.
pub(super) fn split_text(rule: &Rule) -> String {
    let parts: Vec<String> = rule
        .matches
        .iter()
        .filter_map(|m| match m {
            Match::Statistic(Statistic::Random {
                probability,
                negated,
            }) => Some(format!(
                "statistic random {}probability {probability}",
                if *negated { "! " } else { "" }
            )),
            Match::Statistic(Statistic::Nth { every, negated, .. }) => Some(format!(
                "statistic nth {}every {every} (the packet counter is not captured: split 1/{every})",
                if *negated { "! " } else { "" }
            )),
            _ => None,
        })
        .collect();
    parts.join(", ")
}

/// The `-m recent` list a rule checks, for its `affinity: miss` step.
pub(super) fn recent_name(rule: &Rule) -> Option<&str> {
    rule.matches.iter().find_map(|m| match m {
        Match::Recent(r) => Some(r.name.as_deref().unwrap_or("DEFAULT")),
        _ => None,
    })
}

/// Whether a matched rule carries a rate match (`limit`, `hashlimit`).
pub(super) fn has_rate_match(rule: &Rule) -> bool {
    rule.matches
        .iter()
        .any(|m| matches!(m, Match::Other(g) if matches!(g.module.as_str(), "limit" | "hashlimit")))
}
