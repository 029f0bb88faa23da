//! A `cilium-dbg bugtool` (cilium-bugtool) archive: `cilium-bugtool-<time>-<rand>/cmd/`
//! holds one file per command, named by the command with `/` and ` ` turned into `-`
//! plus `.md` (`ip -d -s l` → `ip--d--s-l.md`), stdout and stderr together, with
//! `--enable-markdown` wrapped as `# <command>` and a fenced block (layout from
//! github.com/cilium/cilium, bugtool/cmd/root.go and configuration.go). Its routes
//! are `ip -4 r`/`ip -6 r` (the main table) plus `ip -4/-6 route show table N` for
//! numbered tables: the local table is missing.

use crate::assemble::{Draft, ROOT};
use crate::input::Tree;
use crate::layouts::import_file;

/// The path prefix of a bugtool tree (up to and including `cmd/`).
pub fn detect(tree: &Tree) -> Option<String> {
    tree.files.keys().find_map(|k| {
        let i = k.find("cmd/")?;
        let top = &k[..i];
        let named = top.is_empty()
            || top
                .trim_end_matches('/')
                .rsplit('/')
                .next()?
                .contains("cilium-bugtool");
        (named
            && k.ends_with(".md")
            && tree
                .files
                .keys()
                .any(|p| p.starts_with(top) && p.ends_with("cmd/ip-a.md")))
        .then(|| k[..i + 4].to_string())
    })
}

/// bugtool's file name of a command.
pub fn file_name(command: &str) -> String {
    format!("{}.md", command.replace('/', " ").replace(' ', "-"))
}

/// Commands of bugtool's default list whose output is a bundle source.
const COMMANDS: [&str; 14] = [
    "ip -d -s l",
    "ip a",
    "ip -4 r",
    "ip -6 r",
    "ip -4 n",
    "ip -6 n",
    "ip rule",
    "iptables-nft-save -c",
    "iptables-legacy-save -c",
    "iptables-save -c",
    "sysctl -a",
    "cat /etc/resolv.conf",
    "cilium-dbg service list -o json",
    "cilium service list -o json",
];

pub fn import(tree: &Tree, prefix: &str, draft: &mut Draft) -> String {
    for command in COMMANDS {
        let path = format!("{prefix}{}", file_name(command));
        let Some(data) = tree.files.get(&path) else {
            continue;
        };
        let origin = tree.display(&path);
        if command.contains("service list") {
            // Kept raw, as the collector keeps `cilium-dbg service list -o json`.
            let mut notes = Vec::new();
            draft.add_raw(
                netsnap_schema::layout::CILIUM_SERVICES,
                data,
                &origin,
                "cilium-service-list",
                &mut notes,
            );
            draft.inputs.push(crate::input_record(
                origin,
                Some("cilium-service-list"),
                notes,
            ));
            continue;
        }
        import_file(&origin, data, ROOT, Some(command), draft);
    }
    // Numbered tables: `ip -4 route show table N`.
    for (path, data) in &tree.files {
        let Some(name) = path.strip_prefix(prefix) else {
            continue;
        };
        for fam in ["4", "6"] {
            if name.starts_with(&format!("ip--{fam}-route-show-table-")) {
                let command = format!("ip -{fam} route show table");
                import_file(&tree.display(path), data, ROOT, Some(&command), draft);
            }
        }
    }
    draft.note_file(ROOT, netsnap_schema::layout::NetnsFile::Routes, "bugtool lists the main table and numbered tables only: the local table (local and broadcast routes) is missing");
    "the input was a cilium bugtool archive (routes of the main and numbered tables only, no netns of pods, sockets, conntrack table, nft or ipvs)".into()
}
