//! The hasher for the analyzer's hot maps (conntrack flow keys, chain names, routes
//! by prefix, flows by endpoint).
//!
//! SipHash, std's default, cost more than the rest of conntrack aggregation for a
//! million entries. foldhash is several times faster and, unlike a fixed-key hash
//! such as FxHash, seeded per process: keys come from bundles we did not write, and
//! crafted collisions must not turn a lookup table quadratic.

/// `HashMap<K, V, Fx>`: fast, randomly seeded.
pub type Fx = foldhash::fast::RandomState;
