//! netsnap analyzer: reads bundles offline, parses every source, builds the node graph
//! and flags what is broken. The pipeline is load → parse → model → graph → check →
//! render, one module per arrow:
//!
//! - [`evidence`]: where a fact comes from (bundle path, line, excerpt), cited by the
//!   model and the findings;
//! - [`load`]: open and verify a bundle (archive or directory);
//! - [`imported`]: other tools' bundles and pasted dumps, imported in memory;
//! - [`sources`]: run every parser ([`parse`]) in parallel, collect coverage;
//! - [`model`]: services, pods, the node, netfilter facts, conntrack aggregates;
//! - [`graph`]: netns, pods, links, VIPs and endpoints as a petgraph graph;
//! - [`trace`]: the packet-path engine (so far: the routing decision of a netns);
//! - [`check`]: the catalog of checks, findings with evidence;
//! - [`report`] and [`render`]: the report, printed as text, JSON, Markdown or dot, and
//!   `netsnap report`'s self-contained HTML (and Markdown) pages;
//! - [`layout`]: the node's picture laid out by netsnap (SVG for the report and
//!   `netsnap graph --format svg`);
//! - [`show`] and [`inspect`]: offline views of a bundle;
//! - [`diff`]: a semantic diff of two bundles, counters as rates;
//! - [`batch`]: many bundles in one run, analysed in parallel but bounded, streamed;
//! - [`cluster`]: several nodes as one cluster (node summaries, CLU checks).

pub mod batch;
pub mod check;
pub mod cluster;
pub mod diff;
pub mod evidence;
mod fx;
pub mod graph;
pub mod imported;
pub mod inspect;
pub mod layout;
pub mod load;
pub mod model;
pub mod parse;
pub mod render;
pub mod report;
pub mod show;
pub mod sources;
pub mod timings;
pub mod trace;
