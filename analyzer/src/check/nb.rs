//! NB: the neighbour (ARP/NDP) table.

use super::{CheckId, Facts, Finding, Severity};
use crate::model::KernelEvent;

pub fn neighbour_table_near_limit(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // The kernel's neighbour tables are shared by every netns: gc_thresh3 bounds the sum.
    for (family, key, label) in [
        ("inet", "net.ipv4.neigh.default.gc_thresh3", "ipv4"),
        ("inet6", "net.ipv6.neigh.default.gc_thresh3", "ipv6"),
    ] {
        let Some((v, ev)) = ctx.model.node_sysctl(key) else {
            continue;
        };
        let Ok(limit) = v.trim().parse::<u64>() else {
            continue;
        };
        if limit == 0 {
            continue;
        }
        let count = ctx
            .model
            .netns
            .values()
            .flat_map(|n| n.neigh.items.iter())
            .filter(|n| {
                n.family == family && !n.state.contains("PERMANENT") && !n.state.contains("NOARP")
            })
            .count() as u64;
        let ratio = count as f64 / limit as f64;
        if ratio < ctx.thresholds.neighbour_warning {
            continue;
        }
        let mut f = Finding::new(
            CheckId::Nb001,
            if count >= limit { Severity::Critical } else { Severity::Warning },
            format!("node neighbour table ({label})"),
            format!(
                "{count} {label} neighbour entries across all netns, {:.0} % of gc_thresh3 = {limit}: past it the kernel drops new neighbours (`neighbour table overflow`).",
                ratio * 100.0
            ),
        )
        .evidence(ev);
        if let Some(root) = ctx.model.root() {
            if root.neigh.present {
                f.evidence.push(crate::check::Evidence::new(
                    root.neigh.path.clone(),
                    None,
                    format!("{} entries in the node netns", root.neigh.items.len()),
                ));
            }
        }
        out.push(f);
    }
    let overflow: Vec<_> = ctx
        .model
        .kernel_log
        .iter()
        .filter(|l| l.kind == KernelEvent::NeighbourTableOverflow)
        .map(|l| l.evidence.clone())
        .collect();
    if !overflow.is_empty() {
        out.push(
            Finding::new(
                CheckId::Nb001,
                Severity::Critical,
                "kernel log",
                format!(
                    "the kernel logged `neighbour table overflow` {} time(s).",
                    overflow.len()
                ),
            )
            .with_evidence(overflow.into_iter().take(ctx.thresholds.max_evidence_lines)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netsnap_schema::model::Neigh;

    #[test]
    fn nb001_near_gc_thresh3() {
        let mut k = healthy();
        k.describe(|n| {
            n.sysctls
                .insert("net.ipv4.neigh.default.gc_thresh3".into(), "10".into());
        });
        for i in 0..8 {
            k.root().neigh.items.push(Neigh {
                ifindex: 2,
                family: "inet".into(),
                dst: format!("10.0.0.{i}"),
                lladdr: None,
                state: "REACHABLE".into(),
            });
        }
        k.root().neigh.items.push(Neigh {
            ifindex: 2,
            family: "inet".into(),
            dst: "10.0.0.99".into(),
            lladdr: None,
            state: "PERMANENT".into(),
        });
        let f = k.run(&["NB"]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "node neighbour table (ipv4)");
        assert_eq!(f[0].severity, crate::check::Severity::Warning);
        k.root().neigh.items.truncate(5);
        assert!(k.run(&["NB"]).is_empty());
    }
}
