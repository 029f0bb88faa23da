//! Faults the testkit can inject into its healthy node, one knob each: the unit tests
//! break the node with them, and the coverage test runs them all to learn which check
//! ids the testkit really produces.

use super::testkit::{ev, ip, Kit};
use crate::model::services::RuleDefect;

/// A named way of breaking the testkit's healthy node.
pub struct Fault {
    pub name: &'static str,
    pub apply: fn(&mut Kit),
}

/// Every fault knob.
pub const FAULTS: &[Fault] = &[
    Fault {
        name: "pod netns gone, host veth left",
        apply: dangling_veth,
    },
    Fault {
        name: "host veth of a pod deleted",
        apply: pod_without_host_veth,
    },
    Fault {
        name: "pod veth detached from cni0",
        apply: detached_veth,
    },
    Fault {
        name: "pod veth down",
        apply: veth_down,
    },
    Fault {
        name: "hairpin off on a pod port",
        apply: hairpin_off,
    },
    Fault {
        name: "pod MTU above its host veth's",
        apply: pod_mtu_too_large,
    },
    Fault {
        name: "two pods with one IP",
        apply: duplicate_pod_ip,
    },
    Fault {
        name: "pod without default route",
        apply: no_default_route,
    },
    Fault {
        name: "endpoint IP owned by no pod",
        apply: stale_endpoint,
    },
    Fault {
        name: "endpoint pod not listening",
        apply: nothing_listening,
    },
    Fault {
        name: "externalTrafficPolicy Local without local endpoint",
        apply: no_local_endpoint,
    },
    Fault {
        name: "service chain jumps to a missing chain",
        apply: partial_rules,
    },
    Fault {
        name: "cluster DNS without endpoints",
        apply: cluster_dns_down,
    },
    Fault {
        name: "pod with four nameservers",
        apply: too_many_nameservers,
    },
    Fault {
        name: "a plain host: no pods, no kube-proxy rules, no CNI config",
        apply: plain_host,
    },
    Fault {
        name: "a second CNI configuration before the one installed",
        apply: two_cni_configs,
    },
    Fault {
        name: "CNI configuration MTU differs from the pods'",
        apply: cni_mtu_differs,
    },
    Fault {
        name: "CNI nat rules left behind by a deleted pod",
        apply: leaked_cni_rules,
    },
];

pub fn dangling_veth(k: &mut Kit) {
    k.describe_pod("web-2", |p| p.gone = true);
}

pub fn pod_without_host_veth(k: &mut Kit) {
    let veth = k.host_veth("web-2");
    k.root().links.items.retain(|l| l.name != veth);
}

pub fn detached_veth(k: &mut Kit) {
    k.describe_pod("web-1", |p| p.enslaved = false);
}

pub fn veth_down(k: &mut Kit) {
    k.describe_pod("web-1", |p| p.host_up = false);
}

pub fn hairpin_off(k: &mut Kit) {
    k.describe_pod("web-1", |p| p.hairpin = false);
}

pub fn pod_mtu_too_large(k: &mut Kit) {
    k.describe_pod("web-1", |p| p.mtu = 9000);
}

pub fn duplicate_pod_ip(k: &mut Kit) {
    let client = k.pod_index("client");
    k.describe(|n| n.duplicate_ip = Some((client, "10.244.1.11".into())));
}

pub fn no_default_route(k: &mut Kit) {
    k.describe_pod("web-1", |p| p.default_route = false);
}

pub fn stale_endpoint(k: &mut Kit) {
    k.service_mut("default/web:http").endpoints[1].ip = ip("10.244.1.99");
}

pub fn nothing_listening(k: &mut Kit) {
    k.pod_ns("web-2").sockets.items.clear();
}

pub fn no_local_endpoint(k: &mut Kit) {
    let s = k.service_mut("default/web:http");
    s.external_local = true;
    s.no_local_endpoints
        .push(ev("netfilter/iptables-nft-save.txt"));
}

pub fn partial_rules(k: &mut Kit) {
    k.service_mut("default/web:http").defects.push(RuleDefect {
        what: "KUBE-SVC-X jumps to KUBE-SEP-Y, which does not exist".into(),
        evidence: ev("netfilter/iptables-nft-save.txt"),
    });
}

pub fn cluster_dns_down(k: &mut Kit) {
    k.service_mut("kube-system/kube-dns:dns").endpoints.clear();
}

pub fn too_many_nameservers(k: &mut Kit) {
    k.pod_ns("web-1").resolv = Some(super::testkit::resolv(
        "r",
        &["10.96.0.10", "1.1.1.1", "8.8.8.8", "9.9.9.9"],
        &[
            "default.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
        ],
    ));
}

/// Nothing of Kubernetes left: the pods' netns, the services and every KUBE-* rule
/// gone (the testkit's node has no CNI configuration).
pub fn plain_host(k: &mut Kit) {
    let m = k.model();
    m.netns.retain(|_, n| n.is_root);
    m.services.clear();
    for r in &mut m.netfilter.rulesets {
        r.kube_rules = 0;
    }
}

/// A leftover configuration that sorts first and wins.
pub fn two_cni_configs(k: &mut Kit) {
    let old = r#"{"cniVersion": "0.3.1", "name": "old", "type": "ptp", "ipam": {"type": "host-local", "subnet": "10.88.0.0/16"}}"#;
    super::testkit::set_cni(
        k,
        &[
            ("10-flannel.conflist", super::testkit::CNI_BRIDGE),
            ("05-old.conf", old),
        ],
    );
}

/// The configuration says 1500, the pods were made with 1450.
pub fn cni_mtu_differs(k: &mut Kit) {
    let text = super::testkit::CNI_BRIDGE.replace("\"mtu\": 1450", "\"mtu\": 1500");
    super::testkit::set_cni(k, &[("10-flannel.conflist", &text)]);
}

/// The nat rules the bridge plugin (ipMasq) and portmap write for a pod at `ip`, in
/// chains `CNI-<tag>` and `CNI-DN-<tag>` (as a real node holds them, hash-named).
pub fn cni_pod_nat(k: &mut Kit, ip: &str, tag: &str) {
    let (masq, dn) = (format!("CNI-{tag}"), format!("CNI-DN-{tag}"));
    let id = format!("name: \\\"cbr0\\\" id: \\\"{tag}\\\"");
    let lines = [
        format!("-A POSTROUTING -s {ip}/32 -m comment --comment \"{id}\" -j {masq}"),
        format!("-A {masq} -d 10.244.1.0/24 -m comment --comment \"{id}\" -j ACCEPT"),
        format!("-A {masq} ! -d 224.0.0.0/4 -m comment --comment \"{id}\" -j MASQUERADE"),
        format!("-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat {id}\" -m multiport --dports 8443 -j {dn}"),
        format!("-A {dn} -p tcp -m tcp --dport 8443 -j DNAT --to-destination {ip}:8443"),
    ];
    let chains = [masq, dn, "CNI-HOSTPORT-DNAT".to_string()];
    k.describe(|n| {
        n.extra_nat.extend(lines);
        n.extra_nat_chains.extend(chains);
    });
}

/// A pod deleted without CNI DEL: its masquerade chain and hostPort DNAT stay.
pub fn leaked_cni_rules(k: &mut Kit) {
    cni_pod_nat(k, "10.244.1.77", "1a2b3c4d5e6f7a8b9c0d1e2f");
}
