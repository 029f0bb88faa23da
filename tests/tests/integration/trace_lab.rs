//! Differential test of the trace engine against the kernel, packet by packet. A lab
//! node (iptables and nftables kube-proxy modes) is captured with the real collector,
//! healthy and then under each fault injector (a fresh lab each); for every (pod,
//! service port) pair and a sample of pod-to-pod pairs (a listening and a closed
//! port), the engine traces the request on the bundle and the lab sends the same
//! request for real (TCP connect or UDP request/response, 1.5 s timeout, all probes of
//! a case at once). The kernel's outcome must be one the trace's branches predict:
//! the endpoint that answered, refused, unreachable or silence (see `predicts`).
//! The agreement figure is printed; it must be 100 %. `trace_lab/mutations.rs` does the
//! same under random rule, link and route mutations.

use netsnap_analyzer::trace::path::{Branch, Verdict};
use netsnap_analyzer::trace::request::{self, Ask};
use netsnap_analyzer::trace::{packet::Proto, Prepared};
use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::collect_support::collect_lab;
use netsnap_tests::lab::probe::{self, Observed, Probe};
use netsnap_tests::lab::{require_lab, CniMode, Lab, Protocol, ProxyMode};
use netsnap_tests::notice;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

mod cluster;
mod mutations;

const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// A port nothing in the lab listens on.
const CLOSED_PORT: u16 = 9;

#[derive(Default)]
struct Tally {
    scenarios: usize,
    agree: usize,
    total: usize,
    disagreements: Vec<String>,
    /// Cases the trace calls unknown (what happened is outside the bundle), by label.
    unknown: Vec<String>,
    /// Cases whose first answer disagreed, sent again alone.
    reprobed: usize,
}

/// Scenarios where the bundle cannot see where packets go: the dangling veth's peer
/// netns is held by no process, so no collector can find it; traces into it must say
/// `unknown`, and do.
const BUNDLE_CANNOT_SEE: &[&str] = &["dangling-host-veth"];

/// What the kernel may do with a request the trace gave `b` for.
fn predicts(b: &Branch, proto: Protocol, observed: &Observed, labs: &[&Lab]) -> bool {
    let udp = proto == Protocol::Udp;
    let silent = matches!(observed, Observed::TimedOut);
    let unreachable = matches!(observed, Observed::Unreachable(_));
    match b.verdict {
        Verdict::Delivered => match observed {
            Observed::Answered(reply) => answered_by(b, reply, labs),
            Observed::Connected => true,
            _ => false,
        },
        // An unconnected UDP socket is not told of ICMP errors: it hears nothing.
        Verdict::Refused => {
            if udp {
                silent
            } else {
                *observed == Observed::Refused
            }
        }
        Verdict::Rejected => {
            let port_unreachable = ["port-unreach", "tcp-reset", "tcp reset"]
                .iter()
                .any(|w| b.reason.contains(w));
            match (udp, port_unreachable) {
                (true, _) => silent,
                (false, true) => *observed == Observed::Refused,
                (false, false) => unreachable || silent,
            }
        }
        Verdict::Dropped => silent || (!udp && unreachable),
        Verdict::NoRoute => unreachable || silent,
        Verdict::LeftNode | Verdict::Unknown => false,
    }
}

/// Whether `reply` came from the endpoint the branch names: the lab's listeners
/// answer with their pod's name; the DNS stub echoes the query. `labs`: every node
/// the endpoint may be on.
fn answered_by(b: &Branch, reply: &str, labs: &[&Lab]) -> bool {
    let Some(ip) = b
        .endpoint
        .as_deref()
        .and_then(|e| e.parse::<SocketAddr>().ok())
        .map(|s| s.ip())
    else {
        return false;
    };
    let Some(pod) = labs
        .iter()
        .flat_map(|l| l.pods())
        .find(|p| IpAddr::V4(p.ip) == ip || p.ip6.map(IpAddr::V6) == Some(ip))
    else {
        return false;
    };
    pod.name == reply || pod.name.starts_with("coredns")
}

#[derive(Clone)]
pub(crate) struct Case {
    what: String,
    /// Index in `lab.pods()` of the client.
    from: usize,
    target: Target,
    ask: Ask,
    probe: Probe,
    proto: Protocol,
}

/// What a case sends to: a service port or a pod (indices in the lab's lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Service(usize),
    Pod(usize),
}

/// Every (pod, service port) pair and each pod to the next two pods' first port and
/// a closed one.
fn cases(lab: &Lab) -> Vec<Case> {
    cases_of(lab, false)
}

/// The same over IPv6 (dual-stack labs): every pod to every service port's IPv6
/// ClusterIP, and to the next two pods' IPv6 addresses.
pub(crate) fn cases_v6(lab: &Lab) -> Vec<Case> {
    cases_of(lab, true)
}

fn cases_of(lab: &Lab, v6: bool) -> Vec<Case> {
    let live: Vec<usize> = (0..lab.pods().len())
        .filter(|&i| !lab.pods()[i].deleted)
        .collect();
    let mut out = Vec::new();
    let proto_of = |p: Protocol| match p {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
    };
    for &i in &live {
        let pod = &lab.pods()[i];
        let from = format!("{}/{}", pod.namespace, pod.name);
        for (si, s) in lab.services().iter().enumerate() {
            let to = match (v6, s.vip6()) {
                (false, _) => SocketAddr::new(IpAddr::V4(s.cluster_ip), s.port),
                (true, Some(vip6)) => SocketAddr::V6(vip6),
                (true, None) => continue,
            };
            out.push(Case {
                what: format!(
                    "{from} → service {}/{}:{} {to}",
                    s.namespace, s.name, s.port_name
                ),
                from: i,
                target: Target::Service(si),
                ask: Ask {
                    from: from.clone(),
                    to: to.to_string(),
                    proto: Some(proto_of(s.protocol)),
                    ..Ask::default()
                },
                probe: Probe {
                    netns: pod.netns_path.clone(),
                    proto: s.protocol,
                    to,
                    payload: lab.payload_for(si),
                },
                proto: s.protocol,
            });
        }
        for step in 1..=2 {
            let j = live[(live.iter().position(|&x| x == i).unwrap_or(0) + step) % live.len()];
            if j == i {
                continue;
            }
            let peer = &lab.pods()[j];
            let peer_ip = match (v6, peer.ip6) {
                (false, _) => IpAddr::V4(peer.ip),
                (true, Some(ip6)) => IpAddr::V6(ip6),
                (true, None) => continue,
            };
            let ports = peer
                .listen_ports
                .first()
                .copied()
                .into_iter()
                .chain([CLOSED_PORT]);
            // The DNS stub answers a query; the other listeners answer anything.
            let dns_tcp = lab
                .dns_service_indices()
                .into_iter()
                .find(|&si| lab.services()[si].protocol == Protocol::Tcp);
            for port in ports {
                let payload = match dns_tcp {
                    Some(si) if port == 53 => lab.payload_for(si),
                    _ => Vec::new(),
                };
                let to = SocketAddr::new(peer_ip, port);
                out.push(Case {
                    what: format!("{from} → pod {}/{} {to}", peer.namespace, peer.name),
                    from: i,
                    target: Target::Pod(j),
                    ask: Ask {
                        from: from.clone(),
                        to: to.to_string(),
                        proto: Some(Proto::Tcp),
                        ..Ask::default()
                    },
                    probe: Probe {
                        netns: pod.netns_path.clone(),
                        proto: Protocol::Tcp,
                        to,
                        payload,
                    },
                    proto: Protocol::Tcp,
                });
            }
        }
    }
    out
}

/// How one case came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A live branch of the trace predicts what the kernel did.
    Agree,
    /// No branch predicts it and one says unknown: what happened is outside the bundle.
    Unknown,
    /// No branch predicts it and one leaves the node: where it went next is another
    /// node's business (none of the lab's cases should leave it).
    LeftNode,
    /// No branch predicts it (or the request does not resolve).
    Disagree,
}

pub(crate) struct Judged {
    pub(crate) outcome: Outcome,
    /// `[label] case: kernel <observed>`.
    pub(crate) line: String,
    /// The trace as text, for the cases that do not agree.
    pub(crate) trace: String,
    /// Sent again alone after disagreeing among the others (see `judge`).
    pub(crate) reprobed: bool,
}

/// Captures the lab, traces `cases` on the bundle, sends them for real (all at once).
pub(crate) fn judge(lab: &Lab, label: &str, cases: &[Case]) -> Vec<Judged> {
    let bundle = collect_lab(lab, label, &[]);
    let b = Bundle::open(&bundle, &ReadLimits::default()).expect("bundle opens");
    let prepared = Prepared::new(&b);
    // The reachability matrix shares traces between pods the rules cannot tell apart:
    // on every captured lab it must say what tracing each cell in full says.
    let (p, reach) = (&prepared, netsnap_analyzer::trace::reach::compute_each);
    let diff = netsnap_analyzer::trace::reach::differences(
        &netsnap_analyzer::trace::reach::compute(&p.model, &p.graph, &p.firewall),
        &reach(&p.model, &p.graph, &p.firewall),
    );
    assert!(
        diff.is_empty(),
        "[{label}] shared matrix ≠ every cell traced:\n{}",
        diff.join("\n")
    );
    let engine = prepared.engine(Default::default());
    let out = judge_with(&[lab], label, cases, |c| {
        let requests = request::resolve(&prepared.model, &c.ask).map_err(|e| e.to_string())?;
        Ok(engine.trace(&requests[0]))
    });
    let _ = std::fs::remove_file(&bundle);
    out
}

/// Sends `cases` for real (all at once) and judges each against what `trace` makes of
/// it (`Err`: the request does not resolve); the answering pod may be on any of `labs`.
pub(crate) fn judge_with(
    labs: &[&Lab],
    label: &str,
    cases: &[Case],
    trace: impl Fn(&Case) -> Result<request::Trace, String>,
) -> Vec<Judged> {
    let probes: Vec<Probe> = cases.iter().map(|c| c.probe.clone()).collect();
    let observed = probe::run_all(&probes, PROBE_TIMEOUT);
    // `NETSNAP_TRACE_SHOW_ALL=1` prints every case with its trace (to debug one).
    let show_all = std::env::var_os("NETSNAP_TRACE_SHOW_ALL").is_some();
    let mut out = Vec::with_capacity(cases.len());
    for (c, seen) in cases.iter().zip(&observed) {
        let mut line = format!("[{label}] {}: kernel {seen:?}", c.what);
        let trace = match trace(c) {
            Ok(t) => t,
            Err(e) => {
                out.push(Judged {
                    outcome: Outcome::Disagree,
                    line,
                    trace: format!("the request does not resolve: {e}\n"),
                    reprobed: false,
                });
                continue;
            }
        };
        let live: Vec<&Branch> = trace
            .verdicts
            .iter()
            .filter(|b| b.probability > 0.0)
            .collect();
        let mut outcome = outcome_of(&live, c, seen, labs);
        // Sent with every other case at once, a request can be lost to their load (a
        // server's full accept queue drops the SYN, and the retry comes after the
        // timeout), or meet a conntrack entry another request left; sent alone, a real
        // disagreement shows again (the second answer is the one judged). Counted and
        // reported. CI once saw a TCP request answered through a just-flushed KUBE-SEP
        // chain, 1 of 5804.
        let reprobed = outcome == Outcome::Disagree;
        if reprobed {
            let again = probe::run_all(std::slice::from_ref(&c.probe), PROBE_TIMEOUT).remove(0);
            line.push_str(&format!("; sent again alone: {again:?}"));
            outcome = outcome_of(&live, c, &again, labs);
        }
        let trace = if outcome == Outcome::Agree && !show_all {
            String::new()
        } else {
            netsnap_analyzer::render::trace::render_text(std::slice::from_ref(&trace))
        };
        if show_all {
            eprintln!("{line} ({outcome:?})\n{trace}");
        }
        out.push(Judged {
            outcome,
            line,
            trace,
            reprobed,
        });
    }
    out
}

/// Whether the kernel's outcome is one a live branch of the trace predicts.
fn outcome_of(live: &[&Branch], c: &Case, seen: &Observed, labs: &[&Lab]) -> Outcome {
    if live.iter().any(|b| predicts(b, c.proto, seen, labs)) {
        Outcome::Agree
    } else if live.iter().any(|b| b.verdict == Verdict::Unknown) {
        Outcome::Unknown
    } else if live.iter().any(|b| b.verdict == Verdict::LeftNode) {
        Outcome::LeftNode
    } else {
        Outcome::Disagree
    }
}

/// Captures the lab, traces every case on the bundle, sends every case for real.
fn check(lab: &Lab, label: &str, tally: &mut Tally) {
    let mut cases = cases(lab);
    // Cilium serves VIPs from BPF, absent here: nothing to compare (the trace says
    // `unknown` for them, as a_cilium_service_listing_gives_services_checks… checks).
    if lab.cni_mode() == CniMode::CiliumShape {
        cases.retain(|c| !matches!(c.target, Target::Service(_)));
    }
    for j in judge(lab, label, &cases) {
        tally.reprobed += usize::from(j.reprobed);
        match j.outcome {
            Outcome::Agree => {
                tally.agree += 1;
                tally.total += 1;
            }
            Outcome::Unknown => tally.unknown.push(j.line),
            // Nothing in these labs leaves the node: a trace that says so is wrong.
            Outcome::LeftNode | Outcome::Disagree => {
                tally.total += 1;
                tally.disagreements.push(format!("{}\n{}", j.line, j.trace));
            }
        }
    }
}

/// One fresh lab per scenario: healthy, then each fault injector alone.
type Fault = fn(&mut Lab) -> anyhow::Result<()>;

/// Faults whose injector exists only for kube-proxy's iptables mode.
const IPTABLES_ONLY: &[&str] = &["forward-policy-drop", "masquerade-missing"];

fn scenarios() -> Vec<(&'static str, Fault)> {
    vec![
        ("healthy", |_| Ok(())),
        ("service-without-endpoints", |l| {
            l.fault_service_without_endpoints(0)
        }),
        ("target-port-not-listening", |l| {
            l.fault_target_port_not_listening(1)
        }),
        ("endpoint-pod-deleted", |l| l.fault_endpoint_pod_deleted(2)),
        ("hairpin-off", |l| l.fault_hairpin_off(0)),
        ("link-down", |l| l.fault_link_down(1)),
        ("veth-detached", |l| l.fault_veth_detached(3)),
        ("dangling-host-veth", |l| l.fault_dangling_host_veth(4)),
        ("no-default-route", |l| l.fault_no_default_route(2)),
        ("mtu-mismatch", |l| l.fault_mtu_mismatch(3)),
        ("bridge-nf-call-off", |l| {
            l.fault_bridge_nf_call_iptables_off()
        }),
        ("ip-forward-off", |l| l.fault_ip_forward_off()),
        ("forward-policy-drop", |l| l.fault_forward_policy_drop()),
        ("masquerade-missing", |l| l.fault_masquerade_missing()),
        ("rp-filter-strict", |l| l.fault_rp_filter_strict(1)),
        ("dns-without-endpoints", |l| l.fault_dns_without_endpoints()),
    ]
}

/// `NETSNAP_TRACE_SCENARIO=name` runs only that scenario (for debugging a disagreement).
fn differential(mode: ProxyMode, tally: &mut Tally) {
    let only = std::env::var("NETSNAP_TRACE_SCENARIO").ok();
    for (name, fault) in scenarios() {
        if only.as_deref().is_some_and(|o| o != name)
            || (mode != ProxyMode::Iptables && IPTABLES_ONLY.contains(&name))
        {
            continue;
        }
        tally.scenarios += 1;
        let mut lab = Lab::builder("trc")
            .pods(5)
            .services(5)
            .endpoints_per_service(2)
            .proxy_mode(mode)
            .build()
            .expect("build lab");
        fault(&mut lab).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        check(&lab, &format!("{mode:?}-{name}"), tally);
        lab.teardown().expect("teardown");
    }
}

#[test]
fn traces_agree_with_the_kernel() {
    let Some(_env) = require_lab() else { return };
    let mut tally = Tally::default();
    for mode in [ProxyMode::Iptables, ProxyMode::Nftables] {
        differential(mode, &mut tally);
    }
    notice(&format!(
        "trace vs kernel: {}/{} requests agree ({:.1} %) over {} labs (healthy and one per fault injector, iptables and nftables kube-proxy); {} more the trace calls unknown (a netns the bundle cannot hold); {} disagreed among the others and were sent again alone",
        tally.agree,
        tally.total,
        100.0 * tally.agree as f64 / tally.total.max(1) as f64,
        tally.scenarios,
        tally.unknown.len(),
        tally.reprobed
    ));
    let unexpected: Vec<&String> = tally
        .unknown
        .iter()
        .filter(|u| {
            !BUNDLE_CANNOT_SEE
                .iter()
                .any(|s| u.contains(&format!("-{s}]")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unknown where the bundle can see: {unexpected:#?}"
    );
    assert!(
        tally.disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        tally.disagreements.len(),
        tally.total,
        tally.disagreements.join("\n")
    );
}

/// The faults that apply to a node whose pods the CNI reference plugins wire (ptp has
/// no bridge: no hairpin).
fn cni_scenarios(cni: CniMode) -> Vec<(&'static str, Fault)> {
    let applies = [
        "healthy",
        "service-without-endpoints",
        "target-port-not-listening",
        "endpoint-pod-deleted",
        "link-down",
        "no-default-route",
        "mtu-mismatch",
        "rp-filter-strict",
    ];
    scenarios()
        .into_iter()
        .filter(|(name, _)| {
            applies.contains(name) || (cni == CniMode::Bridge && *name == "hairpin-off")
        })
        .collect()
}

/// The same differential on nodes wired by the real `bridge` and `ptp` CNI plugins
/// (their `CNI-*` masquerade, portmap and firewall chains, ptp's routed /32 veths),
/// iptables and nftables kube-proxy: the healthy node and each fault that applies.
#[test]
fn traces_agree_with_the_kernel_on_cni_plugin_nodes() {
    let Some(_env) = require_lab() else { return };
    let mut tally = Tally::default();
    let only = std::env::var("NETSNAP_TRACE_SCENARIO").ok();
    for (cni, mode) in [
        (CniMode::Bridge, ProxyMode::Iptables),
        (CniMode::Ptp, ProxyMode::Iptables),
        (CniMode::CalicoRouted, ProxyMode::Iptables),
        (CniMode::CiliumShape, ProxyMode::Iptables),
        (CniMode::Bridge, ProxyMode::Nftables),
        (CniMode::Ptp, ProxyMode::Nftables),
    ] {
        for (name, fault) in cni_scenarios(cni) {
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            tally.scenarios += 1;
            let mut lab = Lab::builder("trcni")
                .pods(5)
                .services(5)
                .endpoints_per_service(2)
                .proxy_mode(mode)
                .cni(cni)
                .traffic(cni != CniMode::CiliumShape)
                .build()
                .expect("build lab");
            let label = format!("{cni:?}-{mode:?}-{name}");
            fault(&mut lab).unwrap_or_else(|e| panic!("{label}: {e:#}"));
            check(&lab, &label, &mut tally);
            lab.teardown().expect("teardown");
        }
    }
    notice(&format!(
        "trace vs kernel on CNI-plugin nodes: {}/{} requests agree ({:.1} %) over {} labs (bridge and ptp plugins with iptables and nftables kube-proxy, Calico's routed shape with iptables, Cilium's shape pod to pod, healthy and each fault that applies); {} unknown; {} sent again alone after disagreeing among the others",
        tally.agree,
        tally.total,
        100.0 * tally.agree as f64 / tally.total.max(1) as f64,
        tally.scenarios,
        tally.unknown.len(),
        tally.reprobed
    ));
    assert!(tally.unknown.is_empty(), "unknown: {:#?}", tally.unknown);
    assert!(
        tally.disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        tally.disagreements.len(),
        tally.total,
        tally.disagreements.join("\n")
    );
}
