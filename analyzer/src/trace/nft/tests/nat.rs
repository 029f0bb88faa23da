//! NAT statements, maps, numgen and marks (testdata/nat-misc.nft).

use super::*;

#[test]
fn misc_base_chains() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    let out: Vec<(String, i32, bool)> = ev
        .hook_chains(Hook::Output, false)
        .into_iter()
        .map(|c| (c.chain, c.priority, c.nat))
        .collect();
    assert_eq!(out, [("out".to_string(), -150, false)]);
    let post = ev.hook_chains(Hook::Postrouting, false);
    assert_eq!((post[0].priority, post[0].nat), (110, true));
}

#[test]
fn redirect_to_the_incoming_interface_or_loopback() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    let host = facts(&[("eth0", &["192.168.1.5"])]);
    let p = via(tcp("10.0.0.9", "93.184.216.34", 8081), Some("eth0"), None);
    let b = one(run(&ev, Hook::Prerouting, "pre", &p, &host));
    assert_eq!(
        (sock(&b), b.packet.ct_dnat),
        ("192.168.1.5:3128".into(), true)
    );
    assert_eq!(whats(&b), ["redirect to 192.168.1.5:3128"]);
    let p = tcp("10.0.0.9", "93.184.216.34", 8081);
    let b = one(run(&ev, Hook::Prerouting, "pre", &p, &host));
    assert_eq!(sock(&b), "127.0.0.1:3128");
    let p = via(tcp("10.0.0.9", "93.184.216.34", 8081), Some("eth3"), None);
    assert!(is_unknown(&one(run(
        &ev,
        Hook::Prerouting,
        "pre",
        &p,
        &host
    ))));
}

#[test]
fn numgen_inc_splits_evenly_and_goto_free_return() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    let p = udp("10.0.0.9", "10.9.9.9", 5050);
    let out = run(&ev, Hook::Prerouting, "pre", &p, &no_facts());
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|b| b.probability == 0.5 && b.outcome == HookOutcome::Accept));
    // slot 7 → even: ct mark 2; slot 8 → odd: mark (0 & 0xffff0001) | 1, and its
    // `return` skips the 0xbad mark.
    let marks: Vec<(u32, u32)> = out
        .iter()
        .map(|b| (b.packet.mark, b.packet.ct_mark))
        .collect();
    assert_eq!(marks, [(0, 2), (1, 0)]);
    assert!(whats(&out[0])[0].starts_with(
        "numgen inc mod 2 offset 7 = 7, p 1/2 (a round-robin counter the bundle does not hold: taken as uniform); numgen inc mod 2 offset 7 vmap: 7 : jump even"
    ));
    assert_eq!(
        whats(&out[1])[1..],
        ["meta mark set 0x1", "return", "policy accept"]
    );
}

#[test]
fn dnat_through_named_maps() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    // ip daddr . tcp dport map @fwd-ports: address and port.
    let b = one(run(
        &ev,
        Hook::Prerouting,
        "pre",
        &tcp("8.8.8.8", "203.0.113.1", 443),
        &no_facts(),
    ));
    assert_eq!(sock(&b), "10.1.0.6:8443");
    assert_eq!(whats(&b), ["dnat to 10.1.0.6:8443"]);
    // ip daddr map @fwd-addrs (an interval map): the address only.
    let b = one(run(
        &ev,
        Hook::Prerouting,
        "pre",
        &tcp("8.8.8.8", "198.51.100.7", 80),
        &no_facts(),
    ));
    assert_eq!(sock(&b), "10.2.0.9:80");
    // dnat to an address range: the kernel picks; Unknown.
    let b = one(run(
        &ev,
        Hook::Prerouting,
        "pre",
        &tcp("8.8.8.8", "10.9.9.9", 9000),
        &no_facts(),
    ));
    let HookOutcome::Unknown { reason } = &b.outcome else {
        panic!("{b:#?}")
    };
    assert!(reason.contains("10.3.0.1-10.3.0.4"), "{reason}");
}

#[test]
fn numgen_in_a_comparison_splits_matching_and_not() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    let out = run(
        &ev,
        Hook::Prerouting,
        "pre",
        &tcp("8.8.8.8", "10.9.9.9", 1234),
        &no_facts(),
    );
    let marks: Vec<u32> = out.iter().map(|b| b.packet.mark).collect();
    assert_eq!(marks, [0x99, 0, 0, 0]);
    assert!(out.iter().all(|b| b.probability == 0.25));
    assert_eq!(
        whats(&out[0])[0],
        "numgen random mod 4 = 0, p 1/4; meta mark set 0x99"
    );
    assert_eq!(whats(&out[3])[0], "numgen random mod 4 = 3, p 1/4");
}

#[test]
fn snat_masquerade_and_map_marks() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    let host = facts(&[("eth1", &["172.31.0.2"])]);
    let p = via(tcp("10.1.0.5", "8.8.8.8", 53), Some("eth1"), Some("eth1"));
    let b = one(run(&ev, Hook::Postrouting, "post", &p, &host));
    assert_eq!(
        (b.packet.mark, b.packet.src.to_string()),
        (0x20, "172.31.0.2".into())
    );
    assert_eq!(
        whats(&b),
        ["meta mark set 0x20", "masquerade to 172.31.0.2:40000"]
    );
    // Sent by this netns: iifname is "", the map misses and the rule stops there.
    let p = via(tcp("10.1.2.3", "8.8.8.8", 53), None, Some("eth0"));
    let b = one(run(&ev, Hook::Postrouting, "post", &p, &host));
    assert_eq!(
        (b.packet.mark, b.packet.src.to_string()),
        (0, "192.0.2.1".into())
    );
    assert!(b.packet.ct_snat);
    let mut p = via(udp("10.1.2.3", "8.8.8.8", 51820), None, Some("wg0"));
    p.sport = 5555;
    let b = one(run(&ev, Hook::Postrouting, "post", &p, &host));
    assert_eq!(
        (b.packet.src.to_string(), b.packet.sport),
        ("192.0.2.7".into(), 40000)
    );
}

#[test]
fn jump_then_goto_returns_to_the_jumper() {
    let f = file(MISC);
    let ev = NftEval::new(&f, 0);
    let out = |port| {
        one(run(
            &ev,
            Hook::Output,
            "out",
            &tcp("10.0.0.9", "8.8.8.8", port),
            &no_facts(),
        ))
    };
    // jump deep → goto deeper: the end of deeper returns to out, after the jump.
    let b = out(25);
    assert_eq!(b.packet.mark, 0x26);
    assert_eq!(
        whats(&b),
        [
            "jump deep",
            "goto deeper",
            "meta mark set 0x26",
            "policy accept"
        ]
    );
    // goto deep from the base chain: its end is the base chain's policy.
    let b = out(26);
    assert_eq!(b.packet.mark, 0x25);
    assert_eq!(
        whats(&b),
        ["goto deep", "meta mark set 0x25", "policy accept"]
    );
    assert_eq!(
        whats(&out(27)),
        ["jump chain1", "jump chain2", "policy accept"]
    );
}
