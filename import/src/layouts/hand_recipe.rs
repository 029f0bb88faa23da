//! The hand recipe's capture (scripts/peer-hand-recipe: `capture/node/<file>` and
//! `capture/netns/<name>/<file>`, tar + zstd): what a support engineer runs by hand,
//! `ip -j`, `*-save -c`, `nft -j`, `conntrack -L`, `sysctl net`, resolv.conf. Files
//! are recognised by content; names give the command where content cannot (`ip -j
//! rule` of IPv4). Netns ids are their `/run/netns` names; nsids are inferred from the
//! veth pairs (see `Draft::infer_nsids`).

use crate::assemble::{Draft, ROOT};
use crate::input::Tree;
use crate::layouts::import_file;

/// The path prefix of a hand-recipe capture inside a tree.
pub fn detect(tree: &Tree) -> Option<String> {
    tree.files.keys().find_map(|k| {
        let i = k.find("capture/node/")?;
        Some(k[..i + "capture/".len()].to_string())
    })
}

/// Files the recipe writes and what made them (for the recognisers' hints).
const COMMANDS: [(&str, &str); 12] = [
    ("sockets.txt", "ss -H -ltnu"),
    ("links.json", "ip -d -j link show"),
    ("addrs.json", "ip -j addr show"),
    ("neigh.json", "ip -j neigh show"),
    ("fdb.json", "bridge -j fdb show"),
    ("dmesg.txt", "dmesg"),
    ("rules.json", "ip -j rule show"),
    ("routes.json", "ip -d -j route show table all"),
    ("ip6tables-nft-save.txt", "ip6tables-nft-save -c"),
    ("ip6tables-legacy-save.txt", "ip6tables-legacy-save -c"),
    ("iptables-nft-save.txt", "iptables-nft-save -c"),
    ("iptables-legacy-save.txt", "iptables-legacy-save -c"),
];

/// Files the recipe writes that are no bundle source (said so, not guessed at).
const NOT_SOURCES: [(&str, &str); 1] = [("errors.txt", "the recipe's stderr")];

pub fn import(tree: &Tree, prefix: &str, draft: &mut Draft) -> String {
    for (path, data) in &tree.files {
        let Some(rel) = path.strip_prefix(prefix) else {
            continue;
        };
        let (netns, file) = match rel.split('/').collect::<Vec<_>>().as_slice() {
            ["node", file] => (ROOT.to_string(), file.to_string()),
            ["netns", ns, file] => (ns.to_string(), file.to_string()),
            _ => continue,
        };
        let origin = tree.display(path);
        if let Some((_, why)) = NOT_SOURCES.iter().find(|(f, _)| *f == file) {
            if !data.is_empty() {
                draft.inputs.push(crate::input_record(
                    origin,
                    None,
                    vec![format!("left out: {why}")],
                ));
            }
            continue;
        }
        let hint = COMMANDS.iter().find(|(f, _)| *f == file).map(|(_, c)| *c);
        import_file(&origin, data, &netns, hint, draft);
    }
    "the input was the hand recipe's capture (no host facts)".into()
}
