//! Services from a Cilium agent's listing (`cilium/service-list.json`): on a node
//! without kube-proxy this is the only record of them. Each frontend becomes a service
//! of proxier `cilium` with its active backends as endpoints, so the service checks
//! (no endpoints, stale endpoint, nothing listening) read it like kube-proxy's rules.

use super::services::{Endpoint, Frontend, FrontendKind, Protocol, Proxier, Service, ServiceName};
use super::{Evidence, Model};
use crate::parse::cilium::CiliumService;
use crate::sources::Sources;
use netsnap_schema::layout;

pub fn services(model: &mut Model, src: &Sources<'_>) {
    let Some(p) = &src.cilium else { return };
    for c in &p.model.services {
        if let Some(s) = service(c) {
            model.services.push(s);
        }
    }
}

fn service(c: &CiliumService) -> Option<Service> {
    let kind = match c.kind.as_str() {
        "ClusterIP" => FrontendKind::ClusterIp,
        "NodePort" => FrontendKind::NodePort,
        "ExternalIPs" => FrontendKind::ExternalIp,
        "LoadBalancer" => FrontendKind::LoadBalancer,
        // HostPort, LocalRedirect …: not a Kubernetes service's frontend.
        _ => return None,
    };
    // An agent before 1.16 does not say: its services took TCP and UDP alike; taken
    // as TCP (the name of the finding says which).
    let protocol = Protocol::parse(&c.protocol).unwrap_or(Protocol::Tcp);
    let evidence = Evidence::new(layout::CILIUM_SERVICES, Some(c.index), c.summary.clone());
    let key = match c.id {
        Some(id) => format!("cilium service {id}"),
        None => format!("cilium service {}", c.summary),
    };
    let mut s = Service::new(key, protocol, Proxier::Cilium);
    s.name = match (&c.namespace, &c.name) {
        (Some(ns), Some(n)) => Some(ServiceName {
            namespace: ns.clone(),
            name: n.clone(),
            port: c.port.to_string(),
        }),
        _ => None,
    };
    s.frontends.push(Frontend {
        kind,
        ip: Some(c.frontend),
        port: c.port,
        evidence: evidence.clone(),
    });
    // Terminating, quarantined or in-maintenance backends take no new connections.
    for b in c
        .backends
        .iter()
        .filter(|b| b.state.is_empty() || b.state == "active")
    {
        s.endpoints.push(Endpoint {
            ip: b.ip,
            port: b.port,
            chain: None,
            share: None,
            weight: b.weight.and_then(|w| u32::try_from(w).ok()),
            active_conns: None,
            inactive_conns: None,
            evidence: evidence.clone(),
        });
    }
    Some(s)
}
