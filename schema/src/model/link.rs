use serde::{Deserialize, Serialize};

/// One entry of `netns/<id>/links.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: veth, bridge, vxlan, … ; absent for physical/loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub mtu: u32,
    pub state: LinkState,
    /// IFF_* flags by name (UP, BROADCAST, LOWER_UP, PROMISC …).
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// ifindex of the bridge (or bond) this link is enslaved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex *inside the peer netns*.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer netns id relative to this netns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_netnsid: Option<i32>,
    #[serde(default)]
    pub promiscuity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_port: Option<BridgePort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<Vxlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Up,
    Down,
    Unknown,
    Dormant,
    Lowerlayerdown,
    Notpresent,
    Testing,
}

/// Bridge-wide data of a link of kind `bridge`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BridgeInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp_state: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_filtering: Option<bool>,
}

/// Port data of a link enslaved to a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BridgePort {
    pub hairpin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Vxlan {
    pub id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// ifindex of the underlay device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the device finds where a frame goes, as the kernel reports it (absent in
    /// bundles of collectors that did not record it). `learning`: remote MACs are
    /// learnt from received packets (flannel: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<bool>,
    /// `external` (collect_metadata): a program (Cilium's BPF) sets each packet's
    /// tunnel; the FDB is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// `l2miss` / `l3miss`: a daemon is told of FDB / neighbour misses and fills them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2miss: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3miss: Option<bool>,
    /// `proxy`: ARP requests are answered from the neighbour table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<bool>,
}

/// One entry of `netns/<id>/addrs.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addr {
    pub ifindex: u32,
    /// `inet` or `inet6`.
    pub family: String,
    pub address: String,
    pub prefix_len: u8,
    /// host, link, global, … or the number.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}
