//! netsnap-scale: synthetic, format-true netsnap bundles of any size.
//!
//! A [`Spec`] (sizes, seed, proxy mode) becomes a [`Plan`] (services with endpoints,
//! pods with netns, veths and listeners, planted faults); renderers turn the plan into
//! each source's real format (`iptables-nft-save -c`, `nft -j`,
//! `/proc/net/nf_conntrack`, schema JSON …) and [`write_bundle`] writes them through
//! `netsnap_schema::BundleWriter`, with `<name>.planted.json` beside the bundle.
//! Same spec → byte-identical bundle.
//!
//! [`fixture`] builds the small hand-sized nodes the analyzer's tests and committed
//! fixtures use, with a knob per fault; so every fixture bundle comes from this crate.
//!
//! ```no_run
//! use netsnap_scale::{write_bundle, Output, Plan, Size, Spec};
//! let plan = Plan::new(&Spec::preset(Size::Medium)).unwrap();
//! let mut save = Vec::new();
//! plan.write_iptables_save(&mut save).unwrap(); // parser input for a bench
//! write_bundle(&plan, &Output::Archive("medium.netsnap.tar.zst".into())).unwrap();
//! ```

mod bundle;
pub mod fixture;
mod plan;
mod render;
mod rng;
mod spec;
pub mod time;

pub use bundle::{write as write_bundle, Counts, Output, Planted, Written};
pub use plan::{
    DanglingVeth, Plan, PlantedFault, Pod, Service, CLUSTER_CIDR, CLUSTER_DNS, NODE_IP,
    SERVICE_CIDR,
};
pub use spec::{ProxyMode, Size, Spec};

use std::io::{self, Write};

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error("{0}")]
    Spec(String),
    #[error("rendering {path}: {source}")]
    Render { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Write(#[from] netsnap_schema::WriteError),
    #[error("encoding planted.json: {0}")]
    Json(serde_json::Error),
}

/// Each source of the plan on its own, for parser benchmarks and tests.
impl Plan {
    /// `netfilter/iptables-nft-save.txt`.
    pub fn write_iptables_save<W: Write>(&self, out: &mut W) -> io::Result<()> {
        render::iptables::write_v4(self, out)
    }

    /// `netfilter/ip6tables-nft-save.txt`.
    pub fn write_ip6tables_save<W: Write>(&self, out: &mut W) -> io::Result<()> {
        render::iptables::write_v6(self, out)
    }

    /// kube-proxy's nftables-mode table as `nft.json` holds it, whatever the plan's
    /// proxy mode.
    pub fn write_nft_kube_proxy<W: Write>(&self, out: &mut W) -> io::Result<()> {
        render::nft::write_kube_proxy(self, out)
    }

    /// `conntrack/nf_conntrack.txt`, streamed.
    pub fn write_conntrack<W: Write>(&self, out: &mut W) -> io::Result<()> {
        render::conntrack::write(self, out)
    }

    /// `conntrack/stat.txt`.
    pub fn conntrack_stat(&self) -> String {
        render::host::conntrack_stat(self)
    }

    /// `/proc/net/ip_vs` as kube-proxy's IPVS mode would leave it for these services.
    pub fn write_ip_vs<W: Write>(&self, out: &mut W) -> io::Result<()> {
        render::ipvs::write(self, out)
    }

    /// The resolv.conf of pod `k` (`netns/<id>/resolv.conf`).
    pub fn pod_resolv_conf(&self, k: usize) -> Option<String> {
        self.pods.get(k).map(render::host::pod_resolv)
    }

    /// `host/resolv.conf`.
    pub fn host_resolv_conf(&self) -> String {
        render::host::host_resolv()
    }
}
