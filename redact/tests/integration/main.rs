//! The integration tests of this crate, one module per concern, in one test binary
//! (one link step instead of one per file; ripgrep keeps its tests the same way).

mod analyze_redacted;
mod cli_redact;
mod files_cli;
mod ip_props;
mod lab_redacted;
mod redact_bundle;
mod support;
