//! netsnap-redact: turns a bundle into one that can leave the company.
//!
//! Every IP address, MAC, hostname, pod, namespace and service name, pod UID, comment
//! word and kube-proxy chain hash is replaced by a consistent pseudonym derived from
//! a [`RedactKey`]: the same original gets the same pseudonym in every file and in
//! every bundle redacted with the same key, and the pseudonyms keep what the analyzer
//! needs (subnet structure and address classes, name equality, the shape of hashes
//! and UUIDs). The output is a valid format-v1 bundle that parses exactly like the
//! original. The [`RedactionMap`] (original → pseudonym) is returned to the caller,
//! who writes it *beside* the output and keeps it.
//!
//! Both binaries use this crate (`netsnap redact`, `netsnap-collect --redact`), so it
//! depends on the schema crate only.
//!
//! Modules: [`key`] (the secret), [`ip`], [`mac`], [`names`] (the pseudonym schemes),
//! [`allowlist`] (what is never pseudonymised), `scan`/`text` (finding and rewriting
//! values in any text), `sources` (per-format collection and rewriting), [`map`],
//! [`redact()`] (the two-phase transform) and [`files`] (key, map and output files, as
//! both command lines use them).

pub mod allowlist;
mod error;
pub mod files;
pub mod ip;
pub mod key;
pub mod mac;
pub mod map;
pub mod names;
pub mod pseudonyms;
pub mod redact;
mod scan;
mod sources;
mod text;

pub use error::RedactError;
pub use files::{
    default_map_path, load_or_create_key, redact_to_path, redact_writer, redacted_file_name,
    redacted_host_name,
};
pub use key::RedactKey;
pub use map::RedactionMap;
pub use pseudonyms::Pseudonyms;
pub use redact::{redact, Redactor, REDACTED_OPTION};
