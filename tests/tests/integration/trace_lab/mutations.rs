//! The differential test under random rule mutations: one lab per proxy mode (two
//! threads), and on it, one mutation after another (`netsnap_tests::lab::mutate`:
//! delete a rule or set element, flip a policy, empty an endpoint chain, bring a link
//! down, remove a route, insert a DROP/REJECT), each applied, captured with the real
//! collector, checked on a sample of cases exactly as `traces_agree_with_the_kernel`
//! checks every case (`judge`, `predicts`), then reverted; a revert that does not
//! restore the lab's rules, links and routes (`Lab::mutable_state`) costs a fresh lab.
//!
//! Sampled per mutation: every case it plausibly touches (from or to a pod it names,
//! to a service it names, or load-balanced to that pod; at most `MAX_TOUCHED`) and
//! `SAMPLE` more drawn from the rest; `SAMPLE_GLOBAL` when it names nothing (a policy,
//! the bridge, the node's route, a shared rule).
//!
//! The seed is fixed for CI (`mutate::DEFAULT_SEED`); `NETSNAP_MUTATION_SEED=random`
//! draws a fresh one and `NETSNAP_MUTATION_SEED=N` replays a run (the seed is printed); `NETSNAP_MUTATIONS`
//! sets the count per mode (default 100); `NETSNAP_MUTATION_MODE=iptables|nftables`
//! runs one mode; `NETSNAP_MUTATION_ONLY=Nftables-m017` draws the same sequence and
//! checks only that mutation (to debug a disagreement).

use super::{cases, judge, Case, Judged, Outcome, Target};
use netsnap_tests::lab::mutate::{self, Kind, Mutation, Rng, Touch};
use netsnap_tests::lab::{netns, require_lab, Lab, ProxyMode};
use netsnap_tests::notice;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Mutations per proxy mode unless `NETSNAP_MUTATIONS` says otherwise.
const PER_MODE: usize = 100;
/// Random untouched cases checked with each mutation that names something.
const SAMPLE: usize = 12;
/// Random cases checked with a mutation that names nothing in particular.
const SAMPLE_GLOBAL: usize = 24;
/// At most this many touched cases per mutation (drawn at random beyond).
const MAX_TOUCHED: usize = 36;

#[derive(Default)]
struct MutTally {
    mutations: usize,
    /// Requests checked (agree + disagree).
    requests: usize,
    agree: usize,
    /// Of the requests sent, those the mutation touches, and those to a service VIP
    /// (the others go to a pod's IP).
    touched: usize,
    to_services: usize,
    /// Per kind: mutations, requests.
    by_kind: BTreeMap<&'static str, (usize, usize)>,
    left_node: Vec<String>,
    unknown: Vec<String>,
    disagreements: Vec<String>,
    /// Mutations the kernel refused (not counted).
    not_applied: Vec<String>,
    /// Fresh labs built because a revert did not restore the lab, and why.
    rebuilds: Vec<String>,
    /// Requests whose first answer disagreed, sent again alone.
    reprobed: usize,
    wall: Duration,
}

impl MutTally {
    fn merge(&mut self, o: MutTally) {
        self.mutations += o.mutations;
        self.requests += o.requests;
        self.agree += o.agree;
        self.touched += o.touched;
        self.to_services += o.to_services;
        for (k, (m, r)) in o.by_kind {
            let e = self.by_kind.entry(k).or_default();
            e.0 += m;
            e.1 += r;
        }
        self.left_node.extend(o.left_node);
        self.unknown.extend(o.unknown);
        self.disagreements.extend(o.disagreements);
        self.not_applied.extend(o.not_applied);
        self.rebuilds.extend(o.rebuilds);
        self.reprobed += o.reprobed;
        self.wall = self.wall.max(o.wall);
    }

    fn record(
        &mut self,
        label: &str,
        m: &Mutation,
        cases: &[Case],
        judged: &[Judged],
        n_touched: usize,
    ) {
        self.mutations += 1;
        self.touched += n_touched;
        self.to_services += cases
            .iter()
            .filter(|c| matches!(c.target, Target::Service(_)))
            .count();
        let e = self.by_kind.entry(m.kind.as_str()).or_default();
        e.0 += 1;
        for j in judged {
            self.reprobed += usize::from(j.reprobed);
            match j.outcome {
                Outcome::Agree => {
                    self.agree += 1;
                    self.requests += 1;
                    e.1 += 1;
                }
                Outcome::Disagree => {
                    self.requests += 1;
                    e.1 += 1;
                    self.disagreements.push(format!(
                        "{}\n  mutation [{label}]: {}\n{}",
                        j.line, m.what, j.trace
                    ));
                }
                Outcome::Unknown => self
                    .unknown
                    .push(format!("{} (mutation: {})\n{}", j.line, m.what, j.trace)),
                Outcome::LeftNode => self
                    .left_node
                    .push(format!("{} (mutation: {})", j.line, m.what)),
            }
        }
    }
}

/// Whether the mutation plausibly concerns case `c`.
fn touched(c: &Case, touches: &[Touch], lab: &Lab) -> bool {
    touches.iter().any(|t| match *t {
        Touch::Service(si) => c.target == Target::Service(si),
        Touch::Pod(pi) => {
            c.from == pi
                || match c.target {
                    Target::Pod(j) => j == pi,
                    Target::Service(si) => lab.services()[si]
                        .endpoints
                        .iter()
                        .any(|e| *e.ip() == lab.pods()[pi].ip),
                }
        }
    })
}

/// The cases to check with `m`: touched ones, then a random sample of the rest.
/// Returns them and how many are touched.
fn sample(all: &[Case], m: &Mutation, lab: &Lab, rng: &mut Rng) -> (Vec<Case>, usize) {
    let (mut hit, mut rest): (Vec<usize>, Vec<usize>) =
        (0..all.len()).partition(|&i| touched(&all[i], &m.touches, lab));
    rng.shuffle(&mut hit);
    hit.truncate(MAX_TOUCHED);
    rng.shuffle(&mut rest);
    let more = if m.touches.is_empty() {
        SAMPLE_GLOBAL
    } else {
        SAMPLE
    };
    rest.truncate(more);
    let n_touched = hit.len();
    let mut chosen: Vec<usize> = hit.into_iter().chain(rest).collect();
    chosen.sort_unstable();
    (
        chosen.into_iter().map(|i| all[i].clone()).collect(),
        n_touched,
    )
}

/// The lab's state once every link is up (a fresh lab's uplink takes a moment).
fn settled(lab: &Lab) -> String {
    lab.settled_state(Duration::from_secs(3), true)
        .expect("lab state")
}

/// A lab whose node sends every ICMP error a rule or route calls for. The kernel
/// rate-limits ICMP errors per destination (`icmpv4_xrlim_allow`: a burst of 6, then
/// one per `net.ipv4.icmp_ratelimit` ms) and per netns (`icmp_global_allow`:
/// `icmp_msgs_per_sec`, `icmp_msgs_burst`), so a REJECT that catches a dozen of one
/// pod's requests at once answers only some of them: a timing effect no snapshot can
/// predict. These sysctls are per netns; only the lab's node netns is changed.
fn build(mode: ProxyMode) -> Lab {
    let lab = Lab::builder("mut")
        .pods(5)
        .services(5)
        .endpoints_per_service(2)
        .proxy_mode(mode)
        .build()
        .expect("build lab");
    for (key, value) in [
        ("net/ipv4/icmp_ratelimit", "0"),
        ("net/ipv4/icmp_msgs_per_sec", "1000000"),
        ("net/ipv4/icmp_msgs_burst", "1000000"),
    ] {
        netns::sysctl_set(lab.node_netns_name(), key, value).expect("lab node sysctl");
    }
    lab
}

/// Waits (briefly: links settle asynchronously) for the lab to be back to `pristine`;
/// the first differing line when it does not get there.
fn restored(lab: &Lab, pristine: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = lab.mutable_state().map_err(|e| format!("{e:#}"))?;
        if now == pristine {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let diff = pristine
                .lines()
                .zip(now.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("was `{a}`, now `{b}`"))
                .unwrap_or_else(|| "the state has a different length".into());
            return Err(diff);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_mode(mode: ProxyMode, seed: u64, n: usize, only: Option<&str>) -> MutTally {
    let start = Instant::now();
    let salt = match mode {
        ProxyMode::Iptables => 0,
        ProxyMode::Nftables => 0x6e66_745f_6d6f_6465,
        ProxyMode::Ipvs => 0x6970_7673_6d6f_6465,
    };
    let mut rng = Rng::new(seed ^ salt);
    let mut lab = build(mode);
    let mut pristine = settled(&lab);
    let mut all = cases(&lab);
    let mut t = MutTally::default();
    let mut drawn = 0;
    while t.mutations < n {
        assert!(
            t.not_applied.len() <= n,
            "the kernel refused {} mutations: {:#?}",
            t.not_applied.len(),
            t.not_applied
        );
        let label = format!("{mode:?}-m{drawn:03}");
        drawn += 1;
        let m = lab.random_mutation(&mut rng).expect("draw a mutation");
        let (chosen, n_touched) = sample(&all, &m, &lab, &mut rng);
        if only.is_some_and(|o| o != label) {
            continue;
        }
        eprintln!("[{label}] {}", m.what);
        match m.apply() {
            Ok(()) => {
                if m.kind == Kind::LinkDown {
                    // The bundle and the probes must see the links as they will stay.
                    lab.settled_state(Duration::from_secs(2), false)
                        .expect("lab state");
                }
                let judged = judge(&lab, &label, &chosen);
                t.record(&label, &m, &chosen, &judged, n_touched);
            }
            Err(e) => t.not_applied.push(format!("[{label}] {e:#}")),
        }
        let back = m
            .revert(&mut lab)
            .map_err(|e| format!("{e:#}"))
            .and_then(|()| restored(&lab, &pristine));
        if let Err(why) = back {
            t.rebuilds.push(format!("[{label}] {}: {why}", m.what));
            lab.teardown().expect("teardown");
            lab = build(mode);
            pristine = settled(&lab);
            all = cases(&lab);
        }
        if only.is_some() {
            break;
        }
    }
    lab.teardown().expect("teardown");
    t.wall = start.elapsed();
    t
}

/// `  N × [label]: what` for each mutation with disagreements, in order.
fn by_mutation(disagreements: &[String]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for d in disagreements {
        let Some(m) = d.lines().find_map(|l| l.trim().strip_prefix("mutation ")) else {
            continue;
        };
        match out.iter_mut().find(|(x, _)| x == m) {
            Some((_, n)) => *n += 1,
            None => out.push((m.to_string(), 1)),
        }
    }
    out.into_iter()
        .map(|(m, n)| format!("  {n:>2} × {m}"))
        .collect()
}

fn env_usize(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    Some(v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

#[test]
fn mutations_agree_with_the_kernel() {
    let Some(_env) = require_lab() else { return };
    let seed = mutate::seed_from_env();
    let per_mode = env_usize("NETSNAP_MUTATIONS").unwrap_or(PER_MODE);
    let only = std::env::var("NETSNAP_MUTATION_ONLY").ok();
    let modes: Vec<ProxyMode> = match std::env::var("NETSNAP_MUTATION_MODE").as_deref() {
        Ok("iptables") => vec![ProxyMode::Iptables],
        Ok("nftables") => vec![ProxyMode::Nftables],
        _ => vec![ProxyMode::Iptables, ProxyMode::Nftables],
    };
    notice(&format!(
        "mutations: seed {seed} (NETSNAP_MUTATION_SEED={seed} replays it), {per_mode} per mode"
    ));
    let n_modes = modes.len();
    let runs: Vec<_> = modes
        .into_iter()
        .map(|mode| {
            let only = only.clone();
            std::thread::spawn(move || run_mode(mode, seed, per_mode, only.as_deref()))
        })
        .collect();
    let mut t = MutTally::default();
    for r in runs {
        match r.join() {
            Ok(m) => t.merge(m),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    let kinds: Vec<String> = t
        .by_kind
        .iter()
        .map(|(k, (m, r))| format!("{k} {m} ({r} requests)"))
        .collect();
    notice(&format!(
        "mutations: {} mutations, {} requests, {} agree ({:.1} %) in {:.0} s, seed {seed}; \
         by kind: {}; sampled per mutation: every case it touches (≤ {MAX_TOUCHED}; {} in all) \
         and {SAMPLE} random others ({SAMPLE_GLOBAL} when it names nothing), {} to a service \
         VIP, the rest pod to pod (a listening and a closed port); \
         {} requests whose trace leaves the node without predicting the outcome (not counted), \
         {} unknown, {} mutations the kernel refused, {} fresh labs after a revert, \
         {} requests sent again alone after disagreeing among the others",
        t.mutations,
        t.requests,
        t.agree,
        100.0 * t.agree as f64 / t.requests.max(1) as f64,
        t.wall.as_secs_f64(),
        kinds.join(", "),
        t.touched,
        t.to_services,
        t.left_node.len(),
        t.unknown.len(),
        t.not_applied.len(),
        t.rebuilds.len(),
        t.reprobed,
    ));
    for l in t.left_node.iter().chain(&t.not_applied).chain(&t.rebuilds) {
        notice(&format!("  {l}"));
    }
    assert!(
        t.disagreements.is_empty(),
        "{} of {} disagree (seed {seed}), by mutation:\n{}\n\n{}",
        t.disagreements.len(),
        t.requests,
        by_mutation(&t.disagreements).join("\n"),
        t.disagreements.join("\n")
    );
    assert!(
        t.unknown.is_empty(),
        "unknown where the bundle can see (seed {seed}): {:#?}",
        t.unknown
    );
    if only.is_none() {
        assert!(
            t.mutations >= per_mode * n_modes,
            "only {} mutations applied",
            t.mutations
        );
    }
}
