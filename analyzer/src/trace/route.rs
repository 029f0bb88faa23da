//! The routing decision of one netns, as the kernel's FIB makes it: policy rules in
//! priority order, each pointing at a table; in a table the longest matching prefix
//! (then the lowest metric); `throw` and a table without a match fall through to the
//! next rule; `blackhole`, `unreachable` and `prohibit` stop the packet, as a route
//! type or as a rule action. Without captured rules the kernel's three default rules
//! apply (local 0, main 32766, default 32767).
//!
//! It reads only the model (the netns's routes and rules as the bundle holds them).
//! What the bundle cannot tell is said, never guessed: a `goto` rule, or a route type
//! it does not model, gives [`Verdict::Unknown`] naming the rule.

use crate::fx::Fx;
use crate::model::net::{parse_cidr, parse_ip};
use crate::model::Netns;
use netsnap_schema::model::{Route, Rule};
use std::net::IpAddr;

/// What is being routed: the lookup key of one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub dst: IpAddr,
    /// The source address, when the packet has one already (forwarded, or bound).
    pub src: Option<IpAddr>,
    /// The interface it came in on; `None` for a packet this netns sends (the kernel
    /// then matches rules' `iif` against `lo`).
    pub iif: Option<String>,
    /// The packet's firewall mark.
    pub mark: u32,
}

impl Lookup {
    /// A packet sent by this netns to `dst`, unmarked.
    pub fn output(dst: IpAddr) -> Lookup {
        Lookup {
            dst,
            src: None,
            iif: None,
            mark: 0,
        }
    }
}

/// What the routing decision says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sent out of `oif` (to `gateway`, or directly when `None`).
    Unicast {
        oif: Option<u32>,
        gateway: Option<IpAddr>,
    },
    /// Delivered to this netns (a `local` route).
    Local,
    /// A `broadcast` route of this netns.
    Broadcast,
    /// Dropped silently (`blackhole`).
    Blackhole,
    /// Refused with host unreachable (`unreachable`).
    Unreachable,
    /// Refused with administratively prohibited (`prohibit`).
    Prohibit,
    /// Network unreachable: no rule found a route, or an `unreachable` rule said so.
    NoRoute,
    /// The bundle cannot tell; the reason names what.
    Unknown(String),
}

/// The decision and what it rests on (indexes into the netns's rules and routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The rule that decided (index into `Netns::rules`); `None` for the kernel's
    /// default rules when the bundle holds none.
    pub rule: Option<usize>,
    /// The route that decided (index into `Netns::routes`).
    pub route: Option<usize>,
    pub table: Option<u32>,
}

const LOCAL_TABLE: u32 = 255;
const MAIN_TABLE: u32 = 254;
const DEFAULT_TABLE: u32 = 253;

/// One rule to walk: captured, or one of the kernel's defaults.
struct Step<'a> {
    index: Option<usize>,
    rule: Option<&'a Rule>,
    table: u32,
}

/// The routing decision of `ns` for `lookup`.
pub fn decide(ns: &Netns, lookup: &Lookup) -> Decision {
    decide_with(ns, &Prefixes::of(ns), lookup)
}

/// The destinations of a netns's routes, read once: a lookup tries every route of a
/// table, and a node's reachability matrix makes hundreds of thousands of lookups.
/// Routes to one host (a node's route to each pod) are found by address; the rest are
/// tried in turn. Built from `ns`, it answers for `ns` as it is (the engine builds it
/// with itself).
pub struct Prefixes {
    /// Routes to one host (`/32`, `/128`) by (table, address): indexes into the
    /// netns's routes, in bundle order.
    hosts: Index<(u32, IpAddr)>,
    /// Routes to other IPv4 networks by (table, prefix length, network): a lookup
    /// tries the table's lengths longest first (a node holds a route per other node).
    v4: Index<(u32, u8, u32)>,
    /// The prefix lengths in `v4` of each table, longest first.
    v4_lens: std::collections::HashMap<u32, Vec<u8>, Fx>,
    /// The other routes (default, IPv6, unreadable) by (table, is IPv6), with their
    /// index, in bundle order (a node's IPv6 link-local routes, one per veth, are not
    /// tried for an IPv4 lookup). A route of another family matches nothing.
    nets: std::collections::HashMap<(u32, bool), Vec<(usize, Dst)>, Fx>,
    /// The bundle holds the local table (else the kernel's is derived).
    has_local: bool,
}

/// Indexes into a netns's routes by a key, in bundle order.
type Index<K> = std::collections::HashMap<K, Vec<usize>, Fx>;

/// One route as a lookup reads it: its table, family and destination.
struct Prefix {
    table: u32,
    /// `Some(is IPv6)` for `inet`/`inet6`; `None` for another family, which no lookup
    /// matches.
    v6: Option<bool>,
    dst: Dst,
}

enum Dst {
    Default,
    /// `a.b.c.d/len`, read without the general parser.
    V4 {
        net: u32,
        len: u8,
    },
    Net(ipnet::IpNet),
    /// Not a prefix: matches nothing, as before it was read once.
    Unreadable,
}

impl Prefixes {
    pub fn of(ns: &Netns) -> Prefixes {
        let mut out = Prefixes {
            hosts: Index::default(),
            v4: Index::default(),
            v4_lens: std::collections::HashMap::default(),
            nets: std::collections::HashMap::default(),
            has_local: has_local_table(ns),
        };
        for (i, r) in ns.routes.items.iter().enumerate() {
            let p = Prefix {
                table: r.table,
                v6: match r.family.as_str() {
                    "inet" => Some(false),
                    "inet6" => Some(true),
                    _ => None,
                },
                dst: Dst::of(&r.dst),
            };
            match (p.host(), &p.dst, p.v6) {
                (Some(ip), _, _) => out.hosts.entry((p.table, ip)).or_default().push(i),
                (None, &Dst::V4 { net, len }, Some(false)) => {
                    let key = (p.table, len, net & v4_mask(len));
                    out.v4.entry(key).or_default().push(i);
                    let lens = out.v4_lens.entry(p.table).or_default();
                    if !lens.contains(&len) {
                        lens.push(len);
                    }
                }
                (None, _, Some(v6)) => out.nets.entry((p.table, v6)).or_default().push((i, p.dst)),
                (None, _, None) => {}
            }
        }
        for lens in out.v4_lens.values_mut() {
            lens.sort_unstable_by(|a, b| b.cmp(a));
        }
        out
    }

    /// The IPv4 routes of `table` with the longest prefix containing `ip`, and that
    /// length.
    fn longest_v4(&self, table: u32, ip: std::net::Ipv4Addr) -> Option<(&[usize], u8)> {
        let ip = u32::from(ip);
        self.v4_lens.get(&table)?.iter().find_map(|&len| {
            let routes = self.v4.get(&(table, len, ip & v4_mask(len)))?;
            Some((routes.as_slice(), len))
        })
    }
}

/// The netmask of an IPv4 prefix length.
fn v4_mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

impl Prefix {
    /// The one address this route of its family's length is to, if it is one.
    fn host(&self) -> Option<IpAddr> {
        let ip = match self.dst {
            Dst::V4 { net, len: 32 } => IpAddr::V4(net.into()),
            Dst::Net(n) if n.prefix_len() == n.max_prefix_len() => n.addr(),
            _ => return None,
        };
        (self.v6 == Some(ip.is_ipv6())).then_some(ip)
    }
}

impl Dst {
    fn of(dst: &str) -> Dst {
        if dst == "default" {
            return Dst::Default;
        }
        if let Some((net, len)) = plain_v4_cidr(dst.as_bytes()) {
            return Dst::V4 { net, len };
        }
        parse_cidr(dst).map_or(Dst::Unreadable, Dst::Net)
    }

    /// The prefix length when the destination contains `ip`.
    fn len_if_contains(&self, ip: IpAddr) -> Option<u8> {
        match (self, ip) {
            (Dst::Default, _) => Some(0),
            (Dst::V4 { net, len }, IpAddr::V4(ip)) => {
                let mask = v4_mask(*len);
                (u32::from(ip) & mask == net & mask).then_some(*len)
            }
            (Dst::V4 { .. }, IpAddr::V6(_)) | (Dst::Unreadable, _) => None,
            (Dst::Net(n), ip) => n.contains(&ip).then(|| n.prefix_len()),
        }
    }
}

/// [`decide`] with the destinations of `ns`'s routes read already.
pub fn decide_with(ns: &Netns, prefixes: &Prefixes, lookup: &Lookup) -> Decision {
    let family = family_of(lookup.dst);
    for step in steps(ns, family) {
        let Some(rule) = step.rule else {
            if let Some(d) = in_table(ns, prefixes, lookup, step.table, None) {
                return d;
            }
            continue;
        };
        match rule_matches(rule, lookup) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(why) => return unknown(step.index, why),
        }
        let stop = |verdict| Decision {
            verdict,
            rule: step.index,
            route: None,
            table: None,
        };
        match rule.action.as_str() {
            "to_tbl" => {
                if let Some(d) = in_table(ns, prefixes, lookup, rule.table, step.index) {
                    return d;
                }
            }
            "nop" => {}
            "blackhole" => return stop(Verdict::Blackhole),
            // A rule's `unreachable` is the network's (ENETUNREACH), not the host's
            // that an `unreachable` route gives (EHOSTUNREACH): seen in the lab.
            "unreachable" => return stop(Verdict::NoRoute),
            "prohibit" => return stop(Verdict::Prohibit),
            other => return unknown(step.index, format!("rule action {other:?}")),
        }
    }
    Decision {
        verdict: Verdict::NoRoute,
        rule: None,
        route: None,
        table: None,
    }
}

fn unknown(rule: Option<usize>, why: String) -> Decision {
    Decision {
        verdict: Verdict::Unknown(why),
        rule,
        route: None,
        table: None,
    }
}

fn family_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "inet",
        IpAddr::V6(_) => "inet6",
    }
}

/// The rules of this family by priority (stable: equal priorities keep bundle order),
/// or the kernel's defaults when the bundle has none of this family.
fn steps<'a>(ns: &'a Netns, family: &str) -> Vec<Step<'a>> {
    let mut rules: Vec<(usize, &Rule)> = ns
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.family == family)
        .collect();
    if rules.is_empty() {
        return [LOCAL_TABLE, MAIN_TABLE, DEFAULT_TABLE]
            .into_iter()
            .map(|table| Step {
                index: None,
                rule: None,
                table,
            })
            .collect();
    }
    rules.sort_by_key(|(_, r)| r.priority);
    rules
        .into_iter()
        .map(|(i, r)| Step {
            index: Some(i),
            rule: Some(r),
            table: r.table,
        })
        .collect()
}

/// Whether `rule`'s selectors match; `Err` when the bundle cannot tell.
fn rule_matches(rule: &Rule, l: &Lookup) -> Result<bool, String> {
    if rule.action == "goto" {
        return Err(format!("goto rule at priority {}", rule.priority));
    }
    let prefix_holds = |p: &Option<String>, ip: Option<IpAddr>| -> Result<bool, String> {
        let Some(p) = p else { return Ok(true) };
        let net = parse_cidr(p).map_err(|e| format!("rule prefix {p:?}: {e}"))?;
        // An unset source is 0.0.0.0 / :: to the kernel.
        let ip = ip.unwrap_or(match l.dst {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        Ok(net.contains(&ip))
    };
    if !prefix_holds(&rule.src, l.src)? || !prefix_holds(&rule.dst, Some(l.dst))? {
        return Ok(false);
    }
    if let Some(mark) = rule.fwmark {
        // As the kernel compares: the bits under the mask. Bundles of collectors that
        // did not record the mask get the default, all ones (`fwmark M` without `/MASK`).
        let mask = rule.fwmask.unwrap_or(u32::MAX);
        if (mark ^ l.mark) & mask != 0 {
            return Ok(false);
        }
    }
    if let Some(iif) = &rule.iif {
        if l.iif.as_deref().unwrap_or("lo") != iif {
            return Ok(false);
        }
    }
    if rule.oif.is_some() {
        // A sent packet not bound to a device has no output interface yet.
        return Ok(false);
    }
    Ok(true)
}

/// Whether the bundle holds the netns's local table (collectors before the table dump,
/// and hand-made fixtures, hold only the main one).
fn has_local_table(ns: &Netns) -> bool {
    ns.routes.items.iter().any(|r| r.table == LOCAL_TABLE)
}

/// The local table the kernel derives from the netns's addresses, for a bundle that
/// does not hold it: an address of the netns (or loopback) is local.
fn derived_local(ns: &Netns, dst: IpAddr, rule: Option<usize>) -> Option<Decision> {
    let own = dst.is_loopback()
        || ns
            .addrs
            .items
            .iter()
            .any(|a| parse_ip(&a.address) == Some(dst));
    own.then_some(Decision {
        verdict: Verdict::Local,
        rule,
        route: None,
        table: Some(LOCAL_TABLE),
    })
}

/// The best route for `l` in `table`: longest prefix, then lowest metric, then bundle
/// order. `None` when nothing matches or the match is `throw` (next rule).
fn in_table(
    ns: &Netns,
    prefixes: &Prefixes,
    l: &Lookup,
    table: u32,
    rule: Option<usize>,
) -> Option<Decision> {
    let v6 = l.dst.is_ipv6();
    let mut best: Option<(usize, &Route, u8)> = None;
    // Longest prefix, then lowest metric, then the first in bundle order (candidates
    // come from an index and a list, not in bundle order).
    let mut consider = |i: usize, len: u8| {
        let r = &ns.routes.items[i];
        let better = match best {
            None => true,
            Some((bi, b, blen)) => {
                let (m, bm) = (r.metric.unwrap_or(0), b.metric.unwrap_or(0));
                len > blen || (len == blen && (m < bm || (m == bm && i < bi)))
            }
        };
        if better {
            best = Some((i, r, len));
        }
    };
    // A route to the host itself is longer than any other: the others are tried only
    // when there is none.
    match prefixes.hosts.get(&(table, l.dst)) {
        Some(hosts) => {
            let len = if l.dst.is_ipv6() { 128 } else { 32 };
            hosts.iter().for_each(|&i| consider(i, len));
        }
        None => {
            if let IpAddr::V4(ip) = l.dst {
                if let Some((routes, len)) = prefixes.longest_v4(table, ip) {
                    routes.iter().for_each(|&i| consider(i, len));
                }
            }
            for (i, dst) in prefixes.nets.get(&(table, v6)).into_iter().flatten() {
                if let Some(len) = dst.len_if_contains(l.dst) {
                    consider(*i, len);
                }
            }
        }
    }
    if best.is_none() && table == LOCAL_TABLE && !prefixes.has_local {
        return derived_local(ns, l.dst, rule);
    }
    let (index, route, _) = best?;
    let verdict = match route.kind.as_str() {
        "throw" => return None,
        "unicast" => Verdict::Unicast {
            oif: route.oif,
            gateway: route.gateway.as_deref().and_then(parse_ip),
        },
        "local" => Verdict::Local,
        "broadcast" => Verdict::Broadcast,
        "blackhole" => Verdict::Blackhole,
        "unreachable" => Verdict::Unreachable,
        "prohibit" => Verdict::Prohibit,
        other => Verdict::Unknown(format!("route type {other:?}")),
    };
    Some(Decision {
        verdict,
        rule,
        route: Some(index),
        table: Some(table),
    })
}

/// `a.b.c.d/len` or `a.b.c.d` (a /32) in the canonical form `parse_cidr` accepts — no
/// leading zeros, octets ≤ 255, len ≤ 32 — as (address, len); `None` for anything
/// else, which then goes to `parse_cidr`.
fn plain_v4_cidr(s: &[u8]) -> Option<(u32, u8)> {
    /// A decimal number of 1–3 digits, without leading zeros, at most `max`.
    fn number(s: &[u8], max: u32) -> Option<u32> {
        if s.is_empty() || s.len() > 3 || (s.len() > 1 && s[0] == b'0') {
            return None;
        }
        let mut v = 0u32;
        for &b in s {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(b - b'0');
        }
        (v <= max).then_some(v)
    }
    let (addr, len) = match s.iter().position(|&b| b == b'/') {
        Some(at) => (&s[..at], number(&s[at + 1..], 32)? as u8),
        None => (s, 32),
    };
    let mut ip = 0u32;
    let mut octets = addr.split(|&b| b == b'.');
    for _ in 0..4 {
        ip = ip << 8 | number(octets.next()?, 255)?;
    }
    octets.next().is_none().then_some((ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Table;

    fn ns(routes: Vec<Route>, rules: Vec<Rule>) -> Netns {
        Netns {
            routes: Table::new("netns/t/routes.json", routes),
            rules,
            ..Netns::default()
        }
    }

    fn rule(priority: u32, table: u32, action: &str) -> Rule {
        Rule {
            action: action.into(),
            ..Rule::lookup("inet", priority, table)
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn out(dst: &str) -> Lookup {
        Lookup::output(ip(dst))
    }

    fn main_table() -> Vec<Route> {
        vec![
            Route::new("default").via("10.0.0.1").dev(2),
            Route::new("10.0.0.0/24").dev(2).with_scope("link"),
            Route::new("10.244.1.0/24").dev(3).with_scope("link"),
            Route::new("10.244.1.128/25").via("10.0.0.9").dev(2),
            Route::new("10.0.0.10")
                .in_table(255)
                .with_kind("local")
                .dev(2),
            Route::new("10.50.0.0/16").with_kind("blackhole"),
            Route::new("10.51.0.0/16").with_kind("unreachable"),
            Route::new("10.52.0.0/16").with_kind("prohibit"),
        ]
    }

    /// What `in_table` must answer: every route of the table and family tried in
    /// turn, longest prefix, then lowest metric, then bundle order.
    fn scan(n: &Netns, table: u32, dst: IpAddr) -> Option<usize> {
        let family = family_of(dst);
        let mut best: Option<(usize, u8, u32)> = None;
        for (i, r) in n.routes.items.iter().enumerate() {
            if r.table != table || r.family != family {
                continue;
            }
            let Some(len) = Dst::of(&r.dst).len_if_contains(dst) else {
                continue;
            };
            let metric = r.metric.unwrap_or(0);
            if best.is_none_or(|(_, l, m)| len > l || (len == l && metric < m)) {
                best = Some((i, len, metric));
            }
        }
        best.map(|(i, _, _)| i)
    }

    /// Each of `dsts`, looked up in tables 100, 254 and 255 of `n`, gets the route
    /// [`scan`] chooses.
    fn assert_lookups_choose_as_a_scan_would(n: &Netns, dsts: &[&str]) {
        let prefixes = Prefixes::of(n);
        for table in [100, 254, 255] {
            for &dst in dsts {
                let got = in_table(n, &prefixes, &out(dst), table, None).and_then(|d| d.route);
                assert_eq!(got, scan(n, table, ip(dst)), "{dst} in table {table}");
            }
        }
    }

    fn with_metric(r: Route, m: u32) -> Route {
        Route {
            metric: Some(m),
            ..r
        }
    }

    #[test]
    fn host_routes_found_by_address_choose_as_a_scan_would() {
        let mut routes = main_table();
        routes.extend([
            // Two routes to one pod: the lower metric wins, then the first.
            with_metric(Route::new("10.244.1.7").dev(5), 100),
            with_metric(Route::new("10.244.1.7/32").dev(6), 50),
            with_metric(Route::new("10.244.1.7").dev(7), 50),
            // The same host in another table, and an IPv6 host and prefix.
            Route::new("10.244.1.8").dev(8).in_table(100),
            Route {
                family: "inet6".into(),
                ..Route::new("fd00::7/128").dev(9)
            },
            Route {
                family: "inet6".into(),
                ..Route::new("fd00::/64").dev(10)
            },
            // A host route whose family disagrees with its address: never taken.
            Route {
                family: "inet6".into(),
                ..Route::new("10.244.1.9").dev(11)
            },
        ]);
        let n = ns(routes, vec![]);
        let dsts = [
            "10.244.1.7",
            "10.244.1.8",
            "10.244.1.9",
            "10.244.1.200",
            "10.0.0.10",
            "192.0.2.1",
            "fd00::7",
            "fd00::8",
        ];
        assert_lookups_choose_as_a_scan_would(&n, &dsts);
        let d = decide(&n, &out("10.244.1.7"));
        assert_eq!(d.route, Some(9), "metric 50, first of two");
    }

    #[test]
    fn network_routes_found_by_prefix_choose_as_a_scan_would() {
        let mut routes = main_table();
        routes.extend([
            // Nested networks, two of one length told apart by metric then order, one
            // written with host bits set.
            with_metric(Route::new("10.60.0.0/16").dev(5), 10),
            with_metric(Route::new("10.60.1.0/24").dev(6), 20),
            with_metric(Route::new("10.60.1.0/24").dev(7), 10),
            with_metric(Route::new("10.60.1.99/24").dev(8), 10),
            Route::new("10.60.1.128/25").dev(9).in_table(100),
            Route::new("0.0.0.0/0").dev(10).in_table(100),
            // An IPv4 network whose family says IPv6: never taken for either.
            Route {
                family: "inet6".into(),
                ..Route::new("10.61.0.0/16").dev(11)
            },
        ]);
        let n = ns(routes, vec![]);
        let dsts = [
            "10.60.1.5",
            "10.60.1.200",
            "10.60.2.1",
            "10.61.0.1",
            "10.244.1.200",
            "198.51.100.1",
        ];
        assert_lookups_choose_as_a_scan_would(&n, &dsts);
        let d = decide(&n, &out("10.60.1.5"));
        assert_eq!(
            d.route,
            Some(main_table().len() + 2),
            "metric 10, first of two"
        );
    }

    #[test]
    fn longest_prefix_wins_and_default_catches_the_rest() {
        let n = ns(main_table(), vec![]);
        let d = decide(&n, &out("10.244.1.200"));
        assert_eq!(
            d.verdict,
            Verdict::Unicast {
                oif: Some(2),
                gateway: Some(ip("10.0.0.9"))
            }
        );
        assert_eq!((d.route, d.table), (Some(3), Some(254)));
        let d = decide(&n, &out("10.244.1.7"));
        assert_eq!(
            d.verdict,
            Verdict::Unicast {
                oif: Some(3),
                gateway: None
            }
        );
        let d = decide(&n, &out("192.0.2.1"));
        assert_eq!(d.route, Some(0));
    }

    #[test]
    fn the_local_table_comes_first_and_route_types_stop() {
        let n = ns(main_table(), vec![]);
        assert_eq!(decide(&n, &out("10.0.0.10")).verdict, Verdict::Local);
        assert_eq!(decide(&n, &out("10.50.1.1")).verdict, Verdict::Blackhole);
        assert_eq!(decide(&n, &out("10.51.1.1")).verdict, Verdict::Unreachable);
        assert_eq!(decide(&n, &out("10.52.1.1")).verdict, Verdict::Prohibit);
    }

    #[test]
    fn without_a_default_route_there_is_no_route() {
        let mut routes = main_table();
        routes.remove(0);
        let n = ns(routes, vec![]);
        assert_eq!(decide(&n, &out("192.0.2.1")).verdict, Verdict::NoRoute);
    }

    #[test]
    fn rules_by_priority_with_marks_throw_and_actions() {
        let mut routes = main_table();
        routes.push(Route::new("default").via("10.0.0.2").dev(2).in_table(100));
        routes.push(Route::new("192.0.2.0/24").with_kind("throw").in_table(100));
        let mut marked = rule(1000, 100, "to_tbl");
        marked.fwmark = Some(0x10);
        marked.fwmask = Some(0xf0);
        let mut to_prohibit = rule(1100, 0, "prohibit");
        to_prohibit.dst = Some("198.51.100.0/24".into());
        let mut to_unreachable = rule(1200, 0, "unreachable");
        to_unreachable.dst = Some("198.51.101.0/24".into());
        let rules = vec![
            rule(32766, 254, "to_tbl"),
            marked,
            rule(0, 255, "to_tbl"),
            to_prohibit,
            to_unreachable,
        ];
        let n = ns(routes, rules);
        let mut l = out("203.0.113.5");
        l.mark = 0x10;
        let d = decide(&n, &l);
        assert_eq!(
            d.verdict,
            Verdict::Unicast {
                oif: Some(2),
                gateway: Some(ip("10.0.0.2"))
            }
        );
        assert_eq!((d.rule, d.table), (Some(1), Some(100)));
        // Only the bits under the mask count.
        l.mark = 0x1f;
        assert_eq!(decide(&n, &l).table, Some(100));
        l.mark = 0x20;
        assert_eq!(decide(&n, &l).table, Some(254));
        l.mark = 0x10;
        // throw in table 100: on to the main table's default.
        l.dst = ip("192.0.2.9");
        assert_eq!(decide(&n, &l).route, Some(0));
        // Unmarked: the main table.
        assert_eq!(decide(&n, &out("203.0.113.5")).route, Some(0));
        // A rule action stops it before the main table.
        let d = decide(&n, &out("198.51.100.1"));
        assert_eq!((d.verdict, d.rule), (Verdict::Prohibit, Some(3)));
        // A rule's unreachable is the network's: no route, citing the rule.
        let d = decide(&n, &out("198.51.101.1"));
        assert_eq!((d.verdict, d.rule), (Verdict::NoRoute, Some(4)));
    }

    #[test]
    fn what_the_bundle_cannot_tell_is_unknown() {
        let n = ns(
            main_table(),
            vec![rule(10, 0, "goto"), rule(32766, 254, "to_tbl")],
        );
        assert!(matches!(
            decide(&n, &out("10.0.0.5")).verdict,
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn equal_prefixes_prefer_the_lower_metric() {
        let mut a = Route::new("10.9.0.0/16").via("10.0.0.3").dev(2);
        a.metric = Some(200);
        let mut b = Route::new("10.9.0.0/16").via("10.0.0.4").dev(2);
        b.metric = Some(100);
        let n = ns(vec![a, b], vec![]);
        assert_eq!(decide(&n, &out("10.9.1.1")).route, Some(1));
    }

    /// The fast IPv4 path answers as the general parser does, on every form a
    /// routes file could hold and on broken ones.
    #[test]
    fn plain_v4_cidr_agrees_with_parse_cidr() {
        let dsts = [
            "10.244.0.0/16",
            "10.244.1.0/24",
            "10.244.1.7",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "10.244.1.9/24",
            "192.168.49.0/24",
            "10.0.0.0/8",
            "10.0.0.0/33",
            "10.0.0.0/024",
            "010.0.0.0/8",
            "10.0.0/8",
            "10.0.0.0.0/8",
            "10.0.0.256/32",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/+8",
            "10..0.0/8",
            " 10.0.0.0/8",
            "fd00::/64",
            "::/0",
            "1.2.3.4/1",
            "128.0.0.0/1",
            "10.0.0.0/8x",
            "1000.0.0.0/8",
        ];
        let ips = [
            "10.244.1.7",
            "10.244.0.1",
            "10.0.0.1",
            "192.168.49.2",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "128.0.0.1",
            "fd00::1",
        ];
        for dst in dsts {
            for ip in ips {
                let ip: IpAddr = ip.parse().unwrap();
                let slow = parse_cidr(dst)
                    .ok()
                    .and_then(|net| net.contains(&ip).then(|| net.prefix_len()));
                assert_eq!(Dst::of(dst).len_if_contains(ip), slow, "{dst} {ip}");
            }
        }
    }
}
