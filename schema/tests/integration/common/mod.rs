//! Helpers shared by the schema tests: a sample bundle and valid hand-made archives.
#![allow(dead_code)]

pub use netsnap_schema::testing::{manifest_json_for, raw_tar, zstd_compress, RawEntry};
use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus};
use std::io::Write;

pub fn manifest() -> Manifest {
    netsnap_schema::testing::test_manifest()
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

/// A valid archive of the given files plus their manifest, then `extra` raw entries.
pub fn archive_with(files: &[(&str, &[u8])], extra: &[RawEntry]) -> Vec<u8> {
    let mut entries = vec![RawEntry::file("manifest.json", &manifest_json_for(files))];
    entries.extend(files.iter().map(|(p, d)| RawEntry::file(p, d)));
    entries.extend_from_slice(extra);
    zstd(&raw_tar(&entries, true))
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd_compress(data).unwrap()
}
