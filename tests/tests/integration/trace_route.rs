//! Differential test of the trace engine's routing decision against the kernel: a lab
//! node gets extra routes and policy rules of every kind the engine models (route
//! types blackhole/unreachable/prohibit/throw, equal prefixes with different metrics,
//! a second table behind a plain and a masked fwmark rule, rule actions, a rule to an empty table), is
//! captured with the real collector, and for every sampled (destination, mark) the
//! engine's decision on the bundle is compared with `ip route get` in the node netns
//! and in every pod netns
//! (a kernel FIB lookup; no packet is sent). The agreement is printed; it must be 100 %.

use netsnap_analyzer::model::{self, Netns};
use netsnap_analyzer::sources;
use netsnap_analyzer::trace::route::{decide, Lookup, Verdict};
use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::lab::{require_lab, Lab, ProxyMode};
use netsnap_tests::notice;
use serde_json::Value;
use std::net::IpAddr;

/// Extra routing state, applied in the lab's node netns (one `ip` command a line).
const SETUP: &[&str] = &[
    "ip route add blackhole 10.50.0.0/16",
    "ip route add unreachable 10.51.0.0/16",
    "ip route add prohibit 10.52.0.0/16",
    "ip route add 10.53.0.0/16 via 198.51.100.1 metric 50",
    "ip route add 10.53.0.0/16 dev cni0 metric 10",
    "ip route add 10.53.1.0/24 via 198.51.100.1",
    "ip route add table 100 default dev cni0",
    "ip route add table 100 10.54.0.0/16 via 198.51.100.1",
    "ip route add table 100 throw 10.55.0.0/16",
    "ip route add table 100 blackhole 10.56.0.0/16",
    "ip rule add fwmark 0x10 lookup 100 pref 1000",
    "ip rule add fwmark 0x20/0xf0 lookup 100 pref 900",
    "ip rule add to 10.57.0.0/16 prohibit pref 1100",
    "ip rule add to 10.58.0.0/16 lookup 200 pref 1200",
    "ip rule add to 10.59.0.0/16 unreachable pref 1300",
    "ip rule add to 10.60.0.0/16 blackhole pref 1400",
    // IPv6: the same kinds, so the engine is held to both families.
    "ip -6 addr add fd00:10::1/64 dev cni0 nodad",
    "ip -6 route add fd00:20::/48 via fd00:10::2 dev cni0",
    "ip -6 route add blackhole fd00:50::/32",
    "ip -6 route add unreachable fd00:51::/32",
    "ip -6 route add prohibit fd00:52::/32",
    "ip -6 route add table 100 default via fd00:10::3 dev cni0",
    "ip -6 rule add fwmark 0x10 lookup 100 pref 1000",
    "ip -6 rule add to fd00:60::/32 unreachable pref 1300",
];

/// Marks every destination is looked up with: none, the plain fwmark rule's, and one
/// that only the masked rule (`0x20/0xf0`) matches.
const MARKS: [u32; 3] = [0, 0x10, 0x25];

/// What the kernel said, in the engine's terms: the verdict kind, and for unicast the
/// output device and gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Unicast { dev: String, via: Option<IpAddr> },
    Local,
    Broadcast,
    Blackhole,
    Unreachable,
    Prohibit,
    NoRoute,
    Other(String),
}

/// Where a lookup runs: the node netns, or pod `i`'s.
#[derive(Clone, Copy)]
enum Place {
    Node,
    Pod(usize),
}

fn kernel(lab: &Lab, place: Place, dst: IpAddr, mark: u32) -> Outcome {
    let (dst, mark) = (dst.to_string(), mark.to_string());
    let args = ["ip", "-j", "route", "get", &dst, "mark", &mark];
    let out = match place {
        Place::Node => lab.node(&args),
        Place::Pod(i) => lab.pod_exec(i, &args),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return match () {
            _ if err.contains("Invalid argument") => Outcome::Blackhole,
            _ if err.contains("No route to host") => Outcome::Unreachable,
            _ if err.contains("Permission denied") => Outcome::Prohibit,
            _ if err.contains("Network is unreachable") => Outcome::NoRoute,
            _ => Outcome::Other(err.trim().to_string()),
        };
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let r = &v[0];
    match r["type"].as_str() {
        Some("local") => Outcome::Local,
        Some("broadcast") => Outcome::Broadcast,
        None | Some("unicast") => Outcome::Unicast {
            dev: r["dev"].as_str().unwrap_or_default().to_string(),
            via: r["gateway"].as_str().and_then(|g| g.parse().ok()),
        },
        Some(other) => Outcome::Other(other.to_string()),
    }
}

fn engine(ns: &Netns, dst: IpAddr, mark: u32) -> Outcome {
    let mut lookup = Lookup::output(dst);
    lookup.mark = mark;
    match decide(ns, &lookup).verdict {
        Verdict::Unicast { oif, gateway } => Outcome::Unicast {
            dev: oif
                .and_then(|i| ns.link(i))
                .map(|(_, l)| l.name.clone())
                .unwrap_or_default(),
            via: gateway,
        },
        Verdict::Local => Outcome::Local,
        Verdict::Broadcast => Outcome::Broadcast,
        Verdict::Blackhole => Outcome::Blackhole,
        Verdict::Unreachable => Outcome::Unreachable,
        Verdict::Prohibit => Outcome::Prohibit,
        Verdict::NoRoute => Outcome::NoRoute,
        Verdict::Unknown(why) => Outcome::Other(format!("unknown: {why}")),
    }
}

/// Destinations: every pod, the node's own addresses, its gateway, an address inside
/// and at the edge of every extra range, and outside addresses, IPv4 and IPv6.
fn destinations(lab: &Lab) -> Vec<IpAddr> {
    let mut d: Vec<IpAddr> = lab.pods().iter().map(|p| IpAddr::V4(p.ip)).collect();
    d.push(IpAddr::V4(lab.gateway_ip()));
    for s in [
        "198.51.100.1",
        "198.51.100.2",
        "127.0.0.1",
        "10.50.3.4",
        "10.51.0.1",
        "10.52.255.254",
        "10.53.0.9",
        "10.53.1.9",
        "10.53.2.9",
        "10.54.7.7",
        "10.55.7.7",
        "10.56.7.7",
        "10.57.0.1",
        "10.58.0.1",
        "10.59.0.1",
        "10.60.0.1",
        "192.0.2.77",
        "203.0.113.200",
        "::1",
        "fd00:10::1",
        "fd00:10::5",
        "fd00:20::1",
        "fd00:50::1",
        "fd00:51::1",
        "fd00:52::1",
        "fd00:60::1",
        "2001:db8::1",
    ] {
        d.push(s.parse().expect("literal address"));
    }
    d
}

#[test]
fn routing_decisions_agree_with_the_kernel() {
    let Some(_env) = require_lab() else { return };
    let lab = Lab::builder("troute")
        .pods(4)
        .services(0)
        .bridge_name("cni0")
        .proxy_mode(ProxyMode::Iptables)
        .build()
        .expect("build lab");
    for line in SETUP {
        let cmd: Vec<&str> = line.split_whitespace().collect();
        let out = lab.node(&cmd);
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bundle = collect_lab(&lab, "route", &["--only", "netns"]);

    let b = Bundle::open(&bundle, &ReadLimits::default()).expect("bundle opens");
    let mut parsed = sources::parse_all(&b);
    let m = model::build(&mut parsed);
    let node = m.netns.values().find(|n| n.is_root).expect("node netns");
    // Each pod's netns, found in the model by the pod's address.
    let mut places = vec![(Place::Node, node)];
    for (i, p) in lab.pods().iter().enumerate() {
        let owner = m
            .netns
            .values()
            .find(|n| !n.is_root && n.global_ips().any(|(_, ip)| ip == IpAddr::V4(p.ip)));
        places.push((Place::Pod(i), owner.expect("pod netns in the bundle")));
    }

    let mut agree = 0;
    let mut disagree = Vec::new();
    let samples: Vec<(IpAddr, u32)> = destinations(&lab)
        .into_iter()
        .flat_map(|d| MARKS.map(|m| (d, m)))
        .collect();
    for (place, ns) in &places {
        for &(dst, mark) in &samples {
            let (k, e) = (kernel(&lab, *place, dst, mark), engine(ns, dst, mark));
            if k == e {
                agree += 1;
            } else {
                disagree.push(format!(
                    "netns {} {dst} mark {mark:#x}: kernel {k:?}, engine {e:?}",
                    ns.id
                ));
            }
        }
    }
    let total = samples.len() * places.len();
    notice(&format!(
        "trace_route: {agree}/{total} routing decisions agree with the kernel ({:.1} %): {} destinations × marks {}, in the node netns ({} extra routes and rules) and {} pod netns",
        100.0 * agree as f64 / total as f64,
        samples.len() / MARKS.len(),
        MARKS.map(|m| format!("{m:#x}")).join("/"),
        SETUP.len(),
        places.len() - 1
    ));
    assert!(
        disagree.is_empty(),
        "disagreements:\n{}",
        disagree.join("\n")
    );
}
