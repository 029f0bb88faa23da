//! The formats a loose dump can be in, and for each whether one line fits it. A line
//! fits `Strong` when it can only be that format, `Weak` when it is allowed inside
//! a dump of it (comments, continuation lines) but cannot start one.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    IptablesSave,
    NftText,
    NftJson,
    /// `ipvsadm -Ln` or `/proc/net/ip_vs` (the analyzer reads both).
    Ipvs,
    /// `ipvsadm -Ln --stats` / `--rate`: per-service counters, no weights.
    IpvsadmStats,
    /// `ipvsadm --save` (`-A -t VIP:PORT -s rr`, `-a -t … -r RIP:PORT -m -w 1`).
    IpvsadmSave,
    /// `ipset save` (`create …`, `add …`).
    Ipset,
    /// `ss -ltnu` / `ss -peaonmi`: the listening TCP and bound UDP sockets are read.
    Ss,
    /// `ipvsadm -Lnc`: connections, decimal.
    IpvsadmConn,
    /// `/proc/net/ip_vs_conn`: connections, hex.
    IpvsConnProc,
    /// `conntrack -L` or `/proc/net/nf_conntrack` (the analyzer reads both).
    ConntrackEntries,
    /// `conntrack -S`: decimal `cpu=N found=…` rows.
    ConntrackStatCmd,
    /// `/proc/net/stat/nf_conntrack`: hex rows under a header.
    ConntrackStatProc,
    /// `ip link` / `ip -d link` text.
    IpLink,
    /// `ip addr` / `ip -d addr` text (links and their addresses).
    IpAddr,
    IpRoute,
    IpRule,
    IpNeigh,
    /// `ip -j …` of link, addr, route, rule or neigh (told apart by its keys).
    IpJson,
    ResolvConf,
    Sysctl,
    /// `ipset list`: `Name:`/`Type:`/`Header:` blocks with their members.
    IpsetList,
    /// `bridge fdb show` text (`bridge -j fdb` is JSON, read with `ip -j`).
    BridgeFdb,
    /// `dmesg` lines (`[  123.456789] message`), the kernel log the collector keeps.
    Dmesg,
}

impl Kind {
    /// The recogniser's name, as recorded in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Kind::IptablesSave => "iptables-save",
            Kind::NftText => "nft-list-ruleset",
            Kind::NftJson => "nft-json",
            Kind::Ipvs => "ipvs",
            Kind::IpvsadmStats => "ipvsadm-stats",
            Kind::IpvsadmSave => "ipvsadm-save",
            Kind::Ipset => "ipset-save",
            Kind::Ss => "ss",
            Kind::IpvsadmConn => "ipvsadm-conn",
            Kind::IpvsConnProc => "proc-ip_vs_conn",
            Kind::ConntrackEntries => "conntrack-entries",
            Kind::ConntrackStatCmd => "conntrack-S",
            Kind::ConntrackStatProc => "proc-stat-nf_conntrack",
            Kind::IpLink => "ip-link-text",
            Kind::IpAddr => "ip-addr-text",
            Kind::IpRoute => "ip-route-text",
            Kind::IpRule => "ip-rule-text",
            Kind::IpNeigh => "ip-neigh-text",
            Kind::IpJson => "ip-json",
            Kind::ResolvConf => "resolv.conf",
            Kind::Sysctl => "sysctl-a",
            Kind::IpsetList => "ipset-list",
            Kind::BridgeFdb => "bridge-fdb",
            Kind::Dmesg => "dmesg",
        }
    }
}

/// Kinds recognised line by line, in tie-break order.
pub const LINE_KINDS: [Kind; 20] = [
    Kind::IptablesSave,
    Kind::Ss,
    Kind::IpvsadmSave,
    Kind::Ipset,
    Kind::NftText,
    Kind::ConntrackEntries,
    Kind::ConntrackStatCmd,
    Kind::ConntrackStatProc,
    Kind::Ipvs,
    Kind::IpvsadmConn,
    Kind::IpvsConnProc,
    Kind::IpAddr,
    Kind::IpRoute,
    Kind::IpRule,
    Kind::IpNeigh,
    Kind::Sysctl,
    Kind::ResolvConf,
    Kind::IpsetList,
    Kind::BridgeFdb,
    Kind::Dmesg,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    No,
    Weak,
    Strong,
}

/// How every line fits `kind` (nft text is stateful: inside a table every line fits).
pub fn scan(kind: Kind, lines: &[&str]) -> Vec<Fit> {
    if kind == Kind::NftText {
        return scan_nft(lines);
    }
    if kind == Kind::IpsetList {
        return crate::listings::scan_ipset_list(lines);
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut in_ip_block = false;
    for line in lines {
        let fit = match kind {
            Kind::IpAddr | Kind::IpLink => {
                let fit = ip_link_line(line, in_ip_block);
                in_ip_block = fit != Fit::No || (line.trim().is_empty() && in_ip_block);
                fit
            }
            _ => fits(kind, line),
        };
        out.push(fit);
    }
    out
}

fn fits(kind: Kind, line: &str) -> Fit {
    let t = line.trim_end();
    let words: Vec<&str> = t.split_whitespace().collect();
    let first = words.first().copied().unwrap_or("");
    let strong = |b: bool| if b { Fit::Strong } else { Fit::No };
    match kind {
        Kind::IptablesSave => iptables_line(t),
        Kind::ConntrackEntries => {
            if t.starts_with("conntrack v") && t.contains("flow entries") {
                return Fit::Weak;
            }
            let l3 = matches!(first, "ipv4" | "ipv6") && words.len() > 4;
            let l4 = matches!(
                first,
                "tcp" | "udp" | "icmp" | "icmpv6" | "sctp" | "gre" | "dccp" | "udplite" | "unknown"
            ) && words.get(1).is_some_and(|w| w.parse::<u8>().is_ok());
            strong((l3 || l4) && t.contains("src="))
        }
        Kind::ConntrackStatCmd => strong(first.starts_with("cpu=") && t.contains("found=")),
        Kind::ConntrackStatProc => {
            if first == "entries"
                && words.len() >= 5
                && words
                    .iter()
                    .all(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            {
                Fit::Strong
            } else if !words.is_empty()
                && words
                    .iter()
                    .all(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_hexdigit()))
            {
                Fit::Weak
            } else {
                Fit::No
            }
        }
        Kind::Ipvs => ipvs_line(t, &words),
        Kind::Ss => ss_line(&words),
        Kind::IpvsadmSave => strong(
            matches!(first, "-A" | "-a")
                && matches!(
                    words.get(1).copied(),
                    Some("-t" | "-u" | "-f" | "--sctp-service")
                ),
        ),
        Kind::Ipset => strong(
            (first == "create" && words.len() >= 3 && words[2].contains(':'))
                || (first == "add" && words.len() >= 3),
        ),
        Kind::IpvsadmConn => {
            if t.starts_with("IPVS connection entries") || (first == "pro" && t.contains("expire"))
            {
                Fit::Strong
            } else {
                strong(
                    matches!(first, "TCP" | "UDP" | "SCTP")
                        && words.len() >= 6
                        && words[1].contains(':')
                        && words[3].contains(':'),
                )
            }
        }
        Kind::IpvsConnProc => {
            if first == "Pro" && t.contains("FromIP") {
                Fit::Strong
            } else {
                strong(
                    matches!(first, "TCP" | "UDP" | "SCTP")
                        && words.len() >= 9
                        && words[2].len() == 4
                        && words[2].chars().all(|c| c.is_ascii_hexdigit()),
                )
            }
        }
        Kind::IpRoute => route_line(t, &words),
        Kind::BridgeFdb => strong(crate::listings::is_mac(first) && words.get(1) == Some(&"dev")),
        Kind::Dmesg => strong(crate::listings::dmesg_message(t).is_some()),
        Kind::IpRule => {
            let prio = first
                .strip_suffix(':')
                .is_some_and(|p| p.parse::<u32>().is_ok());
            strong(prio && matches!(words.get(1).copied(), Some("from") | Some("not")))
        }
        Kind::IpNeigh => {
            let states = [
                "REACHABLE",
                "STALE",
                "DELAY",
                "PROBE",
                "FAILED",
                "NOARP",
                "PERMANENT",
                "INCOMPLETE",
                "NONE",
            ];
            let ip = first.parse::<std::net::IpAddr>().is_ok();
            let last = words.last().copied().unwrap_or("");
            strong(ip && words.get(1) == Some(&"dev") && states.contains(&last))
        }
        Kind::Sysctl => {
            let Some((key, _)) = t
                .split_once(" = ")
                .or_else(|| t.strip_suffix(" =").map(|k| (k, "")))
            else {
                return if t.starts_with("sysctl: ") {
                    Fit::Weak
                } else {
                    Fit::No
                };
            };
            strong(
                key.contains('.')
                    && !key.contains(' ')
                    && key.starts_with(|c: char| c.is_ascii_lowercase()),
            )
        }
        Kind::ResolvConf => {
            if matches!(
                first,
                "nameserver" | "search" | "domain" | "options" | "sortlist"
            ) && words.len() >= 2
            {
                Fit::Strong
            } else if first.starts_with('#') || first.starts_with(';') {
                Fit::Weak
            } else {
                Fit::No
            }
        }
        _ => Fit::No,
    }
}

fn iptables_line(t: &str) -> Fit {
    if t.starts_with("# Generated by ") && t.contains("tables") || t.starts_with("# Completed on") {
        return Fit::Strong;
    }
    if t.starts_with('#') {
        return Fit::Weak;
    }
    if t == "COMMIT" {
        return Fit::Strong;
    }
    if let Some(table) = t.strip_prefix('*') {
        return if !table.is_empty() && table.chars().all(|c| c.is_ascii_lowercase()) {
            Fit::Strong
        } else {
            Fit::No
        };
    }
    if let Some(rest) = t.strip_prefix(':') {
        let w: Vec<&str> = rest.split_whitespace().collect();
        return if w.len() == 3 && w[2].starts_with('[') && w[2].ends_with(']') {
            Fit::Strong
        } else {
            Fit::No
        };
    }
    let rule = match t.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map(|(_, r)| r).unwrap_or(""),
        None => t,
    };
    // `-A -t VIP` is ipvsadm's save format, not a chain.
    if rule.starts_with("-A -") {
        return Fit::No;
    }
    if ["-A ", "-I ", "-N ", "-X ", "-P ", "-F", "-D "]
        .iter()
        .any(|p| rule.starts_with(p))
    {
        return Fit::Strong;
    }
    Fit::No
}

/// `ss` rows: a listening TCP or bound UDP socket is strong, other sockets and the
/// header are weak (kept in the dump, not read).
fn ss_line(words: &[&str]) -> Fit {
    const NETIDS: [&str; 14] = [
        "tcp", "udp", "u_str", "u_dgr", "u_seq", "nl", "p_raw", "p_dgr", "raw", "icmp6", "mptcp",
        "sctp", "tipc", "xdp",
    ];
    match words {
        ["Netid", "State", ..] => Fit::Weak,
        [netid, state, _, _, local, ..]
            if matches!(*netid, "tcp" | "udp")
                && matches!(*state, "LISTEN" | "UNCONN")
                && local.contains(':') =>
        {
            Fit::Strong
        }
        [netid, _, _, _, _, ..] if NETIDS.contains(netid) => Fit::Weak,
        _ => Fit::No,
    }
}

fn ipvs_line(t: &str, words: &[&str]) -> Fit {
    let first = words.first().copied().unwrap_or("");
    if t.starts_with("IP Virtual Server version") || (first == "Prot" && t.contains("LocalAddress"))
    {
        return Fit::Strong;
    }
    if first == "->" {
        return Fit::Strong;
    }
    if matches!(first, "TCP" | "UDP" | "SCTP" | "FWM")
        && words.len() >= 3
        && !words[1].contains(' ')
    {
        return Fit::Strong;
    }
    Fit::No
}

fn route_line(t: &str, words: &[&str]) -> Fit {
    let first = words.first().copied().unwrap_or("");
    if t.starts_with(char::is_whitespace) && words.first() == Some(&"nexthop") {
        return Fit::Weak;
    }
    let types = [
        "default",
        "local",
        "broadcast",
        "multicast",
        "unreachable",
        "blackhole",
        "prohibit",
        "throw",
        "anycast",
        "unicast",
        "nat",
    ];
    let dst = if types.contains(&first) {
        true
    } else {
        let addr = first.split('/').next().unwrap_or("");
        addr.parse::<std::net::IpAddr>().is_ok()
    };
    let has = |w: &str| words.contains(&w);
    let states = [
        "REACHABLE",
        "STALE",
        "DELAY",
        "PROBE",
        "FAILED",
        "NOARP",
        "PERMANENT",
        "INCOMPLETE",
    ];
    let neigh_like = words.last().is_some_and(|l| states.contains(l));
    if dst
        && !neigh_like
        && (has("dev")
            || has("via")
            || matches!(first, "unreachable" | "blackhole" | "prohibit" | "throw"))
    {
        Fit::Strong
    } else {
        Fit::No
    }
}

/// `N: name: <FLAGS> mtu …` starts a link; indented lines after it belong to it.
fn ip_link_line(line: &str, in_block: bool) -> Fit {
    let t = line.trim_end();
    if let Some((n, rest)) = t.split_once(": ") {
        if n.parse::<u32>().is_ok() && rest.contains(": <") && rest.contains(" mtu ") {
            return Fit::Strong;
        }
    }
    if in_block && line.starts_with(char::is_whitespace) && !t.trim().is_empty() {
        return Fit::Strong;
    }
    Fit::No
}

fn scan_nft(lines: &[&str]) -> Vec<Fit> {
    let mut depth: i64 = 0;
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let t = line.trim();
        let starts = depth == 0 && t.starts_with("table ") && t.ends_with('{');
        if depth > 0 || starts {
            depth += brace_delta(t);
            depth = depth.max(0);
            out.push(Fit::Strong);
        } else {
            out.push(Fit::No);
        }
    }
    out
}

/// `{` minus `}` outside double quotes.
pub fn brace_delta(t: &str) -> i64 {
    let mut quoted = false;
    let mut d = 0;
    for c in t.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' if !quoted => d += 1,
            '}' if !quoted => d -= 1,
            _ => {}
        }
    }
    d
}

/// Whether the last line of a dump is whole (checked when the input ends without a
/// newline, the sign of a paste cut in the middle of a line).
pub fn line_complete(kind: Kind, line: &str) -> bool {
    match kind {
        Kind::IptablesSave => {
            quotes_balanced(line)
                && !line
                    .split_whitespace()
                    .last()
                    .is_some_and(|w| w.starts_with('-'))
        }
        Kind::ConntrackEntries => line.contains(" use=") || line.contains("flow entries"),
        Kind::NftText => quotes_balanced(line),
        _ => true,
    }
}

/// Double quotes balanced, a backslash escaping the next character (iptables-save
/// writes `\"` inside comments).
pub fn quotes_balanced(line: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}
