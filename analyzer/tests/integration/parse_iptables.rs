//! iptables parser against real iptables-save output of both backends (captured in a
//! scratch netns by tests/integration/data/regen.sh) and kube-proxy's restore-input form.

use std::net::IpAddr;

use netsnap_analyzer::parse::iptables::*;
use proptest::prelude::*;

const NFT_SAVE: &str = include_str!("data/iptables-nft-save.txt");
const LEGACY_SAVE: &str = include_str!("data/iptables-legacy-save.txt");
const RESTORE: &str = include_str!("data/kube-proxy-restore.txt");
const IP6_SAVE: &str = include_str!("data/ip6tables-nft-save.txt");
const IP6_RESTORE: &str = include_str!("data/ip6tables-restore.txt");

fn parse_complete(path: &str, text: &str) -> Ruleset {
    let p = parse_iptables(path, text);
    assert!(
        p.coverage.is_complete(),
        "{path}: unrecognised {:#?}",
        p.coverage.unrecognised
    );
    assert_eq!(p.coverage.recognised, text.lines().count(), "{path}");
    p.model
}

fn rule_at(rs: &Ruleset, line: usize) -> &Rule {
    rs.tables
        .iter()
        .flat_map(|t| t.rules.iter())
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no rule at line {line}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn nft_save_is_fully_recognised_with_values() {
    let rs = parse_complete("netfilter/iptables-nft-save.txt", NFT_SAVE);
    let names: Vec<&str> = rs.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["mangle", "raw", "filter", "nat"]);
    assert_eq!(rs.legacy_tables_warning().map(|c| c.line), Some(1));
    assert_eq!(
        rs.generated_by(),
        Some("iptables-nft-save v1.8.9 (nf_tables)")
    );

    // Built-in chain with policy and real counters (loopback traffic in regen.sh).
    let mangle = rs.table("mangle").expect("mangle");
    let pre = mangle.chain("PREROUTING").expect("PREROUTING");
    assert_eq!(pre.line, 4);
    assert_eq!(pre.policy.as_deref(), Some("ACCEPT"));
    let c = pre.counters.expect("counters");
    assert!(c.packets > 0 && c.bytes > c.packets, "{c:?}");

    // Comment with escaped quotes and backslash, set match with two flags.
    let r = rule_at(&rs, 14);
    assert_eq!(r.comment(), Some(r#"cali:say "hi" \ to the "host""#));
    assert_eq!(
        r.matches[1],
        Match::Set(Box::new(SetMatch {
            negated: false,
            name: "cali40all-hosts-net".into(),
            flags: vec!["src".into(), "dst".into()],
        }))
    );
    assert_eq!(r.target, Some(Target::Accept));

    // physdev, nfacct (printed with a double space), conntrack.
    let r = rule_at(&rs, 12);
    assert_eq!(
        r.matches[0],
        Match::Physdev(Box::new(Physdev {
            physdev_in: Some(Neg::new(false, "veth-docker0".into())),
            physdev_out: None,
            is_in: None,
            is_out: None,
            is_bridged: Some(true),
        }))
    );
    let r = rule_at(&rs, 13);
    assert_eq!(
        r.matches[1],
        Match::Conntrack(Conntrack {
            ctstate: Some(Neg::new(false, vec!["INVALID".into()]))
        })
    );
    assert_eq!(
        r.matches[2],
        Match::Nfacct("ct_state_invalid_dropped_pkts".into())
    );
    assert_eq!(r.target, Some(Target::Drop));

    // Unknown modules and targets are kept generically.
    let r = rule_at(&rs, 26);
    assert_eq!(
        r.matches[2],
        Match::Other(Box::new(GenericMatch {
            module: "rpfilter".into(),
            options: vec![
                Opt {
                    negated: false,
                    name: "--validmark".into(),
                    args: vec![]
                },
                Opt {
                    negated: false,
                    name: "--invert".into(),
                    args: vec![]
                },
            ],
            unsupported_revision: false,
        }))
    );
    let r = rule_at(&rs, 27);
    assert_eq!(
        r.destination.as_ref().map(|d| d.value.addr()),
        Some(ip("169.254.20.10"))
    );
    assert_eq!(r.target_name(), Some("CT"));
    assert!(matches!(&r.target, Some(Target::Other(g)) if g.options[0].name == "--notrack"));

    // Multiport negation, sctp port range, REJECT type.
    let r = rule_at(&rs, 86);
    assert_eq!(
        r.matches[1],
        Match::Multiport(Multiport {
            direction: PortDirection::Destination,
            negated: true,
            ports: vec![
                PortRange::single(22),
                PortRange::single(179),
                PortRange {
                    first: 6443,
                    last: 6444
                }
            ],
        })
    );
    assert!(r.counters.is_some_and(|c| c.packets > 0));
    let r = rule_at(&rs, 88);
    assert_eq!(
        r.matches[0],
        Match::Port(PortMatch {
            protocol: "sctp".into(),
            sport: Some(Neg::new(
                false,
                PortRange {
                    first: 1000,
                    last: 2000
                }
            )),
            dport: None,
        })
    );
    assert_eq!(
        r.target,
        Some(Target::Reject {
            with: Some("icmp-admin-prohibited".into())
        })
    );

    // kube-proxy nat: masquerade mark, statistic probability, DNAT endpoint, affinity.
    let r = rule_at(&rs, 134);
    assert_eq!(&*r.chain, "KUBE-MARK-MASQ");
    assert_eq!(
        r.target,
        Some(Target::Mark(MarkTarget {
            op: MarkOp::SetXmark,
            value: 0x4000,
            mask: Some(0x4000)
        }))
    );
    let r = rule_at(&rs, 139);
    assert!(matches!(&r.target, Some(Target::Masquerade(m)) if m.random_fully));
    let r = rule_at(&rs, 179);
    assert_eq!(&*r.chain, "KUBE-SVC-ULMVA6XWHSNOAJN6");
    assert_eq!(r.probability(), Some(0.33333333349));
    assert_eq!(r.comment(), Some("ns1/web:http -> 10.244.1.5:8080"));
    assert_eq!(r.jump_chain(), Some("KUBE-SEP-5OJB2KTY6XLMVR4Q"));
    let r = rule_at(&rs, 143);
    match &r.target {
        Some(Target::Dnat(n)) => {
            assert_eq!(n.to.as_deref(), Some("10.244.1.5:8080"));
            assert_eq!(n.endpoint(), Some((ip("10.244.1.5"), Some(8080))));
        }
        t => panic!("{t:?}"),
    }
    assert_eq!(
        r.matches[1],
        Match::Recent(Box::new(Recent {
            name: Some("KUBE-SEP-5OJB2KTY6XLMVR4Q".into()),
            action: RecentAction::Set,
            negated: false,
            seconds: None,
            reap: false,
            hitcount: None,
            rttl: false,
            mask: Some("255.255.255.255".into()),
            side: Some(RecentSide::Source),
        }))
    );
    let r = rule_at(&rs, 176);
    assert!(matches!(&r.matches[1], Match::Recent(x)
        if x.action == RecentAction::Rcheck && x.seconds == Some(10800) && x.reap));

    // "has no endpoints" REJECT in filter.
    let r = rule_at(&rs, 81);
    assert_eq!(r.comment(), Some("ns1/empty:http has no endpoints"));
    assert_eq!(
        r.destination
            .as_ref()
            .map(|d| d.value.to_string())
            .as_deref(),
        Some("10.96.20.20/32")
    );
    assert_eq!(r.dport().map(|d| d.value), Some(PortRange::single(80)));
    assert_eq!(r.protocol.as_ref().map(|p| &*p.value), Some("tcp"));
}

#[test]
fn legacy_save_is_fully_recognised_and_agrees_with_nft() {
    let legacy = parse_complete("netfilter/iptables-legacy-save.txt", LEGACY_SAVE);
    let nft = parse_complete("netfilter/iptables-nft-save.txt", NFT_SAVE);
    assert_eq!(legacy.legacy_tables_warning(), None);
    assert_eq!(legacy.generated_by(), Some("iptables-save v1.8.9"));
    let names: Vec<&str> = legacy.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["nat", "filter", "mangle", "raw"]);
    let r = rule_at(&legacy, 89);
    assert_eq!(r.probability(), Some(0.33333333349));

    // Same ruleset through both backends: the same rules per table, once counters,
    // lines and order are set aside.
    for name in ["nat", "filter", "mangle", "raw"] {
        let norm = |rs: &Ruleset| {
            let mut v: Vec<String> = rs
                .table(name)
                .map(|t| {
                    t.rules
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            r.counters = None;
                            render_rule(&r)
                        })
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        assert_eq!(norm(&legacy), norm(&nft), "table {name}");
        assert!(!norm(&nft).is_empty());
    }
}

#[test]
fn kube_proxy_restore_input_is_fully_recognised() {
    let rs = parse_complete("restore.txt", RESTORE);
    assert_eq!(rs.tables.len(), 4);
    let nat = rs.table("nat").expect("nat");
    let chain = nat.chain("KUBE-SVC-ULMVA6XWHSNOAJN6").expect("svc chain");
    assert_eq!(chain.policy, None);
    assert_eq!(
        chain.counters,
        Some(Counters {
            packets: 0,
            bytes: 0
        })
    );
    // "-m tcp -p tcp -d … --dport …": --dport still belongs to the tcp match.
    let svc: Vec<&Rule> = nat.rules_in("KUBE-SVC-ULMVA6XWHSNOAJN6").collect();
    assert_eq!(svc.len(), 7);
    assert_eq!(svc[0].dport().map(|d| d.value.first), Some(80));
    assert_eq!(svc[0].source.as_ref().map(|s| s.negated), Some(true));
    let r = rule_at(&rs, 160);
    assert_eq!(r.probability(), Some(0.3333333333));
    assert_eq!(r.counters, None);
    // Unquoted single-word comment.
    let r = rule_at(&rs, 164);
    assert_eq!(r.comment(), Some("ns1/web:http"));
    assert_eq!(
        r.target,
        Some(Target::Dnat(Nat {
            to: Some("10.244.1.5:8080".into()),
            random: false,
            random_fully: false,
            persistent: false
        }))
    );
    let r = rule_at(&rs, 25);
    assert_eq!(r.comment(), Some(r#"cali:say "hi" \ to the "host""#));
    // --or-mark / --xor-mark are kept as written in restore input.
    let mm = nat
        .rules_in("KUBE-MARK-MASQ")
        .next()
        .and_then(|r| r.target.clone());
    assert_eq!(
        mm,
        Some(Target::Mark(MarkTarget {
            op: MarkOp::OrMark,
            value: 0x4000,
            mask: None
        }))
    );
    // kube-proxy deletes stale chains with -X.
    assert_eq!(
        nat.commands,
        vec![ChainCommand {
            line: 180,
            op: ChainOp::Delete,
            chain: Some("KUBE-SEP-OLDSTALE2Q3A4B5C".into())
        }]
    );
    // The header comment belongs to the first table.
    assert_eq!(rs.tables[0].comments.len(), 4);
}

#[test]
fn ipv6_save_and_restore() {
    let rs = parse_complete("netfilter/ip6tables-nft-save.txt", IP6_SAVE);
    let nat = rs.table("nat").expect("nat");
    let dnat = nat
        .rules
        .iter()
        .find_map(|r| match &r.target {
            Some(Target::Dnat(n)) => n.endpoint(),
            _ => None,
        })
        .expect("dnat");
    assert_eq!(dnat, (ip("fd00:10:244::2"), Some(53)));
    let masq = nat
        .rules_in("KUBE-SVC-TCOU7JCQXEZGVUNV")
        .next()
        .and_then(|r| r.source.clone())
        .expect("source");
    assert!(masq.negated);
    assert_eq!(masq.value.prefix_len(), 56);
    assert_eq!(masq.value.addr(), ip("fd00:10:244::"));
    let filter = rs.table("filter").expect("filter");
    assert_eq!(
        filter.rules[1].target,
        Some(Target::Reject {
            with: Some("icmp6-port-unreachable".into())
        })
    );
    parse_complete("ip6tables-restore.txt", IP6_RESTORE);
}

#[test]
fn malformed_lines_are_reported_with_their_line() {
    let text = "\
# header
*nat
:KUBE-SERVICES - [0:0]
:BROKEN - [x:y]
-A KUBE-SERVICES -m comment --comment \"unterminated -j ACCEPT
-A KUBE-SERVICES -s not-an-ip -j ACCEPT
-A KUBE-SERVICES -j ACCEPT
-A KUBE-SERVICES --dport 80 -j ACCEPT
garbage here
-A KUBE-SERVICES -m statistic --mode random --probability 7 -j X
COMMIT
-A OUTSIDE -j ACCEPT
*filter
-A INPUT -j ACCEPT
";
    let p = parse_iptables("t.txt", text);
    let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
    // 13: *filter never committed (reported at its header line).
    assert_eq!(lines, vec![4, 5, 6, 8, 9, 10, 12, 13]);
    assert_eq!(p.coverage.recognised, 6);
    let u = &p.coverage.unrecognised[1];
    assert!(u.reason.contains("unterminated"), "{u:?}");
    assert!(u.text.starts_with("-A KUBE-SERVICES -m comment"));
    assert!(p.coverage.unrecognised[3].reason.contains("--dport"));
    // The good rule and the degraded statistic rule are kept, the bad ones are not.
    let nat = p.model.table("nat").expect("nat");
    assert_eq!(
        nat.rules.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![7, 10]
    );
    let filter = p.model.table("filter").expect("filter");
    assert_eq!(filter.commit_line, None);
    assert_eq!(filter.rules.len(), 1);
}

#[test]
fn never_panics_on_junk() {
    for text in [
        "",
        "\n\n",
        "*",
        "COMMIT",
        ":",
        "*nat\n:",
        "*nat\n-A",
        "*nat\n-A X !",
        "*nat\n-A X ! !",
        "*nat\n-A X -m",
        "*nat\n-A X -j",
        "*nat\n-A X -c 1",
        "*nat\n[1:2]",
        "*nat\n[1:2",
        "*nat\n-I X 99999999999999999999 -j Y",
        "*nat\n-A X -m tcp --dport 70000",
        "*nat\n-A X -m tcp --dport 9:1",
        "*nat\n-A X -m multiport --dports ,,",
        "*nat\n-A X -m mark --mark 0xZZ",
        "*nat\n-A X -j MARK --or-mark 1/2",
        "\u{0}\u{ffff}*\"'\\",
    ] {
        let p = parse_iptables("junk", text);
        assert!(p.coverage.total() <= text.lines().count() + 1, "{text:?}");
    }
}

#[test]
fn real_files_round_trip_through_render() {
    for (path, text) in [
        ("nft", NFT_SAVE),
        ("legacy", LEGACY_SAVE),
        ("restore", RESTORE),
        ("ip6", IP6_SAVE),
    ] {
        let mut m = parse_complete(path, text).clone();
        m.renumber();
        let rendered = render_iptables(&m);
        let back = parse_complete(path, &rendered);
        assert_eq!(back, m, "{path}");
    }
}

// ---------------------------------------------------------------------------
// Property: parse(render(m)) == m for any (renumbered) model.
// ---------------------------------------------------------------------------

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_.:/+-]{0,12}"
}

fn chain_name() -> impl Strategy<Value = String> {
    // Lower-case start: never collides with a target extension name.
    "[a-z][A-Za-z0-9_-]{0,20}"
}

fn text() -> impl Strategy<Value = String> {
    // Any printable text, including quotes, backslashes and spaces.
    "[ -~]{0,30}"
}

fn neg<T: std::fmt::Debug + Clone>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Neg<T>> {
    (any::<bool>(), s).prop_map(|(n, v)| Neg::new(n, v))
}

fn cidr() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32)
            .prop_map(|(a, p)| Cidr::new(IpAddr::from(a), p).expect("prefix in range")),
        (any::<[u16; 8]>(), 0u8..=128)
            .prop_map(|(a, p)| Cidr::new(IpAddr::from(a), p).expect("prefix in range")),
    ]
}

fn port_range() -> impl Strategy<Value = PortRange> {
    (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortRange {
        first: a.min(b),
        last: a.max(b),
    })
}

fn generic_opt() -> impl Strategy<Value = Opt> {
    (
        any::<bool>(),
        "--[a-z][a-z-]{0,10}",
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(|(negated, name, args)| Opt {
            negated,
            name,
            args,
        })
}

fn a_match() -> impl Strategy<Value = Match> {
    prop_oneof![
        text().prop_map(Match::Comment),
        (
            prop::sample::select(vec!["tcp", "udp", "sctp"]),
            prop::option::of(neg(port_range())),
            prop::option::of(neg(port_range()))
        )
            .prop_map(|(p, sport, dport)| Match::Port(PortMatch {
                protocol: p.into(),
                sport,
                dport
            })),
        (
            prop::sample::select(vec![
                PortDirection::Source,
                PortDirection::Destination,
                PortDirection::Either
            ]),
            any::<bool>(),
            prop::collection::vec(port_range(), 1..4)
        )
            .prop_map(|(direction, negated, ports)| Match::Multiport(Multiport {
                direction,
                negated,
                ports
            })),
        (0.0f64..=1.0, any::<bool>()).prop_map(|(probability, negated)| Match::Statistic(
            Statistic::Random {
                probability,
                negated
            }
        )),
        (any::<u32>(), prop::option::of(any::<u32>()), any::<bool>()).prop_map(
            |(every, packet, negated)| Match::Statistic(Statistic::Nth {
                every,
                packet,
                negated
            })
        ),
        (
            prop::option::of(word()),
            prop::sample::select(vec![
                RecentAction::Set,
                RecentAction::Rcheck,
                RecentAction::Update,
                RecentAction::Remove
            ]),
            any::<bool>(),
            prop::option::of(any::<u32>()),
            any::<bool>(),
            prop::option::of(any::<u32>()),
            any::<bool>(),
            prop::option::of(word()),
            prop::option::of(prop::sample::select(vec![
                RecentSide::Source,
                RecentSide::Dest
            ]))
        )
            .prop_map(
                |(name, action, negated, seconds, reap, hitcount, rttl, mask, side)| {
                    Match::Recent(Box::new(Recent {
                        name,
                        action,
                        negated,
                        seconds,
                        reap,
                        hitcount,
                        rttl,
                        mask,
                        side,
                    }))
                }
            ),
        (any::<bool>(), any::<u32>(), prop::option::of(any::<u32>())).prop_map(
            |(negated, value, mask)| Match::Mark(MarkMatch {
                negated,
                value,
                mask
            })
        ),
        neg(prop::collection::vec("[A-Z]{3,11}", 1..4))
            .prop_map(|s| Match::Conntrack(Conntrack { ctstate: Some(s) })),
        (
            prop::option::of(neg("[A-Z]{3,9}")),
            prop::option::of(neg("[A-Z]{3,9}")),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(src_type, dst_type, limit_iface_in, limit_iface_out)| {
                Match::AddrType(Box::new(AddrType {
                    src_type,
                    dst_type,
                    limit_iface_in,
                    limit_iface_out,
                }))
            }),
        (
            any::<bool>(),
            word(),
            prop::collection::vec(prop::sample::select(vec!["src", "dst"]), 1..4)
        )
            .prop_map(|(negated, name, flags)| Match::Set(Box::new(SetMatch {
                negated,
                name,
                flags: flags.into_iter().map(String::from).collect()
            }))),
        (
            prop::option::of(neg(word())),
            prop::option::of(neg(word())),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>())
        )
            .prop_map(|(physdev_in, physdev_out, is_in, is_out, is_bridged)| {
                Match::Physdev(Box::new(Physdev {
                    physdev_in,
                    physdev_out,
                    is_in,
                    is_out,
                    is_bridged,
                }))
            }),
        word().prop_map(Match::Nfacct),
        (
            "x[a-z0-9]{0,8}",
            prop::collection::vec(generic_opt(), 0..4),
            any::<bool>()
        )
            .prop_map(
                |(module, options, unsupported_revision)| Match::Other(Box::new(GenericMatch {
                    module,
                    options,
                    unsupported_revision
                }))
            ),
    ]
}

fn nat() -> impl Strategy<Value = Nat> {
    (
        prop::option::of("[0-9.:\\[\\]a-f-]{1,20}"),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(to, random, random_fully, persistent)| Nat {
            to,
            random,
            random_fully,
            persistent,
        })
}

fn a_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Accept),
        Just(Target::Drop),
        Just(Target::Return),
        Just(Target::Queue),
        chain_name().prop_map(|c| Target::Chain(c.into())),
        nat().prop_map(Target::Dnat),
        nat().prop_map(Target::Snat),
        (
            prop::option::of("[0-9-]{1,11}"),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(to_ports, random, random_fully)| Target::Masquerade(Masquerade {
                    to_ports,
                    random,
                    random_fully
                })
            ),
        (
            prop::sample::select(vec![MarkOp::SetXmark, MarkOp::SetMark]),
            any::<u32>(),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(op, value, mask)| Target::Mark(MarkTarget { op, value, mask })),
        (
            prop::sample::select(vec![MarkOp::OrMark, MarkOp::AndMark, MarkOp::XorMark]),
            any::<u32>()
        )
            .prop_map(|(op, value)| Target::Mark(MarkTarget {
                op,
                value,
                mask: None
            })),
        prop::option::of(word()).prop_map(|with| Target::Reject { with }),
        (
            "[A-Z]{2,8}",
            prop::collection::vec(generic_opt(), 1..3),
            any::<bool>()
        )
            .prop_map(|(name, options, unsupported_revision)| Target::Other(
                GenericTarget {
                    name,
                    options,
                    unsupported_revision
                }
            )),
    ]
}

fn counters() -> impl Strategy<Value = Counters> {
    (any::<u64>(), any::<u64>()).prop_map(|(packets, bytes)| Counters { packets, bytes })
}

fn a_rule() -> impl Strategy<Value = Rule> {
    (
        (
            chain_name(),
            prop_oneof![
                Just(RuleOp::Append),
                prop::option::of(any::<u32>()).prop_map(RuleOp::Insert)
            ],
            prop::option::of(counters()),
            prop::option::of(neg("[a-z]{2,6}")),
            prop::option::of(neg(cidr())),
            prop::option::of(neg(cidr())),
        ),
        (
            prop::option::of(neg(word())),
            prop::option::of(neg(word())),
            prop::option::of(any::<bool>()),
            prop::collection::vec(a_match(), 0..4),
            prop::option::of(a_target()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (chain, op, counters, protocol, source, destination),
                (in_iface, out_iface, fragment, matches, target, goto),
            )| Rule {
                line: 0,
                chain: chain.into(),
                op,
                counters,
                protocol: protocol.map(|p| Neg::new(p.negated, p.value.into())),
                source,
                destination,
                in_iface: in_iface.map(Box::new),
                out_iface: out_iface.map(Box::new),
                fragment,
                matches,
                goto: goto && target.is_some(),
                target,
            },
        )
}

fn a_table() -> impl Strategy<Value = Table> {
    (
        prop::sample::select(vec!["filter", "nat", "mangle", "raw"]),
        prop::collection::vec("# [ -~]{0,20}", 0..2),
        prop::collection::vec(
            (
                chain_name(),
                prop::option::of(prop::sample::select(vec!["ACCEPT", "DROP"])),
                prop::option::of(counters()),
            ),
            0..4,
        ),
        prop::collection::vec(a_rule(), 0..6),
        prop::collection::vec(
            (
                prop::sample::select(vec![ChainOp::Delete, ChainOp::Flush, ChainOp::New]),
                chain_name(),
            ),
            0..2,
        ),
    )
        .prop_map(|(name, comments, chains, rules, commands)| Table {
            name: name.into(),
            line: 0,
            comments: comments
                .into_iter()
                .map(|text| CommentLine {
                    line: 0,
                    text: text.trim_end().to_string(),
                })
                .collect(),
            chains: chains
                .into_iter()
                .map(|(name, policy, counters)| Chain {
                    name,
                    line: 0,
                    policy: policy.map(String::from),
                    counters,
                })
                .collect(),
            rules,
            commands: commands
                .into_iter()
                .map(|(op, chain)| ChainCommand {
                    line: 0,
                    op,
                    chain: Some(chain),
                })
                .collect(),
            commit_line: Some(0),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_render_round_trip(tables in prop::collection::vec(a_table(), 0..3)) {
        let mut m = Ruleset { tables, trailing_comments: vec![] };
        m.renumber();
        let text = render_iptables(&m);
        let p = parse_iptables("prop", &text);
        prop_assert!(p.coverage.is_complete(), "{:?}\n{}", p.coverage.unrecognised, text);
        prop_assert_eq!(p.model, m, "{}", text);
    }
}
