//! What to generate: sizes, presets, proxy mode, seed.

use crate::ScaleError;
use std::fmt;
use std::str::FromStr;

/// Named sizes from issue 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// 10 services × 3 endpoints, 10 pods, 1,000 conntrack entries.
    Small,
    /// 1,000 services × 5 endpoints, 100 pods, 50,000 conntrack entries.
    Medium,
    /// 10,000 services × 10 endpoints, 250 pods, 1,000,000 conntrack entries.
    Large,
}

impl Size {
    pub const ALL: [Size; 3] = [Size::Small, Size::Medium, Size::Large];

    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Size {
    type Err = ScaleError;
    fn from_str(s: &str) -> Result<Size, ScaleError> {
        Size::ALL
            .into_iter()
            .find(|z| z.as_str() == s)
            .ok_or_else(|| ScaleError::Spec(format!("unknown size {s:?} (small, medium, large)")))
    }
}

/// How kube-proxy programs the services on the generated node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// iptables mode: KUBE-SERVICES/SVC/SEP chains in `iptables-nft-save`.
    Iptables,
    /// nftables mode: `table ip kube-proxy` in `nft.json` (vmap form); the iptables
    /// saves hold only kubelet's chains.
    Nftables,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Iptables => "iptables",
            ProxyMode::Nftables => "nftables",
        }
    }
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProxyMode {
    type Err = ScaleError;
    fn from_str(s: &str) -> Result<ProxyMode, ScaleError> {
        match s {
            "iptables" => Ok(ProxyMode::Iptables),
            "nftables" => Ok(ProxyMode::Nftables),
            _ => Err(ScaleError::Spec(format!(
                "unknown proxy mode {s:?} (iptables, nftables)"
            ))),
        }
    }
}

/// Everything that shapes a generated bundle. Same spec → same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Service ports (`ns/name:port`), including `default/kubernetes:https` and the two
    /// kube-dns ports.
    pub services: usize,
    /// Endpoints per service port (the planted no-endpoint service has none).
    pub endpoints: usize,
    /// Pod network namespaces on the node.
    pub pods: usize,
    /// Lines of `conntrack/nf_conntrack.txt`.
    pub conntrack: u64,
    pub seed: u64,
    pub proxy: ProxyMode,
    /// Plant the faults listed in `planted.json`.
    pub faults: bool,
    pub hostname: String,
    /// `small`, `medium`, `large` or `custom`, recorded in the manifest options.
    pub label: String,
    /// This node's place in a generated cluster (see [`crate::Plan`]): node `i` gets
    /// the `i`th pod CIDR block of 10.244.0.0/16, and every node of one spec programs
    /// the same services and endpoints. `None`: the lone node of issue 6 (unchanged).
    pub node_index: Option<u32>,
}

impl Spec {
    pub fn preset(size: Size) -> Spec {
        let (services, endpoints, pods, conntrack) = match size {
            Size::Small => (10, 3, 10, 1_000),
            Size::Medium => (1_000, 5, 100, 50_000),
            Size::Large => (10_000, 10, 250, 1_000_000),
        };
        Spec {
            services,
            endpoints,
            pods,
            conntrack,
            seed: 1,
            proxy: ProxyMode::Iptables,
            faults: true,
            hostname: format!("scale-{size}"),
            label: size.as_str().to_string(),
            node_index: None,
        }
    }

    /// Limits that keep the generated node coherent (addresses fit their CIDRs,
    /// tuples stay unique).
    pub fn validate(&self) -> Result<(), ScaleError> {
        let bad = |m: String| Err(ScaleError::Spec(m));
        if self.services < 4 {
            return bad(format!(
                "--services {} is below 4 (kubernetes, kube-dns ×2 and one more)",
                self.services
            ));
        }
        if self.services > 60_000 {
            return bad(format!(
                "--services {} is above 60,000 (the 10.96.0.0/16 service CIDR)",
                self.services
            ));
        }
        if self.endpoints == 0 || self.endpoints > 200 {
            return bad(format!("--endpoints {} is not in 1..=200", self.endpoints));
        }
        if self.pods == 0 || self.pods > 4_000 {
            return bad(format!("--pods {} is not in 1..=4000", self.pods));
        }
        // Source ports are unique per pod: 28,232 per pod (32768..=60999).
        if self.conntrack > 28_000 * self.pods as u64 {
            return bad(format!(
                "--conntrack {} is above 28,000 per pod ({} pods): tuples would repeat",
                self.conntrack, self.pods
            ));
        }
        if self.hostname.is_empty() {
            return bad("empty --hostname".into());
        }
        if let Some(i) = self.node_index {
            // Every node's block fits in 10.244.0.0/16, and there are pod addresses
            // on other nodes left for the endpoints.
            let blocks = (self.pods as u32 + 8).div_ceil(256).next_power_of_two();
            if (i + 1) * blocks > 255 {
                return bad(format!(
                    "--node-index {i} leaves no pod CIDR block of {blocks}×256 addresses in 10.244.0.0/16"
                ));
            }
        }
        Ok(())
    }
}
