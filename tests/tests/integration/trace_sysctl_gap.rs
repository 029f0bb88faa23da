//! A bundle without the node's sysctls (an sos report without its kernel plugin) must
//! not make the trace engine guess `bridge-nf-call-iptables`: the demo bundle (a real
//! lab capture) with `host/sysctl.json` and the node netns's `sysctl.json` left out
//! and recorded unavailable gives unknown bridged branches that name the missing
//! source, and no TRC001 the intact demo does not have; the same bundle with
//! br_netfilter off (a captured fact) does fail more paths, so the check can tell.

use anyhow::{ensure, Context, Result};
use netsnap_analyzer::trace::path::Verdict;
use netsnap_analyzer::trace::{reach, Prepared};
use netsnap_schema::{Bundle, ReadLimits, SourceRecord};
use netsnap_tests::bundle_edit::{mark_unavailable, rewrite};
use netsnap_tests::collector::{analyzer_bin, TempDir};
use netsnap_tests::notice;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const REASON: &str = "the sos report has no sos_commands/kernel (kernel plugin not run)";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo")
}

fn node_sysctl(r: &SourceRecord) -> bool {
    r.name == "host/sysctl" || (r.name == "netns/sysctl" && r.netns.as_deref() == Some("root"))
}

/// TRC001 subjects of `netsnap analyze --format json`.
fn trc001(bundle: &Path) -> Result<BTreeSet<String>> {
    let out = Command::new(analyzer_bin()?)
        .args(["analyze", "--format", "json"])
        .arg(bundle)
        .output()?;
    ensure!(
        matches!(out.status.code(), Some(0 | 1)),
        "analyze: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(report["bundles"][0]["findings"]
        .as_array()
        .context("findings")?
        .iter()
        .filter(|f| f["id"] == "TRC001")
        .map(|f| f["subject"].as_str().unwrap_or("?").to_string())
        .collect())
}

/// Cells of the pod × service matrix that fail, and the (pod, --to) of unknown ones.
fn matrix(bundle: &Path) -> Result<(usize, Vec<(String, String)>)> {
    let b = Bundle::open(bundle, &ReadLimits::default())?;
    let p = Prepared::new(&b);
    let r = reach::compute(&p.model, &p.graph, &p.firewall);
    let failing = r.cells.iter().filter(|c| c.failing() > 0.0).count();
    let unknown = r
        .cells
        .iter()
        .filter(|c| c.verdicts().contains_key(&Verdict::Unknown))
        .map(|c| (c.pod.to_string(), c.to.to_string()))
        .collect();
    Ok((failing, unknown))
}

#[test]
fn missing_sysctl_source_is_unknown_not_trc001() -> Result<()> {
    let dir = TempDir::new("sysctl-gap")?;
    let intact = dir.path().join("intact.netsnap.tar.zst");
    rewrite(&demo(), &intact, None, &|_, _| None)?;
    let gap = dir.path().join("gap.netsnap.tar.zst");
    mark_unavailable(&demo(), &gap, &node_sysctl, REASON)?;
    let off = dir.path().join("off.netsnap.tar.zst");
    rewrite(&demo(), &off, None, &|path, data| {
        let key = "\"net.bridge.bridge-nf-call-iptables\": \"1\"";
        let text = String::from_utf8_lossy(data);
        (path.ends_with("sysctl.json") && text.contains(key)).then(|| {
            text.replace(key, "\"net.bridge.bridge-nf-call-iptables\": \"0\"")
                .into_bytes()
        })
    })?;

    let (intact_fail, intact_unknown) = matrix(&intact)?;
    let (gap_fail, gap_unknown) = matrix(&gap)?;
    let (off_fail, _) = matrix(&off)?;
    notice(&format!(
        "sysctl gap on fixtures/demo: failing cells intact {intact_fail}, br_netfilter off {off_fail}, sysctls missing {gap_fail}; unknown cells intact {}, missing {}",
        intact_unknown.len(),
        gap_unknown.len()
    ));
    ensure!(
        off_fail > intact_fail,
        "br_netfilter off fails no more cells than intact"
    );
    ensure!(
        gap_fail <= intact_fail,
        "missing sysctls failed {gap_fail} cells, intact {intact_fail}"
    );
    ensure!(
        gap_unknown.len() > intact_unknown.len(),
        "no unknown cell without sysctls"
    );

    let (t_intact, t_gap) = (trc001(&intact)?, trc001(&gap)?);
    ensure!(
        t_gap.is_subset(&t_intact),
        "TRC001 guessed without sysctls: {:?}",
        t_gap.difference(&t_intact).collect::<Vec<_>>()
    );

    let (pod, to) = &gap_unknown[0];
    let mut args = vec![
        "trace".to_string(),
        gap.display().to_string(),
        "--from".into(),
        pod.clone(),
        "--to".into(),
    ];
    args.extend(to.split_whitespace().map(str::to_string));
    let out = Command::new(analyzer_bin()?).args(&args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains("net.bridge.bridge-nf-call-iptables cannot be read") && text.contains(REASON),
        "netsnap {args:?} does not name the missing source:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With the file present the same trace is unchanged: no unknown branch about it.
    args[1] = intact.display().to_string();
    let out = Command::new(analyzer_bin()?).args(&args).output()?;
    ensure!(!String::from_utf8_lossy(&out.stdout).contains("cannot be read"));
    Ok(())
}
