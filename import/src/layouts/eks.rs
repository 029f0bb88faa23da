//! The EKS log collector's tree (awslabs/amazon-eks-ami,
//! `log-collector-script/linux/eks-log-collector.sh`: `tar -C /tmp/eks-log-collector .`
//! as `.tar.gz`). Its `networking/` holds `iptables-save`/`ip6tables-save` (no `-c`),
//! `ipvsadm --save` followed by `--rate` and `--stats` listings, `ipset --list` and
//! `--save`, `conntrack -S` and `-L` under `*** Output of … ***` banners, `ip rule`,
//! `ip route show table all` (each also `-6`), resolv.conf; `sysctls/sysctl_all.txt`
//! is `sysctl --all`; `cni/` the node's CNI configuration. It has no `ip addr`/`ip
//! link` (only `ifconfig`), no neighbours, no nft, no pod netns.

use crate::assemble::{Draft, ROOT};
use crate::input::Tree;
use crate::layouts::import_file;

/// The path prefix of an EKS log collector tree inside a tree.
pub fn detect(tree: &Tree) -> Option<String> {
    tree.files.keys().find_map(|k| {
        let prefix = k.strip_suffix("networking/iptables-save.txt")?;
        let has = |d: &str| {
            tree.files
                .keys()
                .any(|p| p.starts_with(&format!("{prefix}{d}")))
        };
        (has("sysctls/") || has("system/")).then(|| prefix.to_string())
    })
}

/// Files read and the commands that made them (hints for the recognisers).
const FILES: [(&str, &str); 13] = [
    ("networking/iptables-save.txt", "iptables-save"),
    ("networking/ip6tables-save.txt", "ip6tables-save"),
    ("networking/ipvsadm.txt", "ipvsadm --save"),
    ("networking/ipset.txt", "ipset --save"),
    ("networking/conntrack.txt", "conntrack -L"),
    ("networking/conntrack6.txt", "conntrack -L -f ipv6"),
    ("networking/iprule.txt", "ip rule show"),
    ("networking/ip6rule.txt", "ip -6 rule show"),
    ("networking/iproute.txt", "ip route show table all"),
    ("networking/ip6route.txt", "ip -6 route show table all"),
    ("networking/resolv.conf", "cat /etc/resolv.conf"),
    ("sysctls/sysctl_all.txt", "sysctl --all"),
    ("networking/ifconfig.txt", "ifconfig"),
];

pub fn import(tree: &Tree, prefix: &str, draft: &mut Draft) -> String {
    for (rel, cmd) in FILES {
        let path = format!("{prefix}{rel}");
        let Some(data) = tree.files.get(&path) else {
            continue;
        };
        if cmd == "ifconfig" {
            let note = "`ifconfig` output is not read: links and addresses stay unavailable (the EKS collector runs no `ip addr`)";
            draft.inputs.push(crate::input_record(
                tree.display(&path),
                None,
                vec![note.into()],
            ));
            continue;
        }
        import_file(&tree.display(&path), data, ROOT, Some(cmd), draft);
    }
    let cni = format!("{prefix}cni/");
    for (path, data) in &tree.files {
        let Some(name) = path.strip_prefix(&cni).filter(|n| !n.contains('/')) else {
            continue;
        };
        let mut notes = Vec::new();
        draft.add_cni_file(name, data, &tree.display(path), &mut notes);
        draft.inputs.push(crate::input_record(
            tree.display(path),
            Some("cni-config"),
            notes,
        ));
    }
    "the input was the EKS log collector's tree (no ip addr/link, neighbours, nft, sockets or pod netns)".into()
}
