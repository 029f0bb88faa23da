//! What a matched rule's target does: a verdict, a jump, a rewrite of the packet (NAT,
//! marks) or nothing that changes its path. The runner records the steps and moves
//! through the chains; this module only decides and rewrites.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::parse::iptables::{
    parse_nat_to, GenericTarget, MarkOp, MarkTarget, Masquerade, Nat, Rule, Target,
};

use super::super::packet::{HookOutcome, NetnsFacts, Packet, Proto};
use super::matches::generic::parse_mark;
use super::NONE;

pub(super) enum Action {
    /// Go on with the next rule; the step to record, if the target did something.
    Continue(Option<String>),
    Jump {
        chain: u32,
        goto: bool,
    },
    Return,
    /// The base chain is done: the verdict and its step.
    Verdict(HookOutcome, String),
    Unknown(String),
}

/// Targets that change neither the verdict nor anything a later rule or hook reads.
const PASSIVE: &[&str] = &[
    "LOG",
    "NFLOG",
    "ULOG",
    "TRACE",
    "AUDIT",
    "CHECKSUM",
    "TCPMSS",
    "CLASSIFY",
    "IDLETIMER",
    "LED",
    "RATEEST",
    "SECMARK",
    "CONNSECMARK",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "ECN",
    "TCPOPTSTRIP",
    "TEE",
];

/// Whether the runner records steps: when it keeps only verdicts (the reachability
/// matrix's traces), a step's words are not made.
#[derive(Clone, Copy)]
pub(super) struct Say(pub bool);

impl Say {
    fn text(self, words: impl FnOnce() -> String) -> String {
        if self.0 {
            words()
        } else {
            String::new()
        }
    }
}

/// The action of `rule`'s target; `jump` is the chain it names, resolved.
pub(super) fn action(
    rule: &Rule,
    jump: u32,
    p: &mut Packet,
    facts: &NetnsFacts,
    say: Say,
) -> Action {
    let Some(t) = &rule.target else {
        return Action::Continue(None);
    };
    match t {
        Target::Accept => Action::Verdict(HookOutcome::Accept, say.text(|| "ACCEPT".into())),
        Target::Drop => Action::Verdict(HookOutcome::Drop, say.text(|| "DROP".into())),
        Target::Reject { with } => {
            let with = with.clone().unwrap_or_else(|| {
                let default = if p.is_v6() {
                    "icmp6-port-unreachable"
                } else {
                    "icmp-port-unreachable"
                };
                default.to_string()
            });
            let what = say.text(|| format!("REJECT with {with}"));
            Action::Verdict(HookOutcome::Reject { with }, what)
        }
        Target::Return => Action::Return,
        Target::Queue => Action::Unknown("QUEUE hands the packet to a userspace program".into()),
        Target::Chain(name) if jump == NONE => Action::Unknown(format!(
            "-j {name}: neither a chain of this table nor a target the engine knows"
        )),
        Target::Chain(_) => Action::Jump {
            chain: jump,
            goto: rule.goto,
        },
        Target::Dnat(n) => nat(n, p, true, say),
        Target::Snat(n) => nat(n, p, false, say),
        Target::Masquerade(m) => masquerade(m, p, facts, say),
        Target::Mark(m) => {
            let old = p.mark;
            p.mark = mark_op(m, old);
            let new = p.mark;
            Action::Continue(Some(say.text(|| format!("MARK 0x{old:x} → 0x{new:x}"))))
        }
        Target::Other(g) => other(g, p, facts),
    }
}

fn mark_op(m: &MarkTarget, old: u32) -> u32 {
    let mask = m.mask.unwrap_or(u32::MAX);
    match m.op {
        MarkOp::SetXmark => (old & !mask) ^ m.value,
        MarkOp::SetMark => (old & !mask) | m.value,
        MarkOp::OrMark => old | m.value,
        MarkOp::AndMark => old & m.value,
        MarkOp::XorMark => old ^ m.value,
    }
}

fn endpoint(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    }
}

/// DNAT (`dst`) or SNAT: the first address and port of `--to-…`; a NAT target ends
/// the base chain with ACCEPT.
fn nat(n: &Nat, p: &mut Packet, dst: bool, say: Say) -> Action {
    let name = if dst { "DNAT" } else { "SNAT" };
    let Some(to) = n.to.as_deref() else {
        return Action::Unknown(format!("{name} without an address"));
    };
    let Some((ip, port)) = parse_nat_to(to) else {
        return Action::Unknown(format!("{name} to {to:?}: not an address[:port]"));
    };
    if ip.is_ipv6() != p.is_v6() {
        return Action::Unknown(format!("{name} to {to}: not the packet's address family"));
    }
    // ICMP has no ports (its id is kept).
    let port = port.filter(|_| p.proto != Proto::Icmp);
    if dst {
        p.dst = ip;
        p.dport = port.unwrap_or(p.dport);
        p.ct_dnat = true;
    } else {
        p.src = ip;
        p.sport = port.unwrap_or(p.sport);
        p.ct_snat = true;
    }
    let what = say.text(|| {
        let mut what = format!("{name} to {}", endpoint(ip, port));
        if to.contains('-') {
            what.push_str(&format!(
                " (first of the range {to}; the kernel picks one per connection)"
            ));
        }
        what
    });
    Action::Verdict(HookOutcome::Accept, what)
}

fn masquerade(m: &Masquerade, p: &mut Packet, facts: &NetnsFacts, say: Say) -> Action {
    let Some(oif) = p.oif.as_deref() else {
        return Action::Unknown("MASQUERADE without an output interface".into());
    };
    let v6 = p.is_v6();
    let Some((src, elsewhere)) = facts.masquerade_address(oif, v6) else {
        return Action::Unknown(format!(
            "MASQUERADE on {oif}: the netns holds no IPv{} address of {oif}",
            if v6 { 6 } else { 4 }
        ));
    };
    let mut source_port = None;
    if let Some(ports) = &m.to_ports {
        let Some(first) = ports.split('-').next().and_then(|s| s.parse().ok()) else {
            return Action::Unknown(format!("MASQUERADE --to-ports {ports:?} not understood"));
        };
        if p.proto != Proto::Icmp {
            source_port = Some((first, ports));
        }
    }
    let what = say.text(|| {
        let mut what = if elsewhere {
            format!("MASQUERADE to {src} ({oif} has no IPv4 address: the netns's first global one, as the kernel picks)")
        } else {
            format!("MASQUERADE to {src} (first address of {oif})")
        };
        if let Some((first, ports)) = source_port {
            what.push_str(&format!(", source port {first} (first of {ports})"));
        }
        if m.random || m.random_fully {
            what.push_str(", source port randomised by the kernel (kept as sent)");
        }
        what
    });
    p.src = src;
    p.ct_snat = true;
    if let Some((first, _)) = source_port {
        p.sport = first;
    }
    Action::Verdict(HookOutcome::Accept, what)
}

fn other(g: &GenericTarget, p: &mut Packet, facts: &NetnsFacts) -> Action {
    let name = g.name.as_str();
    if g.unsupported_revision {
        return Action::Unknown(format!(
            "target {name} [unsupported revision]: iptables-nft could not decode it"
        ));
    }
    match name {
        "CONNMARK" => connmark(g, p),
        "REDIRECT" => redirect(g, p, facts),
        "CT" | "NOTRACK" => Action::Continue(Some(format!(
            "{name} (conntrack setting recorded, not applied to later hooks)"
        ))),
        "SET" => Action::Continue(Some(
            "SET (ipset membership change, not simulated)".to_string(),
        )),
        _ if PASSIVE.contains(&name) => Action::Continue(Some(format!(
            "{name} (does not decide the path; continues)"
        ))),
        _ => Action::Unknown(format!("target {name} is not evaluated offline")),
    }
}

/// `CONNMARK`: `--set-xmark`/`--set-mark`/`--and-mark`/`--or-mark`/`--xor-mark` on the
/// connection mark, `--save-mark`/`--restore-mark` between it and the packet mark
/// (with `--mask`, `--nfmask`, `--ctmask`), as `connmark_tg` computes them.
fn connmark(g: &GenericTarget, p: &mut Packet) -> Action {
    enum Mode {
        Set { value: u32, mask: u32 },
        Save,
        Restore,
    }
    let (mut mode, mut nfmask, mut ctmask) = (None, u32::MAX, u32::MAX);
    for o in &g.options {
        let arg = match (o.args.as_slice(), o.negated) {
            ([a], false) => parse_mark(a),
            _ => None,
        };
        let set = |value, mask| Some(Mode::Set { value, mask });
        match (o.name.as_str(), arg) {
            ("--set-xmark", Some((v, m))) => mode = set(v, m.unwrap_or(u32::MAX)),
            ("--set-mark", Some((v, m))) => mode = set(v, m.unwrap_or(u32::MAX) | v),
            ("--and-mark", Some((v, None))) => mode = set(0, !v),
            ("--or-mark", Some((v, None))) => mode = set(v, v),
            ("--xor-mark", Some((v, None))) => mode = set(v, 0),
            ("--save-mark", None) if o.args.is_empty() && !o.negated => mode = Some(Mode::Save),
            ("--restore-mark", None) if o.args.is_empty() && !o.negated => {
                mode = Some(Mode::Restore)
            }
            ("--mask", Some((v, None))) => (nfmask, ctmask) = (v, v),
            ("--nfmask", Some((v, None))) => nfmask = v,
            ("--ctmask", Some((v, None))) => ctmask = v,
            _ => return Action::Unknown(format!("CONNMARK option {} not understood", o.name)),
        }
    }
    let (old_ct, old_mark) = (p.ct_mark, p.mark);
    match mode {
        Some(Mode::Set { value, mask }) => p.ct_mark = (p.ct_mark & !mask) ^ value,
        Some(Mode::Save) => p.ct_mark = (p.ct_mark & !ctmask) ^ (p.mark & nfmask),
        Some(Mode::Restore) => p.mark = (p.mark & !nfmask) ^ (p.ct_mark & ctmask),
        None => return Action::Unknown("CONNMARK without an operation".into()),
    }
    Action::Continue(Some(format!(
        "CONNMARK: ct mark 0x{old_ct:x} → 0x{:x}, mark 0x{old_mark:x} → 0x{:x}",
        p.ct_mark, p.mark
    )))
}

/// `REDIRECT`: to the first address of the incoming interface (loopback for a
/// locally generated packet), `--to-ports` the first port. The kernel drops the packet
/// when the interface has no address of its family.
fn redirect(g: &GenericTarget, p: &mut Packet, facts: &NetnsFacts) -> Action {
    let mut ports = None;
    for o in &g.options {
        match (o.name.as_str(), o.args.as_slice(), o.negated) {
            ("--to-ports", [a], false) => ports = Some(a.as_str()),
            ("--random", [], false) => {}
            _ => return Action::Unknown(format!("REDIRECT option {} not understood", o.name)),
        }
    }
    let v6 = p.is_v6();
    let dst = match p.iif.as_deref() {
        None if v6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(iif) => match facts.iface_addrs.get(iif) {
            None => {
                return Action::Unknown(format!(
                    "REDIRECT: the netns facts hold no addresses of {iif}"
                ))
            }
            Some(addrs) => match addrs.iter().find(|a| a.is_ipv6() == v6) {
                Some(a) => *a,
                None => {
                    return Action::Verdict(
                        HookOutcome::Drop,
                        format!("REDIRECT: {iif} has no address of the packet's family, the kernel drops it"),
                    )
                }
            },
        },
    };
    let port = match ports {
        None => None,
        Some(s) => match s.split('-').next().and_then(|f| f.parse::<u16>().ok()) {
            Some(port) => Some(port),
            None => return Action::Unknown(format!("REDIRECT --to-ports {s:?} not understood")),
        },
    };
    p.dst = dst;
    if p.proto != Proto::Icmp {
        p.dport = port.unwrap_or(p.dport);
    }
    p.ct_dnat = true;
    let mut what = format!("REDIRECT to {}", endpoint(dst, Some(p.dport)));
    if ports.is_some_and(|s| s.contains('-')) {
        what.push_str(" (first port of the range)");
    }
    Action::Verdict(HookOutcome::Accept, what)
}
