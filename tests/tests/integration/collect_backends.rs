//! Both iptables backends, and nftables-mode kube-proxy, captured from a lab node.

use anyhow::{ensure, Context, Result};
use netsnap_schema::layout;
use netsnap_schema::model::HostFacts;
use netsnap_schema::SourceStatus;
use netsnap_tests::collector::{self as c, RunOpts, TempDir};
use netsnap_tests::lab::{assert_no_leaks, require_lab, Lab, ProxyMode};
use std::collections::BTreeSet;

fn collect(lab: &Lab, dir: &TempDir) -> Result<netsnap_schema::Bundle> {
    let out = dir.path().join("b.netsnap.tar.zst");
    let node = lab.node_netns_path();
    let run = c::run(
        &[
            "--node-netns",
            node.to_str().context("path")?,
            "--host-root",
            lab.host_root().to_str().context("path")?,
            "-o",
            out.to_str().context("path")?,
            "-q",
        ],
        RunOpts::default(),
    )?;
    ensure!(run.status.success(), "collector failed: {}", run.stderr);
    c::open_bundle(&out)
}

#[test]
fn collect_legacy_and_nft_rules_are_both_saved() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let mut lab = Lab::builder("collect-both").pods(4).services(6).build()?;
    let fp = lab.footprint();
    let r = (|| -> Result<()> {
        lab.fault_kube_rules_in_both_backends()?;
        let dir = TempDir::new("both")?;
        let b = collect(&lab, &dir)?;
        for (name, path, legacy) in [
            ("iptables-nft-save", layout::IPTABLES_NFT_SAVE, false),
            ("iptables-legacy-save", layout::IPTABLES_LEGACY_SAVE, true),
        ] {
            let rec = c::record(&b, name).context("record")?;
            ensure!(rec.status == SourceStatus::Ok, "{name}: {rec:?}");
            let text = b.text(path).with_context(|| format!("{path} missing"))?;
            ensure!(
                text.contains("-A KUBE-SERVICES"),
                "{name} has no KUBE rules"
            );
            ensure!(
                c::normalize_iptables_save(&text)
                    == c::normalize_iptables_save(&lab.iptables_save(legacy)?),
                "{name} differs from the live rules"
            );
        }
        let facts: HostFacts = b.json(layout::HOST_FACTS)?.context("facts")?;
        ensure!(
            facts.kube_proxy.legacy_tables.iter().any(|t| t == "nat"),
            "legacy tables not hinted: {:?}",
            facts.kube_proxy.legacy_tables
        );
        Ok(())
    })();
    lab.teardown()?;
    assert_no_leaks(&fp);
    r
}

#[test]
fn collect_nftables_mode_dumps_kube_proxy_table_only() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let lab = Lab::builder("collect-nft")
        .pods(4)
        .services(6)
        .proxy_mode(ProxyMode::Nftables)
        .build()?;
    let fp = lab.footprint();
    let r = (|| -> Result<()> {
        // An iptables-nft table next to kube-proxy's, in the lab's own node netns:
        // nft.json must leave it to the saves.
        lab.node(&[
            "iptables-nft",
            "-w",
            "-t",
            "filter",
            "-A",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            "netsnap-test",
            "-j",
            "ACCEPT",
        ]);
        let dir = TempDir::new("nft")?;
        let b = collect(&lab, &dir)?;
        let rec = c::record(&b, "nft").context("nft record")?;
        ensure!(rec.status == SourceStatus::Ok, "nft: {rec:?}");
        let doc: serde_json::Value = b.json(layout::NFT_JSON)?.context("nft.json")?;
        let objs = doc["nftables"].as_array().context("nftables array")?;
        let tables: BTreeSet<(String, String)> = objs
            .iter()
            .filter_map(|o| {
                let t = o.get("table")?;
                Some((
                    t["family"].as_str()?.to_string(),
                    t["name"].as_str()?.to_string(),
                ))
            })
            .collect();
        ensure!(
            tables.contains(&("ip".into(), "kube-proxy".into())),
            "no ip kube-proxy: {tables:?}"
        );
        for managed in ["filter", "nat", "mangle", "raw", "security"] {
            ensure!(
                !tables.contains(&("ip".into(), managed.into())),
                "ip {managed} dumped through nft"
            );
        }
        let text = b.text(layout::NFT_JSON).context("text")?;
        let svc = &lab.services()[0].nft_service_chain;
        ensure!(text.contains(svc.as_str()), "service chain {svc} missing");
        ensure!(
            rec.note.as_deref().is_some_and(|n| n.contains("ip filter")),
            "left-out tables not noted: {:?}",
            rec.note
        );
        // The iptables-nft rule is in the nft save instead.
        let saved = b.text(layout::IPTABLES_NFT_SAVE).context("save")?;
        ensure!(saved.contains("netsnap-test"));
        Ok(())
    })();
    lab.teardown()?;
    assert_no_leaks(&fp);
    r
}
