//! BND: the bundle's own coverage — sources that failed, are missing or truncated.

use super::{CheckId, Evidence, Facts, Finding, Severity};
use crate::model::InaccessibleProcess;
use crate::parse::cni::CniFileKind;
use netsnap_schema::{layout, SourceRecord, SourceStatus};

pub fn source_gaps(ctx: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut absent = Vec::new();
    for s in &ctx.model.sources {
        let who = match &s.netns {
            Some(n) => format!("source {} (netns {n})", s.name),
            None => format!("source {}", s.name),
        };
        let ev = Evidence::new(
            netsnap_schema::manifest::MANIFEST_PATH,
            None,
            format!(
                "{} {}{}",
                s.name,
                s.status.as_str(),
                s.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        );
        // Processes the collector could not look into are their own finding (how bad
        // depends on whether they could be pods); the rest of the error stays here.
        let (error, inaccessible) = split_inaccessible(s);
        if let Some(part) = inaccessible {
            out.push(inaccessible_processes(ctx, &s.name, part, ev.clone()));
        }
        let only_inaccessible =
            s.status == SourceStatus::Partial && error.is_none() && inaccessible.is_some();
        match s.status {
            SourceStatus::Partial if only_inaccessible => {}
            SourceStatus::Failed | SourceStatus::Partial => out.push(
                Finding::new(
                    CheckId::Bnd001,
                    Severity::Warning,
                    who,
                    format!(
                        "{} {}: {}. Checks that need it may miss faults.",
                        s.name,
                        if s.status == SourceStatus::Failed {
                            "failed"
                        } else {
                            "was captured only in part"
                        },
                        error.as_deref().unwrap_or("no reason recorded")
                    ),
                )
                .evidence(ev),
            ),
            SourceStatus::Unavailable | SourceStatus::Skipped => absent.push(ev),
            SourceStatus::Ok => {}
        }
        if let Some(t) = s.truncated {
            out.push(
                Finding::new(
                    CheckId::Bnd001,
                    Severity::Warning,
                    format!("source {}", s.name),
                    format!(
                        "{} was truncated: {} of {} items kept. Counts and checks based on it see only part of the node.",
                        s.name, t.kept, t.total
                    ),
                )
                .evidence(Evidence::new(
                    netsnap_schema::manifest::MANIFEST_PATH,
                    None,
                    format!("{} truncated: kept {} of {}", s.name, t.kept, t.total),
                )),
            );
        }
    }
    if !absent.is_empty() {
        out.push(
            Finding::new(
                CheckId::Bnd001,
                Severity::Info,
                "bundle",
                format!(
                    "{} source(s) unavailable on this node or skipped (normal for features the node does not use, e.g. IPVS or legacy iptables).",
                    absent.len()
                ),
            )
            .with_evidence(absent),
        );
    }
    out
}

/// The collector's words for processes whose netns it could not open
/// (collector/src/capture/assemble.rs), one of the `; `-separated problems of the netns
/// index record.
const INACCESSIBLE: (&str, &str) = (
    "permission denied: the netns of ",
    " process(es) could not be inspected",
);

/// A record's error without the inaccessible-processes problem, and that problem.
fn split_inaccessible(s: &SourceRecord) -> (Option<String>, Option<&str>) {
    let Some(error) = s.error.as_deref() else {
        return (None, None);
    };
    let mut rest = Vec::new();
    let mut found = None;
    for part in error.split("; ") {
        if part.starts_with(INACCESSIBLE.0) && part.ends_with(INACCESSIBLE.1) {
            found = Some(part);
        } else {
            rest.push(part);
        }
    }
    let rest = (!rest.is_empty()).then(|| rest.join("; "));
    (rest, found)
}

/// Warning when one of the processes could be a pod (its cgroup is kubelet's), info
/// otherwise: a host process's netns is rarely one that matters, and without their
/// cgroups (bundles before the collector recorded them) nothing says they are pods.
fn inaccessible_processes(ctx: &Facts<'_>, source: &str, part: &str, ev: Evidence) -> Finding {
    let count = part
        .trim_start_matches(INACCESSIBLE.0)
        .trim_end_matches(INACCESSIBLE.1);
    let known = &ctx.model.inaccessible;
    let pods: Vec<&InaccessibleProcess> = known.iter().filter(|p| p.could_be_pod()).collect();
    let (severity, why) = if !pods.is_empty() {
        let list: Vec<String> = pods
            .iter()
            .map(|p| format!("pid {} ({})", p.pid, p.cgroup.as_deref().unwrap_or("")))
            .collect();
        (
            Severity::Warning,
            format!(
                "{} of them run in a pod cgroup ({}): that pod's network is missing from this bundle, and checks about it cannot run.",
                pods.len(),
                list.join(", ")
            ),
        )
    } else if known.iter().any(|p| p.cgroup.is_some()) {
        (
            Severity::Info,
            "none of them runs in a pod cgroup (kubepods): no pod is missing.".to_string(),
        )
    } else {
        (
            Severity::Info,
            "the bundle does not record their cgroups, so whether one is a pod is unknown; every pod the netns index lists was captured.".to_string(),
        )
    };
    let mut f = Finding::new(
        CheckId::Bnd001,
        severity,
        format!("source {source}: processes not inspected"),
        format!("the network namespace of {count} process(es) could not be inspected (permission denied): {why}"),
    )
    .evidence(ev);
    if severity == Severity::Info {
        f = f.remedy("Nothing is needed unless a pod is missing from the report; then collect again as root (with CAP_SYS_PTRACE, in the host PID namespace).");
    }
    f
}

/// BND002: nothing of Kubernetes on the node.
pub fn not_a_kubernetes_node(ctx: &Facts<'_>) -> Vec<Finding> {
    let m = ctx.model;
    // Without the node's netns the bundle says too little to tell.
    if m.root().is_none() {
        return Vec::new();
    }
    let kube_proxy = !m.services.is_empty()
        || m.netfilter.rulesets.iter().any(|r| r.kube_rules > 0)
        || m.netfilter.nft_kube_proxy.is_some()
        || !m.ipvs.virtual_servers.is_empty();
    let cni_config = m.cni.files.iter().any(|f| f.kind != CniFileKind::Ignored);
    if !m.pods.is_empty() || kube_proxy || cni_config {
        return Vec::new();
    }
    let mut f = Finding::new(
        CheckId::Bnd002,
        Severity::Info,
        "node",
        format!(
            "{} does not look like a Kubernetes node: no pod network namespace ({} netns captured), no kube-proxy rules (iptables, nftables or IPVS) and no CNI configuration in /etc/cni/net.d. The Kubernetes checks found nothing to check.",
            if m.hostname.is_empty() { "this node" } else { m.hostname.as_str() },
            m.netns.len()
        ),
    )
    .evidence(Evidence::new(
        layout::NETNS_INDEX,
        None,
        format!("{} netns, none of them a pod's", m.netns.len()),
    ));
    for r in &m.netfilter.rulesets {
        f.evidence
            .push(Evidence::new(r.path.clone(), None, "no KUBE-* rules"));
    }
    f.evidence.push(Evidence::new(
        layout::HOST_CNI_DIR,
        None,
        if m.cni.files.is_empty() {
            "no files".to_string()
        } else {
            format!("{} file(s), none a CNI configuration", m.cni.files.len())
        },
    ));
    vec![f]
}

#[cfg(test)]
mod tests {
    use super::super::faults;
    use super::super::testkit::*;
    use netsnap_schema::{SourceRecord, SourceStatus, Truncation};

    #[test]
    fn bnd001_failed_truncated_unavailable() {
        let mut k = healthy();
        k.model().sources = vec![
            SourceRecord::new("iptables-nft-save", SourceStatus::Ok),
            SourceRecord::new("nft", SourceStatus::Failed).with_error("timed out after 10 s"),
            SourceRecord::new("ipvs", SourceStatus::Unavailable),
            {
                let mut r = SourceRecord::new("conntrack", SourceStatus::Ok);
                r.truncated = Some(Truncation {
                    kept: 10,
                    total: 20,
                });
                r
            },
        ];
        let f = k.run(&["BND"]);
        let got: Vec<(&str, crate::check::Severity)> =
            f.iter().map(|f| (f.subject.as_str(), f.severity)).collect();
        use crate::check::Severity::*;
        assert_eq!(
            got,
            vec![
                ("source conntrack", Warning),
                ("source nft", Warning),
                ("bundle", Info)
            ]
        );
        assert!(f[1].message.contains("timed out"));
    }

    fn index_record(error: &str) -> SourceRecord {
        SourceRecord::new("netns-index", SourceStatus::Partial).with_error(error)
    }

    const DENIED: &str = "permission denied: the netns of 3 process(es) could not be inspected";

    /// Processes the collector could not look into: info unless one could be a pod.
    #[test]
    fn bnd001_inaccessible_processes_by_cgroup() {
        use crate::check::Severity::*;
        use crate::model::InaccessibleProcess;
        let subject = "source netns-index: processes not inspected";
        // As bundles are today: only the count, so no claim that a pod is missing.
        let mut k = healthy();
        k.model().sources = vec![index_record(DENIED)];
        let f = k.run(&["BND001"]);
        assert_eq!(ids(&f), vec![("BND001", subject)]);
        assert_eq!(f[0].severity, Info);
        assert!(f[0].message.contains("3 process(es)"), "{}", f[0].message);
        // A cgroup under kubepods: a pod may be missing.
        let proc = |pid, cgroup: &str| InaccessibleProcess {
            pid,
            cgroup: Some(cgroup.into()),
        };
        k.model().inaccessible = vec![
            proc(10, "0::/system.slice/sshd.service"),
            proc(
                11,
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_aaaa_bbbb_cccc_0123456789ab.slice/cri-containerd-0a1b.scope",
            ),
        ];
        let f = k.run(&["BND001"]);
        assert_eq!(ids(&f), vec![("BND001", subject)]);
        assert_eq!(f[0].severity, Warning);
        assert!(f[0].message.contains("pid 11"), "{}", f[0].message);
        // Host processes only.
        k.model().inaccessible.truncate(1);
        assert_eq!(k.run(&["BND001"])[0].severity, Info);
        // With another problem, that problem is still the source's warning.
        let mut k = healthy();
        k.model().sources = vec![index_record(&format!("nsid survey: timed out; {DENIED}"))];
        let f = k.run(&["BND001"]);
        let got: Vec<(&str, crate::check::Severity)> =
            f.iter().map(|f| (f.subject.as_str(), f.severity)).collect();
        assert_eq!(got, vec![("source netns-index", Warning), (subject, Info)]);
        assert!(
            !f[0].message.contains("permission denied"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn bnd002_not_a_kubernetes_node() {
        // A node with pods and kube-proxy rules is one.
        assert!(healthy().run(&["BND002"]).is_empty());
        // kube-proxy's rules alone make it one.
        let mut k = healthy();
        faults::plain_host(&mut k);
        k.model().netfilter.rulesets[0].kube_rules = 1;
        assert!(k.run(&["BND002"]).is_empty());
        let mut k = healthy();
        faults::plain_host(&mut k);
        let f = k.run(&["BND002"]);
        assert_eq!(ids(&f), vec![("BND002", "node")]);
        assert_eq!(f[0].severity, crate::check::Severity::Info);
        assert!(f[0]
            .message
            .contains("does not look like a Kubernetes node"));
        // A CNI configuration alone says it is meant to be one.
        let cni = crate::parse::cni::parse_cni(
            "host/cni/10-bridge.conf",
            "10-bridge.conf",
            r#"{"name": "n", "type": "bridge"}"#,
        );
        k.model().cni = crate::parse::cni::CniConfigs::new(vec![cni.model]);
        assert!(k.run(&["BND002"]).is_empty());
    }
}
