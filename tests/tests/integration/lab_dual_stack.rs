//! Dual-stack lab nodes (`netsnap_tests::lab::dual_stack`): pods wired by the CNI
//! `bridge` plugin with host-local given an IPv4 and an IPv6 range, every service
//! port with an IPv6 ClusterIP programmed by the IPv6 kube-proxy (ip6tables, nft
//! backend; or `table ip6 kube-proxy`), captured with the real collector and analyzed
//! with the analyzer library.
//!
//! Healthy: no warning or critical finding, every line understood, the header says
//! `IPv4 + IPv6`, every pod tied to its host veth and both its addresses. The trace
//! engine's verdict for every IPv6 request (each pod to each IPv6 VIP, pod to pod) is
//! compared with what the kernel does, with `trace_lab`'s judge, healthy and after the
//! faults. Faults on the IPv6 side (a service whose IPv6 side has no endpoints, a
//! deleted endpoint pod, a UDP conntrack entry to a removed IPv6 endpoint, MTU mismatch, hairpin off, no IPv6 default route in a pod)
//! must each be reported on its subject.

use super::trace_lab::{cases_v6, judge, Outcome};
use netsnap_tests::datapath_check::{self as dc, Expected};
use netsnap_tests::lab::dual_stack::{CLUSTER_DNS_IP6, GATEWAY6};
use netsnap_tests::lab::{assert_no_leaks, ok_stdout, require_lab, CniMode, Lab, ProxyMode};
use netsnap_tests::notice;

/// Agreement of the trace engine with the kernel over a set of IPv6 requests.
#[derive(Default)]
struct Agreement {
    agree: usize,
    total: usize,
    reprobed: usize,
    disagreements: Vec<String>,
}

impl Agreement {
    fn check(&mut self, lab: &Lab, label: &str) {
        for j in judge(lab, label, &cases_v6(lab)) {
            self.total += 1;
            self.reprobed += usize::from(j.reprobed);
            match j.outcome {
                Outcome::Agree => self.agree += 1,
                _ => self.disagreements.push(format!("{}\n{}", j.line, j.trace)),
            }
        }
    }

    fn percent(&self) -> f64 {
        100.0 * self.agree as f64 / self.total.max(1) as f64
    }
}

/// The node's IPv6 side as built: addresses, forwarding, routes, the IPv6 rules in
/// the mode's place.
fn check_wiring_v6(lab: &Lab) {
    let fwd = ok_stdout(&lab.node(&["sysctl", "-n", "net.ipv6.conf.all.forwarding"]));
    assert_eq!(fwd.trim(), "1");
    for (i, p) in lab.pods().iter().enumerate() {
        let ip6 = p
            .ip6
            .unwrap_or_else(|| panic!("{} has no IPv6 address", p.name));
        let route = ok_stdout(&lab.node(&["ip", "-6", "route", "get", &ip6.to_string()]));
        assert!(
            route.contains(&format!("dev {} ", lab.bridge_name())),
            "{ip6}: {route}"
        );
        let def = ok_stdout(&lab.pod_exec(i, &["ip", "-6", "route", "show", "default"]));
        assert!(def.contains(&format!("via {GATEWAY6}")), "{def}");
    }
    match lab.proxy_mode() {
        ProxyMode::Iptables => {
            let save = ok_stdout(&lab.node(&["ip6tables-nft-save"]));
            assert!(save.contains("KUBE-SERVICES"), "{save}");
            assert!(
                save.contains(&format!("-d {CLUSTER_DNS_IP6}/128")),
                "{save}"
            );
        }
        ProxyMode::Nftables => {
            let t = ok_stdout(&lab.node(&["nft", "list", "table", "ip6", "kube-proxy"]));
            assert!(t.contains("chain services"), "{t}");
        }
        ProxyMode::Ipvs => panic!("dual stack is not built for IPVS mode"),
    }
}

fn run(proxy: ProxyMode, prefix: &str) {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Bridge) {
        return;
    }
    let mut lab = Lab::builder(prefix)
        .pods(6)
        .services(5)
        .endpoints_per_service(2)
        .proxy_mode(proxy)
        .cni(CniMode::Bridge)
        .dual_stack(true)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    check_wiring_v6(&lab);
    let proxy_name = proxy.datapath_name();
    let datapath =
        format!("CNI bridge (cni0), overlay none, services by {proxy_name}, IPv4 + IPv6");
    let conflist = CniMode::Bridge.conflist_file();
    let what = format!("dual stack {proxy:?}");
    let healthy = dc::check_healthy(
        &lab,
        &Expected {
            what: &what,
            datapath: &datapath,
            conflist: Some(&conflist),
        },
    );
    let mut agreement = Agreement::default();
    agreement.check(&lab, &format!("dual-{proxy:?}-healthy"));
    let (pods, services) = (lab.pods().len(), lab.services().len());

    // Service i has endpoints on pods 2i and 2i+1 (mod 6); service 3 is UDP.
    lab.fault_stale_udp_conntrack_v6(3).unwrap();
    lab.fault_service_without_endpoints_v6(0).unwrap();
    lab.fault_endpoint_pod_deleted_v6(4).unwrap();
    lab.fault_mtu_mismatch(1).unwrap();
    lab.fault_hairpin_off(2).unwrap();
    lab.fault_no_default_route6(3).unwrap();
    // Pod 5 vanishes without CNI DEL: its addresses' ipMasq rules leak (both families).
    lab.fault_pod_gone_without_cni_del(5).unwrap();
    lab.fault_duplicate_cni_config().unwrap();
    dc::assert_faults_reported(&lab, &what);
    agreement.check(&lab, &format!("dual-{proxy:?}-faults"));

    let faults: Vec<String> = lab
        .faults()
        .iter()
        .map(|f| format!("{} {}", f.finding, f.kind))
        .collect();
    notice(&format!(
        "lab_dual_stack {proxy:?}: sampled {pods} pods (IPv4 + IPv6 from host-local's two ranges), {services} service ports with IPv6 ClusterIPs; \
         healthy: {} findings, 0 warning/critical, {} files / {} lines parsed, 0 unrecognised, every pod tied to both addresses; \
         faults {}/{} reported: {}; trace vs kernel over IPv6 (healthy + after the faults): {}/{} agree ({:.1} %), {} sent again alone",
        healthy.findings,
        healthy.files,
        healthy.lines,
        faults.len(),
        faults.len(),
        faults.join(", "),
        agreement.agree,
        agreement.total,
        agreement.percent(),
        agreement.reprobed,
    ));
    assert!(
        agreement.disagreements.is_empty(),
        "{} of {} IPv6 requests disagree:\n{}",
        agreement.disagreements.len(),
        agreement.total,
        agreement.disagreements.join("\n")
    );
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}

#[test]
fn lab_dual_stack_node() {
    run(ProxyMode::Iptables, "dual");
}

#[test]
fn lab_dual_stack_node_nftables_kube_proxy() {
    run(ProxyMode::Nftables, "dual-nft");
}

type Fault = fn(&mut Lab) -> anyhow::Result<()>;

/// Hand-built dual-stack pods (the lab's own `ip` commands) under both kube-proxy
/// modes: healthy, then each node-wide IPv6 switch turned off alone on a fresh lab
/// (IPv6 forwarding, bridge-nf-call-ip6tables). Healthy has no alarm; each switch is
/// reported as an IPv6 fault; the trace engine agrees with the kernel over IPv6 in
/// every lab.
#[test]
fn lab_dual_stack_hand_built_ipv6_switches() {
    let Some(_env) = require_lab() else { return };
    let scenarios: [(&str, Fault); 3] = [
        ("healthy", |_| Ok(())),
        ("ip6-forward-off", Lab::fault_ip6_forward_off),
        (
            "bridge-nf-call-ip6tables-off",
            Lab::fault_bridge_nf_call_ip6tables_off,
        ),
    ];
    let mut agreement = Agreement::default();
    let mut labs = 0;
    for proxy in [ProxyMode::Iptables, ProxyMode::Nftables] {
        for (name, fault) in scenarios {
            let mut lab = Lab::builder("dual-hand")
                .pods(5)
                .services(4)
                .endpoints_per_service(2)
                .proxy_mode(proxy)
                .dual_stack(true)
                .build()
                .expect("build lab");
            let fp = lab.footprint();
            let label = format!("dual-hand-{proxy:?}-{name}");
            if name == "healthy" {
                let proxy_name = proxy.datapath_name();
                let datapath = format!(
                    "CNI bridge (cni0), overlay none, services by {proxy_name}, IPv4 + IPv6"
                );
                let want = Expected {
                    what: &label,
                    datapath: &datapath,
                    conflist: None,
                };
                dc::check_healthy(&lab, &want);
            } else {
                fault(&mut lab).unwrap_or_else(|e| panic!("{label}: {e:#}"));
                dc::assert_faults_reported(&lab, &label);
            }
            agreement.check(&lab, &label);
            labs += 1;
            lab.teardown().expect("teardown");
            assert_no_leaks(&fp);
        }
    }
    notice(&format!(
        "lab_dual_stack hand-built: {labs} labs (iptables and nftables kube-proxy; healthy with no alarm, IPv6 forwarding off and bridge-nf-call-ip6tables off each reported as NF003/NF002 on IPv6); trace vs kernel over IPv6: {}/{} agree ({:.1} %), {} sent again alone",
        agreement.agree,
        agreement.total,
        agreement.percent(),
        agreement.reprobed
    ));
    assert!(
        agreement.disagreements.is_empty(),
        "{} of {} IPv6 requests disagree:\n{}",
        agreement.disagreements.len(),
        agreement.total,
        agreement.disagreements.join("\n")
    );
}
