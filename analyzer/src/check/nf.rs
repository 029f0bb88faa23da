//! NF: netfilter rules and the sysctls that make pod traffic flow through them.

use super::{CheckId, Context, Evidence, Finding, Severity};
use crate::model::netfilter::{CniNat, CniNatKind};
use crate::model::Proxier;
use crate::trace::path::Verdict;

/// Collects what `check` pushes.
fn collect(ctx: &Context<'_>, check: fn(&Context<'_>, &mut Vec<Finding>)) -> Vec<Finding> {
    let mut out = Vec::new();
    check(ctx, &mut out);
    out
}

/// NF001.
pub fn kube_rules_in_both_backends(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, both_backends)
}

/// NF002.
pub fn bridge_nf_call_iptables_off(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, bridge_nf_call)
}

/// NF003.
pub fn forwarding_off(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, forwarding)
}

/// NF004.
pub fn forward_drop_without_accept(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, forward_policy)
}

/// NF005.
pub fn masquerade_path_missing(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, masquerade_path)
}

/// NF006.
pub fn strict_rp_filter(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, rp_filter)
}

/// NF007.
pub fn leaked_cni_rules(ctx: &Context<'_>) -> Vec<Finding> {
    collect(ctx, leaked_cni_nat)
}

fn both_backends(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    for ipv6 in [false, true] {
        let with_kube = |p: Proxier| {
            ctx.model
                .netfilter
                .rulesets
                .iter()
                .find(|r| r.proxier == p && r.ipv6 == ipv6 && r.kube_rules > 0)
        };
        if let (Some(n), Some(l)) = (
            with_kube(Proxier::IptablesNft),
            with_kube(Proxier::IptablesLegacy),
        ) {
            out.push(
                Finding::new(
                    CheckId::Nf001,
                    Severity::Warning,
                    "node",
                    format!(
                        "KUBE-* rules exist in both iptables backends ({} in nft, {} in legacy{}): packets traverse both, and the stale set keeps sending traffic to old endpoints.",
                        n.kube_rules,
                        l.kube_rules,
                        if ipv6 { ", IPv6" } else { "" }
                    ),
                )
                .with_evidence(n.first_kube_rule.clone())
                .with_evidence(l.first_kube_rule.clone()),
            );
        }
    }
}

fn pods_on_bridges<'a>(ctx: &Context<'a>) -> Vec<&'a crate::model::node::Bridge> {
    ctx.model
        .node
        .bridges
        .iter()
        .filter(|b| !b.pod_ports.is_empty())
        .collect()
}

fn bridge_nf_call(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let bridges = pods_on_bridges(ctx);
    if bridges.is_empty() {
        return;
    }
    let names: Vec<&str> = bridges.iter().map(|b| b.name.as_str()).collect();
    let key = "net.bridge.bridge-nf-call-iptables";
    // IPv6 pods' bridged traffic goes through ip6tables (and nft's ip6 tables) only
    // with the IPv6 switch, which br_netfilter has beside the IPv4 one.
    if pods_have_ipv6(ctx) {
        let key6 = "net.bridge.bridge-nf-call-ip6tables";
        let off = ctx.model.node_sysctl(key6).filter(|(v, _)| v.trim() == "0");
        if let Some((_, ev)) = off {
            out.push(
                Finding::new(
                    CheckId::Nf002,
                    Severity::Critical,
                    "node",
                    format!(
                        "{key6} = 0 while IPv6 pods hang off bridge {}: IPv6 traffic between pods on the same bridge bypasses ip6tables, so IPv6 service DNAT replies are not un-NATed.",
                        names.join(", ")
                    ),
                )
                .evidence(ev),
            );
        }
    }
    match ctx.model.node_sysctl(key) {
        Some((v, ev)) if v.trim() == "0" => out.push(
            Finding::new(
                CheckId::Nf002,
                Severity::Critical,
                "node",
                format!(
                    "{key} = 0 while pods hang off bridge {}: traffic between pods on the same bridge bypasses iptables, so service DNAT replies are not un-NATed.",
                    names.join(", ")
                ),
            )
            .evidence(ev),
        ),
        Some(_) => {}
        None => {
            let have_sysctls = ctx.model.node.sysctls_present
                || ctx.model.root().is_some_and(|r| !r.sysctls.is_empty());
            let any_net = ctx.model.node.sysctls.keys().chain(ctx.model.root().map(|r| r.sysctls.keys()).into_iter().flatten()).any(|k| k.starts_with("net.ipv4."));
            if have_sysctls && any_net {
                out.push(
                    Finding::new(
                        CheckId::Nf002,
                        Severity::Warning,
                        "node",
                        format!("{key} is absent (br_netfilter not loaded?) while pods hang off bridge {}: bridged pod traffic bypasses iptables.", names.join(", ")),
                    )
                    .evidence(Evidence::new(
                        netsnap_schema::layout::HOST_SYSCTL,
                        None,
                        format!("no {key}"),
                    ))
                    .remedy("Load br_netfilter (`modprobe br_netfilter`, persist in /etc/modules-load.d) and set net.bridge.bridge-nf-call-iptables=1."),
                );
            }
        }
    }
}

fn forwarding(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.model.pods.is_empty() {
        return;
    }
    let Some(root) = ctx.model.root() else { return };
    for (family, global) in [
        ("ipv4", "net.ipv4.ip_forward"),
        ("ipv6", "net.ipv6.conf.all.forwarding"),
    ] {
        // IPv6 forwarding matters only when pods have IPv6 addresses.
        let pods_use = family == "ipv4" || pods_have_ipv6(ctx);
        if pods_use {
            forwarding_family(ctx, root, family, global, out);
        }
    }
}

fn pods_have_ipv6(ctx: &Context<'_>) -> bool {
    ctx.model.pods.iter().any(|p| {
        ctx.model
            .netns
            .get(&p.netns)
            .is_some_and(|ns| ns.global_ips().any(|(_, ip)| ip.is_ipv6()))
    })
}

/// One family: the node-wide switch off is one fault (turning it off turns off every
/// link's forwarding too), so its links go into that one finding; a link off while the
/// switch is on is its pod's own fault.
fn forwarding_family(
    ctx: &Context<'_>,
    root: &crate::model::Netns,
    family: &str,
    global: &str,
    out: &mut Vec<Finding>,
) {
    let mut links_off: Vec<(String, String, Evidence)> = Vec::new();
    for pod in &ctx.model.pods {
        for i in &pod.interfaces {
            let Some(name) = &i.host_name else { continue };
            if let Some((v, ev)) = root.sysctl(&format!("net.{family}.conf.{name}.forwarding")) {
                if v.trim() == "0" {
                    links_off.push((name.clone(), pod.subject(), ev));
                }
            }
        }
    }
    match ctx.model.node_sysctl(global) {
        Some((v, ev)) if v.trim() == "0" => {
            let mut message = format!(
                "{global} = 0: the node does not route pod traffic (to other nodes, the internet, or through service DNAT to other pods' subnets)."
            );
            if !links_off.is_empty() {
                let names: Vec<String> = links_off
                    .iter()
                    .map(|(n, s, _)| format!("{n} ({s})"))
                    .collect();
                message.push_str(&format!(
                    " Forwarding is off on {} pod-facing link{} as well: {}.",
                    names.len(),
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ));
            }
            out.push(
                Finding::new(CheckId::Nf003, Severity::Critical, "node", message)
                    .evidence(ev)
                    .with_evidence(links_off.into_iter().map(|(_, _, e)| e)),
            );
        }
        _ => {
            for (name, subject, ev) in links_off {
                out.push(
                    Finding::new(
                        CheckId::Nf003,
                        Severity::Critical,
                        subject.clone(),
                        format!("forwarding ({family}) is off on host veth {name} of {subject}: the node does not route its traffic."),
                    )
                    .evidence(ev),
                );
            }
        }
    }
}

/// From the trace engine's pod → service paths: those dropped by the policy of a
/// FORWARD chain (the policy line decides, not whether KUBE-FORWARD exists).
fn forward_policy(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let Some(reach) = ctx.reach else { return };
    // Policy line → (backend label, pods, cells).
    let mut by_policy: std::collections::BTreeMap<
        Evidence,
        (String, std::collections::BTreeSet<&str>, usize),
    > = Default::default();
    // The matrix, and the paths traced as if forwarding were on (masked today by
    // ip_forward or bridge-nf-call-iptables off: NF002/NF003 say so).
    for c in reach.cells.iter().chain(&reach.masked) {
        for f in c.failures() {
            let Some(h) = &f.deciding else { continue };
            let Some(ev) = &h.evidence else { continue };
            let forward =
                h.at.rsplit('/')
                    .next()
                    .is_some_and(|c| c.eq_ignore_ascii_case("forward"));
            if f.verdict == Verdict::Dropped
                && forward
                && h.what.to_ascii_lowercase().starts_with("policy drop")
            {
                let backend = h.at.split(' ').next().unwrap_or("").to_string();
                let e = by_policy
                    .entry(ev.clone())
                    .or_insert((backend, Default::default(), 0));
                e.1.insert(c.pod);
                e.2 += 1;
            }
        }
    }
    for (ev, (backend, pods, cells)) in by_policy {
        out.push(
            Finding::new(
                CheckId::Nf004,
                Severity::Critical,
                "node",
                format!(
                    "the {backend} FORWARD policy is DROP and nothing before it accepts pod traffic: {cells} pod → service path{} from {} pod{} end there (the trace engine followed them).",
                    if cells == 1 { "" } else { "s" },
                    pods.len(),
                    if pods.len() == 1 { "" } else { "s" }
                ),
            )
            .evidence(ev),
        );
    }
}

fn masquerade_path(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    for r in &ctx.model.netfilter.rulesets {
        let Some(anchor) = &r.kube_services_nat else {
            continue;
        };
        let mut missing = Vec::new();
        if r.postrouting_jump.is_none() {
            missing.push("no POSTROUTING → KUBE-POSTROUTING jump");
        }
        if r.masquerade.is_none() {
            missing.push("no MASQUERADE rule in KUBE-POSTROUTING");
        }
        if r.mark_masq.is_none() {
            missing.push("KUBE-MARK-MASQ does not set mark 0x4000");
        }
        if missing.is_empty() {
            continue;
        }
        let mut f = Finding::new(
            CheckId::Nf005,
            Severity::Warning,
            "node",
            format!(
                "kube-proxy's masquerade path is incomplete in {}{}: {}. Service traffic that needs SNAT (off-cluster clients, hairpin) gets no reply.",
                r.proxier.as_str(),
                if r.ipv6 { " (IPv6)" } else { "" },
                missing.join("; ")
            ),
        )
        .evidence(anchor.clone());
        f.evidence.extend(r.postrouting_jump.clone());
        f.evidence.extend(r.masquerade.clone());
        f.evidence.extend(r.mark_masq.clone());
        out.push(f);
    }
    if let (Some(t), None) = (
        &ctx.model.netfilter.nft_kube_proxy,
        &ctx.model.netfilter.nft_masquerade,
    ) {
        out.push(
            Finding::new(
                CheckId::Nf005,
                Severity::Warning,
                "node",
                "the kube-proxy nftables table has no masquerade rule: service traffic that needs SNAT gets no reply.",
            )
            .evidence(t.clone()),
        );
    }
}

fn rp_filter(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let Some(root) = ctx.model.root() else { return };
    if ctx.model.pods.is_empty() {
        return;
    }
    let value = |k: &str| -> Option<(u8, Evidence)> {
        root.sysctl(k)
            .or_else(|| {
                ctx.model
                    .node
                    .sysctls
                    .get(k)
                    .map(|(v, e)| (v.as_str(), e.clone()))
            })
            .and_then(|(v, e)| v.trim().parse().ok().map(|n| (n, e)))
    };
    if let Some((1, ev)) = value("net.ipv4.conf.all.rp_filter") {
        out.push(
            Finding::new(
                CheckId::Nf006,
                Severity::Warning,
                "node",
                "net.ipv4.conf.all.rp_filter = 1 (strict) applies to every pod-facing link: asymmetric pod traffic (multiple uplinks, overlay return paths) is dropped.",
            )
            .evidence(ev),
        );
        return;
    }
    let mut faces: Vec<(String, String)> = Vec::new();
    for pod in &ctx.model.pods {
        for i in &pod.interfaces {
            if let Some(n) = &i.host_name {
                faces.push((n.clone(), pod.subject()));
            }
        }
    }
    for b in ctx
        .model
        .node
        .bridges
        .iter()
        .filter(|b| !b.pod_ports.is_empty())
    {
        faces.push((b.name.clone(), format!("bridge {}", b.name)));
    }
    for (name, subject) in faces {
        if let Some((1, ev)) = value(&format!("net.ipv4.conf.{name}.rp_filter")) {
            out.push(
                Finding::new(
                    CheckId::Nf006,
                    Severity::Warning,
                    subject.clone(),
                    format!("strict reverse-path filtering (rp_filter = 1) on {name} ({subject}): packets whose return route leaves by another link are dropped."),
                )
                .evidence(ev),
            );
        }
    }
}

/// CNI nat rules for a pod address inside this node's pod CIDR that no netns holds:
/// the CNI's DEL did not run. One finding per address, with every rule about it.
fn leaked_cni_nat(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let model = ctx.model;
    // As SVC002: without every netns' addresses, "owned by no netns" cannot be told.
    if model.netns.values().any(|n| !n.addrs.present) || model.node.pod_cidrs.is_empty() {
        return;
    }
    let mut by_ip: std::collections::BTreeMap<std::net::IpAddr, Vec<&CniNat>> = Default::default();
    for r in model.netfilter.rulesets.iter().flat_map(|r| &r.cni_nat) {
        if model.node.in_pod_cidr(r.ip).is_some() && ctx.graph.owners(r.ip).is_empty() {
            by_ip.entry(r.ip).or_default().push(r);
        }
    }
    for (ip, rules) in by_ip {
        let mut what: Vec<String> = rules
            .iter()
            .map(|r| match r.kind {
                CniNatKind::Dnat => format!("a hostPort DNAT to it ({})", r.chain),
                CniNatKind::Masquerade => format!("its masquerade chain {}", r.chain),
            })
            .collect();
        what.dedup();
        let cidr = model
            .node
            .in_pod_cidr(ip)
            .map(|c| c.cidr.to_string())
            .unwrap_or_default();
        out.push(
            Finding::new(
                CheckId::Nf007,
                Severity::Warning,
                format!("ip {ip}"),
                format!(
                    "the CNI's nat rules still name {ip} ({}), which is in this node's pod CIDR {cidr} but held by no netns: the pod is gone and its rules leaked. A new pod given {ip} inherits them; a leaked hostPort DNAT sends that port to whoever holds the address.",
                    what.join(", ")
                ),
            )
            .with_evidence(rules.iter().map(|r| r.evidence.clone())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::model::{Proxier, RulesetFacts};

    fn facts(proxier: Proxier) -> RulesetFacts {
        RulesetFacts {
            path: "netfilter/iptables-nft-save.txt".into(),
            proxier,
            ipv6: false,
            kube_rules: 10,
            first_kube_rule: Some(ev("netfilter/iptables-nft-save.txt")),
            forward_policy: Some(("ACCEPT".into(), ev("x"))),
            forward_accepts: vec![ev("x")],
            kube_services_nat: Some(ev("x")),
            postrouting_jump: Some(ev("x")),
            masquerade: Some(ev("x")),
            mark_masq: Some(ev("x")),
            cni_nat: Vec::new(),
        }
    }

    /// Facts of the node's IPv4 iptables-nft save.
    fn ipv4(k: &mut Kit) -> &mut RulesetFacts {
        let rulesets = &mut k.model().netfilter.rulesets;
        rulesets.iter_mut().find(|r| !r.ipv6).expect("IPv4 rules")
    }

    /// The healthy node, whose iptables-nft save kube-proxy wrote (rulesets[0]).
    fn kit() -> Kit {
        let mut k = healthy();
        assert_eq!(ipv4(&mut k).proxier, Proxier::IptablesNft);
        k
    }

    #[test]
    fn healthy_has_no_nf_finding() {
        assert!(kit().run(&["NF"]).is_empty());
    }

    #[test]
    fn nf001_both_backends() {
        let mut k = kit();
        k.model()
            .netfilter
            .rulesets
            .push(facts(Proxier::IptablesLegacy));
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF001", "node")]);
        // Legacy with only empty chains does not count.
        let mut k = kit();
        let mut l = facts(Proxier::IptablesLegacy);
        l.kube_rules = 0;
        k.model().netfilter.rulesets.push(l);
        assert!(k.run(&["NF"]).is_empty());
    }

    #[test]
    fn nf002_bridge_nf_call() {
        let mut k = kit();
        k.root()
            .sysctls
            .get_mut("net.bridge.bridge-nf-call-iptables")
            .unwrap()
            .0 = "0".into();
        let f = k.run(&["NF"]);
        assert_eq!(ids(&f), vec![("NF002", "node")]);
        assert_eq!(f[0].severity, crate::check::Severity::Critical);
        // br_netfilter not loaded: the key is absent from the node and its netns.
        let key = "net.bridge.bridge-nf-call-iptables";
        let mut k = healthy();
        k.describe(|n| {
            n.sysctls.remove(key);
        });
        k.root().sysctls.remove(key);
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF002", "node")]);
    }

    /// With IPv6 pods on the bridge, the IPv6 switch counts too; without them it does
    /// not.
    #[test]
    fn nf002_bridge_nf_call_ip6tables_with_ipv6_pods() {
        let key = "net.bridge.bridge-nf-call-ip6tables";
        let mut k = kit();
        k.root()
            .sysctls
            .insert(key.into(), ("0".into(), ev("netns/root/sysctl.json")));
        assert!(k.run(&["NF"]).is_empty());
        let web1 = k.pod_ns("web-1");
        let mut a = addr(2, "fd00:10:244:1::11", 64);
        a.family = "inet6".into();
        web1.addrs.items.push(a);
        let f = k.run(&["NF"]);
        assert_eq!(ids(&f), vec![("NF002", "node")]);
        assert!(f[0].message.contains(key), "{}", f[0].message);
        // On, it is healthy.
        k.root().sysctls.get_mut(key).unwrap().0 = "1".into();
        assert!(k.run(&["NF"]).is_empty());
    }

    #[test]
    fn nf003_ip_forward() {
        let mut k = kit();
        k.root().sysctls.get_mut("net.ipv4.ip_forward").unwrap().0 = "0".into();
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF003", "node")]);
    }

    /// Ip_forward = 0 turns every link's forwarding off too: one finding for the node
    /// that names the links, not one per pod.
    #[test]
    fn nf003_ip_forward_off_is_one_finding_listing_links() {
        let mut k = kit();
        let veths: Vec<String> = ["web-1", "web-2", "client", "coredns"]
            .iter()
            .map(|p| k.host_veth(p))
            .collect();
        k.root().sysctls.get_mut("net.ipv4.ip_forward").unwrap().0 = "0".into();
        for v in &veths {
            k.root()
                .sysctls
                .get_mut(&format!("net.ipv4.conf.{v}.forwarding"))
                .expect("fixture writes per-veth forwarding")
                .0 = "0".into();
        }
        let f = k.run(&["NF"]);
        assert_eq!(ids(&f), vec![("NF003", "node")]);
        for v in &veths {
            assert!(f[0].message.contains(v.as_str()), "{}", f[0].message);
            assert!(
                f[0].evidence.iter().any(|e| e.excerpt.contains(v.as_str())),
                "{:#?}",
                f[0].evidence
            );
        }
        // One link off while the node forwards: that pod's own finding.
        let mut k = kit();
        let web1 = k.host_veth("web-1");
        k.root()
            .sysctls
            .get_mut(&format!("net.ipv4.conf.{web1}.forwarding"))
            .unwrap()
            .0 = "0".into();
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF003", "pod default/web-1")]);
    }

    #[test]
    fn nf004_forward_drop() {
        // DROP with the CNI's accept for the pod CIDR: pod traffic passes.
        let mut k = healthy();
        k.describe(|n| {
            n.forward_policy = "DROP";
            n.extra_filter
                .push("-A FORWARD -s 10.244.0.0/16 -j ACCEPT".into());
        });
        assert!(k.run(&["NF004"]).is_empty());
        // Without it, KUBE-FORWARD alone accepts only marked and established traffic:
        // the traced pod → service connections end at the policy.
        let mut k = healthy();
        k.describe(|n| n.forward_policy = "DROP");
        let f = k.run(&["NF"]);
        assert_eq!(ids(&f), vec![("NF004", "node")]);
        assert!(f[0].evidence[0].excerpt.contains(":FORWARD DROP"), "{f:#?}");
    }

    #[test]
    fn nf005_masquerade() {
        let mut k = kit();
        ipv4(&mut k).postrouting_jump = None;
        let f = k.run(&["NF"]);
        assert_eq!(ids(&f), vec![("NF005", "node")]);
        assert!(f[0].message.contains("POSTROUTING"));
        let mut k = healthy();
        k.model().netfilter.nft_kube_proxy = Some(ev("netfilter/nft.json"));
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF005", "node")]);
    }

    #[test]
    fn nf006_rp_filter() {
        let mut k = kit();
        let e = ev("netns/root/sysctl.json");
        let (web1, web2) = (k.host_veth("web-1"), k.host_veth("web-2"));
        k.root().sysctls.insert(
            format!("net.ipv4.conf.{web1}.rp_filter"),
            ("1".into(), e.clone()),
        );
        k.root()
            .sysctls
            .insert(format!("net.ipv4.conf.{web2}.rp_filter"), ("2".into(), e));
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF006", "pod default/web-1")]);
        let mut k = kit();
        k.root()
            .sysctls
            .get_mut("net.ipv4.conf.all.rp_filter")
            .unwrap()
            .0 = "1".into();
        assert_eq!(ids(&k.run(&["NF"])), vec![("NF006", "node")]);
    }

    /// IPv6 forwarding off matters only once pods have IPv6 addresses.
    #[test]
    fn nf003_ipv6_forwarding_with_ipv6_pods() {
        let key = "net.ipv6.conf.all.forwarding";
        let mut k = kit();
        k.root()
            .sysctls
            .insert(key.into(), ("0".into(), ev("netns/root/sysctl.json")));
        assert!(k.run(&["NF"]).is_empty());
        let web1 = k.pod_ns("web-1");
        let mut a = addr(2, "fd00:10:244:1::11", 64);
        a.family = "inet6".into();
        web1.addrs.items.push(a);
        let f = k.run(&["NF"]);
        assert_eq!(ids(&f), vec![("NF003", "node")]);
        assert!(f[0].message.contains(key), "{}", f[0].message);
    }

    #[test]
    fn nf007_leaked_cni_rules() {
        use super::super::faults;
        // A live pod's CNI rules are not leaked.
        let mut k = healthy();
        faults::cni_pod_nat(&mut k, "10.244.1.11", "aaaaaaaaaaaaaaaaaaaaaaaa");
        assert!(k.run(&["NF", "SVC"]).is_empty());
        // A deleted pod's: one finding on its address, citing the jump and the DNAT.
        let mut k = healthy();
        faults::leaked_cni_rules(&mut k);
        let f = k.run(&["NF", "SVC"]);
        assert_eq!(ids(&f), vec![("NF007", "ip 10.244.1.77")]);
        assert_eq!(f[0].evidence.len(), 2, "{:#?}", f[0].evidence);
        assert!(
            f[0].evidence[0].excerpt.contains("-j CNI-1a2b"),
            "{:#?}",
            f[0].evidence
        );
        assert!(f[0].evidence[1]
            .excerpt
            .contains("DNAT --to-destination 10.244.1.77"));
        // A stale service endpoint (kube-proxy's KUBE-SEP DNAT to a gone pod) is
        // SVC002's, not a leaked CNI rule.
        let mut k = healthy();
        k.service(
            "default/old:http",
            "10.96.1.2",
            80,
            crate::model::Protocol::Tcp,
            &[("10.244.1.99", 8080)],
        );
        assert_eq!(
            ids(&k.run(&["NF007", "SVC002"])),
            vec![("SVC002", "service default/old:http")]
        );
    }
}
