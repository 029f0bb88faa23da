//! Serde types of the structured (JSON) sources of a bundle. Raw kernel and tool text
//! (iptables-save, conntrack, ip_vs …) has no type here: it is kept raw.

mod build;
mod host;
mod link;
mod neigh;
mod netns;
mod route;
mod samples;
mod socket;

pub use host::{ConntrackSysctl, HostFacts, KubeProxyHints, Sysctls};
pub use link::{Addr, BridgeInfo, BridgePort, Link, LinkState, Vxlan};
pub use neigh::{FdbEntry, Neigh, NeighTable};
pub use netns::{
    Discovery, InaccessibleProcess, NetnsEntry, NetnsIndex, PodIdentity, PodIdentitySource,
};
pub use route::{NextHop, Route, RouteTable, Rule};
pub use samples::{CounterSample, CounterSamples, Reading};
pub use socket::{Socket, SocketProto};

/// Address family as it appears in JSON: `inet` / `inet6` / `bridge` / other numbers.
pub type Family = String;
