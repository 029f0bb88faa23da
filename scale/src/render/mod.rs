//! One module per source format. Each renders from the [`Plan`](crate::Plan) alone.

pub mod conntrack;
pub mod host;
pub mod iptables;
pub mod ipvs;
pub mod netns;
pub mod nft;
