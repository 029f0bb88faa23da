//! `netsnap-scale`: writes a synthetic bundle (and `<name>.planted.json` beside it).

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use netsnap_scale::{time, write_bundle, Output, Plan, ProxyMode, Size, Spec};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, ValueEnum)]
enum SizeArg {
    Small,
    Medium,
    Large,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProxyArg {
    Iptables,
    Nftables,
}

/// Writes a synthetic but format-true netsnap bundle: S services × E endpoints in
/// kube-proxy's shape, P pod netns on a cni0 bridge, C conntrack entries consistent
/// with the services, and a few planted faults listed in `<name>.planted.json`
/// beside the bundle. The same options and seed give the same bytes.
#[derive(Parser)]
#[command(name = "netsnap-scale", version)]
struct Cli {
    /// Preset: small (10 services), medium (1,000 × 5, 100 pods, 50,000 conntrack),
    /// large (10,000 × 10, 250 pods, 1,000,000 conntrack). The flags below override it.
    #[arg(long, value_enum, default_value = "small")]
    size: SizeArg,
    /// Service ports (including default/kubernetes and the two kube-dns ports).
    #[arg(long)]
    services: Option<usize>,
    /// Endpoints per service port.
    #[arg(long)]
    endpoints: Option<usize>,
    /// Pod network namespaces.
    #[arg(long)]
    pods: Option<usize>,
    /// Conntrack entries.
    #[arg(long)]
    conntrack: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How kube-proxy programs the services.
    #[arg(long, value_enum, default_value = "iptables")]
    proxy: ProxyArg,
    /// Plant no faults (a healthy node).
    #[arg(long)]
    no_faults: bool,
    /// Node hostname (default: scale-<size>, with --node-index scale-<size>-<index>).
    #[arg(long)]
    hostname: Option<String>,
    /// Make this node number INDEX (0-based) of a generated cluster: its own pod CIDR
    /// block (10.244.<index>.0/24 for up to 248 pods) and hostname, and the same
    /// services and endpoints as every other node of the same options, with remote
    /// endpoints on the other nodes' pods. For `netsnap analyze A B C …` benches.
    #[arg(long, value_name = "INDEX")]
    node_index: Option<u32>,
    /// Archive to write (default: <hostname>-<time>.netsnap.tar.zst in the current
    /// directory).
    #[arg(short, long, conflicts_with = "dir")]
    out: Option<PathBuf>,
    /// Write the bundle unpacked into this directory (must not exist).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let size = match cli.size {
        SizeArg::Small => Size::Small,
        SizeArg::Medium => Size::Medium,
        SizeArg::Large => Size::Large,
    };
    let mut spec = Spec::preset(size);
    let custom = cli.services.is_some()
        || cli.endpoints.is_some()
        || cli.pods.is_some()
        || cli.conntrack.is_some();
    spec.services = cli.services.unwrap_or(spec.services);
    spec.endpoints = cli.endpoints.unwrap_or(spec.endpoints);
    spec.pods = cli.pods.unwrap_or(spec.pods);
    spec.conntrack = cli.conntrack.unwrap_or(spec.conntrack);
    if custom {
        spec.label = "custom".into();
    }
    spec.seed = cli.seed;
    spec.faults = !cli.no_faults;
    spec.proxy = match cli.proxy {
        ProxyArg::Iptables => ProxyMode::Iptables,
        ProxyArg::Nftables => ProxyMode::Nftables,
    };
    spec.node_index = cli.node_index;
    if let Some(i) = cli.node_index {
        spec.hostname = format!("{}-{i}", spec.hostname);
    }
    if let Some(h) = cli.hostname {
        spec.hostname = h;
    }
    let out = match (cli.out, cli.dir) {
        (_, Some(dir)) => Output::Dir(dir),
        (Some(file), None) => Output::Archive(file),
        (None, None) => Output::Archive(PathBuf::from(netsnap_schema::layout::bundle_file_name(
            &spec.hostname,
            &time::compact(time::CAPTURED_AT_UNIX),
        ))),
    };

    let started = Instant::now();
    let plan = Plan::new(&spec).context("invalid size")?;
    let written =
        write_bundle(&plan, &out).with_context(|| format!("writing {}", out.path().display()))?;
    let c = &written.planted.counts;
    eprintln!(
        "netsnap-scale: wrote {} ({} services, {} endpoints, {} pods, {} conntrack entries, {} faults planted) in {:.1} s",
        written.bundle.display(),
        c.services,
        c.endpoints,
        c.pods,
        c.conntrack,
        written.planted.faults.len(),
        started.elapsed().as_secs_f64()
    );
    if let Output::Archive(path) = &out {
        if let Ok(m) = std::fs::metadata(path) {
            eprintln!("netsnap-scale: {} bytes", m.len());
        }
    }
    println!("{}", written.bundle.display());
    println!("{}", written.planted_path.display());
    Ok(())
}
