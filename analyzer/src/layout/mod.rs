//! Where every element of a node's picture goes: netsnap lays out its own topology
//! (no Graphviz), in panels a page can show, collapse and expand on their own.
//!
//! - the overview panel: the pod namespaces and service namespaces as one box each,
//!   the bridges, the node, and its uplinks, overlay and other devices;
//! - one panel per pod namespace: pod → its interface → host veth → bridge, a row
//!   per pod interface;
//! - one panel per service namespace (chunked on huge nodes): each VIP and its
//!   endpoints (on a huge node, only a faulty service's endpoints are drawn; the
//!   others are counted in the VIP's label).
//!
//! Shapes sit in fixed columns and rows, so no two overlap by construction (the unit
//! tests check it) and the same graph always gives the same coordinates. Keys are the
//! graph's node keys ([`crate::graph::GNode::key`]); subjects are the finding subjects
//! that name a shape (`pod ns/name`, `link cni0`, `service ns/svc:port`, `node`), so
//! [`Picture::resolve`] can place a finding in the picture.

pub mod cluster;
mod node;
mod services;
pub mod svg;
#[cfg(test)]
mod tests;

use crate::graph::NodeGraph;
use crate::model::Model;
use std::collections::BTreeMap;

/// Pixels of one row and the gap between shapes.
pub const ROW: i32 = 34;
pub const SHAPE_H: i32 = 24;
pub const MARGIN: i32 = 12;
/// Above this many endpoints on a node, only faulty services draw theirs.
pub const MAX_DRAWN_ENDPOINTS: usize = 2_000;
/// Services per panel (a namespace with more is split).
pub const SERVICES_PER_PANEL: usize = 400;
/// A node with at most this many pods and VIPs opens every panel.
pub const SMALL_NODE: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
    fn right(&self) -> i32 {
        self.x + self.w
    }
    fn mid_y(&self) -> i32 {
        self.y + self.h / 2
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Node,
    Pod,
    Netns,
    PodIf,
    HostVeth,
    Bridge,
    Uplink,
    Overlay,
    Device,
    MissingPeer,
    Vip,
    Endpoint,
    /// A namespace of pods or services in the overview (opens its panel).
    Group,
    /// A node's pod CIDRs in the cluster overview.
    Cidr,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Pod => "pod",
            Kind::Netns => "netns",
            Kind::PodIf => "podif",
            Kind::HostVeth => "hostveth",
            Kind::Bridge => "bridge",
            Kind::Uplink => "uplink",
            Kind::Overlay => "overlay",
            Kind::Device => "device",
            Kind::MissingPeer => "missing",
            Kind::Vip => "vip",
            Kind::Endpoint => "endpoint",
            Kind::Group => "group",
            Kind::Cidr => "cidr",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub kind: Kind,
    /// The graph key (or `group:…` for an overview box).
    pub key: String,
    pub label: String,
    /// Second line (address, kind, count).
    pub detail: String,
    pub rect: Rect,
    /// Down, dangling, or the subject of a finding.
    pub faulty: bool,
    /// Finding subjects that name this shape.
    pub subjects: Vec<String>,
    /// For a group box: the index of the panel it stands for.
    pub panel: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    Veth,
    Port,
    Route,
    Uplink,
    Balances,
}

impl WireKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WireKind::Veth => "veth",
            WireKind::Port => "port",
            WireKind::Route => "route",
            WireKind::Uplink => "uplink",
            WireKind::Balances => "balances",
        }
    }
}

/// A line from the right edge of one shape to the left edge of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    pub from: usize,
    pub to: usize,
    pub kind: WireKind,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    /// `pods`, `services` or `overview`.
    pub role: &'static str,
    pub title: String,
    pub width: i32,
    pub height: i32,
    pub shapes: Vec<Shape>,
    pub wires: Vec<Wire>,
    /// Shown expanded at first (faulty, or a small node).
    pub open: bool,
    /// What was left out (endpoints counted, not drawn).
    pub note: Option<String>,
}

impl Panel {
    pub(crate) fn new(role: &'static str, title: String) -> Panel {
        Panel {
            role,
            title,
            ..Panel::default()
        }
    }

    pub(crate) fn push(&mut self, s: Shape) -> usize {
        self.width = self.width.max(s.rect.right() + MARGIN);
        self.height = self.height.max(s.rect.y + s.rect.h + MARGIN);
        self.shapes.push(s);
        self.shapes.len() - 1
    }

    pub(crate) fn wire(&mut self, from: usize, to: usize, kind: WireKind) {
        self.wires.push(Wire { from, to, kind });
    }

    pub fn faulty(&self) -> usize {
        self.shapes.iter().filter(|s| s.faulty).count()
    }

    /// The two end points of a wire (right-middle of `from`, left-middle of `to`).
    pub fn ends(&self, w: &Wire) -> ((i32, i32), (i32, i32)) {
        let (a, b) = (&self.shapes[w.from].rect, &self.shapes[w.to].rect);
        ((a.right(), a.mid_y()), (b.x, b.mid_y()))
    }
}

/// Where a shape is: panel index (0 is the overview) and shape index.
pub type ShapeRef = (usize, usize);

/// The whole picture of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub panels: Vec<Panel>,
}

impl Picture {
    /// Lays out a node (see the module doc).
    /// `subjects`: the subjects of the node's findings (a huge node draws the
    /// endpoints of the services they name only).
    pub fn of(model: &Model, graph: &NodeGraph, subjects: &[&str]) -> Picture {
        let mut pods = node::pod_panels(model, graph);
        let named = services::named_services(graph, subjects);
        let services = services::service_panels(graph, model, &named);
        let overview = node::overview(model, graph, &pods, &services);
        let mut panels = vec![overview];
        panels.append(&mut pods);
        panels.extend(services);
        let small = panels
            .iter()
            .flat_map(|p| &p.shapes)
            .filter(|s| matches!(s.kind, Kind::Pod | Kind::Vip))
            .count()
            <= SMALL_NODE;
        for p in &mut panels {
            p.open = small || p.role == "overview" || p.faulty() > 0;
        }
        let mut picture = Picture { panels };
        picture.mark_faulty(&[]);
        picture
    }

    /// Every shape a finding subject names: exactly, else the longest shape subject
    /// that starts it at a word boundary (`pod a/b (eth0)` → `pod a/b`), else every
    /// shape subject it starts followed by `:` (`service ns/svc` → its ports).
    pub fn resolve(&self, subject: &str) -> Vec<ShapeRef> {
        let index = self.subject_index();
        resolve_in(&index, subject)
    }

    /// Subject → shapes.
    pub fn subject_index(&self) -> BTreeMap<&str, Vec<ShapeRef>> {
        let mut index: BTreeMap<&str, Vec<ShapeRef>> = BTreeMap::new();
        for (pi, p) in self.panels.iter().enumerate() {
            for (si, s) in p.shapes.iter().enumerate() {
                for subj in &s.subjects {
                    index.entry(subj.as_str()).or_default().push((pi, si));
                }
            }
        }
        index
    }

    /// Marks the shapes of every subject faulty, and the group boxes of their panels.
    pub fn mark_faulty(&mut self, refs: &[ShapeRef]) {
        for &(p, s) in refs {
            self.panels[p].shapes[s].faulty = true;
            self.panels[p].open = true;
        }
        let faulty: Vec<usize> = self.panels.iter().map(Panel::faulty).collect();
        for s in &mut self.panels[0].shapes {
            if let Some(p) = s.panel.filter(|&p| faulty[p] > 0) {
                s.faulty = true;
                let base = s.detail.split(", ").next().unwrap_or_default().to_string();
                s.detail = format!("{base}, {} faulty", faulty[p]);
            }
        }
    }
}

/// A shape without subjects, not faulty.
pub(crate) fn shape(kind: Kind, key: String, label: String, detail: String, rect: Rect) -> Shape {
    Shape {
        kind,
        key,
        label,
        detail,
        rect,
        faulty: false,
        subjects: Vec::new(),
        panel: None,
    }
}

/// A shape's box at column `x`, `w` wide, from `y` down `rows` rows.
pub(crate) fn row_rect(x: i32, w: i32, y: i32, rows: i32) -> Rect {
    Rect {
        x,
        y,
        w,
        h: rows.max(1) * ROW - (ROW - SHAPE_H),
    }
}

/// [`Picture::resolve`] on an index built once.
pub fn resolve_in(index: &BTreeMap<&str, Vec<ShapeRef>>, subject: &str) -> Vec<ShapeRef> {
    if let Some(r) = index.get(subject) {
        return r.clone();
    }
    let boundaries = subject
        .char_indices()
        .filter(|&(_, c)| matches!(c, ' ' | '(' | ',' | ';'))
        .map(|(i, _)| i)
        .rev();
    for end in boundaries {
        if let Some(r) = index.get(subject[..end].trim_end()) {
            return r.clone();
        }
    }
    let prefix = format!("{subject}:");
    index
        .range(prefix.as_str()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .flat_map(|(_, r)| r.iter().copied())
        .collect()
}

/// A label cut to `max` characters (the full text stays in the tooltip).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
