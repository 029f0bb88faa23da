//! PRS: what the parsers did not understand (never dropped silently).

use super::{CheckId, Evidence, Facts, Finding, Severity};

pub fn unrecognised_lines(ctx: &Facts<'_>) -> Vec<Finding> {
    let max = ctx.thresholds.max_evidence_lines;
    ctx.model
        .coverage
        .iter()
        .filter(|c| !c.unrecognised.is_empty())
        .map(|c| {
            let n = c.unrecognised.len();
            let first: Vec<String> = c
                .unrecognised
                .iter()
                .take(3)
                .map(|u| format!("line {}: {}", u.line, u.reason))
                .collect();
            Finding::new(
                CheckId::Prs001,
                Severity::Warning,
                format!("file {}", c.path),
                format!(
                    "{n} of {} lines of {} were not recognised and are not analysed ({}{}).",
                    c.total(),
                    c.path,
                    first.join("; "),
                    if n > 3 { "; …" } else { "" }
                ),
            )
            .with_evidence(
                c.unrecognised
                    .iter()
                    .take(max)
                    .map(|u| Evidence::new(c.path.clone(), Some(u.line), u.text.clone())),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::parse::Coverage;

    #[test]
    fn prs001_lists_lines() {
        let mut k = healthy();
        let mut c = Coverage::new("netfilter/iptables-nft-save.txt");
        c.ok();
        c.miss(7, "-A X --frobnicate", "unknown option --frobnicate");
        k.model().coverage = vec![c, Coverage::new("ipvs/ip_vs.txt")];
        let f = k.run(&["PRS"]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "file netfilter/iptables-nft-save.txt");
        assert_eq!(f[0].evidence[0].line, Some(7));
        assert_eq!(f[0].evidence[0].excerpt, "-A X --frobnicate");
    }
}
