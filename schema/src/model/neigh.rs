use serde::{Deserialize, Serialize};

/// `netns/<id>/neigh.json`: the neighbour table and, for bridges, the forwarding db.
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
    pub state: String,
}
