//! Services as the node's proxier programmed them, with their endpoints.

use super::Evidence;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

// Defined with the parsed sources, which say which backend wrote each ruleset.
pub use crate::sources::Proxier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Some(Protocol::Tcp),
            "udp" | "17" => Some(Protocol::Udp),
            "sctp" | "132" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// kube-proxy's ServicePortName: `namespace/name:port` (`:port` absent when unnamed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
    pub port: String,
}

impl ServiceName {
    /// Parses `ns/name:port` or `ns/name`.
    pub fn parse(s: &str) -> Option<ServiceName> {
        let (namespace, rest) = s.split_once('/')?;
        if namespace.is_empty() || rest.is_empty() || rest.contains(char::is_whitespace) {
            return None;
        }
        let (name, port) = rest.split_once(':').unwrap_or((rest, ""));
        Some(ServiceName {
            namespace: namespace.into(),
            name: name.into(),
            port: port.into(),
        })
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port.is_empty() {
            write!(f, "{}/{}", self.namespace, self.name)
        } else {
            write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
        }
    }
}

/// How a service is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrontendKind {
    ClusterIp,
    NodePort,
    ExternalIp,
    LoadBalancer,
}

impl FrontendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FrontendKind::ClusterIp => "ClusterIP",
            FrontendKind::NodePort => "NodePort",
            FrontendKind::ExternalIp => "External",
            FrontendKind::LoadBalancer => "LoadBalancer",
        }
    }
}

/// One address:port a service answers on. NodePorts have no fixed address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frontend {
    pub kind: FrontendKind,
    pub ip: Option<IpAddr>,
    pub port: u16,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// KUBE-SEP-… / endpoint-… chain, when the proxier uses one.
    pub chain: Option<String>,
    /// Share of new connections this endpoint gets (iptables statistic / nft numgen),
    /// from 0 to 1.
    pub share: Option<f64>,
    /// IPVS weight.
    pub weight: Option<u32>,
    /// IPVS active / inactive connection counters.
    pub active_conns: Option<u64>,
    pub inactive_conns: Option<u64>,
    pub evidence: Evidence,
}

/// What is wrong with the rules themselves (SVC005).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleDefect {
    pub what: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: Option<ServiceName>,
    /// The service chain (`KUBE-SVC-…`, `service-…`) or the IPVS virtual server.
    pub key: String,
    pub protocol: Protocol,
    pub proxier: Proxier,
    pub frontends: Vec<Frontend>,
    pub endpoints: Vec<Endpoint>,
    /// Session affinity timeout in seconds (ClientIP affinity).
    pub affinity_seconds: Option<u32>,
    /// externalTrafficPolicy Local (a KUBE-SVL/KUBE-EXT chain to local endpoints).
    pub external_local: bool,
    /// internalTrafficPolicy Local (cluster traffic only to this node's endpoints).
    pub internal_local: bool,
    /// Rules that say the service has no endpoints (REJECT, no-endpoint map …).
    pub no_endpoints: Vec<Evidence>,
    /// Rules that say it has no local endpoints (externalTrafficPolicy Local).
    pub no_local_endpoints: Vec<Evidence>,
    pub defects: Vec<RuleDefect>,
}

/// Sorts services by name, then key (stable), moving each service once: the sort
/// itself moves indices, not services of a few hundred bytes each (tens of thousands
/// on a big node, made in hash order).
pub fn sort_by_name(services: &mut Vec<Service>) {
    let mut order: Vec<usize> = (0..services.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&services[a], &services[b]);
        (&a.name, &a.key).cmp(&(&b.name, &b.key))
    });
    let mut slots: Vec<Option<Service>> = std::mem::take(services).into_iter().map(Some).collect();
    services.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

impl Service {
    pub fn new(key: impl Into<String>, protocol: Protocol, proxier: Proxier) -> Service {
        Service {
            name: None,
            key: key.into(),
            protocol,
            proxier,
            frontends: Vec::new(),
            endpoints: Vec::new(),
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
            no_endpoints: Vec::new(),
            no_local_endpoints: Vec::new(),
            defects: Vec::new(),
        }
    }

    /// `ns/name:port`, else the chain and cluster IP.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None if self.proxier == Proxier::Ipvs => self.key.clone(),
            None => match self.cluster_ip() {
                Some(f) => format!(
                    "{} ({}:{}/{})",
                    self.key,
                    fmt_ip(f.ip),
                    f.port,
                    self.protocol
                ),
                None => self.key.clone(),
            },
        }
    }

    /// Subject of findings: `service default/web:http`.
    pub fn subject(&self) -> String {
        format!("service {}", self.display_name())
    }

    pub fn cluster_ip(&self) -> Option<&Frontend> {
        self.frontends
            .iter()
            .find(|f| f.kind == FrontendKind::ClusterIp)
    }

    /// The most telling type: LoadBalancer > External > NodePort > ClusterIP.
    pub fn kind(&self) -> FrontendKind {
        self.frontends
            .iter()
            .map(|f| f.kind)
            .max()
            .unwrap_or(FrontendKind::ClusterIp)
    }

    /// Whether `ip:port` is a frontend with a fixed address.
    pub fn answers_on(&self, ip: IpAddr, port: u16) -> bool {
        self.frontends
            .iter()
            .any(|f| f.ip == Some(ip) && f.port == port)
    }

    pub fn has_endpoint(&self, ip: IpAddr, port: u16) -> bool {
        self.endpoints.iter().any(|e| e.ip == ip && e.port == port)
    }

    /// Where the service is programmed (first frontend), for evidence.
    pub fn anchor(&self) -> Option<&Evidence> {
        self.frontends.first().map(|f| &f.evidence)
    }
}

fn fmt_ip(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(a)) => format!("[{a}]"),
        Some(a) => a.to_string(),
        None => "*".into(),
    }
}

/// `ip:port` with brackets for IPv6.
pub fn sockaddr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(a) => format!("[{a}]:{port}"),
        IpAddr::V4(a) => format!("{a}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        let n = ServiceName::parse("kube-system/kube-dns:dns-tcp").unwrap();
        assert_eq!(n.namespace, "kube-system");
        assert_eq!(n.port, "dns-tcp");
        assert_eq!(n.to_string(), "kube-system/kube-dns:dns-tcp");
        assert_eq!(ServiceName::parse("default/kubernetes").unwrap().port, "");
        assert!(ServiceName::parse("cluster IP").is_none());
        assert!(ServiceName::parse("/x").is_none());
    }

    /// The same order as a stable sort of the services themselves: by name (unnamed
    /// first), then key, equal ones in their first order.
    #[test]
    fn sorted_by_name_as_a_stable_sort() {
        let names = [
            Some("b/x:p"),
            None,
            Some("a/y:p"),
            Some("b/x:p"),
            None,
            Some("a/y:"),
            Some("b/x:p"),
        ];
        let keys = ["k2", "k9", "k1", "k1", "k3", "k2", "k2"];
        let services: Vec<Service> = names
            .iter()
            .zip(keys)
            .enumerate()
            .map(|(i, (n, k))| {
                let mut s = Service::new(k, Protocol::Tcp, Proxier::IptablesNft);
                s.name = n.and_then(ServiceName::parse);
                s.affinity_seconds = Some(i as u32); // tells equal ones apart
                s
            })
            .collect();
        let mut expected = services.clone();
        expected.sort_by(|a, b| (&a.name, &a.key).cmp(&(&b.name, &b.key)));
        let mut got = services;
        sort_by_name(&mut got);
        let order = |v: &[Service]| v.iter().map(|s| s.affinity_seconds).collect::<Vec<_>>();
        assert_eq!(order(&got), order(&expected));
        let at = |i: &[u32]| i.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(order(&got), at(&[4, 1, 5, 2, 3, 0, 6]));
    }
}
