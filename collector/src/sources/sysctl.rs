//! Sysctls, read from `/proc/sys`.
//!
//! `net.*` entries under /proc/sys are resolved against the netns of the *reading
//! thread* (verified on kernel 6.18: a thread that `setns`ed sees its target's values
//! and its target's interfaces under `net/ipv4/conf/`), so per-netns sysctls are read
//! from the netns thread itself. Nothing is ever written.

use netsnap_schema::model::Sysctls;
use std::io;
use std::path::PathBuf;

fn path_of(parts: &[&str]) -> PathBuf {
    let mut p = PathBuf::from("/proc/sys");
    for part in parts {
        p.push(part);
    }
    p
}

/// One sysctl by components (an interface name may contain dots, so names are
/// never split on `.`), trimmed of its final newline.
pub fn read(parts: &[&str]) -> io::Result<String> {
    let s = crate::sys::procfs::read_small(&path_of(parts))?;
    Ok(s.trim().to_string())
}

/// Collects sysctls into a map keyed by dotted names; missing ones are skipped (the
/// module is not loaded, IPv6 is off …), other failures are reported.
#[derive(Default)]
pub struct Reader {
    pub values: Sysctls,
    pub errors: Vec<String>,
}

impl Reader {
    pub fn get(&mut self, parts: &[&str]) {
        let key = parts.join(".");
        match read(parts) {
            Ok(v) => {
                self.values.insert(key, v);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.errors.push(crate::source::io_reason(&key, &e)),
        }
    }

    /// Every file of a /proc/sys directory whose name starts with `prefix`.
    pub fn get_dir(&mut self, dir: &[&str], prefix: &str) {
        let Ok(rd) = std::fs::read_dir(path_of(dir)) else {
            return;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        for n in names {
            let mut parts = dir.to_vec();
            parts.push(&n);
            self.get(&parts);
        }
    }

    pub fn error(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| {
            let n = self.errors.len();
            let first: Vec<&str> = self.errors.iter().take(3).map(String::as_str).collect();
            format!("{n} sysctl(s) unreadable: {}", first.join("; "))
        })
    }
}

/// Interface names of the current thread's netns as /proc/sys sees them.
pub fn conf_interfaces() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(path_of(&["net", "ipv4", "conf"])) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "all" && n != "default")
        .collect();
    v.sort();
    v
}

const IPV4_CONF: [&str; 5] = [
    "forwarding",
    "rp_filter",
    "proxy_arp",
    "route_localnet",
    "accept_local",
];

const NEIGH: [&str; 3] = ["gc_thresh1", "gc_thresh2", "gc_thresh3"];

const BRIDGE_NF: [&str; 3] = [
    "bridge-nf-call-iptables",
    "bridge-nf-call-ip6tables",
    "bridge-nf-call-arptables",
];

/// Per-netns sysctls of the calling thread's netns: forwarding, rp_filter … of
/// `all`, `default` and every interface, plus the conntrack count.
pub fn netns_sysctls() -> Reader {
    let mut r = Reader::default();
    r.get(&["net", "ipv4", "ip_forward"]);
    r.get(&["net", "ipv4", "ip_local_port_range"]);
    let mut ifaces = vec!["all".to_string(), "default".to_string()];
    ifaces.extend(conf_interfaces());
    for ifname in &ifaces {
        for key in IPV4_CONF {
            r.get(&["net", "ipv4", "conf", ifname, key]);
        }
    }
    for ifname in ["all", "default"] {
        r.get(&["net", "ipv6", "conf", ifname, "forwarding"]);
        r.get(&["net", "ipv6", "conf", ifname, "disable_ipv6"]);
    }
    for key in NEIGH {
        r.get(&["net", "ipv4", "neigh", "default", key]);
    }
    for key in BRIDGE_NF {
        r.get(&["net", "bridge", key]);
    }
    r.get(&["net", "netfilter", "nf_conntrack_count"]);
    r
}

/// Node sysctls that matter (read in the node netns): forwarding, bridge-nf-call-*,
/// rp_filter, port range, neighbour gc thresholds, conntrack limits and timeouts.
pub fn node_sysctls() -> Reader {
    let mut r = Reader::default();
    r.get(&["net", "ipv4", "ip_forward"]);
    r.get(&["net", "ipv4", "ip_local_port_range"]);
    r.get(&["net", "ipv4", "ip_local_reserved_ports"]);
    r.get(&["net", "ipv4", "tcp_tw_reuse"]);
    r.get(&["net", "ipv6", "conf", "all", "forwarding"]);
    r.get(&["net", "ipv6", "conf", "all", "disable_ipv6"]);
    for ifname in ["all", "default"] {
        for key in IPV4_CONF {
            r.get(&["net", "ipv4", "conf", ifname, key]);
        }
    }
    for key in BRIDGE_NF {
        r.get(&["net", "bridge", key]);
    }
    for fam in ["ipv4", "ipv6"] {
        for key in NEIGH {
            r.get(&["net", fam, "neigh", "default", key]);
        }
    }
    r.get(&["net", "core", "somaxconn"]);
    r.get(&["net", "core", "netdev_max_backlog"]);
    r.get(&["net", "nf_conntrack_max"]);
    r.get(&["net", "netfilter", "nf_conntrack_max"]);
    r.get(&["net", "netfilter", "nf_conntrack_buckets"]);
    r.get(&["net", "netfilter", "nf_conntrack_count"]);
    r.get_dir(&["net", "netfilter"], "nf_conntrack_tcp_timeout");
    r.get_dir(&["net", "netfilter"], "nf_conntrack_udp_timeout");
    r.get_dir(&["net", "ipv4", "vs"], "");
    r
}

/// Every `net.netfilter.nf_conntrack_*` of the calling thread's netns.
pub fn conntrack_sysctls() -> Reader {
    let mut r = Reader::default();
    r.get(&["net", "nf_conntrack_max"]);
    r.get_dir(&["net", "netfilter"], "nf_conntrack_");
    r
}
