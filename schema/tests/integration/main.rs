//! The integration tests of this crate, one module per concern, in one test binary
//! (one link step instead of one per file; ripgrep keeps its tests the same way).

mod common;
mod reader_errors;
mod roundtrip;
