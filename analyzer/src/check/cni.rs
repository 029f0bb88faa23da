//! CNI: the node's CNI configuration (`/etc/cni/net.d`) against itself and against the
//! links the plugin made.

use super::{CheckId, Evidence, Facts, Finding, Severity};
use crate::model::net::parse_cidr;
use crate::parse::cni::{CniFile, CniFileKind, CniPlugin};

/// CNI001: the runtime uses the first valid file in lexical order; the others only
/// confuse whoever reads the directory, or win once the first is removed.
pub fn several_configs(ctx: &Facts<'_>) -> Vec<Finding> {
    let cni = &ctx.model.cni;
    let configs: Vec<&CniFile> = cni
        .files
        .iter()
        .filter(|f| f.kind != CniFileKind::Ignored)
        .collect();
    if configs.len() < 2 || cni.in_use().is_some_and(is_meta) {
        return Vec::new();
    }
    let names: Vec<&str> = configs.iter().map(|f| f.file.as_str()).collect();
    let wins = match cni.in_use() {
        Some(f) => format!(
            "the runtime uses {} (the first valid one in lexical order{}) and ignores the rest",
            f.file,
            describe(f)
        ),
        None => "none of them is a valid configuration, so pods get no network".to_string(),
    };
    let evidence = configs.iter().map(|f| {
        let role = if cni.in_use().is_some_and(|u| u.path == f.path) {
            "used by the runtime"
        } else if f.is_usable() {
            "ignored: not the first"
        } else {
            "ignored: not a valid configuration"
        };
        Evidence::new(f.path.clone(), None, format!("{}: {role}", f.file))
    });
    vec![Finding::new(
        CheckId::Cni001,
        Severity::Warning,
        "node",
        format!(
            "{} CNI configurations in /etc/cni/net.d ({}): {wins}.",
            configs.len(),
            names.join(", ")
        ),
    )
    .with_evidence(evidence)]
}

/// A meta plugin (Multus …) wins by design and runs the other files as its delegates.
fn is_meta(f: &CniFile) -> bool {
    let first = f.config.as_ref().and_then(|c| c.plugins.first());
    first
        .and_then(|p| p.plugin_type.as_deref())
        .is_some_and(|t| matches!(t, "multus" | "multus-shim" | "danm" | "genie"))
}

/// `: network N, plugins a, b`.
fn describe(f: &CniFile) -> String {
    let Some(c) = &f.config else {
        return String::new();
    };
    let types: Vec<&str> = c
        .plugins
        .iter()
        .filter_map(|p| p.plugin_type.as_deref())
        .collect();
    format!(
        ": network {}, plugins {}",
        c.name.as_deref().unwrap_or("(unnamed)"),
        types.join(", ")
    )
}

/// The plugin that makes the pod's interface: the first of the list, or what flannel
/// delegates to.
fn main_plugin(f: &CniFile) -> Option<&CniPlugin> {
    let first = f.config.as_ref()?.plugins.first()?;
    Some(first.delegate.as_deref().unwrap_or(first))
}

/// Whether the plugin makes a Linux bridge (the bridge plugin; flannel's delegate is
/// the bridge plugin unless it names another type).
fn is_bridge(f: &CniFile, p: &CniPlugin) -> bool {
    match p.plugin_type.as_deref() {
        Some(t) => t == "bridge",
        None => f
            .config
            .as_ref()
            .and_then(|c| c.plugins.first())
            .is_some_and(|first| first.plugin_type.as_deref() == Some("flannel")),
    }
}

/// CNI002: compares only what the configuration in use sets explicitly.
pub fn config_disagrees_with_links(ctx: &Facts<'_>) -> Vec<Finding> {
    let Some(file) = ctx.model.cni.in_use() else {
        return Vec::new();
    };
    let Some(plugin) = main_plugin(file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let subject = format!("CNI config {}", file.file);
    let cfg = |what: String| Evidence::new(file.path.clone(), None, what);
    if is_bridge(file, plugin) {
        let name = plugin.bridge.as_deref().unwrap_or("cni0");
        let bridges = &ctx.model.node.bridges;
        let pod_bridges: Vec<&str> = bridges
            .iter()
            .filter(|b| !b.pod_ports.is_empty())
            .map(|b| b.name.as_str())
            .collect();
        if !pod_bridges.is_empty() && !pod_bridges.contains(&name) {
            out.push(
                Finding::new(
                    CheckId::Cni002,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "{} names bridge {name}, but the pods hang off {}: new pods go to another bridge than the running ones.",
                        file.file,
                        pod_bridges.join(", ")
                    ),
                )
                .evidence(cfg(format!("bridge {name}"))),
            );
        }
    }
    pod_links(ctx, file, plugin, &subject, &mut out);
    out
}

/// MTU, hairpin and IPAM range against each pod's interface.
fn pod_links(
    ctx: &Facts<'_>,
    file: &CniFile,
    plugin: &CniPlugin,
    subject: &str,
    out: &mut Vec<Finding>,
) {
    let cfg = |what: String| Evidence::new(file.path.clone(), None, what);
    let subnets: Vec<crate::model::net::Cidr> = plugin
        .ipam
        .iter()
        .flat_map(|i| {
            i.subnet
                .iter()
                .chain(i.ranges.iter().flatten().filter_map(|r| r.subnet.as_ref()))
        })
        .filter_map(|s| parse_cidr(s).ok())
        .collect();
    let hairpin = plugin.hairpin_mode == Some(true) && is_bridge(file, plugin);
    let (mut mtu, mut hair, mut outside) = (Vec::new(), Vec::new(), Vec::new());
    let root = ctx.model.root();
    for pod in &ctx.model.pods {
        let Some(ns) = ctx.model.netns.get(&pod.netns) else {
            continue;
        };
        for iface in pod.interfaces.iter().filter(|i| i.name == "eth0") {
            let Some((i, l)) = ns.link(iface.ifindex) else {
                continue;
            };
            // Calico writes `"mtu": 0` for "detect it": only a real value is a claim.
            if plugin.mtu.is_some_and(|m| m != 0 && m != u64::from(l.mtu)) {
                mtu.push((
                    format!("{} ({})", pod.subject(), l.mtu),
                    ns.link_evidence(i),
                ));
            }
            let host = root
                .zip(iface.host_ifindex)
                .and_then(|(r, h)| Some((r, r.link(h)?)));
            if let Some((r, (hi, h))) = host.filter(|_| hairpin) {
                if h.bridge_port.as_ref().is_some_and(|bp| !bp.hairpin) {
                    hair.push((
                        format!("{} ({})", pod.subject(), h.name),
                        r.link_evidence(hi),
                    ));
                }
            }
            for (ai, ip) in ns
                .global_ips()
                .filter(|(ai, _)| ns.addrs.items[*ai].ifindex == iface.ifindex)
            {
                let same_family: Vec<_> = subnets
                    .iter()
                    .filter(|c| c.addr().is_ipv4() == ip.is_ipv4())
                    .collect();
                if !same_family.is_empty() && !same_family.iter().any(|c| c.contains(&ip)) {
                    outside.push((format!("{} ({ip})", pod.subject()), ns.addr_evidence(ai)));
                }
            }
        }
    }
    let subnet_text: Vec<String> = subnets.iter().map(|c| c.to_string()).collect();
    let aspects = [
        (
            mtu,
            format!("mtu {}", plugin.mtu.unwrap_or(0)),
            "the MTU of eth0 differs from the configured",
        ),
        (
            hair,
            "hairpinMode true".to_string(),
            "hairpin is off on the bridge port, while the configuration asks for",
        ),
        (
            outside,
            format!("ipam subnet {}", subnet_text.join(", ")),
            "the pod address is outside the configured",
        ),
    ];
    for (pods, setting, what) in aspects {
        if pods.is_empty() {
            continue;
        }
        let names: Vec<&str> = pods.iter().map(|(n, _)| n.as_str()).collect();
        out.push(
            Finding::new(
                CheckId::Cni002,
                Severity::Warning,
                subject,
                format!(
                    "{what} {setting} of {}: {} ({}).",
                    file.file,
                    if pods.len() == 1 { "1 pod" } else { "pods" },
                    names.join(", ")
                ),
            )
            .evidence(cfg(setting.clone()))
            .with_evidence(pods.into_iter().map(|(_, e)| e)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::faults;
    use super::super::testkit::*;

    /// The healthy node with the CNI configuration that made it.
    fn kit() -> Kit {
        let mut k = healthy();
        set_cni(&mut k, &[("10-flannel.conflist", CNI_BRIDGE)]);
        k
    }

    #[test]
    fn healthy_has_no_cni_finding() {
        assert!(kit().run(&["CNI"]).is_empty());
        // No configuration captured: nothing to compare.
        assert!(healthy().run(&["CNI"]).is_empty());
    }

    #[test]
    fn cni001_several_configs_says_which_wins() {
        let mut k = healthy();
        faults::two_cni_configs(&mut k);
        let f = k.run(&["CNI"]);
        // The winner's range is not the pods': CNI002 says so about the winner.
        assert_eq!(
            ids(&f),
            vec![("CNI001", "node"), ("CNI002", "CNI config 05-old.conf")]
        );
        assert!(
            f[0].message.contains("uses 05-old.conf")
                && f[0].message.contains("10-flannel.conflist"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].evidence.len(), 2);
        // Multus first is how Multus is installed: the others are its delegates.
        let mut k = healthy();
        let multus =
            r#"{"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus-shim"}"#;
        set_cni(
            &mut k,
            &[
                ("00-multus.conf", multus),
                ("10-flannel.conflist", CNI_BRIDGE),
            ],
        );
        assert!(k.run(&["CNI001"]).is_empty());
        // A backup that is not a configuration extension is ignored by the runtime.
        let mut k = healthy();
        set_cni(
            &mut k,
            &[
                ("10-flannel.conflist", CNI_BRIDGE),
                ("10-flannel.conflist.bak", CNI_BRIDGE),
            ],
        );
        assert!(k.run(&["CNI"]).is_empty());
    }

    #[test]
    fn cni002_mtu() {
        let mut k = healthy();
        faults::cni_mtu_differs(&mut k);
        let f = k.run(&["CNI"]);
        assert_eq!(ids(&f), vec![("CNI002", "CNI config 10-flannel.conflist")]);
        assert!(f[0].message.contains("mtu 1500"), "{}", f[0].message);
        // The four pods' eth0 and the config line.
        assert_eq!(f[0].evidence.len(), 5, "{:#?}", f[0].evidence);
        // `"mtu": 0` (Calico: detect it) is no claim.
        let mut k = healthy();
        let text = CNI_BRIDGE.replace("\"mtu\": 1450", "\"mtu\": 0");
        set_cni(&mut k, &[("10-calico.conflist", &text)]);
        assert!(k.run(&["CNI"]).is_empty());
    }

    #[test]
    fn cni002_bridge_hairpin_and_subnet() {
        let subject = "CNI config 10-flannel.conflist";
        let with = |from: &str, to: &str| {
            let mut k = healthy();
            set_cni(
                &mut k,
                &[("10-flannel.conflist", &CNI_BRIDGE.replace(from, to))],
            );
            k
        };
        let mut k = with("\"bridge\": \"cni0\"", "\"bridge\": \"br0\"");
        let f = k.run(&["CNI"]);
        assert_eq!(ids(&f), vec![("CNI002", subject)]);
        assert!(f[0].message.contains("bridge br0"), "{}", f[0].message);
        let mut k = with("10.244.1.0/24", "10.244.2.0/24");
        let f = k.run(&["CNI"]);
        assert_eq!(ids(&f), vec![("CNI002", subject)]);
        assert!(f[0].message.contains("10.244.2.0/24"), "{}", f[0].message);
        // Hairpin off on one port while the configuration asks for it.
        let mut k = healthy();
        faults::hairpin_off(&mut k);
        set_cni(&mut k, &[("10-flannel.conflist", CNI_BRIDGE)]);
        let f = k.run(&["CNI"]);
        assert_eq!(ids(&f), vec![("CNI002", subject)]);
        assert!(
            f[0].message.contains("pod default/web-1"),
            "{}",
            f[0].message
        );
        // Without hairpinMode in the configuration, hairpin is not its business.
        let mut k = healthy();
        faults::hairpin_off(&mut k);
        set_cni(
            &mut k,
            &[(
                "10-flannel.conflist",
                &CNI_BRIDGE.replace("\"hairpinMode\": true,", ""),
            )],
        );
        assert!(k.run(&["CNI"]).is_empty());
    }
}
