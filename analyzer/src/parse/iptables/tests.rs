//! Unit tests of the iptables parser internals.

use std::net::IpAddr;

use super::super::coverage::Coverage;
use super::parse::Outline;
use super::*;

fn one_rule(line: &str) -> (Rule, Coverage) {
    let text = format!("*nat\n{line}\nCOMMIT\n");
    let p = parse_iptables("t", &text);
    let r = p.model.tables[0].rules.first().cloned();
    match r {
        Some(r) => (r, p.coverage),
        None => panic!("no rule parsed from {line:?}: {:?}", p.coverage),
    }
}

#[test]
fn implicit_protocol_match() {
    let (r, c) = one_rule("-A X -p tcp --dport 80 -j ACCEPT");
    assert!(c.is_complete(), "{c:?}");
    assert_eq!(r.dport().map(|d| d.value), Some(PortRange::single(80)));
}

#[test]
fn restore_order_options() {
    let (r, c) = one_rule(
        "-A KUBE-SERVICES -m comment --comment \"a/b:c cluster IP\" -m tcp -p tcp -d 10.0.0.1 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
    );
    assert!(c.is_complete(), "{c:?}");
    assert_eq!(r.comment(), Some("a/b:c cluster IP"));
    assert_eq!(r.dport().map(|d| d.value.first), Some(80));
    let src = r.source.clone().map(|s| (s.negated, s.value.to_string()));
    assert_eq!(src, Some((true, "10.244.0.0/16".to_string())));
    assert_eq!(r.destination.map(|d| d.value.prefix_len()), Some(32));
    assert_eq!(r.target, Some(Target::Chain("KUBE-MARK-MASQ".into())));
}

#[test]
fn dport_of_a_generic_tcp_match() {
    let (r, c) = one_rule("-A X -p tcp -m tcp --dport 443 --tcp-flags SYN,ACK SYN -j ACCEPT");
    assert!(c.is_complete(), "{c:?}");
    assert!(matches!(&r.matches[0], Match::Other(g) if g.module == "tcp"));
    assert_eq!(r.dport().map(|d| d.value), Some(PortRange::single(443)));
}

#[test]
fn unsupported_revision_is_kept() {
    let (r, c) = one_rule("-A X -p tcp -m tcp --dport 80 -j DNAT [unsupported revision]");
    assert!(c.is_complete(), "{c:?}");
    match r.target {
        Some(Target::Other(g)) => {
            assert_eq!(g.name, "DNAT");
            assert!(g.unsupported_revision);
        }
        t => panic!("{t:?}"),
    }
}

#[test]
fn bad_probability_is_reported_but_rule_kept() {
    let p = parse_iptables(
        "t",
        "*nat\n-A X -m statistic --mode random --probability abc -j Y\nCOMMIT\n",
    );
    assert_eq!(p.model.tables[0].rules.len(), 1);
    assert_eq!(p.coverage.unrecognised.len(), 1);
    assert_eq!(p.coverage.unrecognised[0].line, 2);
}

#[test]
fn cidr_forms() {
    assert_eq!(
        parse_cidr("10.0.0.0/255.0.0.0").map(|c| c.prefix_len()),
        Ok(8)
    );
    assert!(parse_cidr("10.0.0.0/255.0.255.0").is_err());
    assert!(parse_cidr("example.com").is_err());
    assert_eq!(parse_cidr("fd00::/56").map(|c| c.prefix_len()), Ok(56));
    let c = parse_cidr("10.244.0.0/16").unwrap_or(Cidr::from(IpAddr::from([0, 0, 0, 0])));
    assert!(c.contains(&"10.244.3.4".parse().unwrap_or(c.addr())));
}

#[test]
fn nat_to_forms() {
    let ip = |s: &str| s.parse::<IpAddr>().ok();
    assert_eq!(
        parse_nat_to("10.0.0.1:80").map(|x| (Some(x.0), x.1)),
        Some((ip("10.0.0.1"), Some(80)))
    );
    assert_eq!(
        parse_nat_to("[fd00::2]:53").map(|x| (Some(x.0), x.1)),
        Some((ip("fd00::2"), Some(53)))
    );
    assert_eq!(
        parse_nat_to("10.0.0.1-10.0.0.9:80-90").map(|x| x.1),
        Some(Some(80))
    );
    assert_eq!(parse_nat_to("fd00::2").map(|x| x.1), Some(None));
    assert_eq!(parse_nat_to("garbage"), None);
}

#[test]
fn cidr_keeps_host_bits_as_written() {
    let c = parse_cidr("10.1.2.3/8").unwrap_or(Cidr::from(IpAddr::from([0, 0, 0, 0])));
    assert_eq!(c.to_string(), "10.1.2.3/8");
    assert!(c.contains(&IpAddr::from([10, 200, 0, 1])));
    assert!(!c.contains(&IpAddr::from([11, 0, 0, 1])));
    assert_eq!(
        parse_cidr("fd00::1").map(|c| c.to_string()),
        Ok("fd00::1/128".into())
    );
    assert!(parse_cidr("10.0.0.0/33").is_err());
    assert!(parse_cidr("fd00::/255.0.0.0").is_err());
}

/// Every rule naming a chain holds one shared copy of its name, whether the chain was
/// declared (shared by the parallel parsers) or not (interned by the assembler, as a
/// broken save or restore input needs), and the two paths give the same rules.
#[test]
fn chain_names_are_shared_declared_or_not() {
    let declared = "*nat\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-B - [0:0]\n\
        -A KUBE-SVC-A -j KUBE-SEP-B\n-A KUBE-SVC-A -j KUBE-SEP-B\n-A KUBE-SEP-B -j KUBE-SVC-A\nCOMMIT\n";
    let undeclared = "*nat\n-A KUBE-SVC-A -j KUBE-SEP-B\n-A KUBE-SVC-A -j KUBE-SEP-B\n\
        -A KUBE-SEP-B -j KUBE-SVC-A\nCOMMIT\n";
    let jump = |r: &Rule| match &r.target {
        Some(Target::Chain(c)) => c.clone(),
        other => panic!("not a jump: {other:?}"),
    };
    let mut seen = Vec::new();
    for text in [declared, undeclared] {
        let p = parse_iptables("t", text);
        assert!(p.coverage.unrecognised.is_empty(), "{:?}", p.coverage);
        let rules = &p.model.tables[0].rules;
        assert_eq!(rules.len(), 3);
        // The chain of rules 0 and 1, the target of rule 2: one allocation.
        assert!(std::sync::Arc::ptr_eq(&rules[0].chain, &rules[1].chain));
        assert!(std::sync::Arc::ptr_eq(&rules[0].chain, &jump(&rules[2])));
        // The target of rules 0 and 1, the chain of rule 2.
        assert!(std::sync::Arc::ptr_eq(&jump(&rules[0]), &jump(&rules[1])));
        assert!(std::sync::Arc::ptr_eq(&jump(&rules[0]), &rules[2].chain));
        // Lines differ (no declarations); all else is the same.
        let unlined = rules.iter().map(|r| Rule {
            line: 0,
            ..r.clone()
        });
        seen.push(unlined.collect::<Vec<_>>());
    }
    assert_eq!(seen[0], seen[1], "declared or not, the same rules");
}

/// The pass before the parse: each table's rule lines (for its vector's size) and
/// every declared chain name, whatever table declares it.
#[test]
fn outline_counts_rules_per_table_and_finds_declared_chains() {
    let text = "# c\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n\
        *nat\n:KUBE-SVC-A - [0:0]\n-A KUBE-SVC-A -j RETURN\n\n-A KUBE-SVC-A -j RETURN\n\
        -N EXTRA\n*raw\n-A X -j ACCEPT\n";
    let (_, o) = Outline::read(text);
    let mut counts: Vec<_> = o.rule_lines.iter().map(|(&l, &n)| (l, n)).collect();
    counts.sort();
    // *filter (line 2): one rule; *nat (6), not committed: two rules and -N; *raw (12).
    assert_eq!(counts, vec![(2, 1), (6, 3), (12, 1)]);
    let mut names: Vec<_> = o.declared.names().iter().map(|n| n.to_string()).collect();
    names.sort();
    assert_eq!(names, ["INPUT", "KUBE-SVC-A"]);
}

/// The quick trim gives what `str::trim` gives, whatever the line's ends.
#[test]
fn quick_trim_is_trim() {
    for raw in [
        "",
        " ",
        "a",
        " a",
        "a ",
        "\ta\r",
        "-A X -j ACCEPT",
        "\u{a0}-A X\u{a0}",
        "é",
        " é ",
        "x\u{2003}",
        "\u{2003}x",
        "!",
        "#c",
        "\u{85}",
    ] {
        assert_eq!(super::parse::trimmed(raw), raw.trim(), "{raw:?}");
    }
}

/// The line starts the parse hands out are the ones a line index finds on its own:
/// 0, then one past every `\n` (every text of up to six of these characters).
#[test]
fn line_starts_are_zero_and_one_past_every_newline() {
    let alphabet = ['a', '\n', '\r', ' ', '*'];
    let mut texts = vec![String::new()];
    for len in 1..=6 {
        for mut i in 0..alphabet.len().pow(len) {
            let mut t = String::new();
            for _ in 0..len {
                t.push(alphabet[i % alphabet.len()]);
                i /= alphabet.len();
            }
            texts.push(t);
        }
    }
    texts.push("*nat\n:A - [0:0]\r\n-A A -j ACCEPT\n\nCOMMIT".into());
    for text in &texts {
        let expected: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let (_, starts) = parse_iptables_and_line_starts("t", text);
        assert_eq!(starts, expected, "{text:?}");
    }
}

/// A rule line before any table, or after its table's COMMIT, is a miss naming why,
/// parsed ahead or not; the rules inside the table are kept.
#[test]
fn rule_lines_outside_a_table_are_misses() {
    let text = "-A INPUT -j ACCEPT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n-A INPUT -j ACCEPT\n";
    for p in [
        parse_iptables("t", text),
        parse_iptables_full_parser("t", text),
    ] {
        let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
        assert_eq!(lines, [1, 6]);
        assert!(p.coverage.unrecognised[0]
            .reason
            .contains("line outside a table"));
        assert_eq!(p.coverage.unrecognised[1].text, "-A INPUT -j ACCEPT");
        assert_eq!(p.model.tables.len(), 1);
        assert_eq!(p.model.tables[0].rules.len(), 1);
    }
}
