//! NAT statements: `dnat`, `snat`, `masquerade`, `redirect`. Each rewrites the packet,
//! marks the connection NATed and accepts (the kernel's NAT expressions return
//! NF_ACCEPT).

use super::exec::{unknown, End, RuleCx, Stop, R};
use super::expr::{lit_int, Sym, V};
use super::render;
use crate::model::services::sockaddr;
use crate::parse::nft::{NatStmt, Val, Verdict};
use crate::trace::packet::{Packet, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl RuleCx<'_> {
    /// The address and port a NAT statement names for `p`.
    fn nat_target(&mut self, n: &NatStmt, p: &Packet) -> R<(Option<IpAddr>, Option<NatPort>)> {
        let (mut addr, mut port) = (None, None);
        if let Some(a) = &n.addr {
            match a {
                Val::Range(..) | Val::Prefix { .. } => {
                    return unknown(format!(
                        "NAT to the address range {}: the kernel picks one",
                        render::val(a)
                    ))
                }
                _ => match self.eval(a, p)? {
                    V::Ip(ip) => addr = Some(ip),
                    V::Concat(parts) => match parts.as_slice() {
                        [V::Ip(ip), V::Int(pt, _)] => {
                            addr = Some(*ip);
                            port = Some(NatPort::One(*pt as u16));
                        }
                        _ => return unknown(format!("NAT to {}", render::val(a))),
                    },
                    _ => return unknown(format!("NAT to {}", render::val(a))),
                },
            }
        }
        if let Some(pt) = &n.port {
            port = Some(match pt {
                Val::Range(lo, hi) => {
                    let (lo, hi) = (
                        lit_int(lo, Sym::Num).map_err(Stop::Unknown)?,
                        lit_int(hi, Sym::Num).map_err(Stop::Unknown)?,
                    );
                    if lo == hi {
                        NatPort::One(lo as u16)
                    } else {
                        NatPort::Range(lo as u16, hi as u16)
                    }
                }
                _ => match self.eval(pt, p)? {
                    V::Int(n, _) => NatPort::One(n as u16),
                    _ => return unknown(format!("NAT to port {}", render::val(pt))),
                },
            });
        }
        if let Some(a) = addr {
            if a.is_ipv6() != p.is_v6() {
                return unknown(format!("NAT of an IPv{} packet to {a}", ip_version(p)));
            }
        }
        if port.is_some() && p.proto == Proto::Icmp {
            return unknown("NAT of an ICMP packet to a port");
        }
        Ok((addr, port))
    }

    pub(super) fn dnat(&mut self, n: &NatStmt, p: &mut Packet) -> R<Option<End>> {
        if other_family(n, p) {
            return Ok(None);
        }
        let (addr, port) = self.nat_target(n, p)?;
        if let Some(a) = addr {
            p.dst = a;
        }
        match port {
            Some(NatPort::One(pt)) => p.dport = pt,
            Some(NatPort::Range(lo, hi)) => {
                return unknown(format!(
                    "dnat to the port range {lo}-{hi}: the kernel picks one"
                ))
            }
            None => {}
        }
        p.ct_dnat = true;
        self.actions
            .push(format!("dnat to {}", endpoint(p.dst, p, p.dport)));
        Ok(Some(End::Verdict(Verdict::Accept)))
    }

    pub(super) fn snat(&mut self, n: &NatStmt, p: &mut Packet) -> R<Option<End>> {
        if other_family(n, p) {
            return Ok(None);
        }
        let (addr, port) = self.nat_target(n, p)?;
        if let Some(a) = addr {
            p.src = a;
        }
        let note = self.source_port(port, p);
        p.ct_snat = true;
        self.actions
            .push(format!("snat to {}{note}", endpoint(p.src, p, p.sport)));
        Ok(Some(End::Verdict(Verdict::Accept)))
    }

    /// A source port of snat/masquerade; a range leaves the port (the step says so).
    fn source_port(&self, port: Option<NatPort>, p: &mut Packet) -> String {
        match port {
            Some(NatPort::One(pt)) => {
                p.sport = pt;
                String::new()
            }
            Some(NatPort::Range(lo, hi)) => {
                format!(" (the kernel picks the source port in {lo}-{hi}; kept as it was)")
            }
            None => String::new(),
        }
    }

    pub(super) fn masquerade(&mut self, n: &NatStmt, p: &mut Packet) -> R<Option<End>> {
        let Some(oif) = p.oif.clone() else {
            return unknown("masquerade without an output interface");
        };
        // Without an address on oif, the kernel takes the netns's first global one.
        let Some((src, _)) = self.facts.masquerade_address(&oif, p.is_v6()) else {
            return unknown(format!(
                "masquerade: no IPv{} address of {oif} in the netns's addresses",
                ip_version(p)
            ));
        };
        let (_, port) = self.nat_target(n, p)?;
        p.src = src;
        let note = self.source_port(port, p);
        p.ct_snat = true;
        self.actions.push(format!(
            "masquerade to {}{note}",
            endpoint(p.src, p, p.sport)
        ));
        Ok(Some(End::Verdict(Verdict::Accept)))
    }

    /// To the incoming interface's first address, or the loopback address for a packet
    /// this netns sends.
    pub(super) fn redirect(&mut self, n: &NatStmt, p: &mut Packet) -> R<Option<End>> {
        let dst = match &p.iif {
            None if p.is_v6() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(iif) => match self.facts.masquerade_source(iif, p.is_v6()) {
                Some(a) => a,
                None => {
                    return unknown(format!(
                        "redirect: no IPv{} address of {iif} in the netns's addresses",
                        ip_version(p)
                    ))
                }
            },
        };
        let (_, port) = self.nat_target(n, p)?;
        p.dst = dst;
        match port {
            Some(NatPort::One(pt)) => p.dport = pt,
            Some(NatPort::Range(lo, hi)) => {
                return unknown(format!("redirect to the port range {lo}-{hi}"))
            }
            None => {}
        }
        p.ct_dnat = true;
        self.actions
            .push(format!("redirect to {}", endpoint(p.dst, p, p.dport)));
        Ok(Some(End::Verdict(Verdict::Accept)))
    }
}

/// `dnat ip6 to …` met by an IPv4 packet (in an inet table): the kernel's NAT
/// expression does nothing and the rule goes on (nft_nat_inet_eval).
fn other_family(n: &NatStmt, p: &Packet) -> bool {
    match n.family.as_deref() {
        Some("ip") => p.is_v6(),
        Some("ip6") => !p.is_v6(),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy)]
enum NatPort {
    One(u16),
    Range(u16, u16),
}

fn ip_version(p: &Packet) -> u8 {
    if p.is_v6() {
        6
    } else {
        4
    }
}

fn endpoint(a: IpAddr, p: &Packet, port: u16) -> String {
    if p.proto == Proto::Icmp {
        a.to_string()
    } else {
        sockaddr(a, port)
    }
}
