//! The scanner against the full parser: whatever it accepts, the full parser reads the
//! same; whole saves parse the same with and without it.

use super::super::parse::Outline;
use super::super::targets::{build_target, Target};
use super::super::Ruleset;
use super::super::{parse_iptables, parse_iptables_full_parser};
use super::*;
use crate::parse::coverage::Parsed;
use netsnap_scale::{Plan, Size, Spec};

/// The chains the lines below name, declared.
const DECLARATIONS: &str = "\
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAA - [0:0]
:KUBE-SEP-BBBB - [0:0]
:KUBE-SEP-CCCC - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-EXT-DDDD - [0:0]
:LOG - [0:0]
";

/// The shapes kube-proxy writes most: each is read by the scanner.
const KUBE: &[&str] = &[
    "[0:0] -A KUBE-SEP-BBBB -s 10.244.0.27/32 -m comment --comment \"media/api-5168:http\" -j KUBE-MARK-MASQ",
    "[3819:1959147] -A KUBE-SEP-BBBB -p tcp -m comment --comment \"media/api-5168:http\" -m tcp -j DNAT --to-destination 10.244.0.27:8080",
    "[0:0] -A KUBE-SVC-AAAA -m comment --comment \"media/api-5168:http -> 10.244.0.27:8080\" -m statistic --mode random --probability 0.01234567891 -j KUBE-SEP-BBBB",
    "[0:0] -A KUBE-SVC-AAAA -m comment --comment \"media/api-5168:http -> 10.244.0.28:8080\" -j KUBE-SEP-CCCC",
    "[0:0] -A KUBE-SERVICES -d 10.96.12.83/32 -p tcp -m comment --comment \"media/api-5168:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-AAAA",
    "[0:0] -A KUBE-SVC-AAAA ! -s 10.244.0.0/16 -d 10.96.12.83/32 -p tcp -m comment --comment \"media/api-5168:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ",
    "[7:420] -A KUBE-SEP-CCCC -p udp -m comment --comment \"kube-system/dns:dns\" -m udp -j DNAT --to-destination [fd00::5]:53",
    "-A KUBE-SERVICES -d fd00:10:96::a/128 -p sctp -m comment --comment \"\" -m sctp --sport 1:1024 --dport 5000 -j KUBE-SVC-AAAA",
    "-A KUBE-SERVICES -m comment --comment \"é ünïcode, spaces  and 'quotes'\" -j KUBE-SVC-AAAA",
    "-A KUBE-SERVICES   -d 10.96.0.1  -j   ACCEPT",
    "-A KUBE-SERVICES -s 10.0.0.0/255.0.0.0 -j DROP",
    "-A KUBE-SERVICES -p tcp -m tcp --dport 80:90 -j RETURN",
    "-A KUBE-SERVICES -m statistic --mode random --probability 1 -j KUBE-SEP-BBBB",
    "-A KUBE-SERVICES -p tcp",
    "-A KUBE-SERVICES -m comment --comment \"a\" -m comment --comment \"b\" -j KUBE-SVC-AAAA",
];

/// Lines the scanner leaves to the full parser, which accepts some and reports others.
const OTHERS: &[&str] = &[
    "-A KUBE-SERVICES -p tcp --dport 80 -j ACCEPT",
    "-A KUBE-SERVICES -m tcp -p tcp -d 10.0.0.1 --dport 80 -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp --dport 80 --tcp-flags SYN,ACK SYN -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp ! --dport 80 -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp --dport 80 --dport 81 -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp --dport -80 -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp --dport 70000 -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp --dport 90:80 -j ACCEPT",
    "-A KUBE-SERVICES ! -p tcp -j ACCEPT",
    "-A KUBE-SERVICES -p icmp -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -p udp -j ACCEPT",
    "-A KUBE-SERVICES -s 10.0.0.1 -s 10.0.0.2 -j ACCEPT",
    "-A KUBE-SERVICES -s 10.0.0.300 -j ACCEPT",
    "-A KUBE-SERVICES -s host.example -j ACCEPT",
    "-A KUBE-SERVICES ! ! -s 10.0.0.1 -j ACCEPT",
    "-A KUBE-SERVICES ! -m comment --comment \"x\" -j ACCEPT",
    "-A KUBE-SERVICES -s 10.0.0.1 !",
    "-A KUBE-SERVICES -m comment --comment x -j ACCEPT",
    "-A KUBE-SERVICES -m comment --comment \"a\\\"b\" -j ACCEPT",
    "-A KUBE-SERVICES -m comment --comment \"a\"b -j ACCEPT",
    "-A KUBE-SERVICES -m comment --comment 'a' -j ACCEPT",
    "-A KUBE-SERVICES -m comment --comment \"unterminated -j ACCEPT",
    "-A KUBE-SERVICES -m comment --comment \"a\" extra -j ACCEPT",
    "-A KUBE-SERVICES -m comment -j ACCEPT",
    "-A KUBE-SERVICES -m statistic --mode nth --every 2 --packet 0 -j KUBE-SEP-BBBB",
    "-A KUBE-SERVICES -m statistic --mode random --probability 1.5 -j KUBE-SEP-BBBB",
    "-A KUBE-SERVICES -m statistic --mode random --probability x -j KUBE-SEP-BBBB",
    "-A KUBE-SERVICES -m statistic --mode random ! --probability 0.5 -j KUBE-SEP-BBBB",
    "-A KUBE-SERVICES -m recent --name KUBE-SEP-BBBB --rcheck --seconds 10800 --reap --mask 255.255.255.255 --rsource -j KUBE-SEP-BBBB",
    "-A KUBE-SERVICES -m conntrack --ctstate NEW -j KUBE-SVC-AAAA",
    "-A KUBE-SERVICES -m comment --comment \"a\" -m comment --comment \"b\" -m comment --comment \"c\" -m comment --comment \"d\" -m comment --comment \"e\" -j ACCEPT",
    "-A KUBE-SERVICES -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:80 --random",
    "-A KUBE-SERVICES -p tcp -m tcp -j DNAT --to-destination",
    "-A KUBE-SERVICES -p tcp -m tcp -j DNAT --to-destination !",
    "-A KUBE-SERVICES -p tcp -m tcp -j DNAT [unsupported revision]",
    "-A KUBE-SERVICES -j DNAT",
    "-A KUBE-SERVICES -j MASQUERADE --random-fully",
    "-A KUBE-SERVICES -j LOG",
    "-A KUBE-SERVICES -j QUEUE",
    "-A KUBE-SERVICES -j KUBE-NOT-DECLARED",
    "-A KUBE-NOT-DECLARED -j ACCEPT",
    "-A KUBE-SERVICES -j ACCEPT extra",
    "-A KUBE-SERVICES -j ACCEPT -s 10.0.0.1",
    "-A KUBE-SERVICES -g KUBE-SVC-AAAA",
    "-A KUBE-SERVICES -i eth0 -j ACCEPT",
    "-A KUBE-SERVICES -f -j ACCEPT",
    "-A KUBE-SERVICES 3 -j ACCEPT",
    "-I KUBE-SERVICES 1 -j ACCEPT",
    "--append KUBE-SERVICES -j ACCEPT",
    "-A \"KUBE-SERVICES\" -j ACCEPT",
    "-A KUBE-SERVICES\t-j ACCEPT",
    "-A KUBE-SERVICES -j ACCEPT\u{a0}-s 10.0.0.1",
    "-A KUBE-SERVICES -c 1 2 -j ACCEPT",
    "[1:x] -A KUBE-SERVICES -j ACCEPT",
    "[1:2]x -A KUBE-SERVICES -j ACCEPT",
    "-N KUBE-SERVICES",
    "-X",
    "garbage",
];

fn save(lines: &[&str]) -> String {
    let mut text = format!("*nat\n{DECLARATIONS}");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("COMMIT\n");
    text
}

/// The declared chains of `text`, as the parser finds them before any rule.
fn outline(text: &str) -> Outline {
    Outline::read(text).1
}

/// The scanner's reading of one rule line, with the chains of `outline` declared.
fn scanned(outline: &Outline, line: &str) -> Option<Rule> {
    scan_rule(line.trim(), 1, &mut RecentNames::new(&outline.declared))
}

/// The whole save parses the same with the scanner as with the full parser alone;
/// returns that parse.
fn assert_same_parse(text: &str) -> Parsed<Ruleset> {
    let fast = parse_iptables("t", text);
    let full = parse_iptables_full_parser("t", text);
    assert_eq!(fast, full, "{text}");
    full
}

#[test]
fn kube_proxy_shapes_are_scanned_as_the_parser_reads_them() {
    let text = save(KUBE);
    let declared = outline(&text);
    for line in KUBE {
        assert!(scanned(&declared, line).is_some(), "not scanned: {line}");
    }
    let full = assert_same_parse(&text);
    assert!(full.coverage.is_complete(), "{:?}", full.coverage);
    assert_eq!(full.model.tables[0].rules.len(), KUBE.len());
}

#[test]
fn other_lines_are_left_to_the_full_parser() {
    let text = save(OTHERS);
    let declared = outline(&text);
    for line in OTHERS {
        assert!(scanned(&declared, line).is_none(), "scanned: {line}");
    }
    // Some of them are errors, reported with their line as before.
    let full = assert_same_parse(&text);
    assert!(!full.coverage.unrecognised.is_empty());
}

/// Every single-byte change of every kube-proxy line: the save parses the same.
#[test]
fn mutated_lines_parse_as_the_full_parser() {
    let mut mutated = Vec::new();
    for line in KUBE {
        let b = line.as_bytes();
        for i in 0..b.len() {
            for with in [
                b' ', b'\t', b'"', b'\'', b'\\', b'!', b'-', b'x', b'9', b':', b'/',
            ] {
                let mut m = b.to_vec();
                m[i] = with;
                mutated.push(String::from_utf8_lossy(&m).into_owned());
            }
            let mut cut = b.to_vec();
            cut.remove(i);
            mutated.push(String::from_utf8_lossy(&cut).into_owned());
        }
    }
    let lines: Vec<&str> = mutated.iter().map(String::as_str).collect();
    assert_same_parse(&save(&lines));
}

/// The scale generator's save (the benchmark's input, with its faults): every
/// kube-proxy rule line scanned, and the same model and coverage as the full parser's.
#[test]
fn generated_save_is_scanned_as_the_parser_reads_it() {
    let plan = Plan::new(&Spec {
        faults: true,
        ..Spec::preset(Size::Small)
    })
    .expect("valid spec");
    let mut data = Vec::new();
    plan.write_iptables_save(&mut data).expect("rendered");
    let text = String::from_utf8(data).expect("utf-8");
    assert_same_parse(&text);
    let declared = outline(&text);
    let rules: Vec<&str> = text.lines().filter(|l| l.contains(" -A ")).collect();
    let left: Vec<&&str> = rules
        .iter()
        .filter(|l| scanned(&declared, l).is_none())
        .collect();
    // Only the few hand-written base rules (conntrack, mark, addrtype matches, MARK,
    // MASQUERADE, REJECT targets) are left to the full parser.
    assert!(rules.len() > 100 && left.len() < 20, "{left:#?}");
}

/// The fixtures' saves (healthy, faulty, legacy, dual stack) parse the same.
#[test]
fn fixture_saves_parse_as_the_full_parser() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
    for rel in [
        "analyzer/healthy/netfilter/iptables-nft-save.txt",
        "analyzer/faulty/netfilter/iptables-nft-save.txt",
        "analyzer/faulty/netfilter/iptables-legacy-save.txt",
        "analyzer/ipvs/netfilter/iptables-nft-save.txt",
        "dual-stack/netfilter/iptables-nft-save.txt",
        "demo/netfilter/iptables-nft-save.txt",
    ] {
        let path = format!("{root}/{rel}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_same_parse(&text);
    }
}

/// [`bare_target_is_chain`] says what the full parser makes of a bare `-j NAME`.
#[test]
fn bare_chain_targets_as_the_target_builder_types_them() {
    let names = [
        "ACCEPT",
        "DROP",
        "RETURN",
        "QUEUE",
        "DNAT",
        "SNAT",
        "MASQUERADE",
        "MARK",
        "REJECT",
        "LOG",
        "NOTRACK",
        "CT",
        "TPROXY",
        "KUBE-SVC-AAAA",
        "MY_CHAIN",
        "accept",
    ];
    for name in names {
        let mut problems = Vec::new();
        let built = build_target(name.to_string(), Vec::new(), false, &mut problems);
        let is_chain = matches!(built, Target::Chain(_));
        assert_eq!(bare_target_is_chain(name), is_chain, "{name}: {built:?}");
    }
}

/// Every way a name is found (the last chain, the name declared after it, the
/// recent targets, the set) gives the declared copy, and undeclared names are not
/// found however recently a declared one was: walked through the declarations in
/// order (the prediction hits), backwards and interleaved with targets (it misses).
#[test]
fn recent_names_share_the_declared_copies() {
    let mut text = String::from("*nat\n");
    let declared_names: Vec<String> = (0..40).map(|i| format!("KUBE-SEP-{i:04}")).collect();
    for name in &declared_names {
        text.push_str(&format!(":{name} - [0:0]\n"));
    }
    // Declared twice: keeps its first place.
    text.push_str(":KUBE-SEP-0003 - [0:0]\nCOMMIT\n");
    let o = outline(&text);
    let declared = &o.declared;
    let forwards = declared_names.iter();
    let backwards = declared_names.iter().rev();
    let interleaved = declared_names
        .iter()
        .step_by(3)
        .chain(declared_names.iter().step_by(2));
    for walk in [
        forwards.collect::<Vec<_>>(),
        backwards.collect(),
        interleaved.collect(),
    ] {
        let mut names = RecentNames::new(declared);
        for (i, name) in walk.iter().enumerate() {
            let want = declared.get(name).expect("declared");
            let chain = names.chain(name).expect("declared");
            assert!(Arc::ptr_eq(&want, &chain), "{name}");
            assert!(
                Arc::ptr_eq(&want, &names.chain(name).expect("again")),
                "{name}"
            );
            let target = names.target(walk[walk.len() - 1 - i]).expect("declared");
            let want_target = declared.get(walk[walk.len() - 1 - i]).expect("declared");
            assert!(Arc::ptr_eq(&want_target, &target));
            // The next declared name's neighbours are not declared.
            let undeclared = format!("{name}X");
            assert_eq!(names.chain(&undeclared), None);
            assert_eq!(names.target(&undeclared), None);
            assert_eq!(names.chain(&name[..name.len() - 1]), None);
        }
    }
    assert_eq!(declared.names().len(), declared_names.len());
    let place = declared.place("KUBE-SEP-0003").map(|(_, at)| at);
    assert_eq!(
        place,
        Some(3),
        "a name declared twice keeps its first place"
    );
}
