//! What the node runs, as the report header says it: named from the CNI config the
//! runtime uses, else from the node's links; the overlay device; what programs the
//! services; the pods' IP families. On fixture nodes built by `netsnap_scale::fixture`
//! and on the committed fixtures.

use netsnap_analyzer::model::datapath::Datapath;
use netsnap_analyzer::{model, sources};
use netsnap_scale::fixture::{Mode, Node};
use netsnap_schema::model::Link;
use netsnap_schema::{Bundle, ReadLimits};
use std::path::Path;

/// `node` written as a bundle (in the returned directory, kept while the bundle is read).
fn written(node: &Node) -> (tempfile::TempDir, Bundle) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("bundle");
    node.write(&dir).expect("fixture node writes");
    let b = Bundle::open(&dir, &ReadLimits::default()).expect("bundle opens");
    (tmp, b)
}

fn datapath_of(node: &Node) -> Datapath {
    let (_tmp, b) = written(node);
    model::build(&mut sources::parse_all(&b)).datapath
}

fn datapath_at(dir: &Path) -> Datapath {
    let b = Bundle::open(dir, &ReadLimits::default()).expect("bundle opens");
    model::build(&mut sources::parse_all(&b)).datapath
}

fn names(d: &Datapath) -> (String, Vec<String>, Vec<String>, Vec<&'static str>) {
    let n = |l: &[netsnap_analyzer::model::datapath::Named]| {
        l.iter().map(|n| n.name.clone()).collect::<Vec<_>>()
    };
    (
        d.cni.as_ref().map_or("unknown".into(), |c| c.name.clone()),
        n(&d.overlays),
        n(&d.service_proxy),
        d.families.clone(),
    )
}

#[test]
fn a_bridge_node_without_cni_config_is_named_from_its_links() {
    let d = datapath_of(&Node::healthy("node-1"));
    let (cni, _, proxy, families) = names(&d);
    assert_eq!(cni, "bridge (cni0)");
    assert_eq!(d.cni.as_ref().unwrap().from, "a bridge holding pod veths");
    assert!(
        !d.cni.as_ref().unwrap().evidence.is_empty(),
        "cites the bridge"
    );
    assert_eq!(proxy, ["kube-proxy iptables (nft backend)"]);
    assert_eq!(families, ["IPv4"]);
}

#[test]
fn the_cni_config_the_runtime_uses_names_the_plugin() {
    let mut node = Node::healthy("node-1");
    node.files.insert(
        "host/cni/10-flannel.conflist".into(),
        include_str!("data/cni-flannel.conflist").into(),
    );
    node.files.insert(
        "host/cni/99-kindnet.conflist".into(),
        include_str!("data/cni-kindnet.conflist").into(),
    );
    let d = datapath_of(&node);
    let cni = d.cni.as_ref().expect("named");
    // flannel's plugin delegates to the bridge plugin, whose bridge is cni0 by default.
    assert_eq!(cni.name, "flannel (cni0)");
    assert!(cni.from.contains("10-flannel.conflist"), "{}", cni.from);
    assert_eq!(cni.evidence[0].path, "host/cni/10-flannel.conflist");
}

/// flannel names the bridge its delegate sets, or the delegate's own plugin type.
#[test]
fn flannel_is_named_with_what_it_delegates_to() {
    let with = |delegate: &str| {
        let mut node = Node::healthy("node-1");
        let list = include_str!("data/cni-flannel.conflist").replace(
            "\"hairpinMode\": true,",
            &format!("\"hairpinMode\": true, {delegate}"),
        );
        assert_ne!(list, include_str!("data/cni-flannel.conflist"));
        node.files
            .insert("host/cni/10-flannel.conflist".into(), list);
        names(&datapath_of(&node)).0
    };
    assert_eq!(with("\"bridge\": \"kbr0\","), "flannel (kbr0)");
    assert_eq!(with("\"type\": \"bridge\","), "flannel (cni0)");
    assert_eq!(with("\"type\": \"ipvlan\","), "flannel (ipvlan)");
}

/// IPVS mode keeps KUBE-SERVICES in iptables: the kube-ipvs0 device holding the VIPs
/// names it even when `/proc/net/ip_vs` could not be read (the committed IPVS fixture
/// names it by its virtual servers).
#[test]
fn ipvs_mode_is_named_by_kube_ipvs0() {
    let mut node = Node::healthy("node-1");
    node.mode = Mode::Ipvs;
    let (_, _, proxy, _) = names(&datapath_of(&node));
    assert_eq!(
        proxy,
        ["kube-proxy iptables (nft backend)"],
        "no IPVS fact yet"
    );
    node.extra_root_links.push(Link {
        kind: Some("dummy".into()),
        ..Link::new(90, "kube-ipvs0", 1500)
    });
    let (_, _, proxy, _) = names(&datapath_of(&node));
    assert_eq!(proxy, ["kube-proxy ipvs"]);
}

#[test]
fn committed_fixtures_name_their_datapath() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let demo = names(&datapath_at(&root.join("demo")));
    // The demo programs its services from both iptables backends (its NF001 finding).
    assert_eq!(
        demo.2,
        [
            "kube-proxy iptables (legacy backend)",
            "kube-proxy iptables (nft backend)"
        ]
    );
    let ipvs = names(&datapath_at(&root.join("analyzer/ipvs")));
    assert_eq!(ipvs.2, ["kube-proxy ipvs"]);
    assert_eq!(ipvs.1, ["vxlan flannel.1 (flannel)"]);
    let summary = datapath_at(&root.join("analyzer/healthy")).summary();
    assert!(summary.starts_with("CNI bridge (cni0), overlay vxlan flannel.1 (flannel), services by kube-proxy iptables (nft backend), IPv4"), "{summary}");
}

/// Without a CNI config the links name the CNI: Calico's `cali*` veths, Cilium's
/// `cilium_host`, pod veths on no bridge (a ptp CNI).
#[test]
fn links_name_the_cni_when_no_config_does() {
    let veth = |ifindex: u32, name: &str| Link {
        kind: Some("veth".into()),
        ..Link::new(ifindex, name, 1500)
    };
    let mut calico = Node::healthy("node-1");
    calico.extra_root_links.push(veth(90, "cali0123456789a"));
    assert_eq!(names(&datapath_of(&calico)).0, "calico");
    let mut cilium = Node::healthy("node-1");
    cilium.extra_root_links.push(veth(90, "cilium_host"));
    cilium.extra_root_links.push(veth(91, "lxc0123456789a"));
    let d = datapath_of(&cilium);
    assert_eq!(names(&d).0, "cilium");
    assert_eq!(
        d.cni.unwrap().evidence.len(),
        2,
        "cilium_host and the lxc veth"
    );
    let mut ptp = Node::healthy("node-1");
    for p in &mut ptp.pods {
        p.enslaved = false;
    }
    assert_eq!(names(&datapath_of(&ptp)).0, "ptp (routed veths)");
}

/// A Cilium node without kube-proxy: Cilium's own chains in iptables, no KUBE chains,
/// `cilium_host`/`cilium_net` and `lxc*` veths. None of the kube-proxy checks may fire
/// from the absence of kube-proxy's rules.
#[test]
fn a_cilium_node_without_kube_proxy_has_no_kube_proxy_findings() {
    let mut node = Node::healthy("node-cilium");
    node.services.clear();
    node.files.insert(
        netsnap_schema::layout::IPTABLES_NFT_SAVE.into(),
        CILIUM_SAVE.into(),
    );
    let veth = |ifindex: u32, name: &str| Link {
        kind: Some("veth".into()),
        ..Link::new(ifindex, name, 1500)
    };
    node.extra_root_links.push(veth(90, "cilium_host"));
    node.extra_root_links.push(veth(91, "cilium_net"));
    let (_tmp, b) = written(&node);
    let a = netsnap_analyzer::report::analyze_sources(
        sources::parse_all(&b),
        &Default::default(),
        &Default::default(),
    );
    let d = &a.model.datapath;
    assert_eq!(
        d.service_proxy
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["kube-proxy replacement (cilium)"]
    );
    let findings: Vec<String> = a
        .findings
        .iter()
        .map(|f| format!("{} {:?} {}: {}", f.id, f.severity, f.subject, f.message))
        .collect();
    let alarms: Vec<&String> = findings.iter().filter(|f| !f.contains(" Info ")).collect();
    assert!(
        alarms.is_empty(),
        "false alarms on a Cilium node:\n{alarms:#?}"
    );
}

const CILIUM_SAVE: &str = "# Generated by iptables-nft-save v1.8.9 (nf_tables) on Sat Nov 21 17:44:41 2026
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CILIUM_OUTPUT_raw - [0:0]
:CILIUM_PRE_raw - [0:0]
-A PREROUTING -m comment --comment \"cilium-feeder: CILIUM_PRE_raw\" -j CILIUM_PRE_raw
-A OUTPUT -m comment --comment \"cilium-feeder: CILIUM_OUTPUT_raw\" -j CILIUM_OUTPUT_raw
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CILIUM_FORWARD - [0:0]
:CILIUM_INPUT - [0:0]
:CILIUM_OUTPUT - [0:0]
-A INPUT -m comment --comment \"cilium-feeder: CILIUM_INPUT\" -j CILIUM_INPUT
-A FORWARD -m comment --comment \"cilium-feeder: CILIUM_FORWARD\" -j CILIUM_FORWARD
-A OUTPUT -m comment --comment \"cilium-feeder: CILIUM_OUTPUT\" -j CILIUM_OUTPUT
-A CILIUM_FORWARD -o cilium_host -m comment --comment \"cilium: any->cluster on cilium_host forward accept\" -j ACCEPT
-A CILIUM_FORWARD -i cilium_host -m comment --comment \"cilium: cluster->any on cilium_host forward accept (nodeport)\" -j ACCEPT
-A CILIUM_FORWARD -i lxc+ -m comment --comment \"cilium: cluster->any on lxc+ forward accept\" -j ACCEPT
-A CILIUM_FORWARD -i cilium_net -m comment --comment \"cilium: cluster->any on cilium_net forward accept (nodeport)\" -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CILIUM_OUTPUT_nat - [0:0]
:CILIUM_POST_nat - [0:0]
:CILIUM_PRE_nat - [0:0]
-A PREROUTING -m comment --comment \"cilium-feeder: CILIUM_PRE_nat\" -j CILIUM_PRE_nat
-A OUTPUT -m comment --comment \"cilium-feeder: CILIUM_OUTPUT_nat\" -j CILIUM_OUTPUT_nat
-A POSTROUTING -m comment --comment \"cilium-feeder: CILIUM_POST_nat\" -j CILIUM_POST_nat
-A CILIUM_POST_nat -s 10.244.1.0/24 ! -d 10.244.0.0/16 ! -o cilium_+ -m comment --comment \"cilium masquerade non-cluster\" -j MASQUERADE
COMMIT
";

/// With the agent's service listing captured, a Cilium node's services are checked
/// like kube-proxy's (no endpoints, stale endpoint) and a trace to one says plainly
/// that Cilium's BPF load balancer is not simulated.
#[test]
fn a_cilium_service_listing_gives_services_checks_and_an_honest_trace() {
    use netsnap_analyzer::trace::path::Verdict;
    use netsnap_analyzer::trace::request::Ask;
    let mut node = Node::healthy("node-cilium");
    node.services.clear();
    node.files.insert(
        netsnap_schema::layout::IPTABLES_NFT_SAVE.into(),
        CILIUM_SAVE.into(),
    );
    node.files.insert(
        netsnap_schema::layout::CILIUM_SERVICES.into(),
        CILIUM_LISTING.into(),
    );
    node.extra_root_links.push(Link {
        kind: Some("veth".into()),
        ..Link::new(90, "cilium_host", 1500)
    });
    let (_tmp, b) = written(&node);
    let a = netsnap_analyzer::report::analyze_sources(
        sources::parse_all(&b),
        &Default::default(),
        &Default::default(),
    );
    let proxy = &a.model.datapath.service_proxy;
    assert_eq!(proxy.len(), 1);
    assert_eq!(proxy[0].name, "kube-proxy replacement (cilium)");
    assert_eq!(proxy[0].from, "its agent's service listing");
    let coverage = a
        .sources
        .coverage
        .iter()
        .find(|c| c.path == netsnap_schema::layout::CILIUM_SERVICES)
        .expect("the listing is parsed");
    assert_eq!((coverage.recognised, coverage.unrecognised.len()), (3, 0));
    let found: Vec<(&str, &str)> = a
        .findings
        .iter()
        .filter(|f| f.severity != netsnap_analyzer::check::Severity::Info)
        .map(|f| (f.id.as_str(), f.subject.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("SVC002", "service default/web:80"),
            ("SVC001", "service default/empty:80")
        ],
        "{:#?}",
        a.findings
    );
    let p = netsnap_analyzer::trace::Prepared::new(&b);
    let ask = Ask {
        from: "default/client-0".into(),
        to: "10.96.0.20:80".into(),
        ..Ask::default()
    };
    let t = &p.trace(&ask).expect("request resolves")[0];
    assert_eq!(t.verdicts.len(), 1);
    assert_eq!(t.verdicts[0].verdict, Verdict::Unknown);
    assert!(
        t.verdicts[0].reason.contains("Cilium's BPF load balancer"),
        "{}",
        t.verdicts[0].reason
    );
}

const CILIUM_LISTING: &str = r#"[
  {"spec": {"id": 1, "frontend-address": {"ip": "10.96.0.10", "port": 53, "protocol": "UDP"},
            "backend-addresses": [{"ip": "10.244.1.10", "port": 53, "state": "active"}],
            "flags": {"type": "ClusterIP", "name": "kube-dns", "namespace": "kube-system"}}},
  {"spec": {"id": 2, "frontend-address": {"ip": "10.96.0.20", "port": 80, "protocol": "TCP"},
            "backend-addresses": [{"ip": "10.244.1.11", "port": 8080, "state": "active"},
                                  {"ip": "10.244.1.99", "port": 8080, "state": "active"}],
            "flags": {"type": "ClusterIP", "name": "web", "namespace": "default"}}},
  {"spec": {"id": 3, "frontend-address": {"ip": "10.96.0.30", "port": 80, "protocol": "TCP"},
            "backend-addresses": [],
            "flags": {"type": "ClusterIP", "name": "empty", "namespace": "default"}}}
]
"#;
