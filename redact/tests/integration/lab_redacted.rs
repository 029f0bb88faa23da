//! End-to-end on a lab node (real network namespaces): `netsnap-collect` captures it,
//! the capture is redacted, and the analyzer's findings on the redacted bundle equal
//! its findings on the capture modulo the mapping; no lab pod's name, namespace, uid
//! or address survives. Needs root and the lab (`NETSNAP_LAB`, see `require_lab`).

use crate::support;

use netsnap_analyzer::check::{Selection, Thresholds};
use netsnap_analyzer::report::analyze;
use netsnap_redact::ip::{class, IpClass};
use netsnap_redact::Redactor;
use netsnap_schema::BundleWriter;
use netsnap_tests::collector::collector_bin;
use netsnap_tests::lab::{assert_no_leaks, require_lab, Lab};
use std::process::Command;
use support::*;

#[test]
fn lab_capture_redacts_with_equal_findings() {
    let Some(_env) = require_lab() else { return };
    if !lab_binary_present() {
        // `cargo test -p netsnap-redact` does not build it; `--workspace` (CI) does.
        let required = std::env::var("NETSNAP_LAB").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "netsnap-lab binary not found (set NETSNAP_LAB_BIN)"
        );
        eprintln!("SKIPPED lab_capture_redacts_with_equal_findings: no netsnap-lab binary");
        return;
    }
    let bin = collector_bin().expect("netsnap-collect");
    let mut lab = Lab::builder("rd-lab")
        .pods(6)
        .services(4)
        .build()
        .expect("build lab");
    lab.fault_service_without_endpoints(0).expect("fault");
    lab.fault_hairpin_off(1).expect("fault");
    lab.fault_mtu_mismatch(2).expect("fault");
    lab.fault_resolv_wrong_nameserver(3).expect("fault");
    lab.fault_endpoint_pod_deleted(4).expect("fault");
    let bundle_path = lab.dir().join("capture.netsnap.tar.zst");
    let out = Command::new(&bin)
        .arg("--node-netns")
        .arg(lab.node_netns_path())
        .arg("--host-root")
        .arg(lab.host_root())
        .arg("-o")
        .arg(&bundle_path)
        .arg("-q")
        .output()
        .expect("run netsnap-collect");
    assert!(
        bundle_path.is_file(),
        "no bundle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = open(&bundle_path);

    // The same node through `netsnap-collect --redact`: bundle and map beside it.
    let key_path = lab.dir().join("cluster.key");
    let redacted_capture = lab.dir().join("redacted.netsnap.tar.zst");
    let out = Command::new(&bin)
        .arg("--node-netns")
        .arg(lab.node_netns_path())
        .arg("--host-root")
        .arg(lab.host_root())
        .arg("-o")
        .arg(&redacted_capture)
        .args(["-q", "--redact", "--redact-key"])
        .arg(&key_path)
        .output()
        .expect("run netsnap-collect --redact");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let map_path = lab.dir().join("redacted.netsnap.tar.zst.map.json");
    let capture_map =
        netsnap_redact::RedactionMap::from_json(&std::fs::read(&map_path).expect("map beside"))
            .expect("map");
    let collected_redacted = open(&redacted_capture);
    let key = netsnap_redact::RedactKey::from_file(&key_path).expect("key");
    assert_eq!(capture_map.key_fingerprint, key.fingerprint());

    let pods = lab.pods().to_vec();
    let fp = lab.footprint();
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);

    let dir = tempfile::tempdir().unwrap();
    let mut r = Redactor::new(&key);
    r.collect(&original);
    let mut w = BundleWriter::new(dir.path());
    let manifest = r.redact_into(&original, &mut w).unwrap();
    let out_path = dir.path().join("redacted.netsnap.tar.zst");
    w.write_archive(manifest, &out_path).unwrap();
    let redacted = open(&out_path);

    // Nothing of the lab's pods survives.
    let mut needles: Vec<String> = Vec::new();
    for p in &pods {
        needles.extend([p.name.clone(), p.uid.clone(), p.uid.replace('-', "_")]);
        if !netsnap_redact::allowlist::is_allowlisted(&p.namespace) {
            needles.push(p.namespace.clone());
        }
    }
    // A pseudonym may equal an original by chance (a prefix-preserving map sends a /16
    // to itself one time in 256): addresses and networks the map hands out are not leaks.
    let map = r.map();
    let network_pseudonyms = map.cidrs.values().map(|c| c.split('/').next().unwrap_or(c));
    let pseudonyms: std::collections::BTreeSet<String> = map
        .ips
        .values()
        .cloned()
        .chain(network_pseudonyms.map(String::from))
        .collect();
    needles.extend(
        original_ips(&original)
            .into_iter()
            .filter(|ip| class(*ip) != IpClass::Unchanged)
            .flat_map(ip_forms)
            .filter(|t| !pseudonyms.contains(t)),
    );
    needles.extend(original_names(&original));
    assert_absent(&redacted, "lab value", &needles);
    assert_absent(&collected_redacted, "lab value", &needles);
    // One key: the collector's pseudonyms are the redactor's.
    let map = r.map();
    for (orig, pseudo) in &capture_map.names {
        if let Some(p) = map.names.get(orig) {
            assert_eq!(p, pseudo, "{orig}");
        }
    }
    assert_eq!(
        collected_redacted.manifest.hostname,
        redacted.manifest.hostname
    );

    // Same findings, modulo the mapping.
    let f = |b| analyze(b, &Thresholds::default(), &Selection::default()).findings;
    let mut expected: Vec<String> = f(&original)
        .iter()
        .map(|x| normalise_finding(x, Some(&mut r)))
        .collect();
    let mut got: Vec<String> = f(&redacted)
        .iter()
        .map(|x| normalise_finding(x, None))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(expected, got);
    assert!(expected.len() >= 5, "{expected:#?}");
}

/// The lab's helper binary: `$NETSNAP_LAB_BIN` or next to this test executable.
fn lab_binary_present() -> bool {
    std::env::var_os("NETSNAP_LAB_BIN").is_some()
        || std::env::current_exe().is_ok_and(|exe| {
            exe.ancestors()
                .skip(1)
                .take(3)
                .any(|d| d.join("netsnap-lab").is_file())
        })
}
