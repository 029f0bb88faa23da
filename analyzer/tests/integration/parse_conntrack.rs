//! Conntrack parsers against real /proc/net/nf_conntrack, `conntrack -L` and
//! /proc/net/stat/nf_conntrack output captured in a scratch netns (tests/integration/data/regen.sh).

use std::net::IpAddr;

use netsnap_analyzer::parse::conntrack::*;
use netsnap_analyzer::parse::ct_stat::parse_ct_stat;

const PROC: &str = include_str!("data/proc-nf_conntrack.txt");
const TOOL: &str = include_str!("data/conntrack-L.txt");
const STAT: &str = include_str!("data/stat-nf_conntrack.txt");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn complete(path: &str, text: &str) -> ConntrackTable {
    let p = parse_conntrack(path, text);
    assert!(
        p.coverage.is_complete(),
        "{path}: {:#?}",
        p.coverage.unrecognised
    );
    assert_eq!(p.coverage.recognised, text.lines().count());
    p.model
}

fn by_sport(t: &ConntrackTable, sport: u16) -> &CtEntry {
    t.entries
        .iter()
        .find(|e| e.original.sport == Some(sport))
        .unwrap_or_else(|| panic!("no entry with sport {sport}"))
}

#[test]
fn proc_format_ipv4_ipv6_tcp_udp_icmp_sctp() {
    let t = complete("conntrack/nf_conntrack.txt", PROC);
    assert_eq!(t.entries.len(), PROC.lines().count());

    // DNATed, ASSURED, marked TCP flow with accounting.
    let e = by_sport(&t, 40000);
    assert_eq!(e.l3num, Some(2));
    assert_eq!((e.protocol, e.protonum), (L4Proto::Tcp, 6));
    assert_eq!(e.state, Some(CtState::Established));
    assert!(e.timeout > 431_000, "{}", e.timeout);
    assert_eq!(e.original.src, ip("10.244.1.3"));
    assert_eq!(e.original.dst, ip("10.96.10.10"));
    assert_eq!(e.original.dport, Some(80));
    assert_eq!(e.reply.src, ip("10.244.1.5"));
    assert_eq!(e.reply.sport, Some(8080));
    assert_eq!(e.real_dst(), ip("10.244.1.5"));
    assert!(e.is_dnat());
    assert!(!e.is_snat());
    assert!(e.assured && e.unreplied);
    assert_eq!(e.mark, Some(16384));
    assert_eq!(e.zone, Some(0));
    assert_eq!(e.use_count, Some(2));
    assert_eq!((e.original.packets, e.original.bytes), (Some(0), Some(0)));

    let e = by_sport(&t, 51000);
    assert_eq!(e.state, Some(CtState::TimeWait));
    assert_eq!(e.reply.src, ip("192.168.49.2"));

    // UDP in a zone.
    let e = t
        .entries
        .iter()
        .find(|e| e.zone == Some(7))
        .expect("zone 7 entry");
    assert_eq!(e.protocol, L4Proto::Udp);
    assert_eq!(e.state, None);
    assert_eq!(e.original.dport, Some(53));

    // ICMP: type/code/id instead of ports.
    let e = t
        .entries
        .iter()
        .find(|e| e.protocol == L4Proto::Icmp)
        .expect("icmp");
    assert_eq!(e.protonum, 1);
    assert_eq!(e.original.sport, None);
    assert_eq!(
        e.original.icmp,
        Some(Icmp {
            kind: 8,
            code: 0,
            id: 1234
        })
    );
    assert_eq!(e.reply.icmp.map(|i| i.kind), Some(0));

    // SCTP state.
    let e = t
        .entries
        .iter()
        .find(|e| e.protocol == L4Proto::Sctp)
        .expect("sctp");
    assert_eq!((e.protonum, e.state), (132, Some(CtState::Established)));

    // IPv6 with leading zeros (the kernel prints all groups).
    let e = by_sport(&t, 33000);
    assert_eq!(e.l3num, Some(10));
    assert_eq!(e.original.src, ip("2001:db8::1"));
    assert_eq!(e.reply.src, ip("2001:db8::2"));
    let e = t
        .entries
        .iter()
        .find(|e| e.original.dst == ip("fd00:10:96::a"))
        .expect("v6 dns");
    assert_eq!(e.reply.src, ip("fd00:10:244::2"));
    assert!(PROC.contains("fd00:0010:0096:0000:0000:0000:0000:000a"));
}

#[test]
fn conntrack_tool_format_matches_proc() {
    let tool = complete("conntrack-L.txt", TOOL);
    let proc = complete("nf_conntrack.txt", PROC);
    assert_eq!(tool.entries.len(), proc.entries.len());
    let e = by_sport(&tool, 40000);
    assert_eq!(e.l3num, None);
    assert_eq!(e.zone, None); // the tool prints zone= only when non-zero
    assert_eq!(e.use_count, Some(1));
    let p = by_sport(&proc, 40000);
    assert_eq!((e.original, e.reply, e.mark), (p.original, p.reply, p.mark));
    assert_eq!(by_sport(&tool, 33000).original.src, ip("2001:db8::1"));
}

#[test]
fn tool_summary_line_is_recognised() {
    let text =
        format!("{TOOL}conntrack v1.4.7 (conntrack-tools): 9 flow entries have been shown.\n");
    let t = complete("x", &text);
    assert_eq!(t.reported_count, Some(9));
}

#[test]
fn secctx_offload_and_extra_fields() {
    let line = "ipv4     2 tcp      6 86399 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [OFFLOAD] mark=0 secctx=system_u:object_r:unlabeled_t:s0 zone=3 use=2 labels=0x1\n";
    let t = complete("x", line);
    let e = &t.entries[0];
    assert!(e.offload && !e.assured && !e.unreplied);
    assert_eq!(e.secctx(), Some("system_u:object_r:unlabeled_t:s0"));
    assert_eq!(e.zone, Some(3));
    assert_eq!(e.extra_fields(), ["labels=0x1".to_string()]);
    let t = complete(
        "x",
        "tcp      6 10 WEIRD_NEW_STATE src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 use=1\n",
    );
    assert_eq!(t.entries[0].state, Some(CtState::Other));
    assert_eq!(t.entries[0].extra_fields(), ["WEIRD_NEW_STATE".to_string()]);
    assert_eq!(t.entries[0].secctx(), None);
}

#[test]
fn malformed_lines_are_reported_with_their_line() {
    let text = "\
ipv4     2 udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 mark=0 zone=0 use=2
ipv4     2 tcp      6 x ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1

ipv4     2 udp      17 29 src=10.0.0.999 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1
ipv4     2 udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=99999 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1
hello world
";
    let p = parse_conntrack("c", text);
    let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
    assert_eq!(lines, vec![2, 3, 5, 6, 7]);
    assert_eq!(p.coverage.recognised, 2);
    assert!(p.coverage.unrecognised[0].reason.contains("two tuples"));
    assert!(p.coverage.unrecognised[1].reason.contains("timeout"));
    assert!(p.coverage.unrecognised[2].reason.contains("10.0.0.999"));
    assert_eq!(p.model.entries.len(), 1);
    assert_eq!(p.model.entries[0].line, 1);
}

#[test]
fn chunked_parse_equals_whole_parse() {
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(PROC);
        text.push_str("bad line\n");
        // Summary lines here and there (a paste of several `conntrack -L` runs): the
        // file's last one counts, wherever the chunks are cut.
        if i % 20 == 5 {
            text.push_str(&format!(
                "conntrack v1.4.7 (conntrack-tools): {i} flow entries have been shown.\n"
            ));
        }
    }
    let whole = parse_conntrack("c", &text);
    assert_eq!(whole.model.reported_count, Some(45));
    // Up to one chunk per line: then some chunks hold a summary line and no entry.
    for n in [1, 2, 3, 7, 64, text.lines().count()] {
        let parts: Vec<_> = split_chunks(&text, n)
            .into_iter()
            .rev() // order must not matter
            .map(|(first, chunk)| (first, parse_conntrack_lines("c", chunk, first)))
            .collect();
        let merged = merge("c", parts);
        assert_eq!(merged, whole, "{n} chunks");
    }
    assert_eq!(whole.coverage.unrecognised.len(), 50);
    assert_eq!(
        whole.coverage.unrecognised[0].line,
        PROC.lines().count() + 1
    );
}

/// A large synthetic table in the kernel's format (IPv4 and IPv6) parses completely.
/// Speed is measured by the benchmarks, not asserted here.
#[test]
fn large_table_parses_completely() {
    let n = 200_000;
    let mut text = String::with_capacity(n * 260);
    for i in 0..n {
        let (a, b) = ((i >> 8) & 255, i & 255);
        if i % 10 == 0 {
            text.push_str(&format!(
                "ipv6     10 udp      17 29 src=fd00:0010:0244:0000:0000:0000:{a:04x}:{b:04x} dst=fd00:0010:0096:0000:0000:0000:0000:000a sport={} dport=53 packets=1 bytes=80 [UNREPLIED] src=fd00:0010:0244:0000:0000:0000:0000:0002 dst=fd00:0010:0244:0000:0000:0000:{a:04x}:{b:04x} sport=53 dport={} packets=0 bytes=0 mark=0 zone=0 use=2\n",
                1024 + i % 60000, 1024 + i % 60000
            ));
        } else {
            text.push_str(&format!(
                "ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.{a}.{b} dst=10.96.10.10 sport={} dport=80 packets=12 bytes=3456 src=10.244.1.5 dst=10.244.{a}.{b} sport=8080 dport={} packets=10 bytes=9999 [ASSURED] mark=0 zone=0 use=2\n",
                1024 + i % 60000, 1024 + i % 60000
            ));
        }
    }
    let p = parse_conntrack("big", &text);
    assert!(p.coverage.is_complete());
    assert_eq!(p.model.entries.len(), n);
    assert_eq!(p.model.entries[n - 1].line, n);
}

#[test]
fn stat_by_header_name() {
    let p = parse_ct_stat("conntrack/stat.txt", STAT);
    assert!(p.coverage.is_complete(), "{:?}", p.coverage.unrecognised);
    let s = p.model;
    assert_eq!(s.columns[0], "entries");
    assert_eq!(s.columns.len(), 17);
    assert_eq!(s.cpus.len(), 2);
    // `entries` is the table size repeated per CPU: taken once, not summed.
    assert_eq!(s.entries(), Some(0xb));
    let row_sum = |name: &str| {
        let i = s.columns.iter().position(|c| c == name).expect("column");
        s.cpus.iter().map(|r| r.values[i]).sum::<u64>()
    };
    assert_eq!(s.get("insert"), Some(row_sum("insert")));
    assert_eq!(s.get("insert"), Some(8));
    assert_eq!(s.get("drop"), Some(0));
    assert_eq!(s.clash_resolve(), Some(0));
    assert_eq!(s.get("search_restart"), Some(0));
    assert_eq!(s.get("no_such_column"), None);
}

#[test]
fn stat_columns_of_an_older_kernel() {
    // 4.x layout: different columns, order and count; values summed per name.
    let text = "\
entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00000100  00000000 00000010 00000000 00000002 00000000 00000000 00000000 00000000 00000003 00000001 00000000 00000000  00000000 00000000 00000000 00000000
00000100  00000000 00000020 00000000 00000001 00000000 00000000 00000000 00000000 00000004 00000001 00000002 00000000  00000000 00000000 00000000 00000000
00000100  00000000 00000020 00000000 00000001
";
    let p = parse_ct_stat("s", text);
    assert_eq!(p.coverage.unrecognised.len(), 1);
    assert_eq!(p.coverage.unrecognised[0].line, 4);
    let s = p.model;
    assert_eq!(s.entries(), Some(0x100));
    assert_eq!(s.get("found"), Some(0x30));
    assert_eq!(s.get("insert_failed"), Some(7));
    assert_eq!(s.get("drop"), Some(2));
    assert_eq!(s.get("early_drop"), Some(2));
    assert_eq!(s.clash_resolve(), None);
}
