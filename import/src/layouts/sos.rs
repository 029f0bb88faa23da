//! An sos report (`sos report`, a directory or its `.tar.xz`): the networking plugin's
//! command outputs under `sos_commands/networking/`, per netns as
//! `ip_netns_exec_<netns>_<command>`, copies of `/proc/net` and `/etc`, and (when the
//! kernel plugin ran) `sysctl -a`. File names say which command made each file; the
//! content is still checked by the recognisers. sos runs in the node's netns: the
//! netns `ip netns` lists without an id and whose links are the node's own is the
//! node itself (its per-netns `iptables-save` is the node's).

use crate::assemble::{Draft, ROOT};
use crate::input::Tree;
use crate::layouts::import_file;
use std::collections::BTreeMap;

/// The path prefix of an sos report inside a tree (`sosreport-host-…/` or empty).
pub fn detect(tree: &Tree) -> Option<String> {
    tree.files.keys().find_map(|k| {
        let i = k.find("sos_commands/networking/")?;
        let prefix = &k[..i];
        (prefix.is_empty() || (prefix.ends_with('/') && !prefix[..prefix.len() - 1].contains('/')))
            .then(|| prefix.to_string())
    })
}

/// Node-level files: (path under the report, `ip` command hint for the recognisers).
const NODE_FILES: [(&str, &str); 17] = [
    ("sos_commands/networking/ss_-peaonmi", "ss -peaonmi"),
    ("sos_commands/networking/ip_-s_-d_link", "ip -s -d link"),
    ("sos_commands/networking/ip_-d_address", "ip -d address"),
    (
        "sos_commands/networking/ip_route_show_table_all",
        "ip route show table all",
    ),
    (
        "sos_commands/networking/ip_-6_route_show_table_all",
        "ip -6 route show table all",
    ),
    ("sos_commands/networking/ip_-4_rule", "ip -4 rule"),
    ("sos_commands/networking/ip_-6_rule", "ip -6 rule"),
    (
        "sos_commands/networking/ip_-s_-s_neigh_show",
        "ip -s -s neigh show",
    ),
    (
        "sos_commands/networking/nft_list_ruleset",
        "nft list ruleset",
    ),
    (
        "sos_commands/firewall_tables/iptables-save",
        "iptables-save",
    ),
    (
        "sos_commands/firewall_tables/ip6tables-save",
        "ip6tables-save",
    ),
    (
        "sos_commands/firewall_tables/nft_-j_list_ruleset",
        "nft -j list ruleset",
    ),
    ("sos_commands/kernel/sysctl_-a", "sysctl -a"),
    ("sos_commands/kernel/dmesg", "dmesg"),
    (
        "sos_commands/networking/bridge_-s_-s_-d_-t_fdb_show",
        "bridge -s -s -d -t fdb show",
    ),
    ("etc/resolv.conf", "cat /etc/resolv.conf"),
    (
        "sos_commands/conntrack/conntrack_-L_-o_extended",
        "conntrack -L -o extended",
    ),
];

/// Per-netns commands of the networking plugin: (file suffix, command).
const NETNS_FILES: [(&str, &str); 5] = [
    ("_ss_-peaonmi", "ss -peaonmi"),
    ("_ip_address_show", "ip address show"),
    ("_ip_route_show_table_all", "ip route show table all"),
    ("_iptables-save", "iptables-save"),
    ("_ip6tables-save", "ip6tables-save"),
];

/// `ip netns` output: name → nsid (`None` for a netns without one).
fn netns_list(text: &str) -> BTreeMap<String, Option<i32>> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_string();
            let id = l
                .split_once("(id: ")
                .and_then(|(_, r)| r.trim_end_matches(')').trim().parse().ok());
            Some((name, id))
        })
        .collect()
}

/// The link headers (`N: name…: <…> mtu M`) of an `ip addr`/`ip link` text, to tell
/// the node's own netns among the listed ones.
fn link_headers(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with(char::is_whitespace) && l.contains(": <"))
        .map(|l| l.split(" mtu ").next().unwrap_or(l).to_string())
        .collect()
}

/// Imports the sos report at `prefix` of `tree`; returns what the input was.
pub fn import(tree: &Tree, prefix: &str, draft: &mut Draft) -> String {
    let file = |rel: &str| tree.files.get(&format!("{prefix}{rel}"));
    let text = |rel: &str| file(rel).map(|d| String::from_utf8_lossy(d).into_owned());
    if let Some(h) = text("etc/hostname") {
        draft.hostname = h.trim().to_string();
    }
    if let Some(k) = text("sos_commands/kernel/uname_-a")
        .and_then(|u| u.split_whitespace().nth(2).map(str::to_string))
    {
        draft.kernel = k;
    }
    for (rel, cmd) in NODE_FILES {
        if let Some(data) = file(rel) {
            import_file(
                &tree.display(&format!("{prefix}{rel}")),
                data,
                ROOT,
                Some(cmd),
                draft,
            );
        }
    }
    // /proc/net copies: `proc/<pid>/net/…` (sos resolves /proc/net) or `proc/net/…`.
    for (path, data) in &tree.files {
        let Some(rel) = path.strip_prefix(prefix) else {
            continue;
        };
        let parts: Vec<&str> = rel.split('/').collect();
        let net = match parts.as_slice() {
            ["proc", "net", rest @ ..] => rest.join("/"),
            ["proc", pid, "net", rest @ ..] if pid.chars().all(|c| c.is_ascii_digit()) => {
                rest.join("/")
            }
            _ => continue,
        };
        if matches!(
            net.as_str(),
            "nf_conntrack" | "stat/nf_conntrack" | "ip_vs" | "ip_vs_conn"
        ) {
            import_file(&tree.display(path), data, ROOT, None, draft);
        }
    }
    let netns = text("sos_commands/networking/ip_netns")
        .map(|t| netns_list(&t))
        .unwrap_or_default();
    let node_links = text("sos_commands/networking/ip_-d_address").map(|t| link_headers(&t));
    let per_netns = |name: &str, suffix: &str| {
        file(&format!(
            "sos_commands/networking/ip_netns_exec_{name}{suffix}"
        ))
    };
    for (name, nsid) in &netns {
        let own =
            per_netns(name, "_ip_address_show").map(|d| link_headers(&String::from_utf8_lossy(d)));
        let is_node = nsid.is_none() && own.is_some() && own == node_links;
        let id = if is_node { ROOT } else { name.as_str() };
        if !is_node {
            if let Some(n) = nsid {
                draft.set_nsid(name, *n);
            }
        }
        for (suffix, cmd) in NETNS_FILES {
            let Some(data) = per_netns(name, suffix) else {
                continue;
            };
            let origin = tree.display(&format!(
                "{prefix}sos_commands/networking/ip_netns_exec_{name}{suffix}"
            ));
            if suffix.contains("tables-save") && !is_node {
                // The bundle keeps the node's rules only; a pod netns's own rules are
                // no bundle source.
                draft.inputs.push(crate::input_record(origin, None, vec![format!("the iptables rules of netns {name} are no bundle source (only the node's are); left out")]));
                continue;
            }
            import_file(&origin, data, id, Some(cmd), draft);
        }
    }
    "the input was an sos report (sos 4.0's networking plugin has no per-netns sysctls or resolv.conf, nft as text only (converted) and no legacy iptables-save; the kernel plugin adds sysctl -a)".into()
}
