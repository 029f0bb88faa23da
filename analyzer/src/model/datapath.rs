//! What the node runs, said from evidence: its CNI, its overlay, what programs its
//! services (kube-proxy's mode and backend, or a replacement) and its pods' IP
//! families. The report header shows it; a check that does not apply to a datapath
//! can ask it.
//!
//! The CNI configuration the runtime uses (`/etc/cni/net.d`, first usable file) names
//! the plugin; without one the node's links do (`cali*` veths, `lxc*` veths beside
//! `cilium_host`, a bridge holding pod veths, `eni*` veths, routed veths). Nothing is
//! named without a fact that says so: `unknown` is an answer.

use super::{Evidence, Model, Proxier};
use serde::Serialize;

/// One thing the node runs, and why netsnap says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named {
    /// `bridge`, `flannel`, `calico`, `iptables (nft backend)` …
    pub name: String,
    /// The fact it comes from, in words (`CNI config 10-flannel.conflist`, `cali* veths`).
    pub from: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Datapath {
    /// The CNI, when something names it.
    pub cni: Option<Named>,
    /// Overlay devices (VXLAN, IPIP, Geneve, WireGuard); empty: none.
    pub overlays: Vec<Named>,
    /// What programs the services: one entry per kube-proxy backend found (two when
    /// both iptables backends hold KUBE rules), a replacement, or none.
    pub service_proxy: Vec<Named>,
    /// `IPv4`, `IPv6` or both, from the pods' addresses.
    pub families: Vec<&'static str>,
}

/// Plugins that chain after the one that makes the pod's interface.
const META_PLUGINS: &[&str] = &[
    "portmap",
    "bandwidth",
    "tuning",
    "firewall",
    "sbr",
    "loopback",
    "vrf",
    "static",
];

impl Datapath {
    pub fn of(model: &Model) -> Datapath {
        Datapath {
            cni: cni_from_config(model).or_else(|| cni_from_links(model)),
            overlays: overlays(model),
            service_proxy: service_proxy(model),
            families: families(model),
        }
    }

    /// One line for a report header.
    pub fn summary(&self) -> String {
        let cni = self.cni.as_ref().map_or("unknown", |c| c.name.as_str());
        let overlay = match self.overlays.is_empty() {
            true => "none".to_string(),
            false => names(&self.overlays),
        };
        let proxy = match self.service_proxy.is_empty() {
            true => "none found".to_string(),
            false => names(&self.service_proxy),
        };
        let families = match self.families.is_empty() {
            true => "no pod addresses".to_string(),
            false => self.families.join(" + "),
        };
        format!("CNI {cni}, overlay {overlay}, services by {proxy}, {families}")
    }
}

fn names(list: &[Named]) -> String {
    list.iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The main plugin of the configuration the runtime uses.
fn cni_from_config(model: &Model) -> Option<Named> {
    let file = &model.cni.files[model.cni.used?];
    let config = file.config.as_ref()?;
    let plugin = config
        .plugins
        .iter()
        .filter_map(|p| p.plugin_type.as_deref())
        .find(|t| !META_PLUGINS.contains(t))?;
    let network = config.name.as_deref().unwrap_or("");
    let name = match plugin {
        "ptp" if network.contains("kindnet") => "kindnet (ptp)".to_string(),
        "cilium-cni" => "cilium".to_string(),
        "weave-net" => "weave".to_string(),
        "aws-cni" => "aws-vpc-cni".to_string(),
        "bridge" => match config.plugins.iter().find_map(|p| p.bridge.as_deref()) {
            Some(br) => format!("bridge ({br})"),
            None => "bridge (cni0)".to_string(),
        },
        "flannel" => flannel_name(config),
        other => other.to_string(),
    };
    Some(Named {
        name,
        from: format!("CNI config {} (the one the runtime uses)", file.file),
        evidence: vec![Evidence::new(
            &file.path,
            None,
            format!("\"type\": \"{plugin}\""),
        )],
    })
}

/// `flannel (BRIDGE)`: flannel's plugin delegates to the bridge plugin (bridge `cni0`
/// unless its `delegate` names one), or `flannel (TYPE)` for another delegate.
fn flannel_name(config: &crate::parse::cni::CniConfig) -> String {
    let delegate = config.plugins.iter().find_map(|p| p.delegate.as_deref());
    match delegate.and_then(|d| d.plugin_type.as_deref()) {
        Some(other) if other != "bridge" => format!("flannel ({other})"),
        _ => {
            let br = delegate.and_then(|d| d.bridge.as_deref()).unwrap_or("cni0");
            format!("flannel ({br})")
        }
    }
}

/// The CNI as the node netns's links show it.
fn cni_from_links(model: &Model) -> Option<Named> {
    let root = model.root()?;
    let links = &root.links.items;
    let evidence_of = |pred: &dyn Fn(&str) -> bool| -> Vec<Evidence> {
        links
            .iter()
            .enumerate()
            .filter(|(_, l)| pred(&l.name))
            .take(3)
            .map(|(i, _)| root.link_evidence(i))
            .collect()
    };
    let found = |name: &str, from: &str, evidence: Vec<Evidence>| {
        (!evidence.is_empty()).then(|| Named {
            name: name.into(),
            from: from.into(),
            evidence,
        })
    };
    if has_root_link(model, "cilium_host") {
        return found(
            "cilium",
            "cilium_host and lxc* veths",
            evidence_of(&|n| n == "cilium_host" || n.starts_with("lxc")),
        );
    }
    let veths = |prefix: &'static str| evidence_of(&move |n: &str| n.starts_with(prefix));
    found("calico", "cali* veths", veths("cali"))
        .or_else(|| found("aws-vpc-cni", "eni* veths", veths("eni")))
        .or_else(|| {
            let weave = model.node.bridges.iter().any(|b| b.name == "weave");
            weave
                .then(|| found("weave", "the weave bridge", evidence_of(&|n| n == "weave")))
                .flatten()
        })
        .or_else(|| {
            let br = model
                .node
                .bridges
                .iter()
                .find(|b| !b.pod_ports.is_empty())?;
            let name = format!("bridge ({})", br.name);
            found(
                &name,
                "a bridge holding pod veths",
                evidence_of(&|n| n == br.name),
            )
        })
        .or_else(|| routed_veths(model))
}

/// Pod veths not enslaved to any bridge, each with a route on the node: a ptp CNI.
fn routed_veths(model: &Model) -> Option<Named> {
    let root = model.root()?;
    let mut evidence = Vec::new();
    for p in &model.pods {
        for i in &p.interfaces {
            let Some((idx, l)) = i.host_ifindex.and_then(|h| root.link(h)) else {
                continue;
            };
            if l.master.is_none() && evidence.len() < 3 {
                evidence.push(root.link_evidence(idx));
            }
        }
    }
    (!evidence.is_empty()).then(|| Named {
        name: "ptp (routed veths)".into(),
        from: "pod veths on no bridge".into(),
        evidence,
    })
}

fn overlays(model: &Model) -> Vec<Named> {
    let Some(root) = model.root() else {
        return Vec::new();
    };
    model
        .node
        .overlays
        .iter()
        .map(|o| {
            let vendor = match o.name.as_str() {
                "flannel.1" => " (flannel)",
                "vxlan.calico" | "vxlan-v6.calico" => " (calico)",
                n if n.starts_with("cilium_") => " (cilium)",
                "weave" | "vxlan-6784" => " (weave)",
                _ => "",
            };
            Named {
                name: format!("{} {}{vendor}", o.kind, o.name),
                from: format!("{} device {}", o.kind, o.name),
                evidence: root
                    .link(o.ifindex)
                    .map(|(i, _)| root.link_evidence(i))
                    .into_iter()
                    .collect(),
            }
        })
        .collect()
}

fn service_proxy(model: &Model) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    fn add(out: &mut Vec<Named>, proxier: Proxier, from: &str, evidence: Option<Evidence>) {
        let name = match proxier {
            Proxier::IptablesNft => "kube-proxy iptables (nft backend)",
            Proxier::IptablesLegacy => "kube-proxy iptables (legacy backend)",
            Proxier::Nftables => "kube-proxy nftables",
            Proxier::Ipvs => "kube-proxy ipvs",
            Proxier::Cilium => "kube-proxy replacement (cilium)",
        };
        if out.iter().all(|n| n.name != name) {
            out.push(Named {
                name: name.into(),
                from: from.into(),
                evidence: evidence.into_iter().collect(),
            });
        }
    }
    // IPVS mode keeps KUBE-SERVICES in iptables too: its virtual servers, or the
    // kube-ipvs0 device holding the VIPs, decide.
    let kube_ipvs0 = model.root().and_then(|r| {
        let (i, _) = r.link_named("kube-ipvs0")?;
        Some(r.link_evidence(i))
    });
    let virtual_server = model
        .ipvs
        .virtual_servers
        .first()
        .map(|s| s.evidence.clone());
    if let Some(ev) = virtual_server.or(kube_ipvs0) {
        add(&mut out, Proxier::Ipvs, "its rules", Some(ev));
    } else {
        for r in model.netfilter.rulesets.iter().filter(|r| r.kube_rules > 0) {
            add(&mut out, r.proxier, "its rules", r.first_kube_rule.clone());
        }
    }
    if let Some(ev) = &model.netfilter.nft_kube_proxy {
        add(&mut out, Proxier::Nftables, "its rules", Some(ev.clone()));
    }
    // Cilium's own listing, when captured, says it load-balances; else a Cilium
    // node without kube-proxy rules must be doing it.
    let listing = model.services.iter().find(|s| s.proxier == Proxier::Cilium);
    if let Some(s) = listing {
        add(
            &mut out,
            Proxier::Cilium,
            "its agent's service listing",
            s.anchor().cloned(),
        );
    } else if out.is_empty() && has_root_link(model, "cilium_host") {
        add(
            &mut out,
            Proxier::Cilium,
            "no kube-proxy rules on a Cilium node",
            None,
        );
    }
    out
}

fn has_root_link(model: &Model, name: &str) -> bool {
    model
        .root()
        .is_some_and(|r| r.links.items.iter().any(|l| l.name == name))
}

fn families(model: &Model) -> Vec<&'static str> {
    let ips = || model.pods.iter().flat_map(|p| &p.ips);
    let mut out = Vec::new();
    if ips().any(|ip| ip.is_ipv4()) {
        out.push("IPv4");
    }
    if ips().any(|ip| ip.is_ipv6()) {
        out.push("IPv6");
    }
    out
}
