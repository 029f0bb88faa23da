//! An inet host firewall in the firewalld / Calico shape (testdata/inet-filter.nft).

use super::*;

#[test]
fn inet_tables_serve_both_families_and_bridge_is_ignored() {
    let f = file(INET);
    let ev = NftEval::new(&f, 1);
    let names = |hook, v6| -> Vec<(String, String, i32)> {
        ev.hook_chains(hook, v6)
            .into_iter()
            .map(|c| (c.table, c.chain, c.priority))
            .collect()
    };
    let n = |t: &str, c: &str, p| (t.to_string(), c.to_string(), p);
    assert_eq!(names(Hook::Input, false), [n("inet hostfw", "input", 10)]);
    assert_eq!(
        names(Hook::Input, true),
        [n("ip6 v6only", "input", 0), n("inet hostfw", "input", 10)]
    );
    assert_eq!(
        names(Hook::Forward, false),
        [n("inet hostfw", "forward", 0)]
    );
    assert_eq!(
        names(Hook::Prerouting, false),
        [
            n("inet hostfw", "raw-pre", -300),
            n("inet hostfw", "mangle-pre", -145)
        ]
    );
}

#[test]
fn input_firewall_verdicts() {
    let f = file(INET);
    let ev = NftEval::new(&f, 0);
    let host = facts(&[
        ("eth0", &["192.168.1.5", "fd00::5"]),
        ("lo", &["127.0.0.1"]),
    ]);
    let input = |p: &Packet| one(run(&ev, Hook::Input, "inet hostfw/input", p, &host));
    let from = |src: &str, proto: Proto, port| {
        via(packet(proto, src, "192.168.1.5", port), Some("eth0"), None)
    };
    // ct state { established, related } accept
    let b = input(&with_ct(
        from("8.8.8.8", Proto::Tcp, 80),
        CtState::Established,
    ));
    assert_eq!(
        (b.outcome.clone(), whats(&b)),
        (HookOutcome::Accept, vec!["accept"])
    );
    let b = input(&with_ct(from("8.8.8.8", Proto::Icmp, 0), CtState::Related));
    assert_eq!(b.outcome, HookOutcome::Accept);
    // An anonymous set of ports, with a log statement.
    let b = input(&from("8.8.8.8", Proto::Tcp, 22));
    assert_eq!(whats(&b), [r#"log prefix "ssh-or-https "; accept"#]);
    // Nothing matches: the final reject.
    let b = input(&from("8.8.8.8", Proto::Tcp, 80));
    assert_eq!(b.outcome, reject("icmpx admin-prohibited"));
    // iifname @set
    let b = input(&via(tcp("8.8.8.8", "192.168.1.5", 22), Some("eth9"), None));
    assert_eq!(b.outcome, HookOutcome::Drop);
    // iif "lo"
    let b = input(&via(tcp("127.0.0.1", "127.0.0.1", 80), Some("lo"), None));
    assert_eq!(b.outcome, HookOutcome::Accept);
    // ct status dnat
    let mut p = from("8.8.8.8", Proto::Tcp, 80);
    p.ct_dnat = true;
    assert_eq!(input(&p).outcome, HookOutcome::Accept);
    // A new ping is an echo-request; the limit is not simulated and says so.
    let b = input(&from("8.8.8.8", Proto::Icmp, 0));
    assert_eq!(b.outcome, HookOutcome::Accept);
    assert!(
        whats(&b)[0].starts_with("limit (not simulated"),
        "{:?}",
        whats(&b)
    );
    // IPv6: `icmp type`, `ip saddr`, `udp dport` do not apply; the reject does.
    let p6 = via(icmp("fd00::9", "fd00::5"), Some("eth0"), None);
    assert_eq!(input(&p6).outcome, reject("icmpx admin-prohibited"));
}

#[test]
fn interval_and_concatenated_sets() {
    let f = file(INET);
    let ev = NftEval::new(&f, 0);
    let host = facts(&[("eth0", &["192.168.1.5"])]);
    let input = |p: Packet| {
        let p = via(p, Some("eth0"), None);
        one(run(&ev, Hook::Input, "inet hostfw/input", &p, &host))
    };
    // ip daddr . meta l4proto . th dport @allowed-svc (prefix . proto . port range)
    assert_eq!(
        input(tcp("8.8.8.8", "172.20.1.1", 8500)).outcome,
        HookOutcome::Accept
    );
    assert_eq!(
        input(tcp("8.8.8.8", "172.20.1.1", 9500)).outcome,
        reject("icmpx admin-prohibited")
    );
    assert_eq!(
        input(udp("8.8.8.8", "192.168.1.10", 514)).outcome,
        HookOutcome::Accept
    );
    assert_eq!(
        input(tcp("8.8.8.8", "192.168.1.10", 514)).outcome,
        reject("icmpx admin-prohibited")
    );
    // ip saddr @trusted-v4, a range element: jump trusted → reject with tcp reset.
    let b = input(tcp("192.168.100.5", "192.168.1.5", 23));
    assert_eq!(b.outcome, reject("tcp reset"));
    assert_eq!(whats(&b), ["jump trusted", "reject with tcp reset"]);
}

#[test]
fn jump_returns_and_continue_goes_on() {
    let f = file(INET);
    let ev = NftEval::new(&f, 0);
    let host = facts(&[("eth0", &["192.168.1.5"])]);
    let input = |port| {
        let p = via(tcp("10.1.2.3", "192.168.1.5", port), Some("eth0"), None);
        one(run(&ev, Hook::Input, "inet hostfw/input", &p, &host))
    };
    // `return` in trusted: back in input after the jump, on to the final reject.
    let b = input(2222);
    assert_eq!(
        whats(&b),
        [
            "jump trusted",
            "return",
            "reject with icmpx admin-prohibited"
        ]
    );
    // `continue`: the next rule of trusted accepts.
    let b = input(3333);
    assert_eq!(whats(&b), ["jump trusted", "continue", "accept"]);
    // The end of trusted returns too.
    let b = input(4444);
    assert_eq!(
        whats(&b),
        [
            "jump trusted",
            "counter",
            "reject with icmpx admin-prohibited"
        ]
    );
}

#[test]
fn goto_does_not_return_and_policy_drops() {
    let f = file(INET);
    let ev = NftEval::new(&f, 0);
    let host = facts(&[("eth0", &["192.168.1.5"])]);
    let dns = |src| {
        let p = via(udp(src, "192.168.1.5", 53), Some("eth0"), None);
        one(run(&ev, Hook::Input, "inet hostfw/input", &p, &host))
    };
    assert_eq!(dns("192.168.7.7").outcome, HookOutcome::Accept);
    // `return` from a chain entered by goto leaves the base chain: policy drop, not
    // the reject after the goto.
    let b = dns("172.30.1.1");
    assert_eq!(b.outcome, HookOutcome::Drop);
    assert_eq!(whats(&b), ["goto dns", "return", "policy drop"]);
    let last = b.steps.last().unwrap();
    assert_eq!(last.at, "nft inet hostfw/input");
    assert_eq!(last.evidence.as_ref().unwrap().line, Some(8));
    // The end of it too.
    assert_eq!(whats(&dns("172.16.0.1")), ["goto dns", "policy drop"]);
}

#[test]
fn marks_wildcards_and_forward_policy() {
    let f = file(INET);
    let ev = NftEval::new(&f, 0);
    let p = via(
        tcp("10.244.1.5", "10.0.0.9", 80),
        Some("cali12"),
        Some("vxlan.calico"),
    );
    let b = one(run(&ev, Hook::Prerouting, "mangle-pre", &p, &no_facts()));
    assert_eq!((b.packet.mark, b.packet.ct_mark), (0x10000, 0x10000));
    assert_eq!(
        whats(&b),
        [
            "meta mark set 0x10000; ct mark set 0x10000",
            "policy accept"
        ]
    );
    // The connection mark lets it through forward.
    let b = one(run(&ev, Hook::Forward, "forward", &b.packet, &no_facts()));
    assert_eq!(b.outcome, HookOutcome::Accept);
    // oifname "eth*" iifname "cali*"
    let p = via(
        tcp("10.244.1.5", "8.8.8.8", 443),
        Some("cali12"),
        Some("eth1"),
    );
    assert_eq!(
        one(run(&ev, Hook::Forward, "forward", &p, &no_facts())).outcome,
        HookOutcome::Accept
    );
    // Nothing matches: policy drop.
    let p = via(tcp("10.9.0.1", "8.8.8.8", 443), Some("eth0"), Some("eth1"));
    let b = one(run(&ev, Hook::Forward, "forward", &p, &no_facts()));
    assert_eq!(
        (b.outcome.clone(), whats(&b)),
        (HookOutcome::Drop, vec!["policy drop"])
    );
}

#[test]
fn what_is_not_evaluable_is_unknown_citing_the_rule() {
    let f = file(INET);
    let ev = NftEval::new(&f, 0);
    // meta skuid: not in the packet model.
    let p = via(tcp("10.9.0.1", "8.8.8.8", 443), Some("eth0"), Some("tun0"));
    let b = one(run(&ev, Hook::Forward, "forward", &p, &no_facts()));
    let HookOutcome::Unknown { reason } = &b.outcome else {
        panic!("{b:#?}")
    };
    assert!(
        reason.contains("meta skuid") && reason.contains("nft.json:38"),
        "{reason}"
    );
    let ev38 = b.steps.last().unwrap().evidence.as_ref().unwrap();
    assert_eq!(ev38.line, Some(38));
    assert!(
        ev38.excerpt.contains("oifname tun0 meta skuid 0 accept"),
        "{}",
        ev38.excerpt
    );
    // fib saddr . mark . iif oif missing (firewalld's rpfilter), for IPv6 only.
    let p6 = via(tcp("fd00::9", "fd00::5", 80), Some("eth0"), None);
    let b = one(run(&ev, Hook::Prerouting, "raw-pre", &p6, &no_facts()));
    assert!(is_unknown(&b) && b.steps[0].evidence.as_ref().unwrap().line == Some(12));
    let p4 = via(tcp("10.9.0.1", "192.168.1.5", 80), Some("eth0"), None);
    let b = one(run(&ev, Hook::Prerouting, "raw-pre", &p4, &no_facts()));
    assert_eq!(whats(&b), ["policy accept"]);
    // meta pkttype from the netns's broadcast address.
    let mut bc = facts(&[("eth0", &["192.168.1.5"])]);
    bc.broadcast = vec!["192.168.1.255".parse().unwrap()];
    let p = via(udp("192.168.1.9", "192.168.1.255", 137), Some("eth0"), None);
    let b = one(run(&ev, Hook::Prerouting, "raw-pre", &p, &bc));
    assert_eq!(whats(&b), ["counter; accept"]);
}
