//! Facts about the node's netfilter rules that the NF checks need: which backends
//! hold kube rules, the FORWARD policy and its accepts, the masquerade path.

use super::services::Proxier;
use super::Evidence;
use crate::parse::iptables::{MarkOp, Match, Rule, Ruleset, Target};
use serde::Serialize;

/// Chains that CNIs use to accept pod traffic in FORWARD.
const CNI_FORWARD_CHAINS: [&str; 8] = [
    "KUBE-FORWARD",
    "cali-FORWARD",
    "CILIUM_FORWARD",
    "FLANNEL-FWD",
    "CNI-FORWARD",
    "WEAVE-NPC",
    "ANTREA-FORWARD",
    "KUBE-ROUTER-FORWARD",
];

/// The kube-proxy masquerade mark.
const MASQ_MARK: u32 = 0x4000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Netfilter {
    pub rulesets: Vec<RulesetFacts>,
    /// kube-proxy nftables table present (evidence of the table).
    pub nft_kube_proxy: Option<Evidence>,
    /// `masquerade` in the kube-proxy nftables table.
    pub nft_masquerade: Option<Evidence>,
}

/// What one iptables save file says.
#[derive(Debug, Clone, Serialize)]
pub struct RulesetFacts {
    pub path: String,
    pub proxier: Proxier,
    pub ipv6: bool,
    /// Rules in KUBE-* chains or jumping to one.
    pub kube_rules: usize,
    pub first_kube_rule: Option<Evidence>,
    /// `:FORWARD DROP` of the filter table.
    pub forward_policy: Option<(String, Evidence)>,
    /// FORWARD rules that accept pod traffic (ACCEPT or a jump to a CNI/kube chain).
    pub forward_accepts: Vec<Evidence>,
    /// kube-proxy iptables/ipvs mode: the nat table has KUBE-SERVICES.
    pub kube_services_nat: Option<Evidence>,
    /// `-A POSTROUTING … -j KUBE-POSTROUTING`.
    pub postrouting_jump: Option<Evidence>,
    /// `-A KUBE-POSTROUTING … -j MASQUERADE`.
    pub masquerade: Option<Evidence>,
    /// `-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000` (or set-xmark).
    pub mark_masq: Option<Evidence>,
    /// NAT the CNI wrote for one pod address (NF007 looks for those no netns owns).
    pub cni_nat: Vec<CniNat>,
}

/// A CNI nat rule about one pod address: a portmap DNAT to it (`CNI-DN-*`), or the
/// jump of its source into its per-container masquerade chain (bridge `ipMasq`).
#[derive(Debug, Clone, Serialize)]
pub struct CniNat {
    pub ip: std::net::IpAddr,
    pub kind: CniNatKind,
    /// The CNI chain (`CNI-DN-…`, `CNI-…`).
    pub chain: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CniNatKind {
    /// hostPort DNAT to the address.
    Dnat,
    /// Masquerade of traffic from the address.
    Masquerade,
}

impl RulesetFacts {
    pub fn from_ruleset(
        rs: &Ruleset,
        path: &str,
        proxier: Proxier,
        ipv6: bool,
        excerpt: &dyn Fn(usize) -> String,
    ) -> RulesetFacts {
        let ev = |r: &Rule| Evidence::new(path, Some(r.line), excerpt(r.line));
        let mut f = RulesetFacts {
            path: path.to_string(),
            proxier,
            ipv6,
            kube_rules: 0,
            first_kube_rule: None,
            forward_policy: None,
            forward_accepts: Vec::new(),
            kube_services_nat: None,
            postrouting_jump: None,
            masquerade: None,
            mark_masq: None,
            cni_nat: Vec::new(),
        };
        for t in &rs.tables {
            for r in &t.rules {
                let kube = r.chain.starts_with("KUBE-")
                    || r.jump_chain().is_some_and(|c| c.starts_with("KUBE-"));
                if kube {
                    f.kube_rules += 1;
                    if f.first_kube_rule.is_none() {
                        f.first_kube_rule = Some(ev(r));
                    }
                }
            }
        }
        if let Some(filter) = rs.table("filter") {
            if let Some(c) = filter.chain("FORWARD") {
                if let Some(p) = &c.policy {
                    f.forward_policy = Some((
                        p.clone(),
                        Evidence::new(path, Some(c.line), excerpt(c.line)),
                    ));
                }
            }
            for r in filter.rules_in("FORWARD") {
                let accepts = match &r.target {
                    Some(Target::Accept) => true,
                    Some(Target::Chain(c)) => {
                        CNI_FORWARD_CHAINS.iter().any(|k| c.starts_with(k))
                            || c.starts_with("cali-")
                            || c.starts_with("CILIUM")
                    }
                    _ => false,
                };
                if accepts {
                    f.forward_accepts.push(ev(r));
                }
            }
        }
        if let Some(nat) = rs.table("nat") {
            if let Some(c) = nat.chain("KUBE-SERVICES") {
                f.kube_services_nat = Some(Evidence::new(path, Some(c.line), excerpt(c.line)));
            } else if let Some(r) = nat.rules_in("KUBE-SERVICES").next() {
                f.kube_services_nat = Some(ev(r));
            }
            f.postrouting_jump = nat
                .rules_in("POSTROUTING")
                .find(|r| r.jump_chain() == Some("KUBE-POSTROUTING"))
                .map(ev);
            f.masquerade = nat
                .rules_in("KUBE-POSTROUTING")
                .find(|r| matches!(r.target, Some(Target::Masquerade(_))))
                .map(ev);
            f.mark_masq = nat
                .rules_in("KUBE-MARK-MASQ")
                .find(|r| match &r.target {
                    Some(Target::Mark(m)) => {
                        m.value & MASQ_MARK == MASQ_MARK
                            && matches!(m.op, MarkOp::OrMark | MarkOp::SetXmark | MarkOp::SetMark)
                    }
                    _ => false,
                })
                .map(ev);
            f.cni_nat = cni_nat(nat, &ev);
        }
        f
    }

    /// Whether a masquerade rule only applies to marked traffic (kube-proxy's shape).
    pub fn marks_masq(r: &Rule) -> bool {
        r.matches
            .iter()
            .any(|m| matches!(m, Match::Mark(mm) if mm.value & MASQ_MARK != 0))
    }
}

/// The CNI's per-pod nat rules: DNATs in `CNI-*` chains, and jumps matching one source
/// address (`-s IP/32`) into a `CNI-*` chain that masquerades. kube-proxy's own DNATs
/// (KUBE-SEP-*) are endpoints, which SVC002 judges.
fn cni_nat(nat: &crate::parse::iptables::Table, ev: &dyn Fn(&Rule) -> Evidence) -> Vec<CniNat> {
    let mut out = Vec::new();
    for r in &nat.rules {
        if r.chain.starts_with("CNI-") {
            if let Some(Target::Dnat(n)) = &r.target {
                if let Some((ip, _)) = n.endpoint() {
                    out.push(CniNat {
                        ip,
                        kind: CniNatKind::Dnat,
                        chain: r.chain.to_string(),
                        evidence: ev(r),
                    });
                }
            }
        }
        let Some(chain) = r.jump_chain().filter(|c| c.starts_with("CNI-")) else {
            continue;
        };
        let Some(src) = r.source.as_ref().filter(|s| !s.negated) else {
            continue;
        };
        let host = src.value.prefix_len() == src.value.max_prefix_len();
        let masquerades = nat
            .rules_in(chain)
            .any(|c| matches!(c.target, Some(Target::Masquerade(_))));
        if host && masquerades {
            out.push(CniNat {
                ip: src.value.addr(),
                kind: CniNatKind::Masquerade,
                chain: chain.to_string(),
                evidence: ev(r),
            });
        }
    }
    out
}
