//! The catalog as documentation, generated from the units so that `docs/findings.md`
//! and `netsnap checks` cannot drift from what the checks do.

use super::catalog::CHECKS;
use super::Check;
use std::fmt::Write;

/// The command that regenerates `docs/findings.md`.
pub const REGENERATE: &str = "cargo run -p netsnap-analyzer --bin netsnap -- checks --format markdown > docs/findings.md (or NETSNAP_BLESS=1 cargo test -p netsnap-analyzer --lib findings_doc)";

fn severities(c: &Check) -> String {
    c.severities
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `docs/findings.md`: the catalog table, then each check's title, remedy and references.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Findings catalog\n\n\
         Every finding has a stable ID. A check may be added; an ID is never reused or given a\n\
         new meaning. Each finding carries a severity (`critical`, `warning`, `info`), the\n\
         subject it is about (a service, pod, link, netns or source), evidence (bundle path,\n\
         line, excerpt) and a remedy.\n\n\
         <!-- Generated from analyzer/src/check/catalog.rs by `netsnap checks --format markdown`: do not edit by hand. -->\n\n\
         | id | what | evidence | severity |\n|---|---|---|---|\n",
    );
    for c in CHECKS {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            c.id,
            c.what,
            c.evidence,
            severities(c)
        );
    }
    out.push_str("\n## Remedies\n");
    for c in CHECKS {
        let _ = write!(out, "\n### {} — {}\n\n{}\n\n", c.id, c.title, c.remedy);
        for r in c.refs {
            // URLs as autolinks; repository paths as code (they are relative to the root).
            let _ = if r.starts_with("https://") {
                writeln!(out, "- <{r}>")
            } else {
                writeln!(out, "- `{r}`")
            };
        }
    }
    out
}

/// Rows of `netsnap checks` (id, severities, title).
pub fn rows() -> Vec<[String; 3]> {
    CHECKS
        .iter()
        .map(|c| [c.id.to_string(), severities(c), c.title.to_string()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The committed `docs/findings.md` is what the units generate.
    #[test]
    fn findings_doc_is_generated_from_the_units() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/findings.md");
        let want = markdown();
        if std::env::var_os("NETSNAP_BLESS").is_some() {
            std::fs::write(&path, &want).expect("write docs/findings.md");
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "docs/findings.md is stale; regenerate it with:\n  {REGENERATE}"
        );
    }

    #[test]
    fn every_id_is_documented_once() {
        let doc = markdown();
        for c in CHECKS {
            assert_eq!(doc.matches(&format!("| {} |", c.id)).count(), 1, "{}", c.id);
            assert!(doc.contains(c.remedy), "{}", c.id);
        }
    }
}
