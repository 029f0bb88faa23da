use serde::{Deserialize, Serialize};

/// `netns/<id>/routes.json`: routes of every table, and the policy rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub family: String,
    /// Table id (254 main, 255 local, …).
    pub table: u32,
    /// Destination prefix as `addr/len`; `default` for a zero-length destination.
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefsrc: Option<String>,
    /// unicast, local, broadcast, blackhole, unreachable, …
    pub kind: String,
    /// kernel, boot, static, dhcp, bird, … or the number.
    pub protocol: String,
    /// universe, link, host, … or the number.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// The route's MTU metric (`ip route … mtu N`, RTAX_MTU): packets sent along it
    /// are at most this big whatever the device's MTU (Cilium's tunnel mode sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Next hops of a multipath (ECMP) route; `gateway`/`oif` then hold the first one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multipath: Vec<NextHop>,
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<u32>,
    /// Weight as `ip route` prints it (kernel hops + 1).
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub family: String,
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// The mask the mark is compared under (`fwmark M/MASK`); the kernel reports it
    /// whenever a mark is set (all ones for a plain `fwmark M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmask: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    pub table: u32,
    /// to_tbl, blackhole, unreachable, prohibit, nop, goto.
    pub action: String,
}
