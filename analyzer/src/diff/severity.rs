//! How much a change matters (the table in docs/diff-json.md says the same):
//!
//! - critical: a service that had endpoints has none (its traffic is rejected); a
//!   chain policy that became DROP (everything the chain does not accept is lost).
//! - warning: something that carried traffic is gone or different — a removed
//!   service, endpoint, pod, link, address, route, rule or resolver config; a link
//!   no longer up, an MTU, master or route change, hairpin turned off, a pod's IPs, a
//!   frontend or endpoint weight change, a changed sysctl or DNS setting, another
//!   datapath, a chain policy change or a base chain removed.
//! - info: additions, rule counts, a link coming up, anything else.

use super::facts::Entity;
use super::{Category, ChangeKind};
use crate::check::Severity;

/// A whole subject added or removed.
pub fn of_subject(cat: Category, kind: ChangeKind, e: &Entity) -> (Severity, String) {
    if kind != ChangeKind::Removed {
        return (Severity::Info, String::new());
    }
    match cat {
        // A user chain goes with its service or endpoint (reported on their own);
        // a base chain (one with a policy or a hook) is where traffic enters.
        Category::Chain if !e.fields.contains_key("policy") && !e.fields.contains_key("hook") => {
            (Severity::Info, String::new())
        }
        Category::Netns => (Severity::Info, String::new()),
        Category::Service => (
            Severity::Warning,
            "the node no longer programs this service".into(),
        ),
        Category::Endpoint => (
            Severity::Warning,
            "the service no longer sends traffic to this endpoint".into(),
        ),
        Category::Pod => (Severity::Warning, "the pod is gone from the node".into()),
        Category::Chain => (Severity::Warning, "a base chain is gone".into()),
        _ => (Severity::Warning, String::new()),
    }
}

/// One field of a subject in both bundles.
pub fn of_field(
    cat: Category,
    field: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> (Severity, String) {
    let warn = |why: &str| (Severity::Warning, why.to_string());
    let info = (Severity::Info, String::new());
    match (cat, field) {
        (Category::Service, "endpoints") => {
            let had = old.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let has = new.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if had > 0 && has == 0 {
                (
                    Severity::Critical,
                    "the service lost all its endpoints: connections to it are rejected".into(),
                )
            } else {
                info
            }
        }
        (Category::Service, "frontends") => warn("the service answers on other addresses"),
        (Category::Endpoint, "weight") if new == Some("0") => {
            warn("weight 0: the endpoint gets no new connections")
        }
        (Category::Endpoint, _) => info,
        (Category::Pod, "ips") => warn("the pod's addresses changed"),
        (Category::Link, "state") => match new {
            Some("UP") | Some("UNKNOWN") => info,
            _ => warn("the link is no longer up"),
        },
        (Category::Link, "mtu") => warn("packets larger than the smaller MTU are dropped"),
        (Category::Link, "master") => warn("the link hangs off another bridge (or none)"),
        (Category::Link, "hairpin") if new == Some("off") => {
            warn("hairpin off: a pod cannot reach itself through its service")
        }
        (Category::Route, _) => warn("traffic to this destination takes another way"),
        (Category::Rule, _) => warn("policy routing changed"),
        (Category::Chain, "policy") if new.is_some_and(|p| p.eq_ignore_ascii_case("drop")) => (
            Severity::Critical,
            "the chain now drops what no rule accepts".into(),
        ),
        (Category::Chain, "policy") => warn("the chain's policy changed"),
        (Category::Chain, _) => info,
        (Category::Sysctl, _) if old.is_some() && new.is_some() => warn("a kernel setting changed"),
        (Category::Dns, _) => warn("name resolution changed"),
        (Category::Datapath, _) => warn("the node runs another datapath"),
        _ => info,
    }
}
