//! The registry of sources: the one declaration of every source a bundle may hold.
//!
//! Each source is one [`SourceId`] variant and one [`SourceSpec`] entry in [`SOURCES`]:
//! its manifest name, its `--only/--skip` group, where it lives in the bundle, its
//! format and which producers write it. Everything else derives from this list: the
//! collector's source table, the analyzer's parse dispatch, redaction's per-format
//! dispatch, the hostile corpus and the fuzz targets. Consumers `match` on
//! [`SourceId`] without a wildcard arm, so a source added here and forgotten by one of
//! them does not compile; tests walk [`SOURCES`] for what a `match` cannot enforce.
//!
//! The spelling of each path stays in [`crate::layout`]; this module says what the
//! paths are.

use crate::layout;

/// Every source, one variant each. Consumers match on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceId {
    HostFacts,
    HostSysctl,
    HostResolvConf,
    HostKubeletResolvConf,
    HostKmsg,
    /// Every file of the node's CNI configuration directory (`/etc/cni/net.d`), raw.
    HostCni,
    NetnsIndex,
    NetnsLinks,
    NetnsAddrs,
    NetnsRoutes,
    NetnsNeigh,
    NetnsSockets,
    NetnsSysctl,
    NetnsResolvConf,
    IptablesNftSave,
    IptablesLegacySave,
    Ip6tablesNftSave,
    Ip6tablesLegacySave,
    NftJson,
    Ipset,
    Ipvs,
    IpvsStats,
    IpvsConn,
    ConntrackEntries,
    ConntrackStat,
    ConntrackSysctl,
    /// `cilium-dbg service list -o json`, when the tool is on the host.
    CiliumServices,
    /// `cilium-dbg bpf lb list -o json`, when the tool is on the host.
    CiliumBpfLb,
    /// Counters read several times during the capture (`--samples`), for rates.
    CounterSamples,
}

/// Where a source's bytes live in a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// One file at this path.
    File(&'static str),
    /// One file per netns: `netns/<id>/<file name>`.
    PerNetns(&'static str),
    /// Any number of files below this directory (`<dir>/<name>`, one level, no `/` in
    /// the name): one per file of the node's directory.
    Dir(&'static str),
}

/// What the bytes are, which decides how redaction and the hostile corpus treat them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON of `schema` types (netlink objects, facts, sysctls).
    SchemaJson,
    /// Another tool's JSON kept as it was (`nft -j`, CNI configuration).
    ToolJson,
    /// Raw text of a kernel file or a tool's output.
    Text,
}

/// Who writes a source into a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// `netsnap-collect` on a node.
    Collector,
    /// `netsnap-scale`, the generator of large bundles.
    Scale,
    /// `netsnap import` (crate `netsnap-import`), from other tools' output.
    Import,
}

/// One registry entry.
#[derive(Debug, Clone, Copy)]
pub struct SourceSpec {
    pub id: SourceId,
    /// Name in the manifest and for `--only/--skip` (`netns/links`, `nft`).
    pub name: &'static str,
    /// `--only/--skip` group: one of [`GROUPS`].
    pub group: &'static str,
    pub location: Location,
    pub format: Format,
    pub producers: &'static [Producer],
    /// One line for `--only list` and the docs.
    pub about: &'static str,
}

/// `--only/--skip` groups, in capture order.
pub const GROUPS: [&str; 7] = [
    "host",
    "netns",
    "netfilter",
    "ipvs",
    "conntrack",
    "cilium",
    "samples",
];

const COLLECTOR: &[Producer] = &[Producer::Collector];
const BOTH: &[Producer] = &[Producer::Collector, Producer::Scale];
const ALL: &[Producer] = &[Producer::Collector, Producer::Scale, Producer::Import];
const COLLECTOR_IMPORT: &[Producer] = &[Producer::Collector, Producer::Import];

macro_rules! source {
    ($id:ident, $name:expr, $group:expr, $loc:expr, $format:ident, $producers:expr, $about:expr) => {
        SourceSpec {
            id: SourceId::$id,
            name: $name,
            group: $group,
            location: $loc,
            format: Format::$format,
            producers: $producers,
            about: $about,
        }
    };
}

use Location::{Dir, File, PerNetns};

/// Every source, in the order the collector lists them.
pub const SOURCES: &[SourceSpec] = &[
    source!(
        HostFacts,
        "host/facts",
        "host",
        File(layout::HOST_FACTS),
        SchemaJson,
        BOTH,
        "uname, boot id, CPUs, memory, uptime, kube-proxy mode hints"
    ),
    source!(
        HostSysctl,
        "host/sysctl",
        "host",
        File(layout::HOST_SYSCTL),
        SchemaJson,
        ALL,
        "net.* sysctls of the root netns"
    ),
    source!(
        HostResolvConf,
        "host/resolv.conf",
        "host",
        File(layout::HOST_RESOLV_CONF),
        Text,
        ALL,
        "the node's resolv.conf"
    ),
    source!(
        HostKubeletResolvConf,
        "host/kubelet-resolv.conf",
        "host",
        File(layout::HOST_KUBELET_RESOLV_CONF),
        Text,
        COLLECTOR,
        "the resolv.conf kubelet hands to pods, when found"
    ),
    source!(
        HostKmsg,
        "host/kmsg",
        "host",
        File(layout::HOST_KMSG),
        Text,
        ALL,
        "kernel log lines about netfilter, conntrack, neighbours, veth, bridge"
    ),
    source!(
        HostCni,
        "host/cni",
        "host",
        Dir(layout::HOST_CNI_DIR),
        ToolJson,
        COLLECTOR_IMPORT,
        "every file of /etc/cni/net.d (kubelet uses the first in lexical order)"
    ),
    source!(
        NetnsIndex,
        "netns/index",
        "netns",
        File(layout::NETNS_INDEX),
        SchemaJson,
        ALL,
        "every netns, how it was found, its pod"
    ),
    source!(
        NetnsLinks,
        "netns/links",
        "netns",
        PerNetns("links.json"),
        SchemaJson,
        ALL,
        "links with kind, state, master, veth peer, bridge-port and vxlan data"
    ),
    source!(
        NetnsAddrs,
        "netns/addrs",
        "netns",
        PerNetns("addrs.json"),
        SchemaJson,
        ALL,
        "addresses"
    ),
    source!(
        NetnsRoutes,
        "netns/routes",
        "netns",
        PerNetns("routes.json"),
        SchemaJson,
        ALL,
        "routes of all tables and ip rules"
    ),
    source!(
        NetnsNeigh,
        "netns/neigh",
        "netns",
        PerNetns("neigh.json"),
        SchemaJson,
        ALL,
        "neighbours and bridge fdb"
    ),
    source!(
        NetnsSockets,
        "netns/sockets",
        "netns",
        PerNetns("sockets.json"),
        SchemaJson,
        ALL,
        "listening TCP and bound UDP sockets"
    ),
    source!(
        NetnsSysctl,
        "netns/sysctl",
        "netns",
        PerNetns("sysctl.json"),
        SchemaJson,
        ALL,
        "per-netns sysctls"
    ),
    source!(
        NetnsResolvConf,
        "netns/resolv.conf",
        "netns",
        PerNetns("resolv.conf"),
        Text,
        ALL,
        "resolv.conf seen by a process of the netns"
    ),
    source!(
        IptablesNftSave,
        "iptables-nft-save",
        "netfilter",
        File(layout::IPTABLES_NFT_SAVE),
        Text,
        ALL,
        "iptables-nft-save -c"
    ),
    source!(
        Ip6tablesNftSave,
        "ip6tables-nft-save",
        "netfilter",
        File(layout::IP6TABLES_NFT_SAVE),
        Text,
        ALL,
        "ip6tables-nft-save -c"
    ),
    source!(
        IptablesLegacySave,
        "iptables-legacy-save",
        "netfilter",
        File(layout::IPTABLES_LEGACY_SAVE),
        Text,
        ALL,
        "iptables-legacy-save -c"
    ),
    source!(
        Ip6tablesLegacySave,
        "ip6tables-legacy-save",
        "netfilter",
        File(layout::IP6TABLES_LEGACY_SAVE),
        Text,
        ALL,
        "ip6tables-legacy-save -c"
    ),
    source!(
        NftJson,
        "nft",
        "netfilter",
        File(layout::NFT_JSON),
        ToolJson,
        ALL,
        "nft -j list ruleset, minus the tables iptables-nft manages"
    ),
    source!(
        Ipset,
        "ipset",
        "netfilter",
        File(layout::IPSET),
        Text,
        ALL,
        "ipset save"
    ),
    source!(
        Ipvs,
        "ipvs",
        "ipvs",
        File(layout::IPVS),
        Text,
        ALL,
        "/proc/net/ip_vs"
    ),
    source!(
        IpvsStats,
        "ipvs/stats",
        "ipvs",
        File(layout::IPVS_STATS),
        Text,
        BOTH,
        "/proc/net/ip_vs_stats"
    ),
    source!(
        IpvsConn,
        "ipvs/conn",
        "ipvs",
        File(layout::IPVS_CONN),
        Text,
        ALL,
        "/proc/net/ip_vs_conn (capped)"
    ),
    source!(
        ConntrackEntries,
        "conntrack/entries",
        "conntrack",
        File(layout::CONNTRACK_ENTRIES),
        Text,
        ALL,
        "conntrack entries of the root netns (capped)"
    ),
    source!(
        ConntrackStat,
        "conntrack/stat",
        "conntrack",
        File(layout::CONNTRACK_STAT),
        Text,
        ALL,
        "/proc/net/stat/nf_conntrack, per CPU"
    ),
    source!(
        ConntrackSysctl,
        "conntrack/sysctl",
        "conntrack",
        File(layout::CONNTRACK_SYSCTL),
        SchemaJson,
        ALL,
        "conntrack count, max, buckets, timeouts, per-netns counts"
    ),
    source!(
        CiliumServices,
        "cilium/services",
        "cilium",
        File(layout::CILIUM_SERVICES),
        ToolJson,
        COLLECTOR_IMPORT,
        "cilium-dbg service list -o json (Cilium's services and backends), when on the host"
    ),
    source!(
        CiliumBpfLb,
        "cilium/bpf-lb",
        "cilium",
        File(layout::CILIUM_BPF_LB),
        ToolJson,
        COLLECTOR,
        "cilium-dbg bpf lb list -o json (its BPF load-balancer maps), when on the host"
    ),
    source!(
        CounterSamples,
        "samples/counters",
        "samples",
        File(layout::COUNTER_SAMPLES),
        SchemaJson,
        COLLECTOR,
        "conntrack stat and count, interface and socket counters read N times (--samples N --interval S), for rates"
    ),
];

impl SourceId {
    /// This source's registry entry.
    pub fn spec(self) -> &'static SourceSpec {
        // Every variant has exactly one entry: `registry_is_complete` holds it.
        SOURCES.iter().find(|s| s.id == self).unwrap_or(&SOURCES[0])
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The one path of a [`Location::File`] source.
    pub fn path(self) -> Option<&'static str> {
        match self.spec().location {
            File(p) => Some(p),
            PerNetns(_) | Dir(_) => None,
        }
    }

    /// `netns/<id>/<file>` of a per-netns source.
    pub fn netns_path(self, netns_id: &str) -> Option<String> {
        match self.spec().location {
            PerNetns(file) => Some(format!("netns/{netns_id}/{file}")),
            File(_) | Dir(_) => None,
        }
    }

    /// `<dir>/<file name>` of a directory source.
    pub fn dir_path(self, file_name: &str) -> Option<String> {
        match self.spec().location {
            Dir(dir) => Some(format!("{dir}/{file_name}")),
            File(_) | PerNetns(_) => None,
        }
    }

    /// The registry entry named `name` (manifest / `--only` name).
    pub fn by_name(name: &str) -> Option<SourceId> {
        SOURCES.iter().find(|s| s.name == name).map(|s| s.id)
    }
}

/// A bundle path recognised as one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located<'p> {
    pub id: SourceId,
    /// The netns id of a per-netns source.
    pub netns: Option<&'p str>,
    /// The file name of a directory source.
    pub file: Option<&'p str>,
}

/// Which source a bundle path holds; `None` for the manifest and unknown paths.
pub fn locate(path: &str) -> Option<Located<'_>> {
    SOURCES.iter().find_map(|s| {
        let found = |netns, file| {
            Some(Located {
                id: s.id,
                netns,
                file,
            })
        };
        match s.location {
            File(p) if p == path => found(None, None),
            PerNetns(file) => {
                let (id, f) = path.strip_prefix("netns/")?.split_once('/')?;
                (f == file && !id.is_empty()).then_some(())?;
                found(Some(id), None)
            }
            Dir(dir) => {
                let name = path.strip_prefix(dir)?.strip_prefix('/')?;
                (!name.is_empty() && !name.contains('/')).then_some(())?;
                found(None, Some(name))
            }
            File(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SourceId; 29] = [
        SourceId::HostFacts,
        SourceId::HostSysctl,
        SourceId::HostResolvConf,
        SourceId::HostKubeletResolvConf,
        SourceId::HostKmsg,
        SourceId::HostCni,
        SourceId::NetnsIndex,
        SourceId::NetnsLinks,
        SourceId::NetnsAddrs,
        SourceId::NetnsRoutes,
        SourceId::NetnsNeigh,
        SourceId::NetnsSockets,
        SourceId::NetnsSysctl,
        SourceId::NetnsResolvConf,
        SourceId::IptablesNftSave,
        SourceId::IptablesLegacySave,
        SourceId::Ip6tablesNftSave,
        SourceId::Ip6tablesLegacySave,
        SourceId::NftJson,
        SourceId::Ipset,
        SourceId::Ipvs,
        SourceId::IpvsStats,
        SourceId::IpvsConn,
        SourceId::ConntrackEntries,
        SourceId::ConntrackStat,
        SourceId::ConntrackSysctl,
        SourceId::CiliumServices,
        SourceId::CiliumBpfLb,
        SourceId::CounterSamples,
    ];

    /// A match without a wildcard: adding a variant breaks this until `ALL` has it.
    fn listed(id: SourceId) -> bool {
        match id {
            SourceId::HostFacts
            | SourceId::HostSysctl
            | SourceId::HostResolvConf
            | SourceId::HostKubeletResolvConf
            | SourceId::HostKmsg
            | SourceId::HostCni
            | SourceId::NetnsIndex
            | SourceId::NetnsLinks
            | SourceId::NetnsAddrs
            | SourceId::NetnsRoutes
            | SourceId::NetnsNeigh
            | SourceId::NetnsSockets
            | SourceId::NetnsSysctl
            | SourceId::NetnsResolvConf
            | SourceId::IptablesNftSave
            | SourceId::IptablesLegacySave
            | SourceId::Ip6tablesNftSave
            | SourceId::Ip6tablesLegacySave
            | SourceId::NftJson
            | SourceId::Ipset
            | SourceId::Ipvs
            | SourceId::IpvsStats
            | SourceId::IpvsConn
            | SourceId::ConntrackEntries
            | SourceId::ConntrackStat
            | SourceId::ConntrackSysctl
            | SourceId::CiliumServices
            | SourceId::CiliumBpfLb
            | SourceId::CounterSamples => ALL.contains(&id),
        }
    }

    #[test]
    fn registry_is_complete() {
        assert_eq!(SOURCES.len(), ALL.len());
        for id in ALL {
            assert!(listed(id));
            assert_eq!(SOURCES.iter().filter(|s| s.id == id).count(), 1, "{id:?}");
            assert_eq!(id.spec().id, id);
            assert_eq!(SourceId::by_name(id.name()), Some(id));
            assert!(GROUPS.contains(&id.spec().group), "{id:?}");
            assert!(!id.spec().about.is_empty());
        }
    }

    #[test]
    fn every_path_locates_to_its_source() {
        for s in SOURCES {
            let (path, netns, file) = match s.location {
                File(p) => (p.to_string(), None, None),
                PerNetns(_) => (s.id.netns_path("pod-7").unwrap(), Some("pod-7"), None),
                Dir(_) => (
                    s.id.dir_path("10-net.conflist").unwrap(),
                    None,
                    Some("10-net.conflist"),
                ),
            };
            assert_eq!(
                locate(&path),
                Some(Located {
                    id: s.id,
                    netns,
                    file
                }),
                "{path}"
            );
        }
        assert_eq!(locate("manifest.json"), None);
        assert_eq!(locate("netns/x/unknown.json"), None);
        assert_eq!(locate("netns//links.json"), None);
        assert_eq!(locate("host/cni/"), None);
        assert_eq!(locate("host/cni/a/b"), None);
    }

    #[test]
    fn per_netns_sources_match_the_layout() {
        for f in layout::NetnsFile::ALL {
            let id =
                SourceId::by_name(f.source_name()).unwrap_or_else(|| panic!("{}", f.source_name()));
            assert_eq!(id.netns_path("n").unwrap(), layout::netns_path("n", f));
        }
    }
}
