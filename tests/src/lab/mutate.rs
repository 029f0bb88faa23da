//! Random mutations of a lab node, for the trace engine's differential test
//! (`tests/tests/integration/trace_lab/mutations.rs`): delete a rule (or a set/map
//! element), flip a chain policy to drop, empty an endpoint chain, bring a link down,
//! remove a route, insert a DROP or REJECT. Each mutation is a value: drawn from the
//! lab's *current* rules with a seeded [`Rng`] (so `NETSNAP_MUTATION_SEED` replays a
//! run), applied to the lab's own netns, described ([`Mutation::what`]), and reverted
//! (kube-proxy's rules reloaded with the lab's own restore / nft transaction, links set
//! up, routes put back). [`Lab::mutable_state`] fingerprints everything a mutation can
//! change, so a caller can check a revert restored the lab (and build a fresh one if not).
//!
//! | kind | iptables mode | nftables mode |
//! |---|---|---|
//! | delete-rule | `iptables-nft -t filter\|nat -D CHAIN N`, any rule | `nft delete rule ip kube-proxy CHAIN handle H`, any rule |
//! | delete-element | — | one element of `service-ips` or `cluster-ips` |
//! | flip-policy | filter FORWARD/INPUT/OUTPUT policy DROP | `policy drop` on a base chain of `table ip kube-proxy`, or an iptables-nft filter FORWARD policy DROP beside it |
//! | empty-endpoint-chain | `-F KUBE-SEP-…` (the KUBE-SVC chain still jumps to it) | `flush chain … endpoint-…` (the service chain's vmap still goes to it) |
//! | link-down | a pod's host veth, a pod's eth0, or the bridge | same |
//! | remove-route | a pod's default or subnet route, the node's pod-subnet route | same |
//! | insert-reject | DROP / REJECT (icmp port/host/net-unreachable, admin-prohibited, tcp-reset) for a pod IP (and port) in filter FORWARD/INPUT/OUTPUT, first or last | the same verdicts in kube-proxy's filter-forward/input/output, or a drop in filter-prerouting-pre-dnat |
//!
//! Everything runs in the lab's node or pod netns (`ip -n`, `ip netns exec`); the
//! root netns is never touched.

use super::model::{Protocol, ProxyMode};
use super::{cmd, netns, Lab};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;

/// A tiny seeded RNG (xorshift64*, state from splitmix64 of the seed): no dependency,
/// and a seed replays every choice.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        // Never zero: xorshift would stay at zero.
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One of `items`, each as likely as its weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(u32, T)]) -> T {
        let total: u32 = items.iter().map(|(w, _)| w).sum();
        let mut r = self.below(total as usize) as u32;
        for &(w, t) in items {
            if r < w {
                return t;
            }
            r -= w;
        }
        items[items.len() - 1].1
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// The seed CI uses: fixed, so a green run stays green; its 200 mutations are checked
/// at 100 % agreement. `NETSNAP_MUTATION_SEED=random` draws a fresh one (printed).
pub const DEFAULT_SEED: u64 = 4;

/// `NETSNAP_MUTATION_SEED`: decimal, `0x` hex, or `random` (a fresh seed from the
/// clock); [`DEFAULT_SEED`] when unset.
pub fn seed_from_env() -> u64 {
    let Ok(s) = std::env::var("NETSNAP_MUTATION_SEED") else {
        return DEFAULT_SEED;
    };
    if s.trim() != "random" {
        let s = s.trim();
        let parsed = match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => s.parse(),
        };
        match parsed {
            Ok(v) => return v,
            Err(e) => panic!("NETSNAP_MUTATION_SEED={s:?}: {e}"),
        }
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}

/// What a mutation does, for the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    DeleteRule,
    DeleteElement,
    FlipPolicy,
    EmptyEndpointChain,
    LinkDown,
    RemoveRoute,
    InsertReject,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DeleteRule => "delete-rule",
            Kind::DeleteElement => "delete-element",
            Kind::FlipPolicy => "flip-policy",
            Kind::EmptyEndpointChain => "empty-endpoint-chain",
            Kind::LinkDown => "link-down",
            Kind::RemoveRoute => "remove-route",
            Kind::InsertReject => "insert-reject",
        }
    }
}

/// Which requests a mutation plausibly concerns (none: it may concern any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// Requests from, to, or load-balanced to pod `i` (index in [`Lab::pods`]).
    Pod(usize),
    /// Requests to service port `i` (index in [`Lab::services`]).
    Service(usize),
}

/// One command in a lab netns.
#[derive(Clone, Debug)]
enum Step {
    /// `ip -n <netns> <args>`
    Ip(String, Vec<String>),
    /// `ip netns exec <netns> <args>`
    Exec(String, Vec<String>),
}

impl Step {
    fn ip(ns: &str, args: &[&str]) -> Step {
        Step::Ip(ns.to_string(), args.iter().map(|s| s.to_string()).collect())
    }
    fn exec(ns: &str, args: &[&str]) -> Step {
        Step::Exec(ns.to_string(), args.iter().map(|s| s.to_string()).collect())
    }
    fn run(&self) -> Result<()> {
        let mut c = match self {
            Step::Ip(ns, a) => netns::ip(ns, &a.iter().map(String::as_str).collect::<Vec<_>>()),
            Step::Exec(ns, a) => netns::exec(ns, &a.iter().map(String::as_str).collect::<Vec<_>>()),
        };
        cmd::run(&mut c)?;
        Ok(())
    }
}

/// A change to the lab node: what it is, what it touches, how to apply and revert it.
#[derive(Clone, Debug)]
pub struct Mutation {
    pub kind: Kind,
    /// One line: what was changed, with the rule text where there is one.
    pub what: String,
    /// Requests it plausibly concerns; empty when it may concern any.
    pub touches: Vec<Touch>,
    apply: Vec<Step>,
    revert: Vec<Step>,
    /// Reverting reloads kube-proxy's rules (restore without --noflush / the nft
    /// transaction that replaces `table ip kube-proxy`).
    reload_rules: bool,
}

impl Mutation {
    /// Applies it to the lab's netns.
    pub fn apply(&self) -> Result<()> {
        for s in &self.apply {
            s.run().with_context(|| format!("applying {}", self.what))?;
        }
        Ok(())
    }

    /// Undoes it (check with [`Lab::mutable_state`]).
    pub fn revert(&self, lab: &mut Lab) -> Result<()> {
        for s in &self.revert {
            s.run()
                .with_context(|| format!("reverting {}", self.what))?;
        }
        if self.reload_rules {
            lab.load_proxy_rules()
                .with_context(|| format!("reverting {}", self.what))?;
        }
        Ok(())
    }

    fn rules(kind: Kind, what: String, touches: Vec<Touch>, apply: Vec<Step>) -> Mutation {
        Mutation {
            kind,
            what,
            touches,
            apply,
            revert: Vec::new(),
            reload_rules: true,
        }
    }
}

const T: &str = "kube-proxy";

/// The base chains of kube-proxy's nftables table.
const NFT_BASE_CHAINS: [&str; 8] = [
    "filter-prerouting-pre-dnat",
    "filter-output-pre-dnat",
    "filter-forward",
    "filter-input",
    "filter-output",
    "nat-prerouting",
    "nat-output",
    "nat-postrouting",
];

/// A rule of the node's ruleset: where it is and its text.
struct Rule {
    /// iptables table (`filter`, `nat`), empty in nftables mode.
    table: &'static str,
    chain: String,
    /// iptables: 1-based position in its chain; nftables: the handle.
    id: u64,
    text: String,
}

impl Lab {
    /// A random mutation of the lab's current state (not applied yet).
    pub fn random_mutation(&self, rng: &mut Rng) -> Result<Mutation> {
        use Kind::*;
        let kinds: &[(u32, Kind)] = match self.cfg.proxy_mode {
            ProxyMode::Iptables => &[
                (30, DeleteRule),
                (10, FlipPolicy),
                (14, EmptyEndpointChain),
                (12, LinkDown),
                (10, RemoveRoute),
                (24, InsertReject),
            ],
            ProxyMode::Nftables => &[
                (22, DeleteRule),
                (8, DeleteElement),
                (10, FlipPolicy),
                (14, EmptyEndpointChain),
                (12, LinkDown),
                (10, RemoveRoute),
                (24, InsertReject),
            ],
            // The trace differential these serve needs the kernel's verdict on service
            // traffic, and this kernel has no IPVS.
            ProxyMode::Ipvs => bail!("no mutations for an IPVS lab: this kernel has no IPVS"),
        };
        match rng.weighted(kinds) {
            DeleteRule => self.mut_delete_rule(rng),
            DeleteElement => Ok(self.mut_delete_element(rng)),
            FlipPolicy => Ok(self.mut_flip_policy(rng)),
            EmptyEndpointChain => self.mut_empty_endpoint_chain(rng),
            LinkDown => Ok(self.mut_link_down(rng)),
            RemoveRoute => Ok(self.mut_remove_route(rng)),
            InsertReject => Ok(self.mut_insert_reject(rng)),
        }
    }

    /// What mutations can change, as text: the node's whole nftables ruleset
    /// (iptables-nft tables included; no counters), the links of the node and of every
    /// live pod (admin state, operstate, MTU, master, bridge port state and hairpin)
    /// and their routes. Equal before a mutation and after a complete revert.
    pub fn mutable_state(&self) -> Result<String> {
        let mut s = String::new();
        let node = &self.node_ns;
        let ruleset = cmd::stdout(&mut netns::exec(node, &["nft", "-s", "list", "ruleset"]))?;
        let _ = writeln!(s, "== node ruleset\n{ruleset}");
        let mut all: Vec<&str> = vec![node];
        all.extend(
            self.pods
                .iter()
                .filter(|p| !p.deleted)
                .map(|p| p.netns_name.as_str()),
        );
        for ns in all {
            let _ = writeln!(s, "== {ns} links");
            let links: serde_json::Value = serde_json::from_str(&cmd::stdout(&mut netns::ip(
                ns,
                &["-j", "-d", "link", "show"],
            ))?)
            .with_context(|| format!("ip -j link of {ns}"))?;
            for l in links.as_array().into_iter().flatten() {
                let f = |k: &str| l.get(k).map(|v| v.to_string()).unwrap_or_default();
                let up = l
                    .get("flags")
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| a.iter().any(|x| x == "UP"));
                let port = l.pointer("/linkinfo/info_slave_data");
                let g = |k: &str| {
                    port.and_then(|p| p.get(k))
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                let _ = writeln!(
                    s,
                    "{} up={up} oper={} mtu={} master={} port={} hairpin={}",
                    f("ifname"),
                    f("operstate"),
                    f("mtu"),
                    f("master"),
                    g("state"),
                    g("hairpin")
                );
            }
            let routes = cmd::stdout(&mut netns::ip(ns, &["-4", "route", "show", "table", "all"]))?;
            let _ = writeln!(s, "== {ns} routes\n{routes}");
        }
        Ok(s)
    }

    /// [`Lab::mutable_state`] once links have settled: the kernel reports carrier and
    /// operstate changes (and enables bridge ports) from its linkwatch work, shortly
    /// after `ip link set` returns. Waits (at most `timeout`) until two reads 100 ms
    /// apart agree and, with `all_up`, every link set up is operationally up too.
    pub fn settled_state(&self, timeout: std::time::Duration, all_up: bool) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut last = self.mutable_state()?;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = self.mutable_state()?;
            let transient = all_up
                && now.lines().any(|l| {
                    l.contains(" up=true ")
                        && !l.contains("oper=\"UP\"")
                        && !l.contains("oper=\"UNKNOWN\"")
                });
            if now == last && !transient {
                return Ok(now);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(now);
            }
            last = now;
        }
    }

    fn live_pods(&self) -> Vec<usize> {
        (0..self.pods.len())
            .filter(|&i| !self.pods[i].deleted)
            .collect()
    }

    /// Services and pods a rule's text names: a service's chains or VIP, a pod's IP.
    fn touches_of(&self, text: &str) -> Vec<Touch> {
        let tokens: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|t| !t.is_empty())
            .collect();
        let mut out = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let chain_named = std::iter::once(&s.svc_chain)
                .chain(&s.sep_chains)
                .chain(std::iter::once(&s.nft_service_chain))
                .chain(&s.nft_endpoint_chains)
                .any(|c| text.contains(c.as_str()));
            let vip = s.cluster_ip.to_string();
            if chain_named || tokens.contains(&vip.as_str()) {
                out.push(Touch::Service(i));
            }
        }
        for (i, p) in self.pods.iter().enumerate() {
            if tokens.contains(&p.ip.to_string().as_str()) {
                out.push(Touch::Pod(i));
            }
        }
        out
    }

    fn node_rules(&self) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        match self.cfg.proxy_mode {
            ProxyMode::Iptables | ProxyMode::Ipvs => {
                for table in ["filter", "nat"] {
                    let out = cmd::stdout(&mut netns::exec(
                        &self.node_ns,
                        &["iptables-nft", "-w", "5", "-t", table, "-S"],
                    ))?;
                    let mut count: Vec<(String, u64)> = Vec::new();
                    for line in out.lines().filter(|l| l.starts_with("-A ")) {
                        let chain = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let n = match count.iter_mut().find(|(c, _)| *c == chain) {
                            Some((_, n)) => {
                                *n += 1;
                                *n
                            }
                            None => {
                                count.push((chain.clone(), 1));
                                1
                            }
                        };
                        rules.push(Rule {
                            table,
                            chain,
                            id: n,
                            text: line.to_string(),
                        });
                    }
                }
            }
            ProxyMode::Nftables => {
                let out = cmd::stdout(&mut netns::exec(
                    &self.node_ns,
                    &["nft", "-a", "list", "table", "ip", T],
                ))?;
                rules = parse_nft_rules(&out);
            }
        }
        Ok(rules)
    }

    fn mut_delete_rule(&self, rng: &mut Rng) -> Result<Mutation> {
        let rules = self.node_rules()?;
        if rules.is_empty() {
            bail!("the node has no rule to delete");
        }
        let r = rng.pick(&rules);
        let touches = self.touches_of(&format!("{} {}", r.chain, r.text));
        let node = &self.node_ns;
        let (what, step) = match self.cfg.proxy_mode {
            ProxyMode::Iptables | ProxyMode::Ipvs => (
                format!(
                    "delete iptables {} {} rule {}: `{}`",
                    r.table, r.chain, r.id, r.text
                ),
                Step::exec(
                    node,
                    &[
                        "iptables-nft",
                        "-w",
                        "5",
                        "-t",
                        r.table,
                        "-D",
                        &r.chain,
                        &r.id.to_string(),
                    ],
                ),
            ),
            ProxyMode::Nftables => (
                format!("delete nft rule {} handle {}: `{}`", r.chain, r.id, r.text),
                Step::exec(
                    node,
                    &[
                        "nft",
                        "delete",
                        "rule",
                        "ip",
                        T,
                        &r.chain,
                        "handle",
                        &r.id.to_string(),
                    ],
                ),
            ),
        };
        Ok(Mutation::rules(Kind::DeleteRule, what, touches, vec![step]))
    }

    /// nftables mode: one element of `service-ips` (the VIP is no longer DNATed) or
    /// of `cluster-ips` (the VIP counts as unallocated).
    fn mut_delete_element(&self, rng: &mut Rng) -> Mutation {
        let si = rng.below(self.services.len());
        let s = &self.services[si];
        let (set, elem, touches) = if rng.below(10) < 7 {
            (
                "service-ips",
                format!("{} . {} . {}", s.cluster_ip, s.protocol.lower(), s.port),
                vec![Touch::Service(si)],
            )
        } else {
            let same_vip = (0..self.services.len())
                .filter(|&j| self.services[j].cluster_ip == s.cluster_ip)
                .map(Touch::Service)
                .collect();
            ("cluster-ips", s.cluster_ip.to_string(), same_vip)
        };
        let step = Step::exec(
            &self.node_ns,
            &[
                "nft",
                "delete",
                "element",
                "ip",
                T,
                set,
                &format!("{{ {elem} }}"),
            ],
        );
        Mutation::rules(
            Kind::DeleteElement,
            format!("delete element {{ {elem} }} of nft set/map {set}"),
            touches,
            vec![step],
        )
    }

    fn mut_flip_policy(&self, rng: &mut Rng) -> Mutation {
        let node = &self.node_ns;
        match self.cfg.proxy_mode {
            ProxyMode::Iptables | ProxyMode::Ipvs => {
                let chain = rng.weighted(&[(3, "FORWARD"), (1, "INPUT"), (2, "OUTPUT")]);
                let mut m = Mutation::rules(
                    Kind::FlipPolicy,
                    format!("iptables filter {chain} policy ACCEPT → DROP"),
                    Vec::new(),
                    vec![Step::exec(
                        node,
                        &["iptables-nft", "-w", "5", "-P", chain, "DROP"],
                    )],
                );
                m.revert = vec![Step::exec(
                    node,
                    &["iptables-nft", "-w", "5", "-P", chain, "ACCEPT"],
                )];
                m
            }
            ProxyMode::Nftables => {
                if rng.below(9) == 0 {
                    // A second firewall beside kube-proxy's table, as kubelet or a
                    // host firewall would add; the lab has no `table ip filter` otherwise.
                    let mut m = Mutation::rules(
                        Kind::FlipPolicy,
                        "iptables-nft filter FORWARD policy DROP (a `table ip filter` beside table ip kube-proxy)".into(),
                        Vec::new(),
                        vec![Step::exec(
                            node,
                            &["iptables-nft", "-w", "5", "-P", "FORWARD", "DROP"],
                        )],
                    );
                    m.revert = vec![Step::exec(
                        node,
                        &["nft", "delete", "table", "ip", "filter"],
                    )];
                    m.reload_rules = false;
                    return m;
                }
                let chain = *rng.pick(&NFT_BASE_CHAINS);
                Mutation::rules(
                    Kind::FlipPolicy,
                    format!("nft chain ip kube-proxy {chain} policy accept → drop"),
                    Vec::new(),
                    vec![Step::exec(
                        node,
                        &["nft", &format!("chain ip {T} {chain} {{ policy drop ; }}")],
                    )],
                )
            }
        }
    }

    fn mut_empty_endpoint_chain(&self, rng: &mut Rng) -> Result<Mutation> {
        let with_eps: Vec<usize> = (0..self.services.len())
            .filter(|&i| !self.services[i].endpoints.is_empty())
            .collect();
        if with_eps.is_empty() {
            bail!("no service has endpoints");
        }
        let si = *rng.pick(&with_eps);
        let s = &self.services[si];
        let e = rng.below(s.endpoints.len());
        let node = &self.node_ns;
        let (what, step) = match self.cfg.proxy_mode {
            ProxyMode::Iptables | ProxyMode::Ipvs => (
                format!(
                    "flush iptables nat {} (endpoint {} of {}; its KUBE-SVC chain still jumps to it)",
                    s.sep_chains[e],
                    s.endpoints[e],
                    s.port_name_string()
                ),
                Step::exec(
                    node,
                    &["iptables-nft", "-w", "5", "-t", "nat", "-F", &s.sep_chains[e]],
                ),
            ),
            ProxyMode::Nftables => (
                format!(
                    "flush nft chain {} (its service chain's vmap still goes to it)",
                    s.nft_endpoint_chains[e]
                ),
                Step::exec(
                    node,
                    &["nft", "flush", "chain", "ip", T, &s.nft_endpoint_chains[e]],
                ),
            ),
        };
        Ok(Mutation::rules(
            Kind::EmptyEndpointChain,
            what,
            vec![Touch::Service(si)],
            vec![step],
        ))
    }

    fn mut_link_down(&self, rng: &mut Rng) -> Mutation {
        let live = self.live_pods();
        let i = *rng.pick(&live);
        let p = &self.pods[i];
        let node = &self.node_ns;
        let gw = self.net.gateway().to_string();
        match rng.weighted(&[(4, 0), (3, 1), (1, 2)]) {
            0 => Mutation {
                kind: Kind::LinkDown,
                what: format!("host veth {} of pod {} down", p.host_veth, p.name),
                touches: vec![Touch::Pod(i)],
                apply: vec![Step::ip(node, &["link", "set", &p.host_veth, "down"])],
                revert: vec![Step::ip(node, &["link", "set", &p.host_veth, "up"])],
                reload_rules: false,
            },
            1 => {
                let ns = &p.netns_name;
                Mutation {
                    kind: Kind::LinkDown,
                    what: format!("eth0 of pod {} down (its routes go with it)", p.name),
                    touches: vec![Touch::Pod(i)],
                    apply: vec![Step::ip(ns, &["link", "set", "eth0", "down"])],
                    revert: vec![
                        Step::ip(ns, &["link", "set", "eth0", "up"]),
                        Step::ip(
                            ns,
                            &["route", "replace", "default", "via", &gw, "dev", "eth0"],
                        ),
                    ],
                    reload_rules: false,
                }
            }
            _ => {
                let br = &self.cfg.bridge;
                Mutation {
                    kind: Kind::LinkDown,
                    what: format!("bridge {br} down"),
                    touches: Vec::new(),
                    apply: vec![Step::ip(node, &["link", "set", br, "down"])],
                    revert: vec![Step::ip(node, &["link", "set", br, "up"])],
                    reload_rules: false,
                }
            }
        }
    }

    fn mut_remove_route(&self, rng: &mut Rng) -> Mutation {
        let live = self.live_pods();
        let i = *rng.pick(&live);
        let p = &self.pods[i];
        let gw = self.net.gateway().to_string();
        let subnet = self.net.pod_cidr();
        let route = |ns: &str, what: String, touches, del: &[&str], back: &[&str]| Mutation {
            kind: Kind::RemoveRoute,
            what,
            touches,
            apply: vec![Step::ip(ns, &[&["route", "del"], del].concat())],
            revert: vec![Step::ip(ns, &[&["route", "replace"], back].concat())],
            reload_rules: false,
        };
        match rng.weighted(&[(3, 0), (2, 1), (2, 2)]) {
            0 => route(
                &p.netns_name,
                format!("default route of pod {} removed", p.name),
                vec![Touch::Pod(i)],
                &["default"],
                &["default", "via", &gw, "dev", "eth0"],
            ),
            1 => route(
                &p.netns_name,
                format!(
                    "subnet route {subnet} of pod {} removed (default via {gw} stays)",
                    p.name
                ),
                vec![Touch::Pod(i)],
                &[&subnet, "dev", "eth0"],
                &[
                    &subnet,
                    "dev",
                    "eth0",
                    "proto",
                    "kernel",
                    "scope",
                    "link",
                    "src",
                    &p.ip.to_string(),
                ],
            ),
            _ => {
                let br = self.cfg.bridge.clone();
                route(
                    &self.node_ns,
                    format!("node route {subnet} dev {br} removed"),
                    Vec::new(),
                    &[&subnet, "dev", &br],
                    &[
                        &subnet, "dev", &br, "proto", "kernel", "scope", "link", "src", &gw,
                    ],
                )
            }
        }
    }

    /// A DROP or REJECT for one pod's address (and one of its listening ports, or
    /// as a source), in a filter chain of the node.
    fn mut_insert_reject(&self, rng: &mut Rng) -> Mutation {
        let live = self.live_pods();
        let i = *rng.pick(&live);
        let p = &self.pods[i];
        let ports: Vec<(Protocol, u16)> = p
            .listen_ports
            .iter()
            .map(|&x| (Protocol::Tcp, x))
            .chain(p.udp_ports.iter().map(|&x| (Protocol::Udp, x)))
            .collect();
        // 0: daddr + port, 1: daddr, 2: saddr.
        let sel = match rng.weighted(&[(3, 0), (1, 1), (1, 2)]) {
            0 if ports.is_empty() => 1,
            s => s,
        };
        let port = (sel == 0).then(|| *rng.pick(&ports));
        let tcp = port.is_some_and(|(pr, _)| pr == Protocol::Tcp);
        let mut verdicts = vec![
            (2, "drop"),
            (2, "port-unreachable"),
            (1, "host-unreachable"),
            (1, "net-unreachable"),
            (1, "admin-prohibited"),
        ];
        if tcp {
            verdicts.push((2, "tcp-reset"));
        }
        let verdict = rng.weighted(&verdicts);
        let first = rng.below(4) != 0;
        let ip = p.ip.to_string();
        let node = &self.node_ns;
        let (what, step) = match self.cfg.proxy_mode {
            ProxyMode::Iptables | ProxyMode::Ipvs => {
                let chain = rng.weighted(&[(6, "FORWARD"), (1, "INPUT"), (1, "OUTPUT")]);
                let mut spec: Vec<String> = Vec::new();
                let dir = if sel == 2 { "-s" } else { "-d" };
                spec.extend([dir.into(), ip.clone()]);
                if let Some((pr, port)) = port {
                    spec.extend(["-p".into(), pr.lower().into()]);
                    spec.extend(["--dport".into(), port.to_string()]);
                }
                match verdict {
                    "drop" => spec.extend(["-j".into(), "DROP".into()]),
                    v => {
                        let with = if v == "tcp-reset" {
                            v.to_string()
                        } else if v == "admin-prohibited" {
                            "icmp-admin-prohibited".into()
                        } else {
                            format!("icmp-{v}")
                        };
                        spec.extend(["-j".into(), "REJECT".into(), "--reject-with".into(), with]);
                    }
                }
                let mut args: Vec<String> = ["iptables-nft", "-w", "5"].map(String::from).into();
                if first {
                    args.extend(["-I".into(), chain.into(), "1".into()]);
                } else {
                    args.extend(["-A".into(), chain.into()]);
                }
                args.extend(spec.iter().cloned());
                (
                    format!(
                        "iptables filter {} {chain} {}",
                        if first { "insert first:" } else { "append:" },
                        spec.join(" ")
                    ),
                    Step::Exec(node.clone(), args),
                )
            }
            ProxyMode::Nftables => {
                let chain = rng.weighted(&[
                    (5, "filter-forward"),
                    (1, "filter-input"),
                    (1, "filter-output"),
                    (1, "filter-prerouting-pre-dnat"),
                ]);
                // reject is not valid in prerouting: a drop there.
                let verdict = if chain == "filter-prerouting-pre-dnat" {
                    "drop"
                } else {
                    verdict
                };
                let dir = if sel == 2 { "saddr" } else { "daddr" };
                let mut rule = format!("ip {dir} {ip}");
                if let Some((pr, port)) = port {
                    let _ = write!(rule, " {} dport {port}", pr.lower());
                }
                rule.push(' ');
                rule.push_str(match verdict {
                    "drop" => "drop",
                    "port-unreachable" => "reject",
                    "tcp-reset" => "reject with tcp reset",
                    "host-unreachable" => "reject with icmp type host-unreachable",
                    "net-unreachable" => "reject with icmp type net-unreachable",
                    _ => "reject with icmp type admin-prohibited",
                });
                let verb = if first { "insert" } else { "add" };
                (
                    format!("nft {verb} rule ip kube-proxy {chain} {rule}"),
                    Step::exec(
                        node,
                        &["nft", &format!("{verb} rule ip {T} {chain} {rule}")],
                    ),
                )
            }
        };
        Mutation::rules(Kind::InsertReject, what, vec![Touch::Pod(i)], vec![step])
    }
}

/// The rules of `nft -a list table …`: (chain, handle, text) of every rule line.
fn parse_nft_rules(listing: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut chain: Option<String> = None;
    for line in listing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.split(" {").next().map(str::to_string);
            continue;
        }
        if t.starts_with("set ") || t.starts_with("map ") || t == "}" {
            chain = None;
            continue;
        }
        let Some(c) = &chain else { continue };
        let Some((text, handle)) = t.rsplit_once(" # handle ") else {
            continue;
        };
        let Ok(id) = handle.trim().parse() else {
            continue;
        };
        rules.push(Rule {
            table: "",
            chain: c.clone(),
            id,
            text: text.to_string(),
        });
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_replays_and_spreads() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(7);
        assert_eq!(a, (0..5).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut r0 = Rng::new(0);
        let mut seen = [0usize; 4];
        for _ in 0..4000 {
            seen[r0.below(4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn nft_listing_parses_rules_not_sets() {
        let l = "table ip kube-proxy { # handle 2\n\tset cluster-ips { # handle 1\n\t\ttype ipv4_addr\n\t}\n\
                 \tchain filter-forward { # handle 11\n\t\ttype filter hook forward priority filter; policy accept;\n\
                 \t\tct state new jump service-endpoints-check # handle 27\n\t}\n\
                 \tchain endpoint-X-default/svc-0/tcp/http__10.244.1.2/20000 { # handle 47\n\
                 \t\tmeta l4proto tcp dnat to 10.244.1.2:20000 # handle 49\n\t}\n}\n";
        let r = parse_nft_rules(l);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].chain, "filter-forward");
        assert_eq!(r[0].id, 27);
        assert_eq!(
            r[1].chain,
            "endpoint-X-default/svc-0/tcp/http__10.244.1.2/20000"
        );
        assert_eq!(r[1].text, "meta l4proto tcp dnat to 10.244.1.2:20000");
    }
}
