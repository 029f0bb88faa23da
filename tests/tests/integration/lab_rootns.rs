//! The root network namespace is identical before and after a full lab with
//! every fault injected, and torn down. This is also the one test that fills a
//! conntrack table (~230 MB of kernel memory), so it checks that fault and that
//! the memory is given back with the netns.

use netsnap_tests::lab::{
    assert_no_leaks, conntrack_stat, netns, require_lab, table_full_logged, Lab, ProxyMode,
};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn snapshot() -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/rootns-snapshot");
    let out = Command::new(&script)
        .output()
        .expect("run scripts/rootns-snapshot");
    assert!(
        out.status.success(),
        "rootns-snapshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 snapshot")
}

/// Active `nf_conntrack` slab objects, machine-wide.
fn conntrack_slab_objects() -> u64 {
    let slab = std::fs::read_to_string("/proc/slabinfo").unwrap_or_default();
    slab.lines()
        .find(|l| l.starts_with("nf_conntrack "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in &la {
        if !lb.contains(l) {
            out.push_str(&format!("- {l}\n"));
        }
    }
    for l in &lb {
        if !la.contains(l) {
            out.push_str(&format!("+ {l}\n"));
        }
    }
    out
}

#[test]
fn every_fault_leaves_the_root_netns_unchanged() {
    let Some(_env) = require_lab() else { return };
    let before = snapshot();
    let slab_before = conntrack_slab_objects();

    // Service i: endpoints on pods 2i, 2i+1 (mod 10); service 3 is UDP.
    let mut lab = Lab::builder("rootns")
        .pods(10)
        .services(8)
        .endpoints_per_service(2)
        .bridge_name("cni0")
        .proxy_mode(ProxyMode::Iptables)
        .cluster_dns(true)
        .traffic(true)
        .build()
        .expect("build lab");
    let fp = lab.footprint();

    // Faults that need working traffic first, then the rest.
    lab.fault_stale_udp_conntrack(3).unwrap();
    lab.fault_target_port_not_listening(2).unwrap();
    lab.fault_service_without_endpoints(0).unwrap();
    lab.fault_dns_without_endpoints().unwrap();
    lab.fault_endpoint_pod_deleted(2).unwrap();
    lab.fault_dangling_host_veth(8).unwrap();
    lab.fault_veth_detached(1).unwrap();
    lab.fault_link_down(4).unwrap();
    lab.fault_hairpin_off(5).unwrap();
    lab.fault_mtu_mismatch(6).unwrap();
    lab.fault_duplicate_pod_ip(0, 9).unwrap();
    lab.fault_no_default_route(7).unwrap();
    lab.fault_rp_filter_strict(3).unwrap();
    lab.fault_resolv_wrong_nameserver(0).unwrap();
    lab.fault_resolv_too_many_search(1).unwrap();
    lab.fault_resolv_too_many_nameservers(3).unwrap();
    lab.fault_node_resolv_local_stub().unwrap();
    lab.fault_kube_rules_in_both_backends().unwrap();
    lab.fault_masquerade_missing().unwrap();
    lab.fault_forward_policy_drop().unwrap();
    lab.fault_bridge_nf_call_iptables_off().unwrap();
    lab.fault_ip_forward_off().unwrap();

    // Conntrack table full: count = max, drops counted, kernel logged it (for this
    // table, on kernels that name the netns: other labs fill theirs meanwhile).
    let ino = netns::inode(&lab.node_netns_path()).unwrap();
    let logged_before = table_full_logged(ino).unwrap();
    let started = Instant::now();
    lab.fault_conntrack_table_full().unwrap();
    eprintln!("conntrack table filled in {:?}", started.elapsed());
    let node = lab.node_netns_name().to_string();
    let read = |k: &str| -> u64 {
        let o = lab.node(&["cat", &format!("/proc/sys/net/netfilter/{k}")]);
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    assert!(read("nf_conntrack_count") >= read("nf_conntrack_max"));
    assert!(conntrack_stat(&node, "drop").unwrap() > 0);
    assert!(table_full_logged(ino).unwrap() > logged_before);
    // The kernel's conntrack cache holds at least our table (a global count: other
    // tests' labs fill and free theirs meanwhile, so growth since the start is no
    // measure).
    let (table, slab) = (read("nf_conntrack_count"), conntrack_slab_objects());
    assert!(
        slab >= table,
        "nf_conntrack slab: {slab} objects, fewer than the lab's table of {table}"
    );

    let kinds: Vec<&str> = lab.faults().iter().map(|f| f.finding.as_str()).collect();
    for id in [
        "CT005", "SVC003", "SVC001", "DNS003", "SVC002", "LNK001", "LNK003", "LNK004", "LNK005",
        "LNK006", "LNK007", "LNK008", "NF006", "DNS001", "DNS002", "DNS005", "DNS004", "NF001",
        "NF005", "NF004", "NF002", "NF003", "CT001", "CT002", "CT004",
    ] {
        assert!(kinds.contains(&id), "{id} not recorded: {kinds:?}");
    }

    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);

    // The kernel frees a netns (and its conntrack entries) asynchronously.
    let deadline = Instant::now() + Duration::from_secs(60);
    while conntrack_slab_objects() > slab_before + 50_000 {
        assert!(
            Instant::now() < deadline,
            "conntrack memory not freed: {} objects (before: {slab_before})",
            conntrack_slab_objects()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let after = snapshot();
    assert!(
        before == after,
        "root netns changed:\n{}",
        diff(&before, &after)
    );
}
