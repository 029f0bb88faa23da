//! The trace engine on fixture bundles, for what the lab's kernel cannot show (it has
//! no IPVS, no IPIP tunnel, no second iptables backend): each case builds a node with
//! `netsnap_scale::fixture::Node`, writes it to a temporary directory, opens it and
//! traces one request. Also `netsnap trace` itself on the committed fixtures.

use netsnap_analyzer::trace::path::{Branch, Hop, Verdict};
use netsnap_analyzer::trace::request::{Ask, Trace};
use netsnap_analyzer::trace::Prepared;
use netsnap_scale::fixture::{self, Node};
use netsnap_schema::layout;
use netsnap_schema::model::{Addr, Link};
use netsnap_schema::{Bundle, ReadLimits};
use std::path::Path;
use std::process::Command;

fn prepare(node: &Node) -> Prepared {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("bundle");
    node.write(&dir).expect("fixture node writes");
    let bundle = Bundle::open(&dir, &ReadLimits::default()).expect("bundle opens");
    Prepared::new(&bundle)
}

/// The one trace of `from` → `to` (a single request).
fn trace(p: &Prepared, from: &str, to: &str) -> Trace {
    let ask = Ask {
        from: from.into(),
        to: to.into(),
        ..Ask::default()
    };
    let mut traces = p.trace(&ask).expect("request resolves");
    assert_eq!(traces.len(), 1, "one request");
    traces.remove(0)
}

fn total(t: &Trace) -> f64 {
    t.verdicts.iter().map(|b| b.probability).sum()
}

fn hops_at<'a>(b: &'a Branch, at: &str) -> Vec<&'a Hop> {
    b.hops.iter().filter(|h| h.at == at).collect()
}

/// Every hop of every branch, as text, for error messages.
fn dump(t: &Trace) -> String {
    netsnap_analyzer::render::trace::render_text(std::slice::from_ref(t))
}

/// The 1-based line of `ipvs/ip_vs.txt` (as the fixture writes it) that starts with
/// `prefix` after its indentation.
fn ipvs_line(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .expect("line in ip_vs.txt")
        + 1
}

// ---------------------------------------------------------------------------- IPVS

/// `/proc/net/ip_vs` of the IPVS cases: web (10.96.12.34:80) with two real servers of
/// weight `w11` and `w12`, and 10.96.33.33:80 without any.
fn ip_vs_txt(w11: u32, w12: u32) -> String {
    format!(
        "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n\
TCP  0A600001:01BB rr\n  -> 0A00000A:192B      Masq    1      2          0\n\
TCP  0A600C22:0050 rr\n  -> 0AF4010B:1F90      Masq    {w11}      4          1\n  -> 0AF4010C:1F90      Masq    {w12}      3          0\n\
UDP  0A60000A:0035 rr\n  -> 0AF4010A:0035      Masq    1      0          6\n\
TCP  0A602121:0050 rr\n"
    )
}

/// The committed IPVS fixture's node (`regen_fixtures::ipvs`) with its ip_vs.txt
/// replaced, and 10.96.33.33 bound on kube-ipvs0 when `bind_empty`.
fn ipvs_node(ip_vs: &str, bind_empty: bool) -> Node {
    let mut n = crate::regen_fixtures::ipvs();
    n.files.insert(layout::IPVS.into(), ip_vs.into());
    if bind_empty {
        n.extra_root_addrs
            .push(Addr::new(5, "10.96.33.33", 32).with_label("kube-ipvs0"));
    }
    n
}

#[test]
fn ipvs_two_real_servers_of_weight_1_split_half_and_half() {
    let text = ip_vs_txt(1, 1);
    let p = prepare(&ipvs_node(&text, false));
    let t = trace(&p, "client-0", "10.96.12.34:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 2, "{report}");
    assert!((total(&t) - 1.0).abs() < 1e-9, "{report}");
    let mut endpoints = Vec::new();
    for b in &t.verdicts {
        assert_eq!(b.verdict, Verdict::Delivered, "{report}");
        assert!((b.probability - 0.5).abs() < 1e-9, "{report}");
        endpoints.push(b.endpoint.clone().unwrap_or_default());
        let ipvs = hops_at(b, "ipvs");
        assert_eq!(ipvs.len(), 2, "virtual service, then real server: {report}");
        let vs = ipvs[0].evidence.as_ref().expect("virtual server cited");
        assert_eq!(vs.path, layout::IPVS);
        assert_eq!(vs.line, Some(ipvs_line(&text, "TCP  0A600C22:0050")));
        assert!(ipvs[0].what.contains("scheduler rr"), "{report}");
        assert!(ipvs[0].what.contains("weight-proportional"), "{report}");
        assert!(ipvs[0].what.contains("at LOCAL_IN"), "{report}");
        let rs = ipvs[1].evidence.as_ref().expect("real server cited");
        let rs_prefix = if b.endpoint.as_deref() == Some("10.244.1.11:8080") {
            "-> 0AF4010B:1F90"
        } else {
            "-> 0AF4010C:1F90"
        };
        assert_eq!(rs.line, Some(ipvs_line(&text, rs_prefix)), "{report}");
        assert!(ipvs[1].what.contains("DNAT 10.96.12.34:80 →"), "{report}");
        assert!(
            ipvs[1].what.contains("weight 1 of 2 (p = 0.500)"),
            "{report}"
        );
        // Out through OUTPUT and POSTROUTING as a locally sent packet, never FORWARD;
        // the reply is un-NATed by conntrack on its way back.
        let after: Vec<&Hop> = b
            .hops
            .iter()
            .skip_while(|h| h.at != "ipvs")
            .take_while(|h| !h.at.starts_with("reply"))
            .collect();
        assert!(
            after.iter().any(|h| h.at.contains("filter/OUTPUT")),
            "{report}"
        );
        assert!(!after.iter().any(|h| h.at.contains("FORWARD")), "{report}");
        assert!(
            b.hops
                .iter()
                .any(|h| h.at == "reply conntrack" && h.what.contains("10.96.12.34:80")),
            "{report}"
        );
    }
    endpoints.sort();
    assert_eq!(endpoints, ["10.244.1.11:8080", "10.244.1.12:8080"]);
}

#[test]
fn ipvs_real_server_of_weight_0_gets_no_branch() {
    let text = ip_vs_txt(1, 0);
    let p = prepare(&ipvs_node(&text, false));
    let t = trace(&p, "client-0", "10.96.12.34:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::Delivered, "{report}");
    assert!((b.probability - 1.0).abs() < 1e-9, "{report}");
    assert_eq!(b.endpoint.as_deref(), Some("10.244.1.11:8080"));
    assert!(
        hops_at(b, "ipvs")[0]
            .what
            .contains("weight 0, skipped by every scheduler: 10.244.1.12:8080"),
        "{report}"
    );
}

#[test]
fn ipvs_virtual_server_without_real_server_answers_port_unreachable() {
    let text = ip_vs_txt(1, 1);
    let p = prepare(&ipvs_node(&text, true));
    let t = trace(&p, "client-0", "10.96.33.33:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    // ip_vs_leave(): ICMP port unreachable for TCP too, then NF_DROP.
    assert_eq!(b.verdict, Verdict::Rejected, "{report}");
    assert!(b.reason.contains("no real server"), "{report}");
    assert!(b.reason.contains("icmp-port-unreachable"), "{report}");
    let vs = hops_at(b, "ipvs")[0].evidence.as_ref().expect("cited");
    assert_eq!(vs.line, Some(ipvs_line(&text, "TCP  0A602121:0050")));
}

#[test]
fn ipvs_virtual_server_with_every_real_server_drained_is_rejected_too() {
    let p = prepare(&ipvs_node(&ip_vs_txt(0, 0), false));
    let t = trace(&p, "client-0", "10.96.12.34:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    assert_eq!(t.verdicts[0].verdict, Verdict::Rejected, "{report}");
    assert!(
        t.verdicts[0]
            .reason
            .contains("2 real servers, all of weight 0"),
        "{report}"
    );
}

#[test]
fn ipvs_vip_not_on_kube_ipvs0_is_routed_like_any_address() {
    let text = ip_vs_txt(1, 1);
    let p = prepare(&ipvs_node(&text, false));
    let t = trace(&p, "client-0", "10.96.33.33:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::LeftNode, "{report}");
    assert!(b.reason.contains("eth0"), "{report}");
    let ipvs = hops_at(b, "ipvs");
    assert_eq!(ipvs.len(), 1, "{report}");
    assert!(ipvs[0].what.contains("not bound on kube-ipvs0"), "{report}");
    assert!(ipvs[0].what.contains("SVC006"), "{report}");
    assert_eq!(
        ipvs[0].evidence.as_ref().and_then(|e| e.line),
        Some(ipvs_line(&text, "TCP  0A602121:0050"))
    );
}

#[test]
fn ipvs_schedules_what_the_node_sends_at_local_out_bound_or_not() {
    let p = prepare(&ipvs_node(&ip_vs_txt(1, 0), false));
    // Bound on kube-ipvs0: the node sends from the VIP itself, kube-proxy masquerades
    // it, and the reply is routed back with its source restored only at LOCAL_IN (not
    // taken for a martian coming from the node's own address).
    let t = trace(&p, "node", "10.96.12.34:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::Delivered, "{report}");
    assert_eq!(b.endpoint.as_deref(), Some("10.244.1.11:8080"), "{report}");
    assert!(
        hops_at(b, "ipvs")[0].what.contains("at LOCAL_OUT"),
        "{report}"
    );
    assert!(
        b.hops.iter().any(|h| h.what.starts_with("MASQUERADE")),
        "{report}"
    );
    // Not bound: still scheduled (here: no real server, so rejected), not routed.
    let t = trace(&p, "node", "10.96.33.33:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    assert_eq!(t.verdicts[0].verdict, Verdict::Rejected, "{report}");
}

#[test]
fn ipvs_from_outside_the_node_the_reply_leaves_towards_the_client() {
    let p = prepare(&ipvs_node(&ip_vs_txt(1, 0), false));
    let t = trace(&p, "192.0.2.7", "10.96.12.34:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::LeftNode, "{report}");
    assert_eq!(b.endpoint.as_deref(), Some("10.244.1.11:8080"), "{report}");
    assert!(
        b.reason
            .contains("the reply leaves the node towards the client 192.0.2.7"),
        "{report}"
    );
    // The reply is routed (FORWARD) still from the pod; its source becomes the VIP at
    // POSTROUTING.
    let restored = b
        .hops
        .iter()
        .position(|h| h.at == "reply conntrack")
        .expect("reversed");
    assert!(
        b.hops[..restored]
            .iter()
            .any(|h| h.at.starts_with("reply iptables-nft filter/FORWARD")),
        "{report}"
    );
    assert!(
        b.hops[restored]
            .what
            .contains("becomes 10.96.12.34:80 → 192.0.2.7:40000"),
        "{report}"
    );
}

// ----------------------------------------------------------------------- overlays

/// The branch's hop where it leaves the node, with its link cited.
fn left_through<'a>(t: &'a Trace, dev: &str) -> &'a Hop {
    let report = dump(t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::LeftNode, "{report}");
    assert!((b.probability - 1.0).abs() < 1e-9, "{report}");
    let last = b.hops.last().expect("hops");
    assert_eq!(last.at, "link", "{report}");
    assert_eq!(last.iface.as_deref(), Some(dev), "{report}");
    let ev = last.evidence.as_ref().expect("the link is cited");
    assert_eq!(
        ev.path,
        layout::netns_path("root", layout::NetnsFile::Links)
    );
    assert!(ev.excerpt.starts_with(dev), "{}", ev.excerpt);
    last
}

#[test]
fn ipip_route_through_tunl0_leaves_the_node() {
    let mut n = Node::healthy("node-ipip");
    n.extra_root_links
        .push(Link::new(7, "tunl0", 1480).with_kind("ipip").up());
    // 10.244.2.0/24 via 10.0.0.11 dev tunl0 onlink (the schema keeps no route flags).
    n.extra_root_routes.push(fixture::route(
        "10.244.2.0/24",
        Some("10.0.0.11"),
        7,
        "bird",
        "universe",
    ));
    let p = prepare(&n);
    let t = trace(&p, "client-0", "10.244.2.5:8080");
    let hop = left_through(&t, "tunl0");
    assert!(
        hop.what.contains("ipip device tunl0 towards 10.0.0.11"),
        "{}",
        hop.what
    );
    let route = t.verdicts[0]
        .hops
        .iter()
        .rfind(|h| h.at == "route")
        .expect("route hop");
    assert!(
        route.what.contains("via 10.0.0.11 dev tunl0"),
        "{}",
        route.what
    );
    let ev = route.evidence.as_ref().expect("the route is cited");
    assert!(ev
        .excerpt
        .starts_with("10.244.2.0/24 via 10.0.0.11 dev tunl0"));
}

#[test]
fn vxlan_route_through_flannel_1_leaves_the_node() {
    let p = prepare(&Node::healthy("node-vxlan"));
    let t = trace(&p, "client-0", "10.244.0.5:8080");
    let hop = left_through(&t, "flannel.1");
    assert!(
        hop.what
            .contains("vxlan device flannel.1 towards 10.244.0.0"),
        "{}",
        hop.what
    );
}

// ------------------------------------------------- two backends at equal priority

const LEGACY_HEADER: &str =
    "# Generated by iptables-legacy-save v1.8.9 on Sat Nov 21 17:44:41 2026\n";

#[test]
fn legacy_forward_drop_next_to_nft_accept_drops_and_says_the_order_is_unknown() {
    let mut n = Node::healthy("node-two-backends");
    n.files.insert(
        layout::IPTABLES_LEGACY_SAVE.into(),
        format!(
            "{LEGACY_HEADER}*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A FORWARD -s 10.244.0.0/16 -m comment --comment \"stale pod drop\" -j DROP\nCOMMIT\n"
        ),
    );
    let p = prepare(&n);
    let t = trace(&p, "client-0", "192.0.2.10:443");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::Dropped, "{report}");
    assert!(
        b.reason.contains("iptables-legacy filter/FORWARD"),
        "{report}"
    );
    assert!(
        b.hops
            .iter()
            .any(|h| h
                .evidence
                .as_ref()
                .is_some_and(|e| e.path == layout::IPTABLES_LEGACY_SAVE
                    && e.excerpt.contains("stale pod drop"))),
        "the legacy rule is cited: {report}"
    );
    let order = b
        .hops
        .iter()
        .find(|h| h.what.contains("registration order"))
        .unwrap_or_else(|| panic!("the order is said to be unknowable: {report}"));
    assert!(
        order.what.contains("iptables-legacy filter/FORWARD")
            && order.what.contains("iptables-nft filter/FORWARD"),
        "{}",
        order.what
    );
}

#[test]
fn legacy_stale_dnat_next_to_nft_binds_first_and_the_trace_says_it_is_ambiguous() {
    let mut n = Node::healthy("node-two-backends");
    n.files.insert(
        layout::IPTABLES_LEGACY_SAVE.into(),
        format!(
            "{LEGACY_HEADER}*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n\
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
-A KUBE-SERVICES -d 10.96.12.34/32 -p tcp -m comment --comment \"default/web:http stale\" -m tcp --dport 80 -j DNAT --to-destination 10.244.1.99:8080\nCOMMIT\n"
        ),
    );
    let p = prepare(&n);
    let t = trace(&p, "client-0", "default/web:http");
    let report = dump(&t);
    assert!((total(&t) - 1.0).abs() < 1e-9, "{report}");
    for b in &t.verdicts {
        // Legacy's stale DNAT ran first and bound the connection.
        assert!(
            b.hops.iter().any(|h| h.what.contains("10.244.1.99:8080")
                && h.evidence
                    .as_ref()
                    .is_some_and(|e| e.path == layout::IPTABLES_LEGACY_SAVE)),
            "{report}"
        );
        assert_ne!(b.verdict, Verdict::Delivered, "{report}");
        let said = b.hops.iter().any(|h| {
            h.what.contains("registration order")
                && h.what.contains("iptables-legacy nat/PREROUTING")
                && h.what.contains("iptables-nft nat/PREROUTING")
        });
        assert!(said, "the order is said to be unknowable: {report}");
        let skipped = b.hops.iter().any(|h| {
            h.what
                .starts_with("iptables-nft nat/PREROUTING is not consulted")
                && h.what.contains("the first to NAT binds")
        });
        assert!(skipped, "nft's NAT is said not to run: {report}");
    }
}

// ---------------------------------------------------------------------- dual stack

/// `fixtures/dual-stack`, a real capture of a dual-stack lab node (CNI bridge shape,
/// ip6tables kube-proxy) with `net.ipv6.conf.all.forwarding=0`: a pod's request to an
/// IPv6 ClusterIP whose endpoints sit on the same bridge is DNATed in br_netfilter's
/// PREROUTING and bridged (the IPv6 input lookup does not ask forwarding; the lab's
/// kernel answers these requests), while one routed off the node is dropped.
#[test]
fn ipv6_dnat_back_to_the_bridge_is_bridged_without_forwarding() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dual-stack");
    let bundle = Bundle::open(&dir, &ReadLimits::default()).expect("fixture opens");
    let p = Prepared::new(&bundle);
    let t = trace(&p, "default/web-0", "[fd00:10:96::101]:80");
    assert!(
        t.verdicts
            .iter()
            .all(|b| b.verdict == Verdict::Delivered && hops_at(b, "br_netfilter").len() == 1),
        "{}",
        dump(&t)
    );
    assert!((total(&t) - 1.0).abs() < 1e-9, "{}", dump(&t));
    let off = trace(&p, "default/web-0", "[2001:db8:100::1]:80");
    assert_eq!(off.verdicts.len(), 1, "{}", dump(&off));
    assert_eq!(off.verdicts[0].verdict, Verdict::Dropped, "{}", dump(&off));
    assert!(
        off.verdicts[0]
            .reason
            .contains("net.ipv6.conf.all.forwarding = 0"),
        "{}",
        dump(&off)
    );
}

// ---------------------------------------------------------------------------- CLI

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/analyzer")
        .join(name)
}

fn netsnap_trace(bundle: &Path, from: &str, to: &str) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .arg("trace")
        .arg(bundle)
        .args(["--from", from, "--to", to, "--format", "json"])
        .output()
        .expect("netsnap runs");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "trace JSON parses ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

#[test]
fn cli_trace_json_of_a_healthy_service() {
    let (code, doc) = netsnap_trace(&fixture("healthy"), "client-0", "default/web:http");
    assert_eq!(doc["format"], "netsnap-trace");
    assert_eq!(doc["version"], 1);
    let traces = doc["traces"].as_array().expect("traces");
    assert_eq!(traces.len(), 1);
    for t in traces {
        let verdicts = t["verdicts"].as_array().expect("verdicts");
        assert!(!verdicts.is_empty());
        let sum: f64 = verdicts
            .iter()
            .map(|b| b["probability"].as_f64().expect("probability"))
            .sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        assert!(verdicts.iter().all(|b| b["verdict"] == "delivered"), "{t}");
    }
    assert_eq!(code, Some(0));
}

#[test]
fn cli_trace_of_a_broken_service_exits_1() {
    let (code, doc) = netsnap_trace(&fixture("faulty"), "client-0", "default/empty:http");
    assert_eq!(doc["version"], 1);
    let verdicts = doc["traces"][0]["verdicts"].as_array().expect("verdicts");
    assert!(
        verdicts.iter().all(|b| b["verdict"] != "delivered"),
        "{doc}"
    );
    assert_eq!(code, Some(1));
}

/// `--established` follows the bindings of the bundle's conntrack entries, not the
/// rules' load balancing; a service address with no entry cannot be followed.
#[test]
fn established_connections_follow_the_conntrack_bindings() {
    let p = prepare(&Node::healthy("node-ct"));
    let ask = |to: &str| Ask {
        from: "client-0".into(),
        to: to.into(),
        established: true,
        ..Ask::default()
    };
    let t = &p.trace(&ask("default/web:http")).expect("resolves")[0];
    // The healthy node holds one entry to each web backend.
    let mut endpoints: Vec<(&str, f64)> = t
        .verdicts
        .iter()
        .map(|b| (b.endpoint.as_deref().unwrap_or(""), b.probability))
        .collect();
    endpoints.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(
        endpoints,
        vec![("10.244.1.11:8080", 0.5), ("10.244.1.12:8080", 0.5)],
        "{}",
        dump(t)
    );
    for b in &t.verdicts {
        assert_eq!(b.verdict, Verdict::Delivered, "{}", dump(t));
        let bound = hops_at(b, "conntrack");
        assert!(
            bound.iter().any(|h| h
                .evidence
                .as_ref()
                .is_some_and(|e| e.path == layout::CONNTRACK_ENTRIES)),
            "{}",
            dump(t)
        );
    }
    // No entry to the api service: which backend is unknown.
    let t = &p.trace(&ask("default/api:http")).expect("resolves")[0];
    assert_eq!(t.verdicts.len(), 1, "{}", dump(t));
    assert_eq!(t.verdicts[0].verdict, Verdict::Unknown, "{}", dump(t));
    assert!(
        t.verdicts[0].reason.contains("no conntrack entry"),
        "{}",
        dump(t)
    );
}

/// `netsnap reach` on the demo bundle: the matrix covers every pod × service port once
/// (two backends programming one service port make one column), the failing paths are
/// the demo's broken services, and every output format is well formed.
#[test]
fn reach_matrix_of_the_demo() {
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_netsnap"))
            .args(["reach", "fixtures/demo", "--format", format])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .output()
            .expect("run netsnap reach")
    };
    let json = run("json");
    assert_eq!(json.status.code(), Some(1), "the demo has failing paths");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("reach JSON");
    assert_eq!(v["format"], "netsnap-reach");
    let cells = v["reachability"]["cells"].as_array().expect("cells");
    let pods: std::collections::BTreeSet<&str> =
        cells.iter().filter_map(|c| c["pod"].as_str()).collect();
    let services: std::collections::BTreeSet<&str> =
        cells.iter().filter_map(|c| c["service"].as_str()).collect();
    assert_eq!(
        cells.len(),
        pods.len() * services.len(),
        "one cell per pod × service port"
    );
    let failing: std::collections::BTreeSet<&str> = cells
        .iter()
        .filter(|c| c["failures"].as_array().is_some_and(|f| !f.is_empty()))
        .filter_map(|c| c["service"].as_str())
        .collect();
    // svc-0 has no endpoints (rejected), svc-2 a stale endpoint (dropped half the time),
    // and web-1, whose port has hairpin off, cannot reach itself through svc-4.
    assert_eq!(
        failing,
        [
            "default/svc-0:http",
            "default/svc-2:http",
            "default/svc-4:http"
        ]
        .into_iter()
        .collect()
    );
    let dot = String::from_utf8(run("dot").stdout).expect("utf-8");
    assert!(dot.starts_with("digraph reach {") && dot.trim_end().ends_with('}'));
    assert!(dot.contains("bgcolor=\"forestgreen\"") && dot.contains("bgcolor=\"orangered\""));
    let text = String::from_utf8(run("text").stdout).expect("utf-8");
    assert!(text.contains("pod → service paths fail"), "{text}");
}

/// The reachability matrix traces one pod per class and, for a pod that is a
/// service's endpoint (or named by a rule of its endpoint chains), only the branches
/// to that endpoint: it must say exactly what tracing every cell in full says, on the
/// committed fixtures and on generated nodes in both proxy modes with their planted
/// faults (sampled: 40 service ports × 3 endpoints, 24 pods, so that most pods are
/// endpoints of some service).
#[test]
fn shared_matrix_equals_tracing_every_cell() {
    use netsnap_analyzer::trace::reach;
    use netsnap_scale::{write_bundle, Output, Plan, ProxyMode, Size, Spec};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut bundles: Vec<(String, std::path::PathBuf)> = [
        "demo",
        "analyzer/healthy",
        "analyzer/faulty",
        "analyzer/ipvs",
        "dual-stack",
    ]
    .iter()
    .map(|f| (f.to_string(), root.join("fixtures").join(f)))
    .collect();
    for proxy in [ProxyMode::Iptables, ProxyMode::Nftables] {
        let mut spec = Spec::preset(Size::Small);
        (spec.services, spec.endpoints, spec.pods, spec.proxy) = (40, 3, 24, proxy);
        let out = tmp
            .path()
            .join(format!("{}.netsnap.tar.zst", proxy.as_str()));
        write_bundle(
            &Plan::new(&spec).expect("plan"),
            &Output::Archive(out.clone()),
        )
        .expect("scale bundle");
        bundles.push((format!("scale {}", proxy.as_str()), out));
    }
    let (mut cells, mut shared) = (0, 0);
    for (name, path) in bundles {
        let bundle = Bundle::open(&path, &ReadLimits::default()).expect("bundle opens");
        let p = Prepared::new(&bundle);
        let memo = reach::compute(&p.model, &p.graph, &p.firewall);
        let each = reach::compute_each(&p.model, &p.graph, &p.firewall);
        let diff = reach::differences(&memo, &each);
        assert!(
            diff.is_empty(),
            "{name}: {} cells differ:\n{}",
            diff.len(),
            diff.join("\n")
        );
        assert_eq!(memo.cells.len(), each.cells.len(), "{name}");
        cells += memo.cells.len();
        shared += memo.reused;
    }
    eprintln!("shared matrix = every cell traced: {cells} cells agree ({shared} answered from a pod of the same class)");
    assert!(shared > 0, "some cells are shared");
}

// ----------------------------------------------------------------- routing loops

/// A route that sends the packet back to where it came from (Cilium's pod CIDR via
/// `cilium_host`, whose veth peer `cilium_net` is in the same netns, for an address
/// no pod route takes any more): the kernel forwards it round until its TTL runs out
/// and drops it — the lab's Cilium shape shows it (`link-down` of the trace
/// differential); here on a fixture.
#[test]
fn a_routing_loop_ends_dropped_when_the_ttl_runs_out() {
    use netsnap_schema::model::Route;
    let mut n = Node::healthy("node-loop");
    let veth = |ifindex: u32, name: &str, peer: u32| {
        let mut l = Link::new(ifindex, name, 1500).up().with_kind("veth");
        l.link = Some(peer);
        l
    };
    n.extra_root_links.push(veth(95, "cilium_host", 96));
    n.extra_root_links.push(veth(96, "cilium_net", 95));
    n.extra_root_addrs.push(Addr::new(95, "10.250.0.1", 32));
    n.extra_root_routes
        .push(Route::new("10.250.0.0/16").via("10.250.0.1").dev(95));
    let p = prepare(&n);
    let t = trace(&p, "client-0", "10.250.0.7:80");
    let report = dump(&t);
    assert_eq!(t.verdicts.len(), 1, "{report}");
    let b = &t.verdicts[0];
    assert_eq!(b.verdict, Verdict::Dropped, "{report}");
    assert!(b.reason.contains("routing loop"), "{report}");
    assert!(
        b.hops
            .iter()
            .filter(|h| h.iface.as_deref() == Some("cilium_net"))
            .count()
            > 1,
        "{report}"
    );
}
