//! From real `nft -j list ruleset` output (testdata/*.nft loaded with nft 1.0.6 in a
//! throwaway network namespace; each .nft says how), plus hand-written JSON for what
//! the kernel refuses to load (loops) or nft cannot write here.

mod handwritten;
mod inet;
mod kube_proxy;
mod nat;

use super::*;
use crate::parse::nft::parse_nft;
use crate::trace::packet::{CtState, Proto};

const KUBE: &str = include_str!("../../testdata/kube-proxy.json");
const INET: &str = include_str!("../../testdata/inet-filter.json");
const MISC: &str = include_str!("../../testdata/nat-misc.json");
const PATH: &str = "netfilter/nft.json";

fn file(json: &str) -> NftFile {
    let p = parse_nft(PATH, json);
    assert!(
        p.coverage.unrecognised.is_empty(),
        "{:?}",
        p.coverage.unrecognised
    );
    NftFile {
        path: PATH.into(),
        ruleset: p.model,
    }
}

fn packet(proto: Proto, src: &str, dst: &str, dport: u16) -> Packet {
    Packet {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto,
        sport: if proto == Proto::Icmp { 0 } else { 40000 },
        dport: if proto == Proto::Icmp { 0 } else { dport },
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

fn tcp(src: &str, dst: &str, dport: u16) -> Packet {
    packet(Proto::Tcp, src, dst, dport)
}

fn udp(src: &str, dst: &str, dport: u16) -> Packet {
    packet(Proto::Udp, src, dst, dport)
}

fn icmp(src: &str, dst: &str) -> Packet {
    packet(Proto::Icmp, src, dst, 0)
}

fn via(mut p: Packet, iif: Option<&str>, oif: Option<&str>) -> Packet {
    p.iif = iif.map(str::to_string);
    p.oif = oif.map(str::to_string);
    p
}

fn with_ct(mut p: Packet, ct: CtState) -> Packet {
    p.ct = ct;
    p
}

fn facts(ifaces: &[(&str, &[&str])]) -> NetnsFacts {
    NetnsFacts {
        iface_addrs: ifaces
            .iter()
            .map(|(i, a)| {
                (
                    i.to_string(),
                    a.iter().map(|x| x.parse().unwrap()).collect(),
                )
            })
            .collect(),
        broadcast: Vec::new(),
        first_global_v4: None,
        sockets: None,
    }
}

fn no_facts() -> NetnsFacts {
    NetnsFacts::default()
}

/// The base chain `name` (or `family table/name`) on `hook`, and its run;
/// probabilities must add up to 1.
fn run(ev: &NftEval<'_>, hook: Hook, name: &str, p: &Packet, f: &NetnsFacts) -> Vec<HookBranch> {
    let chains = ev.hook_chains(hook, p.is_v6());
    let (table, name) = match name.split_once('/') {
        Some((t, c)) => (Some(t), c),
        None => (None, name),
    };
    let chain = chains
        .iter()
        .find(|c| c.chain == name && table.is_none_or(|t| t == c.table))
        .unwrap_or_else(|| panic!("no base chain {name} on {hook:?}: {chains:?}"));
    let out = ev.run(chain, p, f, Detail::Every);
    for detail in [Detail::Deciding, Detail::Verdicts] {
        let less = ev.run(chain, p, f, detail);
        let want = crate::trace::packet::trimmed(&out, detail);
        assert_eq!(less, want, "{detail:?} differs from Every");
    }
    let total: f64 = out.iter().map(|b| b.probability).sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "probabilities add up to {total}"
    );
    out
}

/// The one branch of a run without a split.
fn one(mut branches: Vec<HookBranch>) -> HookBranch {
    assert_eq!(branches.len(), 1, "{branches:#?}");
    branches.remove(0)
}

fn whats(b: &HookBranch) -> Vec<&str> {
    b.steps.iter().map(|s| s.what.as_str()).collect()
}

fn sock(b: &HookBranch) -> String {
    format!("{}:{}", b.packet.dst, b.packet.dport)
}

fn is_unknown(b: &HookBranch) -> bool {
    matches!(b.outcome, HookOutcome::Unknown { .. })
}

fn reject(with: &str) -> HookOutcome {
    HookOutcome::Reject { with: with.into() }
}
