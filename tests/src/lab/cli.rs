//! Binary target `netsnap-lab` (declared in tests/Cargo.toml; not a module of
//! the library).
//!
//! `scripts/lab`: bring a named lab up and down by hand, to run the collector
//! against it and poke at it with `ip`. See `src/lab/README.md`.

use anyhow::{bail, Context, Result};
use netsnap_tests::lab::{self, Lab, ProxyMode};

const USAGE: &str = "\
usage: lab up NAME [--pods N] [--services N] [--endpoints N] [--bridge NAME]
                   [--proxy iptables|nftables] [--no-dns] [--no-traffic] [--no-listeners]
                   [--conntrack N] [--fault KIND[:ARG[,ARG]]]...
       lab down NAME
       lab list
       lab show NAME

faults (ARG = pod or service index):
  service-without-endpoints:SVC  dns-without-endpoints  endpoint-pod-deleted:POD
  target-port-not-listening:SVC  veth-detached:POD  link-down:POD
  hairpin-off:POD  mtu-mismatch:POD  duplicate-pod-ip:A,B  no-default-route:POD
  bridge-nf-call-iptables-off  ip-forward-off  forward-policy-drop  masquerade-missing
  rp-filter-strict:POD  kube-rules-in-both-backends  conntrack-table-full
  stale-udp-conntrack:SVC  resolv-wrong-nameserver:POD  resolv-too-many-search:POD
  resolv-too-many-nameservers:POD  node-resolv-local-stub
(dangling-host-veth needs the lab process to stay alive, so it is test-only.)

--conntrack N: fill the node's conntrack table to N entries (`conntrack -R`):
  ASSURED pod → service VIP flows DNATed to the service's endpoints; N may not
  exceed nf_conntrack_max (never raised: read-only outside the init netns).";

fn main() {
    if let Err(e) = run() {
        eprintln!("lab: {e:#}");
        std::process::exit(2);
    }
}

fn num(v: Option<String>, what: &str) -> Result<usize> {
    v.with_context(|| format!("{what} needs a value"))?
        .parse()
        .with_context(|| format!("{what} must be a number"))
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    match cmd.as_str() {
        "up" => up(args.next().context(USAGE)?, args.collect()),
        // Internal: the listener the lab runs inside endpoint pods.
        "serve" => {
            let rest: Vec<String> = args.collect();
            let (proto, port, reply) = lab::server::parse_args(&rest)?;
            lab::server::serve(proto, port, reply)
        }
        "down" => {
            let name = full_name(&args.next().context(USAGE)?);
            lab::teardown_by_name(&name)?;
            println!("lab {name} is down");
            Ok(())
        }
        "list" => {
            for e in std::fs::read_dir("/run")?.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = f.strip_prefix("netsnap-lab-") {
                    println!("{n}");
                }
            }
            Ok(())
        }
        "show" => {
            let name = full_name(&args.next().context(USAGE)?);
            let p = format!("/run/netsnap-lab-{name}/lab.json");
            print!(
                "{}",
                std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?
            );
            Ok(())
        }
        _ => {
            println!("{USAGE}");
            if cmd.is_empty() || cmd == "-h" || cmd == "--help" {
                Ok(())
            } else {
                bail!("unknown command {cmd:?}")
            }
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

fn up(name: String, rest: Vec<String>) -> Result<()> {
    let mut b = Lab::builder(&name).manual(true);
    let mut faults = Vec::new();
    let mut conntrack = None;
    let mut it = rest.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pods" => b = b.pods(num(it.next(), "--pods")?),
            "--services" => b = b.services(num(it.next(), "--services")?),
            "--endpoints" => b = b.endpoints_per_service(num(it.next(), "--endpoints")?),
            "--bridge" => b = b.bridge_name(&it.next().context("--bridge needs a name")?),
            "--proxy" => {
                b = b.proxy_mode(match it.next().as_deref() {
                    Some("iptables") => ProxyMode::Iptables,
                    Some("nftables") => ProxyMode::Nftables,
                    other => bail!("--proxy iptables|nftables, not {other:?}"),
                })
            }
            "--no-dns" => b = b.cluster_dns(false),
            "--no-traffic" => b = b.traffic(false),
            "--no-listeners" => b = b.listeners(false),
            "--conntrack" => conntrack = Some(num(it.next(), "--conntrack")?),
            "--fault" => faults.push(it.next().context("--fault needs a kind")?),
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
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
        _ => bail!("unknown fault {kind:?}\n{USAGE}"),
    }
}
