use serde::{Deserialize, Serialize};

/// `netns/<id>/neigh.json`: the neighbour table and the forwarding db (bridges' and
/// VXLAN devices').
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NeighTable {
    pub neighbours: Vec<Neigh>,
    #[serde(default)]
    pub fdb: Vec<FdbEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neigh {
    pub ifindex: u32,
    pub family: String,
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lladdr: Option<String>,
    /// REACHABLE, STALE, PERMANENT, FAILED, … (several joined by `|`).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbEntry {
    pub ifindex: u32,
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Where a VXLAN device sends frames for `mac` (the remote VTEP's address, NDA_DST):
    /// Flannel's per-peer entry `VTEP MAC -> peer node IP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    pub state: String,
}
