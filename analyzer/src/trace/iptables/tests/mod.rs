//! Runs of small hand-written saves, parsed with the crate's own parser.

mod semantics;
mod shapes;

use std::net::IpAddr;

use super::*;
use crate::parse::ipset::parse_ipset;
use crate::parse::iptables::parse_iptables;
use crate::trace::packet::{trimmed, CtState, Proto, Step};

const PATH: &str = "netfilter/iptables-nft-save.txt";
const IPSET_PATH: &str = "netfilter/ipset-save.txt";

fn file(text: &str) -> IptablesFile {
    let parsed = parse_iptables(PATH, text);
    assert!(parsed.coverage.is_complete(), "{:?}", parsed.coverage);
    IptablesFile {
        path: PATH.into(),
        backend: Proxier::IptablesNft,
        ipv6: false,
        ruleset: parsed.model,
    }
}

fn ipsets(text: &str) -> IpsetSave {
    let parsed = parse_ipset(IPSET_PATH, text);
    assert!(parsed.coverage.is_complete(), "{:?}", parsed.coverage);
    parsed.model
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A NEW TCP packet.
fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        src: ip(src),
        dst: ip(dst),
        proto: Proto::Tcp,
        sport,
        dport,
        size: 60,
        mark: 0,
        ct_mark: 0,
        ct: CtState::New,
        ct_dnat: false,
        ct_snat: false,
        iif: None,
        oif: None,
        physdev_in: None,
        physdev_out: None,
        bridged: false,
    }
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        proto: Proto::Udp,
        ..tcp(src, sport, dst, dport)
    }
}

fn icmp(src: &str, dst: &str) -> Packet {
    Packet {
        proto: Proto::Icmp,
        ..tcp(src, 0, dst, 0)
    }
}

fn via(mut p: Packet, iif: Option<&str>, oif: Option<&str>) -> Packet {
    p.iif = iif.map(str::to_string);
    p.oif = oif.map(str::to_string);
    p
}

/// The node: eth0 10.0.0.10/24, cni0 10.244.1.1/24, docker0 172.17.0.1/16, lo.
fn facts() -> NetnsFacts {
    let mut f = NetnsFacts::default();
    for (dev, addrs) in [
        ("lo", &["127.0.0.1", "::1"][..]),
        ("eth0", &["10.0.0.10", "fd00::10"][..]),
        ("cni0", &["10.244.1.1"][..]),
        ("docker0", &["172.17.0.1"][..]),
        ("br-abc", &["172.18.0.1"][..]),
    ] {
        f.iface_addrs
            .insert(dev.to_string(), addrs.iter().map(|a| ip(a)).collect());
    }
    f.broadcast = vec![ip("10.0.0.255"), ip("10.244.1.255")];
    f.first_global_v4 = Some(ip("10.0.0.10"));
    f
}

fn chain(table: &str, chain: &str) -> HookChain {
    HookChain {
        ruleset: 0,
        table: table.into(),
        chain: chain.into(),
        priority: 0,
        nat: table == "nat",
    }
}

/// Runs `table/chain` and checks the branch probabilities add up to 1, and that a run
/// for the deciding step only (or none) gives the same branches with that step.
fn run(rs: &IptablesRuleset<'_>, table: &str, ch: &str, p: &Packet) -> Vec<HookBranch> {
    let out = rs.run(&chain(table, ch), p, &facts(), Detail::Every);
    for detail in [Detail::Deciding, Detail::Verdicts] {
        let less = rs.run(&chain(table, ch), p, &facts(), detail);
        assert_eq!(less, trimmed(&out, detail), "{detail:?} differs from Every");
    }
    let total: f64 = out.iter().map(|b| b.probability).sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "probabilities add to {total}: {out:#?}"
    );
    out
}

/// The single branch of a run that does not split.
fn one(rs: &IptablesRuleset<'_>, table: &str, ch: &str, p: &Packet) -> HookBranch {
    let mut out = run(rs, table, ch, p);
    assert_eq!(out.len(), 1, "{out:#?}");
    out.remove(0)
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the save"))
        + 1
}

fn whats(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.what.as_str()).collect()
}

fn unknown_reason(b: &HookBranch) -> &str {
    match &b.outcome {
        HookOutcome::Unknown { reason } => reason,
        other => panic!("expected Unknown, got {other:?}: {b:#?}"),
    }
}
