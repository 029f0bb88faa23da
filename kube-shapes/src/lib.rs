//! kube-proxy's rule shapes, as pure functions: chain names (hashed exactly as
//! kube-proxy hashes them), `--probability` values, the iptables ruleset both as
//! the `iptables-restore` input kube-proxy writes and as the `iptables-nft-save -c`
//! output a node shows afterwards, and IPVS mode's `/proc/net/ip_vs` ([`ipvs`]).
//!
//! Shared by the lab (which loads the restore form into real network namespaces) and
//! the scale generator (which writes the save form into synthetic bundles), so that
//! both speak the same shapes.

pub mod iptables;
pub mod ipvs;
mod names;

pub use iptables::{
    render_restore, write_save, CounterSlot, Protocol, SaveContent, SaveOptions, ServicePort,
    FILTER_CHAINS,
};
pub use names::{
    base32, hash_prefix, nft_endpoint_chain, nft_service_chain, probability, saved_probability,
    sep_chain, svc_chain,
};
