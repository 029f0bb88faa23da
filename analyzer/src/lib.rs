//! netsnap analyzer: reads bundles offline, parses every source, builds the node graph
//! and flags what is broken. The pipeline is load → parse → model → graph → check →
//! render, one module per arrow.

pub mod inspect;
pub mod load;
pub mod parse;
