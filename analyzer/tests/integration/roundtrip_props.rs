//! parse(render(model)) == model for conntrack entries and the ip_vs table, over
//! generated models in every shape the kernel prints (the iptables round trip lives in
//! parse_iptables.rs).

use netsnap_analyzer::parse::conntrack::{
    parse_conntrack, render_entry, CtEntry, CtExtra, CtState, CtTuple, Icmp, L4Proto,
};
use netsnap_analyzer::parse::ipvs::{
    parse_ipvs, render_ip_vs_proc, IpvsDest, IpvsService, IpvsTable,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ip(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|n| IpAddr::V6(Ipv6Addr::from(n)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .boxed()
    }
}

fn counters() -> impl Strategy<Value = (Option<u64>, Option<u64>)> {
    prop_oneof![
        Just((None, None)),
        (any::<u64>(), any::<u64>()).prop_map(|(p, b)| (Some(p), Some(b)))
    ]
}

/// A tuple with ports (tcp/udp/sctp) or an ICMP triple, and optional accounting.
fn tuple(v6: bool, icmp: bool, acct: bool) -> impl Strategy<Value = CtTuple> {
    (
        ip(v6),
        ip(v6),
        any::<u16>(),
        any::<u16>(),
        any::<(u8, u8, u16)>(),
        counters(),
    )
        .prop_map(
            move |(src, dst, sport, dport, (kind, code, id), (packets, bytes))| CtTuple {
                src,
                dst,
                sport: (!icmp).then_some(sport),
                dport: (!icmp).then_some(dport),
                icmp: icmp.then_some(Icmp { kind, code, id }),
                packets: packets.filter(|_| acct),
                bytes: bytes.filter(|_| acct),
            },
        )
}

fn entry() -> impl Strategy<Value = CtEntry> {
    let shape = (any::<bool>(), 0..4usize, any::<bool>(), any::<bool>());
    shape.prop_flat_map(|(v6, proto, proc_form, acct)| {
        let (protocol, protonum, icmp, states): (L4Proto, u8, bool, &[CtState]) = match proto {
            0 => (
                L4Proto::Tcp,
                6,
                false,
                &[
                    CtState::Established,
                    CtState::TimeWait,
                    CtState::SynSent,
                    CtState::Close,
                ],
            ),
            1 => (L4Proto::Udp, 17, false, &[]),
            2 if v6 => (L4Proto::Icmpv6, 58, true, &[]),
            2 => (L4Proto::Icmp, 1, true, &[]),
            _ => (
                L4Proto::Sctp,
                132,
                false,
                &[CtState::Established, CtState::CookieWait, CtState::Closed],
            ),
        };
        let state = if states.is_empty() {
            Just(None).boxed()
        } else {
            proptest::sample::select(states.to_vec())
                .prop_map(Some)
                .boxed()
        };
        let flags = any::<(bool, bool, bool, bool)>();
        let tails = (
            any::<Option<u32>>(),
            any::<Option<u16>>(),
            any::<Option<u32>>(),
            any::<bool>(),
        );
        (
            tuple(v6, icmp, acct),
            tuple(v6, icmp, acct),
            state,
            any::<u32>(),
            flags,
            tails,
        )
            .prop_map(
                move |(
                    original,
                    reply,
                    state,
                    timeout,
                    (unreplied, assured, offload, hw),
                    (mark, zone, use_count, secctx),
                )| {
                    CtEntry {
                        line: 1,
                        l3num: proc_form.then_some(if v6 { 10 } else { 2 }),
                        protocol,
                        protonum,
                        timeout,
                        state,
                        original,
                        reply,
                        unreplied,
                        assured,
                        offload,
                        hw_offload: hw,
                        mark,
                        zone,
                        use_count,
                        extra: secctx.then(|| {
                            Box::new(CtExtra {
                                secctx: Some("system_u:object_r:unlabeled_t:s0".into()),
                                fields: vec![],
                            })
                        }),
                    }
                },
            )
    })
}

fn dest(v6: bool) -> impl Strategy<Value = IpvsDest> {
    (
        ip(v6),
        any::<u16>(),
        proptest::sample::select(vec!["Masq", "Local", "Tunnel", "Route"]),
        0..1000i32,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(addr, port, fwd, weight, active, inactive)| IpvsDest {
            line: 0,
            addr,
            port,
            forward: fwd.into(),
            weight,
            active,
            inactive,
        })
}

fn service() -> impl Strategy<Value = IpvsService> {
    (any::<bool>(), 0..4usize).prop_flat_map(|(v6, kind)| {
        let fwm = kind == 3;
        (
            ip(v6),
            any::<u16>(),
            any::<u32>(),
            proptest::sample::select(vec!["rr", "wrr", "lc", "sh", "mh"]),
            any::<bool>(),
            proptest::option::of(1..100_000u32),
            proptest::collection::vec(dest(v6), 0..5),
        )
            .prop_map(
                move |(addr, port, mark, sched, ops, persistent, destinations)| IpvsService {
                    line: 0,
                    protocol: ["TCP", "UDP", "SCTP", "FWM"][kind].into(),
                    addr: (!fwm).then_some(addr),
                    port: (!fwm).then_some(port),
                    fwmark: fwm.then_some(mark),
                    scheduler: sched.into(),
                    ops,
                    persistent,
                    netmask: persistent.map(|_| "FFFFFFFF".to_string()),
                    flags: vec![],
                    destinations,
                },
            )
    })
}

fn without_lines(mut t: IpvsTable) -> IpvsTable {
    for s in &mut t.services {
        s.line = 0;
        for d in &mut s.destinations {
            d.line = 0;
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conntrack_entry_round_trips(e in entry()) {
        let text = render_entry(&e);
        let parsed = parse_conntrack("conntrack/nf_conntrack.txt", &format!("{text}\n"));
        prop_assert!(parsed.coverage.is_complete(), "{text}: {:?}", parsed.coverage.unrecognised);
        prop_assert_eq!(parsed.model.entries.len(), 1);
        prop_assert_eq!(&parsed.model.entries[0], &e, "{}", text);
    }

    #[test]
    fn ip_vs_table_round_trips(services in proptest::collection::vec(service(), 0..6)) {
        // An empty table cannot tell its format; any other table is hex (/proc form).
        let table = IpvsTable {
            format: (!services.is_empty()).then_some(netsnap_analyzer::parse::ipvs::IpvsFormat::ProcHex),
            version: Some("1.2.1".into()),
            conn_table_size: Some(4096),
            services,
        };
        let text = render_ip_vs_proc(&table);
        let parsed = parse_ipvs("ipvs/ip_vs.txt", &text);
        prop_assert!(parsed.coverage.is_complete(), "{text}: {:?}", parsed.coverage.unrecognised);
        prop_assert_eq!(without_lines(parsed.model), table, "{}", text);
    }
}
