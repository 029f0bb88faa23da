//! Per-netns JSON sources (schema types) and the netns index.

use crate::plan::{
    Plan, Pod, BRIDGE, BRIDGE_IFINDEX, MTU, NODE_GATEWAY, NODE_IP, POD_ETH0_IFINDEX, ROOT_INODE,
    UPLINK_IFINDEX,
};
use crate::rng::{link_local, mac_string};
use netsnap_schema::model::{
    Addr, BridgeInfo, BridgePort, Discovery, FdbEntry, Link, LinkState, Neigh, NeighTable,
    NetnsEntry, NetnsIndex, PodIdentity, PodIdentitySource, Route, RouteTable, Rule, Socket,
    SocketProto, Sysctls,
};
use std::net::Ipv4Addr;

const UP_FLAGS: [&str; 5] = ["UP", "BROADCAST", "RUNNING", "MULTICAST", "LOWER_UP"];
/// Netns files live on the nsfs device.
const NSFS_DEV: u64 = 4;

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn lo() -> Link {
    Link::new(1, "lo", 65536)
        .with_flags(&["UP", "LOOPBACK", "RUNNING", "LOWER_UP"])
        .with_mac("00:00:00:00:00:00")
}

fn veth(ifindex: u32, name: &str, mac: &[u8; 6], peer: u32, nsid: i32) -> Link {
    up(Link::new(ifindex, name, MTU).with_kind("veth"), mac).with_peer(peer, nsid)
}

/// Up with this node's flag order and the MAC.
fn up(link: Link, mac: &[u8; 6]) -> Link {
    link.with_state(LinkState::Up)
        .with_flags(&UP_FLAGS)
        .with_mac(mac_string(mac))
}

fn host_port(mut l: Link) -> Link {
    l.master = Some(BRIDGE_IFINDEX);
    l.promiscuity = 1;
    l.bridge_port = Some(BridgePort {
        hairpin: true,
        state: Some(3),
        learning: Some(true),
    });
    l
}

/// The MACs of the node's own devices (stable per seed).
pub struct NodeMacs {
    pub eth0: [u8; 6],
    pub bridge: [u8; 6],
    pub gateway: [u8; 6],
}

pub fn node_macs(plan: &Plan) -> NodeMacs {
    let mut r = plan.rng("node-macs");
    NodeMacs {
        eth0: r.mac(),
        bridge: r.mac(),
        gateway: r.mac(),
    }
}

pub fn root_links(plan: &Plan, macs: &NodeMacs) -> Vec<Link> {
    let mut links = vec![lo()];
    links.push(up(Link::new(UPLINK_IFINDEX, "eth0", MTU), &macs.eth0));
    links.push(Link {
        bridge: Some(BridgeInfo {
            stp_state: Some(0),
            vlan_filtering: Some(false),
        }),
        ..up(
            Link::new(BRIDGE_IFINDEX, BRIDGE, MTU).with_kind("bridge"),
            &macs.bridge,
        )
    });
    for p in &plan.pods {
        links.push(host_port(veth(
            p.host_ifindex,
            &p.host_veth,
            &p.host_mac,
            POD_ETH0_IFINDEX,
            p.nsid,
        )));
    }
    if let Some(d) = &plan.dangling {
        links.push(host_port(veth(
            d.ifindex,
            &d.name,
            &d.mac,
            POD_ETH0_IFINDEX,
            d.nsid,
        )));
    }
    links
}

pub fn pod_links(p: &Pod) -> Vec<Link> {
    let mut eth0 = veth(POD_ETH0_IFINDEX, "eth0", &p.mac, p.host_ifindex, 0);
    eth0.flags = flags(&UP_FLAGS);
    vec![lo(), eth0]
}

fn addr(ifindex: u32, family: &str, address: String, prefix_len: u8, scope: &str) -> Addr {
    Addr {
        ifindex,
        family: family.into(),
        address,
        prefix_len,
        scope: scope.into(),
        label: None,
    }
}

fn v4(ifindex: u32, ip: Ipv4Addr, prefix: u8, scope: &str, label: &str) -> Addr {
    let mut a = addr(ifindex, "inet", ip.to_string(), prefix, scope);
    a.label = Some(label.into());
    a
}

pub fn root_addrs(plan: &Plan, macs: &NodeMacs) -> Vec<Addr> {
    let mut out = vec![
        v4(1, Ipv4Addr::LOCALHOST, 8, "host", "lo"),
        v4(UPLINK_IFINDEX, NODE_IP, 24, "global", "eth0"),
        v4(
            BRIDGE_IFINDEX,
            plan.bridge_ip(),
            plan.pod_cidr.prefix_len(),
            "global",
            BRIDGE,
        ),
        addr(1, "inet6", "::1".into(), 128, "host"),
        addr(UPLINK_IFINDEX, "inet6", link_local(&macs.eth0), 64, "link"),
        addr(
            BRIDGE_IFINDEX,
            "inet6",
            link_local(&macs.bridge),
            64,
            "link",
        ),
    ];
    for p in &plan.pods {
        out.push(addr(
            p.host_ifindex,
            "inet6",
            link_local(&p.host_mac),
            64,
            "link",
        ));
    }
    out
}

pub fn pod_addrs(plan: &Plan, p: &Pod) -> Vec<Addr> {
    vec![
        v4(1, Ipv4Addr::LOCALHOST, 8, "host", "lo"),
        v4(
            POD_ETH0_IFINDEX,
            p.ip,
            plan.pod_cidr.prefix_len(),
            "global",
            "eth0",
        ),
        addr(1, "inet6", "::1".into(), 128, "host"),
        addr(POD_ETH0_IFINDEX, "inet6", link_local(&p.mac), 64, "link"),
    ]
}

struct R<'a> {
    family: &'a str,
    table: u32,
    dst: String,
    gateway: Option<String>,
    oif: u32,
    prefsrc: Option<String>,
    kind: &'a str,
    protocol: &'a str,
    scope: &'a str,
    metric: Option<u32>,
}

impl R<'_> {
    fn build(self) -> Route {
        Route {
            family: self.family.into(),
            table: self.table,
            dst: self.dst,
            gateway: self.gateway,
            oif: Some(self.oif),
            prefsrc: self.prefsrc,
            kind: self.kind.into(),
            protocol: self.protocol.into(),
            scope: self.scope.into(),
            metric: self.metric,
            mtu: None,
            multipath: Vec::new(),
        }
    }
}

/// The local-table routes the kernel adds for an IPv4 address.
fn local_v4(out: &mut Vec<Route>, oif: u32, ip: Ipv4Addr, broadcast: Option<Ipv4Addr>) {
    let src = Some(ip.to_string());
    out.push(
        R {
            family: "inet",
            table: 255,
            dst: format!("{ip}/32"),
            gateway: None,
            oif,
            prefsrc: src.clone(),
            kind: "local",
            protocol: "kernel",
            scope: "host",
            metric: None,
        }
        .build(),
    );
    if let Some(b) = broadcast {
        out.push(
            R {
                family: "inet",
                table: 255,
                dst: format!("{b}/32"),
                gateway: None,
                oif,
                prefsrc: src,
                kind: "broadcast",
                protocol: "kernel",
                scope: "link",
                metric: None,
            }
            .build(),
        );
    }
}

fn loopback_routes(out: &mut Vec<Route>) {
    out.push(
        R {
            family: "inet",
            table: 255,
            dst: "127.0.0.0/8".into(),
            gateway: None,
            oif: 1,
            prefsrc: Some("127.0.0.1".into()),
            kind: "local",
            protocol: "kernel",
            scope: "host",
            metric: None,
        }
        .build(),
    );
    local_v4(
        out,
        1,
        Ipv4Addr::LOCALHOST,
        Some(Ipv4Addr::new(127, 255, 255, 255)),
    );
}

fn v6_link_routes(out: &mut Vec<Route>, oifs: &[u32], locals: &[(u32, String)]) {
    for &oif in oifs {
        out.push(
            R {
                family: "inet6",
                table: 254,
                dst: "fe80::/64".into(),
                gateway: None,
                oif,
                prefsrc: None,
                kind: "unicast",
                protocol: "kernel",
                scope: "universe",
                metric: Some(256),
            }
            .build(),
        );
    }
    out.push(
        R {
            family: "inet6",
            table: 255,
            dst: "::1/128".into(),
            gateway: None,
            oif: 1,
            prefsrc: None,
            kind: "local",
            protocol: "kernel",
            scope: "universe",
            metric: Some(0),
        }
        .build(),
    );
    for (oif, ll) in locals {
        out.push(
            R {
                family: "inet6",
                table: 255,
                dst: format!("{ll}/128"),
                gateway: None,
                oif: *oif,
                prefsrc: None,
                kind: "local",
                protocol: "kernel",
                scope: "universe",
                metric: Some(0),
            }
            .build(),
        );
    }
    for &oif in oifs {
        out.push(
            R {
                family: "inet6",
                table: 255,
                dst: "ff00::/8".into(),
                gateway: None,
                oif,
                prefsrc: None,
                kind: "multicast",
                protocol: "kernel",
                scope: "universe",
                metric: Some(256),
            }
            .build(),
        );
    }
}

fn default_rules() -> Vec<Rule> {
    vec![
        Rule::lookup("inet", 0, 255),
        Rule::lookup("inet", 32766, 254),
        Rule::lookup("inet", 32767, 253),
        Rule::lookup("inet6", 0, 255),
        Rule::lookup("inet6", 32766, 254),
    ]
}

pub fn root_routes(plan: &Plan, macs: &NodeMacs) -> RouteTable {
    let mut routes = vec![
        R {
            family: "inet",
            table: 254,
            dst: "default".into(),
            gateway: Some(NODE_GATEWAY.to_string()),
            oif: UPLINK_IFINDEX,
            prefsrc: None,
            kind: "unicast",
            protocol: "dhcp",
            scope: "universe",
            metric: Some(100),
        }
        .build(),
        R {
            family: "inet",
            table: 254,
            dst: plan.pod_cidr.to_string(),
            gateway: None,
            oif: BRIDGE_IFINDEX,
            prefsrc: Some(plan.bridge_ip().to_string()),
            kind: "unicast",
            protocol: "kernel",
            scope: "link",
            metric: None,
        }
        .build(),
        R {
            family: "inet",
            table: 254,
            dst: "192.168.49.0/24".into(),
            gateway: None,
            oif: UPLINK_IFINDEX,
            prefsrc: Some(NODE_IP.to_string()),
            kind: "unicast",
            protocol: "kernel",
            scope: "link",
            metric: Some(100),
        }
        .build(),
    ];
    local_v4(
        &mut routes,
        BRIDGE_IFINDEX,
        plan.bridge_ip(),
        Some(plan.pod_broadcast()),
    );
    loopback_routes(&mut routes);
    local_v4(
        &mut routes,
        UPLINK_IFINDEX,
        NODE_IP,
        Some(Ipv4Addr::new(192, 168, 49, 255)),
    );
    let mut oifs = vec![UPLINK_IFINDEX, BRIDGE_IFINDEX];
    oifs.extend(plan.pods.iter().map(|p| p.host_ifindex));
    let mut locals = vec![
        (UPLINK_IFINDEX, link_local(&macs.eth0)),
        (BRIDGE_IFINDEX, link_local(&macs.bridge)),
    ];
    locals.extend(
        plan.pods
            .iter()
            .map(|p| (p.host_ifindex, link_local(&p.host_mac))),
    );
    v6_link_routes(&mut routes, &oifs, &locals);
    RouteTable {
        routes,
        rules: default_rules(),
    }
}

pub fn pod_routes(plan: &Plan, p: &Pod) -> RouteTable {
    let mut routes = vec![
        R {
            family: "inet",
            table: 254,
            dst: "default".into(),
            gateway: Some(plan.bridge_ip().to_string()),
            oif: POD_ETH0_IFINDEX,
            prefsrc: None,
            kind: "unicast",
            protocol: "boot",
            scope: "universe",
            metric: None,
        }
        .build(),
        R {
            family: "inet",
            table: 254,
            dst: plan.pod_cidr.to_string(),
            gateway: None,
            oif: POD_ETH0_IFINDEX,
            prefsrc: Some(p.ip.to_string()),
            kind: "unicast",
            protocol: "kernel",
            scope: "link",
            metric: None,
        }
        .build(),
    ];
    local_v4(
        &mut routes,
        POD_ETH0_IFINDEX,
        p.ip,
        Some(plan.pod_broadcast()),
    );
    loopback_routes(&mut routes);
    v6_link_routes(
        &mut routes,
        &[POD_ETH0_IFINDEX],
        &[(POD_ETH0_IFINDEX, link_local(&p.mac))],
    );
    RouteTable {
        routes,
        rules: default_rules(),
    }
}

fn neigh(ifindex: u32, dst: Ipv4Addr, mac: &[u8; 6], state: &str) -> Neigh {
    Neigh {
        ifindex,
        family: "inet".into(),
        dst: dst.to_string(),
        lladdr: Some(mac_string(mac)),
        state: state.into(),
    }
}

fn fdb(ifindex: u32, mac: &[u8; 6], master: Option<u32>, state: &str) -> FdbEntry {
    FdbEntry {
        ifindex,
        mac: mac_string(mac),
        master,
        vlan: None,
        dst: None,
        state: state.into(),
    }
}

pub fn root_neigh(plan: &Plan, macs: &NodeMacs) -> NeighTable {
    const STATES: [&str; 4] = ["REACHABLE", "STALE", "REACHABLE", "DELAY"];
    let mut neighbours = vec![neigh(
        UPLINK_IFINDEX,
        NODE_GATEWAY,
        &macs.gateway,
        "REACHABLE",
    )];
    let mut fdb_entries = Vec::new();
    for (k, p) in plan.pods.iter().enumerate() {
        neighbours.push(neigh(
            BRIDGE_IFINDEX,
            p.ip,
            &p.mac,
            STATES[k % STATES.len()],
        ));
        fdb_entries.push(fdb(
            p.host_ifindex,
            &p.mac,
            Some(BRIDGE_IFINDEX),
            "REACHABLE",
        ));
        fdb_entries.push(fdb(
            p.host_ifindex,
            &p.host_mac,
            Some(BRIDGE_IFINDEX),
            "PERMANENT",
        ));
    }
    if let Some(d) = &plan.dangling {
        fdb_entries.push(fdb(d.ifindex, &d.mac, Some(BRIDGE_IFINDEX), "PERMANENT"));
    }
    fdb_entries.push(fdb(BRIDGE_IFINDEX, &macs.bridge, None, "PERMANENT"));
    NeighTable {
        neighbours,
        fdb: fdb_entries,
    }
}

pub fn pod_neigh(plan: &Plan, macs: &NodeMacs) -> NeighTable {
    NeighTable {
        neighbours: vec![neigh(
            POD_ETH0_IFINDEX,
            plan.bridge_ip(),
            &macs.bridge,
            "REACHABLE",
        )],
        fdb: Vec::new(),
    }
}

fn socket(proto: SocketProto, local: &str, port: u16, inode: u64, uid: u32) -> Socket {
    Socket {
        proto,
        local: local.into(),
        port,
        inode,
        uid,
    }
}

pub fn root_sockets() -> Vec<Socket> {
    vec![
        socket(SocketProto::Tcp, "0.0.0.0", 22, 18_211, 0),
        socket(SocketProto::Tcp, "127.0.0.1", 10248, 24_501, 0),
        socket(SocketProto::Tcp, "127.0.0.1", 10249, 25_102, 0),
        socket(SocketProto::Tcp6, "::", 10250, 24_502, 0),
        socket(SocketProto::Tcp6, "::", 10256, 25_103, 0),
        socket(SocketProto::Udp, "0.0.0.0", 68, 17_020, 0),
    ]
}

pub fn pod_sockets(p: &Pod) -> Vec<Socket> {
    let mut inode = p.inode % 1_000_000 + 100_000;
    let mut next = || {
        inode += 1;
        inode
    };
    let mut out: Vec<Socket> = p
        .tcp
        .iter()
        .map(|port| socket(SocketProto::Tcp, "0.0.0.0", *port, next(), 65_532))
        .collect();
    out.extend(
        p.udp
            .iter()
            .map(|port| socket(SocketProto::Udp, "0.0.0.0", *port, next(), 65_532)),
    );
    out
}

/// Per-netns sysctls, as the collector records them.
pub fn netns_sysctl(ifaces: &[&str], forwarding: bool, conntrack_count: u64) -> Sysctls {
    let mut s = Sysctls::new();
    let fwd = if forwarding { "1" } else { "0" };
    for b in ["arptables", "ip6tables", "iptables"] {
        s.insert(format!("net.bridge.bridge-nf-call-{b}"), "1".into());
    }
    let mut names = vec!["all", "default"];
    names.extend_from_slice(ifaces);
    for i in names {
        for (k, v) in [
            ("accept_local", "0"),
            ("forwarding", fwd),
            ("proxy_arp", "0"),
            ("route_localnet", "0"),
            ("rp_filter", "0"),
        ] {
            s.insert(format!("net.ipv4.conf.{i}.{k}"), v.into());
        }
    }
    s.insert("net.ipv4.ip_forward".into(), fwd.into());
    s.insert("net.ipv4.ip_local_port_range".into(), "32768\t60999".into());
    for k in ["all", "default"] {
        s.insert(format!("net.ipv6.conf.{k}.disable_ipv6"), "0".into());
        s.insert(format!("net.ipv6.conf.{k}.forwarding"), "0".into());
    }
    s.insert(
        "net.netfilter.nf_conntrack_count".into(),
        conntrack_count.to_string(),
    );
    s
}

pub fn root_sysctl(plan: &Plan) -> Sysctls {
    let mut ifaces = vec!["eth0", BRIDGE, "lo"];
    ifaces.extend(plan.pods.iter().map(|p| p.host_veth.as_str()));
    if let Some(d) = &plan.dangling {
        ifaces.push(&d.name);
    }
    netns_sysctl(&ifaces, true, plan.spec.conntrack)
}

pub fn pod_sysctl() -> Sysctls {
    netns_sysctl(&["eth0", "lo"], false, 0)
}

pub fn index(plan: &Plan) -> NetnsIndex {
    let mut netns = vec![NetnsEntry {
        id: "root".into(),
        inode: ROOT_INODE,
        dev: NSFS_DEV,
        is_root: true,
        found_by: vec![Discovery::Node {
            path: "/proc/1/ns/net".into(),
        }],
        nsid: None,
        pids: vec![1],
        hostname: Some(plan.spec.hostname.clone()),
        pod: None,
    }];
    for p in &plan.pods {
        let mut found_by = vec![Discovery::RunNetns {
            path: format!("/run/netns/{}", p.netns_id),
        }];
        found_by.extend(p.pids.iter().map(|pid| Discovery::Proc { pid: *pid }));
        netns.push(NetnsEntry {
            id: p.netns_id.clone(),
            inode: p.inode,
            dev: NSFS_DEV,
            is_root: false,
            found_by,
            nsid: Some(p.nsid),
            pids: p.pids.clone(),
            hostname: Some(p.name.clone()),
            pod: Some(PodIdentity {
                namespace: Some(p.namespace.clone()),
                name: Some(p.name.clone()),
                uid: Some(p.uid.clone()),
                source: PodIdentitySource::Crictl,
                tried: vec![PodIdentitySource::Crictl],
            }),
        });
    }
    NetnsIndex {
        netns,
        inaccessible: Vec::new(),
    }
}

/// Kernel log lines the CNI's veth and bridge work leaves (dmesg form).
pub fn kmsg(plan: &Plan) -> String {
    let mut out = String::new();
    let mut t = 12.0f64;
    let mut line = |t: f64, msg: String| {
        out.push_str(&format!("[{t:>12.6}] {msg}\n"));
    };
    line(t, format!("{BRIDGE}: port 1(eth0) entered disabled state"));
    for (k, p) in plan.pods.iter().enumerate() {
        let port = k + 1;
        t += 0.731_113;
        line(
            t,
            format!(
                "{BRIDGE}: port {port}({}) entered blocking state",
                p.host_veth
            ),
        );
        line(
            t + 0.000_004,
            format!(
                "{BRIDGE}: port {port}({}) entered disabled state",
                p.host_veth
            ),
        );
        line(
            t + 0.000_021,
            format!("{}: entered allmulticast mode", p.host_veth),
        );
        line(
            t + 0.000_033,
            format!("{}: entered promiscuous mode", p.host_veth),
        );
        line(
            t + 0.012_004,
            format!(
                "{BRIDGE}: port {port}({}) entered forwarding state",
                p.host_veth
            ),
        );
    }
    out
}
