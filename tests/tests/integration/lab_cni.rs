//! Lab nodes whose pods the CNI reference plugins wired, run as a runtime runs them
//! (`bridge` + `portmap` + `firewall` + `loopback`, and `ptp` + `portmap` +
//! `loopback`; see `netsnap_tests::lab::cni`), captured with the real collector and
//! analyzed with the analyzer library. Healthy: no warning or critical finding, every
//! line of every source understood, every pod tied to its host veth and its host-local
//! address in the model and the graph. Then the faults that apply to the datapath are
//! injected and each must be reported on its subject.

use netsnap_tests::datapath_check::{self as dc, Expected, Healthy};
use netsnap_tests::lab::{
    assert_no_leaks, cni, netns, ok_stdout, require_lab, CniMode, Lab, ProxyMode, NODE_IP,
};
use netsnap_tests::notice;
use std::net::SocketAddrV4;

/// The healthy node collected and checked, the header expected from its CNI and
/// kube-proxy mode.
fn check_healthy(lab: &Lab) -> Healthy {
    let mode = lab.cni_mode();
    let cni = match mode {
        CniMode::Bridge => "bridge (cni0)",
        CniMode::Ptp => "ptp",
        CniMode::CalicoRouted => "calico",
        other => panic!("no datapath expected for {other:?}"),
    };
    let proxy = lab.proxy_mode().datapath_name();
    let datapath = format!("CNI {cni}, overlay none, services by {proxy}, IPv4");
    let conflist = mode.conflist_file();
    dc::check_healthy(
        lab,
        &Expected {
            what: mode.lower(),
            datapath: &datapath,
            conflist: Some(&conflist),
        },
    )
}

/// The node as the plugins built it, seen with `ip`: each pod's address is routed
/// to its host veth, and pod 0's hostPort answers.
fn check_wiring(lab: &Lab) {
    let mode = lab.cni_mode();
    let conflist = lab.cni_conflist_path().expect("CNI lab");
    assert!(conflist.is_file(), "{}", conflist.display());
    // The plugins' rules outlived the kube-proxy load: portmap's, firewall's (bridge)
    // and each pod's ipMasq chain.
    let save = lab.iptables_save(false).expect("iptables-nft-save");
    let chains: &[&str] = match mode {
        CniMode::Bridge => &[":CNI-HOSTPORT-DNAT", ":CNI-FORWARD", ":CNI-ADMIN"],
        _ => &[":CNI-HOSTPORT-DNAT"],
    };
    for c in chains {
        assert!(save.contains(c), "{c} missing:\n{save}");
    }
    // Beside kube-proxy's rules, in its mode's place.
    match lab.proxy_mode() {
        ProxyMode::Iptables | ProxyMode::Ipvs => assert!(save.contains("KUBE-SERVICES"), "{save}"),
        ProxyMode::Nftables => {
            let table = ok_stdout(&lab.node(&["nft", "list", "table", "ip", "kube-proxy"]));
            assert!(table.contains("chain services"), "{table}");
        }
    }
    for (i, p) in lab.pods().iter().enumerate() {
        assert!(lab.cni_result(i).is_some(), "{}", p.name);
        assert!(p.host_veth.starts_with("veth"), "{}", p.host_veth);
        let ip = p.ip.to_string();
        let masq = format!("-A POSTROUTING -s {ip}/32 ");
        assert!(save.contains(&masq), "{masq} missing:\n{save}");
        let route = ok_stdout(&lab.node(&["ip", "-4", "route", "get", &ip]));
        let via = match mode {
            CniMode::Ptp => p.host_veth.as_str(),
            _ => lab.bridge_name(),
        };
        assert!(route.contains(&format!("dev {via} ")), "{ip}: {route}");
        if mode == CniMode::Bridge {
            let l = ok_stdout(&lab.node(&["ip", "-d", "link", "show", "dev", &p.host_veth]));
            assert!(l.contains(&format!("master {}", lab.bridge_name())), "{l}");
            assert!(l.contains("hairpin on"), "{l}");
        }
    }
    let reply = lab
        .tcp_request(1, SocketAddrV4::new(NODE_IP, cni::HOST_PORT))
        .expect("hostPort request");
    assert_eq!(reply, lab.pods()[0].name, "hostPort {}", cni::HOST_PORT);
}

fn run(mode: CniMode, proxy: ProxyMode, prefix: &str) {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(mode) {
        return;
    }
    let mut lab = Lab::builder(prefix)
        .pods(6)
        .services(5)
        .endpoints_per_service(2)
        .proxy_mode(proxy)
        .cni(mode)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    check_wiring(&lab);
    let healthy = check_healthy(&lab);
    let ips: Vec<String> = lab.pods().iter().map(|p| p.ip.to_string()).collect();
    let (pods, services) = (lab.pods().len(), lab.services().len());

    // Service i has endpoints on pods 2i and 2i+1 (mod 6); service 3 is UDP.
    lab.fault_stale_udp_conntrack(3).unwrap();
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_endpoint_pod_deleted(4).unwrap();
    lab.fault_mtu_mismatch(1).unwrap();
    lab.fault_no_default_route(3).unwrap();
    if mode == CniMode::Bridge {
        lab.fault_hairpin_off(2).unwrap();
    }
    // Deleting pod 4 ran CNI DEL: host-local released its address, ipMasq its rule.
    let gone = lab.pods()[4].ip.to_string();
    let leases = lab.dir().join("cni/ipam").join(mode.network_name());
    assert!(!leases.join(&gone).exists(), "lease of {gone} kept");
    assert!(leases.join(lab.pods()[5].ip.to_string()).is_file());
    let save = lab.iptables_save(false).expect("iptables-nft-save");
    assert!(
        !save.contains(&format!("-A POSTROUTING -s {gone}/32 ")),
        "{save}"
    );
    // Pod 5 vanishes without CNI DEL: its address's ipMasq rule leaks.
    lab.fault_pod_gone_without_cni_del(5).unwrap();
    lab.fault_duplicate_cni_config().unwrap();
    dc::assert_faults_reported(&lab, mode.lower());
    let faults: Vec<String> = lab
        .faults()
        .iter()
        .map(|f| format!("{} {}", f.finding, f.kind))
        .collect();
    notice(&format!(
        "lab_cni {}: sampled {pods} pods wired by CNI ADD (host-local {}), {services} service ports, \
         conflist {}, hostPort {} → pod 0; healthy: {} findings, 0 warning/critical, {} files / {} lines \
         parsed, 0 unrecognised, every pod tied to its host veth and IP; faults {}/{} reported: {}",
        mode.lower(),
        ips.join(" "),
        mode.conflist_file(),
        cni::HOST_PORT,
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

#[test]
fn lab_cni_bridge_node() {
    run(CniMode::Bridge, ProxyMode::Iptables, "cni-bridge");
}

#[test]
fn lab_cni_ptp_node() {
    run(CniMode::Ptp, ProxyMode::Iptables, "cni-ptp");
}

#[test]
fn lab_cni_bridge_node_nftables_kube_proxy() {
    run(CniMode::Bridge, ProxyMode::Nftables, "cni-bridge-nft");
}

#[test]
fn lab_cni_ptp_node_nftables_kube_proxy() {
    run(CniMode::Ptp, ProxyMode::Nftables, "cni-ptp-nft");
}

/// Teardown removes every netns even when CNI DEL fails: with the node netns gone,
/// no plugin can run.
#[test]
fn lab_cni_teardown_survives_a_failed_del() {
    let Some(_env) = require_lab() else { return };
    if !dc::require_cni(CniMode::Bridge) {
        return;
    }
    let lab = Lab::builder("cni-del-fails")
        .pods(2)
        .services(1)
        .cluster_dns(false)
        .traffic(false)
        .cni(CniMode::Bridge)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    netns::del(lab.node_netns_name()).expect("delete the node netns");
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}

/// Calico's routed shape (`cali*` veths with proxy ARP, /32 routes, 169.254.1.1), built
/// by the lab: a healthy node has no alarm and is named Calico; the faults that apply
/// are found on their subject.
#[test]
fn lab_calico_routed_node() {
    let Some(_env) = require_lab() else { return };
    let lab = Lab::builder("cni-calico")
        .pods(6)
        .services(5)
        .endpoints_per_service(2)
        .cni(CniMode::CalicoRouted)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    for p in lab.pods() {
        assert!(
            p.host_veth.starts_with("cali") && p.host_veth.len() == 15,
            "{}",
            p.host_veth
        );
        let arp = ok_stdout(&lab.node(&[
            "sysctl",
            "-n",
            &format!("net.ipv4.conf.{}.proxy_arp", p.host_veth),
        ]));
        assert_eq!(arp.trim(), "1", "{}", p.host_veth);
    }
    let healthy = check_healthy(&lab);
    routed_faults_and_teardown(lab, fp, "calico (routed shape)", "", &healthy);
}

/// Cilium's shape without kube-proxy (`cilium_host`, `lxc*` veths with endpoint
/// routes, `CILIUM_*` chains, the agent's service listing from a `cilium-dbg` in the
/// host root), built by the lab: a healthy node has no alarm — in particular no
/// service is "without endpoints" for want of KUBE chains, and the pods' 1500 MTU
/// under a 1450 route MTU is Cilium's own tunnel setting — and is named Cilium; the
/// faults that apply are found on their subject.
#[test]
fn lab_cilium_node_without_kube_proxy() {
    let Some(_env) = require_lab() else { return };
    let lab = Lab::builder("cni-cilium")
        .pods(6)
        .services(5)
        .endpoints_per_service(2)
        .traffic(false)
        .cni(CniMode::CiliumShape)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    for p in lab.pods() {
        assert!(
            p.host_veth.starts_with("lxc") && p.host_veth.len() == 15,
            "{}",
            p.host_veth
        );
    }
    // The endpoint routes carry pod-to-pod traffic without BPF: pod 0 reaches pod 1's
    // listener.
    let (first, second) = (&lab.pods()[0], &lab.pods()[1]);
    let port = second.listen_ports[0];
    let reply = lab
        .tcp_request(0, SocketAddrV4::new(second.ip, port))
        .expect("pod 0 → pod 1");
    assert_eq!(reply, second.name, "{} → {}", first.name, second.name);
    let save = lab.iptables_save(false).expect("iptables-nft-save");
    assert!(
        save.contains(":CILIUM_FORWARD") && !save.contains("KUBE-"),
        "{save}"
    );
    let conflist = CniMode::CiliumShape.conflist_file();
    let healthy = dc::check_healthy(
        &lab,
        &Expected {
            what: "cilium",
            datapath: "CNI cilium, overlay vxlan cilium_vxlan (cilium), services by kube-proxy replacement (cilium), IPv4",
            conflist: Some(&conflist),
        },
    );
    routed_faults_and_teardown(
        lab,
        fp,
        "cilium (shape, no kube-proxy)",
        " from the agent's listing",
        &healthy,
    );
}

/// The faults that apply to a routed shape with no CNI nat rule (Calico, Cilium: no
/// hairpin, no leaked rule) injected and found; the figures printed; the lab torn
/// down without leaks.
fn routed_faults_and_teardown(
    mut lab: Lab,
    fp: netsnap_tests::lab::Footprint,
    what: &str,
    services_from: &str,
    healthy: &Healthy,
) {
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_endpoint_pod_deleted(4).unwrap();
    lab.fault_mtu_mismatch(1).unwrap();
    lab.fault_no_default_route(3).unwrap();
    lab.fault_duplicate_cni_config().unwrap();
    dc::assert_faults_reported(&lab, what);
    notice(&format!(
        "lab_cni {what}: sampled {} pods, {} service ports{services_from}; healthy: {} findings, 0 warning/critical, {} files / {} lines, 0 unrecognised; faults {}/{} reported",
        lab.pods().len(),
        lab.services().len(),
        healthy.findings,
        healthy.files,
        healthy.lines,
        lab.faults().len(),
        lab.faults().len()
    ));
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}
