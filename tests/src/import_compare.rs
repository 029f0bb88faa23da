//! Comparing what the analyzer finds in an imported bundle (from an sos report, the
//! hand recipe, an EKS tree, loose dumps) with what it finds in a direct capture of
//! the same lab node. A direct finding is *covered* when every file its evidence cites
//! is in the imported bundle too; every covered finding must be found again (same id
//! and subject), and the import must find nothing the direct capture does not.
//! Findings about the bundle itself (BND*) are compared separately: an import is
//! expected to report what its input lacks.

use netsnap_analyzer::check::{Finding, Selection, Thresholds};
use netsnap_schema::{Bundle, SourceStatus};
use std::collections::BTreeSet;

/// The result of one comparison.
#[derive(Debug, Default)]
pub struct Compared {
    /// `ID subject` of covered direct findings found again.
    pub matched: Vec<String>,
    /// Covered direct findings the import did not report.
    pub missing: Vec<String>,
    /// Findings of the import the direct capture does not have.
    pub extra: Vec<String>,
    /// Direct findings whose evidence the import does not hold, with the files.
    pub uncovered: Vec<String>,
    /// Sources the imported manifest marks unavailable.
    pub unavailable: usize,
}

impl Compared {
    /// One line for the test's notice.
    pub fn summary(&self, what: &str) -> String {
        format!(
            "{what}: {} covered finding(s) found again, {} missing, {} extra, {} not covered by the input, {} source record(s) unavailable",
            self.matched.len(),
            self.missing.len(),
            self.extra.len(),
            self.uncovered.len(),
            self.unavailable
        )
    }
}

fn key(f: &Finding) -> String {
    format!("{} {}", f.id, f.subject)
}

/// `pod NS/NAME` → netns id, from a bundle's netns index.
fn pod_netns(b: &Bundle) -> Vec<(String, String)> {
    let index: Option<netsnap_schema::model::NetnsIndex> =
        b.json("netns/index.json").ok().flatten();
    index
        .into_iter()
        .flat_map(|i| i.netns)
        .filter_map(|n| {
            let p = n.pod?;
            Some((format!("pod {}/{}", p.namespace?, p.name?), n.id))
        })
        .collect()
}

/// A direct finding's key as an import without pod identities names it: sos and the
/// other tools know netns by name only, so `pod default/web-0` is `pod netns <id>`.
fn key_without_pod_names(
    f: &Finding,
    pods: &[(String, String)],
    imported_has_names: bool,
) -> String {
    let k = key(f);
    if imported_has_names {
        return k;
    }
    pods.iter()
        .find(|(subject, _)| f.subject == *subject || f.subject.starts_with(&format!("{subject} ")))
        .map(|(subject, id)| {
            format!(
                "{} {}",
                f.id,
                f.subject
                    .replacen(subject.as_str(), &format!("pod netns {id}"), 1)
            )
        })
        .unwrap_or(k)
}

/// Checks that look at pods (their netns, veths, resolv.conf, sockets, or pods on a
/// bridge) and so cannot fire on an import without pod netns, whatever files their
/// evidence cites.
const NEED_PODS: [&str; 16] = [
    "LNK001", "LNK002", "LNK003", "LNK004", "LNK005", "LNK006", "LNK007", "LNK008", "NF002",
    "NF006", "SVC002", "SVC003", "DNS001", "DNS002", "DNS005", "TRC001",
];

/// Inputs a check reads that its evidence does not cite: the trace engine decides
/// whether bridged pod traffic passes iptables from `bridge-nf-call-iptables`.
const READS: [(&str, &str); 1] = [("TRC001", "host/sysctl.json")];

fn has_pod_netns(b: &Bundle) -> bool {
    b.json::<netsnap_schema::model::NetnsIndex>("netns/index.json")
        .ok()
        .flatten()
        .is_some_and(|i| i.netns.iter().any(|n| !n.is_root))
}

fn bundle_level(f: &Finding) -> bool {
    let id = f.id.to_string();
    id.starts_with("BND")
}

/// Findings of a bundle with default thresholds, every check.
pub fn findings(bundle: &Bundle) -> Vec<Finding> {
    netsnap_analyzer::report::analyze(bundle, &Thresholds::default(), &Selection::default())
        .findings
}

/// Compares the findings of `imported` with those of `direct` (see the module doc).
pub fn compare(direct: &Bundle, imported: &Bundle) -> Compared {
    let (d, i) = (findings(direct), findings(imported));
    let have = |p: &str| p == "manifest.json" || imported.file(p).is_some();
    let has_pods = has_pod_netns(imported);
    let pods = pod_netns(direct);
    let names = !pod_netns(imported).is_empty();
    let direct_key = |f: &Finding| key_without_pod_names(f, &pods, names);
    let imported_keys: BTreeSet<String> = i.iter().filter(|f| !bundle_level(f)).map(key).collect();
    let direct_keys: BTreeSet<String> = d
        .iter()
        .filter(|f| !bundle_level(f))
        .map(direct_key)
        .collect();
    let mut out = Compared {
        unavailable: imported
            .manifest
            .sources
            .iter()
            .filter(|s| s.status == SourceStatus::Unavailable)
            .count(),
        ..Compared::default()
    };
    for f in d.iter().filter(|f| !bundle_level(f)) {
        let mut lacking: Vec<&str> = f
            .evidence
            .iter()
            .map(|e| e.path.as_str())
            .filter(|p| !have(p))
            .collect();
        if !has_pods && NEED_PODS.contains(&f.id.to_string().as_str()) {
            lacking.push("pod netns");
        }
        lacking.extend(
            READS
                .iter()
                .filter(|(id, p)| *id == f.id.as_str() && !have(p))
                .map(|(_, p)| *p),
        );
        let k = direct_key(f);
        if !lacking.is_empty() {
            out.uncovered
                .push(format!("{k} (needs {})", lacking.join(", ")));
        } else if imported_keys.contains(&k) {
            out.matched.push(k);
        } else {
            out.missing.push(format!("{k}: {}", f.message));
        }
    }
    for f in i.iter().filter(|f| !bundle_level(f)) {
        if !direct_keys.contains(&key(f)) {
            out.extra.push(format!("{}: {}", key(f), f.message));
        }
    }
    out.matched.sort();
    out.matched.dedup();
    out
}

/// Prints the comparison and fails on a covered finding not found again or a finding
/// the direct capture does not have.
pub fn assert_same(c: &Compared, what: &str) {
    crate::notice(&c.summary(what));
    assert!(
        c.missing.is_empty(),
        "{what}: covered findings not found again:\n{}",
        c.missing.join("\n")
    );
    assert!(
        c.extra.is_empty(),
        "{what}: findings the direct capture does not have:\n{}",
        c.extra.join("\n")
    );
}
