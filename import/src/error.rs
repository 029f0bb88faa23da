//! What can go wrong while importing. Every error names the input (and, where there
//! is one, the line); nothing an input contains can make the importer panic.

use netsnap_schema::{ReadError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// An archive broke a reader limit or is corrupt (the bundle reader's own checks).
    #[error(transparent)]
    Archive(#[from] ReadError),
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("{path} line {line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("nothing to import: {0}")]
    Nothing(String),
    #[error(transparent)]
    Write(#[from] WriteError),
}
