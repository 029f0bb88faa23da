//! Builders for malformed bundles, for tests only (feature `test-support`): a raw tar
//! writer that writes what the `tar` crate itself refuses to (`..`, absolute names,
//! links, devices, lying sizes) and a plain zstd compressor.

use crate::manifest::{Manifest, SourceRecord, SourceStatus};
use std::io::Write;

/// One tar entry, written header by header.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    /// Size written in the header (defaults to the data length).
    pub header_size: Option<u64>,
    pub link: Option<Vec<u8>>,
}

impl RawEntry {
    pub fn file(name: &str, data: &[u8]) -> Self {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            header_size: None,
            link: None,
        }
    }

    /// An entry of another type (link, device, fifo …) pointing at `target`.
    pub fn special(name: &str, kind: tar::EntryType) -> Self {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind,
            data: Vec::new(),
            header_size: None,
            link: Some(b"target".to_vec()),
        }
    }
}

/// A tar stream of `entries`; with `end_blocks`, closed by the two zero blocks.
pub fn raw_tar(entries: &[RawEntry], end_blocks: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        if let Some(gnu) = header.as_gnu_mut() {
            let n = e.name.len().min(gnu.name.len());
            gnu.name[..n].copy_from_slice(&e.name[..n]);
            if let Some(link) = &e.link {
                let n = link.len().min(gnu.linkname.len());
                gnu.linkname[..n].copy_from_slice(&link[..n]);
            }
        }
        header.set_entry_type(e.kind);
        header.set_size(e.header_size.unwrap_or(e.data.len() as u64));
        header.set_mode(0o600);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    if end_blocks {
        out.resize(out.len() + 1024, 0);
    }
    out
}

/// `data` as one zstd frame with a content checksum.
pub fn zstd_compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = zstd::Encoder::new(Vec::new(), 3)?;
    enc.include_checksum(true)?;
    enc.write_all(data)?;
    enc.finish()
}

/// `prefix` followed by `zeros` zero bytes as one small zstd frame (a decompression bomb).
pub fn zstd_bomb(prefix: &[u8], zeros: u64) -> std::io::Result<Vec<u8>> {
    let mut enc = zstd::Encoder::new(Vec::new(), 1)?;
    enc.write_all(prefix)?;
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        enc.write_all(&block[..n])?;
        left -= n as u64;
    }
    enc.finish()
}

/// A fixed manifest for tests.
pub fn test_manifest() -> Manifest {
    Manifest::new(
        "0.0.0-test",
        "node-a",
        "6.18.0",
        "2026-11-21T00:00:00Z",
        1_795_219_200,
    )
}

/// A record for a source stored at `path` (name = path).
pub fn ok_record(path: &str) -> SourceRecord {
    let mut r = SourceRecord::new(path, SourceStatus::Ok);
    r.path = Some(path.into());
    r
}

/// Manifest JSON listing `files` with their true sizes and checksums.
pub fn manifest_json_for(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut m = test_manifest();
    for (path, data) in files {
        let mut r = ok_record(path);
        r.bytes = data.len() as u64;
        r.sha256 = Some(crate::writer::content_sha256(data));
        m.sources.push(r);
    }
    serde_json::to_vec_pretty(&m).unwrap_or_default()
}
