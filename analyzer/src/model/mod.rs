//! The node model: what the bundle says the node looks like, in the analyzer's own
//! terms (netns, pods, node, services, netfilter facts, conntrack, DNS, kernel log).
//!
//! Built from the parsed sources ([`crate::sources`]) by [`build()`]; checks read only
//! this and the graph. Every fact that a finding may cite keeps its [`Evidence`].

pub mod build;
mod build_text;
pub mod cilium;
pub mod conntrack;
pub mod datapath;
pub mod dns;
pub mod iptables;
pub mod ipvs;
pub mod net;
pub mod netfilter;
pub mod netns;
pub mod nft;
pub mod node;
pub mod services;

pub use crate::evidence::Evidence;
pub use build::build;
pub use conntrack::{Conntrack, DnatFlows, SnatFlows};
pub use dns::{Dns, Resolv};
pub use netfilter::{Netfilter, RulesetFacts};
pub use netns::{Netns, Pod, Table};
pub use node::Node;
pub use services::{Endpoint, Frontend, FrontendKind, Protocol, Proxier, Service, ServiceName};

use crate::parse::Coverage;
use netsnap_schema::registry::SourceId;
use netsnap_schema::SourceRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the checks need to know about one bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Model {
    pub hostname: String,
    pub kernel: String,
    pub captured_at: String,
    /// Every netns by id (sorted).
    pub netns: BTreeMap<String, Netns>,
    /// Pods, sorted by netns id.
    pub pods: Vec<Pod>,
    pub node: Node,
    /// Services, sorted by (name, protocol, proxier).
    pub services: Vec<Service>,
    pub netfilter: Netfilter,
    pub ipvs: ipvs::Ipvs,
    pub conntrack: Conntrack,
    pub dns: Dns,
    /// Kernel log lines that matter (conntrack table full …).
    pub kernel_log: Vec<KernelLogLine>,
    /// The node's CNI configuration files and which one the runtime uses.
    pub cni: crate::parse::cni::CniConfigs,
    /// What the node runs (CNI, overlay, service proxy, IP families).
    pub datapath: datapath::Datapath,
    /// Processes whose netns the collector could not inspect (permission denied), with
    /// their cgroup path (`netns/index.json` `inaccessible`; older bundles record only
    /// their count, in the index record's error: BND001 then cannot tell pods apart).
    #[serde(skip)]
    pub inaccessible: Vec<InaccessibleProcess>,
    /// The manifest's source records.
    #[serde(skip)]
    pub sources: Vec<SourceRecord>,
    /// What each parser understood.
    #[serde(skip)]
    pub coverage: Vec<Coverage>,
}

/// A process whose netns could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InaccessibleProcess {
    pub pid: u32,
    /// `/proc/<pid>/cgroup` as read by the collector, when it recorded it.
    pub cgroup: Option<String>,
}

impl InaccessibleProcess {
    /// Whether the process could be a pod's: its cgroup is under kubelet's pod
    /// hierarchy (`kubepods…`, `…pod<uid>…`).
    pub fn could_be_pod(&self) -> bool {
        self.cgroup.as_deref().is_some_and(|c| {
            c.contains("kubepods")
                || c.split(['/', '.', '-', '_']).any(|part| {
                    part.starts_with("pod")
                        && part.len() > 3
                        && part[3..].chars().all(|ch| ch.is_ascii_hexdigit())
                })
        })
    }
}

/// A kernel log line the checks care about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelLogLine {
    pub kind: KernelEvent,
    /// Inode of the netns the kernel names in the message (`in netns N`), if any.
    pub netns_inode: Option<u64>,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelEvent {
    ConntrackTableFull,
    NeighbourTableOverflow,
}

impl Model {
    /// The netns treated as the node (the root one).
    pub fn root(&self) -> Option<&Netns> {
        self.netns.values().find(|n| n.is_root)
    }

    /// The pod living in a netns.
    pub fn pod_in(&self, netns: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.netns == netns)
    }

    /// A sysctl of the node: the node netns' own value first, else the host file's.
    pub fn node_sysctl(&self, key: &str) -> Option<(&str, Evidence)> {
        if let Some(root) = self.root() {
            if let Some(v) = root.sysctl(key) {
                return Some(v);
            }
        }
        self.node
            .sysctls
            .get(key)
            .map(|(v, ev)| (v.as_str(), ev.clone()))
    }

    /// Why the node's sysctls cannot be read from this bundle: neither `host/sysctl`
    /// nor the node netns's `netns/sysctl` was captured (an sos report without its
    /// kernel plugin, `--skip host`); `None` when one of them was. A key absent from a
    /// captured source is a fact (br_netfilter not loaded); absent from a missing one
    /// it is unknown.
    pub fn node_sysctls_missing(&self) -> Option<String> {
        let root = self.root();
        if self.node.sysctls_present || root.is_some_and(|r| !r.sysctls.is_empty()) {
            return None;
        }
        let root_id = root.map(|r| r.id.as_str());
        let host = SourceId::HostSysctl.name();
        let per_netns = SourceId::NetnsSysctl.name();
        let gaps: Vec<String> = self
            .sources
            .iter()
            .filter(|s| {
                (s.name == host && s.netns.is_none())
                    || (s.name == per_netns && root_id.is_some() && s.netns.as_deref() == root_id)
            })
            .map(|s| {
                let why = s
                    .error
                    .as_deref()
                    .or(s.note.as_deref())
                    .unwrap_or("no reason given");
                format!("{} {}: {why}", s.name, s.status.as_str())
            })
            .collect();
        Some(match gaps.is_empty() {
            true => format!("{host} is not in the bundle"),
            false => gaps.join("; "),
        })
    }

    /// How many conntrack entries, pods … the model holds (for summaries).
    pub fn counts(&self) -> Counts {
        Counts {
            netns: self.netns.len(),
            pods: self.pods.len(),
            services: self.services.len(),
            endpoints: self.services.iter().map(|s| s.endpoints.len()).sum(),
            conntrack_entries: self.conntrack.entries,
            sources: self.sources.len(),
        }
    }
}

/// Sizes shown in report summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub netns: usize,
    pub pods: usize,
    pub services: usize,
    pub endpoints: usize,
    pub conntrack_entries: u64,
    pub sources: usize,
}
