//! End-to-end: a lab node (real network namespaces) → `netsnap-collect --node-netns`
//! → `netsnap analyze --format json`. For every fault injector of the lab, the
//! analyzer must report the catalog id the injector recorded, on the right subject;
//! the same lab without faults must give no warning or critical finding.
//!
//! Needs root and the lab's tools (see `require_lab`); the binaries come from
//! `netsnap_tests::collector` (built on first use, or `$NETSNAP_COLLECT_BIN` /
//! `$NETSNAP_BIN`).

use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::collector::analyzer_bin;
use netsnap_tests::lab::{assert_no_leaks, require_lab, InjectedFault, Lab, ProxyMode};
use serde_json::Value;
use std::process::Command;

#[derive(Debug)]
struct Finding {
    id: String,
    severity: String,
    subject: String,
    message: String,
}

struct Analysis {
    report: Value,
    findings: Vec<Finding>,
}

impl Analysis {
    /// Warning and critical findings, less the one the test machine causes: the
    /// collector cannot inspect the netns of some unrelated processes of this machine
    /// (permission denied), which it rightly reports as a partial netns index.
    fn alarms(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == "warning" || f.severity == "critical")
            .filter(|f| {
                !(f.id == "BND001"
                    && f.subject == "source netns/index"
                    && f.message.contains("permission denied"))
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.findings
            .iter()
            .map(|f| format!("{} {} [{}] {}", f.id, f.severity, f.subject, f.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn collect_and_analyze(lab: &Lab) -> Analysis {
    let bundle = collect_lab(lab, "capture", &[]);
    let out = Command::new(analyzer_bin().expect("netsnap"))
        .args(["analyze", "--format", "json"])
        .arg(&bundle)
        .output()
        .expect("run netsnap analyze");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "netsnap analyze failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("analyze JSON");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let findings = report["bundles"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| Finding {
            id: text(&f["id"]),
            severity: text(&f["severity"]),
            subject: text(&f["subject"]),
            message: text(&f["message"]),
        })
        .collect();
    Analysis { report, findings }
}

/// Whether the analysis reports `fault` on its subject.
fn reported(a: &Analysis, lab: &Lab, fault: &InjectedFault) -> bool {
    let pod = |subject: &str| {
        lab.pods()
            .iter()
            .find(|p| format!("pod {}/{}", p.namespace, p.name) == subject)
            .cloned()
    };
    a.findings.iter().any(|f| {
        f.id == fault.finding
            && match fault.kind.as_str() {
                // The pod is gone, so the finding is about the service still sending to
                // its address.
                "endpoint_pod_deleted" => pod(&fault.subject).is_some_and(|p| {
                    f.subject.starts_with("service ")
                        && f.message.contains(&format!("endpoint {}:", p.ip))
                }),
                // The pod and its netns are gone: the finding is about the host veth.
                "dangling_host_veth" => pod(&fault.subject)
                    .is_some_and(|p| f.subject == format!("link {}", p.host_veth)),
                // `service kube-system/kube-dns` covers both of its ports.
                _ => {
                    f.subject == fault.subject
                        || f.subject.starts_with(&format!("{}:", fault.subject))
                }
            }
    })
}

fn assert_all_reported(a: &Analysis, lab: &Lab) {
    let missing: Vec<String> = lab
        .faults()
        .iter()
        .filter(|f| !reported(a, lab, f))
        .map(|f| format!("{} {} on {:?}", f.kind, f.finding, f.subject))
        .collect();
    assert!(
        missing.is_empty(),
        "not reported: {missing:#?}\nfindings:\n{}",
        a.describe()
    );
}

fn finish(lab: Lab) {
    let fp = lab.footprint();
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}

fn healthy(mode: ProxyMode, prefix: &str) {
    let Some(_env) = require_lab() else { return };
    let lab = Lab::builder(prefix)
        .pods(6)
        .services(5)
        .proxy_mode(mode)
        .build()
        .expect("build lab");
    let a = collect_and_analyze(&lab);
    assert!(
        a.alarms().is_empty(),
        "healthy lab has alarms:\n{}",
        a.describe()
    );
    let counts = &a.report["bundles"][0]["counts"];
    assert_eq!(counts["pods"], lab.pods().len(), "{counts}");
    // 5 workload service ports and the two kube-dns ports.
    assert!(counts["services"].as_u64().unwrap_or(0) >= 7, "{counts}");
    assert_eq!(a.report["bundles"][0]["coverage"]["unrecognised_lines"], 0);
    finish(lab);
}

#[test]
fn healthy_iptables_lab_has_no_alarm() {
    healthy(ProxyMode::Iptables, "az-ok-ipt");
}

#[test]
fn healthy_nftables_lab_has_no_alarm() {
    healthy(ProxyMode::Nftables, "az-ok-nft");
}

#[test]
fn link_faults_are_reported() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("az-links")
        .pods(10)
        .services(3)
        .traffic(false)
        .build()
        .expect("build lab");
    lab.fault_veth_detached(1).unwrap();
    lab.fault_link_down(2).unwrap();
    lab.fault_hairpin_off(3).unwrap();
    lab.fault_mtu_mismatch(4).unwrap();
    lab.fault_duplicate_pod_ip(5, 6).unwrap();
    lab.fault_no_default_route(7).unwrap();
    lab.fault_rp_filter_strict(8).unwrap();
    lab.fault_dangling_host_veth(9).unwrap();
    let a = collect_and_analyze(&lab);
    assert_all_reported(&a, &lab);
    finish(lab);
}

#[test]
fn service_faults_are_reported() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("az-svc")
        .pods(8)
        .services(6)
        .build()
        .expect("build lab");
    // Service 3 is UDP; its flow is made before other faults disturb the pods.
    lab.fault_stale_udp_conntrack(3).unwrap();
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_target_port_not_listening(1).unwrap();
    lab.fault_endpoint_pod_deleted(4).unwrap();
    lab.fault_dns_without_endpoints().unwrap();
    let a = collect_and_analyze(&lab);
    assert_all_reported(&a, &lab);
    finish(lab);
}

#[test]
fn node_and_dns_faults_are_reported() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("az-node")
        .pods(5)
        .services(2)
        .traffic(false)
        .build()
        .expect("build lab");
    lab.fault_bridge_nf_call_iptables_off().unwrap();
    lab.fault_ip_forward_off().unwrap();
    lab.fault_forward_policy_drop().unwrap();
    lab.fault_masquerade_missing().unwrap();
    lab.fault_kube_rules_in_both_backends().unwrap();
    lab.fault_node_resolv_local_stub().unwrap();
    lab.fault_resolv_wrong_nameserver(1).unwrap();
    lab.fault_resolv_too_many_search(2).unwrap();
    lab.fault_resolv_too_many_nameservers(3).unwrap();
    let a = collect_and_analyze(&lab);
    assert_all_reported(&a, &lab);
    finish(lab);
}

#[test]
fn nftables_mode_faults_are_reported() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("az-nft")
        .pods(6)
        .services(4)
        .proxy_mode(ProxyMode::Nftables)
        .build()
        .expect("build lab");
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_endpoint_pod_deleted(2).unwrap();
    lab.fault_kube_rules_in_both_backends().unwrap();
    let a = collect_and_analyze(&lab);
    assert_all_reported(&a, &lab);
    finish(lab);
}

#[test]
fn conntrack_table_full_is_reported() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("az-ctfull")
        .pods(2)
        .services(1)
        .traffic(false)
        .build()
        .expect("build lab");
    lab.fault_conntrack_table_full().unwrap();
    let a = collect_and_analyze(&lab);
    assert_all_reported(&a, &lab);
    let ct001 = a.findings.iter().find(|f| f.id == "CT001").expect("CT001");
    assert_eq!(ct001.severity, "critical");
    finish(lab);
}
