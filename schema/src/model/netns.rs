use serde::{Deserialize, Serialize};

/// `netns/index.json`: every network namespace found on the node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetnsIndex {
    pub netns: Vec<NetnsEntry>,
    /// Processes whose netns could not be opened (permission denied), with their
    /// cgroup (readable when the netns link is not): whether one is a pod's. Capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inaccessible: Vec<InaccessibleProcess>,
}

/// A process whose netns the collector could not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InaccessibleProcess {
    pub pid: u32,
    /// `/proc/<pid>/cgroup`, trimmed; absent when it could not be read either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsEntry {
    /// Stable id used in bundle paths: `root`, a /run/netns name, or `ino-<inode>`.
    pub id: String,
    /// Inode of the netns file (identity together with `dev`).
    pub inode: u64,
    pub dev: u64,
    /// True for the netns treated as the node (root netns, or `--node-netns`).
    pub is_root: bool,
    /// Every way this netns was found (a netns is often found several ways).
    pub found_by: Vec<Discovery>,
    /// nsid of this netns as seen from the node netns (`IFLA_LINK_NETNSID` of veths
    /// pointing into it), when one is assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsid: Option<i32>,
    /// Processes living in it (capped); used for pod identity and resolv.conf.
    #[serde(default)]
    pub pids: Vec<u32>,
    /// UTS hostname seen by one of its processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodIdentity>,
}

/// How a netns was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Discovery {
    /// A bind mount under /run/netns or /var/run/netns (name kept).
    RunNetns { path: String },
    /// `/proc/<pid>/ns/net`.
    Proc { pid: u32 },
    /// A container runtime netns directory (e.g. /var/run/docker/netns/…).
    Runtime { path: String },
    /// The collector's own netns or `--node-netns`.
    Node { path: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIdentity {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
    /// Where the identity came from (the first source that gave an answer wins).
    pub source: PodIdentitySource,
    /// Every identity source tried for this netns, in the order tried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tried: Vec<PodIdentitySource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodIdentitySource {
    /// `crictl pods -o json` matched the netns path or a pid.
    Crictl,
    /// Pod uid from the cgroup path, namespace and name from `/var/log/pods`.
    CgroupAndPodLogs,
    /// Pod uid from the cgroup path only.
    Cgroup,
    /// Only the UTS hostname (pods usually have hostname = pod name).
    Hostname,
}
