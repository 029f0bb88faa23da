//! Hand-written JSON: what the kernel refuses to load (loops) or nft cannot write
//! here (xt, queue without its module, unknown expressions).

use super::*;

fn ruleset(chains: &str, rules: &[(&str, &str)]) -> String {
    let mut items = vec![
        r#"{"table": {"family": "ip", "name": "t", "handle": 1}}"#.to_string(),
        chains.to_string(),
    ];
    for (i, (chain, expr)) in rules.iter().enumerate() {
        items.push(format!(
            r#"{{"rule": {{"family": "ip", "table": "t", "chain": "{chain}", "handle": {}, "expr": {expr}}}}}"#,
            i + 10
        ));
    }
    format!(r#"{{"nftables": [{}]}}"#, items.join(", "))
}

const BASE: &str = r#"{"chain": {"family": "ip", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": "filter + 5", "policy": "accept"}}, {"chain": {"family": "ip", "table": "t", "name": "a"}}, {"chain": {"family": "ip", "table": "t", "name": "b"}}"#;

fn first_unknown(json: &str) -> String {
    let p = parse_nft(PATH, json);
    let f = NftFile {
        path: PATH.into(),
        ruleset: p.model,
    };
    let ev = NftEval::new(&f, 0);
    let b = one(run(
        &ev,
        Hook::Input,
        "in",
        &tcp("10.0.0.1", "10.0.0.2", 80),
        &no_facts(),
    ));
    match b.outcome {
        HookOutcome::Unknown { reason } => reason,
        other => panic!("{other:?}: {:#?}", b.steps),
    }
}

#[test]
fn named_priority_and_jump_loop() {
    let json = ruleset(
        BASE,
        &[
            ("in", r#"[{"jump": {"target": "a"}}]"#),
            ("a", r#"[{"jump": {"target": "b"}}]"#),
            ("b", r#"[{"jump": {"target": "a"}}]"#),
        ],
    );
    let f = file(&json);
    let ev = NftEval::new(&f, 0);
    assert_eq!(ev.hook_chains(Hook::Input, false)[0].priority, 5);
    let reason = first_unknown(&json);
    assert!(
        reason.contains("jump past the kernel's stack of 16"),
        "{reason}"
    );
    // A goto loop never deepens the stack: the rule budget stops it.
    let json = ruleset(
        BASE,
        &[
            ("in", r#"[{"goto": {"target": "a"}}]"#),
            ("a", r#"[{"goto": {"target": "b"}}]"#),
            ("b", r#"[{"goto": {"target": "a"}}]"#),
        ],
    );
    assert!(first_unknown(&json).contains("jump loop"));
}

#[test]
fn unknown_statements_and_expressions() {
    let cases = [
        (r#"[{"queue": {"num": 3}}]"#, "queue"),
        (
            r#"[{"xt": {"type": "match", "name": "addrtype"}}]"#,
            "iptables-nft compat",
        ),
        (
            r#"[{"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}}, {"drop": null}]"#,
            "osf",
        ),
        (r#"[{"frobnicate": {"x": 1}}]"#, "frobnicate"),
        (
            r#"[{"jump": {"target": "nowhere"}}]"#,
            "nowhere: no such chain",
        ),
        (
            r#"[{"match": {"op": "in", "left": {"payload": {"protocol": "tcp", "field": "flags"}}, "right": "syn"}}, {"drop": null}]"#,
            "tcp flags",
        ),
        (
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@missing"}}, {"drop": null}]"#,
            "@missing: no such set",
        ),
        (
            r#"[{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "expected"}}, {"drop": null}]"#,
            "ct status expected",
        ),
    ];
    for (expr, want) in cases {
        let reason = first_unknown(&ruleset(BASE, &[("in", expr)]));
        assert!(reason.contains(want), "{want}: {reason}");
        assert!(reason.contains("nft.json:5"), "{reason}");
    }
}

#[test]
fn branches_are_capped() {
    // Four nested numgen mod 16: 65536 paths, more than MAX_BRANCHES.
    let vmap = |to: &str| {
        let slots: Vec<String> = (0..16)
            .map(|i| format!(r#"[{i}, {{"jump": {{"target": "{to}"}}}}]"#))
            .collect();
        format!(
            r#"[{{"vmap": {{"key": {{"numgen": {{"mode": "random", "mod": 16, "offset": 0}}}}, "data": {{"set": [{}]}}}}}}]"#,
            slots.join(", ")
        )
    };
    let chains = format!(
        r#"{BASE}, {{"chain": {{"family": "ip", "table": "t", "name": "c"}}}}, {{"chain": {{"family": "ip", "table": "t", "name": "d"}}}}"#
    );
    let json = ruleset(
        &chains,
        &[
            ("in", &vmap("a")),
            ("a", &vmap("b")),
            ("b", &vmap("c")),
            ("c", &vmap("d")),
            (
                "d",
                r#"[{"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}]"#,
            ),
        ],
    );
    let f = file(&json);
    let ev = NftEval::new(&f, 0);
    let out = run(
        &ev,
        Hook::Input,
        "in",
        &tcp("10.0.0.1", "10.0.0.2", 80),
        &no_facts(),
    );
    assert!(out.len() <= MAX_BRANCHES, "{}", out.len());
    assert!(out.iter().any(is_unknown));
    assert!(out
        .iter()
        .any(|b| b.outcome == HookOutcome::Accept && b.packet.mark == 1));
}

#[test]
fn a_base_chain_without_priority_is_unknown() {
    let chains = r#"{"chain": {"family": "ip", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": "sideways", "policy": "accept"}}"#;
    let json = ruleset(chains, &[("in", r#"[{"accept": null}]"#)]);
    let f = file(&json);
    let ev = NftEval::new(&f, 0);
    let b = one(run(
        &ev,
        Hook::Input,
        "in",
        &tcp("10.0.0.1", "10.0.0.2", 80),
        &no_facts(),
    ));
    assert!(is_unknown(&b));
}

#[test]
fn nat_of_the_other_family_is_skipped_in_inet() {
    // As nft 1.0.6 writes `tcp dport 80 dnat ip6 to [fd00::1]:8080` in an inet table.
    let json = r#"{"nftables": [
      {"table": {"family": "inet", "name": "n", "handle": 1}},
      {"chain": {"family": "inet", "table": "n", "name": "pre", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "n", "chain": "pre", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"dnat": {"family": "ip6", "addr": "fd00::1", "port": 8080}}]}},
      {"rule": {"family": "inet", "table": "n", "chain": "pre", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"dnat": {"family": "ip", "addr": "10.0.0.1", "port": 8080}}]}}
    ]}"#;
    let f = file(json);
    let ev = NftEval::new(&f, 0);
    let v4 = one(run(
        &ev,
        Hook::Prerouting,
        "pre",
        &tcp("10.9.0.1", "10.0.0.2", 80),
        &no_facts(),
    ));
    assert_eq!(sock(&v4), "10.0.0.1:8080");
    let v6 = one(run(
        &ev,
        Hook::Prerouting,
        "pre",
        &tcp("fd00::9", "fd00::2", 80),
        &no_facts(),
    ));
    assert_eq!(
        (v6.packet.dst.to_string(), v6.packet.dport),
        ("fd00::1".into(), 8080)
    );
    assert_eq!(whats(&v6), ["dnat to [fd00::1]:8080"]);
}
