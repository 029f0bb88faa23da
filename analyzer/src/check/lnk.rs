//! LNK: links, veth pairs, bridges, addresses and routes.

use super::{CheckId, Context, Evidence, Finding, Severity};
use crate::graph::{GNode, NodeGraph, Peer};
use crate::model::net::{parse_cidr, parse_ip};
use crate::model::{Model, Netns, Pod};
use netsnap_schema::model::Link;
use std::net::IpAddr;

/// The node netns, when its links were captured: every LNK check needs them.
fn node_links<'a>(ctx: &Context<'a>) -> Option<&'a Netns> {
    ctx.model.root().filter(|root| root.links.present)
}

/// Every pod with its netns.
fn pods_with_netns<'a>(ctx: &Context<'a>) -> impl Iterator<Item = (&'a Pod, &'a Netns)> {
    let model = ctx.model;
    model
        .pods
        .iter()
        .filter_map(move |pod| Some((pod, model.netns.get(&pod.netns)?)))
}

/// Runs `check` on every pod, when the node's links are known.
fn each_pod(
    ctx: &Context<'_>,
    check: impl Fn(&Netns, &Pod, &Netns, &mut Vec<Finding>),
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(root) = node_links(ctx) {
        for (pod, ns) in pods_with_netns(ctx) {
            check(root, pod, ns, &mut out);
        }
    }
    out
}

/// LNK001.
pub fn dangling_host_veths(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(root) = node_links(ctx) {
        veths_without_peer(ctx, root, &mut out);
    }
    out
}

/// LNK002.
pub fn pods_without_host_link(ctx: &Context<'_>) -> Vec<Finding> {
    each_pod(ctx, |root, pod, ns, out| {
        no_host_link(ctx, root, pod, ns, out)
    })
}

/// LNK003.
pub fn veths_off_the_pod_bridge(ctx: &Context<'_>) -> Vec<Finding> {
    each_pod(ctx, |root, pod, ns, out| {
        not_enslaved(ctx, root, pod, ns, out)
    })
}

/// LNK004: pod veth ends down, then pod bridges down.
pub fn pod_links_down(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = each_pod(ctx, |root, pod, ns, out| {
        veth_ends_down(ctx, root, pod, ns, out)
    });
    if let Some(root) = node_links(ctx) {
        bridge_down(ctx, root, &mut out);
    }
    out
}

/// LNK005.
pub fn hairpin_off(ctx: &Context<'_>) -> Vec<Finding> {
    each_pod(ctx, |root, pod, ns, out| {
        port_without_hairpin(ctx, root, pod, ns, out)
    })
}

/// LNK006.
pub fn mtu_mismatches(ctx: &Context<'_>) -> Vec<Finding> {
    each_pod(ctx, |root, pod, ns, out| {
        pod_mtu_too_large(ctx, root, pod, ns, out)
    })
}

/// LNK007.
pub fn duplicate_ips(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if node_links(ctx).is_some() {
        ips_in_several_netns(ctx, &mut out);
    }
    out
}

/// LNK008.
pub fn pods_without_default_route(ctx: &Context<'_>) -> Vec<Finding> {
    each_pod(ctx, |_, pod, ns, out| no_usable_default_route(pod, ns, out))
}

/// The subject for things about a netns: its pod, the node, or the netns.
pub fn netns_subject(model: &Model, id: &str) -> String {
    match (model.pod_in(id), model.netns.get(id)) {
        (Some(p), _) => p.subject(),
        (None, Some(n)) if n.is_root => "node".into(),
        _ => format!("netns {id}"),
    }
}

fn veths_without_peer(ctx: &Context<'_>, root: &Netns, out: &mut Vec<Finding>) {
    for (i, l) in root.links.iter() {
        let why = match ctx.graph.peer(&root.id, l.ifindex) {
            Some(Peer::MissingNetns { nsid }) => format!(
                "its peer is in netns id {nsid}, which no captured network namespace has (no process, no /run/netns entry)"
            ),
            Some(Peer::MissingIfindex { netns, ifindex }) => format!(
                "its peer should be ifindex {ifindex} in {}, which has no such link",
                netns_subject(ctx.model, &netns)
            ),
            _ => continue,
        };
        out.push(
            Finding::new(
                CheckId::Lnk001,
                Severity::Warning,
                format!("link {}", l.name),
                format!(
                    "host veth {} (ifindex {}) is dangling: {why}. The pod it served is gone.",
                    l.name, l.ifindex
                ),
            )
            .evidence(root.link_evidence(i)),
        );
    }
}

/// Non-loopback links of the pod netns.
fn pod_links(ns: &Netns) -> impl Iterator<Item = (usize, &Link)> {
    ns.links.iter().filter(|(_, l)| l.name != "lo")
}

fn no_host_link(ctx: &Context<'_>, root: &Netns, pod: &Pod, ns: &Netns, out: &mut Vec<Finding>) {
    if !ns.links.present || !ctx.graph.veths_to(&ns.id, &root.id).is_empty() {
        return;
    }
    // Pods of ipvlan/macvlan-style CNIs reach the host without a veth.
    if pod_links(ns).any(|(_, l)| l.kind.as_deref() != Some("veth") && Netns::link_is_up(l)) {
        return;
    }
    let mut f = Finding::new(
        CheckId::Lnk002,
        Severity::Critical,
        pod.subject(),
        format!(
            "{} has no link to the node: {}.",
            pod.subject(),
            if pod.interfaces.is_empty() {
                "its netns has no veth at all".to_string()
            } else {
                format!(
                    "no node veth is paired with its {}",
                    pod.interfaces
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
    );
    for (i, _) in pod_links(ns) {
        f.evidence.push(ns.link_evidence(i));
    }
    if f.evidence.is_empty() {
        f.evidence
            .push(Evidence::new(ns.links.path.clone(), None, "only lo"));
    }
    out.push(f);
}

/// The node-side peer (its ifindex) of a pod interface, walked on the graph.
fn host_peer(graph: &NodeGraph, root: &Netns, ns: &Netns, ifindex: u32) -> Option<u32> {
    let peer = graph.peer_of(graph.iface(&ns.id, ifindex)?)?;
    if graph.netns_of(peer) != Some(root.id.as_str()) {
        return None;
    }
    match &graph.graph[peer] {
        GNode::Interface { ifindex, .. } | GNode::Bridge { ifindex, .. } => Some(*ifindex),
        _ => None,
    }
}

/// The host veths of a pod's interfaces: (position in the node's links, host link,
/// the pod's own end).
fn host_veths<'a>(
    graph: &'a NodeGraph,
    root: &'a Netns,
    pod: &'a Pod,
    ns: &'a Netns,
) -> impl Iterator<Item = (usize, &'a Link, Option<(usize, &'a Link)>)> {
    pod.interfaces.iter().filter_map(move |iface| {
        let (hi, host) = root.link(host_peer(graph, root, ns, iface.ifindex)?)?;
        Some((hi, host, ns.link(iface.ifindex)))
    })
}

/// The bridge a host veth is enslaved to, if any.
fn master_of<'a>(root: &'a Netns, host: &Link) -> Option<(usize, &'a Link)> {
    host.master.and_then(|m| root.link(m))
}

fn not_enslaved(ctx: &Context<'_>, root: &Netns, pod: &Pod, ns: &Netns, out: &mut Vec<Finding>) {
    let bridge_cni = ctx
        .model
        .node
        .bridges
        .iter()
        .any(|b| !b.pod_ports.is_empty());
    for (hi, host, _) in host_veths(ctx.graph, root, pod, ns) {
        // Bridge CNIs enslave every pod veth to the bridge.
        let master = master_of(root, host);
        if bridge_cni && master.is_none_or(|(_, m)| m.kind.as_deref() != Some("bridge")) {
            let bridges: Vec<&str> = ctx
                .model
                .node
                .bridges
                .iter()
                .filter(|b| !b.pod_ports.is_empty())
                .map(|b| b.name.as_str())
                .collect();
            out.push(
                Finding::new(
                    CheckId::Lnk003,
                    Severity::Critical,
                    pod.subject(),
                    format!(
                        "host veth {} of {} is not enslaved to the pod bridge ({}) while the other pods' veths are: the pod is cut off from the bridge.",
                        host.name,
                        pod.subject(),
                        bridges.join(", ")
                    ),
                )
                .evidence(root.link_evidence(hi)),
            );
        }
    }
}

fn veth_ends_down(ctx: &Context<'_>, root: &Netns, pod: &Pod, ns: &Netns, out: &mut Vec<Finding>) {
    for (hi, host, pod_link) in host_veths(ctx.graph, root, pod, ns) {
        // Both ends (and the bridge, see bridge_down) must be up.
        let mut down = Vec::new();
        if !Netns::link_is_up(host) {
            down.push((format!("host veth {}", host.name), root.link_evidence(hi)));
        }
        if let Some((pi, pl)) = pod_link {
            if !Netns::link_is_up(pl) {
                down.push((format!("pod {}", pl.name), ns.link_evidence(pi)));
            }
        }
        if !down.is_empty() {
            let what: Vec<&str> = down.iter().map(|(w, _)| w.as_str()).collect();
            out.push(
                Finding::new(
                    CheckId::Lnk004,
                    Severity::Critical,
                    pod.subject(),
                    format!(
                        "{} of {} {} down: the pod has no connectivity.",
                        what.join(" and "),
                        pod.subject(),
                        if what.len() > 1 { "are" } else { "is" }
                    ),
                )
                .with_evidence(down.into_iter().map(|(_, e)| e)),
            );
        }
    }
}

fn port_without_hairpin(
    ctx: &Context<'_>,
    root: &Netns,
    pod: &Pod,
    ns: &Netns,
    out: &mut Vec<Finding>,
) {
    for (hi, host, _) in host_veths(ctx.graph, root, pod, ns) {
        let master = master_of(root, host);
        // Hairpin lets a pod reach itself through a service VIP.
        if let (Some((_, m)), Some(bp)) = (master, &host.bridge_port) {
            let promiscuous = m.promiscuity > 0 || m.flags.iter().any(|f| f == "PROMISC");
            if !bp.hairpin && !promiscuous && m.kind.as_deref() == Some("bridge") {
                out.push(
                    Finding::new(
                        CheckId::Lnk005,
                        Severity::Warning,
                        pod.subject(),
                        format!(
                            "hairpin is off on bridge port {} of {} and the bridge is not promiscuous: {} cannot reach itself through a service VIP.",
                            host.name, m.name, pod.subject()
                        ),
                    )
                    .evidence(root.link_evidence(hi)),
                );
            }
        }
    }
}

fn bridge_down(ctx: &Context<'_>, root: &Netns, out: &mut Vec<Finding>) {
    for b in ctx
        .model
        .node
        .bridges
        .iter()
        .filter(|b| !b.pod_ports.is_empty())
    {
        let Some((i, l)) = root.link(b.ifindex) else {
            continue;
        };
        let admin_up = l.flags.iter().any(|f| f == "UP");
        if !admin_up {
            out.push(
                Finding::new(
                    CheckId::Lnk004,
                    Severity::Critical,
                    format!("bridge {}", b.name),
                    format!(
                        "pod bridge {} is down: its {} pods have no connectivity.",
                        b.name,
                        b.pod_ports.len()
                    ),
                )
                .evidence(root.link_evidence(i)),
            );
        }
    }
}

fn pod_mtu_too_large(
    ctx: &Context<'_>,
    root: &Netns,
    pod: &Pod,
    ns: &Netns,
    out: &mut Vec<Finding>,
) {
    // The tightest overlay: pod packets leave the node encapsulated through it.
    let overlay_limit = ctx
        .model
        .node
        .overlays
        .iter()
        .filter_map(|o| o.underlay_mtu.map(|u| (u.saturating_sub(o.overhead), o)))
        .min_by_key(|(m, _)| *m);
    for iface in &pod.interfaces {
        let Some((pi, pl)) = ns.link(iface.ifindex) else {
            continue;
        };
        // The overlay limit holds with or without a host veth; when the veth is
        // already too small, that is the finding (the overlay one would repeat it).
        let host = host_peer(ctx.graph, root, ns, iface.ifindex).and_then(|h| root.link(h));
        if let Some((hi, host)) = host.filter(|(_, h)| pl.mtu > h.mtu) {
            out.push(
                Finding::new(
                    CheckId::Lnk006,
                    Severity::Warning,
                    pod.subject(),
                    format!(
                        "{} MTU {} of {} is larger than its host veth {} MTU {}: large packets from the pod are dropped.",
                        pl.name, pl.mtu, pod.subject(), host.name, host.mtu
                    ),
                )
                .evidence(ns.link_evidence(pi))
                .evidence(root.link_evidence(hi)),
            );
        } else if let Some((limit, o)) = overlay_limit {
            // Off-node packets follow the default route: its MTU metric, when every
            // one has it (Cilium's tunnel mode), caps them below the device's.
            let route = match off_node_route_mtu(ns, iface.ifindex) {
                // No route through a gateway: nothing leaves the node from here.
                OffNode::Nothing => continue,
                OffNode::DeviceMtu => None,
                OffNode::RouteMtu(m, routes) => Some((m, routes)),
            };
            let sent = route.as_ref().map_or(pl.mtu, |(m, _)| (*m).min(pl.mtu));
            if sent <= limit {
                continue;
            }
            let what = match &route {
                Some((m, _)) => format!("{} MTU {} (route MTU {m})", pl.name, pl.mtu),
                None => format!("{} MTU {}", pl.name, pl.mtu),
            };
            let mut f = Finding::new(
                CheckId::Lnk006,
                Severity::Warning,
                pod.subject(),
                format!(
                    "{what} of {} exceeds the underlay MTU {} minus the {} overhead of {} ({} bytes), {limit}: encapsulated packets are fragmented or dropped.",
                    pod.subject(),
                    o.underlay_mtu.unwrap_or(0),
                    o.kind,
                    o.name,
                    o.overhead
                ),
            )
            .evidence(ns.link_evidence(pi));
            for i in route.map(|(_, r)| r).unwrap_or_default() {
                f.evidence.push(ns.route_evidence(i));
            }
            if let Some((oi, _)) = root.link(o.ifindex) {
                f.evidence.push(root.link_evidence(oi));
            }
            out.push(f);
        }
    }
}

/// How big the packets a pod interface sends off the node can be.
enum OffNode {
    /// No route through a gateway leaves by this interface.
    Nothing,
    /// Some such route has no MTU metric: the device's MTU.
    DeviceMtu,
    /// Every such route has one: the largest (with the routes' indexes).
    RouteMtu(u32, Vec<usize>),
}

/// Off-node packets follow the routes through a gateway (the default route, or the
/// cluster CIDR's): their MTU metric, when each has one, caps them below the device's.
fn off_node_route_mtu(ns: &Netns, ifindex: u32) -> OffNode {
    let routes: Vec<(usize, Option<u32>)> = ns
        .routes
        .iter()
        .filter(|(_, r)| {
            r.table == 254 && r.oif == Some(ifindex) && r.kind == "unicast" && r.gateway.is_some()
        })
        .map(|(i, r)| (i, r.mtu))
        .collect();
    if routes.is_empty() {
        return OffNode::Nothing;
    }
    match routes.iter().map(|(_, m)| *m).collect::<Option<Vec<u32>>>() {
        Some(mtus) => OffNode::RouteMtu(
            mtus.into_iter().max().unwrap_or(0),
            routes.into_iter().map(|(i, _)| i).collect(),
        ),
        None => OffNode::DeviceMtu,
    }
}

fn ips_in_several_netns(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    for ip in ctx.graph.addresses() {
        let owners = ctx.graph.owners(ip);
        if owners.len() < 2 {
            continue;
        }
        let mut subjects: Vec<String> =
            owners.iter().map(|o| netns_subject(ctx.model, o)).collect();
        subjects.sort();
        let mut f = Finding::new(
            CheckId::Lnk007,
            Severity::Critical,
            format!("ip {ip} in {}", subjects.join(" and ")),
            format!("{ip} is assigned in {} network namespaces ({}): replies go to whichever answers ARP first.", owners.len(), subjects.join(", ")),
        );
        for o in &owners {
            if let Some(ns) = ctx.model.netns.get(o) {
                for (i, a) in ns.global_ips() {
                    if a == ip {
                        f.evidence.push(ns.addr_evidence(i));
                    }
                }
            }
        }
        out.push(f);
    }
}

/// Whether `gw` is reachable on-link from `ns` (a connected prefix or a link route).
fn on_link(ns: &Netns, gw: IpAddr) -> bool {
    ns.connected().iter().any(|c| c.contains(&gw))
        || ns.routes.items.iter().any(|r| {
            r.gateway.is_none()
                && r.kind == "unicast"
                && (parse_cidr(&r.dst).is_ok_and(|c| c.contains(&gw)))
        })
}

fn no_usable_default_route(pod: &Pod, ns: &Netns, out: &mut Vec<Finding>) {
    if !ns.routes.present || !ns.addrs.present {
        return;
    }
    for family in ["inet", "inet6"] {
        let has_global = ns
            .global_ips()
            .any(|(_, ip)| ip.is_ipv4() == (family == "inet"));
        if !has_global {
            continue;
        }
        let defaults: Vec<(usize, &netsnap_schema::model::Route)> = ns
            .routes
            .iter()
            .filter(|(_, r)| {
                r.family == family
                    && (r.dst == "default" || r.dst == "0.0.0.0/0" || r.dst == "::/0")
            })
            .filter(|(_, r)| r.kind == "unicast")
            .collect();
        if defaults.is_empty() {
            let mut f = Finding::new(
                CheckId::Lnk008,
                Severity::Critical,
                pod.subject(),
                format!("{} has no {} default route: it cannot reach anything outside its own subnet (services, other nodes, DNS).", pod.subject(), if family == "inet" { "IPv4" } else { "IPv6" }),
            );
            f.evidence.extend(
                ns.routes
                    .iter()
                    .filter(|(_, r)| r.family == family && r.table == 254)
                    .map(|(i, _)| ns.route_evidence(i)),
            );
            if f.evidence.is_empty() {
                f.evidence.push(Evidence::new(
                    ns.routes.path.clone(),
                    None,
                    format!("no {family} routes in the main table"),
                ));
            }
            out.push(f);
            continue;
        }
        let usable = defaults
            .iter()
            .any(|(_, r)| match r.gateway.as_deref().and_then(parse_ip) {
                Some(gw) => on_link(ns, gw),
                None => r.oif.is_some(),
            });
        if !usable {
            out.push(
                Finding::new(
                    CheckId::Lnk008,
                    Severity::Critical,
                    pod.subject(),
                    format!("the default route of {} points at a gateway that is not reachable on any of its links.", pod.subject()),
                )
                .with_evidence(defaults.iter().map(|(i, _)| ns.route_evidence(*i))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::faults;
    use super::super::testkit::*;
    use netsnap_schema::model::LinkState;

    #[test]
    fn healthy_has_no_link_finding() {
        assert!(healthy().run(&["LNK"]).is_empty());
    }

    #[test]
    fn lnk001_dangling_veth() {
        let mut k = healthy();
        faults::dangling_veth(&mut k);
        let subject = format!("link {}", k.host_veth("web-2"));
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK001", subject.as_str())]);
        // Peer netns present but the peer ifindex gone.
        let mut k = healthy();
        k.pod_ns("web-2").links.items.retain(|l| l.name != "eth0");
        let f = k.run(&["LNK001"]);
        assert_eq!(ids(&f), vec![("LNK001", subject.as_str())]);
    }

    #[test]
    fn lnk002_pod_without_host_link() {
        let mut k = healthy();
        faults::pod_without_host_veth(&mut k);
        let f = k.run(&["LNK"]);
        assert_eq!(ids(&f), vec![("LNK002", "pod default/web-2")]);
    }

    #[test]
    fn lnk003_detached_veth() {
        let mut k = healthy();
        faults::detached_veth(&mut k);
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK003", "pod default/web-1")]);
    }

    #[test]
    fn lnk004_link_down() {
        let mut k = healthy();
        faults::veth_down(&mut k);
        for l in &mut k.pod_ns("web-1").links.items {
            if l.name == "eth0" {
                l.state = LinkState::Lowerlayerdown;
            }
        }
        let f = k.run(&["LNK"]);
        assert_eq!(ids(&f), vec![("LNK004", "pod default/web-1")]);
        assert_eq!(f[0].evidence.len(), 2);
        // The bridge itself down.
        let mut k = healthy();
        k.root().links.items[2].flags.clear();
        k.root().links.items[2].state = LinkState::Down;
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK004", "bridge cni0")]);
    }

    #[test]
    fn lnk005_hairpin_off() {
        let mut k = healthy();
        faults::hairpin_off(&mut k);
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK005", "pod default/web-1")]);
        // A promiscuous bridge hairpins every port.
        k.root().links.items[2].promiscuity = 1;
        assert!(k.run(&["LNK"]).is_empty());
    }

    #[test]
    fn lnk006_mtu_mismatch() {
        let mut k = healthy();
        faults::pod_mtu_too_large(&mut k);
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK006", "pod default/web-1")]);
        // Overlay: pod MTU must fit in the underlay minus VXLAN overhead.
        let mut k = healthy();
        let mut vx = link(50, "flannel.1", Some("vxlan"));
        vx.mtu = 1450;
        vx.vxlan = Some(netsnap_schema::model::Vxlan {
            id: 1,
            local: Some("10.0.0.10".into()),
            group: None,
            dev: Some(2),
            port: Some(8472),
            ..Default::default()
        });
        k.root().links.items.push(vx);
        let f = k.run(&["LNK006"]);
        assert!(f.iter().all(|f| f.message.contains("overhead")), "{f:#?}");
    }

    /// The node's eth0 (the uplink) at `mtu`, and an up tunnel `name` of `kind`.
    fn with_tunnel(k: &mut Kit, kind: &str, name: &str, uplink_mtu: u32) {
        let tunnel = link(60, name, Some(kind));
        k.describe(|n| n.extra_root_links.push(tunnel));
        k.root().links.items[1].mtu = uplink_mtu;
    }

    /// Pods that fit their host veth but not the uplink minus the overlay's overhead:
    /// the overlay limit is checked on its own, for every overlay kind.
    #[test]
    fn lnk006_pod_mtu_above_uplink_minus_overlay() {
        // flannel.1 (VXLAN, 50 bytes) on a 1450 uplink: 1400 fits, the pods' 1450 not.
        let mut k = healthy();
        k.root().links.items[1].mtu = 1450;
        let f = k.run(&["LNK"]);
        assert_eq!(f.len(), 4, "{f:#?}");
        assert!(f
            .iter()
            .all(|f| f.id.as_str() == "LNK006" && f.message.contains("vxlan")));
        // IPIP (20): a 1450 pod MTU needs a 1470 uplink.
        // Over the fixture's IPv4 uplink.
        for (kind, overhead) in [("ipip", 20), ("geneve", 50), ("wireguard", 60)] {
            let mut k = healthy();
            with_tunnel(&mut k, kind, "tun", 1450 + overhead);
            // flannel.1 alone (1500-byte underlay on its dev) would allow 1450.
            k.root().links.items.retain(|l| l.name != "flannel.1");
            assert!(k.run(&["LNK"]).is_empty(), "{kind} at the limit");
            let mut k = healthy();
            with_tunnel(&mut k, kind, "tun", 1450 + overhead - 1);
            k.root().links.items.retain(|l| l.name != "flannel.1");
            let f = k.run(&["LNK"]);
            assert_eq!(f.len(), 4, "{kind}: {f:#?}");
            assert!(
                f.iter()
                    .all(|f| f.id.as_str() == "LNK006" && f.message.contains(kind)),
                "{f:#?}"
            );
        }
        // WireGuard over an IPv6-only uplink: 80 bytes.
        let mut k = healthy();
        with_tunnel(&mut k, "wireguard", "wg0", 1450 + 79);
        k.root().links.items.retain(|l| l.name != "flannel.1");
        for a in &mut k.root().addrs.items {
            if a.ifindex == 2 {
                a.family = "inet6".into();
                a.address = "fd00::10".into();
                a.prefix_len = 64;
            }
        }
        let f = k.run(&["LNK006"]);
        assert_eq!(f.len(), 4, "{f:#?}");
        assert!(f[0].message.contains("(80 bytes)"), "{}", f[0].message);
        // A tunnel that is down (tunl0 of a loaded ipip module) is not an overlay.
        let mut k = healthy();
        let mut tunl0 = link(60, "tunl0", Some("ipip"));
        tunl0.flags.clear();
        tunl0.state = LinkState::Down;
        k.describe(|n| n.extra_root_links.push(tunl0));
        assert!(k.run(&["LNK"]).is_empty());
    }

    /// Off-node packets follow the pod's routes through a gateway: their MTU metric
    /// (Cilium's tunnel mode keeps the device at 1500 and sets the route to 1450) is
    /// what must fit the overlay, unless some such route has none; a pod with no such
    /// route sends nothing off the node.
    #[test]
    fn lnk006_default_route_mtu_caps_what_leaves_the_node() {
        // The fixture's pods send 1450 over flannel.1; a 1450 uplink allows 1400.
        let with_route_mtu = |mtu: u32| {
            let mut k = healthy();
            k.root().links.items[1].mtu = 1450;
            for name in ["web-1", "web-2", "client", "coredns"] {
                let ns = k.pod_ns(name);
                for r in &mut ns.routes.items {
                    if r.dst == "default" {
                        r.mtu = Some(mtu);
                    }
                }
            }
            k
        };
        let mut k = with_route_mtu(1400);
        let f = k.run(&["LNK006"]);
        assert!(f.is_empty(), "{f:#?}");
        let mut k = with_route_mtu(1420);
        let f = k.run(&["LNK006"]);
        assert_eq!(f.len(), 4, "{f:#?}");
        assert!(
            f[0].message.contains("(route MTU 1420)"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].evidence.iter().any(|e| e.excerpt.contains("mtu 1420")),
            "{:#?}",
            f[0].evidence
        );
        // A second default route without the metric: the device's MTU applies again.
        let mut k = with_route_mtu(1400);
        let ns = k.pod_ns("web-1");
        let extra = ns.routes.items.iter().find(|r| r.dst == "default").cloned();
        let mut extra = extra.expect("default route");
        extra.mtu = None;
        extra.metric = Some(200);
        ns.routes.items.push(extra);
        let f = k.run(&["LNK006"]);
        assert_eq!(ids(&f), vec![("LNK006", "pod default/web-1")]);
        // No route through a gateway (default route gone): nothing to encapsulate.
        let mut k = with_route_mtu(1420);
        let ns = k.pod_ns("web-1");
        ns.routes.items.retain(|r| r.gateway.is_none());
        let f = k.run(&["LNK006"]);
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(f.iter().all(|f| f.subject != "pod default/web-1"), "{f:#?}");
    }

    #[test]
    fn lnk007_duplicate_ip() {
        let mut k = healthy();
        faults::duplicate_pod_ip(&mut k);
        assert_eq!(
            ids(&k.run(&["LNK007"])),
            vec![(
                "LNK007",
                "ip 10.244.1.11 in pod default/client and pod default/web-1"
            )]
        );
    }

    #[test]
    fn lnk008_default_route() {
        let mut k = healthy();
        faults::no_default_route(&mut k);
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK008", "pod default/web-1")]);
        // A gateway that is not on-link.
        let mut k = healthy();
        k.pod_ns("web-1").routes.items[0].gateway = Some("192.0.2.1".into());
        assert_eq!(ids(&k.run(&["LNK"])), vec![("LNK008", "pod default/web-1")]);
        // Calico style: gateway 169.254.1.1 reachable through a link route.
        let mut k = healthy();
        k.pod_ns("web-1").routes.items = vec![
            route("default", Some("169.254.1.1"), 2),
            route("169.254.1.1", None, 2),
        ];
        assert!(k.run(&["LNK"]).is_empty());
    }
}

#[cfg(test)]
mod upstream_tests {
    use super::super::testkit::*;
    use crate::model::netns::Table;
    use crate::model::Netns;

    /// A netns behind the node's uplink (a veth, as in kind or the lab) is the
    /// upstream router, not a pod: no LNK finding about it.
    #[test]
    fn netns_behind_the_uplink_is_not_a_pod() {
        let mut k = healthy();
        let eth0 = &mut k.root().links.items[1];
        eth0.kind = Some("veth".into());
        eth0.link = Some(2);
        eth0.link_netnsid = Some(99);
        let mut up_eth0 = link(2, "eth0", Some("veth"));
        up_eth0.link = Some(2);
        let up = Netns {
            id: "upstream".into(),
            nsid: Some(99),
            links: Table::new(
                "netns/upstream/links.json",
                vec![link(1, "lo", None), up_eth0],
            ),
            addrs: Table::new("netns/upstream/addrs.json", vec![addr(2, "10.0.0.1", 24)]),
            routes: Table::new(
                "netns/upstream/routes.json",
                vec![route("10.0.0.0/24", None, 2)],
            ),
            ..Netns::default()
        };
        k.model().netns.insert("upstream".into(), up);
        let (m, _) = k.build();
        assert!(m.pods.iter().all(|p| p.netns != "upstream"));
        assert!(k.run(&["LNK"]).is_empty());
    }
}
