//! Hand-written rulesets for what the lab does not produce: ip6 and inet tables,
//! named counters, statements nft has that this converter does not read, cut and
//! hostile input. The lab test (`import_nft_text`) compares with the real `nft -j`.

use super::*;

fn convert(text: &str) -> (Value, Converted) {
    let c = to_json(text, "ticket.txt", 10);
    let v: Value = serde_json::from_str(&c.json).expect("valid JSON");
    (v, c)
}

fn items(v: &Value) -> Vec<Value> {
    v["nftables"].as_array().unwrap()[1..].to_vec()
}

const INET: &str = r#"table inet fw {
	counter c1 {
		packets 3 bytes 100
	}

	set blk {
		type ipv6_addr
		flags interval
		elements = { ::1,
			     2001:db8::/32 }
	}

	chain input {
		type filter hook input priority filter + 10; policy drop;
		iifname "lo" accept
		tcp dport { 22, 80-90 } counter packets 0 bytes 0 accept
		ip6 saddr @blk log prefix "blk " drop
		limit rate 10/second accept
		oifname != "eth0" counter name "c1" return
		fib daddr type local accept
		reject with icmpx admin-prohibited
		reject
	}
}
table ip6 t6 {
	chain c {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr fd00::1 tcp dport 80 dnat to [fd00::2]:8080
		reject
	}
}
"#;

#[test]
fn inet_and_ip6_tables_named_counters() {
    let (v, c) = convert(INET);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    let items = items(&v);
    assert_eq!(items[0], json!({"table": {"family": "inet", "name": "fw"}}));
    assert_eq!(
        items[1],
        json!({"counter": {"family": "inet", "name": "c1", "table": "fw", "packets": 3, "bytes": 100}})
    );
    assert_eq!(
        items[2]["set"]["elem"],
        json!(["::1", {"prefix": {"addr": "2001:db8::", "len": 32}}])
    );
    assert_eq!(items[3]["chain"]["prio"], json!(10));
    assert_eq!(items[3]["chain"]["policy"], json!("drop"));
    let rule = |i: usize| items[i]["rule"]["expr"].clone();
    assert_eq!(
        rule(4)[0]["match"]["left"],
        json!({"meta": {"key": "iifname"}})
    );
    assert_eq!(rule(5)[1], json!({"counter": {"packets": 0, "bytes": 0}}));
    assert_eq!(rule(6)[1], json!({"log": {"prefix": "blk "}}));
    assert_eq!(
        rule(7)[0],
        json!({"limit": {"rate": 10, "burst": 5, "per": "second"}})
    );
    assert_eq!(rule(8)[1], json!({"counter": "c1"}));
    assert_eq!(rule(8)[0]["match"]["op"], json!("!="));
    assert_eq!(
        rule(9)[0]["match"]["left"],
        json!({"fib": {"result": "type", "flags": ["daddr"]}})
    );
    assert_eq!(
        rule(10)[0],
        json!({"reject": {"type": "icmpx", "expr": "admin-prohibited"}})
    );
    assert_eq!(
        rule(11)[0],
        json!({"reject": {"type": "icmpx", "expr": "port-unreachable"}})
    );
    assert_eq!(items[13]["chain"]["prio"], json!(-100));
    assert_eq!(
        items[14]["rule"]["expr"][2],
        json!({"dnat": {"addr": "fd00::2", "port": 8080}})
    );
    assert_eq!(
        items[15]["rule"]["expr"][0],
        json!({"reject": {"type": "icmpv6", "expr": "port-unreachable"}})
    );
}

#[test]
fn unknown_statement_is_kept_and_noted_with_its_line() {
    let text = "table ip t {\n\tchain c {\n\t\tip saddr 10.0.0.1 osf name \"Linux\" drop\n\t}\n\tquota q {\n\t\t25 mbytes\n\t}\n}\n";
    let (v, c) = convert(text);
    assert_eq!(c.unparsed_rules, 1);
    assert_eq!(c.unread_lines, 1);
    assert!(
        c.notes[0].starts_with("ticket.txt line 12: nft statement not understood"),
        "{:?}",
        c.notes
    );
    assert!(c.notes[0].contains("osf"), "{:?}", c.notes);
    assert!(
        c.notes[1].starts_with("ticket.txt line 14: an nft object not converted"),
        "{:?}",
        c.notes
    );
    let rule = &items(&v)[2]["rule"]["expr"];
    assert_eq!(rule[0]["match"]["right"], json!("10.0.0.1"));
    assert_eq!(rule[1]["unparsed"]["text"], json!("osf name Linux drop"));
}

#[test]
fn a_ruleset_cut_mid_rule_keeps_what_was_read() {
    let text = "table ip t {\n\tchain c {\n\t\ttcp dport 22 accept\n\t\tip saddr { 10.0.0.1, 10.0";
    let (v, c) = convert(text);
    let items = items(&v);
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[2]["rule"]["expr"][1], json!({"accept": null}));
    assert!(items[3]["rule"]["expr"][0].get("unparsed").is_some());
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("line 13: the ruleset ends inside this statement")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("ends inside a block (cut?)")),
        "{:?}",
        c.notes
    );
}

#[test]
fn hostile_input_gives_notes_not_panics() {
    // Deep nesting in one rule.
    let deep = format!(
        "table ip t {{\n\tchain c {{\n\t\tip saddr {}1{} accept\n\t}}\n}}\n",
        "{ ".repeat(50_000),
        " }".repeat(50_000)
    );
    let (_, c) = convert(&deep);
    assert_eq!(c.unparsed_rules, 1);
    // A huge set: every element kept.
    let elems: Vec<String> = (0..100_000u32)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string())
        .collect();
    let huge = format!(
        "table ip t {{\n\tset s {{\n\t\ttype ipv4_addr\n\t\telements = {{ {} }}\n\t}}\n}}\n",
        elems.join(",\n\t\t\t")
    );
    let (v, c) = convert(&huge);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert_eq!(
        items(&v)[1]["set"]["elem"].as_array().map(Vec::len),
        Some(100_000)
    );
    // Stray braces, text outside tables, junk: noted, never fatal.
    let (_, c) = convert("}\n}}}\nhello\ntable ip t {\n\tchain c {\n\t\t} } }\n\t}\n}\n{{{{\n");
    assert!(!c.notes.is_empty());
}
