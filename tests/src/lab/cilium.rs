//! Cilium's node shape without kube-proxy, built by the lab (there is no Cilium, and
//! no BPF program, here): what a support engineer finds on such a node.
//!
//! * `cilium_host` (the router address, `/32`) and its veth peer `cilium_net`;
//!   `cilium_vxlan`, a collect-metadata VXLAN device (tunnel mode);
//! * per pod an `lxc` + 12 hex host veth; the pod has a `/32` address, the router
//!   address on-link and a default route through it with the tunnel's MTU (`mtu
//!   1450`), its device keeping 1500 as Cilium leaves it;
//! * on the node the pod CIDR via `cilium_host` (`mtu 1450`) and one route per pod
//!   to its `lxc` veth (`enable-endpoint-routes`: the kernel delivers without BPF);
//! * Cilium's own iptables chains (`CILIUM_*`, fed from the built-in chains), no
//!   `KUBE-*` chain;
//! * a `cilium-cni` conflist, and a `cilium-dbg` in the host root that prints the
//!   agent's service listing and BPF LB map rendered from the lab's services
//!   (re-rendered on every [`Lab::load_proxy_rules`], so service faults show).
//!
//! What the lab cannot give: service VIPs answer nowhere (Cilium serves them from
//! BPF), so a Cilium lab is built without traffic.

use super::model::{Protocol, Service};
use super::{cmd, netns, Lab, CLUSTER_CIDR};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;

/// What Cilium's tunnel mode leaves for the pods' routes: 1500 less VXLAN's 50.
pub const ROUTE_MTU: u32 = 1450;

/// The conflist Cilium's agent installs (the lab wires the pods itself).
pub fn conflist_plugins() -> Vec<Value> {
    vec![json!({
        "type": "cilium-cni",
        "enable-debug": false,
        "log-file": "/var/run/cilium/cilium-cni.log",
    })]
}

impl Lab {
    /// Builds Cilium's devices, the pods' `lxc` veths and routes, and writes the
    /// conflist and the `cilium-dbg` stand-in into the host root.
    pub(super) fn cilium_attach_pods(&mut self) -> Result<()> {
        ensure!(
            !self.cfg.traffic,
            "Cilium's shape has no service datapath here (Cilium serves VIPs from BPF): build it with .traffic(false)"
        );
        self.write_conflist(&self.cni_list())?;
        let router = self.net.gateway();
        let cidr = self.net.pod_cidr();
        let node_first = format!(
            "link add cilium_host type veth peer name cilium_net\n\
             link set cilium_host up\nlink set cilium_net up\n\
             addr add {router}/32 dev cilium_host\n\
             link add cilium_vxlan type vxlan external dstport 8472\nlink set cilium_vxlan up\n\
             route add {cidr} via {router} dev cilium_host src {router} mtu {ROUTE_MTU}\n"
        );
        self.attach_routed_pods(
            node_first,
            &router.to_string(),
            &format!(" mtu {ROUTE_MTU}"),
        )
    }

    /// `usr/bin/cilium-dbg` in the host root: prints what the lab last rendered.
    fn install_cilium_dbg(&self) -> Result<()> {
        let out = self.dir.join("cilium");
        let script = format!(
            "#!/bin/sh\n# The lab's stand-in for the agent's CLI.\n\
             case \"$1 $2 $3\" in\n\
             \"service list -o\") exec cat '{0}/service-list.json' ;;\n\
             \"bpf lb list\") exec cat '{0}/bpf-lb-list.json' ;;\n\
             *) echo \"cilium-dbg (lab): unsupported: $*\" >&2; exit 1 ;;\n\
             esac\n",
            out.display()
        );
        let path = self.host_root.join("usr/bin/cilium-dbg");
        fs::write(&path, script)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    /// Cilium's iptables chains, and the agent's listings of the current services.
    pub(super) fn load_cilium_datapath(&mut self) -> Result<()> {
        let rules = render_iptables(&self.net.pod_cidr(), self.net.gateway());
        fs::write(self.dir.join("cilium.rules"), &rules)?;
        cmd::run_stdin(
            &mut netns::exec(&self.node_ns, &["iptables-nft-restore", "-w", "5"]),
            Some(rules.as_bytes()),
        )
        .context("iptables-nft-restore of Cilium's chains (the input is in the lab dir)")?;
        let out = self.dir.join("cilium");
        fs::create_dir_all(&out)?;
        fs::write(
            out.join("service-list.json"),
            serde_json::to_vec_pretty(&service_list(&self.services))?,
        )?;
        fs::write(
            out.join("bpf-lb-list.json"),
            serde_json::to_vec_pretty(&bpf_lb_list(&self.services))?,
        )?;
        self.install_cilium_dbg()
    }
}

/// The chains a Cilium agent (iptables masquerading, tunnel mode) keeps, fed from the
/// built-in chains by `cilium-feeder` rules.
pub fn render_iptables(pod_cidr: &str, router: Ipv4Addr) -> String {
    let feed = |table: &str, chains: &[(&str, &str)]| {
        let mut t = format!("*{table}\n");
        for (_, c) in chains {
            let _ = writeln!(t, ":{c} - [0:0]");
        }
        for (from, c) in chains {
            let _ = writeln!(
                t,
                "-A {from} -m comment --comment \"cilium-feeder: {c}\" -j {c}"
            );
        }
        t
    };
    let mut out = feed(
        "filter",
        &[
            ("INPUT", "CILIUM_INPUT"),
            ("FORWARD", "CILIUM_FORWARD"),
            ("OUTPUT", "CILIUM_OUTPUT"),
        ],
    );
    for (dir, dev, what) in [
        (
            "-o",
            "cilium_host",
            "any->cluster on cilium_host forward accept",
        ),
        (
            "-i",
            "cilium_host",
            "cluster->any on cilium_host forward accept (nodeport)",
        ),
        ("-i", "lxc+", "cluster->any on lxc+ forward accept"),
        (
            "-i",
            "cilium_net",
            "cluster->any on cilium_net forward accept (nodeport)",
        ),
        ("-o", "lxc+", "any->cluster on lxc+ forward accept"),
        (
            "-i",
            "lxc+",
            "cluster->any on lxc+ forward accept (nodeport)",
        ),
    ] {
        let _ = writeln!(
            out,
            "-A CILIUM_FORWARD {dir} {dev} -m comment --comment \"cilium: {what}\" -j ACCEPT"
        );
    }
    out.push_str(
        "-A CILIUM_INPUT -m mark --mark 0x200/0xf00 -m comment --comment \"cilium: ACCEPT for proxy traffic\" -j ACCEPT\n\
         -A CILIUM_OUTPUT -m mark --mark 0xa00/0xfffffeff -m comment --comment \"cilium: ACCEPT for proxy return traffic\" -j ACCEPT\n\
         -A CILIUM_OUTPUT -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0xa00/0xe00 -m comment --comment \"cilium: host->any mark as from host\" -j MARK --set-xmark 0xc00/0xf00\n\
         COMMIT\n",
    );
    out.push_str(&feed(
        "nat",
        &[
            ("PREROUTING", "CILIUM_PRE_nat"),
            ("OUTPUT", "CILIUM_OUTPUT_nat"),
            ("POSTROUTING", "CILIUM_POST_nat"),
        ],
    ));
    let _ = write!(
        out,
        "-A CILIUM_POST_nat -s {pod_cidr} ! -d {CLUSTER_CIDR} ! -o cilium_+ -m comment --comment \"cilium masquerade non-cluster\" -j MASQUERADE\n\
         -A CILIUM_POST_nat -m mark --mark 0xa00/0xe00 -m comment --comment \"exclude proxy return traffic from masquerade\" -j ACCEPT\n\
         -A CILIUM_POST_nat -s 127.0.0.1/32 -o cilium_host -m comment --comment \"cilium host->cluster from 127.0.0.1 masquerade\" -j SNAT --to-source {router}\n\
         COMMIT\n"
    );
    out.push_str(&feed(
        "raw",
        &[
            ("PREROUTING", "CILIUM_PRE_raw"),
            ("OUTPUT", "CILIUM_OUTPUT_raw"),
        ],
    ));
    out.push_str(
        "-A CILIUM_PRE_raw -m mark --mark 0x200/0xf00 -m comment --comment \"cilium: NOTRACK for proxy traffic\" -j CT --notrack\n\
         -A CILIUM_OUTPUT_raw -o lxc+ -m mark --mark 0xa00/0xfffffeff -m comment --comment \"cilium: NOTRACK for proxy return traffic\" -j CT --notrack\n\
         COMMIT\n",
    );
    out.push_str(&feed(
        "mangle",
        &[
            ("PREROUTING", "CILIUM_PRE_mangle"),
            ("POSTROUTING", "CILIUM_POST_mangle"),
        ],
    ));
    out.push_str(
        "-A CILIUM_PRE_mangle -m socket --transparent -m comment --comment \"cilium: any->pod redirect proxied traffic to host proxy\" -j MARK --set-xmark 0x200/0xffffffff\n\
         COMMIT\n",
    );
    out
}

fn protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// `cilium-dbg service list -o json`: one ClusterIP frontend per service port, its
/// endpoints as active backends.
pub fn service_list(services: &[Service]) -> Value {
    let items: Vec<Value> = services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let backends: Vec<Value> = s
                .endpoints
                .iter()
                .map(|e| {
                    json!({
                        "ip": e.ip().to_string(), "port": e.port(),
                        "protocol": protocol(s.protocol), "state": "active", "weight": 1,
                    })
                })
                .collect();
            json!({
                "spec": {
                    "id": i + 1,
                    "frontend-address": {
                        "ip": s.cluster_ip.to_string(), "port": s.port,
                        "protocol": protocol(s.protocol), "scope": "external",
                    },
                    "backend-addresses": backends,
                    "flags": {
                        "type": "ClusterIP", "trafficPolicy": "Cluster",
                        "namespace": s.namespace, "name": s.name,
                    },
                },
                "status": { "realized": { "id": i + 1 } },
            })
        })
        .collect();
    Value::Array(items)
}

/// `cilium-dbg bpf lb list -o json`: frontend → its slots (slot 0 the service entry).
pub fn bpf_lb_list(services: &[Service]) -> Value {
    let mut map = serde_json::Map::new();
    for (i, s) in services.iter().enumerate() {
        let id = i + 1;
        let fe = format!("{}/{}", s.vip(), protocol(s.protocol));
        let mut slots = vec![Value::String(format!(
            "0.0.0.0:0/{} (0) ({id}) [ClusterIP, non-routable]",
            protocol(s.protocol)
        ))];
        for (j, e) in s.endpoints.iter().enumerate() {
            slots.push(Value::String(format!(
                "{e}/{} ({}) ({id})",
                protocol(s.protocol),
                j + 1
            )));
        }
        map.insert(fe, Value::Array(slots));
    }
    Value::Object(map)
}
