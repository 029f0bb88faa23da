//! netsnap bundle format v1.
//!
//! This crate owns everything both binaries must agree on: the serde types of every
//! structured source ([`model`]), the manifest ([`manifest`]), where each source lives
//! in a bundle ([`layout`]) and the one declaration of every source ([`registry`]), the deterministic streaming [`writer`] and the defensive
//! [`reader`] that treats every bundle as hostile input.

pub mod layout;
pub mod manifest;
pub mod model;
pub mod nft_priority;
pub mod reader;
pub mod registry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod time;
pub mod writer;

mod digest;
mod readahead;

pub use manifest::{
    ImportReport, ImportedFrom, ImportedInput, Manifest, SourceRecord, SourceStatus, Truncation,
    FORMAT_VERSION,
};
pub use reader::{Bundle, OnRead, ReadError, ReadLimits};
pub use writer::{BundleWriter, Spool, WriteError};
