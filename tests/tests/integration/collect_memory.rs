//! Peak memory of a full capture while the node's conntrack table is full
//! (262,144 entries on the test machines): must stay under 64 MiB, because entries
//! are streamed from ctnetlink into the bundle, never held.

use anyhow::{ensure, Context, Result};
use netsnap_schema::layout;
use netsnap_schema::SourceStatus;
use netsnap_tests::collector::{self as c, RunOpts, TempDir};
use netsnap_tests::lab::{assert_no_leaks, require_lab, Lab};
use std::io::Write;

const MAX_RSS_KIB: u64 = 64 * 1024;

fn conntrack_count(lab: &Lab) -> Result<u64> {
    let out = lab.node(&["conntrack", "-C"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("conntrack -C")
}

#[test]
fn collect_full_conntrack_table_in_bounded_memory() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let mut lab = Lab::builder("collect-mem").pods(2).services(2).build()?;
    let fp = lab.footprint();
    let r = (|| -> Result<()> {
        lab.fault_conntrack_table_full()?;
        let before = conntrack_count(&lab)?;
        let dir = TempDir::new("mem")?;
        let out = dir.path().join("b.tar.zst");
        let node = lab.node_netns_path();
        let base = [
            "--node-netns",
            node.to_str().context("path")?,
            "--host-root",
            lab.host_root().to_str().context("path")?,
        ];
        let mut args = base.to_vec();
        args.extend(["-o", out.to_str().context("path")?]);
        // The release binary: what users run (a debug build adds ~10 MiB of code
        // pages and unoptimised buffers).
        let release = c::collector_bin_release()?;
        let run = c::run(
            &args,
            RunOpts {
                bin: Some(release),
                own_rss: true,
                ..Default::default()
            },
        )?;
        let after = conntrack_count(&lab)?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let size = std::fs::metadata(&out)?.len();
        let _ = writeln!(
            std::io::stderr().lock(),
            "collect_memory: {before} conntrack entries: capture {:.2}s wall, peak RSS {} KiB, bundle {} bytes",
            run.wall.as_secs_f64(),
            run.max_rss_kib,
            size
        );
        ensure!(
            run.max_rss_kib < MAX_RSS_KIB,
            "peak RSS {} KiB >= {MAX_RSS_KIB} KiB",
            run.max_rss_kib
        );
        let b = c::open_bundle(&out)?;
        let rec = c::record(&b, "conntrack/entries").context("record")?;
        ensure!(rec.status == SourceStatus::Ok, "{rec:?}");
        let text = b.text(layout::CONNTRACK_ENTRIES).context("entries")?;
        let n = text.lines().count() as u64;
        ensure!(
            n + 16 >= before.min(after) && n <= before.max(after) + 16,
            "{n} entries captured, conntrack -C said {before}/{after}"
        );
        drop(b);

        // With a cap, the true total is still recorded.
        let capped = dir.path().join("capped.tar.zst");
        let mut args = base.to_vec();
        args.extend([
            "--only",
            "conntrack",
            "--conntrack-limit",
            "1000",
            "-o",
            capped.to_str().context("path")?,
        ]);
        let run = c::run(&args, RunOpts::default())?;
        ensure!(run.status.success(), "collector failed: {}", run.stderr);
        let b = c::open_bundle(&capped)?;
        let rec = c::record(&b, "conntrack/entries").context("record")?;
        let t = rec.truncated.context("no truncation recorded")?;
        ensure!(t.kept == 1000, "{t:?}");
        ensure!(
            t.total + 16 >= before && t.total <= before + 16,
            "total {} vs {before}",
            t.total
        );
        ensure!(b.text(layout::CONNTRACK_ENTRIES).map(|s| s.lines().count()) == Some(1000));
        Ok(())
    })();
    lab.teardown()?;
    assert_no_leaks(&fp);
    r
}
