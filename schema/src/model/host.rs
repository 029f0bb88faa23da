use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Sysctls by full dotted name, values as the kernel prints them (strings).
pub type Sysctls = BTreeMap<String, String>;

/// `host/facts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel_release: String,
    pub kernel_version: String,
    pub machine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub uptime_secs: u64,
    /// Whether the collector ran as root (a non-root capture is partial by design).
    pub collected_as_root: bool,
    #[serde(default)]
    pub kube_proxy: KubeProxyHints,
}

/// What the node suggests about kube-proxy's mode, before any rule is parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KubeProxyHints {
    /// A `kube-ipvs0` link exists in the node netns.
    pub kube_ipvs0: bool,
    /// /proc/net/ip_vs exists.
    pub ip_vs: bool,
    /// Tables listed in /proc/net/ip_tables_names (legacy backend in use).
    #[serde(default)]
    pub legacy_tables: Vec<String>,
    #[serde(default)]
    pub legacy6_tables: Vec<String>,
}

/// `conntrack/sysctl.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConntrackSysctl {
    /// `net.netfilter.nf_conntrack_*` of the node netns (count, max, buckets, timeouts …).
    pub node: Sysctls,
    /// `nf_conntrack_count` per netns id.
    #[serde(default)]
    pub count_by_netns: BTreeMap<String, u64>,
}
