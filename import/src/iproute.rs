//! `ip` output, text (`ip [-d] link|addr|route|rule|neigh`) or JSON (`ip -j …`),
//! parsed into the schema types the collector writes from netlink, with the same
//! spellings (`inet`, scope `universe`, table 254, state `REACHABLE`). Text names
//! devices where netlink gives indexes: names are resolved against the links of the
//! same input at the end ([`IpState::finish`]); what cannot be resolved is reported.

use netsnap_schema::model::{
    Addr, BridgeInfo, BridgePort, Link, LinkState, Neigh, NeighTable, NextHop, Route, RouteTable,
    Rule, Vxlan,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// A link as text names it: master, same-netns peer and vxlan device by name.
#[derive(Debug, Clone)]
pub struct LinkDraft {
    pub link: Link,
    pub master: Option<String>,
    pub peer_name: Option<String>,
    pub vxlan_dev: Option<String>,
    /// `link-netns NAME`: the peer's netns by name (text shows the name, not the
    /// nsid, when the netns is named); mapped to the nsid the input gives it.
    pub peer_netns: Option<String>,
}

/// Everything `ip` told about one netns.
#[derive(Debug, Default, Clone)]
pub struct IpState {
    pub links: Option<Vec<LinkDraft>>,
    pub addrs: Option<Vec<Addr>>,
    pub routes: Option<Vec<(Route, Option<String>)>>,
    pub rules: Option<Vec<Rule>>,
    pub neigh: Option<Vec<(Neigh, String)>>,
    /// `bridge fdb show` (text or `-j`): the fdb half of the neighbour table.
    pub fdb: Option<Vec<crate::listings::FdbDraft>>,
}

/// Lines a parser could not read: (1-based line within the dump, reason).
pub type Unread = Vec<(usize, String)>;

fn scope(s: &str) -> String {
    match s {
        "global" => "universe".into(),
        other => other.into(),
    }
}

fn table_id(s: &str) -> Option<u32> {
    match s {
        "local" => Some(255),
        "main" => Some(254),
        "default" => Some(253),
        n => n.parse().ok(),
    }
}

fn state(s: &str) -> LinkState {
    match s {
        "UP" => LinkState::Up,
        "DOWN" => LinkState::Down,
        "DORMANT" => LinkState::Dormant,
        "LOWERLAYERDOWN" => LinkState::Lowerlayerdown,
        "NOTPRESENT" => LinkState::Notpresent,
        "TESTING" => LinkState::Testing,
        _ => LinkState::Unknown,
    }
}

fn family_of(addr: &str) -> &'static str {
    if addr.contains(':') {
        "inet6"
    } else {
        "inet"
    }
}

/// `a.b.c.d` → `a.b.c.d/32` (what netlink's prefix length makes of a host route).
fn with_prefix(dst: &str) -> String {
    if dst == "default" || dst.contains('/') {
        dst.to_string()
    } else {
        format!("{dst}/{}", if dst.contains(':') { 128 } else { 32 })
    }
}

/// `addr/len` with a real address and a length its family allows.
fn valid_prefix(p: &str) -> Option<()> {
    let (a, l) = p.split_once('/')?;
    let ip: std::net::IpAddr = a.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (l.parse::<u8>().ok()? <= max).then_some(())
}

fn after<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .position(|w| *w == key)
        .and_then(|i| words.get(i + 1).copied())
}

/// `ip [-d] link` or `ip [-d] addr` text: links, and the addresses when present.
pub fn parse_links_text(text: &str) -> (Vec<LinkDraft>, Vec<Addr>, Unread) {
    let (mut links, mut addrs, mut unread) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            match link_header(&words) {
                Some(l) => links.push(l),
                None => unread.push((i + 1, "not a link header".into())),
            }
            continue;
        }
        let Some(cur) = links.last_mut() else {
            unread.push((i + 1, "detail line before any link".into()));
            continue;
        };
        match words[0] {
            "inet" | "inet6" => match addr_line(&words, cur.link.ifindex) {
                Some(a) => addrs.push(a),
                None => unread.push((i + 1, "address not understood".into())),
            },
            w if w.starts_with("link/") => link_detail(&words, cur),
            "bridge_slave" => {
                cur.link.bridge_port = Some(BridgePort {
                    hairpin: after(&words, "hairpin") == Some("on"),
                    state: after(&words, "state").and_then(port_state),
                    learning: after(&words, "learning").map(|v| v == "on"),
                });
            }
            "bridge" => {
                cur.link.kind = Some("bridge".into());
                cur.link.bridge = Some(BridgeInfo {
                    stp_state: after(&words, "stp_state").and_then(|v| v.parse().ok()),
                    vlan_filtering: after(&words, "vlan_filtering").map(|v| v == "1"),
                });
            }
            "vxlan" => vxlan_detail(&words, cur),
            "valid_lft" | "altname" | "prop" | "alias" => {}
            w if KINDS.contains(&w) => cur.link.kind = Some(w.into()),
            _ => {}
        }
    }
    (links, addrs, unread)
}

const KINDS: [&str; 16] = [
    "veth",
    "dummy",
    "ipip",
    "gre",
    "macvlan",
    "ipvlan",
    "geneve",
    "wireguard",
    "bond",
    "vlan",
    "tun",
    "vrf",
    "sit",
    "ip6tnl",
    "team",
    "macvtap",
];

/// Netlink's `IFF_*` order, in which the collector lists flags.
const IFF_ORDER: [&str; 19] = [
    "UP",
    "BROADCAST",
    "DEBUG",
    "LOOPBACK",
    "POINTOPOINT",
    "NOTRAILERS",
    "RUNNING",
    "NOARP",
    "PROMISC",
    "ALLMULTI",
    "MASTER",
    "SLAVE",
    "MULTICAST",
    "PORTSEL",
    "AUTOMEDIA",
    "DYNAMIC",
    "LOWER_UP",
    "DORMANT",
    "ECHO",
];

/// `ip`'s flag list as netlink has it: `ip` hides `RUNNING` (set when the device is
/// up with carrier, i.e. `UP` and `LOWER_UP`) and adds `NO-CARRIER`/`M-DOWN`, which
/// are no flags; the order is the kernel's bit order.
fn netlink_flags<'a>(shown: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut flags: Vec<&str> = shown.filter(|f| IFF_ORDER.contains(f)).collect();
    if flags.contains(&"UP") && flags.contains(&"LOWER_UP") && !flags.contains(&"RUNNING") {
        flags.push("RUNNING");
    }
    let pos = |f: &&str| IFF_ORDER.iter().position(|o| o == f).unwrap_or(usize::MAX);
    flags.sort_by_key(pos);
    flags.dedup();
    flags.into_iter().map(str::to_string).collect()
}

fn port_state(s: &str) -> Option<u8> {
    Some(match s {
        "disabled" => 0,
        "listening" => 1,
        "learning" => 2,
        "forwarding" => 3,
        "blocking" => 4,
        n => n.parse().ok()?,
    })
}

/// `2: veth0@if2: <BROADCAST,UP,LOWER_UP> mtu 1500 … master cni0 state UP …`
fn link_header(words: &[&str]) -> Option<LinkDraft> {
    let ifindex = words.first()?.strip_suffix(':')?.parse().ok()?;
    let name_part = words.get(1)?.strip_suffix(':')?;
    let (name, peer) = match name_part.split_once('@') {
        Some((n, p)) => (n, Some(p)),
        None => (name_part, None),
    };
    let flags_word = words.get(2)?.strip_prefix('<')?.strip_suffix('>')?;
    let mtu = after(words, "mtu")?.parse().ok()?;
    let mut link = Link::new(ifindex, name, mtu);
    link.flags = netlink_flags(flags_word.split(','));
    link.state = state(after(words, "state").unwrap_or("UNKNOWN"));
    let mut draft = LinkDraft {
        link,
        master: after(words, "master").map(str::to_string),
        peer_name: None,
        vxlan_dev: None,
        peer_netns: None,
    };
    match peer
        .and_then(|p| p.strip_prefix("if"))
        .and_then(|n| n.parse().ok())
    {
        Some(n) => draft.link.link = Some(n),
        None => draft.peer_name = peer.filter(|p| *p != "NONE").map(str::to_string),
    }
    Some(draft)
}

fn link_detail(words: &[&str], cur: &mut LinkDraft) {
    if words[0] != "link/none" {
        cur.link.mac = words.get(1).map(|m| m.to_string());
    }
    if let Some(id) = after(words, "link-netnsid").and_then(|v| v.parse().ok()) {
        cur.link.link_netnsid = Some(id);
    }
    cur.peer_netns = after(words, "link-netns").map(str::to_string);
    if let Some(p) = after(words, "promiscuity").and_then(|v| v.parse().ok()) {
        cur.link.promiscuity = p;
    }
    // A peer in another netns (`@ifN` with link-netns*) is a veth without -d too.
    let other_netns = words.contains(&"link-netnsid") || words.contains(&"link-netns");
    if other_netns && cur.link.link.is_some() && cur.link.kind.is_none() {
        cur.link.kind = Some("veth".into());
    }
}

fn vxlan_detail(words: &[&str], cur: &mut LinkDraft) {
    cur.link.kind = Some("vxlan".into());
    let flag = |w: &str| words.contains(&w).then_some(true);
    cur.link.vxlan = Some(Vxlan {
        id: after(words, "id").and_then(|v| v.parse().ok()).unwrap_or(0),
        local: after(words, "local").map(str::to_string),
        group: after(words, "group")
            .or(after(words, "remote"))
            .map(str::to_string),
        dev: None,
        port: after(words, "dstport").and_then(|v| v.parse().ok()),
        learning: Some(!words.contains(&"nolearning")),
        external: flag("external"),
        l2miss: flag("l2miss"),
        l3miss: flag("l3miss"),
        proxy: flag("proxy"),
    });
    cur.vxlan_dev = after(words, "dev").map(str::to_string);
}

/// `inet 10.0.0.1/24 brd … scope global eth0` / `inet6 fe80::1/64 scope link`
fn addr_line(words: &[&str], ifindex: u32) -> Option<Addr> {
    let family = words[0];
    let raw = words.get(1)?;
    let (address, prefix) = match raw.split_once('/') {
        Some((a, p)) => (a, p.parse().ok()?),
        None => (*raw, if family == "inet6" { 128 } else { 32 }),
    };
    valid_prefix(&format!("{address}/{prefix}"))?;
    let scope_i = words.iter().position(|w| *w == "scope")?;
    let label = (family == "inet")
        .then(|| {
            words
                .last()
                .filter(|w| scope_i + 2 < words.len() && !FLAGS.contains(w))
        })
        .flatten()
        .map(|w| w.to_string());
    Some(Addr {
        ifindex,
        family: family.into(),
        address: address.into(),
        prefix_len: prefix,
        scope: scope(words.get(scope_i + 1)?),
        label,
    })
}

const FLAGS: [&str; 12] = [
    "secondary",
    "dynamic",
    "noprefixroute",
    "nodad",
    "permanent",
    "deprecated",
    "tentative",
    "home",
    "mngtmpaddr",
    "optimistic",
    "dadfailed",
    "stable-privacy",
];

const ROUTE_TYPES: [&str; 11] = [
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "unreachable",
    "blackhole",
    "prohibit",
    "throw",
    "anycast",
    "nat",
    "xresolve",
];

/// `ip route show table all` text (also `ip -6 route`: `v6` when the command said so).
pub fn parse_routes_text(text: &str, v6: bool) -> (Vec<(Route, Option<String>)>, Unread) {
    let (mut out, mut unread): (Vec<(Route, Option<String>)>, Unread) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words[0] == "nexthop" {
            if let Some((r, _)) = out.last_mut() {
                r.multipath.push(NextHop {
                    gateway: after(&words, "via").map(str::to_string),
                    oif: None,
                    weight: after(&words, "weight")
                        .and_then(|w| w.parse().ok())
                        .unwrap_or(1),
                });
                if r.gateway.is_none() {
                    r.gateway = after(&words, "via").map(str::to_string);
                }
                continue;
            }
        }
        match route_line(&words, v6) {
            Some(r) => out.push(r),
            None => unread.push((i + 1, "route not understood".into())),
        }
    }
    (out, unread)
}

fn route_line(words: &[&str], v6: bool) -> Option<(Route, Option<String>)> {
    let (kind, rest) = match ROUTE_TYPES.contains(&words[0]) {
        true => (words[0], &words[1..]),
        false => ("unicast", words),
    };
    let dst = with_prefix(rest.first()?);
    if dst != "default" {
        valid_prefix(&dst)?;
    }
    let gateway = match after(rest, "via") {
        // `via inet6 fe80::1` names the family first.
        Some("inet" | "inet6") => after(rest, after(rest, "via")?),
        g => g,
    };
    let gateway = match gateway {
        Some(g) => Some(g.parse::<std::net::IpAddr>().ok()?.to_string()),
        None => None,
    };
    // A number that does not parse is an unread line, not a missing metric.
    for key in ["metric", "mtu"] {
        if let Some(v) = after(rest, key) {
            v.parse::<u32>().ok()?;
        }
    }
    let family = if dst != "default" {
        family_of(&dst)
    } else if gateway.as_deref().is_some_and(|g| g.contains(':')) || v6 || rest.contains(&"pref") {
        "inet6"
    } else {
        "inet"
    };
    let default_table = if matches!(kind, "local" | "broadcast") {
        255
    } else {
        254
    };
    let default_scope = match kind {
        "local" => "host",
        "broadcast" => "link",
        _ if gateway.is_none() && kind == "unicast" && family == "inet" && dst != "default" => {
            "link"
        }
        _ => "universe",
    };
    let route = Route {
        family: family.into(),
        table: after(rest, "table")
            .and_then(table_id)
            .unwrap_or(default_table),
        dst,
        gateway,
        oif: None,
        prefsrc: after(rest, "src").map(str::to_string),
        kind: kind.into(),
        protocol: after(rest, "proto").unwrap_or("boot").into(),
        scope: after(rest, "scope")
            .map(scope)
            .unwrap_or_else(|| default_scope.into()),
        metric: after(rest, "metric").and_then(|m| m.parse().ok()),
        mtu: after(rest, "mtu").and_then(|m| m.parse().ok()),
        multipath: Vec::new(),
    };
    Some((route, after(rest, "dev").map(str::to_string)))
}

/// `ip rule` text: `1000:\tfrom all fwmark 0x4000/0x4000 lookup 100`.
pub fn parse_rules_text(text: &str, v6: bool) -> (Vec<Rule>, Unread) {
    let (mut out, mut unread) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        match rule_line(&words, v6) {
            Some(r) => out.push(r),
            None => unread.push((i + 1, "rule not understood".into())),
        }
    }
    (out, unread)
}

fn rule_line(words: &[&str], v6: bool) -> Option<Rule> {
    let priority = words[0].strip_suffix(':')?.parse().ok()?;
    let prefix = |w: Option<&str>| w.filter(|v| *v != "all").map(with_prefix);
    let src = prefix(after(words, "from"));
    let dst = prefix(after(words, "to"));
    let v6 = v6 || src.iter().chain(dst.iter()).any(|a| a.contains(':'));
    let (fwmark, fwmask) =
        match after(words, "fwmark").map(|m| m.split_once('/').unwrap_or((m, "0xffffffff"))) {
            Some((m, k)) => (hex(m), hex(k)),
            None => (None, None),
        };
    let (table, action) = if let Some(t) = after(words, "lookup").or(after(words, "table")) {
        (table_id(t)?, "to_tbl")
    } else if let Some(a) = ["goto", "blackhole", "unreachable", "prohibit", "nop"]
        .iter()
        .find(|a| words.contains(a))
    {
        (0, *a)
    } else {
        return None;
    };
    Some(Rule {
        src,
        dst,
        fwmark,
        fwmask,
        iif: after(words, "iif").map(str::to_string),
        oif: after(words, "oif").map(str::to_string),
        action: action.into(),
        ..Rule::lookup(if v6 { "inet6" } else { "inet" }, priority, table)
    })
}

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// `ip neigh` text: `10.0.0.5 dev eth0 lladdr 02:… REACHABLE`.
pub fn parse_neigh_text(text: &str) -> (Vec<(Neigh, String)>, Unread) {
    let (mut out, mut unread) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let parsed = (|| {
            let dst = words[0];
            dst.parse::<std::net::IpAddr>().ok()?;
            let dev = after(&words, "dev")?;
            let state = words.last()?.to_string();
            Some((
                Neigh {
                    ifindex: 0,
                    family: family_of(dst).into(),
                    dst: dst.into(),
                    lladdr: after(&words, "lladdr").map(str::to_string),
                    state,
                },
                dev.to_string(),
            ))
        })();
        match parsed {
            Some(n) => out.push(n),
            None => unread.push((i + 1, "neighbour not understood".into())),
        }
    }
    (out, unread)
}

/// What an `ip -j` array holds, told by its objects' keys; an empty array by the
/// command that made it, when known (`ip -j neigh show`).
pub fn parse_ip_json(value: &Value, command: Option<&str>) -> Result<IpState, String> {
    let items = value.as_array().ok_or("not a JSON array")?;
    let Some(first) = items.first() else {
        let words: Vec<&str> = command.unwrap_or("").split_whitespace().collect();
        let is = |w: &str| {
            words
                .iter()
                .any(|c| w.starts_with(c) && c.len() >= 2 && !c.starts_with('-'))
        };
        let mut st = IpState::default();
        if is("fdb") {
            st.fdb = Some(Vec::new());
        } else if is("neighbour") {
            st.neigh = Some(Vec::new());
        } else if is("route") {
            st.routes = Some(Vec::new());
        } else if is("rule") {
            st.rules = Some(Vec::new());
        } else if is("address") {
            st.addrs = Some(Vec::new());
        } else if is("link") {
            st.links = Some(Vec::new());
        } else {
            return Err("an empty array: which `ip -j` command made it cannot be told".into());
        }
        return Ok(st);
    };
    let has = |k: &str| first.get(k).is_some();
    let mut st = IpState::default();
    if has("mac") {
        st.fdb = Some(crate::listings::parse_fdb_json(items)?);
    } else if has("ifname") {
        let mut links = Vec::new();
        let mut addrs = Vec::new();
        for it in items {
            links.push(json_link(it)?);
            for a in it
                .get("addr_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                addrs.push(json_addr(
                    a,
                    links
                        .last()
                        .map(|l: &LinkDraft| l.link.ifindex)
                        .unwrap_or(0),
                )?);
            }
        }
        st.links = Some(links);
        if items.iter().any(|i| i.get("addr_info").is_some()) {
            st.addrs = Some(addrs);
        }
    } else if has("priority") {
        st.rules = Some(items.iter().map(json_rule).collect::<Result<_, _>>()?);
    } else if has("lladdr") || first.get("state").is_some_and(Value::is_array) {
        st.neigh = Some(items.iter().map(json_neigh).collect::<Result<_, _>>()?);
    } else if has("dst") {
        st.routes = Some(items.iter().map(json_route).collect::<Result<_, _>>()?);
    } else {
        return Err("objects of no known `ip -j` command".into());
    }
    Ok(st)
}

fn s<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

fn json_link(v: &Value) -> Result<LinkDraft, String> {
    let ifindex = u(v, "ifindex").ok_or("link without ifindex")? as u32;
    let name = s(v, "ifname").ok_or("link without ifname")?;
    let mut link = Link::new(ifindex, name, u(v, "mtu").unwrap_or(0) as u32);
    link.flags = netlink_flags(
        v.get("flags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    link.state = state(s(v, "operstate").unwrap_or("UNKNOWN"));
    link.mac = s(v, "address").map(str::to_string);
    link.link = u(v, "link_index").map(|n| n as u32);
    link.link_netnsid = v
        .get("link_netnsid")
        .and_then(Value::as_i64)
        .map(|n| n as i32);
    link.promiscuity = u(v, "promiscuity").unwrap_or(0) as u32;
    let info = v.get("linkinfo");
    link.kind = info.and_then(|i| s(i, "info_kind")).map(str::to_string);
    let data = info.and_then(|i| i.get("info_data"));
    if link.kind.as_deref() == Some("bridge") {
        link.bridge = Some(BridgeInfo {
            stp_state: data.and_then(|d| u(d, "stp_state")).map(|n| n as u32),
            vlan_filtering: data.and_then(|d| u(d, "vlan_filtering")).map(|n| n == 1),
        });
    }
    let mut vxlan_dev = None;
    if link.kind.as_deref() == Some("vxlan") {
        let d = data.cloned().unwrap_or(Value::Null);
        let b = |k: &str| d.get(k).and_then(Value::as_bool);
        link.vxlan = Some(Vxlan {
            id: u(&d, "id").unwrap_or(0) as u32,
            local: s(&d, "local").map(str::to_string),
            group: s(&d, "group").or(s(&d, "remote")).map(str::to_string),
            dev: None,
            port: u(&d, "port").map(|p| p as u16),
            learning: b("learning"),
            external: b("external"),
            l2miss: b("l2miss"),
            l3miss: b("l3miss"),
            proxy: b("proxy"),
        });
        vxlan_dev = s(&d, "link").map(str::to_string);
    }
    if info.and_then(|i| s(i, "info_slave_kind")) == Some("bridge") {
        let sd = info
            .and_then(|i| i.get("info_slave_data"))
            .cloned()
            .unwrap_or(Value::Null);
        link.bridge_port = Some(BridgePort {
            hairpin: sd.get("hairpin").and_then(Value::as_bool).unwrap_or(false),
            state: s(&sd, "state").and_then(port_state),
            learning: sd.get("learning").and_then(Value::as_bool),
        });
    }
    let peer_name = (link.link.is_none())
        .then(|| s(v, "link").map(str::to_string))
        .flatten();
    Ok(LinkDraft {
        link,
        master: s(v, "master").map(str::to_string),
        peer_name,
        vxlan_dev,
        peer_netns: None,
    })
}

fn json_addr(v: &Value, ifindex: u32) -> Result<Addr, String> {
    Ok(Addr {
        ifindex,
        family: s(v, "family").ok_or("address without family")?.into(),
        address: s(v, "local").ok_or("address without local")?.into(),
        prefix_len: u(v, "prefixlen").unwrap_or(0) as u8,
        scope: scope(s(v, "scope").unwrap_or("global")),
        label: s(v, "label").map(str::to_string),
    })
}

fn json_route(v: &Value) -> Result<(Route, Option<String>), String> {
    let dst = with_prefix(s(v, "dst").ok_or("route without dst")?);
    let kind = s(v, "type").unwrap_or("unicast");
    let gateway = s(v, "gateway").map(str::to_string);
    let family = if dst != "default" {
        family_of(&dst)
    } else if gateway.as_deref().is_some_and(|g| g.contains(':')) || v.get("pref").is_some() {
        "inet6"
    } else {
        "inet"
    };
    let default_table = if matches!(kind, "local" | "broadcast") {
        255
    } else {
        254
    };
    let route = Route {
        family: family.into(),
        table: s(v, "table").and_then(table_id).unwrap_or(default_table),
        dst,
        gateway,
        oif: None,
        prefsrc: s(v, "prefsrc").map(str::to_string),
        kind: kind.into(),
        protocol: s(v, "protocol").unwrap_or("boot").into(),
        scope: scope(s(v, "scope").unwrap_or(if kind == "local" { "host" } else { "global" })),
        metric: u(v, "metric").map(|m| m as u32),
        mtu: v
            .get("metrics")
            .and_then(Value::as_array)
            .and_then(|m| m.iter().find_map(|x| u(x, "mtu")))
            .map(|m| m as u32),
        multipath: Vec::new(),
    };
    Ok((route, s(v, "dev").map(str::to_string)))
}

fn json_rule(v: &Value) -> Result<Rule, String> {
    let prio = u(v, "priority").ok_or("rule without priority")? as u32;
    let pfx = |a: &str, l: &str| {
        s(v, a).filter(|x| *x != "all").map(|x| match u(v, l) {
            Some(n) => format!("{x}/{n}"),
            None => with_prefix(x),
        })
    };
    let src = pfx("src", "srclen");
    let dst = pfx("dst", "dstlen");
    let v6 = src.iter().chain(dst.iter()).any(|a| a.contains(':'));
    let table = s(v, "table").and_then(table_id).unwrap_or(0);
    Ok(Rule {
        src,
        dst,
        fwmark: s(v, "fwmark").and_then(hex),
        fwmask: s(v, "fwmask").and_then(hex),
        iif: s(v, "iifname").map(str::to_string),
        oif: s(v, "oifname").map(str::to_string),
        action: s(v, "action").unwrap_or("to_tbl").into(),
        ..Rule::lookup(if v6 { "inet6" } else { "inet" }, prio, table)
    })
}

fn json_neigh(v: &Value) -> Result<(Neigh, String), String> {
    let dst = s(v, "dst").ok_or("neighbour without dst")?;
    let states: Vec<&str> = v
        .get("state")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Ok((
        Neigh {
            ifindex: 0,
            family: family_of(dst).into(),
            dst: dst.into(),
            lladdr: s(v, "lladdr").map(str::to_string),
            state: if states.is_empty() {
                "NONE".into()
            } else {
                states.join("|")
            },
        },
        s(v, "dev").ok_or("neighbour without dev")?.into(),
    ))
}

/// The schema's links, addresses, routes and neighbours, device names resolved to
/// indexes through the links; names that match no link are listed.
pub struct Resolved {
    pub links: Option<Vec<Link>>,
    pub addrs: Option<Vec<Addr>>,
    pub routes: Option<RouteTable>,
    pub neigh: Option<NeighTable>,
    pub unresolved: Vec<String>,
}

impl IpState {
    /// Resolves names; `nsids` maps netns names to the nsid the node gives them.
    pub fn finish(self, nsids: &BTreeMap<String, i32>) -> Resolved {
        let by_name: BTreeMap<String, u32> = self
            .links
            .iter()
            .flatten()
            .map(|l| (l.link.name.clone(), l.link.ifindex))
            .collect();
        let mut unresolved = Vec::new();
        let mut idx = |name: &str, what: &str| match by_name.get(name) {
            Some(i) => Some(*i),
            None => {
                unresolved.push(format!(
                    "{what} names device {name}, which no imported link list has"
                ));
                None
            }
        };
        let links = self.links.map(|ls| {
            ls.into_iter()
                .map(|d| {
                    let mut l = d.link;
                    l.master = d.master.as_deref().and_then(|m| idx(m, "a link's master"));
                    if let Some(p) = &d.peer_name {
                        l.link = idx(p, "a link's peer");
                    }
                    if let Some(n) = d.peer_netns.as_ref().and_then(|n| nsids.get(n)) {
                        l.link_netnsid = Some(*n);
                    }
                    if let (Some(v), Some(dev)) = (l.vxlan.as_mut(), &d.vxlan_dev) {
                        v.dev = idx(dev, "a vxlan device");
                    }
                    l
                })
                .collect()
        });
        let routes = (self.routes.is_some() || self.rules.is_some()).then(|| RouteTable {
            routes: self
                .routes
                .unwrap_or_default()
                .into_iter()
                .map(|(mut r, dev)| {
                    r.oif = dev.as_deref().and_then(|d| idx(d, "a route"));
                    r
                })
                .collect(),
            rules: self.rules.unwrap_or_default(),
        });
        let has_neigh = self.neigh.is_some() || self.fdb.is_some();
        let neighbours = self
            .neigh
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(mut n, dev)| {
                n.ifindex = idx(&dev, "a neighbour")?;
                Some(n)
            })
            .collect();
        let fdb = self
            .fdb
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| {
                let mut e = d.entry;
                e.ifindex = idx(&d.dev, "an fdb entry")?;
                e.master = d
                    .master
                    .as_deref()
                    .and_then(|m| idx(m, "an fdb entry's master"));
                Some(e)
            })
            .collect();
        let neigh = has_neigh.then_some(NeighTable { neighbours, fdb });
        unresolved.sort();
        unresolved.dedup();
        Resolved {
            links,
            addrs: self.addrs,
            routes,
            neigh,
            unresolved,
        }
    }
}
