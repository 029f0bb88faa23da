//! The layout on every committed fixture bundle (the demo and dual-stack are real lab
//! captures; faulty and ipvs hand-made with dangling veths and IPVS services).

use super::*;
use crate::graph::GNode;
use std::collections::BTreeSet;
use std::path::Path;

const FIXTURES: &[&str] = &[
    "demo",
    "dual-stack",
    "analyzer/faulty",
    "analyzer/healthy",
    "analyzer/ipvs",
];

fn each_fixture(f: impl Fn(&str, &Model, &NodeGraph)) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    for name in FIXTURES {
        let b = crate::load::open(&root.join(name), &Default::default()).expect(name);
        let (_, model, graph) = crate::report::prepare(&b);
        f(name, &model, &graph);
    }
}

#[test]
fn no_two_shapes_of_a_panel_overlap_and_all_fit_inside_it() {
    each_fixture(|name, model, graph| {
        let pic = Picture::of(model, graph, &[]);
        let mut shapes = 0;
        for p in &pic.panels {
            for (i, a) in p.shapes.iter().enumerate() {
                assert!(
                    a.rect.w > 0 && a.rect.h > 0,
                    "{name}: {} has no area",
                    a.key
                );
                assert!(
                    a.rect.x >= 0 && a.rect.y >= 0,
                    "{name}: {} off the panel",
                    a.key
                );
                assert!(
                    a.rect.x + a.rect.w <= p.width && a.rect.y + a.rect.h <= p.height,
                    "{name}: {} outside {}",
                    a.key,
                    p.title
                );
                for b in &p.shapes[i + 1..] {
                    assert!(
                        !a.rect.overlaps(&b.rect),
                        "{name}: {} overlaps {} in {}",
                        a.key,
                        b.key,
                        p.title
                    );
                }
            }
            for w in &p.wires {
                assert!(
                    w.from < p.shapes.len() && w.to < p.shapes.len(),
                    "{name}: dangling wire"
                );
                let ((x1, _), (x2, _)) = p.ends(w);
                assert!(
                    x1 <= x2,
                    "{name}: wire {:?} runs right to left in {}",
                    w,
                    p.title
                );
            }
            shapes += p.shapes.len();
        }
        assert!(shapes > 0, "{name}: empty picture");
    });
}

#[test]
fn the_same_graph_gives_the_same_picture() {
    each_fixture(|name, model, graph| {
        let a = Picture::of(model, graph, &["pod default/web-1"]);
        let b = Picture::of(model, graph, &["pod default/web-1"]);
        assert_eq!(a, b, "{name}");
        assert_eq!(svg::standalone(&a, "t"), svg::standalone(&b, "t"), "{name}");
    });
}

#[test]
fn every_pod_bridge_and_vip_of_the_graph_has_a_shape() {
    each_fixture(|name, model, graph| {
        let pic = Picture::of(model, graph, &[]);
        let want: BTreeSet<(Kind, String)> = graph
            .graph
            .node_weights()
            .filter_map(|n| match n {
                GNode::Pod { .. } => Some((Kind::Pod, n.key())),
                GNode::Bridge { .. } => Some((Kind::Bridge, n.key())),
                GNode::ServiceVip { .. } => Some((Kind::Vip, n.key())),
                _ => None,
            })
            .collect();
        let got: BTreeSet<(Kind, String)> = pic
            .panels
            .iter()
            .flat_map(|p| &p.shapes)
            .filter(|s| matches!(s.kind, Kind::Pod | Kind::Bridge | Kind::Vip))
            .map(|s| (s.kind, s.key.clone()))
            .collect();
        assert_eq!(got, want, "{name}");
        assert!(!want.is_empty(), "{name}: nothing to draw");
    });
}

#[test]
fn finding_subjects_resolve_to_their_shapes() {
    each_fixture(|name, model, graph| {
        if name != "demo" {
            return;
        }
        let pic = Picture::of(model, graph, &[]);
        let keys = |subject: &str| -> BTreeSet<String> {
            pic.resolve(subject)
                .into_iter()
                .map(|(p, s)| pic.panels[p].shapes[s].key.clone())
                .collect()
        };
        let pod1 = keys("pod default/web-1");
        assert_eq!(pod1.len(), 1, "{pod1:?}");
        assert!(pod1.iter().all(|k| k.starts_with("pod:")));
        // A subject with more after the name names the same pod.
        assert_eq!(keys("pod default/web-1 (eth0)"), pod1);
        // A service without its port names every port of it.
        assert!(keys("service kube-system/kube-dns").len() >= 2);
        assert_eq!(keys("service default/svc-3:echo -> 10.244.1.9").len(), 1);
        assert_eq!(keys("node conntrack stats"), keys("node"));
        // The overview's bridge and the pod panels' (one key, several shapes).
        assert_eq!(keys("link cni0").len(), 1);
        assert!(pic.resolve("link cni0").len() >= 2);
        assert!(keys("bundle").is_empty());
        assert!(
            keys("pod default/web-10").is_empty(),
            "no prefix match inside a name"
        );
    });
}

#[test]
fn faulty_shapes_mark_their_group_and_open_their_panel() {
    each_fixture(|name, model, graph| {
        if name != "demo" {
            return;
        }
        let mut pic = Picture::of(model, graph, &[]);
        let refs = pic.resolve("pod default/web-1");
        pic.mark_faulty(&refs);
        let (p, s) = refs[0];
        assert!(pic.panels[p].shapes[s].faulty && pic.panels[p].open);
        let group = pic.panels[0]
            .shapes
            .iter()
            .find(|g| g.panel == Some(p))
            .unwrap();
        assert!(group.faulty, "{}", group.label);
        assert!(group.detail.ends_with("1 faulty"), "{}", group.detail);
    });
}

#[test]
fn svg_text_is_escaped_and_xml_safe() {
    assert_eq!(svg::esc("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    assert_eq!(svg::esc("a\u{0}b\u{1b}"), "a\u{fffd}b\u{fffd}");
    assert_eq!(clip("abcdef", 4), "abc…");
    assert_eq!(clip("abc", 4), "abc");
}

#[test]
fn cluster_overview_wires_each_route_to_another_nodes_pods() {
    let mut nodes = crate::cluster::testkit::healthy_nodes();
    let names = ["node-a", "node-b", "node-c"];
    let named = |nodes: &[crate::cluster::NodeSummary]| -> Panel {
        let pairs: Vec<(&str, &crate::cluster::NodeSummary)> =
            names.iter().copied().zip(nodes.iter()).collect();
        cluster::overview(&pairs)
    };
    let p = named(&nodes);
    assert_eq!(p.shapes.len(), 6, "a node box and a pod-CIDR box per node");
    assert_eq!(p.wires.len(), 6, "each node routes to both others");
    assert!(
        p.wires.iter().all(|w| w.kind == WireKind::Uplink),
        "through flannel.1"
    );
    for (i, a) in p.shapes.iter().enumerate() {
        for b in &p.shapes[i + 1..] {
            assert!(!a.rect.overlaps(&b.rect), "{} overlaps {}", a.key, b.key);
        }
    }
    // node-a loses its routes: its two wires go.
    nodes[0].routes.clear();
    assert_eq!(named(&nodes).wires.len(), 4);
}
