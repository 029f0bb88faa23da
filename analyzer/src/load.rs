//! Opening bundles with limits a user can raise from the command line.

use crate::sources::Parsing;
use clap::Args;
use netsnap_schema::{Bundle, ReadError, ReadLimits};
use std::path::Path;

/// Reader limits as command-line flags (defaults from [`ReadLimits::default`]).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest single bundle entry accepted, in bytes (uncompressed).
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_entry_bytes: Option<u64>,
    /// Largest total uncompressed bundle size accepted, in bytes.
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_total_bytes: Option<u64>,
    /// Most entries accepted in one bundle.
    #[arg(long, global = true, value_name = "N")]
    pub max_entries: Option<usize>,
    /// Largest zstd window accepted, as log2 of bytes.
    #[arg(long, global = true, value_name = "LOG2")]
    pub max_window_log: Option<u32>,
}

impl LimitArgs {
    pub fn limits(&self) -> ReadLimits {
        let d = ReadLimits::default();
        ReadLimits {
            max_entry_bytes: self.max_entry_bytes.unwrap_or(d.max_entry_bytes),
            max_total_bytes: self.max_total_bytes.unwrap_or(d.max_total_bytes),
            max_entries: self.max_entries.unwrap_or(d.max_entries),
            max_window_log: self.max_window_log.unwrap_or(d.max_window_log),
        }
    }
}

/// Opens and verifies one bundle (archive or directory).
pub fn open(path: &Path, limits: &ReadLimits) -> Result<Bundle, ReadError> {
    Bundle::open(path, limits)
}

/// Opens and verifies one bundle, parsing every entry as soon as it leaves the
/// archive (on the rayon pool; the conntrack table in pieces while it leaves it),
/// while later entries are still being decompressed and earlier ones hashed. If the bundle then fails verification, the parse results are
/// dropped with it: nothing parsed from an unverified bundle is ever used.
pub fn open_and_parse(path: &Path, limits: &ReadLimits) -> Result<(Bundle, Parsing), ReadError> {
    let parsing = Parsing::default();
    let bundle =
        rayon::in_place_scope(|scope| Bundle::open_with(path, limits, &mut parsing.feed(scope)))?;
    Ok((bundle, parsing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsnap_scale::fixture::{ct_snat, ct_tcp, Node};
    use netsnap_schema::layout::CONNTRACK_ENTRIES;

    /// A table of about 12 MB (three pieces and more): DNAT and SNAT flows whose keys
    /// recur all over it, and now and then a line that is not an entry, a blank line
    /// or a CRLF ending.
    fn big_table() -> Vec<String> {
        (0..70_000u32)
            .map(|i| {
                let (a, b) = ((i % 250) as u8, (i % 40) as u8);
                let src = format!("10.244.2.{a}");
                let sport = 30000 + (i % 20000) as u16;
                match i % 1000 {
                    // A flow first seen in the last piece.
                    _ if i == 65_432 => ct_tcp(
                        &src,
                        sport,
                        "10.96.200.1",
                        80,
                        "10.244.9.9",
                        8080,
                        "SYN_SENT",
                    ),
                    7 => format!("not an entry {i}"),
                    8 => String::new(),
                    9 => format!(
                        "{}\r",
                        ct_tcp(
                            &src,
                            sport,
                            "10.96.0.1",
                            443,
                            "10.0.0.1",
                            6443,
                            "ESTABLISHED"
                        )
                    ),
                    n if n % 3 == 0 => ct_snat(
                        &src,
                        sport,
                        &format!("1.1.{b}.1"),
                        443,
                        "192.168.1.10",
                        sport,
                    ),
                    _ => ct_tcp(
                        &src,
                        sport,
                        &format!("10.96.{b}.1"),
                        80,
                        &format!("10.244.1.{}", i % 60),
                        8080,
                        "ESTABLISHED",
                    ),
                }
            })
            .collect()
    }

    /// The conntrack table parsed piece by piece while the bundle is read gives what
    /// parsing it whole gives: the same aggregates, first lines and their text, and
    /// the same coverage (line numbers counted across pieces).
    #[test]
    fn conntrack_read_in_pieces_parses_as_when_read_whole() {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let mut node = Node::healthy("pieces");
        node.conntrack = big_table();
        let archive = tmp.path().join("pieces.netsnap.tar.zst");
        let (writer, manifest) = node.writer(tmp.path()).expect("fixture writer");
        writer.write_archive(manifest, &archive).expect("archive");
        let limits = ReadLimits::default();

        let (mut bundle, parsing) = open_and_parse(&archive, &limits).expect("opens");
        assert_eq!(
            bundle.file(CONNTRACK_ENTRIES),
            None,
            "read in pieces, not kept"
        );
        let streamed = parsing.finish_releasing(&mut bundle);
        let whole_bundle = open(&archive, &limits).expect("opens");
        assert!(whole_bundle
            .file(CONNTRACK_ENTRIES)
            .is_some_and(|t| t.len() > 9 << 20));
        let whole = crate::sources::parse_all(&whole_bundle);

        let flows = whole.conntrack.as_ref().expect("flows");
        assert!(
            flows.entries > 60_000 && flows.dnat.len() > 100 && flows.snat.len() > 10,
            "{} {} {}",
            flows.entries,
            flows.dnat.len(),
            flows.snat.len()
        );
        assert_eq!(
            format!("{:?}", streamed.conntrack),
            format!("{:?}", whole.conntrack)
        );
        let table = |s: &crate::sources::Sources<'_>| {
            s.coverage
                .iter()
                .find(|c| c.path == CONNTRACK_ENTRIES)
                .cloned()
        };
        let coverage = table(&whole).expect("coverage of the table");
        assert!(coverage.unrecognised.iter().any(|u| u.line > 60_000));
        let late = flows
            .dnat
            .iter()
            .find(|d| d.vip.to_string() == "10.96.200.1");
        assert_eq!(late.map(|d| d.first.0), Some(65_433));
        assert_eq!(table(&streamed), Some(coverage));
    }
}
