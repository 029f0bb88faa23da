//! Stage 4: pod identity, on its own thread in parallel with the netns pool: cgroup
//! UIDs, `/var/log/pods`, and crictl when those leave a netns unidentified.

use super::discover::Candidate;
use super::pod_identity::{self, Crictl, PodLogs};
use super::{Ctx, Msg};
use netsnap_schema::registry::SourceId;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::Arc;

pub(super) struct Identities {
    pub cgroup_uids: HashMap<String, String>,
    pub logs: PodLogs,
    pub crictl: Crictl,
}

/// A candidate as the identity thread needs it: id, pids, is the node.
type IdentityCandidate = (String, Vec<u32>, bool);

/// Starts the identity thread when the index is wanted; whether it runs.
pub(super) fn start(ctx: &Arc<Ctx>, selected: &[&Candidate], tx: &Sender<Msg>) -> bool {
    if selected.is_empty() || !ctx.wants(SourceId::NetnsIndex.name()) {
        return false;
    }
    let cands: Vec<IdentityCandidate> = selected
        .iter()
        .map(|c| (c.id.clone(), c.pids.clone(), c.is_root))
        .collect();
    let ctx2 = Arc::clone(ctx);
    let tx2 = tx.clone();
    std::thread::Builder::new()
        .name("identity".into())
        .spawn(move || {
            let ids = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                identities(&ctx2, &cands)
            }))
            .unwrap_or_else(|_| Identities {
                cgroup_uids: HashMap::new(),
                logs: PodLogs::default(),
                crictl: Crictl::Failed("internal error in identity resolution".into()),
            });
            let _ = tx2.send(Msg::Identity(ids));
        })
        .is_ok()
}

fn identities(ctx: &Ctx, cands: &[IdentityCandidate]) -> Identities {
    let logs = PodLogs::read(ctx.sys.host_root());
    let mut cgroup_uids = HashMap::new();
    for (id, pids, is_root) in cands {
        if *is_root {
            continue;
        }
        if let Some(uid) = pod_identity::uid_of_pids(Path::new("/proc"), pids) {
            cgroup_uids.insert(id.clone(), uid);
        }
    }
    let unresolved = cands.iter().any(|(id, _, is_root)| {
        !is_root && cgroup_uids.get(id).and_then(|u| logs.get(u)).is_none()
    });
    let crictl = if unresolved {
        pod_identity::run_crictl(&*ctx.sys, &ctx.deadline)
    } else {
        Crictl::NotRun("every netns identified from cgroups and /var/log/pods".into())
    };
    Identities {
        cgroup_uids,
        logs,
        crictl,
    }
}
