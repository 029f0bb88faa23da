//! `/proc/net/nf_conntrack` text, consistent with the services: pods talk to service
//! VIPs and the entries carry the DNAT to one endpoint in the reply tuple. Written
//! line by line to any writer, so a million entries never sit in memory.

use crate::plan::Plan;
use netsnap_kube_shapes::Protocol;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Source ports, 32768..=60999 (`ip_local_port_range`).
const PORT_LO: u64 = 32_768;
const PORTS: u64 = 28_232;
/// Planted stale UDP entries (CT005), when the fault is planted.
const STALE_ENTRIES: u64 = 3;

struct Tuple {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
}

#[allow(clippy::too_many_arguments)]
fn line(
    buf: &mut String,
    proto: Protocol,
    timeout: u64,
    state: Option<&str>,
    orig: &Tuple,
    reply: &Tuple,
    unreplied: bool,
    assured: bool,
) {
    buf.clear();
    let (name, num) = match proto {
        Protocol::Tcp => ("tcp", 6),
        Protocol::Udp => ("udp", 17),
    };
    // The kernel's "%-8s %u %-8s %u %ld " prefix, then the protocol state.
    let _ = write!(buf, "ipv4     2 {name:<8} {num} {timeout} ");
    if let Some(s) = state {
        let _ = write!(buf, "{s} ");
    }
    let _ = write!(
        buf,
        "src={} dst={} sport={} dport={} ",
        orig.src, orig.dst, orig.sport, orig.dport
    );
    if unreplied {
        buf.push_str("[UNREPLIED] ");
    }
    let _ = write!(
        buf,
        "src={} dst={} sport={} dport={} ",
        reply.src, reply.dst, reply.sport, reply.dport
    );
    if assured {
        buf.push_str("[ASSURED] ");
    }
    buf.push_str("mark=0 zone=0 use=2\n");
}

/// Writes `plan.spec.conntrack` entries. Sources round-robin over the pods, each pod
/// with its own run of source ports (a bijection, so tuples never repeat); each
/// service's flows round-robin over its endpoints (no skew: CT007 stays quiet).
pub fn write<W: Write>(plan: &Plan, out: &mut W) -> io::Result<()> {
    let mut r = plan.rng("conntrack");
    let total = plan.spec.conntrack;
    let pods = &plan.pods;
    let npods = pods.len() as u64;
    let with_eps: Vec<usize> = (3..plan.services.len())
        .filter(|&i| !plan.services[i].endpoints.is_empty())
        .collect();
    let mut next_ep = vec![0usize; plan.services.len()];
    let stale = plan
        .stale_dns_backend
        .map(|ip| (ip, STALE_ENTRIES.min(total)))
        .unwrap_or((Ipv4Addr::UNSPECIFIED, 0));
    // Spread the planted entries through the file rather than bunching them.
    let stale_every = total.checked_div(stale.1).unwrap_or(0);
    let mut stale_left = stale.1;
    let mut buf = String::with_capacity(256);

    for n in 0..total {
        let k = (n % npods) as usize;
        let round = n / npods;
        let sport = (PORT_LO + (round * 7_919 + k as u64 * 131) % PORTS) as u16;
        let pod_ip = pods[k].ip;
        let roll = r.below(100);
        let is_stale = stale_left > 0 && stale_every > 0 && n % stale_every == stale_every / 2;

        if is_stale || roll < 15 {
            // DNS over UDP to the cluster DNS VIP.
            let dns = &plan.services[1];
            let backend = if is_stale {
                stale_left -= 1;
                stale.0
            } else {
                let j = next_ep[1] % dns.endpoints.len().max(1);
                next_ep[1] += 1;
                dns.endpoints.get(j).map(|e| *e.ip()).unwrap_or(pod_ip)
            };
            let unreplied = !is_stale && r.percent(8);
            let reply_dst = if backend == pod_ip {
                plan.bridge_ip()
            } else {
                pod_ip
            };
            line(
                &mut buf,
                Protocol::Udp,
                r.range(1, 30),
                None,
                &Tuple {
                    src: pod_ip,
                    dst: *dns.vip.ip(),
                    sport,
                    dport: 53,
                },
                &Tuple {
                    src: backend,
                    dst: reply_dst,
                    sport: 53,
                    dport: sport,
                },
                unreplied,
                false,
            );
        } else if roll < 20 {
            // kubelet's probes from the bridge address, no NAT. The probed pod is this
            // round's pod, so its run of source ports keeps the tuples unique.
            let target = &pods[k];
            let port = target.tcp.iter().next().copied().unwrap_or(8080);
            let src = plan.bridge_ip();
            line(
                &mut buf,
                Protocol::Tcp,
                r.range(1, 120),
                Some("TIME_WAIT"),
                &Tuple {
                    src,
                    dst: target.ip,
                    sport,
                    dport: port,
                },
                &Tuple {
                    src: target.ip,
                    dst: src,
                    sport: port,
                    dport: sport,
                },
                false,
                true,
            );
        } else {
            // A pod to a service VIP, DNATed to the next endpoint of that service.
            let i = if roll < 23 || with_eps.is_empty() {
                0 // default/kubernetes
            } else {
                with_eps[r.below(with_eps.len() as u64) as usize]
            };
            let s = &plan.services[i];
            let ep = s.endpoints[next_ep[i] % s.endpoints.len()];
            next_ep[i] += 1;
            // Hairpin: a pod reaching itself through its service is masqueraded to
            // the bridge address.
            let reply_dst = if *ep.ip() == pod_ip {
                plan.bridge_ip()
            } else {
                pod_ip
            };
            let orig = Tuple {
                src: pod_ip,
                dst: *s.vip.ip(),
                sport,
                dport: s.vip.port(),
            };
            let reply = Tuple {
                src: *ep.ip(),
                dst: reply_dst,
                sport: ep.port(),
                dport: sport,
            };
            match s.protocol {
                Protocol::Udp => {
                    let stream = r.percent(60);
                    let timeout = if stream {
                        r.range(1, 120)
                    } else {
                        r.range(1, 30)
                    };
                    line(
                        &mut buf,
                        Protocol::Udp,
                        timeout,
                        None,
                        &orig,
                        &reply,
                        false,
                        stream,
                    );
                }
                Protocol::Tcp => {
                    let p = r.below(100);
                    let (state, timeout, unreplied, assured) = if p < 70 {
                        ("ESTABLISHED", r.range(1, 432_000), false, true)
                    } else if p < 92 {
                        ("TIME_WAIT", r.range(1, 120), false, true)
                    } else if p < 95 {
                        ("SYN_SENT", r.range(1, 120), true, false)
                    } else if p < 98 {
                        ("CLOSE_WAIT", r.range(1, 60), false, true)
                    } else {
                        ("FIN_WAIT", r.range(1, 120), false, true)
                    };
                    line(
                        &mut buf,
                        Protocol::Tcp,
                        timeout,
                        Some(state),
                        &orig,
                        &reply,
                        unreplied,
                        assured,
                    );
                }
            }
        }
        out.write_all(buf.as_bytes())?;
    }
    Ok(())
}
