//! Lab and end-to-end test helpers.
//!
//! [`lab`] builds a simulated Kubernetes node out of real network namespaces
//! (see `src/lab/README.md` for the `scripts/lab` command).

pub mod bare_node;
pub mod collect_support;
pub mod collector;
pub mod fuzz_bodies;
pub mod hostile;
pub mod lab;
