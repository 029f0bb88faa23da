//! `netsnap analyze A B C …` as one cluster, on fixture bundles written by
//! `netsnap_scale::fixture::Node`: a healthy three-node flannel-like cluster (pod
//! CIDRs 10.244.1/2/3.0/24, one service list programmed alike on every node, a route,
//! neighbour and FDB entry from each node to each other) has no cluster finding; each
//! cluster fault gives its CLU id on the right subject, naming the right node;
//! `--separate` and a single bundle give no cluster section; a JSON snapshot of a
//! cluster report; the command line.

use netsnap_analyzer::batch::{self, Options};
use netsnap_analyzer::check::{CheckId, Selection, Severity, Thresholds};
use netsnap_analyzer::cluster::{ClusterFinding, ClusterReport, NodeSummary};
use netsnap_scale::fixture::{route, Node, Pod, Svc};
use netsnap_schema::model::{FdbEntry, Neigh};
use netsnap_schema::ReadLimits;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOSTS: [&str; 3] = ["node-a", "node-b", "node-c"];

fn vtep_mac(k: u8) -> String {
    format!("0a:00:00:00:00:0{k}")
}

/// The services every node programs: web has an endpoint on node-a and node-b.
fn services() -> Vec<Svc> {
    let mut web = Svc::new(
        "default/web:http",
        "tcp",
        "10.96.12.34",
        80,
        &[("10.244.1.11", 8080), ("10.244.2.11", 8080)],
    );
    web.node_port = Some(30080);
    vec![
        Svc::new(
            "default/kubernetes:https",
            "tcp",
            "10.96.0.1",
            443,
            &[("10.0.0.11", 6443)],
        ),
        Svc::new(
            "kube-system/kube-dns:dns",
            "udp",
            "10.96.0.10",
            53,
            &[("10.244.1.10", 53)],
        ),
        Svc::new(
            "kube-system/kube-dns:dns-tcp",
            "tcp",
            "10.96.0.10",
            53,
            &[("10.244.1.10", 53)],
        ),
        web,
        Svc::new(
            "default/api:http",
            "tcp",
            "10.96.56.78",
            8080,
            &[("10.244.2.13", 8080)],
        ),
    ]
}

/// Node `k` (1–3) of the healthy cluster.
fn node(k: u8) -> Node {
    let mut n = Node::new(HOSTS[usize::from(k) - 1]);
    n.node_ip = format!("10.0.0.1{k}");
    n.pod_subnet = k;
    n.vtep_mac = vtep_mac(k);
    n.pods = match k {
        1 => {
            let mut dns = Pod::new("kube-system", "coredns-5d78c9869d-abcde", "10.244.1.10");
            dns.tcp = vec![53, 8181];
            dns.udp = vec![53];
            vec![
                dns,
                Pod::new("default", "web-7f9c6b5d4-x2k8p", "10.244.1.11"),
            ]
        }
        2 => vec![
            Pod::new("default", "web-7f9c6b5d4-q7r2m", "10.244.2.11"),
            Pod::new("default", "api-6d8f7c9b8-m4n5p", "10.244.2.13"),
        ],
        _ => vec![Pod::new("default", "client-0", "10.244.3.20")],
    };
    n.services = services();
    for o in (1..=3u8).filter(|&o| o != k) {
        let gw = format!("10.244.{o}.0");
        n.extra_root_routes.push(route(
            &format!("10.244.{o}.0/24"),
            Some(&gw),
            4,
            "boot",
            "universe",
        ));
        n.neigh.push(Neigh {
            ifindex: 4,
            family: "inet".into(),
            dst: gw,
            lladdr: Some(vtep_mac(o)),
            state: "PERMANENT".into(),
        });
        n.fdb.push(FdbEntry {
            ifindex: 4,
            mac: vtep_mac(o),
            master: None,
            vlan: None,
            dst: Some(format!("10.0.0.1{o}")),
            state: "permanent".into(),
        });
    }
    n.neigh.push(Neigh {
        ifindex: 2,
        family: "inet".into(),
        dst: "10.0.0.1".into(),
        lladdr: Some("52:54:00:00:00:01".into()),
        state: "REACHABLE".into(),
    });
    n
}

fn healthy() -> Vec<Node> {
    (1..=3).map(node).collect()
}

/// Writes the nodes as bundles under `dir`, named by hostname.
fn write(dir: &Path, nodes: &[Node]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("create fixture directory");
    nodes
        .iter()
        .map(|n| {
            let p = dir.join(&n.hostname);
            n.write(&p).expect("write fixture bundle");
            p
        })
        .collect()
}

/// The bundles through the library as `netsnap analyze` runs them: `jobs` at a time,
/// with the summaries the cluster checks need.
fn analyze_all(paths: &[PathBuf], jobs: usize) -> Result<Vec<batch::Node>, batch::BatchError> {
    batch::analyze_all(
        paths,
        &Options {
            limits: &ReadLimits::default(),
            thresholds: &Thresholds::default(),
            selection: &Selection::default(),
            jobs,
            summarise: true,
            leak_single: false,
            progress: &|_| {},
        },
    )
}

/// The cluster report of the nodes, through the library as `netsnap analyze` runs it
/// (bounded parallel analyses, summaries), origins named by hostname.
fn cluster_of(nodes: &[Node], jobs: usize) -> ClusterReport {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = write(tmp.path(), nodes);
    let analysed = analyze_all(&paths, jobs).expect("bundles analyse");
    let summaries: Vec<NodeSummary> = analysed.into_iter().filter_map(|n| n.summary).collect();
    ClusterReport::new(HOSTS.iter().copied(), &summaries, &Selection::default())
}

fn find<'r>(r: &'r ClusterReport, id: CheckId, subject: &str) -> &'r ClusterFinding {
    r.findings
        .iter()
        .find(|f| f.finding.id == id && f.finding.subject == subject)
        .unwrap_or_else(|| panic!("no {id} on {subject:?} in {:#?}", r.findings))
}

fn netsnap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .args(args)
        .output()
        .expect("run netsnap")
}

#[test]
fn healthy_cluster_has_no_cluster_finding() {
    let r = cluster_of(&healthy(), 2);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.nodes.len(), 3);
    assert_eq!(r.nodes[1].name, "node-b");
    assert_eq!(r.nodes[1].origin, "node-b");
}

#[test]
fn summaries_hold_what_the_cluster_checks_need() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = write(tmp.path(), &healthy()[..1]);
    let bundle = netsnap_schema::Bundle::open(&paths[0], &ReadLimits::default()).expect("opens");
    let a =
        netsnap_analyzer::report::analyze(&bundle, &Thresholds::default(), &Selection::default());
    let s = NodeSummary::of(&a);
    assert_eq!(s.hostname, "node-a");
    let cidrs: Vec<String> = s.pod_cidrs.iter().map(|c| c.value.to_string()).collect();
    assert_eq!(cidrs, ["10.244.1.0/24"]);
    assert_eq!(s.pods.len(), 2);
    assert_eq!(s.services.len(), 5, "{:?}", s.services.keys());
    let web = &s.services["10.96.12.34:80/tcp"];
    assert_eq!(web.display, "default/web:http");
    assert_eq!(web.endpoints.len(), 2);
    assert!(web.endpoints.iter().all(|(_, l)| l.is_some()));
    let vx = &s.overlays[0];
    assert_eq!((vx.name.as_str(), vx.mtu), ("flannel.1", 1450));
    assert_eq!(vx.local, Some("10.0.0.11".parse().unwrap()));
    assert_eq!((vx.fdb.len(), vx.neigh.len()), (2, 2));
    assert!(s
        .routes
        .iter()
        .any(|r| r.dst.to_string() == "10.244.2.0/24" && r.overlay == Some(0)));
    assert_eq!(s.sysctls.len(), 4, "{:?}", s.sysctls.keys());
    assert!(s.service_proxy.is_some());
}

/// Nodes that program a service alike hold one copy of it (a hundred nodes of a
/// thousand services each are held at once); a node that programs it differently
/// keeps its own.
#[test]
fn services_programmed_alike_are_held_once() {
    let mut nodes = healthy();
    nodes[2].services[3].endpoints[1] = ("10.244.2.99".into(), 8080);
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = write(tmp.path(), &nodes);
    for jobs in [1, 2] {
        let s: Vec<NodeSummary> = analyze_all(&paths, jobs)
            .expect("bundles analyse")
            .into_iter()
            .filter_map(|n| n.summary)
            .collect();
        let web = |n: usize| &s[n].services["10.96.12.34:80/tcp"];
        assert!(std::sync::Arc::ptr_eq(web(0), web(1)), "jobs {jobs}");
        assert!(!std::sync::Arc::ptr_eq(web(0), web(2)), "jobs {jobs}");
        assert!(web(2).addrs().any(|e| e.to_string() == "10.244.2.99:8080"));
        let (a, b) = (&s[0].services, &s[1].services);
        assert!(a
            .keys()
            .zip(b.keys())
            .all(|(x, y)| std::sync::Arc::ptr_eq(x, y)));
    }
}

#[test]
fn overlapping_pod_cidrs() {
    let mut nodes = healthy();
    nodes[2].pod_subnet = 2;
    nodes[2].pods = vec![Pod::new("default", "client-0", "10.244.2.20")];
    let r = cluster_of(&nodes, 2);
    let f = find(&r, CheckId::Clu001, "pod CIDR 10.244.2.0/24");
    assert_eq!(f.nodes, ["node-b", "node-c"]);
    assert_eq!(f.finding.severity, Severity::Critical);
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path == "node-b:netns/root/addrs.json" && e.line.is_some()));
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path == "node-c:netns/root/addrs.json"));
}

#[test]
fn stale_kube_proxy_is_named() {
    let mut nodes = healthy();
    // node-c's kube-proxy missed the move of web's second pod: it still sends to the
    // old address (no pod anywhere has it) and lacks the new one.
    nodes[2].services[3].endpoints[1] = ("10.244.2.99".into(), 8080);
    let r = cluster_of(&nodes, 2);
    let f = find(&r, CheckId::Clu002, "service default/web:http");
    assert_eq!(f.nodes[0], "node-c");
    assert_eq!(f.finding.severity, Severity::Critical);
    let m = &f.finding.message;
    assert!(
        m.contains("10.244.2.99:8080") && m.contains("lacks 10.244.2.11:8080"),
        "{m}"
    );
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path == "node-c:netfilter/iptables-nft-save.txt" && e.line.is_some()));
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path.starts_with("node-a:")));
    // The old address is also an endpoint no pod owns, in node-b's pod CIDR.
    let stale = find(
        &r,
        CheckId::Clu003,
        "service default/web:http endpoint 10.244.2.99:8080",
    );
    assert_eq!(stale.nodes, ["node-c", "node-b"]);
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
}

#[test]
fn service_missing_on_one_node() {
    let mut nodes = healthy();
    nodes[1].services.remove(4); // default/api
    let r = cluster_of(&nodes, 2);
    let f = find(&r, CheckId::Clu002, "service default/api:http");
    assert_eq!(f.nodes[0], "node-b");
    assert!(
        f.finding.message.contains("node-b does not program"),
        "{}",
        f.finding.message
    );
    // Two nodes that disagree: no majority, both named.
    let r = cluster_of(&nodes[..2], 1);
    let f = r
        .findings
        .iter()
        .find(|f| f.finding.id == CheckId::Clu002)
        .expect("CLU002");
    assert!(
        f.finding.message.contains("no majority"),
        "{}",
        f.finding.message
    );
    assert_eq!(f.nodes, ["node-a", "node-b"]);
}

#[test]
fn endpoint_of_a_gone_pod_on_another_node() {
    let mut nodes = healthy();
    nodes[1].pods.remove(0); // web's pod on node-b, 10.244.2.11
    let r = cluster_of(&nodes, 2);
    let f = find(
        &r,
        CheckId::Clu003,
        "service default/web:http endpoint 10.244.2.11:8080",
    );
    // Programmed by node-a and node-c; node-b owns the CIDR (its SVC002 says the rest).
    assert_eq!(f.nodes, ["node-a", "node-c", "node-b"]);
    assert!(
        f.finding
            .message
            .contains("node-b's pod CIDR 10.244.2.0/24"),
        "{}",
        f.finding.message
    );
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path.starts_with("node-b:netns/root/addrs.json")));
    assert!(!r.findings.iter().any(|f| f.finding.id == CheckId::Clu002));
}

#[test]
fn same_pod_ip_on_two_nodes() {
    let mut nodes = healthy();
    nodes[2]
        .pods
        .push(Pod::new("default", "web-copy", "10.244.1.11"));
    let r = cluster_of(&nodes, 2);
    let f = find(&r, CheckId::Clu004, "pod IP 10.244.1.11");
    assert_eq!(f.nodes, ["node-a", "node-c"]);
    assert!(
        f.finding.message.contains("default/web-copy on node-c"),
        "{}",
        f.finding.message
    );
}

#[test]
fn missing_fdb_route_and_mtu_disagreement() {
    let mut nodes = healthy();
    nodes[0]
        .fdb
        .retain(|e| e.dst.as_deref() != Some("10.0.0.12"));
    nodes[2]
        .extra_root_routes
        .retain(|r| r.dst != "10.244.1.0/24");
    nodes[1].overlay_mtu = 1400;
    let r = cluster_of(&nodes, 2);
    let fdb = find(
        &r,
        CheckId::Clu005,
        "path node-a → node-b pod CIDR 10.244.2.0/24",
    );
    assert_eq!(fdb.nodes, ["node-a", "node-b"]);
    assert!(
        fdb.finding.message.contains("no FDB entry"),
        "{}",
        fdb.finding.message
    );
    let route = find(
        &r,
        CheckId::Clu005,
        "path node-c → node-a pod CIDR 10.244.1.0/24",
    );
    assert!(
        route.finding.message.contains("no route"),
        "{}",
        route.finding.message
    );
    assert!(route
        .finding
        .evidence
        .iter()
        .any(|e| e.path == "node-c:netns/root/routes.json"));
    let mtu = find(&r, CheckId::Clu005, "link flannel.1 MTU (vxlan overlay)");
    assert_eq!(mtu.nodes[0], "node-b");
    assert_eq!(mtu.finding.severity, Severity::Warning);
}

#[test]
fn settings_drift() {
    let mut nodes = healthy();
    nodes[1]
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "0".into());
    let r = cluster_of(&nodes, 2);
    let f = find(&r, CheckId::Clu006, "sysctl net.ipv4.ip_forward");
    assert_eq!(f.nodes, ["node-b"]);
    assert!(f.finding.message.contains("node-b has \"0\"") && f.finding.message.contains("\"1\""));
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path.starts_with("node-b:")));
    assert!(f
        .finding
        .evidence
        .iter()
        .any(|e| e.path.starts_with("node-a:")));
}

#[test]
fn cluster_json_snapshot_and_jobs_do_not_change_it() {
    let mut nodes = healthy();
    nodes[2].services[3].endpoints[1] = ("10.244.2.99".into(), 8080);
    nodes[1]
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "0".into());
    let one = cluster_of(&nodes, 1);
    let two = cluster_of(&nodes, 2);
    let json = serde_json::to_string_pretty(&two).expect("serialise");
    assert_eq!(serde_json::to_string_pretty(&one).expect("serialise"), json);
    insta::assert_snapshot!("cluster_json", json);
}

#[test]
fn command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let healthy_paths = write(&tmp.path().join("ok"), &healthy());
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_string();
    let ok: Vec<String> = healthy_paths.iter().map(s).collect();
    let mut args = vec!["analyze", "--only", "CLU"];
    args.extend(ok.iter().map(String::as_str));
    let out = netsnap(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("netsnap cluster of 3 nodes") && text.contains("No cluster findings."),
        "{text}"
    );

    let mut nodes = healthy();
    nodes[1]
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "0".into());
    let bad: Vec<String> = write(&tmp.path().join("bad"), &nodes)
        .iter()
        .map(s)
        .collect();
    let mut args = vec!["analyze", "--only", "CLU", "--format", "json"];
    args.extend(bad.iter().map(String::as_str));
    let out = netsnap(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--fail-on counts cluster findings"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["cluster"]["findings"][0]["id"], "CLU006");
    assert_eq!(v["cluster"]["findings"][0]["nodes"][0], "node-b");
    assert_eq!(v["cluster"]["nodes"][2]["origin"], bad[2].as_str());
    assert_eq!(v["bundles"].as_array().map(Vec::len), Some(3));

    // --separate: per-node only; one bundle: no cluster; --skip CLU006: nothing left.
    let mut sep = args.clone();
    sep.push("--separate");
    let out = netsnap(&sep);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.get("cluster").is_none() && v["bundles"].as_array().map(Vec::len) == Some(3));
    assert_eq!(out.status.code(), Some(0));
    let out = netsnap(&["analyze", "--only", "CLU", "--format", "json", &bad[1]]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.get("cluster").is_none());
    let mut skip = args.clone();
    skip.extend(["--skip", "CLU006"]);
    assert_eq!(netsnap(&skip).status.code(), Some(0));
    // Markdown has the cluster section too.
    let mut md = vec!["analyze", "--only", "CLU", "--format", "markdown"];
    md.extend(bad.iter().map(String::as_str));
    let text = String::from_utf8_lossy(&netsnap(&md).stdout).to_string();
    assert!(
        text.contains("# netsnap cluster report: 3 nodes")
            && text.contains("| warning | CLU006 | sysctl net.ipv4.ip_forward | node-b |"),
        "{text}"
    );
    // An unreadable bundle among several is an input error naming it.
    let mut missing = vec!["analyze".to_string()];
    missing.extend(ok.iter().cloned());
    missing.push(tmp.path().join("nope").display().to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .args(&missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope: cannot read bundle"));
}

#[test]
fn the_first_unreadable_bundle_in_path_order_is_the_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut paths = write(tmp.path(), &healthy());
    let (first_bad, second_bad) = (tmp.path().join("gone-1"), tmp.path().join("gone-2"));
    paths.insert(1, first_bad.clone());
    paths.push(second_bad);
    // One analysis at a time (the next bundle read ahead) and two at once.
    for jobs in [1, 2] {
        let err = analyze_all(&paths, jobs).expect_err("an unreadable bundle is an error");
        assert_eq!(err.path, first_bad, "--jobs {jobs}");
    }
}
