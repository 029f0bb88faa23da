//! `netsnap report` in a real headless Chromium (chromedriver's WebDriver API): no
//! console error, no request leaves the file (no resource entry; the CSP blocks one
//! the test tries), a shape per pod, bridge and VIP of the demo capture, a click on a
//! finding highlights its subject and a click on the subject its findings, the filter
//! hides the other findings, a screenshot with real pixel variety; and hostile names
//! from a bundle stay text. Skipped with the reason without Chromium, unless
//! `NETSNAP_LAB=required`.

use super::report_html::{fixture, graph_keys, hostile_demo, render, HOSTILE_POD};
use netsnap_tests::browser::{self, Browser};
use netsnap_tests::collector::TempDir;
use netsnap_tests::notice;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// Opens `file` and waits for the page's ready mark (first frame after load).
fn open(b: &Browser, file: &Path) -> f64 {
    b.goto(&format!("file://{}", file.display())).unwrap();
    let start = Instant::now();
    loop {
        let v = b
            .execute(
                "return document.documentElement.getAttribute('data-ready');",
                vec![],
            )
            .unwrap();
        if let Some(ms) = v.as_str() {
            return ms.parse().unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the report never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn strings(v: Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

fn no_console_errors(b: &Browser) -> usize {
    let log = b.console().unwrap();
    let errors: Vec<_> = log.iter().filter(|(level, _)| level == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    log.len()
}

/// Distinct colours and the share of the commonest one.
fn pixel_variety(png_bytes: &[u8]) -> (usize, f64, u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
    for p in buf[..info.buffer_size()].chunks(px) {
        *counts.entry(&p[..3.min(px)]).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let top = counts.values().max().copied().unwrap_or(0);
    (
        counts.len(),
        top as f64 / total.max(1) as f64,
        info.width,
        info.height,
    )
}

#[test]
fn demo_report_in_chromium() {
    let Some(b) = browser::require() else { return };
    let dir = TempDir::new("report-browser").unwrap();
    let (pages, html) = render(&[fixture("demo")], false);
    let file = dir.path().join("demo.html");
    std::fs::write(&file, html).unwrap();
    let ready_ms = open(&b, &file);
    let entries = no_console_errors(&b);
    let resources = strings(
        b.execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .unwrap(),
    );
    assert!(resources.is_empty(), "requests: {resources:?}");

    // A shape per pod, bridge and VIP of the bundle's graph.
    let drawn = b
        .execute("return Array.from(document.querySelectorAll('.sh')).map(e => [e.getAttribute('class'), e.getAttribute('data-key')]);", vec![])
        .unwrap();
    let mut got = BTreeSet::new();
    for pair in drawn.as_array().unwrap() {
        let (class, key) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        for kind in ["pod", "bridge", "vip"] {
            if class.split(' ').any(|c| c == format!("k-{kind}")) {
                got.insert((kind, key.to_string()));
            }
        }
    }
    assert_eq!(got, graph_keys(&fixture("demo")));

    click_both_ways(&b, &pages);
    filter(&b);

    // The CSP is in force: the browser refuses a request the page tries.
    let blocked = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             document.addEventListener('securitypolicyviolation', e => done(e.effectiveDirective), {once: true});
             const i = new Image(); i.src = 'http://127.0.0.1:9/x.png'; document.body.appendChild(i);
             setTimeout(() => done('not blocked'), 5000);",
        )
        .unwrap();
    assert_eq!(blocked, json!("img-src"));

    let png_bytes = b.screenshot().unwrap();
    let (colours, top, w, h) = pixel_variety(&png_bytes);
    notice(&format!(
        "report_browser: demo ready in {ready_ms:.0} ms, {} shapes, {entries} console entries (none severe), screenshot {w}x{h}: {colours} colours, commonest {:.0} %",
        drawn.as_array().unwrap().len(),
        top * 100.0
    ));
    assert!(
        colours >= 16 && top < 0.9,
        "blank screenshot: {colours} colours, commonest {top}"
    );
}

/// Clicking a pod finding lights up its pod; clicking that pod lights up its findings.
fn click_both_ways(b: &Browser, pages: &netsnap_analyzer::render::page::Pages) {
    let n = &pages.nodes[0];
    let (i, f) = n
        .report
        .findings
        .iter()
        .enumerate()
        .find(|(_, f)| f.subject.starts_with("pod "))
        .expect("a pod finding in the demo");
    let pod = f.subject.trim_start_matches("pod ");
    b.click(&b.find(&format!("#n0f{i}")).unwrap()).unwrap();
    let lit = b
        .execute("return Array.from(document.querySelectorAll('.sh.hl')).map(e => [e.id, e.getAttribute('data-key'), e.textContent]);", vec![])
        .unwrap();
    let lit = lit.as_array().unwrap();
    assert!(
        !lit.is_empty(),
        "{} {}: nothing highlighted",
        f.id,
        f.subject
    );
    for s in lit {
        assert!(s[1].as_str().unwrap().starts_with("pod:"), "{s}");
        assert!(s[2].as_str().unwrap().starts_with(pod), "{s} is not {pod}");
    }
    let shape = lit[0][0].as_str().unwrap().to_string();
    b.click(&b.find(&format!("#{shape}")).unwrap()).unwrap();
    let findings = strings(b.execute("return Array.from(document.querySelectorAll('.finding.hl')).map(e => e.getAttribute('data-subject'));", vec![]).unwrap());
    assert!(findings.contains(&f.subject), "{findings:?}");
    assert!(
        findings.iter().all(|s| s.starts_with(&f.subject)),
        "{findings:?}"
    );
}

/// Typing an ID into the filter leaves only that ID's findings visible.
fn filter(b: &Browser) {
    let input = b.find("#filter").unwrap();
    b.send_keys(&input, "LNK005").unwrap();
    let visible = strings(b.execute("return Array.from(document.querySelectorAll('.finding')).filter(e => !e.hidden).map(e => e.getAttribute('data-id'));", vec![]).unwrap());
    assert!(
        !visible.is_empty() && visible.iter().all(|id| id == "LNK005"),
        "{visible:?}"
    );
    b.execute("const i = document.getElementById('filter'); i.value = ''; i.dispatchEvent(new Event('input'));", vec![]).unwrap();
}

#[test]
fn hostile_names_stay_text_in_chromium() {
    let Some(b) = browser::require() else { return };
    let dir = TempDir::new("report-browser-hostile").unwrap();
    let bundle = hostile_demo(dir.path());
    let (_, html) = render(&[bundle], true);
    let file = dir.path().join("hostile.html");
    std::fs::write(&file, html).unwrap();
    open(&b, &file);
    no_console_errors(&b);
    let v = b
        .execute("return [typeof window.__pwned, document.scripts.length, document.images.length, document.body.textContent.includes(arguments[0])];", vec![json!(HOSTILE_POD)])
        .unwrap();
    assert_eq!(
        v,
        json!(["undefined", 1, 0, true]),
        "[pwned, scripts, images, name shown as text]"
    );
}
