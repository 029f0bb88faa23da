//! kube-proxy's iptables-mode ruleset, built once as rules and printed two ways:
//!
//! - [`render_restore`]: the `iptables-restore` input kube-proxy writes (its own option
//!   order, `--or-mark`, unquoted one-word comments, `%0.10f` probabilities);
//! - [`write_save`]: what `iptables-nft-save -c` prints once the kernel holds it
//!   (`[p:b]` counters, chains sorted, `! -s`/`-d a/32`/`-p` first, always-quoted
//!   comments, `--set-xmark`, `--reject-with`, the kernel-rounded probability).
//!
//! The save form is streamed: a node with 100,000 endpoints is never held as text.

use crate::names::{probability, saved_probability, sep_chain, svc_chain};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// `tcp` / `udp`, as kube-proxy hashes and as iptables and nft spell it.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One service port, the unit kube-proxy programs (`ns/name:port`).
#[derive(Clone, Debug)]
pub struct ServicePort<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// Empty for an unnamed port.
    pub port_name: &'a str,
    pub protocol: Protocol,
    /// IPv4 or IPv6: kube-proxy programs each family of a dual-stack service in its
    /// own ruleset (iptables, ip6tables), the endpoints of the same family.
    pub cluster_ip: IpAddr,
    pub port: u16,
    /// `ip:port` (IPv4) or `[ip]:port` (IPv6), as the SEP hash and DNAT spell them.
    pub endpoints: Cow<'a, [SocketAddr]>,
    /// `KUBE-SVC-<16>`.
    pub svc_chain: Cow<'a, str>,
    /// `KUBE-SEP-<16>`, one per endpoint, same order.
    pub sep_chains: Cow<'a, [String]>,
}

impl<'a> ServicePort<'a> {
    /// A service port with its chain names computed from its identity and endpoints.
    pub fn new(
        namespace: &'a str,
        name: &'a str,
        port_name: &'a str,
        protocol: Protocol,
        vip: SocketAddr,
        endpoints: Cow<'a, [SocketAddr]>,
    ) -> ServicePort<'a> {
        let spn = port_name_string(namespace, name, port_name);
        let proto = protocol.lower();
        ServicePort {
            namespace,
            name,
            port_name,
            protocol,
            cluster_ip: vip.ip(),
            port: vip.port(),
            sep_chains: Cow::Owned(
                endpoints
                    .iter()
                    .map(|e| sep_chain(&spn, proto, &e.to_string()))
                    .collect(),
            ),
            endpoints,
            svc_chain: Cow::Owned(svc_chain(&spn, proto)),
        }
    }

    /// `ns/name:port` (`ns/name` for an unnamed port), kube-proxy's ServicePortName.
    pub fn port_name_string(&self) -> String {
        port_name_string(self.namespace, self.name, self.port_name)
    }
}

fn port_name_string(namespace: &str, name: &str, port_name: &str) -> String {
    if port_name.is_empty() {
        format!("{namespace}/{name}")
    } else {
        format!("{namespace}/{name}:{port_name}")
    }
}

/// One piece of a rule's match, in kube-proxy's own order.
#[derive(Clone, Debug)]
enum Part {
    Comment(String),
    /// `-m p -p p` in kube-proxy's input; `-p p` up front and `-m p` in place when saved.
    Proto(&'static str),
    Src {
        negate: bool,
        cidr: String,
    },
    Dst(String),
    DPort(u16),
    /// Endpoint `i` of `n` of a random-mode statistic match.
    Statistic {
        i: usize,
        n: usize,
    },
    /// A match both forms print the same way.
    Raw(&'static str),
}

#[derive(Clone, Debug)]
enum Target {
    Jump(String),
    Drop,
    Accept,
    Return,
    /// `ipv6`: ip6tables answers with an ICMPv6 port unreachable.
    Reject {
        ipv6: bool,
    },
    Dnat(SocketAddr),
    MarkOr(u32),
    MarkXor(u32),
    MasqueradeRandomFully,
}

#[derive(Clone, Debug)]
struct Rule {
    chain: &'static str,
    /// For rules in per-service chains, whose names are not static.
    dyn_chain: Option<String>,
    parts: Vec<Part>,
    target: Target,
}

impl Rule {
    fn new(chain: &'static str, parts: Vec<Part>, target: Target) -> Rule {
        Rule {
            chain,
            dyn_chain: None,
            parts,
            target,
        }
    }

    fn in_chain(chain: &str, parts: Vec<Part>, target: Target) -> Rule {
        Rule {
            chain: "",
            dyn_chain: Some(chain.to_string()),
            parts,
            target,
        }
    }

    fn chain(&self) -> &str {
        self.dyn_chain.as_deref().unwrap_or(self.chain)
    }

    /// `-A CHAIN …` as kube-proxy writes it for `iptables-restore`.
    fn restore(&self) -> String {
        let mut f = format!("-A {}", self.chain());
        for p in &self.parts {
            match p {
                Part::Comment(c) => {
                    let _ = write!(f, " -m comment --comment {}", restore_comment(c));
                }
                Part::Proto(p) => {
                    let _ = write!(f, " -m {p} -p {p}");
                }
                Part::Src { negate, cidr } => {
                    let _ = write!(f, " {}-s {cidr}", if *negate { "! " } else { "" });
                }
                Part::Dst(d) => {
                    let _ = write!(f, " -d {d}");
                }
                Part::DPort(port) => {
                    let _ = write!(f, " --dport {port}");
                }
                Part::Statistic { i, n } => {
                    let _ = write!(
                        f,
                        " -m statistic --mode random --probability {}",
                        probability(*i, *n)
                    );
                }
                Part::Raw(r) => {
                    let _ = write!(f, " {r}");
                }
            }
        }
        let t = match &self.target {
            Target::Jump(c) => c.clone(),
            Target::Drop => "DROP".into(),
            Target::Accept => "ACCEPT".into(),
            Target::Return => "RETURN".into(),
            Target::Reject { .. } => "REJECT".into(),
            Target::Dnat(ep) => format!("DNAT --to-destination {ep}"),
            Target::MarkOr(m) => format!("MARK --or-mark {m:#x}"),
            Target::MarkXor(m) => format!("MARK --xor-mark {m:#x}"),
            Target::MasqueradeRandomFully => "MASQUERADE --random-fully".into(),
        };
        let _ = write!(f, " -j {t}");
        f
    }

    /// `-A CHAIN …` as iptables-save prints it back (without the counters).
    fn save(&self, out: &mut String) {
        let _ = write!(out, "-A {}", self.chain());
        // iptables prints the addresses and the protocol before any match module.
        for p in &self.parts {
            if let Part::Src { negate, cidr } = p {
                let _ = write!(
                    out,
                    " {}-s {}",
                    if *negate { "! " } else { "" },
                    with_prefix(cidr)
                );
            }
        }
        for p in &self.parts {
            if let Part::Dst(d) = p {
                let _ = write!(out, " -d {}", with_prefix(d));
            }
        }
        let dport = self.parts.iter().find_map(|p| match p {
            Part::DPort(d) => Some(*d),
            _ => None,
        });
        for p in &self.parts {
            if let Part::Proto(p) = p {
                let _ = write!(out, " -p {p}");
            }
        }
        for p in &self.parts {
            match p {
                Part::Comment(c) => {
                    let _ = write!(out, " -m comment --comment {}", save_quote(c));
                }
                Part::Proto(p) => {
                    let _ = write!(out, " -m {p}");
                    if let Some(d) = dport {
                        let _ = write!(out, " --dport {d}");
                    }
                }
                Part::Statistic { i, n } => {
                    let _ = write!(
                        out,
                        " -m statistic --mode random --probability {}",
                        saved_probability(*i, *n)
                    );
                }
                Part::Raw(r) => {
                    let _ = write!(out, " {r}");
                }
                Part::Src { .. } | Part::Dst(_) | Part::DPort(_) => {}
            }
        }
        match &self.target {
            Target::Jump(c) => {
                let _ = write!(out, " -j {c}");
            }
            Target::Drop => out.push_str(" -j DROP"),
            Target::Accept => out.push_str(" -j ACCEPT"),
            Target::Return => out.push_str(" -j RETURN"),
            Target::Reject { ipv6: false } => {
                out.push_str(" -j REJECT --reject-with icmp-port-unreachable")
            }
            Target::Reject { ipv6: true } => {
                out.push_str(" -j REJECT --reject-with icmp6-port-unreachable")
            }
            Target::Dnat(ep) => {
                let _ = write!(out, " -j DNAT --to-destination {ep}");
            }
            Target::MarkOr(m) => {
                let _ = write!(out, " -j MARK --set-xmark {m:#x}/{m:#x}");
            }
            Target::MarkXor(m) => {
                let _ = write!(out, " -j MARK --set-xmark {m:#x}/0x0");
            }
            Target::MasqueradeRandomFully => out.push_str(" -j MASQUERADE --random-fully"),
        }
    }
}

/// A comment argument quoted the way kube-proxy writes it: quotes only when needed.
fn restore_comment(text: &str) -> String {
    if text.contains(' ') || text.contains('"') {
        format!("\"{}\"", text.replace('"', "\\\""))
    } else {
        text.to_string()
    }
}

/// iptables-save always quotes comments, escaping `"` and `\`.
fn save_quote(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// iptables-save prints host addresses with their `/32` (ip6tables-save: `/128`).
fn with_prefix(cidr: &str) -> Cow<'_, str> {
    if cidr.contains('/') {
        Cow::Borrowed(cidr)
    } else if cidr.contains(':') {
        Cow::Owned(format!("{cidr}/128"))
    } else {
        Cow::Owned(format!("{cidr}/32"))
    }
}

const MASQ_MARK: u32 = 0x4000;

// ---- the rules ---------------------------------------------------------------

fn c(text: &str) -> Part {
    Part::Comment(text.to_string())
}

/// Rules of the filter table's built-in and fixed chains, in kube-proxy's order.
fn filter_fixed() -> Vec<Rule> {
    use Part::Raw;
    let new = "-m conntrack --ctstate NEW";
    vec![
        Rule::new(
            "INPUT",
            vec![Raw(new), c("kubernetes load balancer firewall")],
            Target::Jump("KUBE-PROXY-FIREWALL".into()),
        ),
        Rule::new(
            "INPUT",
            vec![c("kubernetes health check service ports")],
            Target::Jump("KUBE-NODEPORTS".into()),
        ),
        Rule::new(
            "INPUT",
            vec![Raw(new), c("kubernetes externally-visible service portals")],
            Target::Jump("KUBE-EXTERNAL-SERVICES".into()),
        ),
        Rule::new("INPUT", vec![], Target::Jump("KUBE-FIREWALL".into())),
        Rule::new(
            "FORWARD",
            vec![Raw(new), c("kubernetes load balancer firewall")],
            Target::Jump("KUBE-PROXY-FIREWALL".into()),
        ),
        Rule::new(
            "FORWARD",
            vec![c("kubernetes forwarding rules")],
            Target::Jump("KUBE-FORWARD".into()),
        ),
        Rule::new(
            "FORWARD",
            vec![Raw(new), c("kubernetes service portals")],
            Target::Jump("KUBE-SERVICES".into()),
        ),
        Rule::new(
            "FORWARD",
            vec![Raw(new), c("kubernetes externally-visible service portals")],
            Target::Jump("KUBE-EXTERNAL-SERVICES".into()),
        ),
        Rule::new(
            "OUTPUT",
            vec![Raw(new), c("kubernetes load balancer firewall")],
            Target::Jump("KUBE-PROXY-FIREWALL".into()),
        ),
        Rule::new(
            "OUTPUT",
            vec![Raw(new), c("kubernetes service portals")],
            Target::Jump("KUBE-SERVICES".into()),
        ),
        Rule::new("OUTPUT", vec![], Target::Jump("KUBE-FIREWALL".into())),
        localnet_rule(),
        Rule::new(
            "KUBE-FORWARD",
            vec![Raw("-m conntrack --ctstate INVALID")],
            Target::Drop,
        ),
        Rule::new(
            "KUBE-FORWARD",
            vec![
                c("kubernetes forwarding rules"),
                Raw("-m mark --mark 0x4000/0x4000"),
            ],
            Target::Accept,
        ),
        Rule::new(
            "KUBE-FORWARD",
            vec![
                c("kubernetes forwarding conntrack rule"),
                Raw("-m conntrack --ctstate RELATED,ESTABLISHED"),
            ],
            Target::Accept,
        ),
    ]
}

/// kubelet's "block incoming localnet connections" (IPv4 only).
fn localnet_rule() -> Rule {
    Rule::new(
        "KUBE-FIREWALL",
        vec![
            c("block incoming localnet connections"),
            Part::Dst("127.0.0.0/8".into()),
            Part::Src {
                negate: true,
                cidr: "127.0.0.0/8".into(),
            },
            Part::Raw("-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT"),
        ],
        Target::Drop,
    )
}

fn nat_fixed() -> Vec<Rule> {
    let portals = || vec![c("kubernetes service portals")];
    vec![
        Rule::new(
            "PREROUTING",
            portals(),
            Target::Jump("KUBE-SERVICES".into()),
        ),
        Rule::new("OUTPUT", portals(), Target::Jump("KUBE-SERVICES".into())),
        Rule::new(
            "POSTROUTING",
            vec![c("kubernetes postrouting rules")],
            Target::Jump("KUBE-POSTROUTING".into()),
        ),
        Rule::new(
            "KUBE-POSTROUTING",
            vec![Part::Raw("-m mark ! --mark 0x4000/0x4000")],
            Target::Return,
        ),
        Rule::new("KUBE-POSTROUTING", vec![], Target::MarkXor(MASQ_MARK)),
        Rule::new(
            "KUBE-POSTROUTING",
            vec![c("kubernetes service traffic requiring SNAT")],
            Target::MasqueradeRandomFully,
        ),
        Rule::new("KUBE-MARK-MASQ", vec![], Target::MarkOr(MASQ_MARK)),
    ]
}

fn nodeports_last() -> Rule {
    Rule::new(
        "KUBE-SERVICES",
        vec![
            c("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
            Part::Raw("-m addrtype --dst-type LOCAL"),
        ],
        Target::Jump("KUBE-NODEPORTS".into()),
    )
}

fn no_endpoints_reject(s: &ServicePort<'_>) -> Rule {
    Rule::new(
        "KUBE-SERVICES",
        vec![
            Part::Comment(format!("{} has no endpoints", s.port_name_string())),
            Part::Proto(s.protocol.lower()),
            Part::Dst(s.cluster_ip.to_string()),
            Part::DPort(s.port),
        ],
        Target::Reject {
            ipv6: s.cluster_ip.is_ipv6(),
        },
    )
}

fn cluster_ip_parts(s: &ServicePort<'_>) -> Vec<Part> {
    vec![
        Part::Comment(format!("{} cluster IP", s.port_name_string())),
        Part::Proto(s.protocol.lower()),
        Part::Dst(s.cluster_ip.to_string()),
        Part::DPort(s.port),
    ]
}

fn services_jump(s: &ServicePort<'_>) -> Rule {
    Rule::new(
        "KUBE-SERVICES",
        cluster_ip_parts(s),
        Target::Jump(s.svc_chain.to_string()),
    )
}

/// The rules of a service's KUBE-SVC chain: masquerade off-cluster sources, then one
/// jump per endpoint (all but the last behind a statistic match).
fn svc_rules(s: &ServicePort<'_>, cluster_cidr: &str) -> Vec<Rule> {
    let mut masq = cluster_ip_parts(s);
    masq.push(Part::Src {
        negate: true,
        cidr: cluster_cidr.to_string(),
    });
    let mut rules = vec![Rule::in_chain(
        &s.svc_chain,
        masq,
        Target::Jump("KUBE-MARK-MASQ".into()),
    )];
    let spn = s.port_name_string();
    let n = s.endpoints.len();
    for (i, (ep, sep)) in s.endpoints.iter().zip(s.sep_chains.iter()).enumerate() {
        let mut parts = vec![Part::Comment(format!("{spn} -> {ep}"))];
        if i + 1 < n {
            parts.push(Part::Statistic { i, n });
        }
        rules.push(Rule::in_chain(
            &s.svc_chain,
            parts,
            Target::Jump(sep.clone()),
        ));
    }
    rules
}

/// The two rules of endpoint `i`'s KUBE-SEP chain: hairpin masquerade, then DNAT.
fn sep_rules(s: &ServicePort<'_>, i: usize) -> [Rule; 2] {
    let spn = s.port_name_string();
    let (ep, sep) = (&s.endpoints[i], &s.sep_chains[i]);
    [
        Rule::in_chain(
            sep,
            vec![
                Part::Comment(spn.clone()),
                Part::Src {
                    negate: false,
                    cidr: ep.ip().to_string(),
                },
            ],
            Target::Jump("KUBE-MARK-MASQ".into()),
        ),
        Rule::in_chain(
            sep,
            vec![Part::Comment(spn), Part::Proto(s.protocol.lower())],
            Target::Dnat(*ep),
        ),
    ]
}

fn has_endpoints(s: &&ServicePort<'_>) -> bool {
    !s.endpoints.is_empty()
}

/// kube-proxy's user chains of the filter table, as `iptables-save` sorts them.
pub const FILTER_CHAINS: [&str; 8] = [
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FIREWALL",
    "KUBE-FORWARD",
    "KUBE-KUBELET-CANARY",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-CANARY",
    "KUBE-PROXY-FIREWALL",
    "KUBE-SERVICES",
];

const NAT_CHAINS: [&str; 6] = [
    "KUBE-KUBELET-CANARY",
    "KUBE-MARK-MASQ",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-PROXY-CANARY",
    "KUBE-SERVICES",
];

/// Full `iptables-restore` input (filter, nat, mangle) for `services`, in kube-proxy's
/// own layout. `cluster_cidr` feeds the "masquerade off-cluster traffic" rule of
/// each KUBE-SVC chain, and its family is the ruleset's: an IPv6 CIDR makes the
/// `ip6tables-restore` input of the IPv6 proxier (same chains, IPv6 addresses, no
/// IPv4-only localnet rule), whose services must all be IPv6.
pub fn render_restore(services: &[ServicePort<'_>], cluster_cidr: &str) -> String {
    let ipv6 = cluster_cidr.contains(':');
    let mut f = String::new();
    f.push_str("*filter\n");
    for c in FILTER_CHAINS {
        let _ = writeln!(f, ":{c} - [0:0]");
    }
    for r in filter_fixed()
        .into_iter()
        .filter(|r| !(ipv6 && r.chain == "KUBE-FIREWALL"))
    {
        let _ = writeln!(f, "{}", r.restore());
    }
    for s in services.iter().filter(|s| s.endpoints.is_empty()) {
        let _ = writeln!(f, "{}", no_endpoints_reject(s).restore());
    }
    f.push_str("COMMIT\n");

    f.push_str("*nat\n");
    for c in NAT_CHAINS {
        let _ = writeln!(f, ":{c} - [0:0]");
    }
    for s in services.iter().filter(has_endpoints) {
        let _ = writeln!(f, ":{} - [0:0]", s.svc_chain);
        for sep in s.sep_chains.iter() {
            let _ = writeln!(f, ":{sep} - [0:0]");
        }
    }
    for r in nat_fixed() {
        let _ = writeln!(f, "{}", r.restore());
    }
    for s in services.iter().filter(has_endpoints) {
        let _ = writeln!(f, "{}", services_jump(s).restore());
        for r in svc_rules(s, cluster_cidr) {
            let _ = writeln!(f, "{}", r.restore());
        }
        for i in 0..s.endpoints.len() {
            for r in sep_rules(s, i) {
                let _ = writeln!(f, "{}", r.restore());
            }
        }
    }
    let _ = writeln!(f, "{}", nodeports_last().restore());
    f.push_str("COMMIT\n");

    // mangle: the canary and hint chains kubelet and kube-proxy create.
    f.push_str("*mangle\n:KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n");
    f
}

// ---- save form -------------------------------------------------------------------

/// What the saved ruleset holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveContent {
    /// kube-proxy in iptables mode: every service and endpoint.
    KubeProxy,
    /// Only what kubelet (and kube-proxy's canaries) leave: a node whose kube-proxy
    /// runs in nftables or IPVS mode.
    KubeletOnly,
}

/// How [`write_save`] prints.
#[derive(Clone, Debug)]
pub struct SaveOptions<'a> {
    pub content: SaveContent,
    /// Feeds the "masquerade off-cluster traffic" rule of each KUBE-SVC chain.
    pub cluster_cidr: &'a str,
    /// Date in the `# Generated by … on DATE` lines, ctime form (`Sat Nov 21 17:44:41 2026`).
    pub date: &'a str,
    /// Tool banner, e.g. `iptables-nft-save v1.8.9 (nf_tables)`.
    pub banner: &'a str,
    /// ip6tables: no IPv4-only localnet rule.
    pub ipv6: bool,
}

/// Which counter [`write_save`] asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterSlot<'a> {
    /// The policy counter of a built-in chain.
    Policy { table: &'a str, chain: &'a str },
    /// The counter of the next rule of `chain`; `target` is the jump target, if any.
    Rule {
        chain: &'a str,
        target: Option<&'a str>,
    },
}

/// A chain of the nat table, in sorted order, with where its rules come from.
#[derive(Clone, Copy)]
enum NatChain<'s> {
    Fixed(&'static str),
    Svc(&'s ServicePort<'s>),
    Sep(&'s ServicePort<'s>, usize),
}

const BUILTIN: [(&str, &[&str]); 3] = [
    (
        "mangle",
        &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
    ),
    ("filter", &["INPUT", "FORWARD", "OUTPUT"]),
    ("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]),
];

/// Streams the ruleset of `services` as `iptables-nft-save -c` prints it: tables
/// mangle, filter, nat; per table the built-in chains with policy counters, the user
/// chains sorted by name, then the rules chain by chain in that order. `counter` is
/// asked for every `[packets:bytes]`, in output order (so a seeded source gives the
/// same bytes every time).
pub fn write_save<W: Write>(
    out: &mut W,
    services: &[ServicePort<'_>],
    opts: &SaveOptions<'_>,
    counter: &mut dyn FnMut(CounterSlot<'_>) -> (u64, u64),
) -> io::Result<()> {
    let kube_proxy = opts.content == SaveContent::KubeProxy;
    let mut emit = Emitter::default();
    for (table, builtins) in BUILTIN {
        writeln!(out, "# Generated by {} on {}", opts.banner, opts.date)?;
        writeln!(out, "*{table}")?;
        for chain in builtins {
            let (p, b) = counter(CounterSlot::Policy { table, chain });
            writeln!(out, ":{chain} ACCEPT [{p}:{b}]")?;
        }
        match table {
            "mangle" => {
                let mut chains = vec!["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"];
                if kube_proxy {
                    chains.push("KUBE-PROXY-CANARY");
                }
                for c in chains {
                    writeln!(out, ":{c} - [0:0]")?;
                }
            }
            "filter" => {
                let rules: Vec<Rule> = if kube_proxy {
                    for c in FILTER_CHAINS {
                        writeln!(out, ":{c} - [0:0]")?;
                    }
                    let mut rules: Vec<Rule> = filter_fixed()
                        .into_iter()
                        .filter(|r| !(opts.ipv6 && r.chain == "KUBE-FIREWALL"))
                        .collect();
                    rules.extend(
                        services
                            .iter()
                            .filter(|s| s.endpoints.is_empty())
                            .map(no_endpoints_reject),
                    );
                    rules
                } else {
                    writeln!(out, ":KUBE-FIREWALL - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]")?;
                    let mut rules = vec![
                        Rule::new("INPUT", vec![], Target::Jump("KUBE-FIREWALL".into())),
                        Rule::new("OUTPUT", vec![], Target::Jump("KUBE-FIREWALL".into())),
                    ];
                    if !opts.ipv6 {
                        rules.push(localnet_rule());
                    }
                    rules
                };
                // Built-ins first, then user chains sorted; a stable sort keeps rule order.
                let mut rules = rules;
                rules.sort_by(|a, b| {
                    chain_rank(builtins, a.chain()).cmp(&chain_rank(builtins, b.chain()))
                });
                for r in &rules {
                    emit.rule(out, r, counter)?;
                }
            }
            _ => {
                if !kube_proxy {
                    writeln!(out, ":KUBE-KUBELET-CANARY - [0:0]")?;
                } else {
                    write_nat(out, services, opts, builtins, counter, &mut emit)?;
                }
            }
        }
        writeln!(out, "COMMIT")?;
        writeln!(out, "# Completed on {}", opts.date)?;
    }
    Ok(())
}

/// Prints saved rules with their counters through one reused line buffer.
#[derive(Default)]
struct Emitter {
    line: String,
}

impl Emitter {
    fn rule<W: Write>(
        &mut self,
        out: &mut W,
        r: &Rule,
        counter: &mut dyn FnMut(CounterSlot<'_>) -> (u64, u64),
    ) -> io::Result<()> {
        let target = match &r.target {
            Target::Jump(t) => Some(t.as_str()),
            _ => None,
        };
        let (p, b) = counter(CounterSlot::Rule {
            chain: r.chain(),
            target,
        });
        self.line.clear();
        let _ = write!(self.line, "[{p}:{b}] ");
        r.save(&mut self.line);
        self.line.push('\n');
        out.write_all(self.line.as_bytes())
    }
}

/// Sort key: built-in chains in their table order, then user chains by name.
fn chain_rank<'c>(builtins: &[&str], chain: &'c str) -> (usize, &'c str) {
    match builtins.iter().position(|b| *b == chain) {
        Some(i) => (i, ""),
        None => (builtins.len(), chain),
    }
}

fn write_nat<W: Write>(
    out: &mut W,
    services: &[ServicePort<'_>],
    opts: &SaveOptions<'_>,
    builtins: &[&str],
    counter: &mut dyn FnMut(CounterSlot<'_>) -> (u64, u64),
    emit: &mut Emitter,
) -> io::Result<()> {
    let mut chains: Vec<(&str, NatChain<'_>)> = NAT_CHAINS
        .iter()
        .map(|c| (*c, NatChain::Fixed(c)))
        .collect();
    for s in services.iter().filter(has_endpoints) {
        chains.push((&s.svc_chain, NatChain::Svc(s)));
        for (i, sep) in s.sep_chains.iter().enumerate() {
            chains.push((sep, NatChain::Sep(s, i)));
        }
    }
    chains.sort_by(|a, b| a.0.cmp(b.0));
    for (name, _) in &chains {
        writeln!(out, ":{name} - [0:0]")?;
    }
    let fixed = nat_fixed();
    for b in builtins {
        for r in fixed.iter().filter(|r| r.chain == *b) {
            emit.rule(out, r, counter)?;
        }
    }
    for (name, chain) in &chains {
        match chain {
            NatChain::Fixed("KUBE-SERVICES") => {
                for s in services.iter().filter(has_endpoints) {
                    emit.rule(out, &services_jump(s), counter)?;
                }
                emit.rule(out, &nodeports_last(), counter)?;
            }
            NatChain::Fixed(_) => {
                for r in fixed.iter().filter(|r| r.chain == *name) {
                    emit.rule(out, r, counter)?;
                }
            }
            NatChain::Svc(s) => {
                for r in svc_rules(s, opts.cluster_cidr) {
                    emit.rule(out, &r, counter)?;
                }
            }
            NatChain::Sep(s, i) => {
                for r in sep_rules(s, *i) {
                    emit.rule(out, &r, counter)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{Ipv4Addr, SocketAddrV4};

    fn eps(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().filter_map(|e| e.parse().ok()).collect()
    }

    fn save_of(services: &[ServicePort<'_>], content: SaveContent) -> String {
        let mut out = Vec::new();
        let opts = SaveOptions {
            content,
            cluster_cidr: "10.244.0.0/16",
            date: "Sat Nov 21 17:44:41 2026",
            banner: "iptables-nft-save v1.8.9 (nf_tables)",
            ipv6: false,
        };
        write_save(&mut out, services, &opts, &mut |_| (0, 0)).expect("write to Vec");
        String::from_utf8(out).expect("utf-8")
    }

    /// Lines copied from a real `iptables-nft-save -c` (analyzer/tests/integration/data).
    #[test]
    fn save_lines_match_real_output() {
        let dns = eps(&["10.244.0.2:53", "10.244.0.3:53"]);
        let none: Vec<SocketAddr> = Vec::new();
        let services = [
            ServicePort::new(
                "kube-system",
                "kube-dns",
                "dns-tcp",
                Protocol::Tcp,
                "10.96.0.10:53".parse().expect("addr"),
                Cow::Borrowed(&dns),
            ),
            ServicePort::new(
                "ns1",
                "empty",
                "http",
                Protocol::Tcp,
                "10.96.20.20:80".parse().expect("addr"),
                Cow::Borrowed(&none),
            ),
        ];
        let save = save_of(&services, SaveContent::KubeProxy);
        // The fixture's KUBE-SEP names are hand-made; the format is what was captured.
        let (sep0, sep1) = (&services[0].sep_chains[0], &services[0].sep_chains[1]);
        for want in [
            "[0:0] -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"kube-system/kube-dns:dns-tcp cluster IP\" -m tcp --dport 53 -j KUBE-SVC-ERIFXISQEP7F7OF4",
            "[0:0] -A KUBE-SVC-ERIFXISQEP7F7OF4 ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment \"kube-system/kube-dns:dns-tcp cluster IP\" -m tcp --dport 53 -j KUBE-MARK-MASQ",
            "[0:0] -A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment \"kube-system/kube-dns:dns-tcp -> 10.244.0.2:53\" -m statistic --mode random --probability 0.50000000000 -j {sep0}",
            "[0:0] -A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment \"kube-system/kube-dns:dns-tcp -> 10.244.0.3:53\" -j {sep1}",
            "[0:0] -A {sep0} -s 10.244.0.2/32 -m comment --comment \"kube-system/kube-dns:dns-tcp\" -j KUBE-MARK-MASQ",
            "[0:0] -A {sep0} -p tcp -m comment --comment \"kube-system/kube-dns:dns-tcp\" -m tcp -j DNAT --to-destination 10.244.0.2:53",
            "[0:0] -A KUBE-SERVICES -d 10.96.20.20/32 -p tcp -m comment --comment \"ns1/empty:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable",
            "[0:0] -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
            "[0:0] -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
            "[0:0] -A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
            "[0:0] -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
            "[0:0] -A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
            "# Generated by iptables-nft-save v1.8.9 (nf_tables) on Sat Nov 21 17:44:41 2026",
        ] {
            let want = want.replace("{sep0}", sep0).replace("{sep1}", sep1);
            assert!(save.lines().any(|l| l == want), "missing {want}\n{save}");
        }
    }

    #[test]
    fn save_chains_are_sorted_and_rules_grouped() {
        let a = eps(&["10.244.1.2:80", "10.244.1.3:80", "10.244.1.4:80"]);
        let services: Vec<ServicePort<'_>> = (0..20)
            .map(|i| {
                ServicePort::new(
                    "default",
                    [
                        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
                        "p", "q", "r", "s", "t",
                    ][i],
                    "http",
                    Protocol::Tcp,
                    SocketAddrV4::new(Ipv4Addr::new(10, 96, 1, i as u8), 80).into(),
                    Cow::Borrowed(&a),
                )
            })
            .collect();
        let save = save_of(&services, SaveContent::KubeProxy);
        let nat = save
            .split("*nat\n")
            .nth(1)
            .and_then(|s| s.split("COMMIT").next())
            .unwrap_or_default();
        let decls: Vec<&str> = nat
            .lines()
            .filter(|l| l.starts_with(':') && l.ends_with("- [0:0]"))
            .collect();
        let mut sorted = decls.clone();
        sorted.sort();
        assert_eq!(decls, sorted);
        assert_eq!(decls.len(), 6 + 20 + 60);
        // Rules come in blocks: once a chain's block ends, it never reappears.
        let mut seen: Vec<&str> = Vec::new();
        for l in nat.lines().filter(|l| l.starts_with('[')) {
            let chain = l.split(' ').nth(2).unwrap_or_default();
            if seen.last() != Some(&chain) {
                assert!(!seen.contains(&chain), "{chain} split");
                seen.push(chain);
            }
        }
        assert_eq!(&seen[..3], &["PREROUTING", "OUTPUT", "POSTROUTING"]);
    }

    #[test]
    fn kubelet_only_has_canaries_and_no_services() {
        let save = save_of(&[], SaveContent::KubeletOnly);
        assert!(save.contains(":KUBE-KUBELET-CANARY - [0:0]"));
        assert!(!save.contains("KUBE-SERVICES"));
        assert_eq!(save.matches("COMMIT").count(), 3);
    }

    /// The IPv6 proxier's input: ip6tables-restore takes `[ip]:port` DNAT targets and
    /// IPv6 hosts; the SEP hash covers the bracketed endpoint string as kube-proxy's
    /// `endpointInfo.String()` spells it; no IPv4 localnet rule.
    #[test]
    fn ipv6_restore_input() {
        let e = eps(&["[fd00:10:244:1::2]:80", "[fd00:10:244:1::3]:80"]);
        let none: Vec<SocketAddr> = Vec::new();
        let services = [
            ServicePort::new(
                "ns1",
                "svc1",
                "http",
                Protocol::Tcp,
                "[fd00:10:96::1]:80".parse().expect("addr"),
                Cow::Borrowed(&e),
            ),
            ServicePort::new(
                "ns1",
                "empty",
                "http",
                Protocol::Tcp,
                "[fd00:10:96::2]:80".parse().expect("addr"),
                Cow::Borrowed(&none),
            ),
        ];
        let spn = "ns1/svc1:http";
        assert_eq!(
            services[0].sep_chains[0],
            sep_chain(spn, "tcp", "[fd00:10:244:1::2]:80")
        );
        let text = render_restore(&services, "fd00:10:244::/56");
        let (svc, sep0) = (&services[0].svc_chain, &services[0].sep_chains[0]);
        for want in [
            format!("-A KUBE-SERVICES -m comment --comment \"{spn} cluster IP\" -m tcp -p tcp -d fd00:10:96::1 --dport 80 -j {svc}"),
            format!("-A {svc} -m comment --comment \"{spn} cluster IP\" -m tcp -p tcp -d fd00:10:96::1 --dport 80 ! -s fd00:10:244::/56 -j KUBE-MARK-MASQ"),
            format!("-A {sep0} -m comment --comment {spn} -s fd00:10:244:1::2 -j KUBE-MARK-MASQ"),
            format!("-A {sep0} -m comment --comment {spn} -m tcp -p tcp -j DNAT --to-destination [fd00:10:244:1::2]:80"),
            "-A KUBE-SERVICES -m comment --comment \"ns1/empty:http has no endpoints\" -m tcp -p tcp -d fd00:10:96::2 --dport 80 -j REJECT".to_string(),
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
        }
        assert!(!text.contains("127.0.0.0/8"), "{text}");
        let mut out = Vec::new();
        let opts = SaveOptions {
            content: SaveContent::KubeProxy,
            cluster_cidr: "fd00:10:244::/56",
            date: "Sat Nov 21 17:44:41 2026",
            banner: "ip6tables-nft-save v1.8.9 (nf_tables)",
            ipv6: true,
        };
        write_save(&mut out, &services, &opts, &mut |_| (0, 0)).expect("write to Vec");
        let save = String::from_utf8(out).expect("utf-8");
        for want in [
            format!("[0:0] -A {sep0} -s fd00:10:244:1::2/128 -m comment --comment \"{spn}\" -j KUBE-MARK-MASQ"),
            "[0:0] -A KUBE-SERVICES -d fd00:10:96::2/128 -p tcp -m comment --comment \"ns1/empty:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable".to_string(),
        ] {
            assert!(save.lines().any(|l| l == want), "missing {want}\n{save}");
        }
    }
}
