//! A kube-proxy IPVS-mode node: pods wired by the CNI bridge plugin, `kube-ipvs0`
//! (a bridge standing in for the dummy) holding every ClusterIP, kube-proxy's ipsets
//! made with `ipset` and its set-matching iptables rules, captured with the real
//! collector. This kernel has no IPVS: the lab renders `/proc/net/ip_vs` for its
//! services and the test places it in the bundle (`netsnap_tests::bundle_edit`), so no
//! traffic goes through a VIP (the lab's traffic goes pod to endpoint).
//!
//! Healthy: no alarm, every line understood, the datapath named, every pod tied. Then
//! the faults that apply, each reported on its subject (IPVS names no service: a
//! service is its VIP).

use netsnap_schema::layout;
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::datapath_check::{self as dc, Expected};
use netsnap_tests::lab::{assert_no_leaks, ipvs, ok_stdout, require_lab, CniMode, Lab, ProxyMode};
use netsnap_tests::notice;
use std::collections::{BTreeMap, BTreeSet};

/// What the node shows of IPVS mode besides the rendered table.
fn check_ipvs_shape(lab: &Lab) {
    let link = ok_stdout(&lab.node(&["ip", "-d", "link", "show", "dev", ipvs::KUBE_IPVS0]));
    assert!(
        link.contains("NOARP") && link.contains("state DOWN"),
        "{link}"
    );
    let addrs = ok_stdout(&lab.node(&["ip", "-4", "-o", "addr", "show", "dev", ipvs::KUBE_IPVS0]));
    let sets = ok_stdout(&lab.node(&["ipset", "save"]));
    for s in lab.services() {
        assert!(
            addrs.contains(&format!("inet {}/32 ", s.cluster_ip)),
            "{addrs}"
        );
        let member = format!(
            "add KUBE-CLUSTER-IP {},{}:{}",
            s.cluster_ip,
            s.protocol.lower(),
            s.port
        );
        assert!(sets.contains(&member), "{member} missing:\n{sets}");
    }
    let save = lab.iptables_save(false).expect("iptables-nft-save");
    assert!(
        save.contains("--match-set KUBE-CLUSTER-IP dst,dst"),
        "{save}"
    );
    assert!(
        save.contains("--match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"),
        "{save}"
    );
    assert!(
        !save.contains("KUBE-SVC-") && !save.contains("KUBE-SEP-"),
        "{save}"
    );
    // CNI bridge's own chains outlived kube-proxy's restore.
    assert!(save.contains(":CNI-FORWARD"), "{save}");
    let text = lab.ipvs_proc_text().expect("rendered ip_vs");
    let virtual_servers = text
        .lines()
        .filter(|l| l.starts_with("TCP ") || l.starts_with("UDP "))
        .count();
    assert_eq!(virtual_servers, lab.services().len(), "{text}");
}

/// The trace engine's pods × service ports on a capture (the engine runs IPVS from the
/// placed table; no kernel IPVS here to compare it with): per service address, the
/// cells whose connections all fail and all cells.
fn failing_cells(bundle: &str, lab: &Lab) -> BTreeMap<String, (usize, usize)> {
    let b = dc::open(&lab.dir().join(format!("{bundle}.netsnap.tar.zst")));
    let a = dc::analyze(&b);
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in &a.reach.expect("reachability matrix").cells {
        let e = out.entry(c.address.to_string()).or_default();
        e.0 += usize::from(c.failing() > 0.999);
        e.1 += 1;
    }
    out
}

#[test]
fn lab_ipvs_node() {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Bridge) {
        return;
    }
    let mut lab = Lab::builder("ipvs")
        .pods(6)
        .services(5)
        .endpoints_per_service(2)
        .proxy_mode(ProxyMode::Ipvs)
        .cni(CniMode::Bridge)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    check_ipvs_shape(&lab);
    // As collected: the kernel has no IPVS, and the analyzer says what that means
    // for a node set up for it.
    let raw = dc::open(&collect_lab(&lab, "raw", &[]));
    let a = dc::analyze(&raw);
    let no_ipvs: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.id.as_str() == "SVC006" && f.subject == "node")
        .collect();
    assert_eq!(no_ipvs.len(), 1, "{}", dc::describe(&a.findings));
    let vips: BTreeSet<_> = lab.services().iter().map(|s| s.cluster_ip).collect();
    let counts = format!(
        "{} address(es) on kube-ipvs0, {} service port(s) in ipset KUBE-CLUSTER-IP",
        vips.len(),
        lab.services().len()
    );
    assert!(
        no_ipvs[0].message.contains(&counts),
        "{counts}: {}",
        no_ipvs[0].message
    );
    let healthy = dc::check_healthy(
        &lab,
        &Expected {
            what: "ipvs",
            datapath: "CNI bridge (cni0), overlay none, services by kube-proxy ipvs, IPv4",
            conflist: Some(&CniMode::Bridge.conflist_file()),
        },
    );
    // The collector found no IPVS here; the placed table is what the analysis used.
    let b = dc::open(&lab.dir().join("healthy.netsnap.tar.zst"));
    assert_eq!(
        b.text(layout::IPVS).as_deref(),
        lab.ipvs_proc_text().as_deref()
    );
    let real_servers = lab
        .services()
        .iter()
        .map(|s| s.endpoints.len())
        .sum::<usize>();

    let healthy_reach = failing_cells("healthy", &lab);
    let cells: usize = healthy_reach.values().map(|c| c.1).sum();
    assert_eq!(
        cells,
        lab.pods().len() * lab.services().len(),
        "{healthy_reach:?}"
    );
    assert!(
        healthy_reach.values().all(|c| c.0 == 0),
        "{healthy_reach:?}"
    );

    // Service i has endpoints on pods 2i and 2i+1 (mod 6); service 3 is UDP.
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_endpoint_pod_deleted(4).unwrap();
    lab.fault_mtu_mismatch(1).unwrap();
    lab.fault_no_default_route(3).unwrap();
    lab.fault_hairpin_off(2).unwrap();
    lab.fault_ipvs_virtual_server_missing(1).unwrap();
    lab.fault_ipvs_vip_unbound(4).unwrap();
    lab.fault_dns_without_endpoints().unwrap();
    lab.fault_pod_gone_without_cni_del(5).unwrap();
    lab.fault_duplicate_cni_config().unwrap();
    dc::assert_faults_reported(&lab, "ipvs");
    // No endpoints, VIP not local: every pod's connection fails. Without a virtual
    // server the engine knows no service there (the matrix has no row for it).
    let reach = failing_cells("faults", &lab);
    let key = |i: usize| {
        let s = &lab.services()[i];
        format!("{}/{}", s.vip(), s.protocol.lower())
    };
    for i in [0, 4] {
        let (failing, all) = reach.get(&key(i)).copied().unwrap_or_default();
        assert!(all > 0 && failing == all, "{}: {reach:?}", key(i));
    }
    assert!(!reach.contains_key(&key(1)), "{reach:?}");
    let faults: Vec<String> = lab
        .faults()
        .iter()
        .map(|f| format!("{} {} on {}", f.finding, f.kind, f.subject))
        .collect();
    notice(&format!(
        "lab_ipvs: sampled {} pods (CNI bridge), {} service ports as {} virtual servers with {real_servers} real servers \
         (rendered /proc/net/ip_vs placed in the bundle: no kernel IPVS), {} VIPs on kube-ipvs0; as collected (no IPVS \
         table) SVC006 critical on node; with the table placed, healthy: {} findings, \
         0 warning/critical, {} files / {} lines, 0 unrecognised, every pod tied, trace engine (no kernel to compare \
         with) {cells}/{cells} pod → service paths delivered; faults {}/{} reported: {}; after them every path to the \
         VIP without endpoints and to the unbound VIP fails in the engine",
        lab.pods().len(),
        lab.services().len(),
        lab.services().len(),
        vips.len(),
        healthy.findings,
        healthy.files,
        healthy.lines,
        faults.len(),
        faults.len(),
        faults.join(", ")
    ));
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}
