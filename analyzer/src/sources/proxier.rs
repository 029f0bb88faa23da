//! Which proxier programmed a ruleset: known from which source holds it (the
//! iptables backend of a save file, nft, IPVS), so it is decided here, when a source
//! is parsed, and carried on into the model.

use serde::Serialize;

/// Which proxier programmed a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proxier {
    IptablesNft,
    IptablesLegacy,
    Nftables,
    Ipvs,
    /// Cilium's BPF load balancer (its agent's service listing).
    Cilium,
}

impl Proxier {
    pub fn as_str(self) -> &'static str {
        match self {
            Proxier::IptablesNft => "iptables-nft",
            Proxier::IptablesLegacy => "iptables-legacy",
            Proxier::Nftables => "nftables",
            Proxier::Ipvs => "ipvs",
            Proxier::Cilium => "cilium",
        }
    }
}
