//! Each fault injector produces its fault, asserted with ip, iptables-save,
//! conntrack, sysctls and the pods' own view. (The conntrack-table-full
//! injector is asserted in lab_rootns.rs, the one test that pays for it.)

use netsnap_tests::lab::{assert_no_leaks, ok_json, ok_stdout, require_lab, Lab, Protocol};
use std::net::SocketAddrV4;

fn node_link(lab: &Lab, dev: &str) -> serde_json::Value {
    ok_json(&lab.node(&["ip", "-j", "-d", "link", "show", "dev", dev]))[0].clone()
}

fn findings(lab: &Lab) -> Vec<String> {
    lab.faults().iter().map(|f| f.finding.clone()).collect()
}

#[test]
fn link_faults() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("links")
        .pods(8)
        .services(2)
        .traffic(false)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    let veth = |lab: &Lab, i: usize| lab.pods()[i].host_veth.clone();

    lab.fault_veth_detached(1).unwrap();
    let l = node_link(&lab, &veth(&lab, 1));
    assert!(l.get("master").is_none(), "{l}");
    assert_eq!(node_link(&lab, &veth(&lab, 2))["master"], "cni0");

    lab.fault_link_down(2).unwrap();
    let l = node_link(&lab, &veth(&lab, 2));
    assert_eq!(l["operstate"], "DOWN");
    assert!(!l["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let pod_eth0 = ok_json(&lab.pod_exec(2, &["ip", "-j", "link", "show", "dev", "eth0"]));
    // The pod side loses carrier.
    assert!(
        pod_eth0[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "NO-CARRIER"),
        "{pod_eth0}"
    );

    lab.fault_hairpin_off(3).unwrap();
    let l = node_link(&lab, &veth(&lab, 3));
    assert_eq!(l["linkinfo"]["info_slave_data"]["hairpin"], false);
    assert_eq!(
        node_link(&lab, &veth(&lab, 4))["linkinfo"]["info_slave_data"]["hairpin"],
        true
    );
    let br = node_link(&lab, "cni0");
    assert!(!br["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "PROMISC"));

    lab.fault_mtu_mismatch(4).unwrap();
    let pod_eth0 = ok_json(&lab.pod_exec(4, &["ip", "-j", "link", "show", "dev", "eth0"]));
    assert_eq!(pod_eth0[0]["mtu"], 9000);
    assert_eq!(node_link(&lab, &veth(&lab, 4))["mtu"], 1500);

    let ip5 = lab.pods()[5].ip;
    lab.fault_duplicate_pod_ip(5, 6).unwrap();
    for i in [5, 6] {
        let a = ok_stdout(&lab.pod_exec(i, &["ip", "-4", "-br", "addr", "show", "dev", "eth0"]));
        assert!(a.contains(&format!("{ip5}/24")), "pod {i}: {a}");
    }
    assert_eq!(lab.pods()[6].ip, ip5);

    lab.fault_no_default_route(7).unwrap();
    assert_eq!(
        ok_stdout(&lab.pod_exec(7, &["ip", "route", "show", "default"])).trim(),
        ""
    );
    assert!(lab.ping(7, lab.gateway_ip()).is_ok(), "on-link still works");

    lab.fault_rp_filter_strict(0).unwrap();
    let key = format!("/proc/sys/net/ipv4/conf/{}/rp_filter", veth(&lab, 0));
    assert_eq!(ok_stdout(&lab.node(&["cat", &key])).trim(), "1");

    assert_eq!(
        findings(&lab),
        ["LNK003", "LNK004", "LNK005", "LNK006", "LNK007", "LNK008", "NF006"]
    );
    lab.teardown().unwrap();
    assert_no_leaks(&fp);
}

#[test]
fn service_faults() {
    let Some(_env) = require_lab() else { return };
    // Service i has endpoints on pods 2i and 2i+1 (mod 8); service 3 is UDP.
    let mut lab = Lab::builder("services")
        .pods(8)
        .services(8)
        .endpoints_per_service(2)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    assert_eq!(lab.services()[3].protocol, Protocol::Udp);

    // SVC001: no endpoints -> filter REJECT, no KUBE-SVC chain, connection refused.
    let s0 = lab.services()[0].clone();
    lab.fault_service_without_endpoints(0).unwrap();
    let save = lab.iptables_save(false).unwrap();
    let reject = format!(
        "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{} has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable",
        s0.cluster_ip,
        s0.port_name_string()
    );
    assert!(save.contains(&reject), "missing {reject}");
    assert!(!save.contains(&s0.svc_chain));
    let err = lab.service_request(7, 0).expect_err("no endpoints");
    assert!(format!("{err:#}").contains("refused"), "{err:#}");

    // DNS003: kube-dns without endpoints.
    lab.fault_dns_without_endpoints().unwrap();
    let save = lab.iptables_save(false).unwrap();
    assert!(save.contains("\"kube-system/kube-dns:dns has no endpoints\""));
    assert!(save.contains("\"kube-system/kube-dns:dns-tcp has no endpoints\""));

    // SVC002: endpoint pod deleted; rules still DNAT to it.
    let p2 = lab.pods()[2].clone();
    lab.fault_endpoint_pod_deleted(2).unwrap();
    assert!(!p2.netns_path.exists());
    assert!(!lab
        .node(&["ip", "link", "show", "dev", &p2.host_veth])
        .status
        .success());
    assert!(!std::path::Path::new(&format!("/proc/{}", p2.pid)).exists());
    assert!(!p2.log_dir.exists());
    assert!(lab.pods()[2].deleted);
    let save = lab.iptables_save(false).unwrap();
    assert!(save.contains(&format!("--to-destination {}:20001", p2.ip)));

    // SVC003: nothing listens on the target port of service 2 (pods 4, 5).
    lab.fault_target_port_not_listening(2).unwrap();
    for i in [4, 5] {
        let to = SocketAddrV4::new(lab.pods()[i].ip, 20002);
        let err = lab.tcp_request(0, to).expect_err("closed port");
        assert!(format!("{err:#}").contains("refused"), "{err:#}");
        assert!(!lab.pods()[i].listen_ports.contains(&20002));
    }
    assert!(lab.service_request(0, 2).is_err());

    // CT005: stale UDP entry to an endpoint no longer in the rules.
    let s3 = lab.services()[3].clone();
    lab.fault_stale_udp_conntrack(3).unwrap();
    let removed: Vec<_> = s3
        .endpoints
        .iter()
        .filter(|e| !lab.services()[3].endpoints.contains(e))
        .collect();
    assert_eq!(removed.len(), 1);
    let gone = removed[0];
    let ct = lab.conntrack_list().unwrap();
    let stale = ct.lines().find(|l| {
        l.starts_with("udp")
            && l.contains(&format!("dst={} ", s3.cluster_ip))
            && l.contains(&format!("src={} ", gone.ip()))
    });
    let stale = stale.unwrap_or_else(|| panic!("no stale entry to {gone}:\n{ct}"));
    let timeout: u32 = stale.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(timeout > 3000, "{stale}");
    let save = lab.iptables_save(false).unwrap();
    assert!(!save.contains(&format!("--to-destination {gone}")));

    // LNK001: pod gone, its netns only held by the lab, host veth still there
    // with a peer in a netns nobody can name.
    let p7 = lab.pods()[7].clone();
    lab.fault_dangling_host_veth(7).unwrap();
    assert!(!p7.netns_path.exists());
    assert!(!std::path::Path::new(&format!("/proc/{}", p7.pid)).exists());
    let l = node_link(&lab, &p7.host_veth);
    assert!(l.get("link_netnsid").is_some(), "{l}");
    assert_eq!(l["master"], "cni0");

    assert_eq!(
        findings(&lab),
        ["SVC001", "DNS003", "SVC002", "SVC003", "CT005", "LNK001"]
    );
    let state = std::fs::read_to_string(lab.dir().join("lab.json")).unwrap();
    assert!(state.contains("\"dangling_host_veth\""));
    lab.teardown().unwrap();
    assert_no_leaks(&fp);
}

#[test]
fn netfilter_and_sysctl_faults() {
    let Some(_env) = require_lab() else { return };
    let root_brnf =
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap();
    let root_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let mut lab = Lab::builder("netfilter")
        .pods(3)
        .services(2)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    let sysctl = |lab: &Lab, k: &str| {
        ok_stdout(&lab.node(&["cat", &format!("/proc/sys/{k}")]))
            .trim()
            .to_string()
    };

    lab.fault_bridge_nf_call_iptables_off().unwrap();
    assert_eq!(sysctl(&lab, "net/bridge/bridge-nf-call-iptables"), "0");
    lab.fault_ip_forward_off().unwrap();
    assert_eq!(sysctl(&lab, "net/ipv4/ip_forward"), "0");
    // Per-netns: the root netns (this process) is untouched.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap(),
        root_brnf
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        root_fwd
    );

    assert!(!lab.iptables_save(true).unwrap().contains("KUBE-"));
    lab.fault_kube_rules_in_both_backends().unwrap();
    let legacy = lab.iptables_save(true).unwrap();
    let nft = lab.iptables_save(false).unwrap();
    for svc in lab.services() {
        assert!(legacy.contains(&format!("-j {}", svc.svc_chain)));
        assert!(nft.contains(&format!("-j {}", svc.svc_chain)));
    }

    lab.fault_forward_policy_drop().unwrap();
    let nft = lab.iptables_save(false).unwrap();
    assert!(nft.contains(":FORWARD DROP"));
    assert!(!nft.contains(
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
    ));

    lab.fault_masquerade_missing().unwrap();
    let nft = lab.iptables_save(false).unwrap();
    assert!(!nft.contains("-j KUBE-POSTROUTING"));
    assert!(
        nft.contains("-j MASQUERADE --random-fully"),
        "the chain itself stays"
    );

    assert_eq!(
        findings(&lab),
        ["NF002", "NF003", "NF001", "NF004", "NF005"]
    );
    drop(lab);
    assert_no_leaks(&fp);
}

#[test]
fn dns_faults() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("dns")
        .pods(4)
        .services(1)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    let resolv = |lab: &Lab, i: usize| ok_stdout(&lab.pod_exec(i, &["cat", "/etc/resolv.conf"]));
    assert!(resolv(&lab, 0).contains("nameserver 10.96.0.10"));

    lab.fault_resolv_wrong_nameserver(0).unwrap();
    let r = resolv(&lab, 0);
    assert!(
        r.contains("nameserver 198.51.100.53") && !r.contains("10.96.0.10"),
        "{r}"
    );
    assert_eq!(r, lab.pods()[0].resolv_conf);

    lab.fault_resolv_too_many_search(1).unwrap();
    let r = resolv(&lab, 1);
    let search = r.lines().find(|l| l.starts_with("search ")).unwrap();
    assert!(search.split_whitespace().count() - 1 > 6, "{search}");

    lab.fault_resolv_too_many_nameservers(2).unwrap();
    let r = resolv(&lab, 2);
    assert_eq!(
        r.lines().filter(|l| l.starts_with("nameserver ")).count(),
        4,
        "{r}"
    );

    // Pods not touched keep theirs; the host's own file is never touched.
    assert!(resolv(&lab, 3).contains("nameserver 10.96.0.10"));
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(!host.contains("198.51.100."));

    lab.fault_node_resolv_local_stub().unwrap();
    let node = std::fs::read_to_string(lab.host_root().join("etc/resolv.conf")).unwrap();
    assert!(node.contains("nameserver 127.0.0.53"));

    assert_eq!(findings(&lab), ["DNS001", "DNS002", "DNS005", "DNS004"]);
    drop(lab);
    assert_no_leaks(&fp);
}
