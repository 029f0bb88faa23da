//! A netns's IP stack: a packet sent by a socket (routing, OUTPUT, POSTROUTING), one
//! that arrives (PREROUTING, routing, INPUT or FORWARD and POSTROUTING), and delivery
//! to a socket — followed, for a request, by its reply.

use super::engine::{Engine, ReplyOf, Stage, State, Tuple};
use super::packet::{CtState, Hook, Packet, Proto};
use super::path::{Branch, Verdict};
use super::route::{Decision, Lookup, Verdict as Route};
use crate::evidence::Evidence;
use crate::model::net::parse_ip;
use crate::model::services::sockaddr;
use crate::model::Netns;
use netsnap_schema::model::SocketProto;
use std::net::IpAddr;

/// Where routing sends a packet.
pub(super) struct Egress {
    pub oif: u32,
    pub nexthop: IpAddr,
}

impl<'a> Engine<'a> {
    /// Routes `st` from this netns; records the decision; ends the branch when routing
    /// does not send it anywhere. `forwarded`: the packet came in (so a failed lookup
    /// sends an ICMP error back instead of failing the sender's call).
    pub(super) fn route(
        &self,
        st: &mut State,
        iif: Option<&str>,
        forwarded: bool,
    ) -> Result<Option<Egress>, (Verdict, String)> {
        let Some(ns) = self.netns(&st.netns) else {
            return Err((
                Verdict::Unknown,
                format!("netns {} is not in the bundle", st.netns),
            ));
        };
        let lookup = Lookup {
            dst: st.packet.dst,
            src: Some(st.packet.src),
            iif: iif.map(String::from),
            mark: st.packet.mark,
        };
        let d = self.decide_route(ns, &lookup);
        let dst = st.packet.dst;
        if self.keeps(d.route.is_some()) {
            let what = describe(ns, &d, dst);
            let evidence = d.route.map(|i| self.route_evidence(ns, i));
            let netns = st.netns.clone();
            self.hop(st, &netns, None, "route", &what, evidence);
        }
        match d.verdict {
            Route::Unicast {
                oif: Some(oif),
                gateway,
            } => Ok(Some(Egress {
                oif,
                nexthop: gateway.unwrap_or(st.packet.dst),
            })),
            Route::Unicast { oif: None, .. } => {
                Err((Verdict::Unknown, "the route names no device".into()))
            }
            Route::Local => Ok(None),
            Route::Blackhole if forwarded => Err((Verdict::Dropped, describe(ns, &d, dst))),
            Route::Blackhole | Route::Unreachable | Route::Prohibit | Route::NoRoute => {
                Err((Verdict::NoRoute, describe(ns, &d, dst)))
            }
            Route::Broadcast => Err((Verdict::Unknown, "a broadcast destination".into())),
            Route::Unknown(r) => Err((Verdict::Unknown, r)),
        }
    }

    /// Sent by a socket of this netns.
    pub(super) fn output(&self, mut st: State, out: &mut Vec<Branch>) {
        let egress = match self.route(&mut st, None, false) {
            Ok(e) => e,
            Err((v, why)) => return out.push(self.end(st, v, why, None)),
        };
        st.packet.oif = Some(self.oif_name(&st.netns, egress.as_ref()));
        for s in self.hooks(st, Hook::Output, out) {
            // IPVS takes what the node sends to its virtual services (trace/ipvs.rs).
            let Some(mut s) = self.ipvs_local_out(s, out) else {
                continue;
            };
            // NAT in OUTPUT changed the destination: the kernel routes again.
            let egress = if s.packet.dst != s.orig.dst && s.reply.is_none() {
                match self.route(&mut s, None, false) {
                    Ok(e) => e,
                    Err((v, why)) => {
                        out.push(self.end(s, v, why, None));
                        continue;
                    }
                }
            } else {
                egress.as_ref().map(|e| Egress {
                    oif: e.oif,
                    nexthop: e.nexthop,
                })
            };
            s.packet.oif = Some(self.oif_name(&s.netns, egress.as_ref()));
            for s2 in self.hooks(s, Hook::Postrouting, out) {
                match &egress {
                    Some(e) => self.transmit(s2, e.oif, e.nexthop, out),
                    // Local: out through lo and in again (NAT is already bound).
                    None => self.run(
                        State {
                            stage: Stage::Receive {
                                iif: "lo".into(),
                                prerouted: false,
                            },
                            dnat_bound: true,
                            snat_bound: true,
                            ..s2
                        },
                        out,
                    ),
                }
            }
        }
    }

    /// Arrived on `iif`.
    pub(super) fn receive(
        &self,
        mut st: State,
        iif: String,
        prerouted: bool,
        out: &mut Vec<Branch>,
    ) {
        st.packet.iif = Some(iif.clone());
        st.packet.oif = None;
        let states = if prerouted {
            vec![st]
        } else {
            self.hooks(st, Hook::Prerouting, out)
        };
        for mut s in states {
            if let Some(why) = self.martian_source(&s, &iif) {
                out.push(self.end(s, Verdict::Dropped, why, None));
                continue;
            }
            let egress = match self.route(&mut s, Some(&iif), true) {
                Ok(e) => e,
                Err((v, why)) => {
                    out.push(self.end(s, v, why, None));
                    continue;
                }
            };
            let Some(e) = egress else {
                for s2 in self.hooks(s, Hook::Input, out) {
                    // IPVS takes its virtual services here (trace/ipvs.rs).
                    if let Some(s3) = self.ipvs_local_in(s2, out) {
                        self.deliver(s3, out);
                    }
                }
                continue;
            };
            // A virtual service whose VIP is not local is routed (trace/ipvs.rs).
            self.ipvs_not_local(&mut s);
            if let Some(stop) = self.forwarding_off(&s, &iif) {
                self.dropped_by_sysctl(s, &iif, stop, out);
                continue;
            }
            s.packet.oif = Some(self.oif_name(&s.netns, Some(&e)));
            for s2 in self.hooks(s, Hook::Forward, out) {
                for s3 in self.hooks(s2, Hook::Postrouting, out) {
                    self.transmit(s3, e.oif, e.nexthop, out);
                }
            }
        }
    }

    /// Why this netns does not forward a packet that came in on `iif`, if it does not
    /// (the kernel asks the input device: `conf.<iif>.forwarding`, which
    /// `ip_forward` sets for every device), and the sysctl line that says so.
    pub(super) fn forwarding_off(&self, st: &State, iif: &str) -> Option<(String, Evidence)> {
        if self.options.assume_forwarding {
            return None;
        }
        let family = if st.packet.is_v6() { "ipv6" } else { "ipv4" };
        let keys = [
            format!("net.{family}.conf.{iif}.forwarding"),
            if st.packet.is_v6() {
                "net.ipv6.conf.all.forwarding".to_string()
            } else {
                "net.ipv4.ip_forward".to_string()
            },
        ];
        let (key, (value, evidence)) = keys
            .iter()
            .find_map(|k| self.sysctl_with_evidence(&st.netns, k).map(|v| (k, v)))?;
        (value == "0").then(|| {
            let why = format!(
                "{key} = 0 in {}: the packet is not forwarded",
                self.place(&st.netns)
            );
            (why, evidence)
        })
    }

    /// Ends a branch that a sysctl stops (`forwarding_off`), citing its line.
    pub(super) fn dropped_by_sysctl(
        &self,
        mut st: State,
        iface: &str,
        (why, ev): (String, Evidence),
        out: &mut Vec<Branch>,
    ) {
        let netns = st.netns.clone();
        self.hop(
            &mut st,
            &netns,
            Some(iface.to_string()),
            "sysctl",
            &why,
            Some(ev),
        );
        out.push(self.end(st, Verdict::Dropped, why, None));
    }

    /// A sysctl of a netns (the node's falls back to the host file).
    pub(super) fn sysctl(&self, netns: &str, key: &str) -> Option<String> {
        self.sysctl_with_evidence(netns, key).map(|(v, _)| v)
    }

    fn sysctl_with_evidence(&self, netns: &str, key: &str) -> Option<(String, Evidence)> {
        let ns = self.netns(netns)?;
        match ns.sysctl(key) {
            Some((v, ev)) => Some((v.trim().to_string(), ev)),
            None if ns.is_root => self
                .model
                .node_sysctl(key)
                .map(|(v, ev)| (v.trim().to_string(), ev)),
            None => None,
        }
    }

    /// A packet that comes in from outside with one of this netns's own addresses as
    /// its source is a martian: dropped unless `accept_local` is on.
    fn martian_source(&self, st: &State, iif: &str) -> Option<String> {
        if iif == "lo" || st.packet.is_v6() {
            return None;
        }
        let own = self.owns(&st.netns, st.packet.src, true);
        let accept = [
            format!("net.ipv4.conf.{iif}.accept_local"),
            "net.ipv4.conf.all.accept_local".into(),
        ]
        .iter()
        .any(|k| self.sysctl(&st.netns, k).as_deref() == Some("1"));
        (own && !accept).then(|| {
            format!(
                "{} comes in on {iif} from {}, an address of {} itself: a martian source, dropped (accept_local is off)",
                st.packet.dst, st.packet.src, self.place(&st.netns)
            )
        })
    }

    pub(super) fn oif_name(&self, netns: &str, egress: Option<&Egress>) -> String {
        let Some(e) = egress else { return "lo".into() };
        self.netns(netns)
            .and_then(|n| n.link(e.oif))
            .map(|(_, l)| l.name.clone())
            .unwrap_or_else(|| e.oif.to_string())
    }

    /// Passed INPUT: a listening socket takes it, or the netns refuses it.
    pub(super) fn deliver(&self, mut st: State, out: &mut Vec<Branch>) {
        let Some(ns) = self.netns(&st.netns) else {
            return out.push(self.end(
                st,
                Verdict::Unknown,
                "netns not in the bundle".into(),
                None,
            ));
        };
        let p = st.packet.clone();
        let endpoint = crate::model::services::sockaddr(p.dst, p.dport);
        if st.reply.is_some() {
            return self.reply_arrived(st, out);
        }
        if p.proto == Proto::Icmp {
            let what = "an echo request is answered by the kernel";
            let netns = st.netns.clone();
            self.hop(&mut st, &netns, None, "socket", what, None);
            return out.push(self.end(
                st,
                Verdict::Delivered,
                format!("{} answers", self.place(&ns.id)),
                Some(p.dst.to_string()),
            ));
        }
        if !ns.sockets.present {
            let why = format!(
                "the sockets of {} are not in the bundle",
                self.place(&ns.id)
            );
            return out.push(self.end(st, Verdict::Unknown, why, Some(endpoint)));
        }
        let Some(i) = listener(ns, &p) else {
            let what = match p.proto {
                Proto::Tcp => {
                    format!("nothing listens on {endpoint}/tcp: the kernel answers with a reset")
                }
                _ => {
                    format!("no socket on {endpoint}/udp: the kernel answers ICMP port unreachable")
                }
            };
            let netns = st.netns.clone();
            let ev = crate::evidence::Evidence::new(
                ns.sockets.path.clone(),
                None,
                format!("{} sockets", ns.sockets.items.len()),
            );
            self.hop(&mut st, &netns, None, "socket", &what, Some(ev));
            if !self.options.replies {
                return out.push(self.end(st, Verdict::Refused, what, Some(endpoint)));
            }
            return self.send_reply(st, endpoint, true, out);
        };
        if self.keeps(true) {
            let s = &ns.sockets.items[i];
            let what = format!("{:?} socket {}:{}", s.proto, s.local, s.port).to_lowercase();
            let netns = st.netns.clone();
            let ev = ns.sockets.evidence(i, what.clone());
            self.hop(&mut st, &netns, None, "socket", &what, Some(ev));
        }
        if !self.options.replies {
            let why = format!("{endpoint} in {} takes it", self.place(&ns.id));
            return out.push(self.end(st, Verdict::Delivered, why, Some(endpoint)));
        }
        self.send_reply(st, endpoint, false, out);
    }

    /// The endpoint answers (or, `refusal`, its kernel resets or sends ICMP port
    /// unreachable): the reply goes back through the node.
    fn send_reply(&self, st: State, endpoint: String, refusal: bool, out: &mut Vec<Branch>) {
        let p = &st.packet;
        // An ICMP error is RELATED to the connection; a reset and an answer belong to it.
        let ct = if refusal && p.proto != Proto::Tcp {
            CtState::Related
        } else {
            CtState::Established
        };
        let reply = Packet {
            src: p.dst,
            sport: p.dport,
            dst: p.src,
            dport: p.sport,
            ct,
            mark: 0,
            iif: None,
            oif: None,
            physdev_in: None,
            physdev_out: None,
            bridged: false,
            ..p.clone()
        };
        let of = ReplyOf {
            orig: st.orig,
            endpoint,
            ended_in: Some(self.place(&st.netns)),
            nat_netns: st.nat_netns.clone(),
            dst_restored: false,
            src_restored: false,
            refusal,
        };
        let next = State {
            packet: reply,
            stage: Stage::Output,
            crossings: 0,
            reply: Some(Box::new(of)),
            ..st
        };
        self.run(next, out);
    }

    /// A reply reached a socket: is it the client's, from the address it called?
    fn reply_arrived(&self, st: State, out: &mut Vec<Branch>) {
        let Some(r) = st.reply.clone() else { return };
        let p = &st.packet;
        let expected = Tuple {
            src: r.orig.dst,
            sport: r.orig.dport,
            dst: r.orig.src,
            dport: r.orig.sport,
        };
        let came = Tuple::of(p);
        let request_done = |mut st: State, verdict, reason: String| {
            st.reply = None;
            Branch {
                ended_in: r.ended_in.clone(),
                endpoint: Some(r.endpoint.clone()),
                ..self.end(st, verdict, reason, None)
            }
        };
        if came.dst != expected.dst || came.dport != expected.dport {
            let why = format!(
                "the reply is addressed to {}, not to the client",
                sockaddr(came.dst, came.dport)
            );
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        if came.src == expected.src && came.sport == expected.sport {
            if r.refusal {
                let why = match p.proto {
                    Proto::Tcp => {
                        format!("nothing listens on {}: the client gets a reset", r.endpoint)
                    }
                    _ => format!(
                        "nothing listens on {}: the client gets ICMP port unreachable",
                        r.endpoint
                    ),
                };
                return out.push(request_done(st, Verdict::Refused, why));
            }
            let why = format!("{} answers, and the reply reaches the client", r.endpoint);
            return out.push(request_done(st, Verdict::Delivered, why));
        }
        match p.proto {
            _ if r.refusal => {
                let why = format!(
                    "{} refuses it, but the reset comes from {}, not from {} the client called (its NAT was not reversed): the client ignores it",
                    r.endpoint,
                    sockaddr(came.src, came.sport),
                    sockaddr(expected.src, expected.sport)
                );
                out.push(request_done(st, Verdict::Dropped, why));
            }
            Proto::Tcp => {
                let why = format!(
                    "{} answers from {}, not from {} the client called (its NAT was not reversed): the client resets it",
                    r.endpoint,
                    sockaddr(came.src, came.sport),
                    sockaddr(expected.src, expected.sport)
                );
                out.push(request_done(st, Verdict::Dropped, why));
            }
            _ => {
                let why = format!(
                    "{} answers from {}, not from {} (its NAT was not reversed): an unconnected UDP socket takes it, a connected one (most resolvers) ignores it",
                    r.endpoint,
                    sockaddr(came.src, came.sport),
                    sockaddr(expected.src, expected.sport)
                );
                out.push(request_done(st, Verdict::Delivered, why));
            }
        }
    }
}

/// The socket of `ns` that takes `p`: same protocol and port, its address or a wildcard.
fn listener(ns: &Netns, p: &Packet) -> Option<usize> {
    let protos: &[SocketProto] = match p.proto {
        Proto::Tcp => &[SocketProto::Tcp, SocketProto::Tcp6],
        Proto::Udp => &[SocketProto::Udp, SocketProto::Udp6],
        Proto::Icmp => return None,
    };
    ns.sockets.items.iter().position(|s| {
        protos.contains(&s.proto)
            && s.port == p.dport
            && match parse_ip(&s.local) {
                Some(ip) if ip.is_unspecified() => {
                    // `::` takes IPv4 too (unless v6only, which the bundle does not keep).
                    ip.is_ipv6() || p.dst.is_ipv4()
                }
                Some(ip) => ip == p.dst || to_v4_mapped(ip) == Some(p.dst),
                None => false,
            }
    })
}

fn to_v4_mapped(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

/// One line for a routing decision.
fn describe(ns: &Netns, d: &Decision, dst: IpAddr) -> String {
    let table = d.table.map(|t| format!(" (table {t})")).unwrap_or_default();
    let route = d
        .route
        .and_then(|i| ns.routes.items.get(i))
        .map(|r| r.dst.to_string())
        .unwrap_or_default();
    match &d.verdict {
        Route::Unicast { oif, gateway } => {
            let dev = oif
                .and_then(|i| ns.link(i))
                .map(|(_, l)| l.name.clone())
                .unwrap_or_default();
            match gateway {
                Some(g) => format!("{dst} via {g} dev {dev} (route {route}{table})"),
                None => format!("{dst} dev {dev} (route {route}{table})"),
            }
        }
        Route::Local if d.route.is_none() => format!("{dst} is an address of this netns: local"),
        Route::Local => format!("{dst} is local (route {route}{table})"),
        Route::Broadcast => format!("{dst} is a broadcast address"),
        Route::Blackhole => format!("{dst}: blackhole route {route}{table}"),
        Route::Unreachable => format!("{dst}: unreachable route {route}{table}"),
        Route::Prohibit => format!("{dst}: prohibit route {route}{table}"),
        Route::NoRoute => format!("no route to {dst}"),
        Route::Unknown(r) => r.clone(),
    }
}
