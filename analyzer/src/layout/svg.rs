//! A [`Panel`] as SVG markup: for the HTML report (inline, styled by its CSS) and as a
//! standalone `.svg` (`netsnap graph --format svg`, the Markdown report's picture).

use super::{clip, Panel, Picture, MARGIN};
use std::fmt::Write;

/// Text escaped for XML and HTML, text and attribute values alike; characters XML
/// forbids (NUL and other C0 controls) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters of a label that fit a shape `w` pixels wide (10 px font).
fn fits(w: i32) -> usize {
    ((w - 8) / 6).max(4) as usize
}

/// The shapes and wires of a panel. Shape `i` gets the id `{prefix}{i}` and the
/// attributes `extra(i)` returns (already escaped).
pub fn body(p: &Panel, prefix: &str, extra: &dyn Fn(usize) -> String) -> String {
    let mut out = String::new();
    for w in &p.wires {
        let ((x1, y1), (x2, y2)) = p.ends(w);
        let mx = (x1 + x2) / 2;
        let _ = write!(
            out,
            "<path class=\"w w-{}\" d=\"M{x1} {y1}C{mx} {y1} {mx} {y2} {x2} {y2}\"/>",
            w.kind.as_str()
        );
    }
    for (i, s) in p.shapes.iter().enumerate() {
        let r = &s.rect;
        let (label, detail) = (clip(&s.label, fits(r.w)), clip(&s.detail, fits(r.w) + 2));
        let _ = write!(
            out,
            "<g id=\"{prefix}{i}\" class=\"sh k-{}{}\" data-key=\"{}\"{}><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\"/><text x=\"{}\" y=\"{}\">{}</text><text class=\"d\" x=\"{}\" y=\"{}\">{}</text>",
            s.kind.as_str(),
            if s.faulty { " faulty" } else { "" },
            esc(&s.key),
            extra(i),
            r.x, r.y, r.w, r.h,
            r.x + 4, r.y + 10, esc(&label),
            r.x + 4, r.y + 20, esc(&detail),
        );
        if label != s.label || detail != s.detail {
            let _ = write!(out, "<title>{}\n{}</title>", esc(&s.label), esc(&s.detail));
        }
        out.push_str("</g>");
    }
    out
}

/// Colours of the standalone SVG (the HTML report has its own stylesheet).
pub const STYLE: &str = "text{font:10px sans-serif;fill:#222}text.d{font-size:8.5px;fill:#555}\
rect{fill:#eef3fb;stroke:#6b86b3}.k-pod rect,.k-netns rect{fill:#e9f6ec;stroke:#4c9a5d}\
.k-bridge rect{fill:#fff4dc;stroke:#c49a2c}.k-vip rect{fill:#f1ecfb;stroke:#7a5fb5}\
.k-endpoint rect{fill:#f7f7f7;stroke:#999}.k-node rect{fill:#e6eef7;stroke:#335}\
.k-overlay rect{fill:#e3f5f7;stroke:#2b8a99}.k-group rect{fill:#fafafa;stroke:#888}\
.k-uplink rect{fill:#e8f4fd;stroke:#1f6fb2;stroke-width:2}\
.faulty rect{fill:#fde2e2;stroke:#c0392b;stroke-width:2}\
path.w{fill:none;stroke:#98a2b3}path.w-route{stroke-dasharray:4 3}path.w-balances{stroke:#b6a4dc}\
.k-missing rect{stroke-dasharray:4 2}";

/// The whole picture as one SVG document: every panel, one under the other.
pub fn standalone(pic: &Picture, title: &str) -> String {
    let width = pic
        .panels
        .iter()
        .map(|p| p.width)
        .max()
        .unwrap_or(100)
        .max(300);
    let mut out = String::new();
    let mut y = MARGIN + 14;
    let mut panels = String::new();
    for (pi, p) in pic.panels.iter().enumerate() {
        let _ = write!(
            panels,
            "<text x=\"{MARGIN}\" y=\"{y}\" style=\"font-weight:bold;font-size:13px\">{}</text>",
            esc(&p.title)
        );
        if let Some(n) = &p.note {
            let _ = write!(
                panels,
                "<text class=\"d\" x=\"{}\" y=\"{y}\">{}</text>",
                MARGIN + 400,
                esc(n)
            );
        }
        let _ = write!(panels, "<g transform=\"translate(0,{})\">", y + 4);
        panels.push_str(&body(p, &format!("p{pi}s"), &|_| String::new()));
        panels.push_str("</g>");
        y += p.height + 30;
    }
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" viewBox=\"0 0 {width} {y}\"><title>{}</title><style>{STYLE}</style>{panels}</svg>\n",
        esc(title)
    );
    out
}
