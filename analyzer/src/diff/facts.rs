//! One bundle flattened into keyed facts: every subject (a service, a pod, a link …)
//! with its fields as text, keyed so that the same thing in two bundles gets the same
//! key whatever its ifindex, netns inode or position in a file.
//!
//! Netns are named by what they hold, not by their id: `node`, `pod ns/name`, else
//! `netns <id>`, so a pod whose sandbox was recreated is still the same pod.

use super::Category;
use crate::model::netns::state_name;
use crate::model::{Model, Netns, Service};
use crate::sources::Sources;
use netsnap_schema::model::{Link, Route, Rule};
use std::collections::{BTreeMap, BTreeSet};

/// One subject's fields, and the subject it belongs to: when that parent is only in
/// one bundle, the parent's own added/removed entry says it all and the children's
/// are left out (a removed pod is one entry, not one per link, route and sysctl).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    pub parent: Option<(Category, String)>,
    pub fields: BTreeMap<String, String>,
}

impl Entity {
    fn child_of(parent: Option<(Category, String)>) -> Entity {
        Entity {
            parent,
            fields: BTreeMap::new(),
        }
    }

    fn set(&mut self, field: &str, value: impl Into<String>) {
        self.fields.insert(field.to_string(), value.into());
    }

    fn set_opt(&mut self, field: &str, value: Option<impl Into<String>>) {
        if let Some(v) = value {
            self.set(field, v);
        }
    }

    /// `field value; field value` for an added or removed subject.
    pub fn describe(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Every subject of a bundle, by (category, subject).
pub type Facts = BTreeMap<(Category, String), Entity>;

/// Sysctls that are counters, not settings (their change over time is a rate).
pub const VOLATILE_SYSCTLS: &[&str] = &["net.netfilter.nf_conntrack_count"];

/// The facts of one bundle.
pub fn collect(input: &super::Input<'_, '_>) -> Facts {
    let (model, sources) = (input.model, input.sources);
    let mut f = Facts::new();
    datapath(model, &mut f);
    services(model, &mut f);
    let scopes = scopes(model);
    pods(model, &scopes, &mut f);
    for (id, ns) in &model.netns {
        let scope = &scopes[id];
        if scope.parent.is_none() && !ns.is_root {
            let e = f.entry((Category::Netns, scope.name.clone())).or_default();
            e.set("id", id.clone());
        }
        links(ns, scope, &mut f);
        addresses(ns, scope, &mut f);
        routes(ns, scope, &mut f);
        rules(ns, scope, &mut f);
        netns_sysctls(ns, scope, &mut f);
        if let (Some(r), false) = (&ns.resolv, ns.is_root) {
            dns(r, &scope.name, scope.parent.clone(), &mut f);
        }
    }
    node_sysctls(model, sources, &mut f);
    if let Some(r) = &model.dns.host {
        dns(r, "node", None, &mut f);
    } else if let Some(r) = model.root().and_then(|n| n.resolv.as_ref()) {
        dns(r, "node", None, &mut f);
    }
    if let Some(r) = &model.dns.kubelet {
        dns(r, "kubelet", None, &mut f);
    }
    iptables_chains(sources, &mut f);
    nft_chains(sources, &mut f);
    f
}

/// How the facts of one netns are named.
struct Scope {
    name: String,
    parent: Option<(Category, String)>,
}

/// `node`, `pod ns/name` or `netns <id>` for every netns (ids added where two would
/// share a name).
fn scopes(model: &Model) -> BTreeMap<String, Scope> {
    let mut named: Vec<(String, Scope)> = model
        .netns
        .values()
        .map(|ns| {
            let scope = if ns.is_root {
                Scope {
                    name: "node".into(),
                    parent: None,
                }
            } else if let Some(p) = model.pod_in(&ns.id) {
                let name = p.display_name();
                Scope {
                    name: format!("pod {name}"),
                    parent: Some((Category::Pod, name)),
                }
            } else {
                let name = format!("netns {}", ns.id);
                Scope {
                    name: name.clone(),
                    parent: Some((Category::Netns, name)),
                }
            };
            (ns.id.clone(), scope)
        })
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, s) in &named {
        *seen.entry(s.name.clone()).or_default() += 1;
    }
    for (id, s) in &mut named {
        if seen[&s.name] > 1 {
            s.name = format!("{} [{id}]", s.name);
            if let Some((_, p)) = &mut s.parent {
                *p = format!("{p} [{id}]");
            }
        }
    }
    named.into_iter().collect()
}

fn datapath(model: &Model, f: &mut Facts) {
    let d = &model.datapath;
    let e = f.entry((Category::Datapath, "node".into())).or_default();
    let names = |v: &[crate::model::datapath::Named]| match v.is_empty() {
        true => "none".to_string(),
        false => v
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
    };
    e.set("cni", d.cni.as_ref().map_or("unknown", |c| c.name.as_str()));
    e.set("overlays", names(&d.overlays));
    e.set("service_proxy", names(&d.service_proxy));
    e.set("families", d.families.join(" + "));
    e.set(
        "cni_config",
        model.cni.in_use().map_or("none", |c| c.file.as_str()),
    );
}

/// `default/web:http tcp (iptables-nft)`.
pub fn service_subject(s: &Service) -> String {
    format!(
        "{} {} ({})",
        s.display_name(),
        s.protocol,
        s.proxier.as_str()
    )
}

fn services(model: &Model, f: &mut Facts) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for s in &model.services {
        let mut subject = service_subject(s);
        let mut n = 2;
        while !seen.insert(subject.clone()) {
            subject = format!("{} #{n}", service_subject(s));
            n += 1;
        }
        let e = f.entry((Category::Service, subject.clone())).or_default();
        let mut fronts: Vec<String> = s
            .frontends
            .iter()
            .map(|fe| match fe.ip {
                Some(ip) => format!(
                    "{} {}",
                    fe.kind.as_str(),
                    crate::model::services::sockaddr(ip, fe.port)
                ),
                None => format!("{} *:{}", fe.kind.as_str(), fe.port),
            })
            .collect();
        fronts.sort();
        fronts.dedup();
        e.set("frontends", fronts.join(", "));
        e.set("endpoints", s.endpoints.len().to_string());
        e.set_opt(
            "affinity_seconds",
            s.affinity_seconds.map(|a| a.to_string()),
        );
        if s.external_local {
            e.set("external_traffic_policy", "Local");
        }
        if s.internal_local {
            e.set("internal_traffic_policy", "Local");
        }
        for ep in &s.endpoints {
            let key = format!(
                "{subject} -> {}",
                crate::model::services::sockaddr(ep.ip, ep.port)
            );
            let parent = Some((Category::Service, subject.clone()));
            let e = f
                .entry((Category::Endpoint, key))
                .or_insert_with(|| Entity::child_of(parent));
            e.set("endpoint", crate::model::services::sockaddr(ep.ip, ep.port));
            e.set_opt("weight", ep.weight.map(|w| w.to_string()));
        }
    }
}

fn pods(model: &Model, scopes: &BTreeMap<String, Scope>, f: &mut Facts) {
    for p in &model.pods {
        let Some((_, subject)) = scopes.get(&p.netns).and_then(|s| s.parent.clone()) else {
            continue;
        };
        let e = f.entry((Category::Pod, subject)).or_default();
        let mut ips: Vec<String> = p.ips.iter().map(|ip| ip.to_string()).collect();
        ips.sort();
        e.set("ips", ips.join(", "));
        e.set("netns", p.netns.clone());
        let ifaces: Vec<String> = p
            .interfaces
            .iter()
            .map(|i| match &i.host_name {
                Some(h) => format!("{} <-> node {h}", i.name),
                None => format!("{} <-> (no host peer)", i.name),
            })
            .collect();
        e.set("interfaces", ifaces.join(", "));
    }
}

fn links(ns: &Netns, scope: &Scope, f: &mut Facts) {
    for l in &ns.links.items {
        let e = f
            .entry((Category::Link, format!("{} {}", scope.name, l.name)))
            .or_insert_with(|| Entity::child_of(scope.parent.clone()));
        link_fields(ns, l, e);
    }
}

fn link_fields(ns: &Netns, l: &Link, e: &mut Entity) {
    e.set_opt("kind", l.kind.clone());
    e.set("state", state_name(l.state));
    e.set("mtu", l.mtu.to_string());
    e.set_opt(
        "master",
        l.master.map(|m| {
            ns.link(m)
                .map(|(_, ml)| ml.name.clone())
                .unwrap_or_else(|| format!("if{m}"))
        }),
    );
    e.set_opt(
        "hairpin",
        l.bridge_port
            .as_ref()
            .map(|bp| if bp.hairpin { "on" } else { "off" }),
    );
}

fn dev_name(ns: &Netns, ifindex: u32) -> String {
    ns.link(ifindex)
        .map(|(_, l)| l.name.clone())
        .unwrap_or_else(|| format!("if{ifindex}"))
}

fn addresses(ns: &Netns, scope: &Scope, f: &mut Facts) {
    for a in &ns.addrs.items {
        let dev = dev_name(ns, a.ifindex);
        let subject = format!("{} {dev} {}/{}", scope.name, a.address, a.prefix_len);
        let e = f
            .entry((Category::Address, subject))
            .or_insert_with(|| Entity::child_of(scope.parent.clone()));
        e.set("scope", a.scope.clone());
    }
}

fn table_name(t: u32) -> String {
    match t {
        254 => "main".into(),
        253 => "default".into(),
        255 => "local".into(),
        n => n.to_string(),
    }
}

/// Routes of every table but `local` (which the kernel derives from the addresses,
/// compared on their own), keyed as the kernel keys them: IPv4 by table, destination
/// and metric; IPv6 by the device too (every link has its own `fe80::/64`).
fn routes(ns: &Netns, scope: &Scope, f: &mut Facts) {
    for r in ns.routes.items.iter().filter(|r| r.table != 255) {
        let mut subject = format!("{} table {} {}", scope.name, table_name(r.table), r.dst);
        if r.family == "inet6" {
            if r.dst == "default" {
                subject.push_str(" (inet6)");
            }
            if let Some(o) = r.oif {
                subject.push_str(&format!(" dev {}", dev_name(ns, o)));
            }
        }
        if let Some(m) = r.metric {
            subject.push_str(&format!(" metric {m}"));
        }
        let e = f
            .entry((Category::Route, unique(f, Category::Route, subject)))
            .or_insert_with(|| Entity::child_of(scope.parent.clone()));
        route_fields(ns, r, e);
    }
}

/// `subject`, or `subject #N` when an earlier fact of the bundle has it (routes
/// appended with the same key, rules with the same selector).
fn unique(f: &Facts, cat: Category, subject: String) -> String {
    if !f.contains_key(&(cat, subject.clone())) {
        return subject;
    }
    (2..)
        .map(|n| format!("{subject} #{n}"))
        .find(|s| !f.contains_key(&(cat, s.clone())))
        .unwrap_or(subject)
}

fn route_fields(ns: &Netns, r: &Route, e: &mut Entity) {
    e.set("kind", r.kind.clone());
    e.set_opt("gateway", r.gateway.clone());
    e.set_opt("dev", r.oif.map(|o| dev_name(ns, o)));
    e.set_opt("mtu", r.mtu.map(|m| m.to_string()));
    if !r.multipath.is_empty() {
        let hops: Vec<String> = r
            .multipath
            .iter()
            .map(|h| {
                let gw = h.gateway.as_deref().unwrap_or("-");
                let dev = h.oif.map(|o| dev_name(ns, o)).unwrap_or_default();
                format!("via {gw} dev {dev} weight {}", h.weight)
            })
            .collect();
        e.set("nexthops", hops.join(", "));
    }
}

/// `priority 32766 from all`-like selector of a rule.
fn rule_selector(r: &Rule) -> String {
    let mut s = format!("{} priority {}", r.family, r.priority);
    s.push_str(&format!(" from {}", r.src.as_deref().unwrap_or("all")));
    if let Some(d) = &r.dst {
        s.push_str(&format!(" to {d}"));
    }
    if let Some(m) = r.fwmark {
        match r.fwmask {
            Some(mask) if mask != u32::MAX => s.push_str(&format!(" fwmark {m:#x}/{mask:#x}")),
            _ => s.push_str(&format!(" fwmark {m:#x}")),
        }
    }
    if let Some(i) = &r.iif {
        s.push_str(&format!(" iif {i}"));
    }
    if let Some(o) = &r.oif {
        s.push_str(&format!(" oif {o}"));
    }
    s
}

fn rules(ns: &Netns, scope: &Scope, f: &mut Facts) {
    for r in &ns.rules {
        let subject = format!("{} {}", scope.name, rule_selector(r));
        let e = f
            .entry((Category::Rule, unique(f, Category::Rule, subject)))
            .or_insert_with(|| Entity::child_of(scope.parent.clone()));
        let action = match r.action.as_str() {
            "to_tbl" | "" => format!("lookup {}", table_name(r.table)),
            other => other.to_string(),
        };
        e.set("action", action);
    }
}

fn netns_sysctls(ns: &Netns, scope: &Scope, f: &mut Facts) {
    if ns.is_root {
        // Merged with host/sysctl.json under `node` (see node_sysctls).
        return;
    }
    let all = ns
        .sysctls
        .iter()
        .map(|(k, (v, _))| (k.as_str(), v.as_str()));
    sysctls(all, scope, f);
}

/// The interface a per-interface sysctl (`net.ipv4.conf.eth0.rp_filter`) is about.
fn sysctl_interface(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix("net.ipv4.conf.")
        .or_else(|| key.strip_prefix("net.ipv6.conf."))?;
    let (ifname, _) = rest.rsplit_once('.')?;
    (ifname != "all" && ifname != "default").then_some(ifname)
}

/// Sysctls of one netns: the per-interface ones under their interface (they come
/// and go with it), the rest under the netns; values with whitespace runs as one
/// space (`ip_local_port_range` is tab-separated).
fn sysctls<'a>(all: impl Iterator<Item = (&'a str, &'a str)>, scope: &Scope, f: &mut Facts) {
    for (k, v) in all {
        if VOLATILE_SYSCTLS.contains(&k) {
            continue;
        }
        let (subject, parent) = match sysctl_interface(k) {
            Some(ifname) => {
                let link = format!("{} {ifname}", scope.name);
                (link.clone(), Some((Category::Link, link)))
            }
            None => (scope.name.clone(), scope.parent.clone()),
        };
        let e = f
            .entry((Category::Sysctl, subject))
            .or_insert_with(|| Entity::child_of(parent));
        e.set(k, v.split_whitespace().collect::<Vec<_>>().join(" "));
    }
}

/// The node's sysctls: host/sysctl.json, the node netns' own file over it (as
/// [`Model::node_sysctl`] reads them), and conntrack/sysctl.json's node values.
fn node_sysctls(model: &Model, sources: &Sources<'_>, f: &mut Facts) {
    let mut all: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(ct) = &sources.conntrack_sysctl {
        all.extend(ct.value.node.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    all.extend(
        model
            .node
            .sysctls
            .iter()
            .map(|(k, (v, _))| (k.as_str(), v.as_str())),
    );
    if let Some(root) = model.root() {
        all.extend(
            root.sysctls
                .iter()
                .map(|(k, (v, _))| (k.as_str(), v.as_str())),
        );
    }
    let node = Scope {
        name: "node".into(),
        parent: None,
    };
    sysctls(all.into_iter(), &node, f);
}

fn dns(r: &crate::model::Resolv, subject: &str, parent: Option<(Category, String)>, f: &mut Facts) {
    let e = f
        .entry((Category::Dns, subject.to_string()))
        .or_insert_with(|| Entity::child_of(parent));
    let ns: Vec<&str> = r.nameservers.iter().map(|(n, _)| n.as_str()).collect();
    e.set("nameservers", ns.join(" "));
    e.set("search", r.search.join(" "));
    e.set("options", r.options.join(" "));
}

/// Every chain of every iptables save: its policy and how many rules it holds.
fn iptables_chains(sources: &Sources<'_>, f: &mut Facts) {
    for src in &sources.iptables {
        let family = if src.ipv6 { "ipv6" } else { "ipv4" };
        for t in &src.parsed.model.tables {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &t.rules {
                *counts.entry(&r.chain).or_default() += 1;
            }
            for c in &t.chains {
                let subject = format!("{} {family} {} {}", src.proxier.as_str(), t.name, c.name);
                let e = f.entry((Category::Chain, subject)).or_default();
                e.set_opt("policy", c.policy.clone().filter(|p| p != "-"));
                e.set(
                    "rules",
                    counts
                        .get(c.name.as_str())
                        .copied()
                        .unwrap_or(0)
                        .to_string(),
                );
            }
        }
    }
}

/// Every nft chain (tables iptables-nft manages are not in nft.json).
fn nft_chains(sources: &Sources<'_>, f: &mut Facts) {
    let Some(nft) = &sources.nft else { return };
    let rs = &nft.model;
    let mut counts: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for r in &rs.rules {
        *counts
            .entry((r.family.as_str(), r.table.as_str(), r.chain.as_str()))
            .or_default() += 1;
    }
    for c in &rs.chains {
        let subject = format!("nft {} {} {}", c.family, c.table, c.name);
        let e = f.entry((Category::Chain, subject)).or_default();
        if let Some(h) = &c.hook {
            let ty = c.chain_type.as_deref().unwrap_or("filter");
            let prio = c.prio.map(|p| p.to_string()).unwrap_or_default();
            e.set("hook", format!("type {ty} hook {h} priority {prio}"));
        }
        e.set_opt("policy", c.policy.clone());
        let n = counts
            .get(&(c.family.as_str(), c.table.as_str(), c.name.as_str()))
            .copied()
            .unwrap_or(0);
        e.set("rules", n.to_string());
    }
}
