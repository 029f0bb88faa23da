//! Traces across two fixture nodes: node A (10.0.0.10, pods 10.244.1.0/24) and its
//! mirror node B (10.0.0.11, pods 10.244.2.0/24), B's bundle written from A's
//! description with the addresses, VTEP MACs and pod names swapped. The service
//! `default/web:http` (10.96.1.1:80) has its endpoint on the other node.

use super::*;
use crate::trace::packet::Proto;
use netsnap_scale::fixture::{self, Node, Pod, Svc};
use netsnap_schema::model::{FdbEntry, Neigh};
use netsnap_schema::{Bundle, BundleWriter, ReadLimits};

const MAC_A: &str = "0a:0b:0c:0d:0e:0f";
const MAC_B: &str = "0a:0b:0c:0d:0e:10";

/// What B's bundle is A's with: each pair swapped.
const MIRROR: &[(&str, &str)] = &[
    ("10.244.1.", "10.244.2."),
    ("10.0.0.10", "10.0.0.11"),
    (MAC_A, MAC_B),
    ("web-a", "web-b"),
    ("node-a", "node-b"),
];

/// How node A reaches B's pods.
#[derive(Clone, Copy, PartialEq)]
enum Between {
    /// flannel.1 with B's neighbour, FDB entry and on-link route.
    Vxlan,
    /// A route to B's pod CIDR via B's address on eth0 (host-gw).
    HostGw,
}

fn node_a(between: Between) -> Node {
    let mut n = Node::new("node-a");
    n.pods = vec![
        Pod::new("default", "client", "10.244.1.20"),
        Pod::new("default", "web-a", "10.244.1.11"),
    ];
    n.services = vec![Svc::new(
        "default/web:http",
        "tcp",
        "10.96.1.1",
        80,
        &[("10.244.2.11", 8080)],
    )];
    match between {
        Between::Vxlan => {
            n.neigh = vec![Neigh {
                ifindex: 4,
                family: "inet".into(),
                dst: "10.244.2.0".into(),
                lladdr: Some(MAC_B.into()),
                state: "PERMANENT".into(),
            }];
            n.fdb = vec![FdbEntry {
                ifindex: 4,
                mac: MAC_B.into(),
                master: None,
                vlan: None,
                dst: Some("10.0.0.11".into()),
                state: "PERMANENT".into(),
            }];
            let r = fixture::route("10.244.2.0/24", Some("10.244.2.0"), 4, "boot", "universe");
            n.extra_root_routes = vec![r];
        }
        Between::HostGw => {
            let r = fixture::route("10.244.2.0/24", Some("10.0.0.11"), 2, "boot", "universe");
            n.extra_root_routes = vec![r];
        }
    }
    n
}

/// `text` with each pair of `MIRROR` swapped.
fn mirror(text: &[u8]) -> Vec<u8> {
    let mut s = String::from_utf8_lossy(text).into_owned();
    for (i, (a, b)) in MIRROR.iter().enumerate() {
        let hold = format!("\u{1}{i}\u{1}");
        s = s.replace(a, &hold).replace(b, a).replace(&hold, b);
    }
    s.into_bytes()
}

/// A's bundle (`mirrored`: as B's), prepared; its flannel.1 reports how it finds
/// VTEPs (`nolearning`, no miss notifications) as the collector records it.
fn prepared(node: &Node, mirrored: bool) -> Prepared {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("a");
    node.write(&dir).expect("fixture bundle writes");
    let bundle = Bundle::open(&dir, &ReadLimits::default()).expect("bundle opens");
    let bundle = if mirrored {
        let mut w = BundleWriter::new(tmp.path());
        for r in &bundle.manifest.sources {
            match r.path.as_deref().and_then(|p| bundle.file(p)) {
                Some(data) => w.add_bytes(r.clone(), &mirror(data)).expect("add"),
                None => w.add_record(r.clone()).expect("add"),
            }
        }
        let mut m = bundle.manifest.clone();
        m.hostname = "node-b".into();
        let out = tmp.path().join("b.netsnap.tar.zst");
        w.write_archive(m, &out).expect("mirror writes");
        Bundle::open(&out, &ReadLimits::default()).expect("mirror opens")
    } else {
        bundle
    };
    let mut p = Prepared::new(&bundle);
    let root = p.model.netns.get_mut("root").expect("root netns");
    for l in &mut root.links.items {
        if let Some(vx) = l.vxlan.as_mut() {
            vx.learning = Some(false);
            (vx.external, vx.l2miss, vx.l3miss, vx.proxy) =
                (Some(false), Some(false), Some(false), Some(false));
        }
    }
    p
}

fn pair(between: Between) -> [Prepared; 2] {
    let a = node_a(between);
    [prepared(&a, false), prepared(&a, true)]
}

fn trace(nodes: &[&Prepared], to: &str) -> Trace {
    let names = ["node-a", "node-b"];
    let list: Vec<(String, &Prepared)> = nodes
        .iter()
        .enumerate()
        .map(|(i, p)| (names[i].to_string(), *p))
        .collect();
    let c = Cluster::new(&list, Options::default());
    let ask = Ask {
        from: "default/client".into(),
        to: to.into(),
        proto: Some(Proto::Tcp),
        ..Ask::default()
    };
    let mut t = c.trace_ask(&ask).expect("request resolves");
    assert_eq!(t.len(), 1);
    t.remove(0)
}

fn only(t: &Trace) -> &Branch {
    assert_eq!(t.verdicts.len(), 1, "{:#?}", t.verdicts);
    &t.verdicts[0]
}

/// The nodes the hops are on, each once in order.
fn nodes_of(b: &Branch) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for h in &b.hops {
        let n = h.node.as_deref().expect("every hop names its node");
        if out.last() != Some(&n) {
            out.push(n);
        }
    }
    out
}

#[test]
fn a_service_with_its_endpoint_on_the_other_node_is_reached_over_vxlan() {
    let [a, b] = pair(Between::Vxlan);
    let t = trace(&[&a, &b], "10.96.1.1:80");
    assert_eq!(t.node.as_deref(), Some("node-a"));
    let br = only(&t);
    assert_eq!(br.verdict, Verdict::Delivered, "{br:#?}");
    assert_eq!(br.endpoint.as_deref(), Some("10.244.2.11:8080"));
    assert_eq!(br.ended_in.as_deref(), Some("default/web-b"));
    assert_eq!(nodes_of(br), ["node-a", "node-b", "node-a"]);
    let arrivals: Vec<&str> = br
        .hops
        .iter()
        .filter(|h| h.at.ends_with("node"))
        .map(|h| h.what.as_str())
        .collect();
    assert_eq!(
        arrivals,
        [
            "arrives on node node-b (VTEP 10.0.0.11) and is decapsulated on flannel.1",
            "arrives on node node-a (VTEP 10.0.0.10) and is decapsulated on flannel.1",
        ]
    );
    // Node A reverses its DNAT on the reply: the client hears from the VIP.
    assert!(
        br.hops.iter().any(|h| h.node.as_deref() == Some("node-a")
            && h.what
                .contains("10.244.2.11:8080 → 10.244.1.20:40000 becomes 10.96.1.1:80")),
        "{br:#?}"
    );
}

#[test]
fn a_pod_of_the_other_node_by_name_and_a_closed_port() {
    let [a, b] = pair(Between::Vxlan);
    let t = trace(&[&a, &b], "10.244.2.11:8080");
    assert_eq!(only(&t).verdict, Verdict::Delivered, "{t:#?}");
    let t = trace(&[&a, &b], "10.244.2.11:9");
    let br = only(&t);
    assert_eq!(br.verdict, Verdict::Refused, "{br:#?}");
    assert_eq!(nodes_of(br), ["node-a", "node-b", "node-a"]);
}

#[test]
fn a_missing_fdb_entry_drops_on_the_sending_node() {
    let [mut a, b] = pair(Between::Vxlan);
    a.model.netns.get_mut("root").unwrap().fdb.items.clear();
    let t = trace(&[&a, &b], "10.96.1.1:80");
    let br = only(&t);
    assert_eq!(br.verdict, Verdict::Dropped, "{br:#?}");
    assert!(br.reason.contains("no FDB entry"), "{}", br.reason);
    assert_eq!(nodes_of(br), ["node-a"]);
}

#[test]
fn host_gw_routes_arrive_on_the_next_hops_interface() {
    let [a, b] = pair(Between::HostGw);
    let t = trace(&[&a, &b], "10.96.1.1:80");
    let br = only(&t);
    assert_eq!(br.verdict, Verdict::Delivered, "{br:#?}");
    assert_eq!(nodes_of(br), ["node-a", "node-b", "node-a"]);
    assert!(br.hops.iter().any(
        |h| h.what == "arrives on node node-b on eth0 (its address 10.0.0.11 is the next hop)"
    ));
}

#[test]
fn without_the_other_nodes_bundle_the_branch_stays_left_node() {
    let [a, _] = pair(Between::Vxlan);
    let t = trace(&[&a], "10.244.2.11:8080");
    let br = only(&t);
    assert_eq!(br.verdict, Verdict::LeftNode, "{br:#?}");
    assert!(
        br.reason
            .ends_with("no other node given has the VTEP address 10.0.0.11"),
        "{}",
        br.reason
    );
}

#[test]
fn a_pod_of_another_node_resolves_as_destination() {
    let [a, b] = pair(Between::Vxlan);
    let list = [("node-a".to_string(), &a), ("node-b".to_string(), &b)];
    let c = Cluster::new(&list, Options::default());
    let ask = Ask {
        from: "default/client".into(),
        to: "default/web-b".into(),
        port: Some(8080),
        ..Ask::default()
    };
    let (node, reqs) = c.resolve(&ask).expect("resolves");
    assert_eq!(node, 0);
    assert_eq!(reqs[0].dst.to_string(), "10.244.2.11");
    // A source on B starts there.
    let ask = Ask {
        from: "default/web-b".into(),
        to: "10.244.1.11".into(),
        port: Some(8080),
        ..Ask::default()
    };
    assert_eq!(c.resolve(&ask).expect("resolves").0, 1);
}

#[test]
fn node_names_fall_back_to_file_names_then_numbers() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(node_names(&s(&["a", "b"]), &s(&["x", "y"])), s(&["a", "b"]));
    assert_eq!(
        node_names(
            &s(&["lab", "lab"]),
            &s(&["/t/n1.netsnap.tar.zst", "/t/n2.netsnap.tar.zst"])
        ),
        s(&["n1", "n2"])
    );
    assert_eq!(
        node_names(&s(&["lab", "lab"]), &s(&["/1/h.netsnap", "/2/h.netsnap"])),
        s(&["node-1", "node-2"])
    );
}
