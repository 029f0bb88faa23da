//! What a Cilium agent says it load-balances, from `cilium-dbg` when the node has it:
//! `cilium/service-list.json` (`cilium-dbg service list -o json`: each service's
//! frontend and backends) and `cilium/bpf-lb-list.json` (`cilium-dbg bpf lb list -o
//! json`: the BPF maps the datapath reads). A node without kube-proxy has no other
//! record of its services.
//!
//! `cilium-dbg` usually lives in the cilium-agent container, not on the host: then
//! both records are `unavailable` and say how to add the listings by hand. The tool is
//! looked up like every node tool (fixed system directories under the host root,
//! never `PATH`); its output is kept as it printed it, capped in memory.

use crate::deadline::{budgets, Deadline};
use crate::source::Captured;
use crate::sys::tools::check_status;
use crate::sys::Sys;
use netsnap_schema::registry::SourceId;
use netsnap_schema::{layout, SourceStatus};

/// The agent's debug CLI (called `cilium` before Cilium 1.15, a name the cluster-wide
/// `cilium` CLI now takes: only `cilium-dbg` is trusted to be the agent's).
const TOOL: &str = "cilium-dbg";

/// `cilium/service-list.json`.
pub fn capture_services(sys: &dyn Sys, deadline: &Deadline) -> Captured {
    let args = ["service", "list", "-o", "json"];
    listing(
        sys,
        deadline,
        SourceId::CiliumServices,
        layout::CILIUM_SERVICES,
        &args,
    )
}

/// `cilium/bpf-lb-list.json`.
pub fn capture_bpf_lb(sys: &dyn Sys, deadline: &Deadline) -> Captured {
    let args = ["bpf", "lb", "list", "-o", "json"];
    listing(
        sys,
        deadline,
        SourceId::CiliumBpfLb,
        layout::CILIUM_BPF_LB,
        &args,
    )
}

fn listing(
    sys: &dyn Sys,
    deadline: &Deadline,
    id: SourceId,
    path: &str,
    args: &[&str],
) -> Captured {
    let name = id.name();
    let tool = match sys.find_tool(TOOL) {
        Ok(t) => t,
        Err(e) => {
            return Captured::unavailable(
                name,
                format!(
                    "{e} (on a Cilium node it runs in the agent pod: `kubectl -n kube-system exec ds/cilium -c cilium-agent -- {TOOL} {}` and add the output as {path})",
                    args.join(" ")
                ),
            )
        }
    };
    match sys.run_tool_capture(&tool, args, deadline.budget(budgets::TOOL)) {
        Ok((out, stdout)) => match check_status(&tool, &out) {
            Ok(()) => Captured::bytes(name, path, SourceStatus::Ok, stdout),
            // The tool is there but the agent is not answering: what it said matters.
            Err(e) => Captured::failed(name, e.reason()),
        },
        Err(e) => Captured::failed(name, e.reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{FakeSys, FakeTool};

    fn run(sys: &FakeSys) -> Vec<Captured> {
        let d = Deadline::new(std::time::Duration::from_secs(30));
        vec![capture_services(sys, &d), capture_bpf_lb(sys, &d)]
    }

    #[test]
    fn without_the_tool_both_listings_are_unavailable_and_say_how_to_get_them() {
        let out = run(&FakeSys::default());
        assert_eq!(out.len(), 2);
        for c in &out {
            assert_eq!(c.record.status, SourceStatus::Unavailable);
            let e = c.record.error.as_deref().unwrap();
            assert!(e.contains("cilium-dbg not found"), "{e}");
            assert!(e.contains("kubectl -n kube-system exec ds/cilium"), "{e}");
        }
    }

    #[test]
    fn the_listings_are_kept_as_printed() {
        let sys = FakeSys::default().tool(
            TOOL,
            FakeTool {
                stdout: b"[]\n".to_vec(),
                ..FakeTool::default()
            },
        );
        let out = run(&sys);
        assert_eq!(out[0].record.status, SourceStatus::Ok);
        assert_eq!(out[0].record.path.as_deref(), Some(layout::CILIUM_SERVICES));
        assert_eq!(out[0].content_bytes(), Some(&b"[]\n"[..]));
        assert_eq!(out[1].record.path.as_deref(), Some(layout::CILIUM_BPF_LB));
    }

    #[test]
    fn an_agent_that_does_not_answer_fails_with_what_the_tool_said() {
        let sys = FakeSys::default().tool(
            TOOL,
            FakeTool {
                stderr: "Error: cannot connect to agent: dial unix /var/run/cilium/cilium.sock"
                    .into(),
                exit_code: 1,
                ..FakeTool::default()
            },
        );
        let out = run(&sys);
        assert_eq!(out[0].record.status, SourceStatus::Failed);
        let e = out[0].record.error.as_deref().unwrap();
        assert!(e.contains("cannot connect to agent"), "{e}");
    }
}
