//! `cilium/service-list.json`: `cilium-dbg service list -o json`, the services a
//! Cilium agent load-balances (the agent API's `[]Service`: `spec.id`,
//! `spec.frontend-address {ip, port, protocol, scope}`, `spec.backend-addresses [{ip,
//! port, state, weight}]`, `spec.flags {type, name, namespace, trafficPolicy …}`).
//!
//! A "line" is one service of the array (1-based), as for every JSON source. A service
//! without a frontend address, or whose addresses do not parse, is an unrecognised
//! line with the reason; invalid JSON is one unrecognised line 1. Fields not read
//! here are ignored (the agent adds fields between versions).

use super::coverage::{Coverage, Parsed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;

/// The services of the listing, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CiliumServices {
    pub services: Vec<CiliumService>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiliumService {
    /// 1-based index in the array (the evidence's line).
    pub index: usize,
    pub id: Option<i64>,
    pub frontend: IpAddr,
    pub port: u16,
    /// `TCP`, `UDP`, `SCTP`, or `ANY` when the agent does not say (before 1.16).
    pub protocol: String,
    /// `ClusterIP`, `NodePort`, `ExternalIPs`, `LoadBalancer`, `HostPort`,
    /// `LocalRedirect` …
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub backends: Vec<CiliumBackend>,
    /// One line for evidence: `10.96.0.10:53/UDP ClusterIP kube-system/kube-dns (2
    /// backends)`.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiliumBackend {
    pub ip: IpAddr,
    pub port: u16,
    /// `active`, `terminating`, `quarantined`, `maintenance` (empty: not said).
    pub state: String,
    pub weight: Option<u64>,
}

pub fn parse_cilium_services(path: &str, text: &str) -> Parsed<CiliumServices> {
    let mut cov = Coverage::new(path);
    let mut model = CiliumServices::default();
    let items = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Null) => Vec::new(),
        Ok(_) => {
            cov.miss(1, first_line(text), "not a JSON array of services");
            return Parsed {
                model,
                coverage: cov,
            };
        }
        Err(e) => {
            let line = e.line().max(1);
            let shown = text.lines().nth(line - 1).unwrap_or("");
            cov.miss(line, shown, format!("invalid JSON: {e}"));
            return Parsed {
                model,
                coverage: cov,
            };
        }
    };
    for (i, item) in items.iter().enumerate() {
        match service(i + 1, item) {
            Ok(s) => {
                cov.ok();
                model.services.push(s);
            }
            Err(why) => cov.miss(i + 1, &compact(item), why),
        }
    }
    Parsed {
        model,
        coverage: cov,
    }
}

fn service(index: usize, item: &Value) -> Result<CiliumService, String> {
    let spec = item.get("spec").ok_or("no spec")?;
    let fe = spec.get("frontend-address").ok_or("no frontend-address")?;
    let frontend = address(fe)?;
    let fe_port = port(fe)?;
    let protocol = fe
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("ANY")
        .to_ascii_uppercase();
    let flags = spec.get("flags");
    let flag = |k: &str| {
        flags
            .and_then(|f| f.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    // Absent or null: no backends. Anything but an array is not understood (taking
    // it for "no backends" would invent a service without endpoints).
    let listed = match spec.get("backend-addresses") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err("backend-addresses is not an array".into()),
    };
    let mut backends = Vec::new();
    for (j, b) in listed.iter().enumerate() {
        let ip = address(b).map_err(|e| format!("backend {}: {e}", j + 1))?;
        backends.push(CiliumBackend {
            ip,
            port: port(b).map_err(|e| format!("backend {}: {e}", j + 1))?,
            state: b
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            weight: b.get("weight").and_then(Value::as_u64),
        });
    }
    let kind = flag("type").unwrap_or_else(|| "ClusterIP".into());
    let (namespace, name) = (flag("namespace"), flag("name"));
    let who = match (&namespace, &name) {
        (Some(ns), Some(n)) => format!(" {ns}/{n}"),
        _ => String::new(),
    };
    let summary = format!(
        "{}/{protocol} {kind}{who} ({} backends)",
        crate::model::services::sockaddr(frontend, fe_port),
        backends.len()
    );
    Ok(CiliumService {
        index,
        id: spec.get("id").and_then(Value::as_i64),
        frontend,
        port: fe_port,
        protocol,
        kind,
        namespace,
        name,
        backends,
        summary,
    })
}

fn address(v: &Value) -> Result<IpAddr, String> {
    let s = v.get("ip").and_then(Value::as_str).ok_or("no ip")?;
    s.parse().map_err(|_| format!("ip {s:?} is not an address"))
}

fn port(v: &Value) -> Result<u16, String> {
    match v.get("port") {
        None => Ok(0),
        Some(p) => p
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("port {p} is not a port number")),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The item on one line, for an unrecognised line's text.
fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"[
  {"spec": {"id": 1, "frontend-address": {"ip": "10.96.0.1", "port": 443, "protocol": "TCP", "scope": "external"},
            "backend-addresses": [{"ip": "172.18.0.2", "port": 6443, "state": "active", "weight": 1}],
            "flags": {"type": "ClusterIP", "name": "kubernetes", "namespace": "default"}},
   "status": {"realized": {}}},
  {"spec": {"id": 2, "frontend-address": {"ip": "10.96.0.10", "port": 53},
            "backend-addresses": [],
            "flags": {"type": "ClusterIP", "name": "kube-dns", "namespace": "kube-system"}}},
  {"spec": {"id": 3, "frontend-address": {"ip": "not-an-ip", "port": 80}}},
  {"spec": {"id": 4, "frontend-address": {"ip": "fd00::1", "port": 70000}}},
  {"spec": {"id": 5, "frontend-address": {"ip": "fd00::1", "port": 80}, "backend-addresses": {"ip": "fd00::2"}}}
]"#;

    #[test]
    fn services_backends_and_what_is_not_understood() {
        let p = parse_cilium_services("cilium/service-list.json", LISTING);
        assert_eq!(p.model.services.len(), 2);
        let k = &p.model.services[0];
        assert_eq!(
            (
                k.frontend.to_string(),
                k.port,
                k.protocol.as_str(),
                k.kind.as_str()
            ),
            ("10.96.0.1".into(), 443, "TCP", "ClusterIP")
        );
        assert_eq!(k.backends[0].ip.to_string(), "172.18.0.2");
        assert_eq!(k.backends[0].state, "active");
        assert_eq!(
            k.summary,
            "10.96.0.1:443/TCP ClusterIP default/kubernetes (1 backends)"
        );
        assert_eq!(
            p.model.services[1].protocol, "ANY",
            "older agents do not say"
        );
        assert_eq!(p.coverage.recognised, 2);
        let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert!(p.coverage.unrecognised[0].reason.contains("not an address"));
        assert!(p.coverage.unrecognised[1]
            .reason
            .contains("not a port number"));
        let why = &p.coverage.unrecognised[2].reason;
        assert_eq!(why, "backend-addresses is not an array");
    }

    #[test]
    fn invalid_json_is_one_unrecognised_line_where_it_breaks() {
        let p = parse_cilium_services("x", "[\n  {\"spec\": \n");
        assert!(p.model.services.is_empty());
        assert_eq!(p.coverage.unrecognised.len(), 1);
        assert!(p.coverage.unrecognised[0]
            .reason
            .starts_with("invalid JSON"));
        let p = parse_cilium_services("x", "{\"spec\": {}}");
        assert_eq!(
            p.coverage.unrecognised[0].reason,
            "not a JSON array of services"
        );
        assert!(parse_cilium_services("x", "null").coverage.is_complete());
    }
}
