//! Chain traversal, matches and targets one by one.

use super::*;

fn filter(rules: &str) -> String {
    format!("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n{rules}COMMIT\n")
}

#[test]
fn label_and_hook_chains_by_priority() {
    let text = "*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n*nat\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n*raw\n:PREROUTING ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n*mangle\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n*security\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n";
    let f = file(text);
    let rs = IptablesRuleset::new(&f, None, 3);
    assert_eq!(rs.label(), "iptables-nft");
    let got = |hook| {
        rs.hook_chains(hook, false)
            .into_iter()
            .map(|c| (c.table, c.priority, c.nat, c.ruleset, c.chain))
            .collect::<Vec<_>>()
    };
    let c = |t: &str, p, nat, ch: &str| (t.to_string(), p, nat, 3, ch.to_string());
    assert_eq!(
        got(Hook::Output),
        [
            c("raw", -300, false, "OUTPUT"),
            c("mangle", -150, false, "OUTPUT"),
            c("nat", -100, true, "OUTPUT"),
            c("filter", 0, false, "OUTPUT"),
            c("security", 50, false, "OUTPUT"),
        ]
    );
    assert_eq!(
        got(Hook::Input),
        [
            c("mangle", -150, false, "INPUT"),
            c("filter", 0, false, "INPUT"),
            c("security", 50, false, "INPUT"),
            c("nat", 100, true, "INPUT"),
        ]
    );
    assert_eq!(
        got(Hook::Postrouting),
        [
            c("mangle", -150, false, "POSTROUTING"),
            c("nat", 100, true, "POSTROUTING")
        ]
    );
    assert!(rs.hook_chains(Hook::Output, true).is_empty());
    let mut f6 = file(text);
    f6.ipv6 = true;
    f6.backend = Proxier::IptablesLegacy;
    let rs6 = IptablesRuleset::new(&f6, None, 0);
    assert_eq!(rs6.label(), "ip6tables-legacy");
    assert!(rs6.hook_chains(Hook::Output, false).is_empty());
    assert_eq!(rs6.hook_chains(Hook::Forward, true).len(), 3);
}

#[test]
fn goto_returns_to_the_callers_caller() {
    let text = filter(
        "-A INPUT -j A\n-A INPUT -j DROP\n-A A -g B\n-A A -j ACCEPT\n-A B -s 1.1.1.1/32 -j ACCEPT\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(&rs, "filter", "INPUT", &tcp("2.2.2.2", 1, "10.0.0.10", 22));
    assert_eq!(b.outcome, HookOutcome::Drop);
    assert_eq!(whats(&b.steps), ["jump A", "goto B", "DROP"]);
    assert_eq!(b.steps[2].at, "iptables-nft filter/INPUT");
    // With -j instead of -g, the end of B returns into A, whose ACCEPT follows.
    let f = file(&text.replace("-g B", "-j B"));
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(&rs, "filter", "INPUT", &tcp("2.2.2.2", 1, "10.0.0.10", 22));
    assert_eq!(b.outcome, HookOutcome::Accept);
    assert_eq!(whats(&b.steps), ["jump A", "jump B", "ACCEPT"]);
    // A goto from the base chain: the end of B is the end of INPUT (policy).
    let f = file(&filter("-A INPUT -g B\n-A INPUT -j DROP\n"));
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(&rs, "filter", "INPUT", &tcp("2.2.2.2", 1, "10.0.0.10", 22));
    assert_eq!(whats(&b.steps), ["goto B", "policy ACCEPT"]);
    assert_eq!(b.outcome, HookOutcome::Accept);
}

#[test]
fn return_pops_and_policy_ends_the_base_chain() {
    let text = filter(
        "-A FORWARD -j A\n-A FORWARD -s 2.2.2.2/32 -j RETURN\n-A FORWARD -j ACCEPT\n-A A -p tcp -j RETURN\n-A A -j ACCEPT\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0);
    // tcp: A returns, then FORWARD's RETURN (a built-in chain) means its policy DROP.
    let b = one(
        &rs,
        "filter",
        "FORWARD",
        &tcp("2.2.2.2", 1, "10.0.0.10", 22),
    );
    assert_eq!(b.outcome, HookOutcome::Drop);
    assert_eq!(
        whats(&b.steps),
        [
            "jump A",
            "RETURN to FORWARD",
            "RETURN from the base chain: its policy",
            "policy DROP"
        ]
    );
    let ev = b.steps[3].evidence.as_ref().unwrap();
    assert_eq!(
        (ev.line, ev.excerpt.as_str()),
        (Some(3), ":FORWARD DROP [0:0]")
    );
    // udp: A's ACCEPT.
    let b = one(
        &rs,
        "filter",
        "FORWARD",
        &udp("2.2.2.2", 1, "10.0.0.10", 53),
    );
    assert_eq!(whats(&b.steps), ["jump A", "ACCEPT"]);
    // Another source: FORWARD's ACCEPT after A returned.
    let b = one(
        &rs,
        "filter",
        "FORWARD",
        &tcp("3.3.3.3", 1, "10.0.0.10", 22),
    );
    assert_eq!(whats(&b.steps), ["jump A", "RETURN to FORWARD", "ACCEPT"]);
}

#[test]
fn interfaces_wildcards_and_negation() {
    let text = filter(
        "-A FORWARD -i eth+ -o cni0 -j ACCEPT\n-A FORWARD ! -i cni+ -j REJECT --reject-with icmp-host-prohibited\n-A FORWARD -i cni0 ! -o cni0 -j ACCEPT\n-A OUTPUT -i eth0 -j DROP\n-A OUTPUT ! -i eth0 -o lo -j DROP\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let fwd = |i, o| {
        let p = via(tcp("1.1.1.1", 1, "10.244.1.5", 80), Some(i), Some(o));
        one(&rs, "filter", "FORWARD", &p).outcome
    };
    assert_eq!(fwd("eth1", "cni0"), HookOutcome::Accept);
    assert_eq!(
        fwd("ens3", "cni0"),
        HookOutcome::Reject {
            with: "icmp-host-prohibited".into()
        }
    );
    assert_eq!(fwd("cni0", "eth0"), HookOutcome::Accept);
    assert_eq!(fwd("cni0", "cni0"), HookOutcome::Drop);
    // A locally generated packet has no input interface: `-i eth0` fails, `! -i eth0` holds.
    let p = via(tcp("127.0.0.1", 1, "127.0.0.1", 80), None, Some("lo"));
    assert_eq!(one(&rs, "filter", "OUTPUT", &p).outcome, HookOutcome::Drop);
}

#[test]
fn mark_and_connmark_arithmetic() {
    let text = "*mangle\n:PREROUTING ACCEPT [0:0]\n\
-A PREROUTING -j MARK --set-xmark 0x4000/0x4000\n\
-A PREROUTING -j MARK --set-mark 0x2/0xf\n\
-A PREROUTING -j MARK --or-mark 0x100\n\
-A PREROUTING -j MARK --and-mark 0xfff0ffff\n\
-A PREROUTING -j MARK --xor-mark 0x1\n\
-A PREROUTING -j CONNMARK --save-mark --nfmask 0xff00 --ctmask 0xff00\n\
-A PREROUTING -j CONNMARK --set-xmark 0x1/0xf\n\
-A PREROUTING -m connmark --mark 0x4101/0xffff -j MARK --set-xmark 0x0/0xffffffff\n\
-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff\n\
-A PREROUTING -m mark --mark 0x1 -j CONNMARK --or-mark 0x1000000\n\
-A PREROUTING -m mark ! --mark 0x1 -j DROP\n\
COMMIT\n";
    let f = file(text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let mut p = tcp("1.1.1.1", 1, "10.0.0.10", 22);
    p.mark = 0x10001;
    p.ct_mark = 0xff0000;
    let b = one(&rs, "mangle", "PREROUTING", &p);
    assert_eq!(b.outcome, HookOutcome::Accept, "{b:#?}");
    assert_eq!(
        whats(&b.steps),
        [
            "MARK 0x10001 → 0x14001",
            // (0x14001 & !0xf) | 0x2
            "MARK 0x14001 → 0x14002",
            "MARK 0x14002 → 0x14102",
            "MARK 0x14102 → 0x4102",
            "MARK 0x4102 → 0x4103",
            // ct = (ct & !0xff00) ^ (mark & 0xff00)
            "CONNMARK: ct mark 0xff0000 → 0xff4100, mark 0x4103 → 0x4103",
            "CONNMARK: ct mark 0xff4100 → 0xff4101, mark 0x4103 → 0x4103",
            "MARK 0x4103 → 0x0",
            // mark = (mark & !0xff) ^ (ct & 0xff)
            "CONNMARK: ct mark 0xff4101 → 0xff4101, mark 0x0 → 0x1",
            "CONNMARK: ct mark 0xff4101 → 0x1ff4101, mark 0x1 → 0x1",
            "policy ACCEPT",
        ]
    );
    assert_eq!((b.packet.mark, b.packet.ct_mark), (0x1, 0x1ff4101));
}

#[test]
fn ipset_membership() {
    let sets = ipsets(
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\n\
add KUBE-CLUSTER-IP 10.96.0.10,tcp:80\n\
add KUBE-CLUSTER-IP 10.96.0.53,udp:53\n\
create ALLOWED hash:net family inet hashsize 1024 maxelem 65536\n\
add ALLOWED 10.0.0.0/8\n\
add ALLOWED 10.1.0.0/16 nomatch\n\
add ALLOWED 10.1.2.0/24\n\
create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n\
add KUBE-NODE-PORT-TCP 30080\n\
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536\n\
add KUBE-LOOP-BACK 10.244.1.11,tcp:8080,10.244.1.11\n",
    );
    let text = filter(
        "-A INPUT -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\n\
-A INPUT -m set --match-set KUBE-NODE-PORT-TCP dst -j ACCEPT\n\
-A INPUT -m set --match-set KUBE-LOOP-BACK dst,dst,src -j ACCEPT\n\
-A INPUT -m set ! --match-set ALLOWED src -j DROP\n\
-A INPUT -j REJECT\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, Some(&sets), 0);
    let verdict = |p: &Packet| one(&rs, "filter", "INPUT", p).outcome;
    let reject = HookOutcome::Reject {
        with: "icmp-port-unreachable".into(),
    };
    assert_eq!(
        verdict(&tcp("192.0.2.1", 1, "10.96.0.10", 80)),
        HookOutcome::Accept
    );
    // Same address and port, other protocol: not in the set.
    assert_eq!(
        verdict(&udp("192.0.2.1", 1, "10.96.0.10", 80)),
        HookOutcome::Drop
    );
    assert_eq!(
        verdict(&udp("10.2.0.1", 1, "10.96.0.53", 53)),
        HookOutcome::Accept
    );
    assert_eq!(
        verdict(&tcp("192.0.2.1", 1, "10.0.0.10", 30080)),
        HookOutcome::Accept
    );
    assert_eq!(
        verdict(&tcp("10.244.1.11", 1, "10.244.1.11", 8080)),
        HookOutcome::Accept
    );
    assert_eq!(verdict(&tcp("10.244.1.12", 1, "10.244.1.11", 8080)), reject);
    // hash:net: the most specific entry decides, nomatch excludes.
    assert_eq!(verdict(&tcp("10.5.0.1", 1, "10.0.0.10", 22)), reject);
    assert_eq!(
        verdict(&tcp("10.1.9.1", 1, "10.0.0.10", 22)),
        HookOutcome::Drop
    );
    assert_eq!(verdict(&tcp("10.1.2.3", 1, "10.0.0.10", 22)), reject);
    // A set the save lacks, or no ipset save at all: Unknown, citing the rule.
    let text = filter("-A INPUT -m set --match-set NOPE src -j DROP\n");
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, Some(&sets), 0);
    let b = one(&rs, "filter", "INPUT", &tcp("10.5.0.1", 1, "10.0.0.10", 22));
    assert_eq!(
        unknown_reason(&b),
        format!("{PATH}:7: set NOPE is not in the ipset save (`-A INPUT -m set --match-set NOPE src -j DROP`)")
    );
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(&rs, "filter", "INPUT", &tcp("10.5.0.1", 1, "10.0.0.10", 22));
    assert!(unknown_reason(&b).contains("no ipset save"), "{b:#?}");
}

#[test]
fn physdev_follows_the_bridge_ports() {
    let text = filter(
        "-A FORWARD -m physdev --physdev-in veth+ --physdev-is-bridged -j ACCEPT\n\
-A FORWARD -m physdev ! --physdev-is-bridged -j REJECT\n\
-A FORWARD -m physdev --physdev-out eth1 -j DROP\n\
-A FORWARD -j ACCEPT\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let mut p = via(tcp("10.1.0.2", 1, "10.1.0.3", 80), Some("br0"), Some("br0"));
    p.bridged = true;
    p.physdev_in = Some("veth1".into());
    p.physdev_out = Some("veth2".into());
    let b = one(&rs, "filter", "FORWARD", &p);
    assert_eq!(b.steps[0].evidence.as_ref().unwrap().line, Some(7));
    // From a non-veth port: not the first rule; bridged, so not the second.
    p.physdev_in = Some("eth1".into());
    p.physdev_out = Some("eth1".into());
    assert_eq!(one(&rs, "filter", "FORWARD", &p).outcome, HookOutcome::Drop);
    // Not bridged at all: only the negated option matches.
    let p = via(
        tcp("10.1.0.2", 1, "10.1.0.3", 80),
        Some("eth0"),
        Some("eth1"),
    );
    assert!(matches!(
        one(&rs, "filter", "FORWARD", &p).outcome,
        HookOutcome::Reject { .. }
    ));
}

#[test]
fn an_unknown_match_is_unknown_citing_the_rule_unless_another_part_fails() {
    let text = filter(
        "-A OUTPUT -d 10.9.9.9/32 -m owner --uid-owner 0 -j DROP\n-A OUTPUT -m owner --uid-owner 0 -j ACCEPT\n-A OUTPUT -j DROP\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(
        &rs,
        "filter",
        "OUTPUT",
        &tcp("10.0.0.10", 1, "1.1.1.1", 443),
    );
    assert_eq!(
        unknown_reason(&b),
        format!(
            "{PATH}:8: match owner depends on the sending socket, which the bundle does not hold (`-A OUTPUT -m owner --uid-owner 0 -j ACCEPT`)"
        )
    );
    assert_eq!(b.steps.len(), 1);
    assert_eq!(b.steps[0].evidence.as_ref().unwrap().line, Some(8));
    // An unknown target too.
    let f = file(&filter("-A INPUT -p udp -j NFQUEUE --queue-num 1\n"));
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(&rs, "filter", "INPUT", &udp("1.1.1.1", 1, "10.0.0.10", 53));
    assert!(
        unknown_reason(&b).starts_with(&format!("{PATH}:7: target NFQUEUE")),
        "{b:#?}"
    );
}

#[test]
fn statistic_nth_and_a_dnat_range() {
    let text = "*nat\n:PREROUTING ACCEPT [0:0]\n\
-A PREROUTING -p udp -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.0.0.1-10.0.0.3:5300-5310\n\
-A PREROUTING -p udp -j REDIRECT --to-ports 5353\n\
COMMIT\n";
    let f = file(text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let p = via(
        udp("10.244.1.5", 1000, "10.96.0.53", 53),
        Some("cni0"),
        None,
    );
    let out = run(&rs, "nat", "PREROUTING", &p);
    assert_eq!(out.len(), 2);
    assert!((out[0].probability - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        (out[0].packet.dst, out[0].packet.dport),
        (ip("10.0.0.1"), 5300)
    );
    assert_eq!(
        whats(&out[0].steps),
        [
            "statistic nth every 3 (the packet counter is not captured: split 1/3): taken (p=0.3333)",
            "DNAT to 10.0.0.1:5300 (first of the range 10.0.0.1-10.0.0.3:5300-5310; the kernel picks one per connection)",
        ]
    );
    // The other two thirds: REDIRECT to cni0's address.
    assert_eq!(
        (out[1].packet.dst, out[1].packet.dport),
        (ip("10.244.1.1"), 5353)
    );
    assert!(out[1].packet.ct_dnat);
    // From this host: REDIRECT to loopback.
    let out = run(
        &rs,
        "nat",
        "PREROUTING",
        &udp("10.0.0.10", 1000, "10.96.0.53", 53),
    );
    assert_eq!(out[1].packet.dst, ip("127.0.0.1"));
}

#[test]
fn the_branch_cap_ends_branches_unknown_and_keeps_the_total() {
    let rules: String = (0..20)
        .map(|i| format!("-A PREROUTING -m statistic --mode random --probability 0.5 -j MARK --or-mark 0x{:x}\n", 1u32 << i))
        .collect();
    let text = format!("*mangle\n:PREROUTING ACCEPT [0:0]\n{rules}COMMIT\n");
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0).with_branch_cap(64);
    let out = run(
        &rs,
        "mangle",
        "PREROUTING",
        &tcp("1.1.1.1", 1, "10.0.0.10", 22),
    );
    assert!(out.len() <= 64, "{}", out.len());
    let capped: Vec<_> = out
        .iter()
        .filter(|b| matches!(b.outcome, HookOutcome::Unknown { .. }))
        .collect();
    assert!(!capped.is_empty());
    assert!(unknown_reason(capped[0]).contains("more than 64 branches"));
    // The first branch took every split: all marks set, in file order.
    assert_eq!(out[0].outcome, HookOutcome::Accept);
    assert_eq!(out[0].packet.mark, 0xfffff);
    assert!((out[0].probability - 0.5f64.powi(20)).abs() < 1e-15);
}

#[test]
fn tcp_flags_icmp_ranges_and_lengths() {
    let text = filter(
        "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m length --length 0:100 -j A\n\
-A INPUT -p tcp -m tcp ! --syn -j B\n\
-A INPUT -p icmp -m icmp --icmp-type 8 -m limit --limit 1/sec -j ACCEPT\n\
-A INPUT -p icmp -j DROP\n\
-A INPUT -m iprange --src-range 192.0.2.1-192.0.2.9 -j DROP\n\
-A A -j ACCEPT\n\
-A B -j REJECT --reject-with tcp-reset\n",
    );
    let f = file(&text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let b = one(&rs, "filter", "INPUT", &tcp("1.1.1.1", 1, "10.0.0.10", 22));
    assert_eq!(whats(&b.steps), ["jump A", "ACCEPT"]);
    let mut p = tcp("1.1.1.1", 1, "10.0.0.10", 22);
    p.ct = CtState::Established;
    let b = one(&rs, "filter", "INPUT", &p);
    assert_eq!(
        b.outcome,
        HookOutcome::Reject {
            with: "tcp-reset".into()
        }
    );
    let b = one(&rs, "filter", "INPUT", &icmp("1.1.1.1", "10.0.0.10"));
    assert_eq!(
        whats(&b.steps),
        [
            "rate limit not simulated: taken as within the rate",
            "ACCEPT"
        ]
    );
    let mut big = udp("192.0.2.5", 1, "10.0.0.10", 53);
    assert_eq!(one(&rs, "filter", "INPUT", &big).outcome, HookOutcome::Drop);
    big.src = ip("192.0.2.10");
    assert_eq!(
        one(&rs, "filter", "INPUT", &big).outcome,
        HookOutcome::Accept
    );
}

#[test]
fn insert_puts_rules_first_and_restore_flush_empties_a_chain() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n\
-A INPUT -j DROP\n\
-I INPUT -p udp -j ACCEPT\n\
-I INPUT 2 -p tcp -j A\n\
-A A -j REJECT\n\
-F A\n\
-A A -j ACCEPT\n\
COMMIT\n";
    let f = file(text);
    let rs = IptablesRuleset::new(&f, None, 0);
    assert_eq!(
        one(&rs, "filter", "INPUT", &udp("1.1.1.1", 1, "10.0.0.10", 53)).outcome,
        HookOutcome::Accept
    );
    let b = one(&rs, "filter", "INPUT", &tcp("1.1.1.1", 1, "10.0.0.10", 22));
    assert_eq!(whats(&b.steps), ["jump A", "ACCEPT"]);
    assert_eq!(b.steps[1].evidence.as_ref().unwrap().line, Some(9));
}

#[test]
fn masquerade_without_an_address_and_addrtype_on_an_interface() {
    let text = "*nat\n:POSTROUTING ACCEPT [0:0]\n\
-A POSTROUTING -o tunl0 -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL -j MASQUERADE\n\
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE\n\
COMMIT\n";
    let f = file(text);
    let rs = IptablesRuleset::new(&f, None, 0);
    // Calico's tunnel rule: a node address (eth0's) that is not tunl0's. tunl0 holds
    // none: the kernel (inet_select_addr) takes the netns's first global address.
    let p = via(tcp("10.0.0.10", 1, "10.244.2.5", 80), None, Some("tunl0"));
    let b = one(&rs, "nat", "POSTROUTING", &p);
    assert_eq!(b.outcome, HookOutcome::Accept);
    assert_eq!(b.packet.src, ip("10.0.0.10"));
    assert!(whats(&b.steps)
        .iter()
        .any(|w| w.contains("tunl0 has no IPv4 address")));
    // No global address anywhere: nothing to take, said so.
    let bare = NetnsFacts {
        first_global_v4: None,
        ..facts()
    };
    let out = rs.run(&chain("nat", "POSTROUTING"), &p, &bare, Detail::Every);
    let reason = unknown_reason(&out[0]);
    assert!(
        reason.starts_with(&format!(
            "{PATH}:3: MASQUERADE on tunl0: the netns holds no IPv4 address of tunl0"
        )),
        "{reason}"
    );
    let p = via(
        tcp("10.244.1.5", 1, "1.1.1.1", 80),
        Some("cni0"),
        Some("eth0"),
    );
    let b = one(&rs, "nat", "POSTROUTING", &p);
    assert_eq!(b.packet.src, ip("10.0.0.10"));
}

/// `-m socket` (Cilium's transparent-proxy mark, tproxy setups) finds a socket only
/// among the netns' own: a forwarded packet to another host's address, with no
/// listener on its port bound there or to the wildcard, surely finds none; with one,
/// or without the sockets captured, it stays unknown.
#[test]
fn socket_match_is_decided_when_no_captured_socket_can_take_the_packet() {
    let text = "*mangle\n:PREROUTING ACCEPT [0:0]\n\
        -A PREROUTING -m socket --transparent -j MARK --set-xmark 0x200/0xffffffff\n\
        COMMIT\n";
    let f = file(text);
    let rs = IptablesRuleset::new(&f, None, 0);
    let p = via(
        tcp("10.244.1.5", 40000, "10.244.1.6", 8080),
        Some("lxc1"),
        None,
    );
    let with = |sockets: Option<Vec<(Proto, &str, u16)>>| NetnsFacts {
        sockets: sockets.map(|v| {
            v.into_iter()
                .map(|(pr, a, port)| (pr, ip(a), port))
                .collect()
        }),
        ..facts()
    };
    let run_with = |facts: &NetnsFacts| {
        rs.run(&chain("mangle", "PREROUTING"), &p, facts, Detail::Every)
            .remove(0)
    };
    // Not captured: unknown, as before.
    let b = run_with(&facts());
    assert!(unknown_reason(&b).contains("match socket"), "{b:#?}");
    // Captured, none on 8080 (a listener on another port, one on 8080 of another
    // address): no socket, no mark.
    let none = with(Some(vec![
        (Proto::Tcp, "0.0.0.0", 22),
        (Proto::Tcp, "10.0.0.10", 8080),
        (Proto::Udp, "0.0.0.0", 8080),
    ]));
    let b = run_with(&none);
    assert_eq!(b.outcome, HookOutcome::Accept);
    assert_eq!(b.packet.mark, 0);
    // A wildcard listener on 8080 could be a transparent one: unknown.
    let b = run_with(&with(Some(vec![(Proto::Tcp, "0.0.0.0", 8080)])));
    assert!(unknown_reason(&b).contains("match socket"), "{b:#?}");
    // To a local address, an established socket (not captured) could match.
    let local = via(
        tcp("10.244.1.5", 40000, "10.0.0.10", 8080),
        Some("lxc1"),
        None,
    );
    let b = rs
        .run(&chain("mangle", "PREROUTING"), &local, &none, Detail::Every)
        .remove(0);
    assert!(unknown_reason(&b).contains("match socket"), "{b:#?}");
}
