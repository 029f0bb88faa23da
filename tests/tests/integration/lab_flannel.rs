//! Two lab nodes joined by a Flannel-style VXLAN overlay (`netsnap_tests::lab::flannel`):
//! `flannel.1` with per-peer FDB and neighbour entries and an on-link route to the
//! peer's pod subnet, pods wired by the `bridge` plugin with the configuration
//! flannel's plugin delegates, flanneld's iptables rules, and kube-proxy rules whose
//! services have endpoints on both nodes. Real requests cross the overlay; each node
//! is collected with the real collector and analyzed on its own: healthy, no alarm
//! (remote endpoints are not stale), every line understood, named Flannel with its
//! VXLAN overlay, every pod tied; then the faults that apply are found on their subject.

use netsnap_analyzer::check::Finding;
use netsnap_analyzer::trace::path::Verdict;
use netsnap_analyzer::trace::request::{self, Ask};
use netsnap_analyzer::trace::{packet::Proto, Prepared};
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::datapath_check::{self as dc, Expected, Healthy};
use netsnap_tests::lab::flannel::{
    tcp_listener, FlannelPair, OVERLAY_MTU, VXLAN_DEVICE, VXLAN_PORT,
};
use netsnap_tests::lab::{
    assert_no_leaks, cleanup_stale, ok_json, ok_stdout, require_lab, CniMode, Lab, ProxyMode,
};
use netsnap_tests::notice;
use std::net::SocketAddrV4;

/// `flannel.1`, its peer entries and flanneld's rules as the kernel shows them on
/// `lab`, the peer being `peer`.
fn check_overlay_state(pair: &FlannelPair, lab: &Lab, peer: usize) {
    let (me, other) = (&pair.vteps[1 - peer], &pair.vteps[peer]);
    let link = ok_json(&lab.node(&["ip", "-d", "-j", "link", "show", "dev", VXLAN_DEVICE]));
    let info = &link[0]["linkinfo"]["info_data"];
    assert_eq!(link[0]["mtu"], OVERLAY_MTU, "{link}");
    assert_eq!(info["id"], 1, "{link}");
    assert_eq!(info["port"], VXLAN_PORT, "{link}");
    assert_eq!(info["learning"], false, "{link}");
    assert_eq!(info["local"], me.node_ip.to_string(), "{link}");
    let addr = ok_stdout(&lab.node(&["ip", "-4", "addr", "show", "dev", VXLAN_DEVICE]));
    assert!(
        addr.contains(&format!("inet {}/32 ", me.subnet.network())),
        "{addr}"
    );
    let fdb = ok_stdout(&lab.node(&["bridge", "fdb", "show", "dev", VXLAN_DEVICE]));
    let entry = format!("{} dst {} self permanent", other.mac, other.node_ip);
    assert!(fdb.contains(&entry), "{entry} missing:\n{fdb}");
    let neigh = ok_stdout(&lab.node(&["ip", "neigh", "show", "dev", VXLAN_DEVICE]));
    let entry = format!("{} lladdr {} PERMANENT", other.subnet.network(), other.mac);
    assert!(neigh.contains(&entry), "{entry} missing:\n{neigh}");
    let route = ok_stdout(&lab.node(&["ip", "route", "show", &other.subnet.to_string()]));
    let want = format!("via {} dev {VXLAN_DEVICE} onlink", other.subnet.network());
    assert!(route.contains(&want), "{want} missing: {route}");
    let save = lab.iptables_save(false).expect("iptables-nft-save");
    for rule in [
        "-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG",
        "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD",
    ] {
        assert!(
            save.contains(rule),
            "{rule} missing (lost on a kube-proxy reload?):\n{save}"
        );
    }
    let env = std::fs::read_to_string(lab.host_root().join("run/flannel/subnet.env")).unwrap();
    assert!(env.contains(&format!("FLANNEL_MTU={OVERLAY_MTU}")), "{env}");
}

/// The pod whose veth pair agrees at 1500 is reported for what the overlay can carry:
/// 1500 − 50 bytes of VXLAN on flannel.1.
fn check_mtu_finding_names_the_overlay(findings: &[Finding]) {
    let f = findings
        .iter()
        .find(|f| f.id.as_str() == "LNK006" && f.subject == "pod default/web-1")
        .unwrap_or_else(|| panic!("no LNK006 on web-1:\n{}", dc::describe(findings)));
    for part in ["MTU 1500", "vxlan", VXLAN_DEVICE, "50 bytes", "1450"] {
        assert!(f.message.contains(part), "{part:?} not in {}", f.message);
    }
}

/// The trace engine on `lab`'s capture `label` (`healthy`, `faults`): a TCP request
/// from pod `from` to `to` — its one branch's verdict and reason.
fn trace_on(lab: &Lab, label: &str, from: usize, to: SocketAddrV4) -> (Verdict, String) {
    let bundle = dc::open(&lab.dir().join(format!("{label}.netsnap.tar.zst")));
    let prepared = Prepared::new(&bundle);
    let p = &lab.pods()[from];
    let ask = Ask {
        from: format!("{}/{}", p.namespace, p.name),
        to: to.to_string(),
        port: None,
        proto: Some(Proto::Tcp),
        size: None,
        established: false,
    };
    let requests = request::resolve(&prepared.model, &ask).expect("request resolves");
    let trace = prepared.engine(Default::default()).trace(&requests[0]);
    assert_eq!(trace.verdicts.len(), 1, "{:?}", trace.verdicts);
    let b = &trace.verdicts[0];
    (b.verdict, b.reason.clone())
}

/// The healthy node collected and checked.
fn check_healthy(lab: &Lab) -> Healthy {
    let proxy = lab.proxy_mode().datapath_name();
    let datapath =
        format!("CNI flannel (cni0), overlay vxlan flannel.1 (flannel), services by {proxy}, IPv4");
    dc::check_healthy(
        lab,
        &Expected {
            what: lab.name(),
            datapath: &datapath,
            conflist: Some("10-flannel.conflist"),
        },
    )
}

fn run(proxy: ProxyMode, prefix: &str) {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Flannel) {
        return;
    }
    // 4 workload pods per node; service i has one endpoint on each node (pod i).
    let base = Lab::builder(prefix)
        .pods(4)
        .services(4)
        .endpoints_per_service(1)
        .proxy_mode(proxy);
    let mut pair = FlannelPair::build(base).expect("build the flannel pair");
    let fps = pair.footprints();
    check_overlay_state(&pair, &pair.a, 1);
    check_overlay_state(&pair, &pair.b, 0);
    let proof = pair.prove_overlay().expect("traffic over the overlay");
    let healthy = pair.nodes().map(check_healthy);

    // Node A: the pod MTU the overlay cannot carry, hairpin off, a service without
    // endpoints (on both nodes, as kube-proxy would program it everywhere).
    pair.a.fault_pod_mtu_over_overlay(1, 1500).unwrap();
    pair.a.fault_hairpin_off(2).unwrap();
    for lab in [&mut pair.a, &mut pair.b] {
        lab.fault_service_without_endpoints(1).unwrap();
    }
    // Node B: an endpoint pod deleted (its node's capture tells), no default route.
    pair.b.fault_endpoint_pod_deleted(0).unwrap();
    pair.b.fault_no_default_route(3).unwrap();
    // Node B: an older CNI configuration sorts before flannel's (flannel's plugin
    // runs with ipMasq off: no CNI nat rule to leak, NF007 does not apply).
    pair.b.fault_duplicate_cni_config().unwrap();
    // Node A: flanneld lost B's VTEP (FDB entry gone): the kernel drops A → B.
    let to_b = tcp_listener(&pair.b).expect("a listening pod on B").1;
    assert!(
        pair.a.tcp_request(0, to_b).is_ok(),
        "A → B before the fault"
    );
    let vb = pair.vteps[1].clone();
    pair.a.fault_overlay_fdb_missing(&vb).unwrap();
    assert!(
        pair.a.tcp_request(0, to_b).is_err(),
        "A → B {to_b} answered without flannel.1's FDB entry"
    );
    // The trace agrees with the kernel: before, the packet leaves for B's VTEP at B's
    // address; after, flannel.1 drops it.
    let before = trace_on(&pair.a, "healthy", 0, to_b);
    let via = format!("VTEP {} at {}", vb.mac, vb.node_ip);
    assert!(
        before.0 == Verdict::LeftNode && before.1.contains(&via),
        "{before:?}"
    );
    let mut found = Vec::new();
    for lab in pair.nodes() {
        let bundle = dc::open(&collect_lab(lab, "faults", &[]));
        let a = dc::analyze(&bundle);
        dc::assert_faults_in(&a, lab, lab.name());
        found.extend(
            lab.faults()
                .iter()
                .map(|f| format!("{} {}", f.finding, f.kind)),
        );
        if lab.name() == pair.a.name() {
            check_mtu_finding_names_the_overlay(&a.findings);
            let after = trace_on(lab, "faults", 0, to_b);
            assert!(
                after.0 == Verdict::Dropped && after.1.contains("no FDB entry"),
                "{after:?}"
            );
        }
    }
    let [ha, hb] = healthy;
    let workload = pair.a.config().services;
    notice(&format!(
        "lab_flannel ({}, {proxy:?} kube-proxy): sampled node A ({} pods incl. coredns) and node B ({} pods), \
         {} service ports ({workload} with endpoints on both nodes, kube-dns on A); \
         overlay {VXLAN_DEVICE} VNI 1 port {VXLAN_PORT} MTU {OVERLAY_MTU}: {} pod-to-pod requests across it, \
         {} service requests until both nodes' endpoints answered ({} pods answered), {} kube-dns queries B → A; \
         healthy A: {} findings / {} files / {} lines, B: {} findings / {} files / {} lines, \
         0 warning/critical, 0 unrecognised, every pod tied; A → B {to_b}: kernel answered, trace \
         left-node via {via}; B's FDB entry deleted on A: kernel timed out, trace dropped at flannel.1; \
         faults {}/{} reported: {}",
        pair.a.name(),
        pair.a.pods().len(),
        pair.b.pods().len(),
        pair.a.services().len(),
        proof.pod_to_pod,
        proof.service_requests,
        proof.answering_pods,
        proof.dns_queries,
        ha.findings,
        ha.files,
        ha.lines,
        hb.findings,
        hb.files,
        hb.lines,
        found.len(),
        found.len(),
        found.join(", ")
    ));
    pair.teardown().expect("teardown");
    for fp in &fps {
        assert_no_leaks(fp);
    }
}

#[test]
fn lab_flannel_vxlan_nodes() {
    run(ProxyMode::Iptables, "flannel");
}

#[test]
fn lab_flannel_vxlan_nodes_nftables_kube_proxy() {
    run(ProxyMode::Nftables, "flannel-nft");
}

/// A pair left by a dead test process (its owner records name no live process) is
/// removed whole by the stale-lab cleanup: both nodes and A's upstream, which B's
/// uplink was plugged into.
#[test]
fn lab_flannel_pair_left_by_a_dead_process_is_cleaned_up() {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Flannel) {
        return;
    }
    let base = Lab::builder("flannel-stale")
        .pods(1)
        .services(1)
        .endpoints_per_service(1)
        .traffic(false);
    let pair = FlannelPair::build(base).expect("build the flannel pair");
    let fps = pair.footprints();
    for lab in pair.nodes() {
        // PID 4194304 is above the kernel's largest pid_max: no process has it.
        std::fs::write(lab.dir().join("owner"), "4194304 1").unwrap();
    }
    let removed = cleanup_stale();
    for lab in pair.nodes() {
        assert!(
            removed.iter().any(|n| n == lab.name()),
            "{} not removed: {removed:?}",
            lab.name()
        );
    }
    for fp in &fps {
        assert_no_leaks(fp);
    }
    notice(&format!(
        "lab_flannel stale cleanup: both nodes of a pair owned by a dead PID removed ({}), \
         0 netns/cgroups/dirs/processes/links left",
        pair.nodes().map(|l| l.name().to_string()).join(", ")
    ));
    pair.teardown().expect("teardown after the cleanup");
}
