//! `kubectl-netsnap`, the kubectl plugin (`kubectl netsnap …`): deploy the collector
//! DaemonSet, collect every node through it, analyse them as one cluster.

mod analysis;
mod children;
mod collect;
mod deploy;
mod fetch;
mod kubectl;
mod progress;
mod record;
mod redaction;
mod stream;
mod targets;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The namespace, pod label, container and collector path of deploy/netsnap.yaml.
pub const NAMESPACE: &str = "netsnap";
pub const POD_SELECTOR: &str = "app.kubernetes.io/name=netsnap-collector";
pub const COLLECTOR_CONTAINER: &str = "collector";
pub const COLLECTOR_PATH: &str = "/netsnap-collect";

/// Collect the network state of a cluster's nodes with netsnap and analyse it.
#[derive(Debug, Parser)]
#[command(name = "kubectl-netsnap", bin_name = "kubectl netsnap", version, about)]
struct Cli {
    /// Passed to every kubectl call.
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Passed to every kubectl call.
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Capture the chosen nodes through the DaemonSet (every node by default) into
    /// DIR/<node>.netsnap.tar.zst, record what happened in DIR/collection.json, then
    /// analyse the bundles as one cluster (text on stdout, DIR/analysis.json).
    Collect(CollectArgs),
    /// Apply the DaemonSet (namespace netsnap) built into this binary.
    Deploy {
        /// The collector image (built from deploy/Containerfile).
        #[arg(long, default_value = deploy::DEFAULT_IMAGE)]
        image: String,
        /// Wait up to SECS for the DaemonSet to be ready on every node.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Delete what `deploy` applied.
    Undeploy,
    /// Print the manifest `deploy` applies.
    Manifest,
}

#[derive(Debug, Args)]
struct CollectArgs {
    /// These nodes (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["selector", "all"])]
    nodes: Vec<String>,
    /// The nodes matching this label selector.
    #[arg(short = 'l', long = "selector", conflicts_with = "all")]
    selector: Option<String>,
    /// Every node (the default).
    #[arg(long)]
    all: bool,
    /// Output directory (new or empty) [default: netsnap-cluster-<unix time>].
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Nodes collected at once.
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallel: u16,
    /// Seconds one node may take; then its kubectl is killed and the node recorded as
    /// timed out. The collector on the node gets three quarters of it.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
    /// Pseudonymise every bundle (one key for the cluster) on this machine before it
    /// is written; node names in file names and collection.json too.
    #[arg(long)]
    redact: bool,
    /// Key for --redact (created when missing), to give later collections the same
    /// pseudonyms.
    #[arg(long, value_name = "FILE", requires = "redact")]
    redact_key: Option<PathBuf>,
    /// Only collect; no analysis.
    #[arg(long)]
    no_analysis: bool,
}

impl CollectArgs {
    fn options(self) -> Result<collect::CollectOptions> {
        let choice = if !self.nodes.is_empty() {
            let nodes: Vec<String> = self.nodes.into_iter().filter(|n| !n.is_empty()).collect();
            if nodes.is_empty() {
                bail!("--nodes: no node name given");
            }
            targets::NodeChoice::Named(nodes)
        } else if let Some(s) = self.selector {
            targets::NodeChoice::Selector(s)
        } else {
            targets::NodeChoice::All
        };
        let dir = self.output.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from(format!("netsnap-cluster-{now}"))
        });
        Ok(collect::CollectOptions {
            choice,
            dir,
            parallel: usize::from(self.parallel),
            timeout: Duration::from_secs(self.timeout),
            redact: self.redact,
            redact_key: self.redact_key,
            analyse: !self.no_analysis,
        })
    }
}

/// Exit codes: 0 every node collected; 1 some node not (its reason is in
/// collection.json; the others were collected and analysed); 2 usage errors or
/// nothing could be collected.
fn main() -> ExitCode {
    if let Err(e) = children::install_signal_thread() {
        eprintln!("kubectl-netsnap: blocking signals: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let k = kubectl::Kubectl {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
    };
    let result = match cli.cmd {
        Cmd::Collect(args) => args.options().and_then(|o| collect_and_report(&k, &o)),
        Cmd::Deploy { image, wait } => deploy::deploy(&k, &image, wait).map(|()| ExitCode::SUCCESS),
        Cmd::Undeploy => deploy::undeploy(&k).map(|()| ExitCode::SUCCESS),
        Cmd::Manifest => {
            print!("{}", deploy::MANIFEST);
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("kubectl-netsnap: {e:#}");
        ExitCode::from(2)
    })
}

fn collect_and_report(k: &kubectl::Kubectl, o: &collect::CollectOptions) -> Result<ExitCode> {
    let c = collect::run(k, o)?;
    let ok = c.collected().count();
    eprintln!(
        "kubectl-netsnap: {ok} of {} nodes collected into {} (see collection.json); analysis {}",
        c.nodes.len(),
        o.dir.display(),
        c.analysis.status
    );
    for n in c
        .nodes
        .iter()
        .filter(|n| n.status != record::NodeStatus::Collected)
    {
        eprintln!(
            "kubectl-netsnap:   {}: {}",
            n.node,
            n.reason.as_deref().unwrap_or("?")
        );
    }
    Ok(match ok {
        0 => ExitCode::from(2),
        n if n == c.nodes.len() => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
