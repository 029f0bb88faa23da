//! Errors of the redaction library.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("redaction key {path}: {source}")]
    KeyIo { path: String, source: io::Error },
    #[error("redaction key {path}: {reason}")]
    KeyFormat { path: String, reason: String },
    #[error("redaction key {path} already exists; refusing to overwrite it")]
    KeyExists { path: String },
    #[error("no random bytes for a redaction key: {0}")]
    Random(String),
    #[error("writing the redacted bundle: {0}")]
    Write(#[from] netsnap_schema::WriteError),
    #[error("redacted entry {path}: {source}")]
    Spool { path: String, source: io::Error },
    #[error("redaction map: {0}")]
    Map(#[from] serde_json::Error),
    #[error("redaction map {path}: {source}")]
    MapIo { path: String, source: io::Error },
    #[error("refusing to write the redaction map to {path}: {reason} (the map reverses the redaction; keep it beside the output, never inside a bundle)")]
    MapPlacement { path: String, reason: String },
    #[error("{0} already exists")]
    OutputExists(String),
    #[error("reading back the capture: {0}")]
    Read(#[from] netsnap_schema::ReadError),
}
