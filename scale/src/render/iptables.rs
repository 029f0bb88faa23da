//! `iptables-nft-save -c` / `ip6tables-nft-save -c` of the node, through kube-shapes,
//! with plausible seeded counters.

use crate::plan::{Plan, CLUSTER_CIDR};
use crate::time;
use netsnap_kube_shapes::{write_save, CounterSlot, SaveContent, SaveOptions};
use std::io::{self, Write};

const BANNER: &str = "iptables-nft-save v1.8.9 (nf_tables)";
const BANNER6: &str = "ip6tables-nft-save v1.8.9 (nf_tables)";

fn counters(plan: &Plan, label: &str) -> impl FnMut(CounterSlot<'_>) -> (u64, u64) {
    let mut r = plan.rng(label);
    move |slot| {
        let packets = match slot {
            CounterSlot::Policy { .. } => r.range(100_000, 90_000_000),
            // Service portals see most traffic; per-endpoint chains much less.
            CounterSlot::Rule { chain, .. } if !chain.starts_with("KUBE-S") => {
                r.range(0, 2_000_000)
            }
            CounterSlot::Rule { .. } => {
                if r.percent(30) {
                    0
                } else {
                    r.range(1, 40_000)
                }
            }
        };
        // 40..1500 bytes a packet, mostly small.
        let bytes = packets * r.range(52, 900);
        (packets, bytes)
    }
}

pub fn write_v4<W: Write>(plan: &Plan, out: &mut W) -> io::Result<()> {
    let date = time::ctime(time::CAPTURED_AT_UNIX);
    let content = match plan.spec.proxy {
        crate::spec::ProxyMode::Iptables => SaveContent::KubeProxy,
        crate::spec::ProxyMode::Nftables => SaveContent::KubeletOnly,
    };
    let opts = SaveOptions {
        content,
        cluster_cidr: CLUSTER_CIDR,
        date: &date,
        banner: BANNER,
        ipv6: false,
    };
    let ports = plan.ports();
    write_save(out, &ports, &opts, &mut counters(plan, "iptables-v4"))
}

/// IPv6: a single-stack IPv4 cluster leaves only kubelet's chains here.
pub fn write_v6<W: Write>(plan: &Plan, out: &mut W) -> io::Result<()> {
    let date = time::ctime(time::CAPTURED_AT_UNIX);
    let opts = SaveOptions {
        content: SaveContent::KubeletOnly,
        cluster_cidr: "",
        date: &date,
        banner: BANNER6,
        ipv6: true,
    };
    write_save(out, &[], &opts, &mut counters(plan, "iptables-v6"))
}
