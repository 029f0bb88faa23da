//! Pods wired by the CNI reference plugins (Debian `containernetworking-plugins`,
//! `/usr/lib/cni`), run the way a container runtime runs them: one process per
//! plugin, `CNI_COMMAND`/`CNI_CONTAINERID`/`CNI_NETNS`/`CNI_IFNAME`/`CNI_PATH`/
//! `CNI_ARGS` in the environment, the plugin's network configuration on stdin, the
//! plugins of a conflist chained (each ADD gets the previous plugin's result as
//! `prevResult`; DEL runs them in reverse with the cached ADD result), and the
//! `loopback` plugin on `lo` first, as containerd does.
//!
//! Every plugin runs under `ip netns exec <lab node netns>`: the "host" a plugin
//! configures (bridge, host veth, routes, iptables, sysctls) is the lab's node netns,
//! never the root one. host-local keeps its leases in the lab's own directory.
//!
//! | mode | conflist `10-lab-<mode>.conflist` |
//! |---|---|
//! | [`CniMode::Bridge`] | `bridge` (cni0, isDefaultGateway, ipMasq, hairpinMode, MTU 1500, host-local) → `portmap` → `firewall` |
//! | [`CniMode::Ptp`] | `ptp` (ipMasq, MTU 1500, host-local, default route) → `portmap` (the kindnet shape) |
//! | [`CniMode::Flannel`] | written: flannel's `10-flannel.conflist` (`flannel` → `portmap`); run: what the `flannel` plugin delegates, `bridge` (cni0, hairpinMode, isDefaultGateway, isGateway, ipMasq off, MTU 1450, host-local with the node's subnet and a route to the cluster CIDR) → `portmap` (see [`super::flannel`]) |

use super::cmd;
use super::netns;
use super::TARGET_PORT_BASE;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `containernetworking-plugins` installs the plugins.
pub const PLUGIN_DIR: &str = "/usr/lib/cni";
/// The spec version the lab's configurations declare (plugins 1.1 speak it).
pub const CNI_VERSION: &str = "1.0.0";
/// The hostPort mapping the lab gives pod 0: host port → the target port of service 0.
pub const HOST_PORT: u16 = 18080;
/// The gateway every Calico pod routes through: no interface holds it, the host
/// veth answers ARP for it.
pub const CALICO_GATEWAY: &str = "169.254.1.1";

/// How long one plugin may run.
const PLUGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How the lab wires its pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CniMode {
    /// The lab's own `ip` commands: bridge, veths, addresses, routes (the default).
    #[default]
    HandBuilt,
    /// The reference `bridge` plugin (+ `portmap`, `firewall`, `loopback`).
    Bridge,
    /// The reference `ptp` plugin (+ `portmap`, `loopback`): no bridge, /32 routes.
    Ptp,
    /// Calico's shape, built by the lab (no Calico here): `cali` + 11 hex host veths
    /// with proxy ARP, a /32 route per pod on the node, pods with a /32 address and
    /// the 169.254.1.1 gateway reached on-link; a `calico` conflist in the host root.
    CalicoRouted,
    /// Cilium's node shape without kube-proxy, built by the lab (no Cilium here):
    /// `cilium_host`/`cilium_net`/`cilium_vxlan`, `lxc` + 12 hex veths, `CILIUM_*`
    /// chains and the agent's service listing instead of kube-proxy's rules; see
    /// [`super::cilium`].
    CiliumShape,
    /// Flannel's node shape: the `flannel` plugin is not packaged here, so the lab runs
    /// the `bridge` plugin with the configuration flannel's plugin would delegate, and
    /// writes flannel's own conflist and `/run/flannel/subnet.env` as evidence. The
    /// overlay (`flannel.1`) is made by [`super::flannel`].
    Flannel,
}

impl CniMode {
    /// Plugin binaries the mode runs.
    pub fn plugins(self) -> &'static [&'static str] {
        match self {
            CniMode::HandBuilt => &[],
            CniMode::Bridge => &["loopback", "bridge", "host-local", "portmap", "firewall"],
            CniMode::Ptp => &["loopback", "ptp", "host-local", "portmap"],
            CniMode::CalicoRouted | CniMode::CiliumShape => &[],
            CniMode::Flannel => &["loopback", "bridge", "host-local", "portmap"],
        }
    }

    /// `bridge` / `ptp` (network name `lab-<this>`).
    pub fn lower(self) -> &'static str {
        match self {
            CniMode::HandBuilt => "hand-built",
            CniMode::Bridge => "bridge",
            CniMode::Ptp => "ptp",
            CniMode::CalicoRouted => "calico",
            CniMode::CiliumShape => "cilium",
            CniMode::Flannel => "flannel",
        }
    }

    /// Whether the CNI reference plugins wire the pods (CNI ADD/DEL).
    pub fn runs_plugins(self) -> bool {
        matches!(self, CniMode::Bridge | CniMode::Ptp | CniMode::Flannel)
    }

    /// Network name in the conflist (flannel's manifest calls it `cbr0`).
    pub fn network_name(self) -> String {
        match self {
            CniMode::Flannel => "cbr0".into(),
            _ => format!("lab-{}", self.lower()),
        }
    }

    /// File name in `/etc/cni/net.d`.
    pub fn conflist_file(self) -> String {
        match self {
            CniMode::Flannel => "10-flannel.conflist".into(),
            _ => format!("10-{}.conflist", self.network_name()),
        }
    }
}

/// Why pods cannot be built with `mode` here, if they cannot.
pub fn unavailable_reason(mode: CniMode) -> Option<String> {
    let missing: Vec<&str> = mode
        .plugins()
        .iter()
        .copied()
        .filter(|p| !Path::new(PLUGIN_DIR).join(p).is_file())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "missing CNI plugins in {PLUGIN_DIR}: {} (Debian: containernetworking-plugins)",
            missing.join(", ")
        )
    })
}

/// The network configuration list of `mode`.
pub fn conflist(
    mode: CniMode,
    bridge: &str,
    subnet: &str,
    gateway: Ipv4Addr,
    data_dir: &Path,
) -> Value {
    let ipam = json!({
        "type": "host-local",
        "ranges": [[{ "subnet": subnet, "gateway": gateway.to_string() }]],
        "dataDir": data_dir.to_string_lossy(),
    });
    let portmap =
        json!({ "type": "portmap", "capabilities": { "portMappings": true }, "snat": true });
    let plugins = match mode {
        CniMode::HandBuilt => Vec::new(),
        CniMode::CiliumShape => super::cilium::conflist_plugins(),
        // What Calico's installer writes (the lab wires the pods itself).
        CniMode::CalicoRouted => vec![
            json!({
                "type": "calico",
                "datastore_type": "kubernetes",
                "mtu": 0,
                "ipam": { "type": "calico-ipam" },
                "policy": { "type": "k8s" },
            }),
            portmap,
        ],
        CniMode::Bridge => vec![
            json!({
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "isDefaultGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "mtu": 1500,
                "ipam": ipam,
            }),
            portmap,
            json!({ "type": "firewall" }),
        ],
        CniMode::Flannel => {
            return super::flannel::delegated_conflist(ipam);
        }
        CniMode::Ptp => {
            let mut ipam = ipam;
            ipam["routes"] = json!([{ "dst": "0.0.0.0/0" }]);
            vec![
                json!({ "type": "ptp", "ipMasq": true, "mtu": 1500, "ipam": ipam }),
                portmap,
            ]
        }
    };
    json!({
        "cniVersion": CNI_VERSION,
        "name": mode.network_name(),
        "plugins": plugins,
    })
}

/// The runtime's side of one pod sandbox.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pub container_id: String,
    pub netns_path: PathBuf,
    pub pod_namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    /// `runtimeConfig.portMappings` (hostPort, containerPort), TCP.
    pub port_mappings: Vec<(u16, u16)>,
}

/// What ADD gave a pod, as the lab needs it.
#[derive(Clone, Debug)]
pub struct Attached {
    pub ip: Ipv4Addr,
    /// The IPv6 address, when the IPAM gave one (dual-stack ranges).
    pub ip6: Option<Ipv6Addr>,
    pub host_veth: String,
    /// The final result of the chain (the runtime's cache; `prevResult` of DEL).
    pub result: Value,
}

fn loopback_conf() -> Value {
    json!({ "cniVersion": CNI_VERSION, "name": "cni-loopback", "type": "loopback" })
}

/// Runs one plugin in the node netns.
fn invoke(node_ns: &str, command: &str, ifname: &str, sb: &Sandbox, conf: &Value) -> Result<Value> {
    let ty = conf["type"].as_str().context("plugin without type")?;
    let bin = Path::new(PLUGIN_DIR).join(ty);
    let mut c: Command = netns::exec(node_ns, &[&bin.to_string_lossy()]);
    c.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &sb.container_id)
        .env("CNI_NETNS", &sb.netns_path)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", PLUGIN_DIR)
        .env(
            "CNI_ARGS",
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
                sb.pod_namespace, sb.pod_name, sb.container_id, sb.pod_uid
            ),
        );
    let input = serde_json::to_vec(conf)?;
    let out = cmd::output_with(&mut c, Some(&input), PLUGIN_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "CNI {command} of plugin {ty} for {}/{} failed ({}): {} {}",
            sb.pod_namespace,
            sb.pod_name,
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("CNI {command} of plugin {ty}: result is not JSON"))
}

/// The configuration a plugin of `list` gets: its own object plus the list's name
/// and version, `prevResult` after the first ADD, and `runtimeConfig` for the
/// capabilities it declares.
fn plugin_conf(list: &Value, plugin: &Value, prev: Option<&Value>, sb: &Sandbox) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    if let Some(p) = prev.filter(|p| !p.is_null()) {
        conf["prevResult"] = p.clone();
    }
    if plugin["capabilities"]["portMappings"] == json!(true) && !sb.port_mappings.is_empty() {
        let maps: Vec<Value> = sb
            .port_mappings
            .iter()
            .map(|(h, c)| json!({ "hostPort": h, "containerPort": c, "protocol": "tcp" }))
            .collect();
        conf["runtimeConfig"] = json!({ "portMappings": maps });
    }
    conf
}

/// CNI ADD: loopback on `lo`, then the conflist's plugins chained on `eth0`.
pub fn add(node_ns: &str, list: &Value, sb: &Sandbox) -> Result<Attached> {
    invoke(node_ns, "ADD", "lo", sb, &loopback_conf())?;
    let plugins = list["plugins"]
        .as_array()
        .context("conflist without plugins")?;
    let mut prev: Option<Value> = None;
    for p in plugins {
        let conf = plugin_conf(list, p, prev.as_ref(), sb);
        prev = Some(invoke(node_ns, "ADD", "eth0", sb, &conf)?);
    }
    let result = prev.context("no plugin ran")?;
    attached(result)
}

/// CNI DEL: the conflist's plugins in reverse (each with the cached ADD result),
/// then loopback. Every plugin runs; the first error is returned.
pub fn del(node_ns: &str, list: &Value, sb: &Sandbox, cached: &Value) -> Result<()> {
    let mut first: Option<anyhow::Error> = None;
    let plugins = list["plugins"]
        .as_array()
        .context("conflist without plugins")?;
    for p in plugins.iter().rev() {
        let conf = plugin_conf(list, p, Some(cached), sb);
        if let Err(e) = invoke(node_ns, "DEL", "eth0", sb, &conf) {
            first.get_or_insert(e);
        }
    }
    if let Err(e) = invoke(node_ns, "DEL", "lo", sb, &loopback_conf()) {
        first.get_or_insert(e);
    }
    first.map_or(Ok(()), Err)
}

/// The pod address and host veth a chain's result names.
fn attached(result: Value) -> Result<Attached> {
    let ifaces = result["interfaces"].as_array().cloned().unwrap_or_default();
    let pod_if = ifaces
        .iter()
        .position(|i| i["sandbox"].as_str().is_some_and(|s| !s.is_empty()))
        .context("CNI result names no pod interface")?;
    // The host veth: the interface outside the sandbox with the pod interface's
    // MAC as peer is not in the result; it is the host-side interface that is not
    // a bridge, i.e. named `veth…`.
    let host_veth = ifaces
        .iter()
        .filter(|i| i["sandbox"].as_str().is_none_or(str::is_empty))
        .filter_map(|i| i["name"].as_str())
        .find(|n| n.starts_with("veth"))
        .context("CNI result names no host veth")?
        .to_string();
    let addresses = || {
        result["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["interface"].as_u64().is_none_or(|i| i as usize == pod_if))
            .filter_map(|a| a["address"].as_str()?.split('/').next())
    };
    let ip = addresses()
        .find_map(|a| a.parse::<Ipv4Addr>().ok())
        .context("CNI result has no IPv4 address")?;
    let ip6 = addresses().find_map(|a| a.parse::<Ipv6Addr>().ok());
    Ok(Attached {
        ip,
        ip6,
        host_veth,
        result,
    })
}

/// Chains of the node's network agents besides kube-proxy: the CNI plugins' and
/// flanneld's.
const AGENT_CHAINS: &[&str] = &["CNI-", "FLANNEL-"];

/// iptables tables → the CNI plugins' and flanneld's chains (`:CNI-… - [0:0]`,
/// `:FLANNEL-…`) and rules (in those chains, or jumping to one) of an `iptables-save`.
fn cni_rules(saved: &str) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut tables: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut table = String::new();
    for line in saved.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
        } else if AGENT_CHAINS
            .iter()
            .any(|c| line.starts_with(&format!(":{c}")))
        {
            tables
                .entry(table.clone())
                .or_default()
                .0
                .push(line.to_string());
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let jumps = AGENT_CHAINS.iter().any(|c| {
                [" -j ", " -g ", " --jump ", " --goto "]
                    .iter()
                    .any(|j| rule.contains(&format!("{j}{c}")))
            });
            if AGENT_CHAINS.iter().any(|c| rule.starts_with(c)) || jumps {
                tables
                    .entry(table.clone())
                    .or_default()
                    .1
                    .push(line.to_string());
            }
        }
    }
    tables
}

/// `rules` (a full `iptables-restore` input that replaces its tables) with the CNI
/// plugins' chains and rules of `saved` kept: what a runtime's plugins added must
/// survive a reload of kube-proxy's rules, as on a real node (kube-proxy only
/// rewrites its own chains).
pub fn keep_cni_rules(rules: &str, saved: &str) -> String {
    let keep = cni_rules(saved);
    let mut out = String::with_capacity(rules.len());
    let mut table = String::new();
    for line in rules.lines() {
        if line == "COMMIT" {
            if let Some((_, r)) = keep.get(&table) {
                for l in r {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out.push_str(line);
        out.push('\n');
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            if let Some((decls, _)) = keep.get(&table) {
                for l in decls {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Checks a mode can be used with the other options.
pub fn validate(mode: CniMode, total_pods: usize) -> Result<()> {
    if mode == CniMode::HandBuilt {
        return Ok(());
    }
    ensure!(
        total_pods <= 250,
        "CNI modes use one /24 pod subnet: at most 250 pods"
    );
    if let Some(r) = unavailable_reason(mode) {
        bail!("{r}");
    }
    Ok(())
}

impl super::Lab {
    /// The lab's network configuration list (CNI modes).
    pub(super) fn cni_list(&self) -> Value {
        let mut list = conflist(
            self.cfg.cni,
            &self.cfg.bridge,
            &self.net.pod_cidr(),
            self.net.gateway(),
            &self.dir.join("cni/ipam"),
        );
        if self.cfg.dual_stack {
            super::dual_stack::add_ipv6_range(&mut list);
        }
        list
    }

    /// Calico's shape (no Calico binary here): the node's block as a blackhole route,
    /// per pod a `cali…` veth with proxy ARP and a /32 route on the node; in the pod a
    /// /32 address and the 169.254.1.1
    /// gateway on-link (answered by the host veth's proxy ARP). The conflist Calico's
    /// installer writes goes into the host root, as evidence.
    pub(super) fn calico_attach_pods(&mut self) -> Result<()> {
        self.write_conflist(&self.cni_list())?;
        // Calico holds the node's IPAM block with a blackhole route: an address of the
        // block no pod has goes nowhere.
        let node_first = format!("route add blackhole {}\n", self.net.pod_cidr());
        self.attach_routed_pods(node_first, CALICO_GATEWAY, "")?;
        for p in &self.pods {
            let v = &p.host_veth;
            netns::sysctl_set(&self.node_ns, &format!("net/ipv4/conf/{v}/proxy_arp"), "1")?;
        }
        Ok(())
    }

    /// `list` as the runtime's CNI configuration: `<host root>/etc/cni/net.d/<the
    /// mode's conflist file>`.
    pub(super) fn write_conflist(&self, list: &Value) -> Result<()> {
        let dir = self.host_root.join("etc/cni/net.d");
        fs::create_dir_all(&dir)?;
        fs::write(
            dir.join(self.cfg.cni.conflist_file()),
            serde_json::to_vec_pretty(list)?,
        )?;
        Ok(())
    }

    /// Routed pods, as Calico and Cilium wire them: per pod a host veth and a /32
    /// route to the pod on the node (after `node_first` in the node's batch); in the
    /// pod a /32 address, `gateway` on-link and the default route through it, with
    /// `default_opts` (e.g. ` mtu 1450`).
    pub(super) fn attach_routed_pods(
        &self,
        node_first: String,
        gateway: &str,
        default_opts: &str,
    ) -> Result<()> {
        let mut node_batch = node_first;
        for p in &self.pods {
            netns::add(&p.netns_name)?;
            let v = &p.host_veth;
            let _ = writeln!(
                node_batch,
                "link add {v} type veth peer name eth0 netns {}\nlink set {v} up\n\
                 route add {}/32 dev {v} scope link",
                p.netns_name, p.ip
            );
        }
        Self::ip_batch(&self.node_ns, &node_batch)?;
        for p in &self.pods {
            Self::ip_batch(
                &p.netns_name,
                &format!(
                    "link set lo up\naddr add {}/32 dev eth0\nlink set eth0 up\n\
                     route add {gateway} dev eth0 scope link\n\
                     route add default via {gateway} dev eth0{default_opts}\n",
                    p.ip
                ),
            )?;
        }
        Ok(())
    }

    /// Writes the conflist into the host root and runs CNI ADD for every pod, in
    /// order (host-local hands out addresses from the gateway's up). Pod 0 gets a
    /// hostPort ([`HOST_PORT`] → the target port of service 0).
    pub(super) fn cni_attach_pods(&mut self) -> Result<()> {
        let mode = self.cfg.cni;
        fs::create_dir_all(self.dir.join("cni/ipam"))?;
        let list = self.cni_list();
        // What kubelet sees: the list the lab runs, or (flannel) flannel's own list,
        // whose delegate the lab runs in its place.
        let written = match mode {
            CniMode::Flannel => self.write_flannel_evidence()?,
            _ => list.clone(),
        };
        self.write_conflist(&written)?;
        for i in 0..self.pods.len() {
            netns::add(&self.pods[i].netns_name)?;
            if self.cfg.dual_stack {
                super::dual_stack::no_dad(&self.pods[i].netns_name)?;
            }
            let p = &self.pods[i];
            let sb = Sandbox {
                container_id: p.container_id.clone(),
                netns_path: p.netns_path.clone(),
                pod_namespace: p.namespace.clone(),
                pod_name: p.name.clone(),
                pod_uid: p.uid.clone(),
                port_mappings: if i == 0 {
                    vec![(HOST_PORT, TARGET_PORT_BASE)]
                } else {
                    Vec::new()
                },
            };
            let a = add(&self.node_ns, &list, &sb)
                .with_context(|| format!("CNI ADD ({}) of pod {}", mode.lower(), p.name))?;
            self.pods[i].ip = a.ip;
            self.pods[i].ip6 = a.ip6;
            self.pods[i].host_veth = a.host_veth.clone();
            self.rt[i].cni = Some((sb, a));
        }
        Ok(())
    }

    /// CNI DEL of pod `i` if it is attached (a no-op otherwise, and in hand-built
    /// labs).
    pub(super) fn cni_detach(&mut self, i: usize) -> Result<()> {
        let Some((sb, a)) = self.rt.get_mut(i).and_then(|rt| rt.cni.take()) else {
            return Ok(());
        };
        del(&self.node_ns, &self.cni_list(), &sb, &a.result)
            .with_context(|| format!("CNI DEL of pod {}", sb.pod_name))
    }

    /// The CNI ADD result of pod `i` (CNI modes, while attached).
    pub fn cni_result(&self, i: usize) -> Option<&Value> {
        self.rt.get(i)?.cni.as_ref().map(|(_, a)| &a.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_rules_survive_a_kube_proxy_reload() {
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n:KUBE-SERVICES - [0:0]\n\
            -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n\
            -A PREROUTING -j KUBE-SERVICES\n-A CNI-HOSTPORT-DNAT -p tcp -j ACCEPT\nCOMMIT\n\
            *filter\n:CNI-FORWARD - [0:0]\n-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD\nCOMMIT\n";
        let rules = "*filter\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n*mangle\nCOMMIT\n";
        let merged = keep_cni_rules(rules, saved);
        assert_eq!(
            merged,
            "*filter\n:CNI-FORWARD - [0:0]\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\n\
             -A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD\nCOMMIT\n\
             *nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n\
             -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n\
             -A CNI-HOSTPORT-DNAT -p tcp -j ACCEPT\nCOMMIT\n*mangle\nCOMMIT\n"
        );
    }

    #[test]
    fn result_gives_pod_ip_and_host_veth() {
        let r = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa"},
                {"name": "veth1234abcd", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/run/netns/x"}
            ],
            "ips": [{"interface": 2, "address": "10.244.1.5/24", "gateway": "10.244.1.1"}]
        });
        let a = attached(r).unwrap();
        assert_eq!(a.ip, Ipv4Addr::new(10, 244, 1, 5));
        assert_eq!(a.host_veth, "veth1234abcd");
    }

    #[test]
    fn chained_conf_carries_prev_result_and_port_mappings() {
        let list = conflist(
            CniMode::Ptp,
            "cni0",
            "10.244.1.0/24",
            Ipv4Addr::new(10, 244, 1, 1),
            Path::new("/tmp/x"),
        );
        let sb = Sandbox {
            container_id: "c".into(),
            netns_path: "/run/netns/p".into(),
            pod_namespace: "default".into(),
            pod_name: "web-0".into(),
            pod_uid: "u".into(),
            port_mappings: vec![(HOST_PORT, 20000)],
        };
        let prev = json!({"cniVersion": "1.0.0"});
        let c = plugin_conf(&list, &list["plugins"][1], Some(&prev), &sb);
        assert_eq!(c["name"], "lab-ptp");
        assert_eq!(c["prevResult"], prev);
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["hostPort"], HOST_PORT);
        let first = plugin_conf(&list, &list["plugins"][0], None, &sb);
        assert!(first.get("prevResult").is_none() && first.get("runtimeConfig").is_none());
    }
}
