//! IPVS (kube-proxy ipvs mode) in the walk. IPVS hooks LOCAL_IN of the node netns
//! (`ip_vs_remote_request4`, priority `NF_IP_PRI_NAT_SRC - 2`: after the filter INPUT
//! chains, before socket delivery): a packet whose (destination, protocol, port) is a
//! virtual service ([`crate::model::ipvs::VirtualServer`], from `ipvs/ip_vs.txt`) is
//! scheduled to a real server instead of reaching a local socket. LOCAL_IN only sees
//! packets routed as local, so for what comes in (from a pod, from outside) a VIP must
//! be an address of the node (kube-proxy binds every VIP on the dummy `kube-ipvs0`); a
//! VIP that is not is routed like any address (SVC006), and the trace says so. What
//! the node itself sends is scheduled at LOCAL_OUT (`ip_vs_local_request4`, priority
//! `NF_IP_PRI_NAT_DST + 2`, after nat OUTPUT), VIP bound or not: `ip_vs_in()` ignores
//! packets not addressed to the host except at LOCAL_OUT.
//!
//! What the kernel does, from `net/netfilter/ipvs/` (ip_vs_core.c, ip_vs_proto_tcp.c,
//! ip_vs_xmit.c, ip_vs_rr.c):
//! - scheduling: `ip_vs_in()` → `tcp_conn_schedule()`/`udp_conn_schedule()` →
//!   `ip_vs_schedule()` → the scheduler's `schedule()`. Every scheduler skips real
//!   servers of weight 0 (`ip_vs_rr_schedule`: `atomic_read(&dest->weight) > 0`). The
//!   engine gives each real server of weight > 0 a branch of probability weight / sum
//!   of weights: exact for `wrr`, and for `rr` with the equal weights kube-proxy sets;
//!   `lc`, `sh` and the others choose by connection counts or hashes the bundle does
//!   not pin down, so the same split is their expectation, and the step says so.
//! - no destination (no real server, or all of weight 0): the scheduler logs "no
//!   destination available" (`ip_vs_scheduler_err`) and returns NULL, `ip_vs_schedule()`
//!   leaves `*ignored = 0`, and the protocol's `conn_schedule` calls `ip_vs_leave()`,
//!   which (no fwmark cache bypass, not FTP) does `icmp_send(skb, ICMP_DEST_UNREACH,
//!   ICMP_PORT_UNREACH, 0)` and returns `NF_DROP` — "the TCP RST packet cannot be sent,
//!   instead that ICMP_PORT_UNREACH is sent here no matter it is TCP/UDP". So a TCP
//!   client gets ICMP port unreachable (connect fails with ECONNREFUSED), not a reset
//!   and not silence: the verdict is `rejected` with icmp-port-unreachable, as for
//!   iptables kube-proxy's REJECT of a service without endpoints.
//! - Masq (NAT) forwarding: `ip_vs_nat_xmit()` looks up the output route to the real
//!   server, rewrites destination address and port (`dest->port`, else the virtual
//!   port), and `ip_vs_nat_send_or_cont()` sends it through
//!   `NF_HOOK(NF_INET_LOCAL_OUT, …, dst_output)`: OUTPUT then POSTROUTING, as a locally
//!   sent packet (no FORWARD). With `net.ipv4.vs.conntrack = 1` (kube-proxy sets it)
//!   `ip_vs_update_conntrack()` makes conntrack expect the real server's reply, which
//!   is turned back to come from the VIP: the engine records the NAT as the node's
//!   (`nat_netns`), so the reply is reversed like a DNAT. A real server that is local
//!   (the route says so) is delivered to its socket (`local` → `NF_ACCEPT`).
//!
//! Approximations: the engine runs IPVS after all the chains of the hook (the kernel
//! runs it before nat INPUT at 100, and before filter OUTPUT at LOCAL_OUT, where the
//! packet it sends then traverses OUTPUT again: the engine runs filter OUTPUT twice,
//! the kernel once); the `Tunnel` and `Route` (direct routing) forward methods end
//! `unknown` (kube-proxy uses Masq); an established connection is scheduled as a new
//! one (its ip_vs_conn entry is not followed).

use super::engine::{Engine, State};
use super::packet::{CtState, Hook, Proto};
use super::path::{Branch, Verdict};
use crate::model::ipvs::{RealServer, VirtualServer};
use crate::model::services::{sockaddr, Protocol};

impl<'a> Engine<'a> {
    /// The IPVS virtual service a request in the node netns is addressed to.
    fn virtual_service(&self, st: &State) -> Option<&'a VirtualServer> {
        if st.reply.is_some() || st.netns != self.root {
            return None;
        }
        let protocol = match st.packet.proto {
            Proto::Tcp => Protocol::Tcp,
            Proto::Udp => Protocol::Udp,
            Proto::Icmp => return None,
        };
        self.model
            .ipvs
            .virtual_server(st.packet.dst, st.packet.dport, protocol)
    }

    /// LOCAL_IN, after the INPUT chains: IPVS takes a packet for one of its virtual
    /// services (its branches go on from here, or end); any other packet is handed
    /// back for socket delivery.
    pub(super) fn ipvs_local_in(&self, st: State, out: &mut Vec<Branch>) -> Option<State> {
        match self.virtual_service(&st) {
            Some(vs) => {
                self.schedule(st, vs, "LOCAL_IN instead of a local socket", out);
                None
            }
            None => Some(st),
        }
    }

    /// LOCAL_OUT, after the OUTPUT chains: IPVS takes what the node itself sends to a
    /// virtual service, whether or not its VIP is bound (`ip_vs_local_request4`); any
    /// other packet is handed back to go on to POSTROUTING.
    pub(super) fn ipvs_local_out(&self, st: State, out: &mut Vec<Branch>) -> Option<State> {
        match self.virtual_service(&st) {
            Some(vs) => {
                self.schedule(st, vs, "LOCAL_OUT (sent by the node itself)", out);
                None
            }
            None => Some(st),
        }
    }

    /// Schedules `st` to the real servers of `vs`, or rejects it when there is none.
    fn schedule(&self, mut st: State, vs: &VirtualServer, hook: &str, out: &mut Vec<Branch>) {
        let vip = sockaddr(vs.ip, vs.port);
        let live: Vec<&RealServer> = vs.real_servers.iter().filter(|r| r.weight > 0).collect();
        let drained: Vec<String> = vs
            .real_servers
            .iter()
            .filter(|r| r.weight == 0)
            .map(|r| sockaddr(r.ip, real_port(vs, r)))
            .collect();
        let mut what = format!(
            "{vip}/{} is an IPVS virtual service (scheduler {}{}, taken as weight-proportional like wrr and lc: p = weight / sum of the weights above 0): IPVS takes it at {hook}",
            vs.protocol,
            vs.scheduler,
            vs.persistent
                .map(|t| format!(", persistent {t} s"))
                .unwrap_or_default()
        );
        if !drained.is_empty() {
            what.push_str(&format!(
                "; weight 0, skipped by every scheduler: {}",
                drained.join(", ")
            ));
        }
        if st.packet.ct != CtState::New {
            what.push_str("; an established connection keeps the real server IPVS chose for it (its ip_vs_conn entry is not followed): taken as a new one would be scheduled");
        }
        let ns = st.netns.clone();
        self.hop(&mut st, &ns, None, "ipvs", &what, Some(vs.evidence.clone()));
        let total: u64 = live.iter().map(|r| u64::from(r.weight)).sum();
        if live.is_empty() {
            // ip_vs_leave(): ICMP port unreachable whatever the protocol, then NF_DROP
            // (see the module doc).
            let none = if vs.real_servers.is_empty() {
                "no real server".to_string()
            } else {
                format!("{} real servers, all of weight 0", vs.real_servers.len())
            };
            let why = format!(
                "IPVS virtual service {vip}/{} has {none}: no destination available, so ip_vs_leave() answers icmp-port-unreachable (for TCP too, never a reset) and drops it",
                vs.protocol
            );
            return out.push(self.end(st, Verdict::Rejected, why, None));
        }
        for rs in live {
            let share = f64::from(rs.weight) / total as f64;
            let mut s = st.clone();
            s.probability *= share;
            let to = sockaddr(rs.ip, real_port(vs, rs));
            let pick = format!("weight {} of {total} (p = {share:.3})", rs.weight);
            if rs.forward.eq_ignore_ascii_case("masq") {
                let what = format!("Masq to {to}, {pick}: DNAT {vip} → {to}");
                self.hop(&mut s, &ns, None, "ipvs", &what, Some(rs.evidence.clone()));
                s.packet.dst = rs.ip;
                s.packet.dport = real_port(vs, rs);
                s.nat_netns = Some(ns.clone());
                s.dnat_bound = true;
                self.ipvs_xmit(s, out);
            } else if rs.forward.eq_ignore_ascii_case("local") {
                let what = format!(
                    "Local to {to}, {pick}: the real server is this node, delivered unchanged"
                );
                self.hop(&mut s, &ns, None, "ipvs", &what, Some(rs.evidence.clone()));
                self.deliver(s, out);
            } else {
                let what = format!("{} to {to}, {pick}", rs.forward);
                self.hop(&mut s, &ns, None, "ipvs", &what, Some(rs.evidence.clone()));
                let why = format!(
                    "IPVS forward method {} (tunnel or direct routing) is not modelled",
                    rs.forward
                );
                out.push(self.end(s, Verdict::Unknown, why, None));
            }
        }
    }

    /// `ip_vs_nat_xmit()`: the output route to the real server, then OUTPUT and
    /// POSTROUTING as a locally sent packet; a local real server takes it directly.
    fn ipvs_xmit(&self, mut st: State, out: &mut Vec<Branch>) {
        st.packet.iif = None;
        st.packet.oif = None;
        st.packet.physdev_in = None;
        st.packet.physdev_out = None;
        st.packet.bridged = false;
        let egress = match self.route(&mut st, None, false) {
            Ok(e) => e,
            Err((v, why)) => return out.push(self.end(st, v, why, None)),
        };
        let Some(e) = egress else {
            return self.deliver(st, out);
        };
        st.packet.oif = Some(self.oif_name(&st.netns, Some(&e)));
        for s in self.hooks(st, Hook::Output, out) {
            for s2 in self.hooks(s, Hook::Postrouting, out) {
                self.transmit(s2, e.oif, e.nexthop, out);
            }
        }
    }

    /// A request for a virtual service that routing forwards: its VIP is not an
    /// address of the node, so IPVS never sees it. Says so (SVC006).
    pub(super) fn ipvs_not_local(&self, st: &mut State) {
        let Some(vs) = self.virtual_service(st) else {
            return;
        };
        let what = format!(
            "{}/{} is an IPVS virtual service, but {} is not an address of the node (not bound on kube-ipvs0, SVC006): IPVS only takes packets delivered locally, so it is routed like any address",
            sockaddr(vs.ip, vs.port),
            vs.protocol,
            vs.ip
        );
        let ns = st.netns.clone();
        self.hop(st, &ns, None, "ipvs", &what, Some(vs.evidence.clone()));
    }
}

/// The port IPVS sends to: the real server's, or the virtual port when it is 0.
fn real_port(vs: &VirtualServer, rs: &RealServer) -> u16 {
    if rs.port == 0 {
        vs.port
    } else {
        rs.port
    }
}
