//! The node's rulesets as the engine reads them: every iptables save (one per backend
//! and family) and the native nft ruleset, with the ipsets their rules name. They are
//! moved out of the parsed sources once the model is built (no copy of a ruleset that
//! can hold hundreds of thousands of rules).

use crate::model::services::Proxier;
use crate::parse::ipset::IpsetSave;
use crate::parse::iptables;
use crate::parse::nft::NftRuleset;
use crate::sources::Sources;

/// One iptables save file.
#[derive(Debug, Clone)]
pub struct IptablesFile {
    /// Bundle path, e.g. `netfilter/iptables-nft-save.txt`.
    pub path: String,
    /// Which backend wrote it (`IptablesNft` or `IptablesLegacy`).
    pub backend: Proxier,
    pub ipv6: bool,
    pub ruleset: iptables::Ruleset,
}

/// The native nft ruleset (`nft -j list ruleset`).
#[derive(Debug, Clone)]
pub struct NftFile {
    pub path: String,
    pub ruleset: NftRuleset,
}

#[derive(Debug, Clone, Default)]
pub struct Firewall {
    pub iptables: Vec<IptablesFile>,
    pub nft: Option<NftFile>,
    /// `ipset save` of the node, when captured.
    pub ipsets: Option<IpsetSave>,
}

impl Firewall {
    /// Takes the rulesets out of `sources` (call after the model is built).
    pub fn take(sources: &mut Sources<'_>) -> Firewall {
        let iptables = std::mem::take(&mut sources.iptables)
            .into_iter()
            .map(|s| IptablesFile {
                path: s.path,
                backend: s.proxier,
                ipv6: s.ipv6,
                ruleset: s.parsed.model,
            })
            .collect();
        let nft = sources.nft.take().map(|p| NftFile {
            path: p.coverage.path.clone(),
            ruleset: p.model,
        });
        let ipsets = sources.ipset.take().map(|p| p.model);
        Firewall {
            iptables,
            nft,
            ipsets,
        }
    }
}
