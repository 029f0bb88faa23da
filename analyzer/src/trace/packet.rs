//! What the engine moves through the node: one [`Packet`] (its 5-tuple as the kernel
//! sees it at this point, its mark, its conntrack state, the interfaces it crossed),
//! and what a netfilter chain makes of it: [`HookBranch`]es, each with its probability,
//! the [`Step`]s that decided it and an [`HookOutcome`].

use crate::evidence::Evidence;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    /// The name iptables and nft use (`tcp`, `udp`, `icmp`; `ipv6-icmp` for v6 is
    /// the caller's concern).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    /// IANA protocol number (ICMP for v4; ICMPv6 is 58).
    pub fn number(self, v6: bool) -> u8 {
        match (self, v6) {
            (Proto::Tcp, _) => 6,
            (Proto::Udp, _) => 17,
            (Proto::Icmp, false) => 1,
            (Proto::Icmp, true) => 58,
        }
    }

    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Some(Proto::Tcp),
            "udp" | "17" => Some(Proto::Udp),
            "icmp" | "1" | "ipv6-icmp" | "icmpv6" | "58" => Some(Proto::Icmp),
            _ => None,
        }
    }
}

/// Conntrack's view of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtState {
    /// The first packet of a connection (the default: what a new connect() sends).
    New,
    /// A packet of a connection conntrack already holds (`--established`).
    Established,
    Related,
}

impl CtState {
    /// The name `-m conntrack --ctstate` and nft `ct state` use.
    pub fn name(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
        }
    }
}

/// The netfilter hook a chain is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    /// The iptables built-in chain name of this hook.
    pub fn chain(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    /// The nft hook name.
    pub fn nft(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// One packet at one point of its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    /// 0 for ICMP.
    pub sport: u16,
    pub dport: u16,
    /// Bytes on the wire (IP header included), for MTU decisions.
    pub size: u32,
    /// The skb mark (`-m mark`, `meta mark`, fwmark rules).
    pub mark: u32,
    /// The connection mark (`-m connmark`, `ct mark`).
    pub ct_mark: u32,
    pub ct: CtState,
    /// Destination NAT applied to this connection (`--ctstate DNAT`, `ct status dnat`).
    pub ct_dnat: bool,
    /// Source NAT applied to this connection.
    pub ct_snat: bool,
    /// Interface the packet came in on, in the netns being traversed (`-i`, `iifname`);
    /// `None` for locally generated packets.
    pub iif: Option<String>,
    /// Interface it leaves by (`-o`, `oifname`), once routing has chosen one.
    pub oif: Option<String>,
    /// Set when the frame is being bridged and br_netfilter hands it to iptables:
    /// the bridge ports it came in on and goes out of (`-m physdev`).
    pub physdev_in: Option<String>,
    pub physdev_out: Option<String>,
    pub bridged: bool,
}

impl Packet {
    pub fn is_v6(&self) -> bool {
        self.dst.is_ipv6()
    }
}

/// Node facts that matches need beyond the packet itself.
#[derive(Debug, Clone, Default)]
pub struct NetnsFacts {
    /// Addresses of every interface of the netns being traversed, by interface name
    /// (`-m addrtype --dst-type LOCAL`, `fib daddr type local`, MASQUERADE's source).
    pub iface_addrs: BTreeMap<String, Vec<IpAddr>>,
    /// Broadcast addresses of the netns (`addrtype BROADCAST`).
    pub broadcast: Vec<IpAddr>,
    /// The first global IPv4 address of the netns in interface order: MASQUERADE's
    /// source when the output device has none (the kernel's `inet_select_addr`
    /// looks at every device; Calico's `cali*` veths hold no address).
    pub first_global_v4: Option<IpAddr>,
    /// Listening TCP and bound UDP sockets of the netns (protocol, local address,
    /// port), for `-m socket`; `None` when the bundle has not got them.
    pub sockets: Option<Vec<(Proto, IpAddr, u16)>>,
}

impl NetnsFacts {
    /// Whether `ip` is an address of this netns (addrtype LOCAL).
    pub fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.iface_addrs.values().any(|a| a.contains(&ip))
    }

    /// The source MASQUERADE picks on `oif`, and whether it comes from another device
    /// (`oif` holds no IPv4 address). IPv6 source selection is not followed that far.
    pub fn masquerade_address(&self, oif: &str, v6: bool) -> Option<(IpAddr, bool)> {
        match self.masquerade_source(oif, v6) {
            Some(a) => Some((a, false)),
            None if !v6 => self.first_global_v4.map(|a| (a, true)),
            None => None,
        }
    }

    /// Whether `-m socket` surely finds no socket for `p` (xt_socket looks the
    /// packet's tuple up among the netns' sockets): it is not addressed to this netns,
    /// so only a listener on its port, bound to its destination or to the wildcard,
    /// could take it — and none is. An ICMP echo has no socket to find. `false`
    /// means "may find one" (captured sockets do not say whether they are
    /// transparent), or the sockets were not captured.
    pub fn no_socket_for(&self, p: &Packet) -> bool {
        let Some(sockets) = &self.sockets else {
            return false;
        };
        if p.proto == Proto::Icmp {
            return true;
        }
        !self.is_local(p.dst)
            && !sockets.iter().any(|&(proto, addr, port)| {
                proto == p.proto && port == p.dport && (addr == p.dst || addr.is_unspecified())
            })
    }

    /// The first address of the packet's family on `oif` (MASQUERADE's source there,
    /// REDIRECT's destination).
    pub fn masquerade_source(&self, oif: &str, v6: bool) -> Option<IpAddr> {
        self.iface_addrs
            .get(oif)?
            .iter()
            .copied()
            .find(|a| a.is_ipv6() == v6)
    }
}

/// One thing the packet met on its way, with the bundle line that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Where: `iptables-nft nat/KUBE-SERVICES`, `nft ip kube-proxy/services`, …
    pub at: String,
    /// What happened: `jump KUBE-SVC-…`, `DNAT to 10.244.1.11:8080`, `policy ACCEPT`.
    pub what: String,
    pub evidence: Option<Evidence>,
}

/// How a hook's chain left the packet.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    /// Passed (by ACCEPT, a policy ACCEPT, or the end of the chain); the packet may
    /// have been rewritten (NAT) or marked.
    Accept,
    Drop,
    /// REJECT / `reject with …`: the sender is told (`with` is the ICMP type or tcp-reset).
    Reject {
        with: String,
    },
    /// Something the engine cannot evaluate from the bundle; the reason cites the rule.
    Unknown {
        reason: String,
    },
}

/// Which steps a chain's run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every step, in order (a trace people read).
    Every,
    /// Only the deciding one: the last step with evidence, if any (what the
    /// reachability matrix shows of a failing path).
    Deciding,
    /// No steps: only how each branch ends (the matrix traces every cell so, and
    /// again with [`Detail::Deciding`] the few that fail).
    Verdicts,
}

impl Detail {
    /// Trims a branch's steps, written in full, to what `self` asks.
    pub fn trim(self, steps: &mut Vec<Step>) {
        if self == Detail::Verdicts {
            steps.clear();
        } else if self == Detail::Deciding {
            match steps.iter().rposition(|s| s.evidence.is_some()) {
                Some(i) => {
                    steps.drain(..i);
                    steps.truncate(1);
                }
                None => steps.clear(),
            }
        }
    }
}

/// Branches as `detail` gives them, from a run with every step.
#[cfg(test)]
pub fn trimmed(branches: &[HookBranch], detail: Detail) -> Vec<HookBranch> {
    let mut out = branches.to_vec();
    for b in &mut out {
        detail.trim(&mut b.steps);
    }
    out
}

/// One possible result of running a chain: probabilities of all branches of one run
/// add up to the probability of the packet that entered.
#[derive(Debug, Clone, PartialEq)]
pub struct HookBranch {
    pub probability: f64,
    /// The packet as it leaves the chain (NAT and marks applied).
    pub packet: Packet,
    /// What the run met, as [`Detail`] asked.
    pub steps: Vec<Step>,
    pub outcome: HookOutcome,
}

/// A base chain some backend attaches to a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookChain {
    /// Which backend's ruleset (index into the engine's list of rulesets).
    pub ruleset: usize,
    /// The table (`nat`, `filter`, …; the nft table name).
    pub table: String,
    pub chain: String,
    /// The hook priority (iptables: raw -300, mangle -150, nat -100 at PRE/OUTPUT and
    /// 100 at POST/INPUT, filter 0, security 50).
    pub priority: i32,
    /// A NAT chain: only the first packet of a connection traverses it.
    pub nat: bool,
}

/// A ruleset the engine can run: the iptables save of one backend, or native nft.
pub trait Ruleset {
    /// A short name for steps: `iptables-nft`, `iptables-legacy`, `nft`.
    fn label(&self) -> String;
    /// Base chains attached to `hook` for the packet's family, with their priorities.
    fn hook_chains(&self, hook: Hook, v6: bool) -> Vec<HookChain>;
    /// Runs `chain` on `packet`.
    fn run(
        &self,
        chain: &HookChain,
        packet: &Packet,
        facts: &NetnsFacts,
        detail: Detail,
    ) -> Vec<HookBranch>;
}
