//! Crossing interfaces: a veth to its peer's netns, a Linux bridge to the port whose
//! far end owns the frame's next hop (with br_netfilter handing bridged IPv4/IPv6 to
//! the node's iptables when `bridge-nf-call-ip(6)tables` is 1), loopback, and the
//! uplink or an overlay device, where the packet leaves the node (a VXLAN device only
//! through the remote VTEP its neighbour and FDB entries name: see `overlay`).

use super::engine::{Engine, Handoff, Stage, State};
use super::overlay::{self, VtepLookup};
use super::packet::Hook;
use super::path::{Branch, Verdict};
use crate::graph::Peer;
use crate::model::Netns;
use netsnap_schema::model::Link;
use std::net::IpAddr;

/// Overlay and tunnel kinds: the packet leaves the node encapsulated.
const OVERLAY_KINDS: &[&str] = &[
    "vxlan",
    "ipip",
    "geneve",
    "gre",
    "wireguard",
    "sit",
    "ip6tnl",
];

impl<'a> Engine<'a> {
    /// Leaves this netns by interface `oif` towards `nexthop`.
    pub(super) fn transmit(&self, mut st: State, oif: u32, nexthop: IpAddr, out: &mut Vec<Branch>) {
        st.crossings += 1;
        if st.crossings > super::engine::MAX_CROSSINGS {
            // Routes that send the packet round (Cilium's pod CIDR via cilium_host once
            // a pod's own route is gone): the kernel forwards it until the TTL runs out.
            let why = format!(
                "routing loop: the packet goes round between interfaces (more than {} crossings) until its TTL runs out; the kernel drops it and sends ICMP time exceeded",
                super::engine::MAX_CROSSINGS
            );
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        let Some(ns) = self.netns(&st.netns) else {
            return;
        };
        let Some((i, link)) = ns.link(oif) else {
            let why = format!("interface {oif} of {} is not in the bundle", st.netns);
            return out.push(self.end(st, Verdict::Unknown, why, None));
        };
        if !Netns::link_is_up(link) {
            let netns = st.netns.clone();
            self.hop(
                &mut st,
                &netns,
                Some(link.name.clone()),
                "link",
                "down",
                Some(self.link_evidence(ns, i)),
            );
            let why = format!("{} of {} is down", link.name, self.place(&st.netns));
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        let kind = link.kind.as_deref().unwrap_or("");
        if link.name == "lo" {
            let next = State {
                stage: Stage::Receive {
                    iif: "lo".into(),
                    prerouted: false,
                },
                ..st
            };
            return self.run(next, out);
        }
        match kind {
            "bridge" => self.bridge_out(st, link, nexthop, out),
            "veth" => self.cross_veth(st, link, nexthop, out),
            _ => self.leave(st, ns, (i, link), nexthop, out),
        }
    }

    /// Out of the uplink or an overlay device: the rest of the way is in another
    /// bundle (the branch carries a [`Handoff`] for a trace across nodes).
    fn leave(
        &self,
        mut st: State,
        ns: &Netns,
        (i, link): (usize, &Link),
        nexthop: IpAddr,
        out: &mut Vec<Branch>,
    ) {
        let k = link.kind.as_deref().unwrap_or("");
        let mut why = if OVERLAY_KINDS.contains(&k) {
            format!(
                "leaves the node through {k} device {} towards {nexthop}",
                link.name
            )
        } else {
            format!("leaves the node on {} towards {nexthop}", link.name)
        };
        let netns = st.netns.clone();
        let mut vtep = None;
        if k == "vxlan" {
            match self.vxlan_vtep(&mut st, ns, link, nexthop) {
                Ok(Some((text, dst))) => {
                    why = format!("{why}: {text}");
                    vtep = dst;
                }
                Ok(None) => {}
                Err(dropped) => return out.push(self.end(st, Verdict::Dropped, dropped, None)),
            }
        }
        self.hop(
            &mut st,
            &netns,
            Some(link.name.clone()),
            "link",
            &why,
            Some(self.link_evidence(ns, i)),
        );
        let handoff = Handoff {
            state: st.clone(),
            device: link.name.clone(),
            kind: k.to_string(),
            nexthop,
            vtep,
            vni: link.vxlan.as_ref().map(|v| v.id),
        };
        let mut b = self.end(st, Verdict::LeftNode, why, None);
        b.handoff = Some(std::sync::Arc::new(handoff));
        out.push(b);
    }

    /// The remote VTEP a VXLAN device sends `nexthop`'s packets to (`Ok(Some)`, with
    /// a hop citing its FDB entry), `Ok(None)` when the bundle cannot tell, or why
    /// the kernel drops them (`Err`, with a hop citing what is missing).
    fn vxlan_vtep(
        &self,
        st: &mut State,
        ns: &Netns,
        link: &Link,
        nexthop: IpAddr,
    ) -> Result<Option<(String, Option<IpAddr>)>, String> {
        let netns = st.netns.clone();
        let dev = &link.name;
        match overlay::vtep_for(ns, link, nexthop) {
            VtepLookup::Undecided => Ok(None),
            VtepLookup::Found { mac, dst, fdb, .. } => {
                let ip = dst.as_deref().and_then(crate::model::net::parse_ip);
                let at = dst.map(|d| format!(" at {d}")).unwrap_or_default();
                let vtep = format!("VTEP {mac}{at} (neighbour and FDB entries of {dev})");
                let ev = ns.fdb.evidence(fdb, format!("{mac}{at} dev {dev}"));
                self.hop(st, &netns, Some(dev.clone()), "fdb", &vtep, Some(ev));
                Ok(Some((vtep, ip)))
            }
            VtepLookup::NoNeighbour => {
                let why = format!(
                    "{dev} has no neighbour entry for {nexthop} and no default destination to send ARP to: the kernel drops the packet (the overlay agent has not programmed this peer)"
                );
                let i = ns.link(link.ifindex).map_or(0, |(i, _)| i);
                let ev = self.link_evidence(ns, i);
                self.hop(st, &netns, Some(dev.clone()), "neighbour", &why, Some(ev));
                Err(why)
            }
            VtepLookup::NoFdb { mac, neigh } => {
                let why = format!(
                    "{dev} resolves {nexthop} to VTEP MAC {mac} but has no FDB entry for it and no default destination: the kernel drops the packet (the overlay agent has not programmed this peer's VTEP)"
                );
                let ev = ns
                    .neigh
                    .evidence(neigh, format!("{nexthop} lladdr {mac} dev {dev}"));
                self.hop(st, &netns, Some(dev.clone()), "fdb", &why, Some(ev));
                Err(why)
            }
        }
    }

    /// Through veth `link` of this netns to its peer; `l2_dst` is the next hop the
    /// frame is addressed to (a bridge on the far side forwards by it).
    fn cross_veth(&self, mut st: State, link: &Link, l2_dst: IpAddr, out: &mut Vec<Branch>) {
        let netns = st.netns.clone();
        let (peer_netns, peer_ifindex) = match self.graph.peer(&netns, link.ifindex) {
            Some(Peer::Found { netns, ifindex }) => (netns, ifindex),
            Some(Peer::MissingIfindex { .. }) | Some(Peer::MissingNetns { .. }) => {
                let why = format!(
                    "the peer of {} is gone (its netns or interface is not there)",
                    link.name
                );
                return out.push(self.end(st, Verdict::Dropped, why, None));
            }
            _ => {
                let why = format!("the bundle does not say where the peer of {} is", link.name);
                return out.push(self.end(st, Verdict::Unknown, why, None));
            }
        };
        let Some((pi, peer)) = self.netns(&peer_netns).and_then(|n| n.link(peer_ifindex)) else {
            return out.push(self.end(
                st,
                Verdict::Unknown,
                "veth peer not in the bundle".into(),
                None,
            ));
        };
        let peer_ns = self.netns(&peer_netns).expect("peer netns");
        if self.keeps(true) {
            let what = format!(
                "veth {} → {} in {}",
                link.name,
                peer.name,
                self.place(&peer_netns)
            );
            self.hop(
                &mut st,
                &netns,
                Some(link.name.clone()),
                "veth",
                &what,
                Some(self.link_evidence(peer_ns, pi)),
            );
        }
        if !Netns::link_is_up(peer) {
            let why = format!("{} (the peer of {}) is down", peer.name, link.name);
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        if st.packet.size > peer.mtu {
            let why = format!(
                "{} bytes exceed the MTU {} of {}: the veth drops it",
                st.packet.size, peer.mtu, peer.name
            );
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        st.netns = peer_netns;
        st.stage = match peer.master {
            Some(bridge) => Stage::Bridge {
                bridge,
                port: peer.name.clone(),
                l2_dst,
            },
            None => Stage::Receive {
                iif: peer.name.clone(),
                prerouted: false,
            },
        };
        self.run(st, out);
    }

    /// Routing chose bridge `bridge` itself: the bridge sends the frame out of the port
    /// behind which `nexthop` lives.
    fn bridge_out(&self, mut st: State, bridge: &Link, nexthop: IpAddr, out: &mut Vec<Branch>) {
        let Some(ns) = self.netns(&st.netns) else {
            return;
        };
        let port = match self.port_towards(ns, bridge.ifindex, nexthop) {
            Toward::Port(p) => p,
            other => return self.no_port(st, bridge, nexthop, other, out),
        };
        if self.keeps(false) {
            let netns = st.netns.clone();
            let what = format!("out of port {} towards {nexthop}", port.name);
            self.hop(
                &mut st,
                &netns,
                Some(bridge.name.clone()),
                &format!("bridge {}", bridge.name),
                &what,
                None,
            );
        }
        if !Netns::link_is_up(port) {
            let why = format!("bridge port {} is down", port.name);
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        if let Some(why) = port_blocked(ns, bridge, &port.name) {
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        self.cross_veth(st, port, nexthop, out);
    }

    /// A frame entered bridge `bridge` on `port`, addressed to the owner of `l2_dst`.
    pub(super) fn bridge_in(
        &self,
        mut st: State,
        bridge: u32,
        port: String,
        l2_dst: IpAddr,
        out: &mut Vec<Branch>,
    ) {
        let Some(ns) = self.netns(&st.netns) else {
            return;
        };
        let Some((_, br)) = ns.link(bridge) else {
            return out.push(self.end(
                st,
                Verdict::Unknown,
                format!("bridge {bridge} is not in the bundle"),
                None,
            ));
        };
        if let Some(why) = port_blocked(ns, br, &port) {
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        let br_nf = self.br_netfilter(st.packet.is_v6());
        let to_bridge = self.owns_on(&ns.id, bridge, l2_dst);
        if self.keeps(false) {
            let netns = st.netns.clone();
            let what = if to_bridge {
                format!("frame for {} itself ({l2_dst}) in on port {port}", br.name)
            } else {
                format!("frame for {l2_dst} in on port {port}")
            };
            self.hop(
                &mut st,
                &netns,
                Some(port.clone()),
                &format!("bridge {}", br.name),
                &what,
                None,
            );
        }
        let br_nf = match br_nf {
            Ok(on) => on,
            // The bridge's own address: the IP layer's PREROUTING runs either way.
            Err(_) if to_bridge => false,
            Err(why) => return out.push(self.end(st, Verdict::Unknown, why, None)),
        };
        if !br_nf {
            return match to_bridge {
                true => self.run(
                    State {
                        stage: Stage::Receive {
                            iif: br.name.clone(),
                            prerouted: false,
                        },
                        ..st
                    },
                    out,
                ),
                false => self.bridge_forward(st, br, &port, l2_dst, false, out),
            };
        }
        self.bridge_prerouting(st, br, port, l2_dst, to_bridge, out);
    }

    /// br_netfilter: PREROUTING sees the frame before the bridge decides; after it the
    /// frame is bridged, or (for the bridge's own address, or once NATed) looked up as
    /// the kernel does: a route back out of the same bridge is bridged, any other routed.
    fn bridge_prerouting(
        &self,
        mut st: State,
        br: &Link,
        port: String,
        l2_dst: IpAddr,
        to_bridge: bool,
        out: &mut Vec<Branch>,
    ) {
        let bridge = br.ifindex;
        st.packet.iif = Some(br.name.clone());
        st.packet.physdev_in = Some(port.clone());
        st.packet.bridged = false;
        let dst_before = st.packet.dst;
        for mut s in self.hooks(st, Hook::Prerouting, out) {
            let rewritten = s.packet.dst != dst_before;
            if !rewritten && !to_bridge {
                self.bridge_forward(s, br, &port, l2_dst, true, out);
                continue;
            }
            let egress = self.netns(&s.netns).map(|n| {
                self.decide_route(
                    n,
                    &super::route::Lookup {
                        dst: s.packet.dst,
                        src: Some(s.packet.src),
                        iif: Some(br.name.clone()),
                        mark: s.packet.mark,
                    },
                )
            });
            match egress.map(|d| d.verdict) {
                Some(super::route::Verdict::Unicast {
                    oif: Some(o),
                    gateway,
                }) if o == bridge && rewritten => {
                    // IPv4: the kernel's input route lookup for the rewritten packet
                    // fails when the bridge does not forward: dropped, not bridged.
                    // IPv6's lookup (ip6_route_input) does not ask forwarding (only
                    // ip6_forward does, and a bridged frame never gets there): bridged.
                    let v4 = !s.packet.is_v6();
                    if let Some(stop) = self.forwarding_off(&s, &br.name).filter(|_| v4) {
                        self.dropped_by_sysctl(s, &br.name, stop, out);
                        continue;
                    }
                    let l2 = gateway.unwrap_or(s.packet.dst);
                    let netns = s.netns.clone();
                    let what = format!(
                        "{} is behind {} again: bridged, not routed",
                        s.packet.dst, br.name
                    );
                    self.hop(
                        &mut s,
                        &netns,
                        Some(br.name.clone()),
                        "br_netfilter",
                        &what,
                        None,
                    );
                    self.bridge_forward(s, br, &port, l2, true, out);
                }
                _ => self.run(
                    State {
                        stage: Stage::Receive {
                            iif: br.name.clone(),
                            prerouted: true,
                        },
                        ..s
                    },
                    out,
                ),
            }
        }
    }

    /// The bridge forwards the frame from `in_port` to the port behind which `l2_dst`
    /// lives (through FORWARD and POSTROUTING when br_netfilter is on).
    fn bridge_forward(
        &self,
        mut st: State,
        br: &Link,
        in_port: &str,
        l2_dst: IpAddr,
        br_nf: bool,
        out: &mut Vec<Branch>,
    ) {
        let Some(ns) = self.netns(&st.netns) else {
            return;
        };
        let port = match self.port_towards(ns, br.ifindex, l2_dst) {
            Toward::Port(p) => p,
            other => return self.no_port(st, br, l2_dst, other, out),
        };
        if let Some(why) = port_blocked(ns, br, &port.name) {
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        if port.name == in_port && !hairpin(port) && br.promiscuity == 0 {
            let netns = st.netns.clone();
            let what = format!("would go back out of {in_port}, where it came in: hairpin is off");
            let ev = ns
                .link_named(in_port)
                .map(|(i, _)| self.link_evidence(ns, i));
            self.hop(
                &mut st,
                &netns,
                Some(in_port.to_string()),
                &format!("bridge {}", br.name),
                &what,
                ev,
            );
            let why = format!(
                "bridge {} does not send a frame back out of {in_port} (hairpin off)",
                br.name
            );
            return out.push(self.end(st, Verdict::Dropped, why, None));
        }
        if !br_nf {
            let netns = st.netns.clone();
            let what = format!(
                "bridged to port {} (bridge-nf-call-iptables off: no iptables)",
                port.name
            );
            self.hop(
                &mut st,
                &netns,
                Some(port.name.clone()),
                &format!("bridge {}", br.name),
                &what,
                None,
            );
            return self.cross_veth(st, port, l2_dst, out);
        }
        st.packet.iif = Some(br.name.clone());
        st.packet.oif = Some(br.name.clone());
        st.packet.physdev_in = Some(in_port.to_string());
        st.packet.physdev_out = Some(port.name.clone());
        st.packet.bridged = true;
        for s in self.hooks(st, Hook::Forward, out) {
            for mut s2 in self.hooks(s, Hook::Postrouting, out) {
                s2.packet.physdev_in = None;
                s2.packet.physdev_out = None;
                s2.packet.bridged = false;
                self.cross_veth(s2, port, l2_dst, out);
            }
        }
    }

    /// The port of bridge `bridge` whose far end owns `ip`; when none does but a port
    /// leads into a netns the bundle does not hold, what is there cannot be known.
    fn port_towards(&self, ns: &'a Netns, bridge: u32, ip: IpAddr) -> Toward<'a> {
        let Some(ports) = self.bridges.get(&(ns.id.clone(), bridge)) else {
            return Toward::Nowhere;
        };
        if let Some(&i) = ports.by_ip.get(&ip) {
            return Toward::Port(&ns.links.items[i]);
        }
        match ports.hidden {
            Some(i) => Toward::Hidden(&ns.links.items[i]),
            None => Toward::Nowhere,
        }
    }

    /// Ends a branch whose next hop is not behind any port the bundle can follow.
    fn no_port(&self, st: State, br: &Link, ip: IpAddr, toward: Toward<'_>, out: &mut Vec<Branch>) {
        let (verdict, why) = match toward {
            Toward::Hidden(l) => (
                Verdict::Unknown,
                format!(
                    "no port of {} leads to {ip} in the bundle, but {} leads into a netns the bundle does not hold: {ip} may be there",
                    br.name, l.name
                ),
            ),
            _ => (
                Verdict::Dropped,
                format!("no port of {} leads to {ip}: its neighbour lookup fails", br.name),
            ),
        };
        out.push(self.end(st, verdict, why, None));
    }

    /// Whether bridged frames of this family go through the node's iptables, or why
    /// the bundle cannot tell.
    fn br_netfilter(&self, v6: bool) -> Result<bool, String> {
        let key = if v6 {
            "net.bridge.bridge-nf-call-ip6tables"
        } else {
            "net.bridge.bridge-nf-call-iptables"
        };
        if self.options.assume_forwarding {
            return Ok(true);
        }
        if let Some((v, _)) = self.model.node_sysctl(key) {
            return Ok(v.trim() == "1");
        }
        // Absent from captured sysctls: br_netfilter is not loaded, nothing is called.
        // Absent because no sysctl source was captured: unknown, not off.
        match self.model.node_sysctls_missing() {
            None => Ok(false),
            Some(gap) => Err(format!(
                "whether bridged frames pass the node's iptables is unknown: {key} cannot be read, the node's sysctls are not in the bundle ({gap})"
            )),
        }
    }
}

/// Where a bridge sends a frame for an address.
enum Toward<'a> {
    Port(&'a Link),
    /// Not behind a known port, but behind this one into a netns not in the bundle.
    Hidden(&'a Link),
    Nowhere,
}

/// Why bridge `br` takes no frame in on `port`: the bridge is down (so every port is
/// disabled: br_stp_disable_bridge) or the port is not forwarding (STP state).
fn port_blocked(ns: &Netns, br: &Link, port: &str) -> Option<String> {
    if !Netns::link_is_up(br) {
        return Some(format!(
            "bridge {} is down: its ports are disabled and drop every frame",
            br.name
        ));
    }
    let state = ns
        .link_named(port)
        .and_then(|(_, l)| l.bridge_port.as_ref())
        .and_then(|b| b.state)?;
    // 3 is forwarding; 0 disabled, 1 listening, 2 learning, 4 blocking drop frames.
    (state != 3).then(|| {
        format!(
            "bridge port {port} of {} is in STP state {state}, not forwarding: it drops the frame",
            br.name
        )
    })
}

fn hairpin(port: &Link) -> bool {
    port.bridge_port.as_ref().is_some_and(|b| b.hairpin)
}
