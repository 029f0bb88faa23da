//! `nft list ruleset` text converted by the importer against the real `nft -j list
//! ruleset` of the same lab node (kube-proxy's nftables mode, dual stack, the CNI
//! bridge plugin), then imported next to the node's other dumps: the findings must
//! be those of a direct capture.
//!
//! What the comparison normalises, because the text cannot carry it or nft prints it
//! differently: handles (the text has none), the `metainfo` object (the converter
//! cannot know nft's version), table and chain comments (nft 1.0 prints them in the
//! text but not in its JSON; the converter keeps them), and the tables iptables-nft
//! manages (the converter leaves them out, as the import of `nft -j` does).

use super::import_loose::{dump, import, notes_of, write_inputs};
use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::collect_support::{collect_lab, with_built_lab};
use netsnap_tests::import_compare::{assert_same, compare};
use netsnap_tests::lab::{require_lab, CniMode, Lab, ProxyMode};
use netsnap_tests::notice;
use serde_json::Value;

/// The objects of an `nft -j` document as the text can give them.
fn normalised(doc: &Value) -> Vec<Value> {
    let items = doc["nftables"].as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .filter(|o| o.get("metainfo").is_none())
        .map(|mut o| {
            if let Some((kind, body)) = o.as_object_mut().and_then(|m| m.iter_mut().next()) {
                if let Some(b) = body.as_object_mut() {
                    b.remove("handle");
                    if kind == "table" || kind == "chain" {
                        b.remove("comment");
                    }
                }
            }
            o
        })
        .collect()
}

/// (rules equal, rules in the real JSON, the first differences).
fn agreement(converted: &[Value], real: &[Value]) -> (usize, usize, Vec<String>) {
    let rules = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .filter(|o| o.get("rule").is_some())
            .cloned()
            .collect()
    };
    let (a, b) = (rules(converted), rules(real));
    let mut diffs = Vec::new();
    let mut equal = 0;
    for (i, r) in b.iter().enumerate() {
        match a.get(i) {
            Some(c) if c == r => equal += 1,
            c => diffs.push(format!(
                "rule {i}:\n  real {r}\n  text {}",
                c.unwrap_or(&Value::Null)
            )),
        }
    }
    let others = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .filter(|o| o.get("rule").is_none())
            .cloned()
            .collect()
    };
    for (x, y) in others(real).iter().zip(others(converted).iter()) {
        if x != y {
            diffs.push(format!("object:\n  real {x}\n  text {y}"));
        }
    }
    if others(real).len() != others(converted).len() {
        diffs.push(format!(
            "{} other objects in the real JSON, {} converted",
            others(real).len(),
            others(converted).len()
        ));
    }
    (equal, b.len(), diffs)
}

#[test]
fn nft_text_converts_to_what_nft_prints_as_json_and_imports_like_a_capture() {
    let Some(_env) = require_lab() else { return };
    let b = Lab::builder("impnfttxt")
        .pods(3)
        .services(3)
        .dual_stack(true)
        .proxy_mode(ProxyMode::Nftables)
        .cni(CniMode::Bridge);
    with_built_lab(b, |lab| {
        lab.fault_service_without_endpoints(1)?;
        lab.fault_endpoint_pod_deleted(2)?;
        lab.fault_kube_rules_in_both_backends()?;
        let text = dump(lab, &["nft", "list", "ruleset"]);
        let real_json = dump(lab, &["nft", "-j", "list", "ruleset"]);
        let converted = netsnap_import::nft_text::to_json(&text, "nft-list-ruleset.txt", 1);
        assert!(converted.notes.is_empty(), "{:#?}", converted.notes);
        let (real, _) = netsnap_import::convert::nft_without_iptables_tables(&real_json)
            .map_err(anyhow::Error::msg)?;
        let real = normalised(&serde_json::from_str(&real)?);
        let mine = normalised(&serde_json::from_str(&converted.json)?);
        let (equal, total, diffs) = agreement(&mine, &real);
        let pct = if total == 0 { 0.0 } else { 100.0 * equal as f64 / total as f64 };
        notice(&format!(
            "nft list ruleset text → JSON: {equal}/{total} rules equal to nft -j ({pct:.1} %), {} tables/sets/maps/chains compared",
            real.len() - total
        ));
        assert!(total > 20, "the lab's ruleset has kube-proxy's rules: {total}");
        for t in ["ip", "ip6"] {
            assert!(
                real.iter().any(|o| o["table"]["family"] == t),
                "the lab has a {t} table"
            );
        }
        assert!(diffs.is_empty(), "{}", diffs.iter().take(8).cloned().collect::<Vec<_>>().join("\n"));

        // The text as a loose dump next to the node's other dumps.
        let direct = collect_lab(lab, "direct", &[]);
        let direct = Bundle::open(&direct, &ReadLimits::default())?;
        let files = vec![
            dump(lab, &["iptables-nft-save", "-c"]),
            dump(lab, &["ip6tables-nft-save", "-c"]),
            dump(lab, &["iptables-legacy-save", "-c"]),
            dump(lab, &["ip", "-j", "-d", "link", "show"]),
            dump(lab, &["ip", "-j", "addr", "show"]),
            dump(lab, &["ip", "-j", "route", "show", "table", "all"]),
            dump(lab, &["ip", "-j", "rule", "show"]),
            dump(lab, &["ip", "-j", "neigh", "show"]),
            dump(lab, &["conntrack", "-L"]),
            dump(lab, &["sysctl", "-a"]),
            format!("root@node:~# nft list ruleset\n{text}root@node:~# exit\n"),
        ];
        let paths = write_inputs(&lab.dir().join("import-nft-text"), &files);
        let (bundle, draft) = import(&paths);
        let rec = bundle.manifest.source_at("netfilter/nft.json").expect("nft.json imported");
        let from = rec.imported_from.as_ref().expect("imported_from");
        assert_eq!(from.recogniser, "nft-list-ruleset", "{:#?}", notes_of(&draft));
        let c = compare(&direct, &bundle);
        assert_same(&c, "nft text with the node's other dumps");
        // Findings that read the nft ruleset are among those found again: the service
        // in kube-proxy's no-endpoint map, kube-proxy rules in both backends.
        for id in ["SVC001 ", "NF001 "] {
            assert!(
                c.matched.iter().any(|m| m.starts_with(id)),
                "{id}: {:?}",
                c.matched
            );
        }
        Ok(())
    })
    .expect("lab");
}
