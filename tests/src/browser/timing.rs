//! `netsnap-report-timing REPORT.html [RUNS]`: opens a `netsnap report` file in headless
//! Chromium RUNS times (default 5, a fresh page each time) and prints one line per run:
//! `ready_ms dom_content_loaded_ms load_ms` — `ready_ms` is the page's own mark, set
//! in the first frame after the load event (parsed, laid out, painted), as
//! `performance.now()` since navigation start. For scripts/bench-report; not a test.

use anyhow::{bail, Context, Result};
use netsnap_tests::browser::Browser;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        bail!("usage: netsnap-report-timing REPORT.html [RUNS]");
    };
    let runs: usize = args.get(1).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let path = std::fs::canonicalize(file).with_context(|| file.clone())?;
    let url = format!("file://{}", path.display());
    let b = Browser::start()?;
    for _ in 0..runs {
        b.goto("about:blank")?;
        b.goto(&url)?;
        let start = Instant::now();
        let ready = loop {
            let v = b.execute(
                "return document.documentElement.getAttribute('data-ready');",
                vec![],
            )?;
            if let Some(s) = v.as_str() {
                break s.parse::<f64>()?;
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("the report never marked itself ready");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let nav = b.execute(
            "const n = performance.getEntriesByType('navigation')[0]; return [n.domContentLoadedEventEnd, n.loadEventEnd];",
            vec![],
        )?;
        println!(
            "{ready:.0} {:.0} {:.0}",
            nav[0].as_f64().unwrap_or(f64::NAN),
            nav[1].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
