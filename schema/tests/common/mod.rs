//! Helpers shared by the schema tests: a sample bundle and a raw tar builder that can
//! write what the `tar` crate itself refuses to (`..`, absolute names, links, devices).
#![allow(dead_code)]

use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus};
use std::io::Write;

pub fn manifest() -> Manifest {
    Manifest::new(
        "0.0.0-test",
        "node-a",
        "6.18.0",
        "2026-11-21T00:00:00Z",
        1_795_219_200,
    )
}

pub fn record(name: &str, path: &str) -> SourceRecord {
    let mut r = SourceRecord::new(name, SourceStatus::Ok);
    r.path = Some(path.into());
    r
}

/// A writer holding a few typical sources, including one larger than the in-memory spool.
pub fn sample_writer(dir: &std::path::Path) -> BundleWriter {
    let mut w = BundleWriter::new(dir);
    w.add_bytes(
        record("iptables-nft-save", "netfilter/iptables-nft-save.txt"),
        b"*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
    )
    .unwrap();
    w.add_bytes(
        record("host/resolv.conf", "host/resolv.conf"),
        b"nameserver 10.96.0.10\n",
    )
    .unwrap();
    let mut spool = w.spool();
    for i in 0..60_000u32 {
        writeln!(
            spool,
            "ipv4     2 tcp      6 117 TIME_WAIT src=10.244.0.{} dst=10.96.0.1 sport={} dport=443",
            i % 250,
            i
        )
        .unwrap();
    }
    w.add_spooled(record("conntrack", "conntrack/nf_conntrack.txt"), spool)
        .unwrap();
    w.add_record(
        SourceRecord::new("ipvs", SourceStatus::Unavailable)
            .with_error("/proc/net/ip_vs: not found"),
    )
    .unwrap();
    w
}

#[derive(Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    /// Size written in the header (defaults to data length).
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
    pub fn kind(name: &str, kind: tar::EntryType) -> Self {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind,
            data: Vec::new(),
            header_size: None,
            link: Some(b"target".to_vec()),
        }
    }
}

/// A tar stream built header by header, bypassing the `tar` crate's path checks.
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..e.name.len()].copy_from_slice(&e.name);
            if let Some(link) = &e.link {
                gnu.linkname[..link.len()].copy_from_slice(link);
            }
        }
        header.set_entry_type(e.kind);
        header.set_size(e.header_size.unwrap_or(e.data.len() as u64));
        header.set_mode(0o600);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A manifest JSON listing the given (path, content) pairs with correct checksums.
pub fn manifest_json_for(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut m = manifest();
    for (path, data) in files {
        let mut r = record(path, path);
        r.bytes = data.len() as u64;
        r.sha256 = Some(netsnap_schema::writer::content_sha256(data));
        m.sources.push(r);
    }
    serde_json::to_vec(&m).unwrap()
}

/// A valid archive of the given files plus their manifest, then `extra` raw entries.
pub fn archive_with(files: &[(&str, &[u8])], extra: &[RawEntry]) -> Vec<u8> {
    let mut entries = vec![RawEntry::file("manifest.json", &manifest_json_for(files))];
    entries.extend(files.iter().map(|(p, d)| RawEntry::file(p, d)));
    entries.extend_from_slice(extra);
    zstd(&raw_tar(&entries))
}
