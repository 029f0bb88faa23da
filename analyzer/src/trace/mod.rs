//! The packet-path engine (issue 12), after `model` and before `check`: it simulates one
//! packet at a time through the model, never the bundle files, the way the kernel
//! would. Stages: the routing decision ([`route`]); the packet and what netfilter makes
//! of it ([`packet`]); the rulesets ([`firewall`]): the iptables saves, run as x_tables
//! would ([`iptables`]), and the native nft ruleset ([`nft`]); the walk through the
//! node's netns ([`engine`]: the stack, veths and bridges, IPVS at LOCAL_IN and
//! LOCAL_OUT), what a trace answers ([`path`]) and what is asked ([`request`]). Every
//! decision names the rule and route it rests on, so a trace can be checked by hand and
//! against the lab's kernel.

pub mod cluster;
pub mod engine;
pub mod firewall;
pub mod iptables;
mod ipvs;
mod link;
pub mod nft;
mod overlay;
pub mod packet;
pub mod path;
pub mod reach;
pub mod request;
pub mod route;
mod stack;
#[cfg(test)]
mod sysctl_gap_tests;

use crate::report;
use netsnap_schema::Bundle;

/// Everything a trace needs from one bundle: parse, model, graph and rulesets.
pub struct Prepared {
    pub model: crate::model::Model,
    pub graph: crate::graph::NodeGraph,
    pub firewall: firewall::Firewall,
}

impl Prepared {
    pub fn new(bundle: &Bundle) -> Prepared {
        let (mut sources, model, graph) = report::prepare(bundle);
        let firewall = firewall::Firewall::take(&mut sources);
        Prepared {
            model,
            graph,
            firewall,
        }
    }

    /// The engine over this bundle.
    pub fn engine(&self, options: engine::Options) -> engine::Engine<'_> {
        engine::Engine::new(&self.model, &self.graph, self.firewall.rulesets(), options)
    }

    /// Traces what `ask` means.
    pub fn trace(&self, ask: &request::Ask) -> Result<Vec<request::Trace>, request::RequestError> {
        let requests = request::resolve(&self.model, ask)?;
        let engine = self.engine(engine::Options::default());
        Ok(requests.iter().map(|r| engine.trace(r)).collect())
    }
}
