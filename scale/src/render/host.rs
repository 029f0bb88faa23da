//! Node-wide sources: facts, sysctls, resolv.conf, conntrack settings and stats.

use crate::plan::{Plan, Pod, CLUSTER_DNS, NODE_RESOLVER, WRONG_DNS};
use netsnap_schema::model::{ConntrackSysctl, HostFacts, KubeProxyHints, Sysctls};
use std::collections::BTreeMap;

pub const KERNEL: &str = "6.1.0-28-cloud-amd64";
pub const CPUS: u32 = 8;

pub fn facts(plan: &Plan) -> HostFacts {
    HostFacts {
        hostname: plan.spec.hostname.clone(),
        kernel_release: KERNEL.into(),
        kernel_version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)".into(),
        machine: "x86_64".into(),
        boot_id: Some(plan.rng("boot-id").uuid()),
        cpus: CPUS,
        memory_bytes: 32 * 1024 * 1024 * 1024,
        uptime_secs: 1_209_600,
        collected_as_root: true,
        kube_proxy: KubeProxyHints {
            kube_ipvs0: false,
            ip_vs: false,
            legacy_tables: Vec::new(),
            legacy6_tables: Vec::new(),
        },
    }
}

/// `nf_conntrack_max` that keeps the planted table well under CT001's 80 %: the
/// kernel default 262,144, or the next power of two above count / 0.7.
pub fn conntrack_max(count: u64) -> u64 {
    let mut max = 262_144u64;
    while count * 10 > max * 7 {
        max *= 2;
    }
    max
}

fn conntrack_node(plan: &Plan) -> Sysctls {
    let max = conntrack_max(plan.spec.conntrack);
    let mut s = Sysctls::new();
    for (k, v) in [
        ("acct", "0".to_string()),
        ("buckets", max.to_string()),
        ("checksum", "1".into()),
        ("count", plan.spec.conntrack.to_string()),
        ("events", "2".into()),
        ("expect_max", "4096".into()),
        ("generic_timeout", "600".into()),
        ("icmp_timeout", "30".into()),
        ("log_invalid", "0".into()),
        ("max", max.to_string()),
        ("tcp_be_liberal", "0".into()),
        ("tcp_loose", "1".into()),
        ("tcp_max_retrans", "3".into()),
        ("tcp_timeout_close", "10".into()),
        ("tcp_timeout_close_wait", "60".into()),
        ("tcp_timeout_established", "432000".into()),
        ("tcp_timeout_fin_wait", "120".into()),
        ("tcp_timeout_last_ack", "30".into()),
        ("tcp_timeout_max_retrans", "300".into()),
        ("tcp_timeout_syn_recv", "60".into()),
        ("tcp_timeout_syn_sent", "120".into()),
        ("tcp_timeout_time_wait", "120".into()),
        ("tcp_timeout_unacknowledged", "300".into()),
        ("timestamp", "0".into()),
        ("udp_timeout", "30".into()),
        ("udp_timeout_stream", "120".into()),
    ] {
        s.insert(format!("net.netfilter.nf_conntrack_{k}"), v);
    }
    s
}

pub fn conntrack_sysctl(plan: &Plan) -> ConntrackSysctl {
    let mut count_by_netns = BTreeMap::new();
    count_by_netns.insert("root".to_string(), plan.spec.conntrack);
    for p in &plan.pods {
        count_by_netns.insert(p.netns_id.clone(), 0);
    }
    ConntrackSysctl {
        node: conntrack_node(plan),
        count_by_netns,
    }
}

pub fn host_sysctl(plan: &Plan) -> Sysctls {
    let mut s = Sysctls::new();
    for b in ["arptables", "ip6tables", "iptables"] {
        s.insert(format!("net.bridge.bridge-nf-call-{b}"), "1".into());
    }
    s.insert("net.core.somaxconn".into(), "4096".into());
    for i in ["all", "default"] {
        for (k, v) in [
            ("accept_local", "0"),
            ("forwarding", "1"),
            ("proxy_arp", "0"),
            ("route_localnet", "0"),
            ("rp_filter", "0"),
        ] {
            s.insert(format!("net.ipv4.conf.{i}.{k}"), v.into());
        }
    }
    s.insert("net.ipv4.ip_forward".into(), "1".into());
    s.insert("net.ipv4.ip_local_port_range".into(), "32768\t60999".into());
    s.insert("net.ipv4.ip_local_reserved_ports".into(), String::new());
    for (k, v) in [
        ("gc_thresh1", "128"),
        ("gc_thresh2", "512"),
        ("gc_thresh3", "1024"),
    ] {
        s.insert(format!("net.ipv4.neigh.default.{k}"), v.into());
    }
    s.insert("net.ipv4.tcp_tw_reuse".into(), "2".into());
    s.insert("net.ipv6.conf.all.disable_ipv6".into(), "0".into());
    s.insert("net.ipv6.conf.all.forwarding".into(), "0".into());
    for (k, v) in conntrack_node(plan) {
        if k.contains("timeout")
            || k.ends_with("_max")
            || k.ends_with("_count")
            || k.ends_with("_buckets")
        {
            s.insert(k, v);
        }
    }
    s
}

pub fn host_resolv() -> String {
    format!("nameserver {NODE_RESOLVER}\nsearch c.example-project.internal google.internal\n")
}

/// What kubelet writes for a pod: cluster search domains, the cluster DNS, ndots:5.
pub fn pod_resolv(p: &Pod) -> String {
    if p.dns_default {
        return host_resolv();
    }
    let ns = if p.wrong_dns { WRONG_DNS } else { CLUSTER_DNS };
    format!(
        "search {}.svc.cluster.local svc.cluster.local cluster.local c.example-project.internal google.internal\nnameserver {ns}\noptions ndots:5\n",
        p.namespace
    )
}

/// `/proc/net/stat/nf_conntrack`: hex, one row per CPU, `entries` repeated per row.
pub fn conntrack_stat(plan: &Plan) -> String {
    let mut r = plan.rng("ct-stat");
    let mut out = String::from(
        "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n",
    );
    for _ in 0..CPUS {
        let found = r.below(64);
        let invalid = r.below(40);
        let restart = r.below(2000);
        out.push_str(&format!(
            "{:08x}  {:08x} {found:08x} {:08x} {invalid:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x}  {:08x} {:08x} {:08x} {restart:08x}\n",
            plan.spec.conntrack, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ));
    }
    out
}
