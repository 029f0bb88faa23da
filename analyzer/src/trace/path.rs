//! What a trace answers: for each way the packet can go, its probability, the hops it
//! took (each citing the bundle line that decided it) and its verdict. This is the
//! shape of `netsnap trace --format json` (see docs/trace-json.md).

use crate::evidence::Evidence;
use serde::Serialize;

/// How a packet's journey ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A socket of the destination took it (and, for a connection, the reply made it
    /// back to the sender).
    Delivered,
    /// It reached the destination netns and nothing listens there (TCP reset, ICMP
    /// port unreachable).
    Refused,
    /// A rule rejected it (REJECT, `reject`): the sender is told.
    Rejected,
    /// Dropped silently (DROP, a policy, a blackhole route, a link down, no neighbour).
    Dropped,
    /// No route (or an `unreachable`/`prohibit` route or rule).
    NoRoute,
    /// It leaves the node (uplink or overlay): the rest of its way is in another bundle.
    LeftNode,
    /// The bundle cannot tell; the reason names what is missing or not understood.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Refused => "refused",
            Verdict::Rejected => "rejected",
            Verdict::Dropped => "dropped",
            Verdict::NoRoute => "no-route",
            Verdict::LeftNode => "left-node",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One step of the journey.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    /// The node the packet is on, in a trace across several bundles (`netsnap trace
    /// A B …`); absent for a single bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The netns the packet is in.
    pub netns: String,
    /// The interface concerned (in, out, or the bridge port), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// Where: `route`, `iptables-nft nat/KUBE-SERVICES`, `bridge cni0`, `socket` …
    pub at: String,
    /// What happened there.
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// One way the packet can go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub probability: f64,
    pub verdict: Verdict,
    /// Why it ended so, in one sentence.
    pub reason: String,
    /// The address and port that took the packet (after NAT), for delivered and
    /// refused branches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The netns (pod `ns/name` when known) where it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_in: Option<String>,
    pub hops: Vec<Hop>,
    /// The address a node NAT chain sent the request to, if one did.
    #[serde(skip)]
    pub dnat_to: Option<std::net::IpAddr>,
    /// A `left-node` branch: the packet as it left, for a trace across nodes to
    /// continue in the bundle of the node it goes to (`trace::cluster`).
    #[serde(skip)]
    pub handoff: Option<std::sync::Arc<super::engine::Handoff>>,
}
