//! The lab is what it claims: a node with a bridge, pods that reach each
//! other through it, pods discoverable like real ones, service VIPs that
//! answer from their endpoints with DNAT entries in the node's conntrack,
//! kube-proxy's rule shapes in both proxy modes, and nothing left behind.

use netsnap_tests::lab::{
    assert_no_leaks, leaks, ok_json, ok_stdout, require_lab, Lab, Protocol, ProxyMode,
};

#[test]
fn iptables_lab_is_a_working_node() {
    let Some(_env) = require_lab() else { return };
    let lab = Lab::builder("basic")
        .pods(6)
        .services(8)
        .endpoints_per_service(2)
        .bridge_name("cni0")
        .proxy_mode(ProxyMode::Iptables)
        .cluster_dns(true)
        .traffic(true)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    assert_eq!(lab.pods().len(), 7, "6 pods + coredns");
    assert_eq!(
        lab.services().len(),
        10,
        "8 service ports + kube-dns udp/tcp"
    );

    // Node: bridge is the pod gateway, uplink goes to the lab's upstream netns.
    let links = ok_json(&lab.node(&["ip", "-j", "-d", "link", "show"]));
    let links = links.as_array().unwrap();
    let by_name = |n: &str| links.iter().find(|l| l["ifname"] == n).cloned();
    let br = by_name("cni0").expect("bridge cni0");
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    let addrs = ok_stdout(&lab.node(&["ip", "-4", "-br", "addr", "show", "dev", "cni0"]));
    assert!(
        addrs.contains(&format!("{}/24", lab.gateway_ip())),
        "{addrs}"
    );
    let route = ok_stdout(&lab.node(&["ip", "route", "show", "default"]));
    assert!(route.contains("via 198.51.100.1 dev eth0"), "{route}");
    assert_eq!(
        ok_stdout(&lab.node(&["cat", "/proc/sys/net/ipv4/ip_forward"])).trim(),
        "1"
    );

    for (i, p) in lab.pods().iter().enumerate() {
        // Host veth named like a CNI names it, on the bridge, hairpin on.
        assert!(
            p.host_veth.len() == 12
                && p.host_veth.starts_with("veth")
                && p.host_veth[4..].chars().all(|c| c.is_ascii_hexdigit()),
            "{}",
            p.host_veth
        );
        let l = by_name(&p.host_veth).expect("host veth in node netns");
        assert_eq!(l["master"], "cni0");
        assert_eq!(l["linkinfo"]["info_slave_data"]["hairpin"], true);
        // Pod side: eth0 with the pod IP and a default route via the bridge.
        let a = ok_stdout(&lab.pod_exec(i, &["ip", "-4", "-br", "addr", "show", "dev", "eth0"]));
        assert!(a.contains(&format!("{}/24", p.ip)), "{a}");
        let r = ok_stdout(&lab.pod_exec(i, &["ip", "route", "show", "default"]));
        assert!(r.contains(&format!("via {}", lab.gateway_ip())), "{r}");

        // Identity discoverable as on a real node.
        let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid)).unwrap();
        let pod_slice = format!("kubepods-besteffort-pod{}.slice", p.uid.replace('-', "_"));
        assert!(cg.contains(&pod_slice), "{cg}");
        assert!(cg.contains(&p.cgroup_path), "{cg}");
        assert!(p.log_dir.is_dir());
        assert_eq!(
            p.log_dir.file_name().unwrap().to_string_lossy(),
            format!("{}_{}_{}", p.namespace, p.name, p.uid)
        );
        assert!(p.log_dir.starts_with(lab.host_root().join("var/log/pods")));
        assert_eq!(ok_stdout(&lab.pod_exec(i, &["hostname"])).trim(), p.name);
        let resolv =
            std::fs::read_to_string(format!("/proc/{}/root/etc/resolv.conf", p.pid)).unwrap();
        assert_eq!(resolv, p.resolv_conf);
        let pod_ns = std::fs::read_link(format!("/proc/{}/ns/net", p.pid)).unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p.netns_path).unwrap());
        assert_eq!(pod_ns.to_string_lossy(), format!("net:[{ino}]"));
    }
    let web = &lab.pods()[0];
    assert!(web.resolv_conf.contains("nameserver 10.96.0.10"));
    let dns = lab.dns_pod().expect("coredns pod");
    assert!(
        dns.resolv_conf.contains("nameserver 198.51.100.53"),
        "dnsPolicy Default"
    );

    // Host root for the collector.
    let hr = lab.host_root();
    assert!(hr.join("etc/resolv.conf").is_file());
    assert!(hr.join("usr/sbin/iptables-save").exists());
    assert!(hr.join("usr/sbin/conntrack").exists());
    assert!(!hr.join("usr/bin/crictl").exists() && !hr.join("usr/sbin/crictl").exists());

    // Pods reach each other through the bridge: the bridge learned each pod's
    // MAC on that pod's own port.
    for (a, b) in [(0, 1), (1, 2), (5, 0)] {
        lab.ping(a, lab.pods()[b].ip).expect("pod to pod ping");
    }
    let fdb = ok_stdout(&lab.node(&["bridge", "fdb", "show", "br", "cni0"]));
    for i in [0, 1, 2, 5] {
        // Not /sys: nsenter keeps the host's sysfs, which shows the root netns.
        let l = ok_json(&lab.pod_exec(i, &["ip", "-j", "link", "show", "dev", "eth0"]));
        let mac = l[0]["address"].as_str().unwrap().to_string();
        let line = format!("{mac} dev {}", lab.pods()[i].host_veth);
        assert!(fdb.contains(&line), "fdb lacks {line}:\n{fdb}");
    }

    // Each VIP answers from one of its endpoints.
    for (si, s) in lab.services().iter().enumerate().take(8) {
        let from = (si + 3) % 6;
        let who = lab
            .service_request(from, si)
            .expect("request through the VIP");
        let eps: Vec<&str> = s
            .endpoints
            .iter()
            .map(|e| {
                lab.pods()
                    .iter()
                    .find(|p| p.ip == *e.ip())
                    .unwrap()
                    .name
                    .as_str()
            })
            .collect();
        assert!(
            eps.contains(&who.as_str()),
            "{} answered by {who}, endpoints {eps:?}",
            s.name
        );
    }
    // kube-dns: the stub echoes both over UDP and TCP.
    for si in lab.dns_service_indices() {
        lab.service_request(0, si).expect("DNS request");
    }

    // The node's conntrack holds the DNATs: orig dst = VIP, reply src = endpoint.
    let ct = lab.conntrack_list().unwrap();
    for s in lab.services() {
        let dnat = ct.lines().any(|l| {
            l.contains(&format!("dst={} ", s.cluster_ip))
                && s.endpoints
                    .iter()
                    .any(|e| l.contains(&format!("src={} dst=", e.ip())))
        });
        assert!(dnat, "no DNAT entry for {}:\n{ct}", s.port_name_string());
    }

    // kube-proxy's shape, as iptables-save prints it.
    let save = lab.iptables_save(false).unwrap();
    for s in lab.services() {
        let spn = s.port_name_string();
        let p = s.protocol.lower();
        let jump = format!(
            "-A KUBE-SERVICES -d {}/32 -p {p} -m comment --comment \"{spn} cluster IP\" -m {p} --dport {} -j {}",
            s.cluster_ip, s.port, s.svc_chain
        );
        assert!(save.contains(&jump), "missing: {jump}");
        for (ep, sep) in s.endpoints.iter().zip(&s.sep_chains) {
            assert!(save.contains(&format!("--comment \"{spn} -> {ep}\"")));
            assert!(save.contains(&format!("-A {sep} -p {p} -m comment --comment \"{spn}\" -m {p} -j DNAT --to-destination {ep}")));
            assert!(save.contains(&format!(
                "-A {sep} -s {}/32 -m comment --comment \"{spn}\" -j KUBE-MARK-MASQ",
                ep.ip()
            )));
        }
    }
    let s0 = &lab.services()[0];
    assert!(save.contains(&format!(
        "-A {} -m comment --comment \"{} -> {}\" -m statistic --mode random --probability 0.50000000000 -j {}",
        s0.svc_chain,
        s0.port_name_string(),
        s0.endpoints[0],
        s0.sep_chains[0]
    )));
    assert!(save.contains("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"));
    assert!(save.contains("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"));
    assert!(save.contains(
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"
    ));
    assert!(save.contains(":KUBE-NODEPORTS - [0:0]"));
    assert!(save.contains(
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
    ));
    assert!(!save.contains("has no endpoints"));
    assert!(lab.services().iter().any(|s| s.protocol == Protocol::Udp));

    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}

#[test]
fn nftables_lab_programs_table_ip_kube_proxy() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("nft")
        .pods(4)
        .services(4)
        .endpoints_per_service(2)
        .bridge_name("br-pods")
        .proxy_mode(ProxyMode::Nftables)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    let table = ok_stdout(&lab.node(&["nft", "list", "table", "ip", "kube-proxy"]));
    for m in [
        "map service-ips",
        "map no-endpoint-services",
        "chain reject-chain",
        "masquerade fully-random",
    ] {
        assert!(table.contains(m), "missing {m}");
    }
    for s in lab.services() {
        assert!(table.contains(&format!("chain {} {{", s.nft_service_chain)));
        assert!(table.contains(&format!(
            "{} . {} . {} : goto {}",
            s.cluster_ip,
            s.protocol.lower(),
            s.port,
            s.nft_service_chain
        )));
        for (ep, c) in s.endpoints.iter().zip(&s.nft_endpoint_chains) {
            assert!(table.contains(&format!("chain {c} {{")));
            assert!(table.contains(&format!("dnat to {ep}")));
        }
    }
    // No kube-proxy iptables rules in this mode.
    assert!(!lab.iptables_save(false).unwrap().contains("KUBE-SVC-"));
    let who = lab.service_request(3, 0).expect("VIP answers");
    assert!(who.starts_with("web-"), "{who}");
    let ct = lab.conntrack_list().unwrap();
    assert!(
        ct.contains(&format!("dst={} ", lab.services()[0].cluster_ip)),
        "{ct}"
    );

    // No endpoints: the VIP moves from service-ips to no-endpoint-services and rejects.
    lab.fault_service_without_endpoints(1).unwrap();
    let s1 = lab.services()[1].clone();
    let table = ok_stdout(&lab.node(&["nft", "list", "table", "ip", "kube-proxy"]));
    let line = format!(
        "{} . tcp . 80 comment \"{}\" : goto reject-chain",
        s1.cluster_ip,
        s1.port_name_string()
    );
    assert!(table.contains(&line), "missing {line}:\n{table}");
    assert!(!table.contains(&s1.nft_service_chain));
    let err = lab.service_request(3, 1).expect_err("rejected");
    assert!(format!("{err:#}").contains("refused"), "{err:#}");

    // Stale iptables rules in both backends next to the nft table.
    lab.fault_kube_rules_in_both_backends().unwrap();
    assert!(lab.iptables_save(false).unwrap().contains("-j KUBE-SVC-"));
    assert!(lab.iptables_save(true).unwrap().contains("-j KUBE-SVC-"));

    drop(lab);
    assert_no_leaks(&fp);
}

#[test]
fn panic_inside_a_test_still_tears_down() {
    let Some(_env) = require_lab() else { return };
    let lab = Lab::builder("panic")
        .pods(2)
        .services(1)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    assert!(
        leaks(&fp).iter().any(|l| l.starts_with("netns ")),
        "lab should exist now"
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _lab = lab;
        panic!("test failure inside the lab");
    }));
    assert!(r.is_err());
    assert_no_leaks(&fp);
}

#[test]
fn a_failed_build_leaves_nothing() {
    let Some(_env) = require_lab() else { return };
    // Passes validation, but `ip link add` rejects the name mid-build.
    let err = Lab::builder("buildfail")
        .pods(2)
        .services(1)
        .bridge_name("bad/name")
        .build()
        .err()
        .expect("build must fail");
    assert!(format!("{err:#}").contains("bad/name"), "{err:#}");
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .chain(std::fs::read_dir("/run").unwrap().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("nsl-buildfail-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
