//! The catalog of check ids (design.md): stable ids, their titles, a default remedy
//! and references. An id is never reused; a check may be added.

/// One catalog entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub id: &'static str,
    pub title: &'static str,
    pub remedy: &'static str,
    pub refs: &'static [&'static str],
}

const K8S_SVC: &str = "https://kubernetes.io/docs/concepts/services-networking/service/";
const K8S_DEBUG_SVC: &str =
    "https://kubernetes.io/docs/tasks/debug/debug-application/debug-service/";
const K8S_DNS: &str =
    "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/";
const K8S_NET_PLUGINS: &str =
    "https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/";
const KERNEL_IP_SYSCTL: &str = "https://docs.kernel.org/networking/ip-sysctl.html";
const KERNEL_CT_SYSCTL: &str = "https://docs.kernel.org/networking/nf_conntrack-sysctl.html";
const K8S_IPVS: &str = "https://kubernetes.io/docs/reference/networking/virtual-ips/";

/// Every id, in catalog order.
pub const CATALOG: &[Entry] = &[
    Entry {
        id: "SVC001",
        title: "service has no endpoints",
        remedy: "Check that the service selector matches ready pods (`kubectl get endpointslices -l kubernetes.io/service-name=NAME`); connections to it are rejected until one is ready.",
        refs: &[K8S_DEBUG_SVC],
    },
    Entry {
        id: "SVC002",
        title: "stale endpoint: endpoint IP in this node's pod CIDR is owned by no pod",
        remedy: "The endpoint's pod is gone but kube-proxy still sends traffic to it: check kube-proxy's logs and sync (`kubectl -n kube-system logs ds/kube-proxy`), and the EndpointSlice of the service.",
        refs: &[K8S_DEBUG_SVC],
    },
    Entry {
        id: "SVC003",
        title: "endpoint pod has nothing listening on the target port",
        remedy: "Check the service's targetPort against the port the container really listens on, and the container's readiness probe.",
        refs: &[K8S_DEBUG_SVC],
    },
    Entry {
        id: "SVC004",
        title: "externalTrafficPolicy Local with no local endpoints",
        remedy: "Traffic for this service that reaches this node from outside is dropped by design; make sure the load balancer health check (healthCheckNodePort) steers traffic away, or use externalTrafficPolicy Cluster.",
        refs: &["https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/#preserving-the-client-source-ip"],
    },
    Entry {
        id: "SVC005",
        title: "partial service rules",
        remedy: "kube-proxy's rules are inconsistent: restart kube-proxy on this node so that it resyncs the whole ruleset, and check its logs for iptables-restore errors.",
        refs: &[K8S_IPVS],
    },
    Entry {
        id: "SVC006",
        title: "IPVS state inconsistent",
        remedy: "Restart kube-proxy (IPVS mode) on this node so it resyncs virtual servers, ipsets and kube-ipvs0 addresses; check its logs.",
        refs: &[K8S_IPVS],
    },
    Entry {
        id: "LNK001",
        title: "dangling host veth",
        remedy: "The pod side of this veth is gone: the CNI did not clean up (check the CNI plugin and kubelet logs); delete the leftover link with `ip link del NAME`.",
        refs: &[K8S_NET_PLUGINS],
    },
    Entry {
        id: "LNK002",
        title: "pod netns has no link to the host",
        remedy: "The pod's eth0 has no veth peer on the node: the CNI ADD failed or the host end was deleted; recreate the pod and check CNI plugin logs.",
        refs: &[K8S_NET_PLUGINS],
    },
    Entry {
        id: "LNK003",
        title: "pod veth not enslaved to the pod bridge",
        remedy: "Attach the host veth to the bridge (`ip link set VETH master BRIDGE`) or recreate the pod; check the bridge CNI plugin.",
        refs: &["https://www.cni.dev/plugins/current/main/bridge/"],
    },
    Entry {
        id: "LNK004",
        title: "pod link down",
        remedy: "Bring the link up (`ip link set NAME up`) and find out what took it down (CNI, NetworkManager, udev).",
        refs: &[K8S_NET_PLUGINS],
    },
    Entry {
        id: "LNK005",
        title: "hairpin off on bridge port",
        remedy: "A pod cannot reach itself through its own service: enable hairpin mode on the port (`ip link set VETH type bridge_slave hairpin on`) or make the bridge promiscuous (kubelet --hairpin-mode=promiscuous-bridge); the bridge CNI's hairpinMode option sets it.",
        refs: &["https://kubernetes.io/docs/tasks/debug/debug-application/debug-service/#a-pod-fails-to-reach-itself-via-the-service-ip"],
    },
    Entry {
        id: "LNK006",
        title: "MTU mismatch",
        remedy: "Set the pod MTU (CNI config `mtu`) to the uplink MTU minus the overlay overhead (50 bytes for VXLAN), and at most the host veth's MTU.",
        refs: &["https://docs.tigera.io/calico/latest/networking/configuring/mtu"],
    },
    Entry {
        id: "LNK007",
        title: "duplicate IP address",
        remedy: "Two namespaces hold the same address: IPAM handed it out twice or a stale pod kept it; delete the stale pod and check the IPAM store (e.g. /var/lib/cni/networks).",
        refs: &[K8S_NET_PLUGINS],
    },
    Entry {
        id: "LNK008",
        title: "pod netns without a usable default route",
        remedy: "The pod cannot reach anything off its subnet: the CNI did not install the default route, or its gateway is not reachable on-link; recreate the pod and check the CNI plugin.",
        refs: &[K8S_NET_PLUGINS],
    },
    Entry {
        id: "NF001",
        title: "kube rules in both iptables-legacy and iptables-nft",
        remedy: "Two iptables backends are in use: the node's iptables and kube-proxy/CNI disagree. Flush the KUBE-* chains of the unused backend and make every component use the same one.",
        refs: &["https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/"],
    },
    Entry {
        id: "NF002",
        title: "bridge-nf-call-iptables disabled while pods use a Linux bridge",
        remedy: "Load br_netfilter and set `net.bridge.bridge-nf-call-iptables=1` (persist it in /etc/sysctl.d): without it pod-to-service traffic between pods on the same bridge skips kube-proxy's DNAT reply path.",
        refs: &[K8S_NET_PLUGINS],
    },
    Entry {
        id: "NF003",
        title: "IP forwarding disabled",
        remedy: "Set `net.ipv4.ip_forward=1` (and forwarding on the pod-facing links) and persist it in /etc/sysctl.d; pods cannot reach anything beyond the node without it.",
        refs: &[KERNEL_IP_SYSCTL],
    },
    Entry {
        id: "NF004",
        title: "FORWARD policy DROP without an accept for pod traffic",
        remedy: "Add the CNI's forward accept rules or KUBE-FORWARD, or set the FORWARD policy to ACCEPT (Docker sets it to DROP).",
        refs: &["https://docs.docker.com/engine/network/packet-filtering-firewalls/"],
    },
    Entry {
        id: "NF005",
        title: "masquerade path missing",
        remedy: "kube-proxy's masquerade rules are incomplete: restart kube-proxy so it re-creates KUBE-POSTROUTING and KUBE-MARK-MASQ.",
        refs: &[K8S_IPVS],
    },
    Entry {
        id: "NF006",
        title: "strict rp_filter on pod-facing interfaces",
        remedy: "Use loose reverse-path filtering (`net.ipv4.conf.all.rp_filter=2`) or disable it on pod-facing links; strict mode drops asymmetric pod traffic.",
        refs: &[KERNEL_IP_SYSCTL],
    },
    Entry {
        id: "CT001",
        title: "conntrack table nearly full",
        remedy: "Raise `net.netfilter.nf_conntrack_max` (and nf_conntrack_buckets), or find who opens so many connections (`netsnap show BUNDLE conntrack`).",
        refs: &[KERNEL_CT_SYSCTL],
    },
    Entry {
        id: "CT002",
        title: "conntrack dropped packets",
        remedy: "The table was full: raise `net.netfilter.nf_conntrack_max` and look for connection leaks.",
        refs: &[KERNEL_CT_SYSCTL],
    },
    Entry {
        id: "CT003",
        title: "conntrack insert failures or clashes",
        remedy: "insert_failed/clash_resolve are the DNS 5-second race (parallel A/AAAA over UDP): use `options single-request-reopen` or NodeLocal DNSCache; chaintoolong means too few buckets: raise nf_conntrack_buckets.",
        refs: &["https://www.weave.works/blog/racy-conntrack-and-dns-lookup-timeouts", KERNEL_CT_SYSCTL],
    },
    Entry {
        id: "CT004",
        title: "kernel logged conntrack table full",
        remedy: "Raise `net.netfilter.nf_conntrack_max` and look for connection leaks; packets were dropped when this was logged.",
        refs: &[KERNEL_CT_SYSCTL],
    },
    Entry {
        id: "CT005",
        title: "conntrack entries DNAT to a removed endpoint",
        remedy: "Delete the stale entries (`conntrack -D -p udp --orig-dst VIP --reply-src OLD_IP`); kube-proxy normally clears UDP entries when an endpoint goes away.",
        refs: &["https://github.com/kubernetes/kubernetes/issues/59368"],
    },
    Entry {
        id: "CT006",
        title: "SNAT source-port exhaustion risk",
        remedy: "Too many concurrent flows share one (masquerade source, destination): widen net.ipv4.ip_local_port_range, use more destination IPs or reuse connections.",
        refs: &["https://github.com/kubernetes/kubernetes/issues/76699"],
    },
    Entry {
        id: "CT007",
        title: "service traffic skewed across endpoints",
        remedy: "Long-lived connections or session affinity pin traffic to few endpoints; consider client-side balancing or connection recycling.",
        refs: &[K8S_SVC],
    },
    Entry {
        id: "DNS001",
        title: "pod nameserver is not the cluster DNS",
        remedy: "Check the pod's dnsPolicy/dnsConfig and kubelet's --cluster-dns; pods normally resolve through the kube-dns service IP.",
        refs: &[K8S_DNS],
    },
    Entry {
        id: "DNS002",
        title: "DNS search list too long or duplicated",
        remedy: "Shorten the search list (node resolv.conf search domains are appended to every pod's); old glibc and musl use only 6 domains / 256 characters.",
        refs: &["https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#dns-search-domain-list-limits"],
    },
    Entry {
        id: "DNS003",
        title: "cluster DNS service has no endpoints",
        remedy: "Every pod's DNS is down: check the CoreDNS pods (`kubectl -n kube-system get pods -l k8s-app=kube-dns`).",
        refs: &[K8S_DNS],
    },
    Entry {
        id: "DNS004",
        title: "local DNS stub handed to pods (forwarding loop)",
        remedy: "Point kubelet's resolvConf at the real upstream file (/run/systemd/resolve/resolv.conf) instead of the 127.0.0.53 stub.",
        refs: &["https://coredns.io/plugins/loop/#troubleshooting-loops-in-kubernetes-clusters"],
    },
    Entry {
        id: "DNS005",
        title: "more than 3 nameservers",
        remedy: "The resolver uses only the first 3 nameservers; remove the rest.",
        refs: &[K8S_DNS],
    },
    Entry {
        id: "NB001",
        title: "neighbour table near gc_thresh3",
        remedy: "Raise net.ipv4.neigh.default.gc_thresh1/2/3 (and ipv6); past gc_thresh3 the kernel logs `neighbour table overflow` and drops.",
        refs: &[KERNEL_IP_SYSCTL],
    },
    Entry {
        id: "BND001",
        title: "source failed, unavailable or truncated",
        remedy: "The analysis is incomplete where this source is needed: see the error, fix it and collect again (`netsnap inspect BUNDLE` lists every source).",
        refs: &["docs/bundle-format.md"],
    },
    Entry {
        id: "PRS001",
        title: "lines the parser did not recognise",
        remedy: "These lines were not analysed; please report them (with the bundle) so the parser learns them.",
        refs: &["docs/analyzer-json.md"],
    },
];

/// The catalog entry of an id.
pub fn entry(id: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|e| e.id == id)
}

/// True when `id` is a catalog id or a family prefix (`SVC`, `LNK` …) of some id.
pub fn is_known_selector(id: &str) -> bool {
    CATALOG
        .iter()
        .any(|e| e.id.eq_ignore_ascii_case(id) || e.id.starts_with(&id.to_ascii_uppercase()))
}
