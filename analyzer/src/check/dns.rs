//! DNS: pods' and the node's resolver configuration against the cluster DNS service.

use super::svc::is_cluster_dns;
use super::{CheckId, Facts, Finding, Severity};
use crate::model::{FrontendKind, Protocol, Resolv, Service};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Each pod with a resolv.conf: (subject, resolver config).
fn pod_resolvers<'a>(ctx: &Facts<'a>) -> Vec<(String, &'a Resolv)> {
    ctx.model
        .pods
        .iter()
        .filter_map(|pod| {
            let r = ctx.model.netns.get(&pod.netns)?.resolv.as_ref()?;
            Some((pod.subject(), r))
        })
        .collect()
}

/// The cluster DNS service: kube-dns/CoreDNS by name; where the proxier names no
/// service (IPVS: virtual servers and ipsets hold addresses only), an unnamed service
/// port 53 whose ClusterIP is the first nameserver of a ClusterFirst pod.
pub fn is_cluster_dns_service(ctx: &Facts<'_>, s: &Service) -> bool {
    if is_cluster_dns(s) {
        return true;
    }
    if s.name.is_some() {
        return false;
    }
    let Some(vip) = s.cluster_ip().filter(|f| f.port == 53).and_then(|f| f.ip) else {
        return false;
    };
    pod_resolvers(ctx).iter().any(|(_, r)| {
        is_cluster_first(r) && r.nameserver_ips().next().is_some_and(|(ip, _)| ip == vip)
    })
}

/// The node's resolver configs (its own, and the one kubelet hands to pods).
fn node_resolvers<'a>(ctx: &Facts<'a>) -> impl Iterator<Item = &'a Resolv> {
    [&ctx.model.dns.host, &ctx.model.dns.kubelet]
        .into_iter()
        .flatten()
}

/// DNS001.
pub fn pods_not_on_cluster_dns(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster_dns = cluster_dns_ips(ctx);
    let node_local = node_addresses(ctx);
    let node_servers: BTreeSet<IpAddr> = node_resolvers(ctx)
        .flat_map(|r| r.nameserver_ips().map(|(ip, _)| ip).collect::<Vec<_>>())
        .collect();
    for (subject, r) in pod_resolvers(ctx) {
        nameserver_not_cluster_dns(
            &subject,
            r,
            &cluster_dns,
            &node_local,
            &node_servers,
            &mut out,
        );
    }
    out
}

/// DNS002.
pub fn long_search_lists(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (subject, r) in pod_resolvers(ctx) {
        search_list_limits(ctx, &subject, r, &mut out);
    }
    for r in node_resolvers(ctx) {
        search_list_limits(ctx, "node", r, &mut out);
    }
    out
}

/// DNS003.
pub fn cluster_dns_without_endpoints(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    cluster_dns_endpoints(ctx, &mut out);
    out
}

/// DNS004: pods given a loopback stub, and the node's stub that kubelet hands out.
pub fn local_stub_loops(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (subject, r) in pod_resolvers(ctx) {
        loopback_in_pod(&subject, r, &mut out);
    }
    node_stub(ctx, &mut out);
    out
}

/// DNS005.
pub fn too_many_nameservers(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (subject, r) in pod_resolvers(ctx) {
        nameserver_count(&subject, r, &mut out);
    }
    for r in node_resolvers(ctx) {
        nameserver_count("node", r, &mut out);
    }
    out
}

/// ClusterIPs of the cluster DNS service; else of any port-53 service.
fn cluster_dns_ips(ctx: &Facts<'_>) -> BTreeSet<IpAddr> {
    let ips = |pred: &dyn Fn(&crate::model::Service) -> bool| -> BTreeSet<IpAddr> {
        ctx.model
            .services
            .iter()
            .filter(|s| pred(s))
            .flat_map(|s| s.frontends.iter())
            .filter(|f| f.kind == FrontendKind::ClusterIp)
            .filter_map(|f| f.ip)
            .collect()
    };
    let named = ips(&is_cluster_dns);
    if !named.is_empty() {
        return named;
    }
    ips(&|s| {
        s.protocol == Protocol::Udp
            && s.frontends
                .iter()
                .any(|f| f.kind == FrontendKind::ClusterIp && f.port == 53)
    })
}

/// Every address of the node netns (NodeLocal DNSCache listens on one, e.g. 169.254.20.10).
fn node_addresses(ctx: &Facts<'_>) -> BTreeSet<IpAddr> {
    ctx.model
        .root()
        .map(|r| {
            r.addrs
                .items
                .iter()
                .filter_map(|a| crate::model::net::parse_ip(&a.address))
                .collect()
        })
        .unwrap_or_default()
}

/// kubelet writes `<ns>.svc.<domain> svc.<domain> <domain>` for ClusterFirst pods.
fn is_cluster_first(r: &Resolv) -> bool {
    r.search
        .iter()
        .any(|d| d.starts_with("svc.") || d.contains(".svc."))
}

fn nameserver_not_cluster_dns(
    subject: &str,
    r: &Resolv,
    cluster_dns: &BTreeSet<IpAddr>,
    node_local: &BTreeSet<IpAddr>,
    node_servers: &BTreeSet<IpAddr>,
    out: &mut Vec<Finding>,
) {
    if cluster_dns.is_empty() || r.nameservers.is_empty() {
        return;
    }
    let used: Vec<(IpAddr, &crate::check::Evidence)> = r.nameserver_ips().take(3).collect();
    if used
        .iter()
        .any(|(ip, _)| cluster_dns.contains(ip) || node_local.contains(ip))
    {
        return;
    }
    let dns: Vec<String> = cluster_dns.iter().map(|i| i.to_string()).collect();
    let servers: Vec<String> = used.iter().map(|(i, _)| i.to_string()).collect();
    if is_cluster_first(r) {
        out.push(
            Finding::new(
                CheckId::Dns001,
                Severity::Warning,
                subject,
                format!(
                    "{subject} has cluster search domains but resolves through {} instead of the cluster DNS service ({}): service names do not resolve.",
                    servers.join(", "),
                    dns.join(", ")
                ),
            )
            .with_evidence(used.iter().map(|(_, e)| (*e).clone()))
            .with_evidence(r.search_evidence.clone()),
        );
    } else if !used.iter().all(|(ip, _)| node_servers.contains(ip)) {
        // Neither ClusterFirst nor the node's resolvers (dnsPolicy Default): a custom dnsConfig.
        out.push(
            Finding::new(
                CheckId::Dns001,
                Severity::Info,
                subject,
                format!(
                    "{subject} resolves through {} (neither the cluster DNS {} nor the node's resolvers): a custom dnsConfig; service names do not resolve there.",
                    servers.join(", "),
                    dns.join(", ")
                ),
            )
            .with_evidence(used.iter().map(|(_, e)| (*e).clone())),
        );
    }
}

fn search_list_limits(ctx: &Facts<'_>, subject: &str, r: &Resolv, out: &mut Vec<Finding>) {
    let t = ctx.thresholds;
    let n = r.search.len();
    let chars: usize = r.search.iter().map(|d| d.len()).sum::<usize>() + n.saturating_sub(1);
    let mut seen = BTreeSet::new();
    let dups: Vec<&str> = r
        .search
        .iter()
        .filter(|d| !seen.insert(d.trim_end_matches('.').to_ascii_lowercase()))
        .map(String::as_str)
        .collect();
    let (severity, why) = if n > t.dns_search_domains_kubelet || chars > t.dns_search_chars_kubelet
    {
        (
            Severity::Critical,
            format!(
                "{n} search domains / {chars} characters exceed kubelet's limit ({} / {})",
                t.dns_search_domains_kubelet, t.dns_search_chars_kubelet
            ),
        )
    } else if n > t.dns_search_domains || chars > t.dns_search_chars {
        (
            Severity::Warning,
            format!(
                "{n} search domains / {chars} characters exceed what glibc < 2.26 and musl honour ({} / {}): the rest are silently ignored there",
                t.dns_search_domains, t.dns_search_chars
            ),
        )
    } else if !dups.is_empty() {
        (
            Severity::Info,
            format!(
                "search domains repeated: {} (each costs extra queries)",
                dups.join(", ")
            ),
        )
    } else {
        return;
    };
    out.push(
        Finding::new(
            CheckId::Dns002,
            severity,
            subject,
            format!("{subject}: {why}."),
        )
        .with_evidence(r.search_evidence.clone()),
    );
}

fn nameserver_count(subject: &str, r: &Resolv, out: &mut Vec<Finding>) {
    if r.nameservers.len() <= 3 {
        return;
    }
    let ignored: Vec<&str> = r.nameservers[3..].iter().map(|(n, _)| n.as_str()).collect();
    out.push(
        Finding::new(
            CheckId::Dns005,
            Severity::Warning,
            subject,
            format!("{subject} lists {} nameservers; the resolver uses only the first 3 and ignores {}.", r.nameservers.len(), ignored.join(", ")),
        )
        .with_evidence(r.nameservers.iter().map(|(_, e)| e.clone())),
    );
}

/// A pod whose resolver is a loopback stub talks to itself: the node's stub is not in the pod.
fn loopback_in_pod(subject: &str, r: &Resolv, out: &mut Vec<Finding>) {
    let lo = r.loopback_nameservers();
    if lo.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            CheckId::Dns004,
            Severity::Critical,
            subject,
            format!(
                "{subject} uses the loopback nameserver {}: the node's local stub resolver was handed to the pod, where nothing (or CoreDNS itself, forwarding to itself) answers.",
                lo[0].0
            ),
        )
        .with_evidence(lo.iter().map(|(_, e)| (*e).clone())),
    );
}

fn node_stub(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    let dns = &ctx.model.dns;
    let (file, severity, how) = match (&dns.kubelet, &dns.host) {
        (Some(k), _) => (k, Severity::Critical, "kubelet's resolvConf"),
        (None, Some(h)) => (h, Severity::Warning, "the node's resolv.conf, which kubelet hands to dnsPolicy Default pods and CoreDNS forwards to unless configured otherwise,"),
        (None, None) => return,
    };
    let lo = file.loopback_nameservers();
    if lo.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            CheckId::Dns004,
            severity,
            "node",
            format!(
                "{how} points at the local stub {}: inside pods that address is the pod itself, and CoreDNS forwarding to it loops.",
                lo[0].0
            ),
        )
        .with_evidence(lo.iter().map(|(_, e)| (*e).clone())),
    );
}

fn cluster_dns_endpoints(ctx: &Facts<'_>, out: &mut Vec<Finding>) {
    for s in ctx
        .model
        .services
        .iter()
        .filter(|s| is_cluster_dns_service(ctx, s))
    {
        if !s.endpoints.is_empty() {
            continue;
        }
        // Unnamed (IPVS): say why it is taken for the cluster DNS.
        let which = match s.name {
            Some(_) => String::new(),
            None => ", the ClusterIP the node's ClusterFirst pods resolve through,".into(),
        };
        let mut f = Finding::new(
            CheckId::Dns003,
            Severity::Critical,
            s.subject(),
            format!("the cluster DNS service {} ({}){which} has no endpoints: name resolution fails in every pod.", s.display_name(), s.protocol),
        );
        f.evidence.extend(s.no_endpoints.iter().cloned());
        if f.evidence.is_empty() {
            f.evidence.extend(s.anchor().cloned());
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::faults;
    use super::super::testkit::*;

    const CLUSTER: [&str; 3] = [
        "default.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ];

    #[test]
    fn dns001_wrong_nameserver() {
        let mut k = healthy();
        k.pod_ns("web-1").resolv = Some(resolv(
            "netns/pod-web-1/resolv.conf",
            &["198.51.100.53"],
            &CLUSTER,
        ));
        assert_eq!(ids(&k.run(&["DNS"])), vec![("DNS001", "pod default/web-1")]);
        // dnsPolicy Default: the node's resolv.conf, no cluster search domains.
        let mut k = healthy();
        k.model().dns.host = Some(resolv(
            "host/resolv.conf",
            &["198.51.100.53"],
            &["lab.internal"],
        ));
        k.pod_ns("coredns").resolv = Some(resolv(
            "netns/pod-coredns/resolv.conf",
            &["198.51.100.53"],
            &["lab.internal"],
        ));
        assert!(k.run(&["DNS"]).is_empty());
        // NodeLocal DNSCache on a node address.
        let mut k = healthy();
        k.root().addrs.items.push(addr(1, "169.254.20.10", 32));
        k.pod_ns("web-1").resolv = Some(resolv(
            "netns/pod-web-1/resolv.conf",
            &["169.254.20.10"],
            &CLUSTER,
        ));
        assert!(k.run(&["DNS"]).is_empty());
    }

    #[test]
    fn dns002_search_list() {
        let mut k = healthy();
        let eight = [
            "a.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "e.example",
        ];
        k.pod_ns("web-1").resolv = Some(resolv("r", &["10.96.0.10"], &eight));
        let f = k.run(&["DNS"]);
        assert_eq!(ids(&f), vec![("DNS002", "pod default/web-1")]);
        assert_eq!(f[0].severity, crate::check::Severity::Warning);
        let long: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        k.pod_ns("web-1").resolv = Some(resolv("r", &["10.96.0.10"], &long));
        assert_eq!(
            k.run(&["DNS"])[0].severity,
            crate::check::Severity::Critical
        );
        k.pod_ns("web-1").resolv = Some(resolv(
            "r",
            &["10.96.0.10"],
            &["svc.cluster.local", "svc.cluster.local"],
        ));
        assert_eq!(k.run(&["DNS"])[0].severity, crate::check::Severity::Info);
    }

    #[test]
    fn dns003_cluster_dns_without_endpoints() {
        let mut k = healthy();
        faults::cluster_dns_down(&mut k);
        let f = k.run(&["DNS", "SVC001"]);
        assert_eq!(
            ids(&f),
            vec![("DNS003", "service kube-system/kube-dns:dns")]
        );
    }

    /// IPVS names no service: kube-dns is the unnamed port-53 virtual server the
    /// ClusterFirst pods use as nameserver.
    fn ipvs_dns_down(k: &mut Kit) {
        let s = k.service_mut("kube-system/kube-dns:dns");
        s.name = None;
        s.proxier = crate::model::Proxier::Ipvs;
        s.key = "10.96.0.10:53/udp".into();
        s.endpoints.clear();
    }

    #[test]
    fn dns003_unnamed_ipvs_cluster_dns_without_endpoints() {
        let mut k = healthy();
        ipvs_dns_down(&mut k);
        let f = k.run(&["DNS", "SVC001"]);
        assert_eq!(ids(&f), vec![("DNS003", "service 10.96.0.10:53/udp")]);
        assert!(f[0].message.contains("ClusterFirst pods resolve through"));
        // Not what the pods resolve through: an ordinary service without endpoints.
        let mut k = healthy();
        ipvs_dns_down(&mut k);
        for p in ["web-1", "web-2", "client", "coredns"] {
            k.pod_ns(p).resolv = Some(resolv("r", &["10.96.0.99"], &CLUSTER));
        }
        let f = k.run(&["DNS003", "SVC001"]);
        assert_eq!(ids(&f), vec![("SVC001", "service 10.96.0.10:53/udp")]);
    }

    #[test]
    fn dns004_local_stub() {
        let mut k = healthy();
        k.model().dns.host = Some(resolv("host/resolv.conf", &["127.0.0.53"], &[]));
        let f = k.run(&["DNS"]);
        assert_eq!(ids(&f), vec![("DNS004", "node")]);
        assert_eq!(f[0].severity, crate::check::Severity::Warning);
        // kubelet's own file is what pods get: critical; a sane kubelet file overrides the host's.
        k.model().dns.kubelet = Some(resolv("host/kubelet-resolv.conf", &["10.0.0.2"], &[]));
        assert!(k.run(&["DNS"]).is_empty());
        k.model().dns.kubelet = Some(resolv("host/kubelet-resolv.conf", &["127.0.0.53"], &[]));
        assert_eq!(
            k.run(&["DNS"])[0].severity,
            crate::check::Severity::Critical
        );
        // A pod handed the stub.
        let mut k = healthy();
        k.pod_ns("web-1").resolv = Some(resolv("r", &["127.0.0.53"], &[]));
        assert!(ids(&k.run(&["DNS004"])).contains(&("DNS004", "pod default/web-1")));
    }

    #[test]
    fn dns005_too_many_nameservers() {
        let mut k = healthy();
        faults::too_many_nameservers(&mut k);
        assert_eq!(ids(&k.run(&["DNS"])), vec![("DNS005", "pod default/web-1")]);
    }
}
