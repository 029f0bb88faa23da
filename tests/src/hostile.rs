//! The hostile-bundle corpus (`fixtures/hostile/`): bundles built to break a reader or
//! an analyzer. Generated here, never hand-edited, so every case is reviewable code.
//!
//! Each case says what a safe analyzer must do with it: refuse it (exit 2 with a
//! message naming the entry), or analyze what is sound and report the rest as a
//! BND/PRS finding.

use netsnap_schema::registry::{Format, Location, SourceSpec, SOURCES};
use netsnap_schema::testing::{manifest_json_for, raw_tar, zstd_bomb, zstd_compress, RawEntry};
use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a safe reader/analyzer must do with a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Refused as a whole; the error message contains this text (usually the entry).
    Refused(&'static str),
    /// Read; the analyzer reports this finding ID on this bundle path.
    Reported {
        id: &'static str,
        path: &'static str,
    },
}

pub struct Case {
    pub name: &'static str,
    pub what: &'static str,
    pub expect: Expect,
    build: fn() -> anyhow::Result<Vec<u8>>,
}

impl Case {
    /// The bundle bytes (`.netsnap.tar.zst`).
    pub fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        (self.build)()
    }

    pub fn file_name(&self) -> String {
        format!("{}.netsnap.tar.zst", self.name)
    }
}

const GIB: u64 = 1 << 30;
const RESOLV: &[u8] = b"nameserver 10.96.0.10\nsearch default.svc.cluster.local\n";

/// A well-formed archive of `files` (with a true manifest) followed by `extra` entries.
fn archive(files: &[(&str, &[u8])], extra: &[RawEntry]) -> anyhow::Result<Vec<u8>> {
    let mut entries = vec![RawEntry::file("manifest.json", &manifest_json_for(files))];
    entries.extend(files.iter().map(|(p, d)| RawEntry::file(p, d)));
    entries.extend_from_slice(extra);
    Ok(zstd_compress(&raw_tar(&entries, true))?)
}

fn with_extra(extra: RawEntry) -> anyhow::Result<Vec<u8>> {
    archive(&[("host/resolv.conf", RESOLV)], &[extra])
}

/// A bundle written by the real writer: sound container, hostile content.
fn written(files: &[(&str, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let spool = std::env::temp_dir();
    let mut w = BundleWriter::new(&spool);
    for (path, data) in files {
        let mut r = SourceRecord::new(*path, SourceStatus::Ok);
        r.path = Some((*path).into());
        w.add_bytes(r, data)?;
    }
    let m = Manifest::new(
        "0.0.0-hostile",
        "hostile",
        "6.18.0",
        "2026-11-21T00:00:00Z",
        1_795_219_200,
    );
    Ok(w.write_archive_to(m, Vec::new())?.1)
}

fn netns_index(ids: &[&str]) -> Vec<u8> {
    let entries: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"id":"{id}","inode":{},"dev":4,"is_root":{},"found_by":[{{"via":"proc","pid":{}}}],"nsid":{i}}}"#,
                4_026_531_840u64 + i as u64,
                i == 0,
                100 + i
            )
        })
        .collect();
    format!("{{\"netns\":[{}]}}\n", entries.join(",")).into_bytes()
}

fn veth(ifindex: u64, name: &str, peer: u64, nsid: i64, master: Option<u64>) -> String {
    let master = master
        .map(|m| format!(r#","master":{m}"#))
        .unwrap_or_default();
    format!(
        r#"{{"ifindex":{ifindex},"name":"{name}","kind":"veth","mtu":1500,"state":"up","link":{peer},"link_netnsid":{nsid}{master}}}"#
    )
}

/// Every case of the corpus, in a fixed order.
pub fn cases() -> Vec<Case> {
    use tar::EntryType as T;
    vec![
        Case {
            name: "path-traversal",
            what: "entry named ../x",
            expect: Expect::Refused("../x"),
            build: || with_extra(RawEntry::file("../x", b"evil")),
        },
        Case {
            name: "path-traversal-nested",
            what: "entry netns/../../etc/cron.d/x",
            expect: Expect::Refused("netns/../../etc/cron.d/x"),
            build: || with_extra(RawEntry::file("netns/../../etc/cron.d/x", b"evil")),
        },
        Case {
            name: "absolute-path",
            what: "entry /etc/cron.d/x",
            expect: Expect::Refused("/etc/cron.d/x"),
            build: || with_extra(RawEntry::file("/etc/cron.d/x", b"evil")),
        },
        Case {
            name: "symlink",
            what: "symlink entry",
            expect: Expect::Refused("symlink"),
            build: || with_extra(RawEntry::special("host/passwd", T::Symlink)),
        },
        Case {
            name: "hardlink",
            what: "hardlink entry",
            expect: Expect::Refused("hardlink"),
            build: || with_extra(RawEntry::special("host/passwd", T::Link)),
        },
        Case {
            name: "char-device",
            what: "character device entry",
            expect: Expect::Refused("character device"),
            build: || with_extra(RawEntry::special("host/null", T::Char)),
        },
        Case {
            name: "block-device",
            what: "block device entry",
            expect: Expect::Refused("block device"),
            build: || with_extra(RawEntry::special("host/sda", T::Block)),
        },
        Case {
            name: "fifo",
            what: "fifo entry",
            expect: Expect::Refused("fifo"),
            build: || with_extra(RawEntry::special("host/fifo", T::Fifo)),
        },
        Case {
            name: "duplicate-entry",
            what: "host/resolv.conf twice, second one different",
            expect: Expect::Refused("host/resolv.conf: appears twice"),
            build: || with_extra(RawEntry::file("host/resolv.conf", b"nameserver 6.6.6.6\n")),
        },
        Case {
            name: "unlisted-entry",
            what: "an entry the manifest does not list",
            expect: Expect::Refused("smuggled.sh"),
            build: || with_extra(RawEntry::file("smuggled.sh", b"#!/bin/sh\n")),
        },
        Case {
            name: "bomb-entry",
            what: "an entry announcing 2 GiB of zeros (compressed: a few KB)",
            expect: Expect::Refused("conntrack/nf_conntrack.txt"),
            build: || {
                let mut e = RawEntry::file("conntrack/nf_conntrack.txt", b"");
                e.header_size = Some(2 * GIB);
                let head = raw_tar(
                    &[RawEntry::file("manifest.json", &manifest_json_for(&[])), e],
                    false,
                );
                Ok(zstd_bomb(&head, 2 * GIB)?)
            },
        },
        Case {
            name: "bomb-padding",
            what: "a valid archive followed by 5 GiB of zero padding",
            expect: Expect::Refused("total limit"),
            build: || {
                let head = raw_tar(
                    &[RawEntry::file("manifest.json", &manifest_json_for(&[]))],
                    false,
                );
                Ok(zstd_bomb(&head, 5 * GIB)?)
            },
        },
        Case {
            name: "truncated-10",
            what: "zstd cut at 10 %",
            expect: Expect::Refused("decompression failed"),
            build: || truncated(10),
        },
        Case {
            name: "truncated-50",
            what: "zstd cut at 50 %",
            expect: Expect::Refused("decompression failed"),
            build: || truncated(50),
        },
        Case {
            name: "truncated-95",
            what: "zstd cut at 95 %",
            expect: Expect::Refused("decompression failed"),
            build: || truncated(95),
        },
        Case {
            name: "wrong-magic",
            what: "a gzip file",
            expect: Expect::Refused("bad magic"),
            build: || Ok(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not a bundle".to_vec()),
        },
        Case {
            name: "window-too-large",
            what: "zstd frame with a 1 GiB window",
            expect: Expect::Refused("zstd window"),
            build: || {
                let tar = raw_tar(
                    &[RawEntry::file("manifest.json", &manifest_json_for(&[]))],
                    true,
                );
                let mut enc = zstd::Encoder::new(Vec::new(), 3)?;
                enc.include_contentsize(false)?;
                enc.long_distance_matching(true)?;
                enc.window_log(30)?;
                enc.write_all(&tar)?;
                Ok(enc.finish()?)
            },
        },
        Case {
            name: "manifest-lies-sha256",
            what: "content differs from the manifest's sha256",
            expect: Expect::Refused("host/resolv.conf: sha256"),
            build: || {
                let manifest =
                    manifest_json_for(&[("host/resolv.conf", b"nameserver 10.96.0.10\n")]);
                Ok(zstd_compress(&raw_tar(
                    &[
                        RawEntry::file("manifest.json", &manifest),
                        RawEntry::file("host/resolv.conf", b"nameserver 10.96.6.66\n"),
                    ],
                    true,
                ))?)
            },
        },
        Case {
            name: "manifest-lies-size",
            what: "content shorter than the manifest says",
            expect: Expect::Refused("host/resolv.conf: 3 bytes"),
            build: || {
                let manifest = manifest_json_for(&[("host/resolv.conf", RESOLV)]);
                Ok(zstd_compress(&raw_tar(
                    &[
                        RawEntry::file("manifest.json", &manifest),
                        RawEntry::file("host/resolv.conf", b"x\n\n"),
                    ],
                    true,
                ))?)
            },
        },
        Case {
            name: "manifest-missing",
            what: "no manifest.json",
            expect: Expect::Refused("manifest.json is missing"),
            build: || {
                Ok(zstd_compress(&raw_tar(
                    &[RawEntry::file("host/resolv.conf", RESOLV)],
                    true,
                ))?)
            },
        },
        Case {
            name: "manifest-invalid-json",
            what: "manifest.json is not JSON",
            expect: Expect::Refused("manifest.json line 2"),
            build: || {
                Ok(zstd_compress(&raw_tar(
                    &[RawEntry::file(
                        "manifest.json",
                        b"{\"format_version\": 1,\n oops",
                    )],
                    true,
                ))?)
            },
        },
        Case {
            name: "unknown-format-version",
            what: "format_version 99",
            expect: Expect::Refused("format_version 99"),
            build: || {
                let mut m: serde_json::Value = serde_json::from_slice(&manifest_json_for(&[]))?;
                m["format_version"] = 99.into();
                Ok(zstd_compress(&raw_tar(
                    &[RawEntry::file("manifest.json", &serde_json::to_vec(&m)?)],
                    true,
                ))?)
            },
        },
        Case {
            name: "json-nesting-10000",
            what: "links.json nested 10,000 arrays deep",
            expect: Expect::Reported {
                id: "PRS001",
                path: "netns/root/links.json",
            },
            build: || {
                let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
                written(&[
                    ("netns/index.json", netns_index(&["root"])),
                    ("netns/root/links.json", deep.into_bytes()),
                ])
            },
        },
        Case {
            name: "line-100mb",
            what: "a single 100 MB line in host/kmsg.txt",
            expect: Expect::Reported {
                id: "PRS001",
                path: "host/kmsg.txt",
            },
            build: || written(&[("host/kmsg.txt", vec![b'A'; 100 << 20])]),
        },
        Case {
            name: "invalid-utf8",
            what: "invalid UTF-8 in every text source",
            expect: Expect::Reported {
                id: "PRS001",
                path: "netfilter/iptables-nft-save.txt",
            },
            build: || {
                let bad = b"\xff\xfe\xc3\x28 \x80\x80 garbage\n".to_vec();
                let text_sources = [
                    "host/resolv.conf",
                    "host/kmsg.txt",
                    "netfilter/iptables-nft-save.txt",
                    "netfilter/iptables-legacy-save.txt",
                    "netfilter/ipset.txt",
                    "ipvs/ip_vs.txt",
                    "conntrack/nf_conntrack.txt",
                    "conntrack/stat.txt",
                    "netns/root/resolv.conf",
                ];
                let mut files: Vec<(&str, Vec<u8>)> =
                    text_sources.iter().map(|p| (*p, bad.clone())).collect();
                files.push(("netns/index.json", netns_index(&["root"])));
                written(&files)
            },
        },
        Case {
            name: "nul-bytes",
            what: "NUL bytes inside iptables-save and resolv.conf",
            expect: Expect::Reported {
                id: "PRS001",
                path: "netfilter/iptables-nft-save.txt",
            },
            build: || {
                written(&[
                    (
                        "netfilter/iptables-nft-save.txt",
                        b"*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES\0-j DROP\nCOMMIT\n"
                            .to_vec(),
                    ),
                    ("host/resolv.conf", b"nameserver 10.96.0.10\0\n".to_vec()),
                ])
            },
        },
        Case {
            name: "numbers-out-of-range",
            what: "ifindex 2^40, port 70000, conntrack counters over u64",
            expect: Expect::Reported {
                id: "PRS001",
                path: "netns/root/links.json",
            },
            build: || {
                written(&[
                ("netns/index.json", netns_index(&["root"])),
                ("netns/root/links.json", format!("[{}]\n", veth(1 << 40, "veth0", 2, 0, None)).into_bytes()),
                ("netns/root/sockets.json", br#"[{"proto":"tcp","local":"0.0.0.0","port":70000}]"#.to_vec()),
                ("conntrack/nf_conntrack.txt", b"ipv4     2 tcp      6 99999999999999999999999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=99999 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=99999 [ASSURED] mark=0 zone=0 use=2\n".to_vec()),
            ])
            },
        },
        Case {
            name: "veth-peer-is-itself",
            what: "a veth whose peer is its own netns and ifindex",
            expect: Expect::Reported {
                id: "LNK001",
                path: "netns/root/links.json",
            },
            build: || {
                written(&[
                    ("netns/index.json", netns_index(&["root"])),
                    (
                        "netns/root/links.json",
                        format!("[{}]\n", veth(5, "veth0", 5, 0, None)).into_bytes(),
                    ),
                ])
            },
        },
        Case {
            name: "link-cycles",
            what: "two veths enslaved to each other, each the other's peer, and a route via itself",
            expect: Expect::Reported {
                id: "LNK001",
                path: "netns/root/links.json",
            },
            build: || {
                written(&[
                ("netns/index.json", netns_index(&["root"])),
                ("netns/root/links.json", format!("[{},{}]\n", veth(5, "a", 6, 0, Some(6)), veth(6, "b", 5, 0, Some(5))).into_bytes()),
                ("netns/root/routes.json", br#"{"routes":[{"family":"inet","table":254,"dst":"default","gateway":"10.0.0.1","oif":5,"kind":"unicast","protocol":"static","scope":"universe"},{"family":"inet","table":254,"dst":"10.0.0.1/32","gateway":"10.0.0.1","oif":5,"kind":"unicast","protocol":"static","scope":"universe"}],"rules":[]}"#.to_vec()),
            ])
            },
        },
        Case {
            name: "netns-million",
            what: "1,000,000 netns in the index",
            expect: Expect::Reported {
                id: "PRS001",
                path: "netns/index.json",
            },
            build: || {
                let ids: Vec<String> = (0..1_000_000).map(|i| format!("ino-{i}")).collect();
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                written(&[("netns/index.json", netns_index(&refs))])
            },
        },
        Case {
            name: "malformed-every-source",
            what: "every registered source, malformed for its format (from the registry)",
            expect: Expect::Reported {
                id: "PRS001",
                path: MALFORMED_CNI,
            },
            build: || {
                let files = malformed_every_source();
                let refs: Vec<(&str, Vec<u8>)> =
                    files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
                written(&refs)
            },
        },
        Case {
            name: "empty-file",
            what: "a zero-byte file",
            expect: Expect::Refused("bad magic"),
            build: || Ok(Vec::new()),
        },
    ]
}

/// The netns and the CNI file name the malformed case puts its per-netns and
/// directory sources in.
const MALFORMED_NETNS: &str = "root";
const MALFORMED_CNI_FILE: &str = "10-malformed.conflist";
pub const MALFORMED_CNI: &str = "host/cni/10-malformed.conflist";

/// A malformed body in `format`: text with invalid UTF-8, NUL and a line no parser
/// knows; JSON cut off inside an object with a value of the wrong type.
pub fn malformed(format: Format) -> Vec<u8> {
    match format {
        Format::Text => b"\xff\xfe garbage \x00 -A\n\tnot a line any parser knows\n".to_vec(),
        Format::SchemaJson => br#"{"netns": [{"id": 7, "ifindex": "x", "#.to_vec(),
        Format::ToolJson => br#"{"nftables": [{"plugins": [{"type": 7}, {"mtu": "#.to_vec(),
    }
}

/// Where the malformed case stores `spec`'s one file.
pub fn malformed_path(spec: &SourceSpec) -> String {
    match spec.location {
        Location::File(path) => path.to_string(),
        Location::PerNetns(_) => spec.id.netns_path(MALFORMED_NETNS).unwrap_or_default(),
        Location::Dir(_) => spec.id.dir_path(MALFORMED_CNI_FILE).unwrap_or_default(),
    }
}

/// One malformed file for every registered source: a source added to the registry
/// is in the corpus as soon as the corpus is regenerated.
fn malformed_every_source() -> Vec<(String, Vec<u8>)> {
    SOURCES
        .iter()
        .map(|spec| (malformed_path(spec), malformed(spec.format)))
        .collect()
}

fn truncated(percent: usize) -> anyhow::Result<Vec<u8>> {
    let conntrack: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("ipv4     2 udp      17 29 src=10.244.1.{} dst=10.96.0.10 sport={} dport=53 [UNREPLIED] src=10.244.1.5 dst=10.244.1.{} sport=53 dport={} mark=0 zone=0 use=2\n", i % 250, 1024 + i, i % 250, 1024 + i).into_bytes())
        .collect();
    let full = archive(
        &[
            ("host/resolv.conf", RESOLV),
            ("conntrack/nf_conntrack.txt", &conntrack),
        ],
        &[],
    )?;
    Ok(full[..full.len() * percent / 100].to_vec())
}

/// Where the corpus lives in the repository.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hostile")
}

/// Writes every case into `dir` (created if needed).
pub fn generate(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for case in cases() {
        std::fs::write(dir.join(case.file_name()), case.bytes()?)?;
    }
    Ok(())
}
