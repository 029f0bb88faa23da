//! Parsers: one module per source format, each a pure function from text to a typed
//! model plus [`Coverage`] (what was and was not understood, with line numbers).
//!
//! Every parser has the shape `fn(path: &str, text: &str) -> Parsed<Model>`, where
//! `path` is the bundle path used in coverage and evidence. Parsers never panic and
//! never drop a line silently.

pub mod cilium;
pub mod cni;
pub mod conntrack;
pub mod coverage;
pub mod ct_stat;
pub mod ipset;
pub mod iptables;
pub mod ipvs;
pub mod kmsg;
pub mod nft;
pub mod resolv;
pub mod samples;
pub mod sysctl;
pub mod tokenize;

pub use coverage::{Coverage, Parsed, Unrecognised};
