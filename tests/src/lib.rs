//! Lab and end-to-end test helpers.
//!
//! [`lab`] builds a simulated Kubernetes node out of real network namespaces
//! (see `src/lab/README.md` for the `scripts/lab` command).

pub mod bare_node;
pub mod browser;
pub mod bundle_edit;
pub mod collect_support;
pub mod collector;
pub mod datapath_check;
pub mod deploy_support;
pub mod fuzz_bodies;
pub mod hostile;
pub mod hostile_import;
pub mod import_compare;
pub mod lab;

/// Prints a line that shows in the test output even when the test passes: the
/// harness captures `eprintln!`, not a direct write to stderr. For the figures a test
/// reports (agreement with the kernel, what it sampled).
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}
