//! `netsnap report` without a browser: the HTML's structure (every finding's subject
//! an SVG element; each pod, bridge and VIP of the graph a shape), hostile names
//! escaped, the large scale bundle's file ≤ 5 MB, the cluster overview, the Markdown
//! report with its picture file, and `netsnap graph --format svg`.

use netsnap_analyzer::batch::Options;
use netsnap_analyzer::check::{Selection, Thresholds};
use netsnap_analyzer::graph::GNode;
use netsnap_analyzer::render::page::{self, Pages};
use netsnap_analyzer::render::{html, page_markdown};
use netsnap_tests::bundle_edit::rewrite;
use netsnap_tests::collector::{analyzer_bin, TempDir};
use netsnap_tests::notice;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The HTML file may not grow past this for the large scale bundle.
const MAX_LARGE_REPORT: usize = 5 * 1024 * 1024;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// The pages and HTML of `paths` as `netsnap report` makes them.
pub fn render(paths: &[PathBuf], no_reach: bool) -> (Pages, String) {
    let selection = Selection {
        no_reach,
        ..Selection::default()
    };
    let pages = page::build(
        paths,
        &Options {
            limits: &Default::default(),
            thresholds: &Thresholds::default(),
            selection: &selection,
            jobs: 1,
            summarise: false,
            leak_single: false,
            progress: &|_| {},
        },
    )
    .expect("report pages");
    let html = html::render(&pages);
    (pages, html)
}

/// Graph keys of the pods, bridges and VIPs of a bundle (from the analyzer library).
pub fn graph_keys(bundle: &Path) -> BTreeSet<(&'static str, String)> {
    let b = netsnap_analyzer::load::open(bundle, &Default::default()).expect("bundle");
    let (_, _, g) = netsnap_analyzer::report::prepare(&b);
    g.graph
        .node_weights()
        .filter_map(|n| match n {
            GNode::Pod { .. } => Some(("pod", n.key())),
            GNode::Bridge { .. } => Some(("bridge", n.key())),
            GNode::ServiceVip { .. } => Some(("vip", n.key())),
            _ => None,
        })
        .collect()
}

/// Markup that would run if a name were not escaped.
pub const HOSTILE_HOST: &str = "<script>window.__pwned=1</script>node";
pub const HOSTILE_POD: &str = "web-1<script>window.__pwned=3</script>";
pub const HOSTILE_LINK: &str = "<img src=x onerror=window.__pwned=2>";

/// The demo capture with a hostile hostname, pod name and host veth name.
pub fn hostile_demo(dir: &Path) -> PathBuf {
    let out = dir.join("hostile.netsnap.tar.zst");
    rewrite(&fixture("demo"), &out, Some(HOSTILE_HOST), &|path, data| {
        let text = std::str::from_utf8(data).ok()?;
        let edited = match path {
            "netns/index.json" => text.replace(
                "\"name\": \"web-1\"",
                &format!("\"name\": \"{HOSTILE_POD}\""),
            ),
            "netns/root/links.json" => {
                text.replace("\"veth8572b2e0\"", &format!("\"{HOSTILE_LINK}\""))
            }
            _ => return None,
        };
        assert_ne!(edited, text, "{path}: nothing replaced");
        Some(edited.into_bytes())
    })
    .expect("hostile bundle");
    out
}

/// `id="…"` values of the SVG shapes (`<g id=…`) in the HTML.
fn shape_ids(html: &str) -> BTreeSet<&str> {
    html.match_indices("<g id=\"")
        .filter_map(|(i, m)| html[i + m.len()..].split('"').next())
        .collect()
}

#[test]
fn every_finding_points_at_shapes_that_exist() {
    let (pages, html) = render(&[fixture("demo")], false);
    let ids = shape_ids(&html);
    let n = &pages.nodes[0];
    let mut placed = 0;
    for (i, f) in n.report.findings.iter().enumerate() {
        let article = html
            .split(&format!("id=\"n0f{i}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("finding {} {} not in the HTML", f.id, f.subject));
        let shapes = article
            .split("data-shapes=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for id in shapes.split_whitespace() {
            assert!(
                ids.contains(id),
                "{} {}: shape {id} missing",
                f.id,
                f.subject
            );
            placed += 1;
        }
        let about_element = ["pod ", "service ", "link ", "node"]
            .iter()
            .any(|p| f.subject.starts_with(p));
        assert_eq!(
            about_element,
            !shapes.is_empty(),
            "{} {}: placed {shapes:?}",
            f.id,
            f.subject
        );
    }
    let drawn: BTreeSet<(&str, String)> = n
        .picture
        .panels
        .iter()
        .flat_map(|p| &p.shapes)
        .filter_map(|s| {
            let k = s.kind.as_str();
            matches!(k, "pod" | "bridge" | "vip").then(|| (k, s.key.clone()))
        })
        .collect();
    assert_eq!(drawn, graph_keys(&fixture("demo")));
    for (_, key) in &drawn {
        assert!(
            html.contains(&format!("data-key=\"{key}\"")),
            "{key} not in the HTML"
        );
    }
    assert!(html.contains(html::CSP), "no Content-Security-Policy");
    // Nothing that could load: no src/href attribute, no stylesheet link, no CSS url().
    for banned in [" src=\"", " href=\"", "<link", "url(", "@import"] {
        assert!(!html.contains(banned), "{banned} in the HTML");
    }
    notice(&format!(
        "report_html: demo: {} findings, {placed} shape links, {} shapes, {} bytes",
        n.report.findings.len(),
        ids.len(),
        html.len()
    ));
}

#[test]
fn hostile_names_are_escaped_everywhere() {
    let dir = TempDir::new("report-hostile").unwrap();
    let bundle = hostile_demo(dir.path());
    let (pages, html) = render(std::slice::from_ref(&bundle), true);
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the report's own script"
    );
    assert!(!html.contains("<img"), "an element from a name");
    assert!(
        html.contains("&lt;script&gt;window.__pwned=3&lt;/script&gt;"),
        "the pod name, escaped"
    );
    assert!(
        html.contains("&lt;img src=x onerror=window.__pwned=2&gt;"),
        "the link name, escaped"
    );
    let md_pictures = page_markdown::pictures(&pages, "r");
    for (name, svg) in &md_pictures {
        assert!(!svg.contains("<script") && !svg.contains("<img"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{name}"
        );
    }
}

#[test]
fn large_scale_report_stays_under_5_mb() {
    use netsnap_scale::{write_bundle, Output, Plan, Size, Spec};
    let dir = TempDir::new("report-large").unwrap();
    // The large preset (10,000 service ports × 10 endpoints, 250 pods) with fewer
    // conntrack entries: the picture, which makes the size, does not draw conntrack.
    let mut spec = Spec::preset(Size::Large);
    spec.conntrack = 10_000;
    let out = dir.path().join("large.netsnap.tar.zst");
    write_bundle(&Plan::new(&spec).unwrap(), &Output::Archive(out.clone())).expect("large bundle");
    let (pages, html) = render(&[out], true);
    let n = &pages.nodes[0];
    let panels = n.picture.panels.len();
    let open = n.picture.panels.iter().filter(|p| p.open).count();
    notice(&format!(
        "report_html: large: {} bytes ({:.2} MB), {panels} panels ({open} open), {} findings",
        html.len(),
        html.len() as f64 / 1e6,
        n.report.findings.len()
    ));
    assert!(html.len() <= MAX_LARGE_REPORT, "{} bytes", html.len());
    assert!(
        open < panels / 4,
        "healthy panels collapsed: {open} of {panels} open"
    );
    assert!(n.report.counts.endpoints >= 99_000, "the large preset");
}

#[test]
fn cluster_report_draws_every_node() {
    let (pages, html) = render(&[fixture("demo"), fixture("dual-stack")], true);
    let c = pages.cluster.as_ref().expect("cluster section");
    assert!(html.contains("<section id=\"cluster\">"));
    for node in &c.nodes {
        assert!(
            html.contains(&format!("data-key=\"cluster-node:{}\"", node.name)),
            "{}",
            node.name
        );
    }
    assert_eq!(html.matches("<section class=\"node\"").count(), 2);
}

#[test]
fn markdown_report_and_graph_svg_carry_the_picture() {
    let dir = TempDir::new("report-md").unwrap();
    let md = dir.path().join("ticket.md");
    let st = std::process::Command::new(analyzer_bin().unwrap())
        .args(["report", "--format", "markdown", "-o"])
        .arg(&md)
        .arg(fixture("demo"))
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&md).unwrap();
    let svg_name = text
        .split("](")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("picture link");
    let svg =
        std::fs::read_to_string(dir.path().join(svg_name)).expect("picture beside the Markdown");
    let graph = std::process::Command::new(analyzer_bin().unwrap())
        .args(["graph", "--format", "svg"])
        .arg(fixture("demo"))
        .output()
        .unwrap();
    let graph_svg = String::from_utf8(graph.stdout).unwrap();
    for (_, key) in graph_keys(&fixture("demo")) {
        assert!(
            svg.contains(&format!("data-key=\"{key}\"")),
            "{key} not in {svg_name}"
        );
        assert!(
            graph_svg.contains(&format!("data-key=\"{key}\"")),
            "{key} not in graph --format svg"
        );
    }
    for section in [
        "### Findings",
        "### Reachability",
        "### Sources",
        "| node | datapath |",
    ] {
        assert!(text.contains(section), "{section}");
    }
}
