//! Writes the hand-made fixture bundles under `fixtures/analyzer/`. Ignored by default:
//! `cargo test -p netsnap-analyzer --test integration -- --ignored regen_fixtures::regenerate` regenerates them
//! (review the diff). Every fault is described next to the line that makes it.

use netsnap_scale::fixture;

use fixture::*;
use netsnap_schema::layout;
use netsnap_schema::model::{Addr, Link, LinkState, Neigh};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/analyzer")
}

fn write(name: &str, node: &Node) {
    let dir = fixtures_dir().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove old fixture");
    }
    std::fs::create_dir_all(fixtures_dir()).expect("fixtures dir");
    node.write(&dir).expect("fixture node writes");
}

/// Every catalog fault that a hand-made iptables-mode node can show.
pub fn faulty() -> Node {
    let mut n = Node::healthy("node-faulty");
    // SVC001: a service whose only pod is gone from the endpoints.
    n.services
        .push(Svc::new("default/empty:http", "tcp", "10.96.99.1", 80, &[]));
    // SVC002: web still sends to 10.244.1.99, a pod that was deleted.
    n.services[3].endpoints.push(("10.244.1.99".into(), 8080));
    // SVC003: the api pod listens on 9090, the service targets 8080.
    n.pods[3].tcp = vec![9090];
    // SVC005: a KUBE-SVC jump to a KUBE-SEP chain that was never created.
    n.extra_nat.push("-A KUBE-SVC-BROKENBROKENBROK -m comment --comment \"default/broken:http -> 10.244.1.12:8080\" -j KUBE-SEP-MISSINGMISSINGMI".into());
    n.extra_nat.push("-A KUBE-SERVICES -d 10.96.77.7/32 -p tcp -m comment --comment \"default/broken:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-BROKENBROKENBROK".into());
    // LNK001: a host veth whose pod netns is gone.
    let mut gone = Pod::new("default", "old-pod-0", "10.244.1.30");
    gone.gone = true;
    n.pods.push(gone);
    // LNK003: veth detached from cni0.
    let mut p = Pod::new("default", "detached-0", "10.244.1.31");
    p.enslaved = false;
    n.pods.push(p);
    // LNK004: host veth down.
    let mut p = Pod::new("default", "down-0", "10.244.1.32");
    p.host_up = false;
    n.pods.push(p);
    // LNK005: hairpin off.
    let mut p = Pod::new("default", "nohairpin-0", "10.244.1.33");
    p.hairpin = false;
    n.pods.push(p);
    // LNK006: pod MTU 9000 over a 1450 veth.
    let mut p = Pod::new("default", "jumbo-0", "10.244.1.34");
    p.mtu = 9000;
    n.pods.push(p);
    // LNK007: dup-0 got client-0's address.
    n.pods.push(Pod::new("default", "dup-0", "10.244.1.35"));
    n.duplicate_ip = Some((n.pods.len() - 1, "10.244.1.20".into()));
    // LNK008: no default route.
    let mut p = Pod::new("default", "noroute-0", "10.244.1.36");
    p.default_route = false;
    n.pods.push(p);
    // NF006: strict rp_filter on a pod's host veth.
    let mut p = Pod::new("default", "rpf-0", "10.244.1.37");
    p.host_rp_filter = Some("1");
    n.pods.push(p);
    // DNS001, DNS002, DNS005: broken pod resolv.conf files.
    let mut p = Pod::new("default", "dns-wrong-0", "10.244.1.40");
    p.resolv = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 198.51.100.53\noptions ndots:5\n".into();
    n.pods.push(p);
    let mut p = Pod::new("default", "dns-search-0", "10.244.1.41");
    p.resolv = "search default.svc.cluster.local svc.cluster.local cluster.local corp.example.com eu.corp.example.com us.corp.example.com lab.example.com example.com\nnameserver 10.96.0.10\noptions ndots:5\n".into();
    n.pods.push(p);
    let mut p = Pod::new("default", "dns-many-0", "10.244.1.42");
    p.resolv = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\nnameserver 198.51.100.53\nnameserver 198.51.100.54\nnameserver 198.51.100.55\noptions ndots:5\n".into();
    n.pods.push(p);
    // DNS004: the node resolver is the systemd-resolved stub.
    n.host_resolv =
        "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.internal\n".into();
    n.pods[0].resolv = n.host_resolv.clone();
    // NF001: kube rules also in iptables-legacy; NF004 there: FORWARD DROP, no accept.
    let mut legacy = Node::healthy("node-faulty");
    legacy.services.truncate(2);
    legacy.forward_policy = "DROP";
    n.files.insert(
        layout::IPTABLES_LEGACY_SAVE.into(),
        legacy.iptables_save("legacy", &["kubernetes forwarding rules\" -j KUBE-FORWARD"]),
    );
    // NF002 and NF003.
    n.sysctls
        .insert("net.bridge.bridge-nf-call-iptables".into(), "0".into());
    n.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    // NF005: POSTROUTING no longer jumps to KUBE-POSTROUTING.
    n.drop_rules.push("kubernetes postrouting rules");
    // PRS001: a line no parser knows.
    n.extra_nat
        .push("-A KUBE-SERVICES --frobnicate 7 -j ACCEPT".into());
    // CT001 + CT002 + CT003 + CT004: a table at 97 % that dropped.
    n.conntrack_max = 1000;
    n.stat_row.insert("drop", 12);
    n.stat_row.insert("early_drop", 3);
    n.stat_row.insert("insert_failed", 5);
    n.kmsg
        .push("4,1202,5123999999,-;nf_conntrack: nf_conntrack: table full, dropping packet".into());
    // CT005: a UDP entry still DNATing kube-dns to a backend that is gone.
    n.conntrack.push(ct_udp(
        "10.244.1.20",
        40002,
        "10.96.0.10",
        53,
        "10.244.1.9",
        53,
        3500,
    ));
    // CT006: 60 SNATed flows to one destination with a 100-port range.
    n.sysctls
        .insert("net.ipv4.ip_local_port_range".into(), "60000\t60099".into());
    for i in 0..60u16 {
        n.conntrack.push(ct_snat(
            "10.244.1.20",
            33000 + i,
            "93.184.216.34",
            443,
            NODE_IP,
            60000 + i,
        ));
    }
    // CT007: 150 flows to one web endpoint, 2 to the other.
    for i in 0..150u16 {
        n.conntrack.push(ct_tcp(
            "10.244.1.20",
            20000 + i,
            "10.96.12.34",
            80,
            "10.244.1.11",
            8080,
            "ESTABLISHED",
        ));
    }
    n.conntrack.push(ct_tcp(
        "10.244.1.20",
        21000,
        "10.96.12.34",
        80,
        "10.244.1.12",
        8080,
        "ESTABLISHED",
    ));
    n.conntrack_count = 970;
    // NB001: neighbour table near gc_thresh3.
    n.sysctls
        .insert("net.ipv4.neigh.default.gc_thresh3".into(), "16".into());
    for i in 0..15 {
        n.neigh.push(Neigh {
            ifindex: 2,
            family: "inet".into(),
            dst: format!("10.0.0.{}", 100 + i),
            lladdr: Some(format!("52:54:00:00:01:{i:02x}")),
            state: "REACHABLE".into(),
        });
    }
    // BND001: a source that failed.
    n.failed
        .push(("ip6tables-legacy-save", "timed out after 10 s (killed)"));
    n
}

/// IPVS mode, in the kernel's /proc/net/ip_vs hex format (this kernel has no IPVS).
pub fn ipvs() -> Node {
    let mut n = Node::healthy("node-ipvs");
    n.mode = Mode::Ipvs;
    n.unavailable.retain(|u| *u != "ipvs" && *u != "ipset");
    // 10.96.0.1:443 → 10.0.0.10:6443; 10.96.12.34:80 → web pods, one drained (weight 0,
    // 3 active: SVC006); 10.96.0.10:53/udp → coredns; 10.96.33.33:80 with no real
    // server (SVC001) and not bound to kube-ipvs0 (SVC006).
    n.files.insert(
        layout::IPVS.into(),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n\
TCP  0A600001:01BB rr\n  -> 0A00000A:192B      Masq    1      2          0\n\
TCP  0A600C22:0050 rr\n  -> 0AF4010B:1F90      Masq    1      4          1\n  -> 0AF4010C:1F90      Masq    0      3          0\n\
UDP  0A60000A:0035 rr\n  -> 0AF4010A:0035      Masq    1      0          6\n\
TCP  0A602121:0050 rr\n"
            .into(),
    );
    // KUBE-CLUSTER-IP misses 10.96.33.33 and lists 10.96.44.44 which IPVS does not have.
    n.files.insert(
        layout::IPSET.into(),
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x50577618\n\
add KUBE-CLUSTER-IP 10.96.0.1,tcp:443\nadd KUBE-CLUSTER-IP 10.96.12.34,tcp:80\nadd KUBE-CLUSTER-IP 10.96.0.10,udp:53\nadd KUBE-CLUSTER-IP 10.96.44.44,tcp:80\n\
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1b3c8e2a\n\
add KUBE-LOOP-BACK 10.244.1.10,udp:53,10.244.1.10\nadd KUBE-LOOP-BACK 10.244.1.11,tcp:8080,10.244.1.11\nadd KUBE-LOOP-BACK 10.244.1.12,tcp:8080,10.244.1.12\n"
            .into(),
    );
    n.extra_root_links.push(
        Link::new(5, "kube-ipvs0", 1500)
            .with_kind("dummy")
            .with_state(LinkState::Down)
            .with_flags(&["BROADCAST", "NOARP"])
            .with_mac("aa:bb:cc:dd:ee:ff"),
    );
    for vip in ["10.96.0.1", "10.96.12.34", "10.96.0.10"] {
        n.extra_root_addrs
            .push(Addr::new(5, vip, 32).with_label("kube-ipvs0"));
    }
    n
}

pub fn healthy() -> Node {
    Node::healthy("node-healthy")
}

#[test]
#[ignore = "rewrites fixtures/analyzer; run by hand and review the diff"]
fn regenerate() {
    write("healthy", &healthy());
    write("faulty", &faulty());
    write("ipvs", &ipvs());
}

/// Unpacks a collected bundle into `fixtures/demo` (the README's demo). The archive
/// comes from `netsnap-collect --node-netns` on a lab with faults (see
/// fixtures/README.md for the exact commands):
/// `NETSNAP_DEMO_ARCHIVE=/tmp/demo.netsnap.tar.zst cargo test -p netsnap-analyzer
/// --test integration -- --ignored regen_fixtures::demo_from_archive`.
#[test]
#[ignore = "rewrites fixtures/demo from $NETSNAP_DEMO_ARCHIVE"]
fn demo_from_archive() {
    unpack_archive("NETSNAP_DEMO_ARCHIVE", "demo");
}

/// `fixtures/dual-stack`: a dual-stack lab node with IPv6 forwarding off (see
/// fixtures/README.md): `NETSNAP_DUAL_STACK_ARCHIVE=/tmp/dual-stack.netsnap.tar.zst
/// cargo test -p netsnap-analyzer --test integration -- --ignored
/// regen_fixtures::dual_stack_from_archive`.
#[test]
#[ignore = "rewrites fixtures/dual-stack from $NETSNAP_DUAL_STACK_ARCHIVE"]
fn dual_stack_from_archive() {
    unpack_archive("NETSNAP_DUAL_STACK_ARCHIVE", "dual-stack");
}

/// Rewrites `fixtures/<dir>` from the collected archive named by `$var`.
fn unpack_archive(var: &str, dir: &str) {
    let Some(archive) = std::env::var_os(var) else {
        panic!("set {var} to a .netsnap.tar.zst collected from a lab");
    };
    let b =
        netsnap_schema::Bundle::open(Path::new(&archive), &netsnap_schema::ReadLimits::default())
            .expect("archive opens");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = netsnap_schema::BundleWriter::new(tmp.path());
    for s in &b.manifest.sources {
        match &s.path {
            Some(p) => w
                .add_bytes(s.clone(), b.file(p).expect("content"))
                .expect("add"),
            None => w.add_record(s.clone()).expect("record"),
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(dir);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old fixture");
    }
    w.write_dir(b.manifest.clone(), &dir)
        .expect("write the fixture");
}
