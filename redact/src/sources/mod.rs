//! Per-source knowledge: where names are collected from, and how each bundle entry
//! is rewritten. The rule of every registered source is one arm of [`rule`], a `match`
//! on [`SourceId`] without a wildcard: a source added to the registry does not
//! compile here until it has a rule. Paths the registry does not know get
//! [`unknown_rule`], the one place that decides what happens to them.

mod ipset;
mod iptables;
mod ipvs;
mod json;
mod netns;
mod nft;
mod resolv;

use crate::pseudonyms::Pseudonyms;
use crate::text;
use netsnap_schema::registry::{self, SourceId};
use std::io::{self, Write};

/// Text entries are rewritten in line-aligned chunks of about this size, so a large
/// conntrack table never exists twice in memory.
const CHUNK: usize = 1 << 20;

/// Where an entry's names are collected from in phase 1 (every entry is also
/// rewritten with the names collected from all the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// Nothing structured names anything here.
    None,
    /// iptables-save: comments and chain names.
    Iptables,
    /// `ipset save`: entry comments.
    Ipset,
    /// nft JSON: kube-proxy's chain, map and set names, comments.
    Nft,
    /// Pod identities, netns ids, discovery paths, the hostname.
    Identities,
    /// resolv.conf `search`/`domain`.
    Resolv,
}

/// How an entry's bytes are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// Every JSON string rewritten as text, layout kept byte for byte (text rules if
    /// it does not parse).
    Json,
    /// Every address and name, wherever it appears, line by line.
    Text,
    /// `/proc/net/ip_vs`: hex addresses.
    IpVs,
    /// `/proc/net/ip_vs_conn`: hex addresses.
    IpVsConn,
}

/// The rule of one registered source.
pub(crate) fn rule(id: SourceId) -> (Names, Rewrite) {
    use SourceId as S;
    match id {
        S::HostFacts | S::NetnsIndex => (Names::Identities, Rewrite::Json),
        S::HostSysctl
        | S::NetnsLinks
        | S::NetnsAddrs
        | S::NetnsRoutes
        | S::NetnsNeigh
        | S::NetnsSockets
        | S::NetnsSysctl
        | S::ConntrackSysctl => (Names::None, Rewrite::Json),
        S::HostResolvConf | S::HostKubeletResolvConf | S::NetnsResolvConf => {
            (Names::Resolv, Rewrite::Text)
        }
        S::HostKmsg | S::IpvsStats | S::ConntrackEntries | S::ConntrackStat => {
            (Names::None, Rewrite::Text)
        }
        // CNI configuration: subnets, ranges, gateways and routes are addresses the
        // JSON rules map; network and plugin names are the CNI vendor's, not the user's.
        S::HostCni => (Names::None, Rewrite::Json),
        S::IptablesNftSave
        | S::IptablesLegacySave
        | S::Ip6tablesNftSave
        | S::Ip6tablesLegacySave => (Names::Iptables, Rewrite::Text),
        S::NftJson => (Names::Nft, Rewrite::Json),
        S::Ipset => (Names::Ipset, Rewrite::Text),
        S::Ipvs => (Names::None, Rewrite::IpVs),
        S::IpvsConn => (Names::None, Rewrite::IpVsConn),
        // Cilium's service listing names services by `name` and `namespace` (the keys
        // of pod identities); its BPF maps hold only addresses and ids.
        S::CiliumServices => (Names::Identities, Rewrite::Json),
        S::CiliumBpfLb => (Names::None, Rewrite::Json),
        // Raw kernel counters inside JSON strings: interface names and nothing else
        // that names the user; every string is rewritten as text.
        S::CounterSamples => (Names::None, Rewrite::Json),
    }
}

/// The rule of a path no registry entry describes (a newer producer's source): by
/// its look, as before the registry existed. Whatever the rule, every address and
/// every collected name in it is still rewritten: a JSON file by the JSON rules
/// (text rules if it does not parse), anything else as free text; a `*-save.txt`
/// file still gives its iptables comments.
pub(crate) fn unknown_rule(path: &str) -> (Names, Rewrite) {
    let names = if path.ends_with("-save.txt") {
        Names::Iptables
    } else {
        Names::None
    };
    let rewrite = if path.ends_with(".json") {
        Rewrite::Json
    } else {
        Rewrite::Text
    };
    (names, rewrite)
}

fn rule_for(path: &str) -> (Names, Rewrite) {
    match registry::locate(path) {
        Some(found) => rule(found.id),
        None => unknown_rule(path),
    }
}

/// Names from the structured places of one entry (phase 1 of a redaction).
pub(crate) fn collect(path: &str, content: &[u8], found: &mut Vec<String>) {
    // A per-netns file's path names its netns.
    if let Some(id) = registry::locate(path).and_then(|l| l.netns) {
        found.extend(text::words(id.as_bytes()));
    }
    match rule_for(path).0 {
        Names::None => {}
        Names::Iptables => iptables::collect(content, found),
        Names::Ipset => ipset::collect(content, found),
        Names::Nft => nft::collect(content, found),
        Names::Identities => netns::collect(content, found),
        Names::Resolv => resolv::collect(content, found),
    }
}

/// Rewrites one entry's content into `out`.
pub(crate) fn rewrite(
    p: &mut Pseudonyms,
    path: &str,
    content: &[u8],
    out: &mut impl Write,
) -> io::Result<()> {
    let mut buf = Vec::new();
    match rule_for(path).1 {
        Rewrite::IpVs => ipvs::rewrite_ip_vs(p, content, &mut buf),
        Rewrite::IpVsConn => ipvs::rewrite_ip_vs_conn(p, content, &mut buf),
        Rewrite::Json => {
            if !json::rewrite(p, content, &mut buf) {
                // Not JSON after all: still rewrite every address and name in it.
                return rewrite_text(p, content, out);
            }
        }
        Rewrite::Text => return rewrite_text(p, content, out),
    }
    out.write_all(&buf)
}

fn rewrite_text(p: &mut Pseudonyms, content: &[u8], out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK.min(content.len()) + CHUNK / 8);
    let mut rest = content;
    while !rest.is_empty() {
        let cut = if rest.len() <= CHUNK {
            rest.len()
        } else {
            rest[CHUNK..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |k| CHUNK + k + 1)
        };
        buf.clear();
        text::rewrite(p, &rest[..cut], &mut buf);
        out.write_all(&buf)?;
        rest = &rest[cut..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsnap_schema::registry::{Format, SOURCES};

    #[test]
    fn json_rules_for_json_sources_only() {
        for s in SOURCES {
            let (_, rewrite) = rule(s.id);
            let json = matches!(s.format, Format::SchemaJson | Format::ToolJson);
            assert_eq!(rewrite == Rewrite::Json, json, "{}", s.name);
        }
    }

    #[test]
    fn unknown_paths_keep_the_rules_they_had() {
        assert_eq!(unknown_rule("future/x.json"), (Names::None, Rewrite::Json));
        assert_eq!(
            unknown_rule("netfilter/arptables-save.txt"),
            (Names::Iptables, Rewrite::Text)
        );
        assert_eq!(unknown_rule("future/x.txt"), (Names::None, Rewrite::Text));
        assert_eq!(rule_for("host/cni/10-flannel.conflist").1, Rewrite::Json);
    }

    /// Calico's `10-calico.conflist` as the calico-node installer writes it, with the
    /// node's name and a host-local range instead of calico-ipam.
    const CALICO: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "worker-7",
      "mtu": 1440,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.3.0/24", "gateway": "10.244.3.1"}]],
               "routes": [{"dst": "0.0.0.0/0"}, {"dst": "172.16.9.0/24", "gw": "10.244.3.1"}]},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}
  ]
}
"#;

    #[test]
    fn cni_config_addresses_and_known_names_are_rewritten() {
        use crate::{RedactKey, Redactor};
        let mut r = Redactor::new(&RedactKey::from_bytes([9u8; 32]));
        assert!(r.add_name("worker-7"));
        let path = "host/cni/10-calico.conflist";
        let out = r.rewrite_entry(path, CALICO.as_bytes());
        let text = String::from_utf8(out).unwrap();
        for original in ["worker-7", "10.244.3.0/24", "10.244.3.1", "172.16.9.0"] {
            assert!(!text.contains(original), "{original} survived: {text}");
        }
        // Still the same JSON document, with the vendor's words kept.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let plugin = &v["plugins"][0];
        assert_eq!(plugin["type"], "calico");
        assert_eq!(plugin["mtu"], 1440);
        assert_eq!(v["name"], "k8s-pod-network");
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(plugin["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        let subnet = plugin["ipam"]["ranges"][0][0]["subnet"].as_str().unwrap();
        let gateway = plugin["ipam"]["ranges"][0][0]["gateway"].as_str().unwrap();
        // A network stays a network of the same length, and the gateway stays in it.
        let (net, len) = subnet.split_once('/').unwrap();
        assert_eq!(len, "24");
        assert!(net.ends_with(".0"), "{subnet}");
        let prefix = &net[..net.len() - 1];
        assert!(gateway.starts_with(prefix), "{gateway} outside {subnet}");
        assert_eq!(r.rewrite_path(path), path);
    }

    #[test]
    fn cni_file_names_are_rewritten_like_any_name() {
        use crate::{RedactKey, Redactor};
        let mut r = Redactor::new(&RedactKey::from_bytes([9u8; 32]));
        assert!(r.add_name("acme"));
        let redacted = r.rewrite_path("host/cni/10-acme.conflist");
        assert!(redacted.starts_with("host/cni/10-"), "{redacted}");
        assert!(redacted.ends_with(".conflist"), "{redacted}");
        assert!(!redacted.contains("acme"), "{redacted}");
        assert_eq!(
            r.rewrite_path("netns/acme/links.json"),
            format!("netns/{}/links.json", r.rewrite_text("acme"))
        );
    }
}
