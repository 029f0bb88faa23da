//! SVC: services and their endpoints.

use super::{CheckId, Context, Finding, Severity};
use crate::model::services::sockaddr;
use crate::model::{FrontendKind, Protocol, Proxier, Service};
use netsnap_schema::model::SocketProto;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Runs `check` on every service.
fn each_service(ctx: &Context<'_>, check: impl Fn(&Service, &mut Vec<Finding>)) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &ctx.model.services {
        check(s, &mut out);
    }
    out
}

/// SVC001.
pub fn services_without_endpoints(ctx: &Context<'_>) -> Vec<Finding> {
    each_service(ctx, |s, out| no_endpoints(ctx, s, out))
}

/// SVC002.
pub fn stale_endpoints(ctx: &Context<'_>) -> Vec<Finding> {
    each_service(ctx, |s, out| endpoints_owned_by_no_netns(ctx, s, out))
}

/// SVC003.
pub fn endpoints_not_listening(ctx: &Context<'_>) -> Vec<Finding> {
    each_service(ctx, |s, out| endpoints_without_listener(ctx, s, out))
}

/// SVC004.
pub fn local_policy_without_local_endpoints(ctx: &Context<'_>) -> Vec<Finding> {
    each_service(ctx, no_local_endpoints)
}

/// SVC005.
pub fn partial_service_rules(ctx: &Context<'_>) -> Vec<Finding> {
    each_service(ctx, rule_defects)
}

/// SVC006.
pub fn ipvs_inconsistencies(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    ipvs_state(ctx, &mut out);
    out
}

/// Services that kube-dns would be; DNS003 reports those instead of SVC001.
pub fn is_cluster_dns(s: &Service) -> bool {
    s.name.as_ref().is_some_and(|n| {
        n.namespace == "kube-system"
            && matches!(
                n.name.as_str(),
                "kube-dns" | "coredns" | "rke2-coredns-rke2-coredns"
            )
    })
}

fn no_endpoints(ctx: &Context<'_>, s: &Service, out: &mut Vec<Finding>) {
    if !s.endpoints.is_empty()
        || !s.defects.is_empty()
        || super::dns::is_cluster_dns_service(&ctx.facts(), s)
    {
        return;
    }
    let vips: Vec<String> = s
        .frontends
        .iter()
        .map(|f| match f.ip {
            Some(ip) => format!("{} {}", f.kind.as_str(), sockaddr(ip, f.port)),
            None => format!("{} :{}", f.kind.as_str(), f.port),
        })
        .collect();
    let mut f = Finding::new(
        CheckId::Svc001,
        Severity::Warning,
        s.subject(),
        format!(
            "{} ({}, {}) has no endpoints: new connections to it fail{}.",
            s.display_name(),
            s.protocol,
            s.proxier.as_str(),
            if vips.is_empty() {
                String::new()
            } else {
                format!(" on {}", vips.join(", "))
            }
        ),
    );
    f.evidence.extend(s.no_endpoints.iter().cloned());
    if f.evidence.is_empty() {
        f.evidence.extend(s.anchor().cloned());
    }
    out.push(f);
}

fn endpoints_owned_by_no_netns(ctx: &Context<'_>, s: &Service, out: &mut Vec<Finding>) {
    let model = ctx.model;
    // Without every netns' addresses, "owned by no netns" cannot be told.
    if model.netns.values().any(|n| !n.addrs.present) || model.node.pod_cidrs.is_empty() {
        return;
    }
    for e in &s.endpoints {
        let Some(cidr) = model.node.in_pod_cidr(e.ip) else {
            continue;
        };
        if !ctx.graph.owners(e.ip).is_empty() {
            continue;
        }
        out.push(
            Finding::new(
                CheckId::Svc002,
                Severity::Critical,
                s.subject(),
                format!(
                    "endpoint {} of {} is inside this node's pod CIDR {} ({}) but no netns on the node has that address: its pod is gone and {} of new connections go nowhere.",
                    sockaddr(e.ip, e.port),
                    s.display_name(),
                    cidr.cidr,
                    cidr.from,
                    share_text(e.share)
                ),
            )
            .evidence(e.evidence.clone()),
        );
    }
}

fn share_text(share: Option<f64>) -> String {
    match share {
        Some(p) => format!("{:.0} %", p * 100.0),
        None => "a share".into(),
    }
}

fn listens(
    sockets: &[netsnap_schema::model::Socket],
    protocol: Protocol,
    ip: IpAddr,
    port: u16,
) -> bool {
    let want: &[SocketProto] = match protocol {
        Protocol::Tcp => &[SocketProto::Tcp, SocketProto::Tcp6],
        Protocol::Udp => &[SocketProto::Udp, SocketProto::Udp6],
        Protocol::Sctp => return true, // not captured: never accuse
    };
    sockets.iter().any(|so| {
        want.contains(&so.proto) && so.port == port && {
            let local = so.local.trim_start_matches("::ffff:");
            matches!(local, "0.0.0.0" | "::" | "*")
                || crate::model::net::parse_ip(local) == Some(ip)
        }
    })
}

fn endpoints_without_listener(ctx: &Context<'_>, s: &Service, out: &mut Vec<Finding>) {
    for e in &s.endpoints {
        let owners = ctx.graph.owners(e.ip);
        let [owner] = owners.as_slice() else {
            continue;
        };
        let Some(ns) = ctx.model.netns.get(owner) else {
            continue;
        };
        if !ns.sockets.present || listens(&ns.sockets.items, s.protocol, e.ip, e.port) {
            continue;
        }
        let who = match ctx.model.pod_in(owner) {
            Some(p) => p.subject(),
            None if ns.is_root => "the node (host network)".to_string(),
            None => format!("netns {owner}"),
        };
        let mut f = Finding::new(
            CheckId::Svc003,
            Severity::Warning,
            s.subject(),
            format!(
                "endpoint {} of {} is {who}, which has no {} socket on port {}: connections sent there are refused.",
                sockaddr(e.ip, e.port),
                s.display_name(),
                s.protocol,
                e.port
            ),
        )
        .evidence(e.evidence.clone());
        f.evidence.push(crate::check::Evidence::new(
            ns.sockets.path.clone(),
            None,
            format!(
                "{} listening sockets, none on {}/{}",
                ns.sockets.items.len(),
                e.port,
                s.protocol
            ),
        ));
        out.push(f);
    }
}

fn no_local_endpoints(s: &Service, out: &mut Vec<Finding>) {
    if s.no_local_endpoints.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            CheckId::Svc004,
            Severity::Info,
            s.subject(),
            format!(
                "{} has externalTrafficPolicy Local and no endpoint on this node: external traffic (NodePort, LoadBalancer, external IPs) reaching this node is dropped.",
                s.display_name()
            ),
        )
        .with_evidence(s.no_local_endpoints.iter().cloned()),
    );
}

fn rule_defects(s: &Service, out: &mut Vec<Finding>) {
    if s.defects.is_empty() {
        return;
    }
    let missing_chain = s.defects.iter().any(|d| d.what.contains("does not exist"));
    let what: Vec<&str> = s.defects.iter().map(|d| d.what.as_str()).collect();
    out.push(
        Finding::new(
            CheckId::Svc005,
            if missing_chain {
                Severity::Critical
            } else {
                Severity::Warning
            },
            s.subject(),
            format!(
                "{} ({}): {}.",
                s.display_name(),
                s.proxier.as_str(),
                what.join("; ")
            ),
        )
        .with_evidence(s.defects.iter().map(|d| d.evidence.clone())),
    );
}

fn ipvs_state(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let model = ctx.model;
    let ipvs: Vec<&Service> = model
        .services
        .iter()
        .filter(|s| s.proxier == Proxier::Ipvs)
        .collect();
    if ipvs.is_empty() {
        ipvs_mode_without_ipvs(ctx, out);
        return;
    }
    draining_real_servers(&ipvs, out);
    if let Some(root) = model.root() {
        vips_off_kube_ipvs0(root, &ipvs, out);
    }
    ipset_without_virtual_server(ctx, &ipvs, out);
}

/// kube-proxy's IPVS mode set up (VIPs on kube-ipvs0, KUBE-CLUSTER-IP members) on a
/// kernel without an IPVS table, and no other proxier programming services: every
/// VIP is a local address nothing balances, so connections to it are refused.
fn ipvs_mode_without_ipvs(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let model = ctx.model;
    let Some(not_loaded) = &model.ipvs.not_loaded else {
        return;
    };
    if !model.services.is_empty() {
        return;
    }
    let Some(root) = model.root() else { return };
    let dev = root.link_named("kube-ipvs0");
    let vips: Vec<usize> = match dev {
        Some((_, l)) => (0..root.addrs.items.len())
            .filter(|&i| root.addrs.items[i].ifindex == l.ifindex)
            .collect(),
        None => Vec::new(),
    };
    let members = model.ipvs.cluster_ip_set.as_deref().unwrap_or_default();
    if vips.is_empty() && members.is_empty() {
        return;
    }
    let mut f = Finding::new(
        CheckId::Svc006,
        Severity::Critical,
        "node",
        format!(
            "kube-proxy's IPVS mode is set up ({} address(es) on kube-ipvs0, {} service port(s) in ipset KUBE-CLUSTER-IP) but the kernel has no IPVS table (ip_vs is not loaded) and nothing else programs services: packets to those VIPs are delivered to the node itself and refused. Load ip_vs and its schedulers and restart kube-proxy, or remove the leftovers if kube-proxy runs in another mode.",
            vips.len(),
            members.len()
        ),
    )
    .evidence(not_loaded.clone());
    if let Some((i, _)) = dev {
        f = f.evidence(root.link_evidence(i));
    }
    f.evidence
        .extend(vips.first().map(|&i| root.addr_evidence(i)));
    f.evidence
        .extend(members.first().map(|m| m.evidence.clone()));
    out.push(f);
}

/// Real servers with weight 0 that still hold connections.
fn draining_real_servers(ipvs: &[&Service], out: &mut Vec<Finding>) {
    for s in ipvs {
        for e in s
            .endpoints
            .iter()
            .filter(|e| e.weight == Some(0) && e.active_conns.unwrap_or(0) > 0)
        {
            out.push(
                Finding::new(
                    CheckId::Svc006,
                    Severity::Warning,
                    s.subject(),
                    format!(
                        "IPVS real server {} has weight 0 but still {} active connections: it is being drained or was left behind by a failed sync.",
                        sockaddr(e.ip, e.port),
                        e.active_conns.unwrap_or(0)
                    ),
                )
                .evidence(e.evidence.clone()),
            );
        }
    }
}

/// VIPs must be bound to kube-ipvs0 so that the node accepts packets for them.
fn vips_off_kube_ipvs0(root: &crate::model::Netns, ipvs: &[&Service], out: &mut Vec<Finding>) {
    match root.link_named("kube-ipvs0") {
        Some((li, _)) => {
            // NodePort virtual servers sit on the node's own addresses: any local address counts.
            let bound: BTreeSet<IpAddr> = root
                .addrs
                .items
                .iter()
                .filter_map(|a| crate::model::net::parse_ip(&a.address))
                .collect();
            for s in ipvs {
                for f in s.frontends.iter().filter(|f| f.kind != FrontendKind::NodePort) {
                    let Some(ip) = f.ip else { continue };
                    if !bound.contains(&ip) {
                        out.push(
                            Finding::new(
                                CheckId::Svc006,
                                Severity::Critical,
                                s.subject(),
                                format!("IPVS virtual server {} is not bound to kube-ipvs0: the node does not accept packets for it.", sockaddr(ip, f.port)),
                            )
                            .evidence(f.evidence.clone())
                            .evidence(root.link_evidence(li)),
                        );
                    }
                }
            }
        }
        None if root.links.present => out.push(
            Finding::new(
                CheckId::Svc006,
                Severity::Critical,
                "node",
                format!("{} IPVS virtual servers but no kube-ipvs0 link in the node netns: no service VIP is accepted locally.", ipvs.len()),
            )
            .with_evidence(ipvs.first().and_then(|s| s.anchor()).cloned()),
        ),
        None => {}
    }
}

/// kube-proxy's KUBE-CLUSTER-IP ipset and the virtual servers must agree.
fn ipset_without_virtual_server(ctx: &Context<'_>, ipvs: &[&Service], out: &mut Vec<Finding>) {
    let model = ctx.model;
    if let Some(set) = &model.ipvs.cluster_ip_set {
        for m in set {
            let served = ipvs
                .iter()
                .any(|s| s.protocol == m.protocol && s.answers_on(m.ip, m.port));
            if !served {
                out.push(
                    Finding::new(
                        CheckId::Svc006,
                        Severity::Warning,
                        format!("service {}/{}", sockaddr(m.ip, m.port), m.protocol),
                        format!(
                            "{} is in ipset KUBE-CLUSTER-IP but has no IPVS virtual server.",
                            sockaddr(m.ip, m.port)
                        ),
                    )
                    .evidence(m.evidence.clone()),
                );
            }
        }
        for s in ipvs {
            for f in s
                .frontends
                .iter()
                .filter(|f| f.kind == FrontendKind::ClusterIp)
            {
                let Some(ip) = f.ip else { continue };
                if !set
                    .iter()
                    .any(|m| m.ip == ip && m.port == f.port && m.protocol == s.protocol)
                {
                    out.push(
                        Finding::new(
                            CheckId::Svc006,
                            Severity::Warning,
                            s.subject(),
                            format!("IPVS virtual server {} is missing from ipset KUBE-CLUSTER-IP: kube-proxy's iptables rules do not treat it as a service.", sockaddr(ip, f.port)),
                        )
                        .evidence(f.evidence.clone()),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::faults;
    use super::super::testkit::*;
    use crate::model::services::Endpoint;
    use crate::model::{Protocol, Proxier};

    #[test]
    fn svc001_service_without_endpoints() {
        let mut k = healthy();
        k.service("default/empty:http", "10.96.2.2", 80, Protocol::Tcp, &[]);
        assert_eq!(
            ids(&k.run(&["SVC"])),
            vec![("SVC001", "service default/empty:http")]
        );
    }

    #[test]
    fn svc002_endpoint_owned_by_no_pod() {
        let mut k = healthy();
        faults::stale_endpoint(&mut k);
        let f = k.run(&["SVC"]);
        assert_eq!(ids(&f), vec![("SVC002", "service default/web:http")]);
        assert!(f[0].message.contains("10.244.1.99:8080"));
        // Off-node endpoints (outside the pod CIDR) are not judged.
        let mut k = healthy();
        k.service_mut("default/web:http").endpoints[1].ip = ip("10.244.7.9");
        assert!(k.run(&["SVC"]).is_empty());
    }

    #[test]
    fn svc003_nothing_listening() {
        let mut k = healthy();
        faults::nothing_listening(&mut k);
        let f = k.run(&["SVC"]);
        assert_eq!(ids(&f), vec![("SVC003", "service default/web:http")]);
        assert!(f[0].message.contains("pod default/web-2"));
        // A listener bound to the pod IP (not the wildcard) counts.
        let mut k = healthy();
        k.pod_ns("web-2").sockets.items[0].local = "10.244.1.12".into();
        assert!(k.run(&["SVC"]).is_empty());
        // Without the sockets source nothing is claimed.
        let mut k = healthy();
        k.pod_ns("web-2").sockets.present = false;
        k.pod_ns("web-2").sockets.items.clear();
        assert!(k.run(&["SVC"]).is_empty());
    }

    #[test]
    fn svc004_no_local_endpoints_is_info() {
        let mut k = healthy();
        faults::no_local_endpoint(&mut k);
        let f = k.run(&["SVC"]);
        assert_eq!(ids(&f), vec![("SVC004", "service default/web:http")]);
        assert_eq!(f[0].severity, crate::check::Severity::Info);
    }

    #[test]
    fn svc005_partial_rules() {
        let mut k = healthy();
        faults::partial_rules(&mut k);
        let f = k.run(&["SVC"]);
        assert_eq!(ids(&f), vec![("SVC005", "service default/web:http")]);
        assert_eq!(f[0].severity, crate::check::Severity::Critical);
    }

    fn ipvs_node() -> Kit {
        // The healthy node's web service, as IPVS programs it.
        let mut k = healthy();
        let s = k.service_mut("default/web:http");
        s.proxier = Proxier::Ipvs;
        for e in &mut s.endpoints {
            e.share = None;
            e.weight = Some(1);
            e.active_conns = Some(0);
        }
        let mut ipvs0 = link(9, "kube-ipvs0", Some("dummy"));
        ipvs0.state = netsnap_schema::model::LinkState::Down;
        k.root().links.items.push(ipvs0);
        k.root().addrs.items.push(addr(9, "10.96.1.1", 32));
        k
    }

    #[test]
    fn svc006_ipvs_healthy_then_broken() {
        assert!(ipvs_node().run(&["SVC006"]).is_empty());
        // weight 0 with active connections
        let mut k = ipvs_node();
        let e: &mut Endpoint = &mut k.service_mut("default/web:http").endpoints[0];
        e.weight = Some(0);
        e.active_conns = Some(4);
        assert_eq!(
            ids(&k.run(&["SVC006"])),
            vec![("SVC006", "service default/web:http")]
        );
        // VIP not bound to kube-ipvs0
        let mut k = ipvs_node();
        k.root().addrs.items.retain(|a| a.address != "10.96.1.1");
        let f = k.run(&["SVC006"]);
        assert_eq!(ids(&f), vec![("SVC006", "service default/web:http")]);
        assert_eq!(f[0].severity, crate::check::Severity::Critical);
        // ipset and virtual servers disagree
        let mut k = ipvs_node();
        k.model().ipvs.cluster_ip_set = Some(vec![crate::model::ipvs::IpsetMember {
            ip: ip("10.96.9.9"),
            protocol: Protocol::Tcp,
            port: 80,
            evidence: ev("netfilter/ipset.txt"),
        }]);
        let f = k.run(&["SVC006"]);
        let subjects: Vec<&str> = f.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            vec!["service 10.96.9.9:80/tcp", "service default/web:http"]
        );
    }

    #[test]
    fn svc006_ipvs_mode_on_a_kernel_without_ipvs() {
        // kube-ipvs0 with a VIP, no virtual server, the collector found no ip_vs.
        let not_loaded = |k: &mut Kit| {
            k.model().services.clear();
            k.model().ipvs.not_loaded = Some(ev("manifest.json"));
        };
        let mut k = ipvs_node();
        not_loaded(&mut k);
        let f = k.run(&["SVC006"]);
        assert_eq!(ids(&f), vec![("SVC006", "node")]);
        assert_eq!(f[0].severity, crate::check::Severity::Critical);
        assert!(
            f[0].message.contains("1 address(es) on kube-ipvs0"),
            "{}",
            f[0].message
        );
        // Another proxier programs the services: the IPVS pieces are leftovers.
        let mut k = ipvs_node();
        k.model().ipvs.not_loaded = Some(ev("manifest.json"));
        k.model().services.retain(|s| s.proxier != Proxier::Ipvs);
        assert!(!k.model().services.is_empty());
        assert!(k.run(&["SVC006"]).is_empty());
        // The table was read (or could not be, which BND001 says): nothing here.
        let mut k = ipvs_node();
        k.model().services.clear();
        k.model().ipvs.not_loaded = None;
        assert!(k.run(&["SVC006"]).is_empty());
    }
}
