//! Where each source lives inside a bundle (format v1). Both binaries use these
//! helpers so that a path is spelled in exactly one place.

pub const HOST_FACTS: &str = "host/facts.json";
pub const HOST_SYSCTL: &str = "host/sysctl.json";
pub const HOST_RESOLV_CONF: &str = "host/resolv.conf";
/// The resolv.conf kubelet hands to pods (`resolvConf:` in its config), when found.
pub const HOST_KUBELET_RESOLV_CONF: &str = "host/kubelet-resolv.conf";
pub const HOST_KMSG: &str = "host/kmsg.txt";
/// The node's CNI configuration files, one entry per file: `host/cni/<file name>`.
pub const HOST_CNI_DIR: &str = "host/cni";

pub const NETNS_INDEX: &str = "netns/index.json";

pub const IPTABLES_NFT_SAVE: &str = "netfilter/iptables-nft-save.txt";
pub const IPTABLES_LEGACY_SAVE: &str = "netfilter/iptables-legacy-save.txt";
pub const IP6TABLES_NFT_SAVE: &str = "netfilter/ip6tables-nft-save.txt";
pub const IP6TABLES_LEGACY_SAVE: &str = "netfilter/ip6tables-legacy-save.txt";
pub const NFT_JSON: &str = "netfilter/nft.json";
pub const IPSET: &str = "netfilter/ipset.txt";

pub const IPVS: &str = "ipvs/ip_vs.txt";
pub const IPVS_STATS: &str = "ipvs/ip_vs_stats.txt";
pub const IPVS_CONN: &str = "ipvs/ip_vs_conn.txt";

pub const CONNTRACK_ENTRIES: &str = "conntrack/nf_conntrack.txt";
pub const CONNTRACK_STAT: &str = "conntrack/stat.txt";
pub const CONNTRACK_SYSCTL: &str = "conntrack/sysctl.json";

/// What a Cilium agent says it load-balances (`cilium-dbg service list -o json`).
pub const CILIUM_SERVICES: &str = "cilium/service-list.json";
/// Cilium's BPF load-balancer maps (`cilium-dbg bpf lb list -o json`).
pub const CILIUM_BPF_LB: &str = "cilium/bpf-lb-list.json";

/// Counters read several times during the capture (`netsnap-collect --samples N`).
pub const COUNTER_SAMPLES: &str = "samples/counters.json";

/// Tables that iptables-nft (and ebtables-/arptables-nft) create and manage: the
/// bundle holds them as `*-save` text, and `netfilter/nft.json` leaves them out.
pub fn managed_by_iptables_nft(family: &str, name: &str) -> bool {
    match family {
        "ip" | "ip6" => matches!(name, "filter" | "nat" | "mangle" | "raw" | "security"),
        "arp" => name == "filter",
        "bridge" => matches!(name, "filter" | "nat" | "broute"),
        _ => false,
    }
}

/// Files kept for every netns under `netns/<id>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetnsFile {
    Links,
    Addrs,
    Routes,
    Neigh,
    Sockets,
    Sysctl,
    ResolvConf,
}

impl NetnsFile {
    pub const ALL: [NetnsFile; 7] = [
        NetnsFile::Links,
        NetnsFile::Addrs,
        NetnsFile::Routes,
        NetnsFile::Neigh,
        NetnsFile::Sockets,
        NetnsFile::Sysctl,
        NetnsFile::ResolvConf,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            NetnsFile::Links => "links.json",
            NetnsFile::Addrs => "addrs.json",
            NetnsFile::Routes => "routes.json",
            NetnsFile::Neigh => "neigh.json",
            NetnsFile::Sockets => "sockets.json",
            NetnsFile::Sysctl => "sysctl.json",
            NetnsFile::ResolvConf => "resolv.conf",
        }
    }

    /// Source name recorded in the manifest, e.g. `netns/links`.
    pub fn source_name(self) -> &'static str {
        match self {
            NetnsFile::Links => "netns/links",
            NetnsFile::Addrs => "netns/addrs",
            NetnsFile::Routes => "netns/routes",
            NetnsFile::Neigh => "netns/neigh",
            NetnsFile::Sockets => "netns/sockets",
            NetnsFile::Sysctl => "netns/sysctl",
            NetnsFile::ResolvConf => "netns/resolv.conf",
        }
    }
}

/// `netns/<id>/<file>`.
pub fn netns_path(netns_id: &str, file: NetnsFile) -> String {
    format!("netns/{netns_id}/{}", file.file_name())
}

/// Splits `netns/<id>/<file>` into its id and file, if it is one.
pub fn parse_netns_path(path: &str) -> Option<(&str, NetnsFile)> {
    let rest = path.strip_prefix("netns/")?;
    let (id, file) = rest.split_once('/')?;
    let file = NetnsFile::ALL.into_iter().find(|f| f.file_name() == file)?;
    Some((id, file))
}

/// The suggested bundle file name: `<hostname>-<UTC timestamp>.netsnap.tar.zst`, with
/// the timestamp in a form that is safe in file names (`20261121T174100Z`).
pub fn bundle_file_name(hostname: &str, compact_utc: &str) -> String {
    let safe: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{compact_utc}.netsnap.tar.zst")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_paths_round_trip() {
        for f in NetnsFile::ALL {
            let p = netns_path("pod-7", f);
            assert_eq!(parse_netns_path(&p), Some(("pod-7", f)));
        }
        assert_eq!(parse_netns_path("netns/index.json"), None);
        assert_eq!(parse_netns_path("netns/x/unknown.json"), None);
    }

    #[test]
    fn bundle_name_is_file_safe() {
        assert_eq!(
            bundle_file_name("node/1 a", "20261121T000000Z"),
            "node_1_a-20261121T000000Z.netsnap.tar.zst"
        );
    }
}
