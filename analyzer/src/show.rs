//! `netsnap show`: offline `ip`/`ipvsadm`/`conntrack`-like views of a bundle's model.

use crate::inspect::table;
use crate::model::netns::{link_summary, route_summary, state_name};
use crate::model::services::sockaddr;
use crate::model::Model;
use crate::parse::cni::{CniConfigs, CniFile, CniFileKind, CniIpam, CniPlugin};
use crate::parse::Coverage;
use netsnap_schema::Manifest;
use std::fmt::Write;

/// Which view, with its filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Only this netns (id).
    pub netns: Option<String>,
    /// Substring of a pod, service or interface name, or an IP.
    pub filter: Option<String>,
}

impl Filters {
    fn netns_ok(&self, id: &str) -> bool {
        self.netns.as_deref().is_none_or(|n| n == id)
    }
    fn text_ok(&self, hay: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| hay.contains(f))
    }
}

pub fn pods(model: &Model, f: &Filters) -> String {
    let rows: Vec<[String; 5]> = model
        .pods
        .iter()
        .filter(|p| f.netns_ok(&p.netns))
        .map(|p| {
            let ips: Vec<String> = p.ips.iter().map(|i| i.to_string()).collect();
            let ifs: Vec<String> = p
                .interfaces
                .iter()
                .map(|i| match &i.host_name {
                    Some(h) => format!("{}@{h}", i.name),
                    None => format!("{}@?", i.name),
                })
                .collect();
            [
                p.display_name(),
                p.netns.clone(),
                ips.join(","),
                ifs.join(","),
                p.hostname.clone().unwrap_or_default(),
            ]
        })
        .filter(|r| f.text_ok(&r.join(" ")))
        .collect();
    let h = ["POD", "NETNS", "IPS", "INTERFACES (pod@host)", "HOSTNAME"].map(String::from);
    table(&h, &rows)
}

/// ipvsadm -Ln style: one line per frontend, `->` per endpoint.
pub fn services(model: &Model, f: &Filters) -> String {
    let mut out = String::new();
    for s in &model.services {
        let mut block = String::new();
        let _ = writeln!(
            block,
            "{} {} [{}]{}{}{}",
            s.protocol.as_str().to_uppercase(),
            s.display_name(),
            s.proxier.as_str(),
            match s.affinity_seconds {
                Some(t) => format!(" affinity {t}s"),
                None => String::new(),
            },
            if s.external_local {
                " externalTrafficPolicy=Local"
            } else {
                ""
            },
            if s.internal_local {
                " internalTrafficPolicy=Local"
            } else {
                ""
            }
        );
        for fr in &s.frontends {
            let addr = match fr.ip {
                Some(ip) => sockaddr(ip, fr.port),
                None => format!("*:{}", fr.port),
            };
            let _ = writeln!(block, "  {:<12} {addr}", fr.kind.as_str());
        }
        if s.endpoints.is_empty() {
            let _ = writeln!(block, "  -> (no endpoints)");
        }
        for e in &s.endpoints {
            let mut extra = Vec::new();
            if let Some(p) = e.share {
                extra.push(format!("share {:.1}%", p * 100.0));
            }
            if let Some(w) = e.weight {
                extra.push(format!("weight {w}"));
            }
            if let (Some(a), Some(i)) = (e.active_conns, e.inactive_conns) {
                extra.push(format!("active {a} inactive {i}"));
            }
            let _ = writeln!(
                block,
                "  -> {:<24} {}",
                sockaddr(e.ip, e.port),
                extra.join(" ")
            );
        }
        for d in &s.defects {
            let _ = writeln!(block, "  !! {}", d.what);
        }
        if f.text_ok(&block) {
            out.push_str(&block);
        }
    }
    out
}

pub fn links(model: &Model, f: &Filters) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for ns in model.netns.values().filter(|n| f.netns_ok(&n.id)) {
        for l in &ns.links.items {
            let addrs: Vec<String> = ns
                .addrs
                .items
                .iter()
                .filter(|a| a.ifindex == l.ifindex)
                .map(|a| format!("{}/{}", a.address, a.prefix_len))
                .collect();
            let row = [
                ns.id.clone(),
                l.name.clone(),
                state_name(l.state).to_string(),
                format!("{}  {}", link_summary(l), addrs.join(" ")),
            ];
            if f.text_ok(&row.join(" ")) {
                rows.push(row);
            }
        }
    }
    table(
        &["NETNS", "LINK", "STATE", "DETAILS"].map(String::from),
        &rows,
    )
}

pub fn routes(model: &Model, f: &Filters) -> String {
    let mut rows: Vec<[String; 2]> = Vec::new();
    for ns in model.netns.values().filter(|n| f.netns_ok(&n.id)) {
        for r in &ns.routes.items {
            let row = [ns.id.clone(), route_summary(r, ns)];
            if f.text_ok(&row.join(" ")) {
                rows.push(row);
            }
        }
        for r in &ns.rules {
            let row = [
                ns.id.clone(),
                format!(
                    "rule {}: {}{}{} {} table {}",
                    r.priority,
                    r.src
                        .as_deref()
                        .map(|s| format!("from {s} "))
                        .unwrap_or_else(|| "from all ".into()),
                    r.dst
                        .as_deref()
                        .map(|s| format!("to {s} "))
                        .unwrap_or_default(),
                    r.fwmark
                        .map(|m| format!("fwmark {m:#x} "))
                        .unwrap_or_default(),
                    r.action,
                    r.table
                ),
            ];
            if f.text_ok(&row.join(" ")) {
                rows.push(row);
            }
        }
    }
    table(&["NETNS", "ROUTE"].map(String::from), &rows)
}

pub fn conntrack(model: &Model, f: &Filters) -> String {
    let ct = &model.conntrack;
    let mut out = String::new();
    let num = |x: &Option<(u64, crate::check::Evidence)>| {
        x.as_ref()
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| "?".into())
    };
    let _ = writeln!(
        out,
        "entries in bundle {}{}; count {} of max {}, buckets {}",
        ct.entries,
        ct.total_on_node
            .map(|t| format!(" (of {t} on the node)"))
            .unwrap_or_default(),
        num(&ct.count),
        num(&ct.max),
        num(&ct.buckets)
    );
    if !ct.stats.is_empty() {
        let stats: Vec<String> = ct.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "stats (summed over CPUs): {}", stats.join(" "));
    }
    let dnat: Vec<[String; 5]> = ct
        .dnat
        .iter()
        .map(|d| {
            [
                d.protocol.to_string(),
                d.vip_string(),
                d.backend_string(),
                d.flows.to_string(),
                d.unreplied.to_string(),
            ]
        })
        .filter(|r| f.text_ok(&r.join(" ")))
        .collect();
    let _ = writeln!(out, "\nDNAT flows");
    out.push_str(&table(
        &[
            "PROTO",
            "ORIGINAL DST",
            "REPLY SRC (BACKEND)",
            "FLOWS",
            "UNREPLIED",
        ]
        .map(String::from),
        &dnat,
    ));
    let snat: Vec<[String; 4]> = ct
        .snat
        .iter()
        .map(|s| {
            [
                s.protocol.to_string(),
                s.snat_ip.to_string(),
                sockaddr(s.dst, s.dst_port),
                s.flows.to_string(),
            ]
        })
        .filter(|r| f.text_ok(&r.join(" ")))
        .collect();
    let _ = writeln!(out, "\nSNAT flows");
    out.push_str(&table(
        &["PROTO", "SNAT SOURCE", "DESTINATION", "FLOWS"].map(String::from),
        &snat,
    ));
    out
}

pub fn sources(manifest: &Manifest, coverage: &[Coverage], f: &Filters) -> String {
    let rows: Vec<[String; 6]> = manifest
        .sources
        .iter()
        .filter(|s| f.netns_ok(s.netns.as_deref().unwrap_or("")) || f.netns.is_none())
        .map(|s| {
            let cov = s
                .path
                .as_deref()
                .and_then(|p| coverage.iter().find(|c| c.path == p));
            [
                s.name.clone(),
                s.netns.clone().unwrap_or_default(),
                s.status.as_str().to_string(),
                s.path.clone().unwrap_or_default(),
                cov.map(|c| c.recognised.to_string())
                    .unwrap_or_else(|| "-".into()),
                cov.map(|c| c.unrecognised.len().to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .filter(|r| f.text_ok(&r.join(" ")))
        .collect();
    table(
        &[
            "SOURCE",
            "NETNS",
            "STATUS",
            "PATH",
            "RECOGNISED",
            "UNRECOGNISED",
        ]
        .map(String::from),
        &rows,
    )
}

/// The CNI configuration directory: each file in lexical order, the one the runtime
/// uses marked, and per plugin what decides the pods' links and addresses.
pub fn cni(configs: &CniConfigs, f: &Filters) -> String {
    let mut out = String::new();
    if configs.files.is_empty() {
        out.push_str("no CNI configuration in the bundle\n");
    }
    for (i, file) in configs.files.iter().enumerate() {
        let block = cni_file(file, configs.used == Some(i));
        if f.text_ok(&block) {
            out.push_str(&block);
        }
    }
    out
}

fn cni_file(file: &CniFile, used: bool) -> String {
    let mut block = String::new();
    let mark = if used { "  (in use)" } else { "" };
    let _ = writeln!(block, "{}{mark}", file.path);
    let Some(c) = &file.config else {
        let why = match file.kind {
            CniFileKind::Ignored => "not a .conf/.conflist/.json file: ignored by the runtime",
            CniFileKind::Conf | CniFileKind::Conflist => "not valid JSON (see coverage)",
        };
        let _ = writeln!(block, "  {why}");
        return block;
    };
    let _ = writeln!(
        block,
        "  network {} cniVersion {}",
        c.name.as_deref().unwrap_or("?"),
        c.cni_version.as_deref().unwrap_or("?")
    );
    for p in &c.plugins {
        cni_plugin(&mut block, p, "  - ");
    }
    block
}

fn cni_plugin(block: &mut String, p: &CniPlugin, lead: &str) {
    let mut parts = vec![p.plugin_type.clone().unwrap_or_else(|| "?".into())];
    let flag = |name: &str, v: Option<bool>| v.map(|b| format!("{name}={b}"));
    parts.extend(p.bridge.as_ref().map(|b| format!("bridge={b}")));
    parts.extend(p.mtu.map(|m| format!("mtu={m}")));
    parts.extend(flag("hairpinMode", p.hairpin_mode));
    parts.extend(flag("ipMasq", p.ip_masq));
    parts.extend(flag("isGateway", p.is_gateway));
    parts.extend(flag("isDefaultGateway", p.is_default_gateway));
    if let Some(ipam) = &p.ipam {
        parts.push(format!("ipam={}", ipam_summary(ipam)));
    }
    if !p.extra.is_empty() {
        let keys: Vec<&str> = p.extra.keys().map(String::as_str).collect();
        parts.push(format!("(also {})", keys.join(",")));
    }
    let _ = writeln!(block, "{lead}{}", parts.join(" "));
    if let Some(d) = &p.delegate {
        cni_plugin(block, d, "      delegate: ");
    }
}

fn ipam_summary(ipam: &CniIpam) -> String {
    let mut parts = vec![ipam.ipam_type.clone().unwrap_or_else(|| "?".into())];
    let subnets = ipam.subnet.iter().chain(
        ipam.ranges
            .iter()
            .flatten()
            .filter_map(|r| r.subnet.as_ref()),
    );
    let subnets: Vec<&str> = subnets.map(String::as_str).collect();
    if !subnets.is_empty() {
        parts.push(format!("subnets {}", subnets.join(",")));
    }
    if let Some(d) = &ipam.data_dir {
        parts.push(format!("dataDir {d}"));
    }
    if !ipam.routes.is_empty() {
        let routes: Vec<String> = ipam
            .routes
            .iter()
            .map(|r| {
                let dst = r.dst.as_deref().unwrap_or("?");
                match &r.gw {
                    Some(gw) => format!("{dst} via {gw}"),
                    None => dst.to_string(),
                }
            })
            .collect();
        parts.push(format!("routes {}", routes.join(",")));
    }
    format!("[{}]", parts.join(" "))
}
