//! Binary target `netsnap-lab` (declared in tests/Cargo.toml; not a module of
//! the library).
//!
//! `scripts/lab`: bring a named lab up and down by hand, to run the collector
//! against it and poke at it with `ip`. See `src/lab/README.md`.

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use netsnap_tests::lab::{self, CniMode, Lab, ProxyMode};

const FAULTS: &str = "\
faults (ARG = pod or service index):
  service-without-endpoints:SVC  dns-without-endpoints  endpoint-pod-deleted:POD
  target-port-not-listening:SVC  veth-detached:POD  link-down:POD
  hairpin-off:POD  mtu-mismatch:POD  duplicate-pod-ip:A,B  no-default-route:POD
  bridge-nf-call-iptables-off  ip-forward-off  forward-policy-drop  masquerade-missing
  rp-filter-strict:POD  kube-rules-in-both-backends  conntrack-table-full
  stale-udp-conntrack:SVC  resolv-wrong-nameserver:POD  resolv-too-many-search:POD
  resolv-too-many-nameservers:POD  node-resolv-local-stub
  ipvs-virtual-server-missing:SVC  ipvs-vip-unbound:SVC  (--proxy ipvs)
  with --dual-stack: service-without-endpoints-v6:SVC  endpoint-pod-deleted-v6:POD
  no-default-route6:POD  stale-udp-conntrack-v6:SVC  ip6-forward-off
  bridge-nf-call-ip6tables-off
(dangling-host-veth needs the lab process to stay alive, so it is test-only.)";

/// A simulated Kubernetes node built from network namespaces, by hand.
#[derive(Parser)]
#[command(name = "lab", after_help = FAULTS)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a lab and leave it running.
    #[command(after_help = FAULTS)]
    Up(UpArgs),
    /// Remove a lab (processes, netns, cgroups, dirs).
    Down { name: String },
    /// The labs on this machine.
    List,
    /// A lab's lab.json: pods, services, chains, injected faults.
    Show { name: String },
    /// Internal: the listener the lab runs inside endpoint pods.
    #[command(hide = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args)]
struct UpArgs {
    /// `demo` becomes `nsm-demo`.
    name: String,
    /// Pod network namespaces.
    #[arg(long, value_name = "N")]
    pods: Option<usize>,
    /// Service ports.
    #[arg(long, value_name = "N")]
    services: Option<usize>,
    /// Endpoints per service.
    #[arg(long, value_name = "N")]
    endpoints: Option<usize>,
    /// The pods' bridge.
    #[arg(long, value_name = "NAME")]
    bridge: Option<String>,
    /// How kube-proxy's rules are programmed.
    #[arg(long)]
    proxy: Option<Proxy>,
    /// Wire the pods with the CNI reference plugins (/usr/lib/cni) instead of `ip`
    /// commands: `bridge` (+ portmap, firewall) or `ptp` (+ portmap); `calico` and
    /// `flannel` (two nodes and their overlay) are their shapes built by the lab.
    #[arg(long)]
    cni: Option<Cni>,
    /// IPv6 beside IPv4: pod addresses, ClusterIPs, ip6tables / `table ip6
    /// kube-proxy` rules (hand-built or `--cni bridge` pods).
    #[arg(long)]
    dual_stack: bool,
    /// No kube-dns service and coredns pod.
    #[arg(long)]
    no_dns: bool,
    /// No request through every service VIP (no DNAT entries in conntrack).
    #[arg(long)]
    no_traffic: bool,
    /// No listeners in endpoint pods (also turns traffic off).
    #[arg(long)]
    no_listeners: bool,
    /// Fill the node's conntrack table to N entries (`conntrack -R`): ASSURED pod →
    /// service VIP flows DNATed to the service's endpoints; N may not exceed
    /// nf_conntrack_max (never raised: read-only outside the init netns).
    #[arg(long, value_name = "N")]
    conntrack: Option<usize>,
    /// A fault to inject (see the list below); repeatable.
    #[arg(long = "fault", value_name = "KIND[:ARG[,ARG]]")]
    faults: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Cni {
    Bridge,
    Ptp,
    /// Calico's routed shape, built by the lab.
    Calico,
    /// Cilium's shape without kube-proxy, built by the lab (implies --no-traffic).
    Cilium,
    /// Two nodes (`NAME-a`, `NAME-b`) joined by a Flannel VXLAN overlay, pods wired
    /// by the bridge configuration flannel's plugin delegates.
    Flannel,
}

#[derive(Clone, Copy, ValueEnum)]
enum Proxy {
    Iptables,
    Nftables,
    /// kube-ipvs0, ipsets and IPVS-mode rules; `<lab dir>/ip_vs.txt` is the rendered
    /// /proc/net/ip_vs (this kernel has no IPVS).
    Ipvs,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("lab: {e:#}");
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Up(args) => up(args),
        Cmd::Serve { args } => {
            let (proto, port, reply, dual_stack) = lab::server::parse_args(&args)?;
            lab::server::serve(proto, port, reply, dual_stack)
        }
        Cmd::Down { name } => {
            let name = full_name(&name);
            lab::teardown_by_name(&name)?;
            println!("lab {name} is down");
            Ok(())
        }
        Cmd::List => {
            for e in std::fs::read_dir("/run")?.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = f.strip_prefix("netsnap-lab-") {
                    println!("{n}");
                }
            }
            Ok(())
        }
        Cmd::Show { name } => {
            let p = format!("/run/netsnap-lab-{}/lab.json", full_name(&name));
            print!(
                "{}",
                std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?
            );
            Ok(())
        }
    }
}

/// `demo` → `nsm-demo`; a full name (`nsm-…`, `nsl-…`) is kept.
fn full_name(n: &str) -> String {
    if n.starts_with(lab::MANUAL_PREFIX) || n.starts_with(lab::TEST_PREFIX) {
        n.to_string()
    } else {
        format!("{}{n}", lab::MANUAL_PREFIX)
    }
}

fn up(args: UpArgs) -> Result<()> {
    let mut b = Lab::builder(&args.name).manual(true);
    if let Some(n) = args.pods {
        b = b.pods(n);
    }
    if let Some(n) = args.services {
        b = b.services(n);
    }
    if let Some(n) = args.endpoints {
        b = b.endpoints_per_service(n);
    }
    if let Some(name) = &args.bridge {
        b = b.bridge_name(name);
    }
    if let Some(p) = args.proxy {
        b = b.proxy_mode(match p {
            Proxy::Iptables => ProxyMode::Iptables,
            Proxy::Nftables => ProxyMode::Nftables,
            Proxy::Ipvs => ProxyMode::Ipvs,
        });
    }
    if let Some(c) = args.cni {
        b = b.cni(match c {
            Cni::Bridge => CniMode::Bridge,
            Cni::Ptp => CniMode::Ptp,
            Cni::Calico => CniMode::CalicoRouted,
            Cni::Cilium => CniMode::CiliumShape,
            Cni::Flannel => CniMode::Flannel,
        });
        if matches!(c, Cni::Cilium) {
            b = b.traffic(false);
        }
    }
    b = b.dual_stack(args.dual_stack);
    if args.no_dns {
        b = b.cluster_dns(false);
    }
    if args.no_traffic {
        b = b.traffic(false);
    }
    if args.no_listeners {
        b = b.listeners(false);
    }
    let (conntrack, faults) = (args.conntrack, args.faults);
    if matches!(args.cni, Some(Cni::Flannel)) {
        ensure!(
            conntrack.is_none() && faults.is_empty(),
            "--cni flannel takes no --conntrack or --fault (inject them per node in code)"
        );
        return up_flannel_pair(b);
    }
    let mut lab = b.build()?;
    if let Some(n) = conntrack {
        let have = lab
            .conntrack_fill(n)
            .with_context(|| format!("--conntrack {n}"))?;
        println!("  conntrack:   {have} entries in the node table");
    }
    for f in &faults {
        apply_fault(&mut lab, f).with_context(|| format!("fault {f}"))?;
    }
    println!("lab {} is up", lab.name());
    println!(
        "  node netns:  {}   (ip netns exec {} ip -br addr)",
        lab.node_netns_name(),
        lab.node_netns_name()
    );
    println!(
        "  pods:        {} netns {}pod0 …",
        lab.pods().len(),
        lab.netns_prefix()
    );
    println!(
        "  host root:   {}   (netsnap-collect --host-root …)",
        lab.host_root().display()
    );
    println!("  state:       {}/lab.json", lab.dir().display());
    println!("  down with:   scripts/lab down {}", lab.name());
    lab.persist()?;
    Ok(())
}

/// Two manual nodes joined by the overlay (see `lab::flannel`).
fn up_flannel_pair(b: lab::LabBuilder) -> Result<()> {
    let pair = lab::flannel::FlannelPair::build(b)?;
    for (lab, vtep) in pair.nodes().into_iter().zip(&pair.vteps) {
        println!(
            "node {}: {} pods {} flannel.1 {}  (ip netns exec {} ip route)",
            lab.name(),
            vtep.node_ip,
            vtep.subnet,
            vtep.mac,
            lab.node_netns_name()
        );
        println!("  host root:   {}", lab.host_root().display());
    }
    let [b, a] = pair.persist()?;
    println!("  down with:   scripts/lab down {b} && scripts/lab down {a}");
    Ok(())
}

fn apply_fault(lab: &mut Lab, spec: &str) -> Result<()> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    let nums: Vec<usize> = arg
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().with_context(|| format!("bad index {s:?}")))
        .collect::<Result<_>>()?;
    let one = || nums.first().copied().context("this fault needs an index");
    match kind {
        "service-without-endpoints" => lab.fault_service_without_endpoints(one()?),
        "dns-without-endpoints" => lab.fault_dns_without_endpoints(),
        "endpoint-pod-deleted" => lab.fault_endpoint_pod_deleted(one()?),
        "target-port-not-listening" => lab.fault_target_port_not_listening(one()?),
        "veth-detached" => lab.fault_veth_detached(one()?),
        "link-down" => lab.fault_link_down(one()?),
        "hairpin-off" => lab.fault_hairpin_off(one()?),
        "mtu-mismatch" => lab.fault_mtu_mismatch(one()?),
        "duplicate-pod-ip" => {
            let b = nums.get(1).copied().context("duplicate-pod-ip:A,B")?;
            lab.fault_duplicate_pod_ip(one()?, b)
        }
        "no-default-route" => lab.fault_no_default_route(one()?),
        "no-default-route6" => lab.fault_no_default_route6(one()?),
        "stale-udp-conntrack-v6" => lab.fault_stale_udp_conntrack_v6(one()?),
        "ip6-forward-off" => lab.fault_ip6_forward_off(),
        "bridge-nf-call-ip6tables-off" => lab.fault_bridge_nf_call_ip6tables_off(),
        "service-without-endpoints-v6" => lab.fault_service_without_endpoints_v6(one()?),
        "endpoint-pod-deleted-v6" => lab.fault_endpoint_pod_deleted_v6(one()?),
        "bridge-nf-call-iptables-off" => lab.fault_bridge_nf_call_iptables_off(),
        "ip-forward-off" => lab.fault_ip_forward_off(),
        "forward-policy-drop" => lab.fault_forward_policy_drop(),
        "masquerade-missing" => lab.fault_masquerade_missing(),
        "rp-filter-strict" => lab.fault_rp_filter_strict(one()?),
        "kube-rules-in-both-backends" => lab.fault_kube_rules_in_both_backends(),
        "conntrack-table-full" => lab.fault_conntrack_table_full(),
        "stale-udp-conntrack" => lab.fault_stale_udp_conntrack(one()?),
        "resolv-wrong-nameserver" => lab.fault_resolv_wrong_nameserver(one()?),
        "resolv-too-many-search" => lab.fault_resolv_too_many_search(one()?),
        "resolv-too-many-nameservers" => lab.fault_resolv_too_many_nameservers(one()?),
        "node-resolv-local-stub" => lab.fault_node_resolv_local_stub(),
        "ipvs-virtual-server-missing" => lab.fault_ipvs_virtual_server_missing(one()?),
        "ipvs-vip-unbound" => lab.fault_ipvs_vip_unbound(one()?),
        _ => bail!("unknown fault {kind:?}\n{FAULTS}"),
    }
}
