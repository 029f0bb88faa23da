//! Orchestration: what runs where, in which order, and within which time. One module
//! per stage, in the order they start: `discover` → `lanes` → `survey` → `identity`
//! → `pool` (the netns pool) → `assemble`; `results` is the main thread's side (the
//! bundle writer, pending records, messages).
//!
//! ```text
//! main thread ── owns the BundleWriter, receives every result over one channel
//!   ├─ lane threads (switched into the node netns), started first:
//!   │    netfilter: iptables-{nft,legacy}-save, ip6tables-…
//!   │    nft+ipset+ipvs
//!   │    conntrack: entries (ctnetlink, streamed), stat, sysctls, host sysctls
//!   │    host: resolv.conf, kubelet resolv.conf, kmsg, CNI configuration
//!   ├─ discovery (main thread), then a survey thread in the node netns: node links and
//!   │  the nsid of every candidate (RTM_GETNSID with its fd) → which netns are pods
//!   ├─ identity thread: cgroup UIDs, /var/log/pods, crictl when needed
//!   └─ netns pool: one fresh thread per netns, at most N at once, node netns first;
//!      each sends links/addrs/routes (cheap, first), then neigh/sockets/sysctl/resolv
//! ```
//!
//! Every expected record is registered as pending when its work is planned; whatever
//! has not reported by the end of the capture phase is recorded as failed with the
//! reason, and the bundle is written anyway.

mod assemble;
pub mod discover;
mod hooks;
mod identity;
mod lanes;
pub mod pod_identity;
mod pool;
mod results;
mod survey;

use crate::deadline::Deadline;
use crate::source::{Captured, Selection};
use crate::sys::netns_thread::{self, NetnsTarget};
use crate::sys::{RealSys, Sys};
use crate::time::UtcTime;
use discover::Discovered;
use netsnap_schema::model::Sysctls;
use netsnap_schema::{BundleWriter, Manifest, Spool};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct Config {
    pub host_root: PathBuf,
    /// `--node-netns`: the netns treated as the node; only netns with a veth peer in
    /// it are then captured (its pods).
    pub node_netns: Option<PathBuf>,
    pub selection: Selection,
    pub conntrack_limit: u64,
    pub timeout: Duration,
    /// Where large sources spill (the output directory).
    pub spool_dir: PathBuf,
    /// Netns captured at once.
    pub parallelism: usize,
    /// `--samples`/`--interval`: counters read several times, for rates.
    pub sampling: crate::sources::samples::Sampling,
}

impl Config {
    pub fn default_parallelism() -> usize {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        (cpus * 2).clamp(2, 8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}", crate::source::io_reason(&format!("node netns {path}"), source))]
    NodeNetns {
        path: String,
        source: std::io::Error,
    },
}

/// The result of a capture: the filled writer and its manifest, ready to be written.
pub struct Capture {
    pub writer: BundleWriter,
    pub manifest: Manifest,
    pub netns_count: usize,
    pub pod_count: usize,
}

/// Messages from worker threads to the main thread.
enum Msg {
    Source(Box<Captured>),
    LaneDone,
    Survey(survey::Survey),
    Identity(identity::Identities),
    NetnsDone(pool::NetnsDone),
    NodeHints(NodeHints),
}

/// Facts the lanes learn on the way, for the assembled sources.
#[derive(Default)]
struct NodeHints {
    ct_sysctl: Option<Result<Sysctls, String>>,
    legacy4: Option<Vec<String>>,
    legacy6: Option<Vec<String>>,
    ip_vs: Option<bool>,
}

impl NodeHints {
    /// Takes what `other` knows.
    fn merge(&mut self, other: NodeHints) {
        if other.ct_sysctl.is_some() {
            self.ct_sysctl = other.ct_sysctl;
        }
        if other.legacy4.is_some() {
            self.legacy4 = other.legacy4;
        }
        if other.legacy6.is_some() {
            self.legacy6 = other.legacy6;
        }
        if other.ip_vs.is_some() {
            self.ip_vs = other.ip_vs;
        }
    }
}

/// The node netns: `--node-netns`, else init's (`/proc/1/ns/net`, the host's when
/// running with hostPID), else our own (non-root cannot inspect pid 1).
pub fn node_target(cfg: &Config) -> Result<NetnsTarget, CaptureError> {
    if let Some(p) = &cfg.node_netns {
        return netns_thread::target_for(p).map_err(|source| CaptureError::NodeNetns {
            path: p.display().to_string(),
            source,
        });
    }
    netns_thread::target_for(Path::new("/proc/1/ns/net"))
        .or_else(|_| netns_thread::target_for(Path::new("/proc/self/ns/net")))
        .map_err(|source| CaptureError::NodeNetns {
            path: "/proc/self/ns/net".into(),
            source,
        })
}

/// What every stage reads.
struct Ctx {
    cfg: Config,
    deadline: Deadline,
    sys: Arc<dyn Sys>,
    node: NetnsTarget,
}

impl Ctx {
    fn spool(&self) -> Spool {
        Spool::new_in(&self.cfg.spool_dir)
    }
    fn wants(&self, name: &str) -> bool {
        self.skip_reason(name).is_none()
    }

    /// Why a source is not captured, if it is not.
    fn skip_reason(&self, name: &str) -> Option<&'static str> {
        if !self.cfg.selection.wants(name) {
            return Some("excluded by --only/--skip");
        }
        let samples = name == netsnap_schema::registry::SourceId::CounterSamples.name();
        (samples && !self.cfg.sampling.wanted())
            .then_some("not asked for: --samples N (N ≥ 2) reads the counters N times, for rates")
    }
}

/// Runs the whole capture. Never fails once the node netns is known: every problem is
/// a record in the manifest.
pub fn capture(cfg: Config) -> Result<Capture, CaptureError> {
    let deadline = Deadline::new(cfg.timeout);
    let started_at = UtcTime::now();
    let node = node_target(&cfg)?;
    let sys = Arc::new(RealSys::new(cfg.host_root.clone()));
    Ok(run(
        Ctx {
            cfg,
            deadline,
            sys,
            node,
        },
        started_at,
    ))
}

/// The stages, in order, on the calling thread.
fn run(ctx: Ctx, started_at: UtcTime) -> Capture {
    let ctx = Arc::new(ctx);
    let mut results = results::Results::new(&ctx.cfg.spool_dir);
    let (tx, rx) = mpsc::channel::<Msg>();
    results.record_skipped(&ctx);

    // 1. Discovery, before any tool runs: a tool started in the node netns would
    //    otherwise show up as one of its processes.
    let discovered = if ctx.cfg.selection.wants_netns() {
        discover::discover(ctx.sys.host_root(), &ctx.node)
    } else {
        Discovered::default()
    };
    let discovery_ms = ctx.deadline.elapsed_ms();

    // 2. Node-wide lanes.
    lanes::start(&ctx, &tx, &mut results);

    // 3. Survey from the node netns: nsids, and which netns are the node's pods.
    let survey = survey::run(&ctx, &discovered, &tx, &rx, &mut results);
    let selected = survey.select(&ctx, &discovered);

    // 4. Pod identity, in parallel with the netns captures.
    let identity_running = identity::start(&ctx, &selected, &tx);
    hooks::pause(&ctx.deadline);

    // 5. Netns pool: the node first (largest), then the pods.
    let pooled = pool::run(&ctx, &selected, (&tx, &rx), &mut results, identity_running);

    // 6. Whatever did not report in time.
    results.fail_pending(&ctx);

    // 7. Assembled sources: the netns index, conntrack sysctls, host facts.
    let found = assemble::Found {
        discovered: &discovered,
        discovery_ms,
        survey: &survey,
        selected: &selected,
    };
    let pod_count = assemble::sources(&ctx, &found, &pooled, &mut results);
    let manifest = assemble::manifest(&ctx, &started_at);
    Capture {
        writer: results.into_writer(),
        manifest,
        netns_count: selected.len(),
        pod_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{FakeSys, FakeTool};
    use netsnap_schema::{SourceRecord, SourceStatus};
    use std::time::Instant;

    fn fake_ctx(sys: FakeSys, only: &str, timeout_secs: u64, spool: &Path) -> Ctx {
        let cfg = Config {
            host_root: PathBuf::from("/fake"),
            node_netns: None,
            selection: Selection::new(&[only.to_string()], &[]).unwrap(),
            conntrack_limit: 10,
            timeout: Duration::from_secs(timeout_secs),
            spool_dir: spool.to_path_buf(),
            parallelism: 2,
            sampling: crate::sources::samples::Sampling {
                samples: 1,
                interval: Duration::from_secs(1),
            },
        };
        Ctx {
            deadline: Deadline::new(cfg.timeout),
            cfg,
            sys: Arc::new(sys),
            node: netns_thread::target_for(Path::new("/proc/self/ns/net")).unwrap(),
        }
    }

    /// Runs every stage against `sys` (no root: the fake enters no netns) and writes
    /// the bundle as a directory; returns its records and the directory.
    fn capture_fake(
        sys: FakeSys,
        only: &str,
        timeout_secs: u64,
    ) -> (Vec<SourceRecord>, tempfile::TempDir) {
        let out = tempfile::tempdir().unwrap();
        let ctx = fake_ctx(sys, only, timeout_secs, out.path());
        let c = run(ctx, UtcTime::now());
        let dir = out.path().join("bundle");
        let manifest = c.writer.write_dir(c.manifest, &dir).unwrap();
        (manifest.sources, out)
    }

    fn record<'a>(records: &'a [SourceRecord], name: &str) -> &'a SourceRecord {
        records.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn a_tool_that_outlives_the_deadline_costs_only_its_own_source() {
        let hangs = FakeTool {
            runs_for: Duration::from_secs(5),
            ignores_timeout: true,
            ..Default::default()
        };
        let sys = FakeSys::default().tool("ipset", hangs).host_file(
            "/etc/cni/net.d/10-net.conflist",
            b"{\"cniVersion\":\"1.0.0\"}\n",
        );
        let started = Instant::now();
        let (records, out) = capture_fake(sys, "ipset,host/cni", 2);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let ipset = record(&records, "ipset");
        assert_eq!(ipset.status, SourceStatus::Failed);
        assert_eq!(
            ipset.error.as_deref(),
            Some("did not finish before the capture deadline (--timeout 2s)")
        );
        let cni = record(&records, "host/cni");
        assert_eq!(cni.status, SourceStatus::Ok);
        let path = cni.path.as_deref().unwrap();
        assert_eq!(path, "host/cni/10-net.conflist");
        let bytes = std::fs::read(out.path().join("bundle").join(path)).unwrap();
        assert_eq!(bytes, b"{\"cniVersion\":\"1.0.0\"}\n");
        // Everything else is recorded as skipped, with the reason.
        let nft = record(&records, "nft");
        assert_eq!(nft.status, SourceStatus::Skipped);
        assert_eq!(nft.error.as_deref(), Some("excluded by --only/--skip"));
        assert!(records
            .iter()
            .filter(|r| r.name != "ipset" && r.name != "host/cni")
            .all(|r| r.status == SourceStatus::Skipped));
    }

    #[test]
    fn a_tool_is_stopped_at_its_budget_and_said_so() {
        let slow = FakeTool {
            runs_for: Duration::from_secs(60),
            ..Default::default()
        };
        let sys = FakeSys::default().tool("ipset", slow);
        let (records, _out) = capture_fake(sys, "ipset", 2);
        let ipset = record(&records, "ipset");
        assert_eq!(ipset.status, SourceStatus::Failed);
        let e = ipset.error.as_deref().unwrap();
        assert!(e.starts_with("/fake/usr/sbin/ipset timed out after"), "{e}");
    }

    #[test]
    fn output_failures_and_absent_modules() {
        let fails = FakeTool {
            stdout: b"create KUBE-X hash:ip\n".to_vec(),
            stderr: "ipset v7.1: Kernel error\n".into(),
            exit_code: 1,
            ..Default::default()
        };
        let sys = FakeSys::default().tool("ipset", fails);
        let (records, _out) = capture_fake(sys, "ipset", 5);
        let ipset = record(&records, "ipset");
        // Output before the failure is kept, and the source says it is incomplete.
        assert_eq!(ipset.status, SourceStatus::Partial);
        assert!(ipset.error.as_deref().unwrap().contains("Kernel error"));
        assert_eq!(ipset.bytes, 22);
        let sys = FakeSys::default()
            .tool("ipset", FakeTool::default())
            .module_absent("ip_set");
        let (records, _out) = capture_fake(sys, "ipset,host/cni", 5);
        assert_eq!(record(&records, "ipset").status, SourceStatus::Unavailable);
        let cni = record(&records, "host/cni");
        assert_eq!(cni.status, SourceStatus::Unavailable);
        assert_eq!(cni.error.as_deref(), Some("/etc/cni/net.d does not exist"));
    }

    #[test]
    fn the_netns_pool_records_each_source_in_its_netns() {
        use crate::sys::fake::FakeDump;
        let out = tempfile::tempdir().unwrap();
        let sys = FakeSys::default().dump("rules", FakeDump::Kernel(libc::EPERM));
        let ctx = Arc::new(fake_ctx(sys, "netns/links,netns/routes", 5, out.path()));
        let pod = |id: &str| discover::Candidate {
            id: id.into(),
            target: ctx.node.clone(),
            is_root: false,
            found_by: Vec::new(),
            pids: Vec::new(),
        };
        let (a, b) = (pod("pod-a"), pod("pod-b"));
        let (tx, rx) = mpsc::channel();
        let mut results = results::Results::new(out.path());
        results.record_skipped(&ctx);
        let pooled = pool::run(&ctx, &[&a, &b], (&tx, &rx), &mut results, false);
        assert_eq!(pooled.netns_done.len(), 2);
        results.fail_pending(&ctx);
        let manifest = assemble::manifest(&ctx, &UtcTime::now());
        let dir = out.path().join("bundle");
        let records = results
            .into_writer()
            .write_dir(manifest, &dir)
            .unwrap()
            .sources;
        for id in ["pod-a", "pod-b"] {
            let in_ns = |name: &str| {
                records
                    .iter()
                    .find(|r| r.name == name && r.netns.as_deref() == Some(id))
                    .unwrap()
            };
            assert_eq!(in_ns("netns/links").status, SourceStatus::Ok);
            let routes = in_ns("netns/routes");
            assert_eq!(routes.status, SourceStatus::Partial);
            assert_eq!(
                routes.path.as_deref(),
                Some(format!("netns/{id}/routes.json").as_str())
            );
            assert!(routes.error.as_deref().unwrap().starts_with("rules: "));
        }
        // Per-netns sources not selected: one skipped record each, no netns.
        let addrs: Vec<_> = records.iter().filter(|r| r.name == "netns/addrs").collect();
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0].status, SourceStatus::Skipped);
        assert!(addrs[0].netns.is_none());
    }
}
