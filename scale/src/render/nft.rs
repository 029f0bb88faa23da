//! `netfilter/nft.json` as the collector writes it: `{"nftables":[` + nft's metainfo +
//! every object of the tables iptables-nft does not manage, each as `nft -j` prints
//! it (jansson's `", "` and `": "` spacing, keys in nft's order) + `]}`.
//!
//! In nftables proxy mode that is kube-proxy's `table ip kube-proxy` in its vmap
//! form (service chains `numgen random mod N vmap { i : goto endpoint-… }`), as
//! captured in analyzer/tests/integration/data/nft-kube-proxy-vmap.json.

use crate::plan::{Plan, Service, CLUSTER_CIDR, NODE_IP, SERVICE_CIDR};
use std::io::{self, Write};

const METAINFO: &str = r#"{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}"#;

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn split_cidr(cidr: &str) -> (&str, &str) {
    cidr.split_once('/').unwrap_or((cidr, "32"))
}

/// The document for a node whose kube-proxy runs in iptables mode: no table besides
/// those iptables-nft manages, which the collector leaves out.
pub fn write_empty<W: Write>(out: &mut W) -> io::Result<()> {
    writeln!(out, "{{\"nftables\":[{METAINFO}]}}")
}

struct Doc<'w, W: Write> {
    out: &'w mut W,
    handle: u64,
}

impl<W: Write> Doc<'_, W> {
    fn obj(&mut self, json: &str) -> io::Result<()> {
        self.out.write_all(b",")?;
        self.out.write_all(json.as_bytes())
    }

    fn next_handle(&mut self) -> u64 {
        self.handle += 1;
        self.handle
    }

    fn chain(&mut self, name: &str, base: Option<(&str, &str, i32)>) -> io::Result<()> {
        let h = self.next_handle();
        let hook = match base {
            Some((ty, hook, prio)) => format!(
                ", \"type\": {}, \"hook\": {}, \"prio\": {prio}, \"policy\": \"accept\"",
                js(ty),
                js(hook)
            ),
            None => String::new(),
        };
        self.obj(&format!(
            "{{\"chain\": {{\"family\": \"ip\", \"table\": \"kube-proxy\", \"name\": {}, \"handle\": {h}{hook}}}}}",
            js(name)
        ))
    }

    fn rule(&mut self, chain: &str, comment: Option<&str>, expr: &str) -> io::Result<()> {
        let h = self.next_handle();
        let comment = comment
            .map(|c| format!(", \"comment\": {}", js(c)))
            .unwrap_or_default();
        self.obj(&format!(
            "{{\"rule\": {{\"family\": \"ip\", \"table\": \"kube-proxy\", \"chain\": {}, \"handle\": {h}{comment}, \"expr\": [{expr}]}}}}",
            js(chain)
        ))
    }

    fn map(&mut self, name: &str, ty: &str, comment: &str, elems: &[String]) -> io::Result<()> {
        let h = self.next_handle();
        let elem = if elems.is_empty() {
            String::new()
        } else {
            format!(", \"elem\": [{}]", elems.join(", "))
        };
        self.obj(&format!(
            "{{\"map\": {{\"family\": \"ip\", \"name\": {}, \"table\": \"kube-proxy\", \"type\": {ty}, \"handle\": {h}, \"comment\": {}, \"map\": \"verdict\"{elem}}}}}",
            js(name),
            js(comment)
        ))
    }

    fn set(&mut self, name: &str, comment: &str, elems: &[String]) -> io::Result<()> {
        let h = self.next_handle();
        let elem = if elems.is_empty() {
            String::new()
        } else {
            format!(", \"elem\": [{}]", elems.join(", "))
        };
        self.obj(&format!(
            "{{\"set\": {{\"family\": \"ip\", \"name\": {}, \"table\": \"kube-proxy\", \"type\": \"ipv4_addr\", \"handle\": {h}, \"comment\": {}{elem}}}}}",
            js(name),
            js(comment)
        ))
    }
}

const ADDR_PROTO_PORT: &str = r#"["ipv4_addr", "inet_proto", "inet_service"]"#;
const PROTO_PORT: &str = r#"["inet_proto", "inet_service"]"#;
const CT_NEW: &str = r#"{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}"#;
const DADDR_PROTO_PORT: &str = r#"{"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}"#;
const PROTO_DPORT: &str = r#"{"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}"#;
const DADDR_NODEPORT_IPS: &str = r#"{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@nodeport-ips"}}"#;
const MARK_OR: &str = r#"{"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, 16384]}}}"#;
const REJECT: &str = r#"{"reject": {"type": "icmp", "expr": "port-unreachable"}}"#;

fn jump(target: &str) -> String {
    format!("{{\"jump\": {{\"target\": {}}}}}", js(target))
}

fn goto(target: &str) -> String {
    format!("{{\"goto\": {{\"target\": {}}}}}", js(target))
}

fn vmap(key: &str, data: &str) -> String {
    format!("{{\"vmap\": {{\"key\": {key}, \"data\": {}}}}}", js(data))
}

fn concat(s: &Service) -> String {
    format!(
        "{{\"concat\": [{}, {}, {}]}}",
        js(&s.vip.ip().to_string()),
        js(s.protocol.lower()),
        s.vip.port()
    )
}

/// kube-proxy's table for `plan.services`, nftables mode.
pub fn write_kube_proxy<W: Write>(plan: &Plan, out: &mut W) -> io::Result<()> {
    out.write_all(b"{\"nftables\":[")?;
    out.write_all(METAINFO.as_bytes())?;
    let mut d = Doc { out, handle: 0 };
    d.obj(r#"{"table": {"family": "ip", "name": "kube-proxy", "handle": 2}}"#)?;

    let mut vips: Vec<_> = plan.services.iter().map(|s| *s.vip.ip()).collect();
    vips.sort();
    vips.dedup();
    let vips: Vec<String> = vips.iter().map(|v| js(&v.to_string())).collect();
    d.set("cluster-ips", "Active ClusterIPs", &vips)?;
    d.set(
        "nodeport-ips",
        "IPs that accept NodePort traffic",
        &[js(&NODE_IP.to_string())],
    )?;
    let no_eps: Vec<String> = plan
        .services
        .iter()
        .filter(|s| s.endpoints.is_empty())
        .map(|s| {
            format!(
                "[{{\"elem\": {{\"val\": {}, \"comment\": {}}}}}, {}]",
                concat(s),
                js(&s.port_name_string()),
                goto("reject-chain")
            )
        })
        .collect();
    d.map(
        "no-endpoint-services",
        ADDR_PROTO_PORT,
        "vmap to drop or reject packets to services with no endpoints",
        &no_eps,
    )?;
    d.map(
        "no-endpoint-nodeports",
        PROTO_PORT,
        "vmap to drop or reject packets to service nodeports with no endpoints",
        &[],
    )?;
    d.map(
        "firewall-ips",
        ADDR_PROTO_PORT,
        "destinations that are subject to LoadBalancerSourceRanges",
        &[],
    )?;
    let service_ips: Vec<String> = plan
        .services
        .iter()
        .filter(|s| !s.endpoints.is_empty())
        .map(|s| format!("[{}, {}]", concat(s), goto(&s.nft_service_chain())))
        .collect();
    d.map(
        "service-ips",
        ADDR_PROTO_PORT,
        "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        &service_ips,
    )?;
    d.map("service-nodeports", PROTO_PORT, "NodePort traffic", &[])?;

    for (name, base) in [
        ("filter-prerouting", Some(("filter", "prerouting", -110))),
        ("filter-input", Some(("filter", "input", -110))),
        ("filter-forward", Some(("filter", "forward", -110))),
        ("filter-output", Some(("filter", "output", -110))),
        ("filter-output-post-dnat", Some(("filter", "output", -90))),
        ("nat-prerouting", Some(("nat", "prerouting", -100))),
        ("nat-output", Some(("nat", "output", -100))),
        ("nat-postrouting", Some(("nat", "postrouting", 100))),
        ("mark-for-masquerade", None),
        ("masquerading", None),
        ("services", None),
        ("service-endpoints-check", None),
        ("nodeport-endpoints-check", None),
        ("reject-chain", None),
        ("firewall-check", None),
        ("cluster-ips-check", None),
    ] {
        d.chain(name, base)?;
    }
    for s in plan.services.iter().filter(|s| !s.endpoints.is_empty()) {
        d.chain(&s.nft_service_chain(), None)?;
        for ep in &s.endpoints {
            d.chain(&s.nft_endpoint_chain(ep), None)?;
        }
    }

    let ct_new_jump = |t: &str| format!("{CT_NEW}, {}", jump(t));
    d.rule("filter-prerouting", None, &ct_new_jump("firewall-check"))?;
    d.rule(
        "filter-input",
        None,
        &ct_new_jump("nodeport-endpoints-check"),
    )?;
    d.rule(
        "filter-input",
        None,
        &ct_new_jump("service-endpoints-check"),
    )?;
    d.rule(
        "filter-forward",
        None,
        &ct_new_jump("service-endpoints-check"),
    )?;
    d.rule("filter-forward", None, &ct_new_jump("cluster-ips-check"))?;
    d.rule(
        "filter-output",
        None,
        &ct_new_jump("service-endpoints-check"),
    )?;
    d.rule("filter-output", None, &ct_new_jump("firewall-check"))?;
    d.rule(
        "filter-output-post-dnat",
        None,
        &ct_new_jump("cluster-ips-check"),
    )?;
    d.rule("nat-prerouting", None, &jump("services"))?;
    d.rule("nat-output", None, &jump("services"))?;
    d.rule("nat-postrouting", None, &jump("masquerading"))?;
    d.rule("mark-for-masquerade", None, MARK_OR)?;
    d.rule(
        "masquerading",
        None,
        r#"{"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 0}}, {"return": null}"#,
    )?;
    d.rule(
        "masquerading",
        None,
        r#"{"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"^": [{"meta": {"key": "mark"}}, 16384]}}}"#,
    )?;
    d.rule(
        "masquerading",
        None,
        r#"{"masquerade": {"flags": "fully-random"}}"#,
    )?;
    d.rule("services", None, &vmap(DADDR_PROTO_PORT, "@service-ips"))?;
    d.rule(
        "services",
        None,
        &format!(
            "{DADDR_NODEPORT_IPS}, {}",
            vmap(PROTO_DPORT, "@service-nodeports")
        ),
    )?;
    d.rule(
        "service-endpoints-check",
        None,
        &vmap(DADDR_PROTO_PORT, "@no-endpoint-services"),
    )?;
    d.rule(
        "nodeport-endpoints-check",
        None,
        &format!(
            "{DADDR_NODEPORT_IPS}, {}",
            vmap(PROTO_DPORT, "@no-endpoint-nodeports")
        ),
    )?;
    d.rule("reject-chain", None, REJECT)?;
    d.rule(
        "firewall-check",
        None,
        &vmap(DADDR_PROTO_PORT, "@firewall-ips"),
    )?;
    d.rule(
        "cluster-ips-check",
        Some("Reject traffic to invalid ports of ClusterIPs"),
        &format!(
            "{{\"match\": {{\"op\": \"==\", \"left\": {{\"payload\": {{\"protocol\": \"ip\", \"field\": \"daddr\"}}}}, \"right\": \"@cluster-ips\"}}}}, {REJECT}"
        ),
    )?;
    let (svc_net, svc_len) = split_cidr(SERVICE_CIDR);
    d.rule(
        "cluster-ips-check",
        Some("Drop traffic to unallocated ClusterIPs"),
        &format!(
            "{{\"match\": {{\"op\": \"==\", \"left\": {{\"payload\": {{\"protocol\": \"ip\", \"field\": \"daddr\"}}}}, \"right\": {{\"prefix\": {{\"addr\": {}, \"len\": {svc_len}}}}}}}}}, {{\"drop\": null}}",
            js(svc_net)
        ),
    )?;

    let (cl_net, cl_len) = split_cidr(CLUSTER_CIDR);
    for s in plan.services.iter().filter(|s| !s.endpoints.is_empty()) {
        let chain = s.nft_service_chain();
        let proto = s.protocol.lower();
        d.rule(
            &chain,
            None,
            &format!(
                "{{\"match\": {{\"op\": \"==\", \"left\": {{\"payload\": {{\"protocol\": \"ip\", \"field\": \"daddr\"}}}}, \"right\": {}}}}}, {{\"match\": {{\"op\": \"==\", \"left\": {{\"payload\": {{\"protocol\": {}, \"field\": \"dport\"}}}}, \"right\": {}}}}}, {{\"match\": {{\"op\": \"!=\", \"left\": {{\"payload\": {{\"protocol\": \"ip\", \"field\": \"saddr\"}}}}, \"right\": {{\"prefix\": {{\"addr\": {}, \"len\": {cl_len}}}}}}}}}, {}",
                js(&s.vip.ip().to_string()),
                js(proto),
                s.vip.port(),
                js(cl_net),
                jump("mark-for-masquerade")
            ),
        )?;
        let targets: Vec<String> = s
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, ep)| format!("[{i}, {}]", goto(&s.nft_endpoint_chain(ep))))
            .collect();
        d.rule(
            &chain,
            None,
            &format!(
                "{{\"vmap\": {{\"key\": {{\"numgen\": {{\"mode\": \"random\", \"mod\": {}, \"offset\": 0}}}}, \"data\": {{\"set\": [{}]}}}}}}",
                s.endpoints.len(),
                targets.join(", ")
            ),
        )?;
        for ep in &s.endpoints {
            let echain = s.nft_endpoint_chain(ep);
            let ip = js(&ep.ip().to_string());
            d.rule(
                &echain,
                None,
                &format!(
                    "{{\"match\": {{\"op\": \"==\", \"left\": {{\"payload\": {{\"protocol\": \"ip\", \"field\": \"saddr\"}}}}, \"right\": {ip}}}}}, {}",
                    jump("mark-for-masquerade")
                ),
            )?;
            d.rule(
                &echain,
                None,
                &format!(
                    "{{\"match\": {{\"op\": \"==\", \"left\": {{\"meta\": {{\"key\": \"l4proto\"}}}}, \"right\": {}}}}}, {{\"dnat\": {{\"addr\": {ip}, \"port\": {}}}}}",
                    js(proto),
                    ep.port()
                ),
            )?;
        }
    }
    d.out.write_all(b"]}\n")
}
