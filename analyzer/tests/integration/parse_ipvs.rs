//! IPVS parsers against fixtures written in the kernel's exact seq_printf formats
//! (ip_vs_ctl.c, ip_vs_conn.c) and ipvsadm's: this kernel has no IPVS.

use std::net::IpAddr;

use netsnap_analyzer::parse::ipvs::*;

const PROC: &str = include_str!("data/ip_vs.txt");
const IPVSADM: &str = include_str!("data/ipvsadm-Ln.txt");
const STATS: &str = include_str!("data/ip_vs_stats.txt");
const CONN: &str = include_str!("data/ip_vs_conn.txt");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn complete(path: &str, text: &str) -> IpvsTable {
    let p = parse_ipvs(path, text);
    assert!(
        p.coverage.is_complete(),
        "{path}: {:#?}",
        p.coverage.unrecognised
    );
    assert_eq!(p.coverage.recognised, text.lines().count());
    p.model
}

#[test]
fn proc_hex_form() {
    let t = complete("ipvs/ip_vs.txt", PROC);
    assert_eq!(t.format, Some(IpvsFormat::ProcHex));
    assert_eq!(t.version.as_deref(), Some("1.2.1"));
    assert_eq!(t.conn_table_size, Some(4096));
    assert_eq!(t.services.len(), 8);

    let s = &t.services[0];
    assert_eq!(s.line, 4);
    assert_eq!(
        (s.protocol.as_str(), s.addr, s.port),
        ("TCP", Some(ip("10.96.0.1")), Some(443))
    );
    assert_eq!(s.scheduler, "rr");
    assert_eq!(
        s.destinations,
        vec![IpvsDest {
            line: 5,
            addr: ip("192.168.49.2"),
            port: 6443,
            forward: "Masq".into(),
            weight: 1,
            active: 3,
            inactive: 0
        }]
    );

    let web = t.service(ip("10.96.10.10"), 80, "tcp").expect("web");
    assert_eq!(web.destinations.len(), 3);
    assert_eq!(web.destinations[1].addr, ip("10.244.1.6"));
    assert_eq!(web.destinations[1].port, 8080);
    assert_eq!(
        (web.destinations[1].weight, web.destinations[1].active),
        (0, 5)
    );

    let empty = t
        .service(ip("10.96.20.20"), 80, "TCP")
        .expect("no endpoints");
    assert!(empty.destinations.is_empty());

    let pers = t.service(ip("10.96.30.30"), 80, "TCP").expect("persistent");
    assert_eq!(pers.persistent, Some(10800));
    assert_eq!(pers.netmask.as_deref(), Some("FFFFFFFF"));

    let v6 = t.service(ip("fd00:10:96::a"), 53, "UDP").expect("v6");
    assert_eq!(v6.destinations[0].addr, ip("fd00:10:244::2"));
    assert_eq!(v6.destinations[0].port, 53);

    let fwm = &t.services[6];
    assert_eq!(
        (fwm.protocol.as_str(), fwm.fwmark, fwm.addr),
        ("FWM", Some(100), None)
    );
    assert!(fwm.ops);

    let sctp = &t.services[7];
    assert_eq!((sctp.scheduler.as_str(), sctp.ops), ("sh", true));
    assert_eq!(sctp.destinations[0].forward, "Route");
}

#[test]
fn ipvsadm_text_gives_the_same_table() {
    let a = complete("ipvsadm-Ln.txt", IPVSADM);
    let p = complete("ip_vs.txt", PROC);
    assert_eq!(a.format, Some(IpvsFormat::Ipvsadm));
    assert_eq!(a.services.len(), p.services.len());
    for (x, y) in a.services.iter().zip(&p.services) {
        assert_eq!(
            (x.line, &x.protocol, x.addr, x.port, x.fwmark),
            (y.line, &y.protocol, y.addr, y.port, y.fwmark)
        );
        assert_eq!(
            (x.persistent, x.ops, &x.scheduler),
            (y.persistent, y.ops, &y.scheduler)
        );
        assert_eq!(x.destinations, y.destinations);
    }
}

#[test]
fn malformed_lines_are_reported_with_their_line() {
    let text = "\
IP Virtual Server version 1.2.1 (size=4096)
  -> 0AF40105:1F90      Masq    1      0          0
TCP  0A600A0A:0050 rr
  -> 0AF40105:ZZZZ      Masq    1      0          0
  -> 0AF40106:1F90      Masq    1      0
ICMP 0A600A0A:0050 rr
TCP  0A600A0A:0050 rr  bogus
  -> 0AF40107:1F90      Masq    1      0          0
";
    let p = parse_ipvs("x", text);
    let lines: Vec<usize> = p.coverage.unrecognised.iter().map(|u| u.line).collect();
    assert_eq!(lines, vec![2, 4, 5, 6, 7]);
    assert!(p.coverage.unrecognised[0]
        .reason
        .contains("before any service"));
    assert_eq!(p.model.services.len(), 1);
    // The last destination follows a bad service line, so it joins the previous service.
    assert_eq!(p.model.services[0].destinations.len(), 1);
}

#[test]
fn stats_totals_and_rates() {
    let p = parse_ipvs_stats("ipvs/ip_vs_stats.txt", STATS);
    assert!(p.coverage.is_complete(), "{:?}", p.coverage.unrecognised);
    let s = p.model;
    assert_eq!(s.conns, 0x1A2);
    assert_eq!(s.in_packets, 0x3E80);
    assert_eq!(s.out_bytes, 0x5DC000);
    assert_eq!(s.conns_per_sec, 3);
    assert_eq!(s.out_bytes_per_sec, 0x6000);
}

#[test]
fn connections() {
    let p = parse_ipvs_conn("ipvs/ip_vs_conn.txt", CONN);
    assert!(p.coverage.is_complete(), "{:?}", p.coverage.unrecognised);
    let c = &p.model.conns;
    assert_eq!(c.len(), 5);
    assert_eq!(c[0].line, 2);
    assert_eq!(c[0].client, (ip("10.244.1.3"), 40000));
    assert_eq!(c[0].virtual_addr, (ip("10.96.10.10"), 80));
    assert_eq!(c[0].dest, (ip("10.244.1.6"), 8080));
    assert_eq!((c[0].state.as_str(), c[0].expires), ("ESTABLISHED", 899));
    assert_eq!(c[3].dest, (ip("fd00:10:244::2"), 53));
    assert_eq!(c[4].pe_name.as_deref(), Some("sip"));
    assert_eq!(c[4].pe_data.as_deref(), Some("4a7f1b2c@10.0.0.1"));
    let bad = parse_ipvs_conn("x", "Pro FromIP\nTCP 0AF40103 9C40\n");
    assert_eq!(bad.coverage.unrecognised[0].line, 2);
}
