//! BND: the bundle's own coverage — sources that failed, are missing or truncated.

use super::{CheckId, Context, Evidence, Finding, Severity};
use netsnap_schema::SourceStatus;

pub fn source_gaps(ctx: &Context<'_>) -> Vec<Finding> {
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
        match s.status {
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
                        s.error.as_deref().unwrap_or("no reason recorded")
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

#[cfg(test)]
mod tests {
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
}
