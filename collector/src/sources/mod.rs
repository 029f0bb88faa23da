//! The per-source capture code: what each source reads and how it becomes a record.
//! Which thread runs it and when is decided by [`crate::capture`].

pub mod cilium;
pub mod cni;
pub mod conntrack;
pub mod host;
pub mod ipvs;
pub mod kmsg;
pub mod netfilter;
pub mod netns;
pub mod samples;
pub mod sockets;
pub mod sysctl;
