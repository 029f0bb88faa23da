//! The node's rulesets as the engine reads them: every iptables save (one per backend
//! and family) and the native nft ruleset, with the ipsets their rules name. They are
//! moved out of the parsed sources once the model is built (no copy of a ruleset that
//! can hold hundreds of thousands of rules).

use super::iptables::IptablesRuleset;
use super::nft::NftEval;
use super::packet::{Detail, Hook, HookBranch, HookChain, NetnsFacts, Packet, Ruleset};
use crate::model::services::Proxier;
use crate::parse::ipset::IpsetSave;
use crate::parse::iptables;
use crate::parse::nft::NftRuleset;
use crate::sources::Sources;
use std::collections::BTreeSet;

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

impl Firewall {
    /// The rulesets the engine runs, in a fixed order: iptables saves by path, then
    /// native nft. The nft dump also lists iptables-nft's own tables (`ip filter`,
    /// `ip6 nat` …); those run once, from the iptables save, not again from nft.
    pub fn rulesets(&self) -> Vec<Box<dyn Ruleset + Send + Sync + '_>> {
        let mut files: Vec<&IptablesFile> = self.iptables.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut out: Vec<Box<dyn Ruleset + Send + Sync + '_>> = Vec::new();
        let mut owned: BTreeSet<String> = BTreeSet::new();
        for f in files {
            if f.backend == Proxier::IptablesNft {
                let family = if f.ipv6 { "ip6" } else { "ip" };
                owned.extend(
                    f.ruleset
                        .tables
                        .iter()
                        .map(|t| format!("{family} {}", t.name)),
                );
            }
            let index = out.len();
            out.push(Box::new(IptablesRuleset::new(
                f,
                self.ipsets.as_ref(),
                index,
            )));
        }
        if let Some(nft) = &self.nft {
            let index = out.len();
            out.push(Box::new(WithoutTables {
                inner: NftEval::new(nft, index),
                skip: owned,
            }));
        }
        out
    }
}

/// A ruleset minus some tables (another backend runs them).
struct WithoutTables<R> {
    inner: R,
    /// `<family> <table>`.
    skip: BTreeSet<String>,
}

impl<R: Ruleset> Ruleset for WithoutTables<R> {
    fn label(&self) -> String {
        self.inner.label()
    }

    fn hook_chains(&self, hook: Hook, v6: bool) -> Vec<HookChain> {
        let mut chains = self.inner.hook_chains(hook, v6);
        chains.retain(|c| !self.skip.contains(&c.table));
        chains
    }

    fn run(
        &self,
        chain: &HookChain,
        packet: &Packet,
        facts: &NetnsFacts,
        detail: Detail,
    ) -> Vec<HookBranch> {
        self.inner.run(chain, packet, facts, detail)
    }
}
