//! RTM_GETROUTE (all tables) and RTM_GETRULE dumps → `routes.json`.

use super::{family_name, Conn, Dump, NetlinkError};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netsnap_schema::model::{NextHop, Route, Rule};
use std::net::IpAddr;
use std::time::Duration;

/// Routes of every table. The connection must not use strict checking, or the kernel
/// filters the dump to the main table.
pub async fn dump_routes(conn: &mut Conn, timeout: Duration) -> Result<Dump<Route>, NetlinkError> {
    let mut all = Dump::default();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        let d = conn
            .dump(RouteNetlinkMessage::GetRoute(msg), timeout)
            .await?;
        all.undecoded += d.undecoded;
        all.interrupted |= d.interrupted;
        all.messages
            .extend(d.messages.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(route_from_msg(&r)),
                _ => None,
            }));
    }
    Ok(all)
}

pub async fn dump_rules(conn: &mut Conn, timeout: Duration) -> Result<Dump<Rule>, NetlinkError> {
    let mut all = Dump::default();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RuleMessage::default();
        msg.header.family = family;
        let d = conn
            .dump(RouteNetlinkMessage::GetRule(msg), timeout)
            .await?;
        all.undecoded += d.undecoded;
        all.interrupted |= d.interrupted;
        all.messages
            .extend(d.messages.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(rule_from_msg(&r)),
                _ => None,
            }));
    }
    Ok(all)
}

fn addr(a: &RouteAddress) -> Option<String> {
    match a {
        RouteAddress::Inet(ip) => Some(ip.to_string()),
        RouteAddress::Inet6(ip) => Some(ip.to_string()),
        _ => None,
    }
}

pub fn kind_name(t: RouteType) -> String {
    match u8::from(t) {
        0 => "unspec",
        1 => "unicast",
        2 => "local",
        3 => "broadcast",
        4 => "anycast",
        5 => "multicast",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        9 => "throw",
        10 => "nat",
        11 => "xresolve",
        n => return n.to_string(),
    }
    .into()
}

/// Protocol names of iproute2's `rt_protos`.
pub fn protocol_name(p: RouteProtocol) -> String {
    match u8::from(p) {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        n => return n.to_string(),
    }
    .into()
}

pub fn scope_name(s: RouteScope) -> String {
    match u8::from(s) {
        0 => "universe",
        200 => "site",
        253 => "link",
        254 => "host",
        255 => "nowhere",
        n => return n.to_string(),
    }
    .into()
}

pub fn route_from_msg(msg: &RouteMessage) -> Route {
    let h = &msg.header;
    let mut route = Route {
        family: family_name(u8::from(h.address_family)),
        table: u32::from(h.table),
        dst: String::new(),
        gateway: None,
        oif: None,
        prefsrc: None,
        kind: kind_name(h.kind),
        protocol: protocol_name(h.protocol),
        scope: scope_name(h.scope),
        metric: None,
        mtu: None,
        multipath: Vec::new(),
    };
    let mut dst = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = addr(a),
            RouteAttribute::Gateway(a) => route.gateway = addr(a),
            RouteAttribute::Oif(i) => route.oif = Some(*i),
            RouteAttribute::PrefSource(a) => route.prefsrc = addr(a),
            RouteAttribute::Priority(p) => route.metric = Some(*p),
            RouteAttribute::Metrics(metrics) => {
                route.mtu = metrics.iter().find_map(|m| match m {
                    RouteMetric::Mtu(v) => Some(*v),
                    _ => None,
                });
            }
            // RTA_TABLE carries table ids above 255.
            RouteAttribute::Table(t) => route.table = *t,
            RouteAttribute::MultiPath(hops) => {
                route.multipath = hops
                    .iter()
                    .map(|hop| NextHop {
                        gateway: hop.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(g) => addr(g),
                            _ => None,
                        }),
                        oif: Some(hop.interface_index),
                        weight: u32::from(hop.hops) + 1,
                    })
                    .collect();
            }
            _ => {}
        }
    }
    route.dst = match dst {
        Some(d) => format!("{d}/{}", h.destination_prefix_length),
        None if h.destination_prefix_length == 0 => "default".into(),
        None => format!("?/{}", h.destination_prefix_length),
    };
    if let Some(first) = route.multipath.first() {
        if route.gateway.is_none() {
            route.gateway = first.gateway.clone();
        }
        if route.oif.is_none() {
            route.oif = first.oif;
        }
    }
    route
}

fn action_name(a: RuleAction) -> String {
    match a {
        RuleAction::ToTable => "to_tbl".into(),
        RuleAction::Goto => "goto".into(),
        RuleAction::Nop => "nop".into(),
        RuleAction::Blackhole => "blackhole".into(),
        RuleAction::Unreachable => "unreachable".into(),
        RuleAction::Prohibit => "prohibit".into(),
        RuleAction::Unspec => "unspec".into(),
        other => format!("{other:?}"),
    }
}

fn prefix(ip: &IpAddr, len: u8) -> String {
    format!("{ip}/{len}")
}

pub fn rule_from_msg(msg: &RuleMessage) -> Rule {
    let h = &msg.header;
    let mut rule = Rule {
        action: action_name(h.action),
        ..Rule::lookup(&family_name(u8::from(h.family)), 0, u32::from(h.table))
    };
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::Source(ip) => rule.src = Some(prefix(ip, h.src_len)),
            RuleAttribute::Destination(ip) => rule.dst = Some(prefix(ip, h.dst_len)),
            RuleAttribute::FwMark(m) => rule.fwmark = Some(*m),
            RuleAttribute::FwMask(m) => rule.fwmask = Some(*m),
            RuleAttribute::Iifname(n) => rule.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => rule.oif = Some(n.clone()),
            RuleAttribute::Table(t) => rule.table = *t,
            _ => {}
        }
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::RouteHeader;

    #[test]
    fn default_route_in_main() {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: AddressFamily::Inet,
            table: 254,
            protocol: RouteProtocol::Static,
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..Default::default()
        };
        m.attributes = vec![
            RouteAttribute::Table(254),
            RouteAttribute::Gateway(RouteAddress::Inet("10.244.0.1".parse().unwrap())),
            RouteAttribute::Oif(2),
            RouteAttribute::Metrics(vec![RouteMetric::Mtu(1450)]),
        ];
        let r = route_from_msg(&m);
        assert_eq!(r.dst, "default");
        assert_eq!(r.mtu, Some(1450));
        assert_eq!(r.gateway.as_deref(), Some("10.244.0.1"));
        assert_eq!((r.table, r.oif), (254, Some(2)));
        assert_eq!(
            (r.kind.as_str(), r.protocol.as_str(), r.scope.as_str()),
            ("unicast", "static", "universe")
        );
    }

    #[test]
    fn local_route_with_big_table() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 32;
        m.header.table = 252;
        m.header.kind = RouteType::Local;
        m.header.scope = RouteScope::Host;
        m.header.protocol = RouteProtocol::Kernel;
        m.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet("10.96.0.10".parse().unwrap())),
            RouteAttribute::Table(1000),
        ];
        let r = route_from_msg(&m);
        assert_eq!(r.dst, "10.96.0.10/32");
        assert_eq!(r.table, 1000);
        assert_eq!((r.kind.as_str(), r.scope.as_str()), ("local", "host"));
    }

    #[test]
    fn rule_fields() {
        let mut m = RuleMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.table = 254;
        m.header.action = RuleAction::ToTable;
        m.header.src_len = 16;
        m.attributes = vec![
            RuleAttribute::Priority(32766),
            RuleAttribute::Source("10.244.0.0".parse().unwrap()),
            RuleAttribute::FwMark(0x4000),
            RuleAttribute::FwMask(0xc000),
            RuleAttribute::Table(254),
        ];
        let r = rule_from_msg(&m);
        assert_eq!(r.priority, 32766);
        assert_eq!(r.src.as_deref(), Some("10.244.0.0/16"));
        assert_eq!(
            (r.fwmark, r.fwmask, r.table, r.action.as_str()),
            (Some(0x4000), Some(0xc000), 254, "to_tbl")
        );
    }
}
