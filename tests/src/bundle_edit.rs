//! Puts into a collected bundle a source this kernel cannot give, as the collector
//! would have recorded it: the bundle is read with the schema crate, the source's
//! manifest record replaced (status ok, its content's size and sha256, a note saying
//! who wrote it), every other entry and record kept as they were, and the bundle
//! written again by the schema writer. Used for `/proc/net/ip_vs` (no IPVS in this
//! kernel): the IPVS lab renders it, the test places it.

use anyhow::{ensure, Context, Result};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{
    layout, Bundle, BundleWriter, Manifest, ReadLimits, SourceRecord, SourceStatus,
};
use std::path::Path;

/// The note on a source a test placed.
pub const PLACED_NOTE: &str = "placed in the bundle by the test: rendered, not read from a kernel";

/// Replaces (or adds) the node-wide source `source` with `content` at its bundle path
/// and rewrites `bundle` in place; returns the new manifest.
pub fn replace_source(bundle: &Path, source: SourceId, content: &[u8]) -> Result<Manifest> {
    let path = source
        .path()
        .with_context(|| format!("source {} has no single bundle path", source.name()))?;
    let b = Bundle::open(bundle, &ReadLimits::default())
        .with_context(|| format!("reading {}", bundle.display()))?;
    let spool_dir = bundle.parent().unwrap_or(Path::new("."));
    let mut w = BundleWriter::new(spool_dir);
    let mut placed = SourceRecord::new(source.name(), SourceStatus::Ok);
    for r in &b.manifest.sources {
        if r.name == source.name() && r.netns.is_none() {
            // Keep when the collector tried it.
            placed.started_ms = r.started_ms;
            placed.duration_ms = r.duration_ms;
            continue;
        }
        copy_record(&b, &mut w, r, &|_, _| None)?;
    }
    placed.path = Some(path.to_string());
    placed.note = Some(PLACED_NOTE.into());
    w.add_bytes(placed, content)?;
    let manifest = w.write_archive(b.manifest.clone(), bundle)?;
    // What the reader checks (sizes and digests against the manifest) must hold.
    let again = Bundle::open(bundle, &ReadLimits::default())?;
    ensure!(
        again.file(path) == Some(content),
        "{path} not in the rewritten bundle"
    );
    Ok(manifest)
}

/// A content edit for [`rewrite`]: bundle path and bytes → the new bytes, or `None`.
pub type Edit = dyn Fn(&str, &[u8]) -> Option<Vec<u8>>;

/// Writes a copy of the bundle `from` as the archive `to`, each content passed through
/// `edit` (bundle path, bytes → new bytes, or `None` to keep it) and the manifest's
/// hostname replaced when `hostname` is given; sizes and digests are recomputed by the
/// writer. For hostile-name cases made from a real capture.
pub fn rewrite(from: &Path, to: &Path, hostname: Option<&str>, edit: &Edit) -> Result<Manifest> {
    let b = Bundle::open(from, &ReadLimits::default())
        .with_context(|| format!("reading {}", from.display()))?;
    let mut w = BundleWriter::new(to.parent().unwrap_or(Path::new(".")));
    for r in &b.manifest.sources {
        copy_record(&b, &mut w, r, edit)?;
    }
    let mut manifest = b.manifest.clone();
    if let Some(h) = hostname {
        manifest.hostname = h.to_string();
    }
    Ok(w.write_archive(manifest, to)?)
}

/// Copies record `r` of `b` into `w`, its content passed through `edit`.
fn copy_record(b: &Bundle, w: &mut BundleWriter, r: &SourceRecord, edit: &Edit) -> Result<()> {
    match &r.path {
        Some(p) => {
            let data = b
                .file(p)
                .with_context(|| format!("{p} listed but not in the bundle"))?;
            let new = edit(p, data);
            w.add_bytes(r.clone(), new.as_deref().unwrap_or(data))?;
        }
        None => w.add_record(r.clone())?,
    }
    Ok(())
}

/// Writes a copy of the bundle `from` as the archive `to` without the sources `drop`
/// selects: their content left out, their records `unavailable` with `reason`, as a
/// producer that could not read them records them (an sos report without its kernel
/// plugin has no sysctls).
pub fn mark_unavailable(
    from: &Path,
    to: &Path,
    drop: &dyn Fn(&SourceRecord) -> bool,
    reason: &str,
) -> Result<Manifest> {
    let b = Bundle::open(from, &ReadLimits::default())
        .with_context(|| format!("reading {}", from.display()))?;
    let mut w = BundleWriter::new(to.parent().unwrap_or(Path::new(".")));
    let mut dropped = 0;
    for r in &b.manifest.sources {
        if !drop(r) {
            copy_record(&b, &mut w, r, &|_, _| None)?;
            continue;
        }
        dropped += 1;
        let mut gone =
            SourceRecord::new(r.name.clone(), SourceStatus::Unavailable).with_error(reason);
        gone.netns = r.netns.clone();
        w.add_record(gone)?;
    }
    ensure!(dropped > 0, "no source of {} matched", from.display());
    Ok(w.write_archive(b.manifest.clone(), to)?)
}

/// Places `/proc/net/ip_vs` text as `ipvs/ip_vs.txt` (source `ipvs`, status ok).
pub fn place_ipvs_text(bundle: &Path, text: &str) -> Result<Manifest> {
    debug_assert_eq!(SourceId::Ipvs.path(), Some(layout::IPVS));
    replace_source(bundle, SourceId::Ipvs, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_record_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("bundle-edit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("b.netsnap.tar.zst");
        let mut w = BundleWriter::new(&dir);
        let mut r = SourceRecord::new("host/resolv.conf", SourceStatus::Ok);
        r.path = Some("host/resolv.conf".into());
        w.add_bytes(r, b"nameserver 10.96.0.10\n").unwrap();
        w.add_record(
            SourceRecord::new(SourceId::Ipvs.name(), SourceStatus::Unavailable)
                .with_error("no IPVS on this node (ip_vs is not loaded)"),
        )
        .unwrap();
        let m = Manifest::new("0.0.0-test", "node", "6.1.0", "2026-01-01T00:00:00Z", 1);
        w.write_archive(m, &out).unwrap();

        let text = "IP Virtual Server version 1.2.1 (size=4096)\n";
        let m = place_ipvs_text(&out, text).unwrap();
        let b = Bundle::open(&out, &ReadLimits::default()).unwrap();
        assert_eq!(b.text(layout::IPVS).as_deref(), Some(text));
        assert_eq!(
            b.text("host/resolv.conf").as_deref(),
            Some("nameserver 10.96.0.10\n")
        );
        let rec = m.sources.iter().find(|r| r.name == "ipvs").unwrap();
        assert_eq!(rec.status, SourceStatus::Ok);
        assert_eq!(rec.error, None);
        assert_eq!(rec.bytes, text.len() as u64);
        assert_eq!(m.sources.iter().filter(|r| r.name == "ipvs").count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
