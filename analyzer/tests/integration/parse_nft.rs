//! nft JSON parser against real `nft -j list ruleset` output of both kube-proxy
//! nftables shapes, loaded into a scratch netns by tests/integration/data/regen.sh.

use std::net::IpAddr;

use netsnap_analyzer::parse::nft::*;

const VMAP: &str = include_str!("data/nft-kube-proxy-vmap.json");
const DIRECT: &str = include_str!("data/nft-kube-proxy-direct.json");

fn parse_complete(path: &str, text: &str) -> NftRuleset {
    let p = parse_nft(path, text);
    assert!(
        p.coverage.is_complete(),
        "{path}: {:#?}",
        p.coverage.unrecognised
    );
    p.model
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn concat(ip: &str, proto: &str, port: i64) -> Val {
    Val::Concat(vec![
        Val::Str(ip.into()),
        Val::Str(proto.into()),
        Val::Num(port),
    ])
}

#[test]
fn vmap_form_service_to_endpoint_chains() {
    let rs = parse_complete("netfilter/nft.json", VMAP);
    assert_eq!(rs.version.as_deref(), Some("1.0.6"));
    let p = parse_nft("netfilter/nft.json", VMAP);
    // Every object of the array counted: metainfo, table, sets, maps, chains, rules.
    assert_eq!(
        p.coverage.recognised,
        1 + rs.tables.len() + rs.sets.len() + rs.chains.len() + rs.rules.len()
    );
    let t = rs.table("ip", "kube-proxy").expect("table");
    assert_eq!(t.index, 2);

    let svc_ips = rs
        .set("ip", "kube-proxy", "service-ips")
        .expect("service-ips");
    assert!(svc_ips.is_map);
    assert_eq!(
        svc_ips.key_type,
        ["ipv4_addr", "inet_proto", "inet_service"]
    );
    assert_eq!(svc_ips.data_type.as_deref(), Some("verdict"));
    let els: Vec<(Val, Verdict)> = svc_ips
        .verdict_elements()
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(els.len(), 3);
    assert!(els.contains(&(
        concat("10.96.10.10", "tcp", 80),
        Verdict::Goto("service-ULMVA6XW-ns1/web/tcp/http".into())
    )));

    let noep = rs
        .set("ip", "kube-proxy", "no-endpoint-services")
        .expect("no-endpoint-services");
    assert_eq!(
        noep.elements,
        vec![NftElement {
            key: concat("10.96.20.20", "tcp", 80),
            value: Some(Val::Verdict(Verdict::Goto("reject-chain".into()))),
            comment: Some("ns1/empty:http".into()),
        }]
    );

    let aff = rs
        .set(
            "ip",
            "kube-proxy",
            "affinity-5OJB2KTY-ns1/web/tcp/http__10.244.1.5/8080",
        )
        .expect("affinity set");
    assert_eq!(aff.flags, ["timeout"]);
    assert_eq!(aff.timeout, Some(10800));

    let base = rs
        .chain("ip", "kube-proxy", "nat-prerouting")
        .expect("chain");
    assert_eq!(base.hook.as_deref(), Some("prerouting"));
    assert_eq!(base.chain_type.as_deref(), Some("nat"));
    assert_eq!(base.prio, Some(-100));

    // services: ip daddr . meta l4proto . th dport vmap @service-ips
    let services: Vec<&NftRule> = rs.chain_rules("ip", "kube-proxy", "services").collect();
    assert_eq!(
        services[0].stmts,
        vec![Stmt::Vmap {
            key: Val::Concat(vec![
                Val::Payload {
                    protocol: "ip".into(),
                    field: "daddr".into()
                },
                Val::Meta {
                    key: "l4proto".into()
                },
                Val::Payload {
                    protocol: "th".into(),
                    field: "dport".into()
                },
            ]),
            data: Val::SetRef("service-ips".into()),
        }]
    );

    // service chain → numgen vmap → endpoint chains → dnat.
    let svc = "service-ULMVA6XW-ns1/web/tcp/http";
    let rules: Vec<&NftRule> = rs.chain_rules("ip", "kube-proxy", svc).collect();
    assert_eq!(rules.len(), 3);
    let (modulus, slots) = rules[2].numgen_vmap().expect("numgen vmap");
    assert_eq!(modulus, 3);
    let endpoints: Vec<(i64, Verdict)> = vec![
        (
            0,
            Verdict::Goto("endpoint-5OJB2KTY-ns1/web/tcp/http__10.244.1.5/8080".into()),
        ),
        (
            1,
            Verdict::Goto("endpoint-DDCFJZS2-ns1/web/tcp/http__10.244.1.6/8080".into()),
        ),
        (
            2,
            Verdict::Goto("endpoint-GQ6GGYQ3-ns1/web/tcp/http__10.244.1.7/8080".into()),
        ),
    ];
    assert_eq!(slots, endpoints);
    // Masquerade for traffic from outside the pod CIDR.
    assert!(rules[0].stmts.contains(&Stmt::Match {
        op: "!=".into(),
        left: Val::Payload {
            protocol: "ip".into(),
            field: "saddr".into()
        },
        right: Val::Prefix {
            addr: "10.244.0.0".into(),
            len: 16
        },
    }));
    assert_eq!(
        rules[0].verdicts().collect::<Vec<_>>(),
        [&Verdict::Jump("mark-for-masquerade".into())]
    );

    let kp = parse_kube_proxy_chain(svc).expect("name");
    assert_eq!(
        (
            kp.kind.as_str(),
            kp.namespace.as_str(),
            kp.service.as_str(),
            kp.protocol.as_str(),
            kp.port_name.as_str()
        ),
        ("service", "ns1", "web", "tcp", "http")
    );
    for (_, v) in &endpoints {
        let Verdict::Goto(chain) = v else { continue };
        let ep = parse_kube_proxy_chain(chain)
            .and_then(|c| c.endpoint)
            .expect("endpoint");
        let dnat: Vec<DnatTarget> = rs
            .chain_rules("ip", "kube-proxy", chain)
            .flat_map(|r| r.dnat_targets())
            .collect();
        assert_eq!(
            dnat,
            vec![DnatTarget {
                slot: None,
                addr: ep.0,
                port: Some(ep.1)
            }]
        );
    }
    let ep5: Vec<&NftRule> = rs
        .chain_rules(
            "ip",
            "kube-proxy",
            "endpoint-5OJB2KTY-ns1/web/tcp/http__10.244.1.5/8080",
        )
        .collect();
    assert!(ep5.iter().any(|r| r.stmts.iter().any(|s| matches!(s,
        Stmt::SetOp { op, set, .. } if op == "update" && set.starts_with("affinity-5OJB2KTY")))));

    // Masquerading and mark handling.
    let masq: Vec<&NftRule> = rs.chain_rules("ip", "kube-proxy", "masquerading").collect();
    assert_eq!(
        masq[0].stmts[0],
        Stmt::Match {
            op: "==".into(),
            left: Val::Binop {
                op: "&".into(),
                left: Box::new(Val::Meta { key: "mark".into() }),
                right: Box::new(Val::Num(0x4000)),
            },
            right: Val::Num(0),
        }
    );
    assert!(matches!(&masq[2].stmts[0], Stmt::Masquerade(n) if n.flags == ["fully-random"]));
    let reject: Vec<&NftRule> = rs.chain_rules("ip", "kube-proxy", "reject-chain").collect();
    assert_eq!(
        reject[0].stmts,
        vec![Stmt::Reject {
            kind: Some("icmp".into()),
            code: Some("port-unreachable".into())
        }]
    );
    let cic: Vec<&NftRule> = rs
        .chain_rules("ip", "kube-proxy", "cluster-ips-check")
        .collect();
    assert_eq!(
        cic[1].comment.as_deref(),
        Some("Drop traffic to unallocated ClusterIPs")
    );
}

#[test]
fn direct_dnat_numgen_map_form() {
    let rs = parse_complete("netfilter/nft.json", DIRECT);
    let rules: Vec<&NftRule> = rs
        .chain_rules("ip", "kube-proxy", "service-ULMVA6XW-ns1/web/tcp/http")
        .collect();
    let targets = rules[1].dnat_targets();
    assert_eq!(
        targets,
        vec![
            DnatTarget {
                slot: Some(0),
                addr: ip("10.244.1.5"),
                port: Some(8080)
            },
            DnatTarget {
                slot: Some(1),
                addr: ip("10.244.1.6"),
                port: Some(8080)
            },
            DnatTarget {
                slot: Some(2),
                addr: ip("10.244.1.7"),
                port: Some(8080)
            },
        ]
    );
    match &rules[1].stmts[1] {
        Stmt::Dnat(n) => {
            assert_eq!(n.family.as_deref(), Some("ip"));
            assert!(matches!(&n.addr, Some(Val::Map { key, .. })
                if **key == Val::Numgen { mode: "random".into(), modulus: 3, offset: 0 }));
        }
        s => panic!("{s:?}"),
    }
    let dns: Vec<DnatTarget> = rs
        .chain_rules(
            "ip",
            "kube-proxy",
            "service-FY5PMXPG-kube-system/kube-dns/udp/dns",
        )
        .flat_map(|r| r.dnat_targets())
        .collect();
    assert_eq!(dns.len(), 2);
    assert_eq!(dns[1].addr, ip("10.244.0.3"));
    // A no-endpoint service mapped straight to drop.
    let noep = rs
        .set("ip", "kube-proxy", "no-endpoint-services")
        .expect("map");
    assert_eq!(noep.elements[0].value, Some(Val::Verdict(Verdict::Drop)));
    assert_eq!(noep.elements[0].comment.as_deref(), Some("ns1/empty:http"));
    // One rule with several statements in a row.
    let post: Vec<&NftRule> = rs
        .chain_rules("ip", "kube-proxy", "nat-postrouting")
        .collect();
    assert_eq!(post[0].stmts.len(), 3);
}

#[test]
fn never_panics_on_junk() {
    for text in [
        "",
        "null",
        "[]",
        "{}",
        "{\"nftables\": 3}",
        "{\"nftables\": [1, \"x\", null, {}, {\"a\":1,\"b\":2}]}",
        "{\"nftables\": [{\"rule\": {}}]}",
        "{\"nftables\": [{\"rule\": {\"family\":\"ip\",\"table\":\"t\",\"chain\":\"c\",\"expr\":[{\"dnat\":{\"addr\":{\"map\":{}}}}]}}]}",
        "{\"nftables\": [{\"set\": {\"family\":\"ip\",\"table\":\"t\",\"name\":\"s\",\"elem\":[[1],{\"elem\":{}}]}}]}",
    ] {
        let p = parse_nft("junk", text);
        for r in &p.model.rules {
            let _ = r.dnat_targets();
            let _ = r.numgen_vmap();
        }
        assert!(p.coverage.total() <= 5, "{text}");
    }
}
