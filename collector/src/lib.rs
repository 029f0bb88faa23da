//! netsnap-collect: capture a Kubernetes node's network state, read-only, into one
//! bundle (format v1 of `netsnap-schema`).
//!
//! The binary (`main.rs`) only parses the command line, installs the signal handling
//! and prints the summary; everything else lives here so that the pure parts can be
//! unit-tested without root.
//!
//! Layout: [`capture`] runs the stages (discover, lanes, survey, identity, netns pool,
//! assemble), [`sources`] holds what each source reads, [`sys`] everything that
//! touches the system, behind the narrow [`sys::Sys`] trait; [`source`] is the catalog
//! (the schema's registry) and the records on their way to the bundle.
//!
//! Threading model: every network namespace is read from its own short-lived OS
//! thread that `setns`es first and exits afterwards ([`sys::netns_thread`]); nothing
//! that switched namespaces is ever reused. Node-wide sources run on a few such threads
//! switched into the node netns, each source with its own timeout inside one global
//! deadline ([`deadline`]). Results flow back over a channel to the thread that owns
//! the bundle writer ([`capture`]).

pub mod capture;
pub mod cli;
pub mod deadline;
pub mod output;
pub mod source;
pub mod sources;
pub mod summary;
pub mod sys;
pub mod time;
