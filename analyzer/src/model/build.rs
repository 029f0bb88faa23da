//! Builds the [`Model`] from parsed [`Sources`]. Independent parts (per-netns data,
//! services of each rules file and the per-service chains within one) are built in
//! parallel; results are assembled in a fixed order so the model never depends on the
//! thread count. Conntrack arrives already aggregated by the parse stage.

use super::net::{cidr, parse_cidr, parse_ip, Cidr};
use super::netns::{Netns, Pod, PodInterface, Table};
use super::node::{Bridge, Node, Overlay, PodCidr, Uplink};
use super::{iptables, netfilter, nft, Evidence, Model};
use crate::sources::{JsonSource, NetnsSources, Sources};
use netsnap_schema::model::{NetnsEntry, Sysctls};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Builds the node model of one bundle. The conntrack aggregates are moved out of
/// `src` into the model rather than copied (on a big node, ~100k first-entry texts).
pub fn build(src: &mut Sources<'_>) -> Model {
    let flows = src.conntrack.take();
    let src: &Sources<'_> = src;
    let m = src.manifest();
    let mut model = Model {
        hostname: m.hostname.clone(),
        kernel: m.kernel.clone(),
        captured_at: m.captured_at.clone(),
        sources: m.sources.clone(),
        coverage: src.coverage.clone(),
        cni: crate::parse::cni::CniConfigs::new(src.cni.clone()),
        ..Model::default()
    };

    model.inaccessible = src
        .netns_index
        .iter()
        .flat_map(|j| &j.value.inaccessible)
        .map(|p| super::InaccessibleProcess {
            pid: p.pid,
            cgroup: p.cgroup.clone(),
        })
        .collect();
    // Netns: index entries plus any netns that only has files.
    let index: Vec<NetnsEntry> = src
        .netns_index
        .as_ref()
        .map(|j| j.value.netns.clone())
        .unwrap_or_default();
    let mut ids: Vec<String> = index.iter().map(|e| e.id.clone()).collect();
    ids.extend(src.netns.keys().cloned());
    ids.sort();
    ids.dedup();
    // The netns (then the topology) and the services and netfilter facts of the
    // rules files read different sources: built side by side (on a big node both are
    // long).
    let (per_file, ()) = rayon::join(
        || rules_files(src),
        || {
            let empty = NetnsSources::default();
            // By id, not a scan per netns: an index can list tens of thousands.
            let by_id: std::collections::HashMap<&str, &NetnsEntry> =
                index.iter().map(|e| (e.id.as_str(), e)).collect();
            let built: Vec<Netns> = ids
                .par_iter()
                .map(|id| {
                    let entry = by_id.get(id.as_str()).copied();
                    netns(id, entry, src.netns.get(id).unwrap_or(&empty), src)
                })
                .collect();
            model.netns = built.into_iter().map(|n| (n.id.clone(), n)).collect();
            model.node = node(&model, src);
            derive_topology(&mut model);
        },
    );
    for (svcs, facts) in per_file {
        model.services.extend(svcs);
        model.netfilter.rulesets.push(facts);
    }
    if let Some(p) = &src.nft {
        let path = netsnap_schema::layout::NFT_JSON;
        model.services.extend(nft::services(&p.model, path));
        model.netfilter.nft_kube_proxy = nft::has_kube_proxy(&p.model)
            .map(|i| Evidence::new(path, Some(i), format!("table {}", nft::TABLE)));
        model.netfilter.nft_masquerade = nft::masquerade_rule(&p.model, path);
    }
    super::build_text::services_ipvs(&mut model, src);
    super::cilium::services(&mut model, src);
    model.services.sort_by(|a, b| {
        (&a.name, a.protocol, a.proxier, &a.key).cmp(&(&b.name, b.protocol, b.proxier, &b.key))
    });

    super::build_text::conntrack(&mut model, src, flows);
    super::build_text::dns(&mut model, src);
    super::build_text::kernel_log(&mut model, src);
    model.datapath = super::datapath::Datapath::of(&model);
    model
}

/// Services and netfilter facts of each iptables save, one task per file (and the
/// two of one file side by side).
fn rules_files(src: &Sources<'_>) -> Vec<(Vec<super::Service>, super::RulesetFacts)> {
    src.iptables
        .par_iter()
        .map(|ipt| {
            let excerpt = src.excerpts(&ipt.path);
            let cited = src.line_excerpts(&ipt.path);
            rayon::join(
                || iptables::services(&ipt.parsed.model, &ipt.path, ipt.proxier, &cited),
                || {
                    netfilter::RulesetFacts::from_ruleset(
                        &ipt.parsed.model,
                        &ipt.path,
                        ipt.proxier,
                        ipt.ipv6,
                        &excerpt,
                    )
                },
            )
        })
        .collect()
}

/// Pods, bridges and pod CIDRs, derived from the netns (also used by hand-built models).
pub fn derive_topology(model: &mut Model) {
    links(model);
    model.pods = pods(model);
    model.node.bridges = bridges(model);
    model.node.pod_cidrs = pod_cidrs(model);
}

fn sysctls(j: &JsonSource<Sysctls>) -> BTreeMap<String, (String, Evidence)> {
    j.value
        .iter()
        .map(|(k, v)| {
            let ev = Evidence::new(&j.path, j.key_lines.get(k).copied(), format!("{k} = {v}"));
            (k.clone(), (v.clone(), ev))
        })
        .collect()
}

fn table<T: Clone>(j: &Option<JsonSource<Vec<T>>>) -> Table<T> {
    match j {
        Some(j) => Table {
            path: j.path.clone(),
            present: true,
            items: j.value.clone(),
            lines: crate::sources::lines::align(&j.item_lines, j.value.len()),
        },
        None => Table::default(),
    }
}

fn netns(id: &str, entry: Option<&NetnsEntry>, s: &NetnsSources, src: &Sources<'_>) -> Netns {
    let mut n = Netns {
        id: id.to_string(),
        is_root: entry.is_some_and(|e| e.is_root),
        inode: entry.map(|e| e.inode).unwrap_or(0),
        nsid: entry.and_then(|e| e.nsid),
        hostname: entry.and_then(|e| e.hostname.clone()),
        pod: entry.and_then(|e| e.pod.clone()),
        links: table(&s.links),
        addrs: table(&s.addrs),
        sockets: table(&s.sockets),
        ..Netns::default()
    };
    if let Some(r) = &s.routes {
        let lines =
            crate::sources::lines::align(&r.item_lines, r.value.routes.len() + r.value.rules.len());
        n.routes = Table {
            path: r.path.clone(),
            present: true,
            items: r.value.routes.clone(),
            lines: lines[..r.value.routes.len()].to_vec(),
        };
        n.rules = r.value.rules.clone();
    }
    if let Some(nb) = &s.neigh {
        let lines = crate::sources::lines::align(
            &nb.item_lines,
            nb.value.neighbours.len() + nb.value.fdb.len(),
        );
        n.neigh = Table {
            path: nb.path.clone(),
            present: true,
            items: nb.value.neighbours.clone(),
            lines: lines[..nb.value.neighbours.len()].to_vec(),
        };
        n.fdb = Table {
            path: nb.path.clone(),
            present: true,
            items: nb.value.fdb.clone(),
            lines: lines[nb.value.neighbours.len()..].to_vec(),
        };
    }
    if let Some(sy) = &s.sysctl {
        n.sysctls = sysctls(sy);
    }
    n.resolv = super::build_text::netns_resolv(id, src);
    n
}

fn node(model: &Model, src: &Sources<'_>) -> Node {
    let mut node = Node {
        netns: model.root().map(|r| r.id.clone()),
        ..Node::default()
    };
    if let Some(h) = &src.host_sysctl {
        node.sysctls = sysctls(h);
        node.sysctls_present = true;
    }
    if let Some(f) = &src.host_facts {
        node.cpus = f.value.cpus;
    }
    node
}

/// Uplinks (default route devices) and overlays (vxlan) of the node netns.
fn links(model: &mut Model) {
    let Some(root) = model.root() else { return };
    let mut node = model.node.clone();
    // Derived anew on every call (the model may be re-derived after a change).
    node.uplinks.clear();
    node.overlays.clear();
    // Uplinks: devices of default routes.
    for r in root.routes.items.iter().filter(|r| r.dst == "default") {
        if let Some((_, l)) = r.oif.and_then(|o| root.link(o)) {
            if !node.uplinks.iter().any(|u| u.ifindex == l.ifindex) {
                node.uplinks.push(Uplink {
                    ifindex: l.ifindex,
                    name: l.name.clone(),
                    mtu: l.mtu,
                });
            }
        }
    }
    // An uplink with only IPv6 addresses carries an IPv6 underlay.
    let uplink_v6 = node.uplinks.first().is_some_and(|u| {
        let ips: Vec<IpAddr> = root
            .global_ips()
            .filter(|(i, _)| root.addrs.items[*i].ifindex == u.ifindex)
            .map(|(_, ip)| ip)
            .collect();
        !ips.is_empty() && ips.iter().all(IpAddr::is_ipv6)
    });
    for (_, l) in root.links.iter() {
        let (v6, underlay) = match (&l.vxlan, l.kind.as_deref()) {
            (Some(x), _) => (
                x.local
                    .as_deref()
                    .and_then(parse_ip)
                    .is_some_and(|a| a.is_ipv6()),
                x.dev.and_then(|d| root.link(d)).map(|(_, u)| u.mtu),
            ),
            // tunl0 exists wherever the ipip module is loaded: only an up tunnel is in use.
            (None, Some("ipip" | "geneve" | "wireguard")) if l.flags.iter().any(|f| f == "UP") => {
                (uplink_v6, None)
            }
            _ => continue,
        };
        let kind = l.kind.clone().unwrap_or_else(|| "vxlan".into());
        let Some(overhead) = overlay_overhead(&kind, v6) else {
            continue;
        };
        let underlay_mtu = underlay.or_else(|| node.uplinks.first().map(|u| u.mtu));
        node.overlays.push(Overlay {
            ifindex: l.ifindex,
            name: l.name.clone(),
            kind,
            mtu: l.mtu,
            overhead,
            underlay_mtu,
        });
    }
    model.node = node;
}

/// Encapsulation overhead in bytes of an overlay kind over an IPv4 (or IPv6) underlay:
/// outer IP + UDP + VXLAN/Geneve header + inner Ethernet; IPIP is one IPv4 header;
/// WireGuard is outer IP + UDP + 32 bytes: 60 over IPv4 (Calico's default pod MTU 1440
/// on a 1500 uplink is right, not a fault), 80 over IPv6.
pub fn overlay_overhead(kind: &str, v6: bool) -> Option<u32> {
    match kind {
        "vxlan" | "geneve" => Some(if v6 { 70 } else { 50 }),
        "ipip" => Some(20),
        "wireguard" => Some(if v6 { 80 } else { 60 }),
        _ => None,
    }
}

/// The (netns id, ifindex) a veth of `ns` points at, resolved through nsids. Only
/// the node netns' nsids are known (index `nsid` is as seen from the node netns), so
/// peers are resolved from the node side; a peer without nsid is in the same netns.
pub fn veth_peer<'m>(
    model: &'m Model,
    ns: &Netns,
    link: &netsnap_schema::model::Link,
) -> Option<(&'m str, u32)> {
    let peer_ifindex = link.link?;
    match link.link_netnsid {
        None => Some((model.netns.get_key_value(&ns.id)?.0.as_str(), peer_ifindex)),
        Some(nsid) if ns.is_root => model
            .netns
            .values()
            .find(|n| n.nsid == Some(nsid) && !n.is_root)
            .map(|n| (n.id.as_str(), peer_ifindex)),
        Some(_) => None,
    }
}

/// Pods: every non-node netns with a pod identity or a veth peer in the node netns.
fn pods(model: &Model) -> Vec<Pod> {
    let Some(root) = model.root() else {
        return Vec::new();
    };
    // (pod netns, pod ifindex) → host link.
    let mut host_side: BTreeMap<(String, u32), (u32, String)> = BTreeMap::new();
    for (_, l) in root
        .links
        .iter()
        .filter(|(_, l)| l.kind.as_deref() == Some("veth"))
    {
        if let Some((peer_ns, peer_if)) = veth_peer(model, root, l) {
            if peer_ns != root.id {
                host_side.insert((peer_ns.to_string(), peer_if), (l.ifindex, l.name.clone()));
            }
        }
    }
    // The netns behind an uplink (the default route's device) is upstream, not a pod.
    let upstream: Vec<&str> = host_side
        .iter()
        .filter(|(_, (host_if, _))| model.node.uplinks.iter().any(|u| u.ifindex == *host_if))
        .map(|((ns, _), _)| ns.as_str())
        .collect();
    let mut out = Vec::new();
    for ns in model.netns.values().filter(|n| !n.is_root) {
        let linked = host_side.keys().any(|(n, _)| n == &ns.id);
        if ns.pod.is_none() && (!linked || upstream.contains(&ns.id.as_str())) {
            continue;
        }
        let interfaces = ns
            .links
            .items
            .iter()
            .filter(|l| l.kind.as_deref() == Some("veth"))
            .map(|l| {
                let host = host_side.get(&(ns.id.clone(), l.ifindex));
                PodInterface {
                    ifindex: l.ifindex,
                    name: l.name.clone(),
                    host_ifindex: host.map(|h| h.0),
                    host_name: host.map(|h| h.1.clone()),
                }
            })
            .collect();
        let pod = ns.pod.as_ref();
        out.push(Pod {
            netns: ns.id.clone(),
            namespace: pod.and_then(|p| p.namespace.clone()),
            name: pod
                .and_then(|p| p.name.clone())
                .or_else(|| ns.hostname.clone().filter(|_| pod.is_some())),
            uid: pod.and_then(|p| p.uid.clone()),
            hostname: ns.hostname.clone(),
            ips: ns.global_ips().map(|(_, ip)| ip).collect(),
            interfaces,
        });
    }
    out
}

/// Bridges of the node netns with the pod veths enslaved to them.
fn bridges(model: &Model) -> Vec<Bridge> {
    let Some(root) = model.root() else {
        return Vec::new();
    };
    let pod_host_ifs: Vec<u32> = model
        .pods
        .iter()
        .flat_map(|p| p.interfaces.iter().filter_map(|i| i.host_ifindex))
        .collect();
    root.links
        .items
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .map(|b| Bridge {
            ifindex: b.ifindex,
            name: b.name.clone(),
            pod_ports: root
                .links
                .items
                .iter()
                .filter(|l| l.master == Some(b.ifindex) && pod_host_ifs.contains(&l.ifindex))
                .map(|l| l.ifindex)
                .collect(),
            promiscuous: b.promiscuity > 0 || b.flags.iter().any(|f| f == "PROMISC"),
        })
        .collect()
}

/// Pod CIDRs: prefixes of bridges that pods hang off, blackhole routes of an IPAM
/// block (Calico), Cilium's route of the router's CIDR via cilium_host, and the host-local ranges of the CNI configuration in use (ptp /
/// kindnet, where no bridge holds the pod subnet).
fn pod_cidrs(model: &Model) -> Vec<PodCidr> {
    let Some(root) = model.root() else {
        return Vec::new();
    };
    let mut out: Vec<PodCidr> = Vec::new();
    let mut push = |cidr: Cidr, from: String| {
        if !out.iter().any(|c| c.cidr == cidr) {
            out.push(PodCidr { cidr, from });
        }
    };
    for b in model
        .node
        .bridges
        .iter()
        .filter(|b| !b.pod_ports.is_empty())
    {
        for a in root.addrs.items.iter().filter(|a| a.ifindex == b.ifindex) {
            if let Some(c) = parse_ip(&a.address).and_then(|ip| cidr(ip, a.prefix_len)) {
                if !super::net::is_local_only(c.addr()) {
                    push(c, format!("address of bridge {}", b.name));
                }
            }
        }
    }
    for r in &root.routes.items {
        if r.kind == "blackhole" {
            if let Ok(c) = parse_cidr(&r.dst) {
                if c.prefix_len() > 0 && !super::net::is_local_only(c.addr()) {
                    push(c, format!("blackhole route {}", r.dst));
                }
            }
        }
    }
    // Cilium routes its pod CIDRs through cilium_host; this node's is the one that
    // holds cilium_host's own (router) address — other nodes' CIDRs go the same way.
    if let Some((_, host)) = root.link_named("cilium_host") {
        let own: Vec<_> = root
            .addrs
            .items
            .iter()
            .filter(|a| a.ifindex == host.ifindex)
            .filter_map(|a| parse_ip(&a.address))
            .collect();
        for r in &root.routes.items {
            if r.table != 254 || r.oif != Some(host.ifindex) {
                continue;
            }
            if let Ok(c) = parse_cidr(&r.dst) {
                let pod_cidr = c.prefix_len() > 0 && c.prefix_len() < c.max_prefix_len();
                if pod_cidr && own.iter().any(|ip| c.contains(ip)) {
                    push(c, format!("route {} via cilium_host", r.dst));
                }
            }
        }
    }
    // host-local hands out this node's pod addresses from the ranges of the CNI
    // configuration in use: the only trace of the pod CIDR on a node without a pod
    // bridge (ptp / kindnet: a /32 route per pod, the gateway on every host veth).
    if let Some(file) = model.cni.in_use() {
        for (subnet, plugin) in host_local_subnets(file) {
            if let Ok(c) = parse_cidr(&subnet) {
                if c.prefix_len() > 0 && !super::net::is_local_only(c.addr()) {
                    push(c, format!("host-local range of {plugin} in {}", file.file));
                }
            }
        }
    }
    out.sort_by_key(|c| c.cidr);
    out
}

/// (subnet, plugin type) of every host-local range of a CNI configuration file,
/// flannel's `delegate` included.
fn host_local_subnets(file: &crate::parse::cni::CniFile) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let plugins = file.config.iter().flat_map(|c| c.plugins.iter());
    for p in plugins.flat_map(|p| std::iter::once(p).chain(p.delegate.as_deref())) {
        let Some(ipam) = p
            .ipam
            .as_ref()
            .filter(|i| i.ipam_type.as_deref() == Some("host-local"))
        else {
            continue;
        };
        let ty = p.plugin_type.clone().unwrap_or_default();
        let ranges = ipam
            .ranges
            .iter()
            .flatten()
            .filter_map(|r| r.subnet.clone());
        for subnet in ipam.subnet.clone().into_iter().chain(ranges) {
            out.push((subnet, ty.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::cni::parse_cni;

    #[test]
    fn host_local_ranges_of_the_cni_config() {
        let ptp = r#"{"cniVersion":"1.0.0","name":"kindnet","plugins":[
            {"type":"ptp","ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]]}},
            {"type":"portmap","capabilities":{"portMappings":true}}]}"#;
        let f = parse_cni("host/cni/10-kindnet.conflist", "10-kindnet.conflist", ptp).model;
        assert_eq!(
            host_local_subnets(&f),
            [
                ("10.244.1.0/24".to_string(), "ptp".to_string()),
                ("fd00:10:244:1::/64".to_string(), "ptp".to_string())
            ]
        );
        // The older single-subnet form, inside flannel's delegate; other IPAMs give none.
        let flannel = r#"{"name":"cbr0","type":"flannel","delegate":{"type":"bridge","ipam":{"type":"host-local","subnet":"10.244.2.0/24"}}}"#;
        let f = parse_cni("host/cni/10-flannel.conf", "10-flannel.conf", flannel).model;
        assert_eq!(
            host_local_subnets(&f),
            [("10.244.2.0/24".to_string(), "bridge".to_string())]
        );
        let calico = r#"{"name":"k8s-pod-network","plugins":[{"type":"calico","ipam":{"type":"calico-ipam"}}]}"#;
        let f = parse_cni("host/cni/10-calico.conflist", "10-calico.conflist", calico).model;
        assert!(host_local_subnets(&f).is_empty());
    }
}
