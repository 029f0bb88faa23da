//! Resolver configuration: the node's, kubelet's and (in [`super::Netns`]) each pod's.

use super::Evidence;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dns {
    /// `host/resolv.conf`.
    pub host: Option<Resolv>,
    /// The file kubelet hands to pods with dnsPolicy Default (`host/kubelet-resolv.conf`).
    pub kubelet: Option<Resolv>,
}

/// One resolv.conf, with glibc semantics (the last `search`/`domain` line wins).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resolv {
    pub path: String,
    /// Nameservers in file order (all of them, also past the third).
    pub nameservers: Vec<(String, Evidence)>,
    pub search: Vec<String>,
    pub search_evidence: Option<Evidence>,
    pub options: Vec<String>,
}

impl Resolv {
    pub fn nameserver_ips(&self) -> impl Iterator<Item = (std::net::IpAddr, &Evidence)> {
        self.nameservers
            .iter()
            .filter_map(|(n, e)| super::net::parse_ip(n).map(|ip| (ip, e)))
    }

    /// Nameservers on a loopback address (a local stub resolver).
    pub fn loopback_nameservers(&self) -> Vec<(std::net::IpAddr, &Evidence)> {
        self.nameserver_ips()
            .filter(|(ip, _)| ip.is_loopback())
            .collect()
    }
}
