//! The integration tests of this crate, one module per concern, in one test binary
//! (one link step instead of one per file; ripgrep keeps its tests the same way).

mod analyze_fixtures;
mod cluster;
mod datapath;
mod diff;
mod inspect_cli;
mod model_services;
mod mutation_props;
mod parse_conntrack;
mod parse_iptables;
mod parse_ipvs;
mod parse_misc;
mod parse_nft;
mod regen_fixtures;
mod roundtrip_props;
mod trace_fixtures;
