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
/// archive (on the rayon pool), while later entries are still being decompressed and
/// earlier ones hashed. If the bundle then fails verification, the parse results are
/// dropped with it: nothing parsed from an unverified bundle is ever used.
pub fn open_and_parse(path: &Path, limits: &ReadLimits) -> Result<(Bundle, Parsing), ReadError> {
    let parsing = Parsing::default();
    let bundle = rayon::in_place_scope(|scope| {
        Bundle::open_with(path, limits, &mut |entry, data| {
            parsing.start(scope, entry, data.clone())
        })
    })?;
    Ok((bundle, parsing))
}
