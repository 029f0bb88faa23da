//! kube-proxy's nftables mode (testdata/kube-proxy.nft).

use super::*;

#[test]
fn kube_proxy_base_chains_by_hook_and_priority() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 3);
    assert_eq!(ev.label(), "nft");
    let names = |hook, v6| -> Vec<(String, i32, bool)> {
        ev.hook_chains(hook, v6)
            .into_iter()
            .map(|c| {
                assert_eq!((c.ruleset, c.table.as_str()), (3, "ip kube-proxy"));
                (c.chain, c.priority, c.nat)
            })
            .collect()
    };
    let n = |s: &str, p, nat| (s.to_string(), p, nat);
    assert_eq!(
        names(Hook::Prerouting, false),
        vec![n("nat-prerouting", -100, true)]
    );
    assert_eq!(
        names(Hook::Output, false),
        vec![
            n("filter-output", -110, false),
            n("nat-output", -100, true),
            n("filter-output-post-dnat", -90, false),
        ]
    );
    assert_eq!(
        names(Hook::Postrouting, false),
        vec![n("nat-postrouting", 100, true)]
    );
    // `table ip` sees no IPv6 packet.
    assert!(names(Hook::Prerouting, true).is_empty());
}

#[test]
fn cluster_ip_splits_into_three_endpoints() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let p = via(tcp("10.244.1.50", "10.96.10.10", 80), Some("cali1"), None);
    let out = run(&ev, Hook::Prerouting, "nat-prerouting", &p, &no_facts());
    let dsts: Vec<String> = out.iter().map(sock).collect();
    assert_eq!(
        dsts,
        ["10.244.1.11:8080", "10.244.1.12:8080", "10.244.2.13:8080"]
    );
    for b in &out {
        assert!((b.probability - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(b.outcome, HookOutcome::Accept);
        assert!(b.packet.ct_dnat && !b.packet.ct_snat);
        assert_eq!(b.packet.mark, 0, "a pod's own traffic is not marked");
        assert_eq!(b.packet.src, p.src);
    }
    let b = &out[1];
    assert_eq!(
        whats(b),
        [
            "jump services",
            "ip daddr . meta l4proto . th dport vmap @service-ips: 10.96.10.10 . tcp . 80 : goto service-ULMVA6XW-ns1/web/tcp/http",
            "numgen random mod 3 = 1, p 1/3; numgen random mod 3 vmap: 1 : goto endpoint-DDCFJZS2-ns1/web/tcp/http__10.244.1.12/8080",
            "dnat to 10.244.1.12:8080",
        ]
    );
    let ats: Vec<&str> = b.steps.iter().map(|s| s.at.as_str()).collect();
    assert_eq!(ats[0], "nft ip kube-proxy/nat-prerouting");
    assert_eq!(ats[1], "nft ip kube-proxy/services");
    assert_eq!(
        ats[3],
        "nft ip kube-proxy/endpoint-DDCFJZS2-ns1/web/tcp/http__10.244.1.12/8080"
    );
    // Evidence: the rule's index in the nftables array, its handle and its text.
    let ev3 = b.steps[3].evidence.as_ref().unwrap();
    assert_eq!((ev3.path.as_str(), ev3.line), (PATH, Some(59)));
    assert!(
        ev3.excerpt.contains("handle")
            && ev3
                .excerpt
                .ends_with(": meta l4proto tcp dnat to 10.244.1.12:8080"),
        "{}",
        ev3.excerpt
    );
}

#[test]
fn hairpin_and_outside_clients_are_marked_for_masquerade() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    // The endpoint talking to its own service: only the branch back to itself.
    let p = via(tcp("10.244.1.11", "10.96.10.10", 80), Some("cali1"), None);
    let out = run(&ev, Hook::Prerouting, "nat-prerouting", &p, &no_facts());
    let marks: Vec<u32> = out.iter().map(|b| b.packet.mark).collect();
    assert_eq!(marks, [0x4000, 0, 0]);
    assert_eq!(
        whats(&out[0])[3..],
        [
            "jump mark-for-masquerade",
            "meta mark set 0x4000",
            "dnat to 10.244.1.11:8080"
        ]
    );
    // From outside the pod network: marked by the service chain, whatever endpoint.
    let p = via(tcp("192.168.49.1", "10.96.10.10", 80), Some("eth0"), None);
    let out = run(&ev, Hook::Prerouting, "nat-prerouting", &p, &no_facts());
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|b| b.packet.mark == 0x4000));
    // jump returns: after mark-for-masquerade the service chain goes on to numgen.
    assert_eq!(
        whats(&out[2])[2..4],
        ["jump mark-for-masquerade", "meta mark set 0x4000"]
    );
}

#[test]
fn direct_numgen_dnat_map_splits_in_two() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let p = udp("10.244.1.50", "10.96.0.10", 53);
    let out = run(&ev, Hook::Output, "nat-output", &p, &no_facts());
    let got: Vec<(String, f64)> = out.iter().map(|b| (sock(b), b.probability)).collect();
    assert_eq!(
        got,
        [("10.244.0.2:53".into(), 0.5), ("10.244.0.3:53".into(), 0.5)]
    );
    assert_eq!(
        whats(&out[1]).last().copied(),
        Some("numgen random mod 2 = 1, p 1/2; dnat to 10.244.0.3:53")
    );
}

#[test]
fn node_port_needs_a_local_destination() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let p = via(
        tcp("192.168.49.1", "192.168.49.2", 30080),
        Some("eth0"),
        None,
    );
    let node = facts(&[("eth0", &["192.168.49.2"])]);
    let out = run(&ev, Hook::Prerouting, "nat-prerouting", &p, &node);
    assert_eq!(out.len(), 3);
    for b in &out {
        assert_eq!(b.packet.mark, 0x4000, "external traffic is masqueraded");
        assert!(b.packet.dport == 8080 && b.packet.ct_dnat);
    }
    assert!(whats(&out[0])[1].contains("vmap @service-nodeports: tcp . 30080 : goto external-"));
    // Not an address of this netns: no NodePort.
    let b = one(run(
        &ev,
        Hook::Prerouting,
        "nat-prerouting",
        &p,
        &no_facts(),
    ));
    assert_eq!(
        (b.outcome.clone(), b.packet.clone()),
        (HookOutcome::Accept, p)
    );
    assert_eq!(whats(&b), ["jump services", "policy accept"]);
}

#[test]
fn services_without_endpoints_are_rejected() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let p = tcp("10.0.0.5", "10.96.20.20", 80);
    let b = one(run(&ev, Hook::Output, "filter-output", &p, &no_facts()));
    assert_eq!(b.outcome, reject("icmp port-unreachable"));
    assert_eq!(
        whats(&b),
        [
            "jump service-endpoints-check",
            "ip daddr . meta l4proto . th dport vmap @no-endpoint-services: 10.96.20.20 . tcp . 80 : goto reject-chain",
            "reject with icmp port-unreachable",
        ]
    );
    // Only new connections are checked.
    let est = with_ct(p, CtState::Established);
    let b = one(run(&ev, Hook::Output, "filter-output", &est, &no_facts()));
    assert_eq!(b.outcome, HookOutcome::Accept);
    // A NodePort without endpoints, on the node's address.
    let node = facts(&[("eth0", &["192.168.49.2"])]);
    let p = via(
        tcp("192.168.49.1", "192.168.49.2", 30081),
        Some("eth0"),
        None,
    );
    let b = one(run(&ev, Hook::Input, "filter-input", &p, &node));
    assert_eq!(b.outcome, reject("icmp port-unreachable"));
}

#[test]
fn cluster_ips_check_rejects_and_drops() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let fwd = |dst: &str, port| via(tcp("10.244.1.50", dst, port), Some("cali1"), Some("eth0"));
    let b = one(run(
        &ev,
        Hook::Forward,
        "filter-forward",
        &fwd("10.96.10.10", 81),
        &no_facts(),
    ));
    assert_eq!(b.outcome, reject("icmp port-unreachable"));
    let b = one(run(
        &ev,
        Hook::Forward,
        "filter-forward",
        &fwd("10.96.99.99", 80),
        &no_facts(),
    ));
    assert_eq!(b.outcome, HookOutcome::Drop);
    assert_eq!(whats(&b).last().copied(), Some("drop"));
    // `ct state invalid drop` never matches a packet the engine makes.
    let est = with_ct(fwd("10.96.99.99", 80), CtState::Established);
    let b = one(run(&ev, Hook::Forward, "filter-forward", &est, &no_facts()));
    assert_eq!(
        (b.outcome.clone(), whats(&b)),
        (HookOutcome::Accept, vec!["policy accept"])
    );
}

#[test]
fn marked_packets_are_masqueraded() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let node = facts(&[("eth0", &["192.168.49.2"])]);
    let mut p = via(
        tcp("192.168.49.1", "10.244.1.11", 8080),
        Some("eth0"),
        Some("eth0"),
    );
    p.mark = 0x4000;
    let b = one(run(&ev, Hook::Postrouting, "nat-postrouting", &p, &node));
    assert_eq!(b.outcome, HookOutcome::Accept);
    assert_eq!(b.packet.src.to_string(), "192.168.49.2");
    assert_eq!((b.packet.mark, b.packet.ct_snat), (0, true));
    assert_eq!(
        whats(&b),
        [
            "jump masquerading",
            "meta mark set 0x0",
            "masquerade to 192.168.49.2:40000"
        ]
    );
    // Unmarked: `return` from masquerading, then the base chain's end.
    p.mark = 0;
    let b = one(run(&ev, Hook::Postrouting, "nat-postrouting", &p, &node));
    assert_eq!((b.outcome.clone(), &b.packet), (HookOutcome::Accept, &p));
    assert_eq!(whats(&b), ["jump masquerading", "return", "policy accept"]);
    // An interface the facts do not know: Unknown, citing the masquerade rule.
    p.mark = 0x4000;
    p.oif = Some("eth7".into());
    let b = one(run(&ev, Hook::Postrouting, "nat-postrouting", &p, &node));
    let HookOutcome::Unknown { reason } = &b.outcome else {
        panic!("{b:#?}")
    };
    assert!(
        reason.contains("eth7") && reason.contains("nft.json:42"),
        "{reason}"
    );
    let last = b.steps.last().unwrap();
    assert_eq!(last.evidence.as_ref().unwrap().line, Some(42));
}

#[test]
fn a_ping_misses_the_port_maps_on_the_protocol() {
    let f = file(KUBE);
    let ev = NftEval::new(&f, 0);
    let node = facts(&[("eth0", &["192.168.49.2"])]);
    for dst in ["10.96.10.10", "192.168.49.2"] {
        let p = via(icmp("192.168.49.1", dst), Some("eth0"), None);
        let b = one(run(&ev, Hook::Prerouting, "nat-prerouting", &p, &node));
        assert_eq!(
            (b.outcome.clone(), &b.packet),
            (HookOutcome::Accept, &p),
            "{dst}"
        );
    }
}
