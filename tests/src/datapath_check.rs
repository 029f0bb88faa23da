//! What every datapath lab test asserts of a node it built (`lab_cni.rs` and the
//! other datapath labs): a healthy capture has no alarm, every line of every source
//! understood, the header naming the datapath, every pod tied to its host veth and
//! address; a capture after faults reports each fault on its subject. An IPVS lab's
//! capture gets the lab's rendered `/proc/net/ip_vs` placed in it ([`collect_node`]).

use crate::collect_support::collect_lab;
use crate::lab::{cni, CniMode, InjectedFault, Lab};
use netsnap_analyzer::check::{Finding, Selection, Severity, Thresholds};
use netsnap_analyzer::graph::Peer;
use netsnap_analyzer::report::{self, Analysis, BundleReport};
use netsnap_schema::{Bundle, ReadLimits};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Whether the CNI plugins `mode` needs are here; a skip notice (or a panic when the
/// lab is required) otherwise.
pub fn require_cni(mode: CniMode) -> bool {
    let Some(reason) = cni::unavailable_reason(mode) else {
        return true;
    };
    let required = matches!(
        std::env::var("NETSNAP_LAB").unwrap_or_default().as_str(),
        "required" | "1" | "yes" | "true"
    );
    assert!(!required, "NETSNAP_LAB=required but {reason}");
    crate::notice(&format!("SKIPPED {}: {reason}", mode.lower()));
    false
}

/// Collects the lab node into `<lab dir>/<label>.netsnap.tar.zst`; for an IPVS lab
/// (this kernel has none) places the lab's rendered `/proc/net/ip_vs` in the bundle.
pub fn collect_node(lab: &Lab, label: &str) -> PathBuf {
    let bundle = collect_lab(lab, label, &[]);
    if let Some(text) = lab.ipvs_proc_text() {
        crate::bundle_edit::place_ipvs_text(&bundle, &text)
            .unwrap_or_else(|e| panic!("{label}: placing ip_vs in the bundle: {e:#}"));
    }
    bundle
}

/// One line per finding, for assertion messages.
pub fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{} {:?} [{}] {}", f.id, f.severity, f.subject, f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Warning and critical findings, less the one this machine causes (the collector
/// cannot enter the netns of some unrelated processes; see analyze_lab.rs).
pub fn alarms(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .filter(|f| {
            !(f.id.as_str() == "BND001"
                && f.subject == "source netns/index"
                && f.message.contains("permission denied"))
        })
        .collect()
}

/// Whether `findings` report `fault` on its subject (as analyze_lab.rs decides); an
/// IPv6 fault of a dual-stack lab must be reported on its IPv6 side.
pub fn reported(findings: &[Finding], lab: &Lab, fault: &InjectedFault) -> bool {
    let pod = lab
        .pods()
        .iter()
        .find(|p| format!("pod {}/{}", p.namespace, p.name) == fault.subject);
    let on_subject = |f: &Finding| {
        f.subject == fault.subject || f.subject.starts_with(&format!("{}:", fault.subject))
    };
    findings.iter().any(|f| {
        f.id.as_str() == fault.finding
            && match fault.kind.as_str() {
                // The pod is gone: the finding is about the service still sending to it.
                "endpoint_pod_deleted" => pod.is_some_and(|p| {
                    f.subject.starts_with("service ")
                        && f.message.contains(&format!("endpoint {}:", p.ip))
                }),
                "endpoint_pod_deleted_v6" => pod.and_then(|p| p.ip6).is_some_and(|ip6| {
                    f.subject.starts_with("service ")
                        && f.message.contains(&format!("endpoint [{ip6}]:"))
                }),
                // The IPv6 VIP is the one said to have no endpoints.
                "service_without_endpoints_v6" => {
                    on_subject(f)
                        && lab.services().iter().any(|s| {
                            format!("service {}", s.port_name_string()) == fault.subject
                                && s.v6
                                    .as_ref()
                                    .is_some_and(|v| f.message.contains(&v.cluster_ip.to_string()))
                        })
                }
                "no_default_route6" => on_subject(f) && f.message.contains("IPv6"),
                "ip6_forward_off" => on_subject(f) && f.message.contains("net.ipv6."),
                "bridge_nf_call_ip6tables_off" => {
                    on_subject(f) && f.message.contains("bridge-nf-call-ip6tables")
                }
                _ => on_subject(f),
            }
    })
}

/// Opens a bundle the collector wrote (panics with the path when it cannot).
pub fn open(path: &Path) -> Bundle {
    Bundle::open(path, &ReadLimits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The whole analysis with default thresholds, every check.
pub fn analyze(bundle: &Bundle) -> Analysis<'_> {
    report::analyze(bundle, &Thresholds::default(), &Selection::default())
}

/// Asserts each of the lab's injected faults is reported on its subject in `a`.
pub fn assert_faults_in(a: &Analysis<'_>, lab: &Lab, what: &str) {
    let missing: Vec<String> = lab
        .faults()
        .iter()
        .filter(|f| !reported(&a.findings, lab, f))
        .map(|f| format!("{} {} on {:?}", f.kind, f.finding, f.subject))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: not reported: {missing:#?}\nfindings:\n{}",
        describe(&a.findings)
    );
}

/// Collects and analyzes the lab after its faults; asserts each is reported on its
/// subject.
pub fn assert_faults_reported(lab: &Lab, what: &str) {
    let b = open(&collect_node(lab, "faults"));
    assert_faults_in(&analyze(&b), lab, what);
}

/// What a healthy node's analysis must show besides "no alarm".
pub struct Expected<'a> {
    /// Names the test in messages.
    pub what: &'a str,
    /// `Datapath::summary()`, e.g. `CNI ptp, overlay none, services by kube-proxy
    /// nftables, IPv4`.
    pub datapath: &'a str,
    /// The CNI config file the runtime uses, when the node has one.
    pub conflist: Option<&'a str>,
}

/// What the healthy capture showed, for the printed line.
pub struct Healthy {
    pub findings: usize,
    pub files: usize,
    pub lines: usize,
}

/// Asserts the healthy node's analysis: no alarm, no unrecognised line, the CNI config
/// in use, the datapath named, every pod of the lab tied to its host veth and address.
pub fn assert_healthy(a: &Analysis<'_>, lab: &Lab, want: &Expected<'_>) -> Healthy {
    let what = want.what;
    let alarms = alarms(&a.findings);
    assert!(
        alarms.is_empty(),
        "{what}: healthy node has alarms:\n{}",
        describe(&a.findings)
    );
    let summary = BundleReport::new("healthy", a);
    let unrecognised: Vec<String> = a
        .model
        .coverage
        .iter()
        .flat_map(|c| {
            c.unrecognised
                .iter()
                .map(move |u| format!("{}: {u:?}", c.path))
        })
        .collect();
    assert!(
        unrecognised.is_empty(),
        "{what}: unrecognised lines:\n{}",
        unrecognised.join("\n")
    );
    let used = a.model.cni.used.map(|i| a.model.cni.files[i].file.as_str());
    assert_eq!(used, want.conflist, "{what}: {:?}", a.model.cni);
    assert_eq!(summary.datapath.summary(), want.datapath, "{what}");
    assert_pods_tied(a, lab, what);
    Healthy {
        findings: a.findings.len(),
        files: summary.coverage.files,
        lines: summary.coverage.recognised_lines,
    }
}

/// Every pod of the lab is in the model with its address (both, in a dual-stack lab),
/// its eth0 tied to its host veth in the node netns.
pub fn assert_pods_tied(a: &Analysis<'_>, lab: &Lab, what: &str) {
    let root = a.model.root().expect("node netns").id.clone();
    for p in lab.pods() {
        let m = a
            .model
            .pods
            .iter()
            .find(|m| {
                m.namespace.as_deref() == Some(p.namespace.as_str())
                    && m.name.as_deref() == Some(p.name.as_str())
            })
            .unwrap_or_else(|| panic!("{what}: pod {} not in the model", p.name));
        assert!(m.ips.contains(&IpAddr::V4(p.ip)), "{what}: {m:?}");
        if let Some(ip6) = p.ip6 {
            assert!(m.ips.contains(&IpAddr::V6(ip6)), "{what}: {m:?}");
            assert_eq!(a.graph.owners(IpAddr::V6(ip6)), vec![m.netns.clone()]);
        }
        let eth0 = m
            .interfaces
            .iter()
            .find(|i| i.name == "eth0")
            .unwrap_or_else(|| panic!("{what}: no eth0 for {}: {m:?}", p.name));
        assert_eq!(
            eth0.host_name.as_deref(),
            Some(p.host_veth.as_str()),
            "{what}: {m:?}"
        );
        assert_eq!(a.graph.owners(IpAddr::V4(p.ip)), vec![m.netns.clone()]);
        match a.graph.peer(&m.netns, eth0.ifindex) {
            Some(Peer::Found { netns, ifindex }) => {
                assert_eq!(netns, root, "{what}: {}", p.name);
                assert_eq!(Some(ifindex), eth0.host_ifindex, "{what}: {}", p.name);
            }
            other => panic!("{what}: peer of {}'s eth0: {other:?}", p.name),
        }
    }
}

/// Collects the healthy lab and asserts [`assert_healthy`].
pub fn check_healthy(lab: &Lab, want: &Expected<'_>) -> Healthy {
    let b = open(&collect_node(lab, "healthy"));
    assert_healthy(&analyze(&b), lab, want)
}
