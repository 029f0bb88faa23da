//! Stage 3: the survey, from the node netns: the node's links and the nsid of every
//! candidate (RTM_GETNSID with its fd) → which netns are the node's pods.

use super::discover::{Candidate, Discovered};
use super::results::{recv, Results};
use super::{Ctx, Msg};
use crate::deadline::budgets;
use crate::sys::netns_thread::{NetnsError, NetnsTarget};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

pub(super) struct Survey {
    /// nsid (seen from the node) per candidate id.
    pub nsids: HashMap<String, Option<i32>>,
    /// link_netnsid of veths in the node netns.
    pub veth_peer_nsids: HashSet<i32>,
    pub error: Option<String>,
}

impl Survey {
    /// A survey that found nothing, and why.
    pub fn failed(reason: impl Into<String>) -> Survey {
        Survey {
            nsids: HashMap::new(),
            veth_peer_nsids: HashSet::new(),
            error: Some(reason.into()),
        }
    }

    /// Which netns to capture: all of them, or with `--node-netns` the node and the
    /// netns with a veth peer in it.
    pub fn select<'d>(&self, ctx: &Ctx, discovered: &'d Discovered) -> Vec<&'d Candidate> {
        discovered
            .candidates
            .iter()
            .filter(|c| {
                c.is_root
                    || ctx.cfg.node_netns.is_none()
                    || self
                        .nsids
                        .get(&c.id)
                        .copied()
                        .flatten()
                        .is_some_and(|n| self.veth_peer_nsids.contains(&n))
            })
            .collect()
    }
}

/// Starts the survey thread and waits for it (everything else keeps running and
/// reporting meanwhile).
pub(super) fn run(
    ctx: &Arc<Ctx>,
    discovered: &Discovered,
    tx: &Sender<Msg>,
    rx: &Receiver<Msg>,
    results: &mut Results,
) -> Survey {
    if discovered.candidates.is_empty() {
        return Survey::failed("survey did not finish before the deadline");
    }
    if let Some(failed) = start(ctx, discovered, tx) {
        return failed;
    }
    loop {
        match recv(rx, &ctx.deadline).map(|m| results.take(m)) {
            Some(Some(Msg::Survey(s))) => return s,
            Some(_) => {}
            None => return Survey::failed("survey did not finish before the deadline"),
        }
    }
}

/// Spawns the survey thread; a survey that could not start is returned at once.
fn start(ctx: &Arc<Ctx>, discovered: &Discovered, tx: &Sender<Msg>) -> Option<Survey> {
    let list: Vec<(String, NetnsTarget)> = discovered
        .candidates
        .iter()
        .map(|c| (c.id.clone(), c.target.clone()))
        .collect();
    let ctx2 = Arc::clone(ctx);
    let tx2 = tx.clone();
    let work = Box::new(move |entered: Result<(), NetnsError>| {
        let s = match entered {
            Ok(()) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| survey(&ctx2, &list)))
                    .unwrap_or_else(|_| Survey::failed("internal error in the survey"))
            }
            Err(e) => Survey::failed(e.to_string()),
        };
        let _ = tx2.send(Msg::Survey(s));
    });
    match ctx.sys.spawn_in_netns("survey".into(), &ctx.node, work) {
        Ok(()) => None,
        Err(_) => Some(Survey::failed("could not start the survey thread")),
    }
}

/// Node links and the nsid of every candidate, read from the node netns.
fn survey(ctx: &Ctx, candidates: &[(String, NetnsTarget)]) -> Survey {
    let mut s = Survey {
        nsids: HashMap::new(),
        veth_peer_nsids: HashSet::new(),
        error: None,
    };
    let mut rtnl = match ctx.sys.rtnetlink() {
        Ok(r) => r,
        Err(e) => return Survey::failed(e.to_string()),
    };
    match rtnl.links(ctx.deadline.budget(budgets::NETLINK_DUMP)) {
        Ok(d) => {
            for l in d.messages {
                if l.kind.as_deref() == Some("veth") {
                    if let Some(n) = l.link_netnsid {
                        s.veth_peer_nsids.insert(n);
                    }
                }
            }
        }
        Err(e) => s.error = Some(format!("node links: {e}")),
    }
    for (id, target) in candidates {
        if ctx.deadline.expired() {
            break;
        }
        let budget = ctx.deadline.budget(budgets::NETLINK_DUMP);
        if let Ok(n) = rtnl.nsid_of(target, budget) {
            s.nsids.insert(id.clone(), n);
        }
    }
    s
}
