//! `netsnap`: analyze node network bundles offline.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use netsnap_analyzer::check::{self, Selection, Severity, Thresholds};
use netsnap_analyzer::cluster::ClusterReport;
use netsnap_analyzer::diff::{FailOn, Input as DiffInput};
use netsnap_analyzer::render::{self, Format};
use netsnap_analyzer::report::{self, BundleReport, Report};
use netsnap_analyzer::{inspect, load, show};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod allocator;

#[global_allocator]
static ALLOCATOR: allocator::Split = allocator::Split;

/// Exit code for usage and input errors (findings use 1, a clean run 0).
const EXIT_INPUT_ERROR: u8 = 2;
const EXIT_FINDINGS: u8 = 1;

#[derive(Parser)]
#[command(
    name = "netsnap",
    version,
    about = "Analyze Kubernetes node network bundles offline",
    after_help = "Exit codes: 0 no finding (for diff: no change) at or above --fail-on, 1 findings, 2 usage or input error."
)]
struct Cli {
    #[command(flatten)]
    limits: load::LimitArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Dot,
    Json,
    /// The picture of `netsnap report`, laid out by netsnap (every panel expanded).
    Svg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// One self-contained HTML file (no request of any kind).
    Html,
    /// Markdown for a ticket, with each node's picture as `OUTPUT-STEM.NODE.svg` beside it.
    Markdown,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// `.netsnap.tar.zst` files or unpacked bundle directories (several: one cluster).
    #[arg(required = true)]
    bundles: Vec<PathBuf>,
    /// The file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    format: ReportFormat,
    /// Do not trace every pod to every service port (no reachability section).
    #[arg(long)]
    no_reach: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TraceFormat {
    Text,
    /// Versioned JSON (docs/trace-json.md): every hop, where text leaves out chains
    /// that only passed the packet by their ACCEPT policy.
    Json,
    Dot,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TraceProto {
    Tcp,
    Udp,
    Icmp,
}

#[derive(clap::Args)]
struct TraceArgs {
    /// A `.netsnap.tar.zst` file or an unpacked bundle directory; several (one per
    /// node of a cluster): a packet that leaves a node through the overlay or the
    /// uplink goes on in the bundle of the node it goes to.
    #[arg(required = true, num_args = 1..)]
    bundles: Vec<PathBuf>,
    /// Where the packet starts: a pod (`ns/name` or a unique name), a netns id,
    /// `node`, or an IP (one outside the node arrives on the uplink).
    #[arg(long, value_name = "SRC")]
    from: String,
    /// Where it goes: a service (`ns/svc[:port]`), `IP:PORT`, a pod, or an IP.
    #[arg(long, value_name = "DST")]
    to: String,
    /// Destination port (for a pod or a bare IP; picks one port of a service).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Protocol [default: the service's, else tcp].
    #[arg(long, value_enum)]
    proto: Option<TraceProto>,
    /// Packet size in bytes (checked against every MTU on the way).
    #[arg(long, value_name = "BYTES")]
    size: Option<u32>,
    /// Trace a packet of an established connection instead of the first one.
    #[arg(long)]
    established: bool,
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    format: TraceFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CatalogFormat {
    Text,
    /// `docs/findings.md`.
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum View {
    Pods,
    Services,
    Links,
    Routes,
    Conntrack,
    Sources,
    /// The CNI configuration files and which one the runtime uses.
    Cni,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// `.netsnap.tar.zst` files or unpacked bundle directories; anything else (an sos
    /// report, a support archive, pasted dumps) is imported in memory as one node.
    #[arg(required = true)]
    bundles: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when a finding at or above this severity exists (info, warning, critical).
    #[arg(long, default_value = "warning", value_name = "SEV")]
    fail_on: Severity,
    /// Only these check ids or families (repeatable, e.g. `--only SVC --only CT004`).
    #[arg(long, value_name = "ID")]
    only: Vec<String>,
    /// Skip these check ids or families (repeatable).
    #[arg(long, value_name = "ID")]
    skip: Vec<String>,
    /// Thresholds file (TOML, or JSON when named *.json).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one threshold, e.g. `--threshold conntrack_warning=0.7` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    threshold: Vec<String>,
    /// Colour the text output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Do not trace every pod to every service port (faster on huge nodes; NF004 and
    /// TRC001, which rest on those traces, are then not reported).
    #[arg(long)]
    no_reach: bool,
    /// With several bundles: report each node on its own, without the cluster checks
    /// (CLU*) that treat the bundles as the nodes of one cluster.
    #[arg(long)]
    separate: bool,
    /// Bundles analysed at once, the cores split between them (memory grows with it;
    /// default 2, 1 on a one-core machine; with 1, the analysis uses every core and
    /// the next bundle is read while it runs).
    #[arg(long, value_name = "N", default_value_t = netsnap_analyzer::batch::default_jobs())]
    jobs: usize,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// The earlier bundle (a `.netsnap.tar.zst` file or an unpacked bundle directory).
    old: PathBuf,
    /// The later bundle (the same node later, or another node).
    new: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when a change at or above this severity exists (info, warning,
    /// critical, or never).
    #[arg(long, default_value = "warning", value_name = "SEV")]
    fail_on: FailOn,
    /// Leave out changes whose `category`, `category:subject` or
    /// `category:subject:field` matches this glob (`*` is any text; repeatable),
    /// e.g. `--ignore 'chain:*:rules' --ignore rate:conntrack:invalid`.
    #[arg(long, value_name = "PATTERN")]
    ignore: Vec<String>,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Files, directories and archives (.tar, .tar.gz, .tar.xz, .tar.zst), one node.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Write a `.netsnap.tar.zst` bundle here.
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        conflicts_with = "dir",
        required_unless_present = "dir"
    )]
    out: Option<PathBuf>,
    /// Write an unpacked bundle directory here (must not exist).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Parse every source, build the node graph and report what is broken.
    Analyze(AnalyzeArgs),
    /// Write one report file to attach to a ticket: header, findings, the node's
    /// picture (clickable), failing traces, reachability matrix, source table.
    /// Exits 0 once the file is written, whatever it found (`analyze` gates CI).
    Report(ReportArgs),
    /// Print the node graph (netns, pods, links, VIPs, endpoints).
    Graph {
        bundle: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Offline ip/ipvsadm/conntrack-like views of a bundle.
    Show {
        bundle: PathBuf,
        #[arg(value_enum)]
        view: View,
        /// Only this netns id (links, routes, pods, sources).
        #[arg(long, value_name = "ID")]
        netns: Option<String>,
        /// Only rows containing this text (a name, an IP …).
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
    },
    /// Follow a packet through the node, hop by hop, as the kernel would: routing,
    /// every netfilter backend, bridges and veths, to a socket or what stops it.
    /// Exits 0 when every branch is delivered, 1 otherwise.
    Trace(TraceArgs),
    /// Every pod of the node to every service port, as the trace engine follows them:
    /// the failing paths (text), the whole matrix (json), or a pods × services table
    /// coloured by verdict (dot). Exits 1 when a path fails.
    Reach {
        /// A `.netsnap.tar.zst` file or an unpacked bundle directory.
        bundle: PathBuf,
        #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
        format: TraceFormat,
    },
    /// Compare two bundles semantically: services and endpoints, pods, links,
    /// addresses, routes and rules, netfilter chains, sysctls, DNS, the datapath, and
    /// conntrack counters as rates over the time between the captures. Exits 1 when
    /// a change at or above --fail-on exists (a CI job can keep a golden bundle).
    Diff(DiffArgs),
    /// Build a bundle from other tools' output: an sos report, the EKS log
    /// collector's tree, a cilium bugtool archive, or loose dumps (iptables-save, nft,
    /// ipvsadm, conntrack, ip, resolv.conf, sysctl -a) recognised by content.
    Import(ImportArgs),
    /// Print a bundle's manifest, the status of every source and parse coverage.
    Inspect {
        /// A `.netsnap.tar.zst` file or an unpacked bundle directory.
        bundle: PathBuf,
    },
    /// List the check catalog (`--format markdown` writes docs/findings.md).
    Checks {
        #[arg(long, value_enum, default_value_t = CatalogFormat::Text)]
        format: CatalogFormat,
    },
    /// Pseudonymise a bundle for a ticket that leaves the company: every address,
    /// MAC, hostname, pod/namespace/service name, UID and rule comment becomes a
    /// consistent pseudonym; the map (original → pseudonym) is written beside OUTPUT.
    Redact {
        /// The bundle to redact (a `.netsnap.tar.zst` file or a bundle directory).
        input: PathBuf,
        /// Where to write it: a `.netsnap.tar.zst` file, otherwise a new directory.
        output: PathBuf,
        /// Key file (created when missing). Reuse one key for every bundle of a
        /// cluster and the same original gets the same pseudonym in all of them.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Where to write the map [default: OUTPUT.map.json]; never inside a bundle.
        #[arg(long, value_name = "FILE")]
        map: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    allocator::tune();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netsnap: {e:#}");
            ExitCode::from(EXIT_INPUT_ERROR)
        }
    }
}

fn progress(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("netsnap: {msg}");
    }
}

fn open(
    path: &Path,
    limits: &netsnap_schema::ReadLimits,
) -> anyhow::Result<netsnap_schema::Bundle> {
    progress(&format!("reading {}", path.display()));
    netsnap_analyzer::timings::stage("open", || load::open(path, limits))
        .context("cannot read bundle")
}

/// Applies `KEY=VALUE` overrides through the JSON form, so every field is settable
/// and an unknown key is an error.
fn apply_overrides(t: Thresholds, overrides: &[String]) -> anyhow::Result<Thresholds> {
    if overrides.is_empty() {
        return Ok(t);
    }
    let mut v = serde_json::to_value(&t)?;
    for o in overrides {
        let Some((k, val)) = o.split_once('=') else {
            bail!("--threshold {o:?}: expected KEY=VALUE");
        };
        let Some(slot) = v.get_mut(k.trim()) else {
            let keys: Vec<String> = serde_json::to_value(Thresholds::default())?
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            bail!(
                "--threshold {k:?}: unknown threshold (known: {})",
                keys.join(", ")
            );
        };
        *slot = serde_json::from_str(val.trim())
            .with_context(|| format!("--threshold {k}: {val:?} is not a number"))?;
    }
    let t: Thresholds = serde_json::from_value(v).context("--threshold")?;
    t.validate()
        .map_err(anyhow::Error::msg)
        .context("--threshold")?;
    Ok(t)
}

fn write_out(s: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing output"),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let limits = cli.limits.limits();
    match cli.command {
        Command::Analyze(args) => analyze(args, &limits),
        Command::Import(args) => import(args, &limits),
        Command::Graph { bundle, format } => {
            let b = open(&bundle, &limits)?;
            let (_, model, graph) = report::prepare(&b);
            write_out(&match format {
                GraphFormat::Dot => render::dot::render_dot(&graph),
                GraphFormat::Json => render::dot::render_json(&graph),
                GraphFormat::Svg => netsnap_analyzer::layout::svg::standalone(
                    &netsnap_analyzer::layout::Picture::of(&model, &graph, &[]),
                    &format!("netsnap topology of {}", model.hostname),
                ),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            bundle,
            view,
            netns,
            filter,
        } => {
            let b = open(&bundle, &limits)?;
            let (sources, model, _) = report::prepare(&b);
            if let Some(n) = &netns {
                if !model.netns.contains_key(n) {
                    let ids: Vec<&str> = model.netns.keys().map(String::as_str).collect();
                    bail!(
                        "--netns {n}: no such netns in the bundle (have: {})",
                        ids.join(", ")
                    );
                }
            }
            let f = show::Filters { netns, filter };
            write_out(&match view {
                View::Pods => show::pods(&model, &f),
                View::Services => show::services(&model, &f),
                View::Links => show::links(&model, &f),
                View::Routes => show::routes(&model, &f),
                View::Conntrack => show::conntrack(&model, &f),
                View::Sources => show::sources(&b.manifest, &sources.coverage, &f),
                View::Cni => show::cni(&model.cni, &f),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace(args) => trace(args, &limits),
        Command::Report(args) => report_file(args, &limits),
        Command::Diff(args) => diff(args, &limits),
        Command::Reach { bundle, format } => {
            let b = open(&bundle, &limits)?;
            let p = netsnap_analyzer::trace::Prepared::new(&b);
            let reach = netsnap_analyzer::trace::reach::compute(&p.model, &p.graph, &p.firewall);
            write_out(&match format {
                TraceFormat::Text => render::trace::render_matrix_text(&reach),
                TraceFormat::Json => render::trace::render_matrix_json(&reach),
                TraceFormat::Dot => render::trace::render_matrix_dot(&reach),
            })?;
            let fails = reach.cells.iter().any(|c| c.failing() > 0.0);
            Ok(if fails {
                ExitCode::from(EXIT_FINDINGS)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Inspect { bundle } => {
            let b = open(&bundle, &limits)?;
            let sources = netsnap_analyzer::sources::parse_all(&b);
            let mut text = inspect::render(&b);
            text.push_str("\nParse coverage\n");
            text.push_str(&inspect::render_coverage(&sources.coverage, 20));
            write_out(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Checks { format } => {
            write_out(&match format {
                CatalogFormat::Text => inspect::table(
                    &["ID", "SEVERITY", "TITLE"].map(String::from),
                    &check::docs::rows(),
                ),
                CatalogFormat::Markdown => check::docs::markdown(),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Redact {
            input,
            output,
            key,
            map,
        } => redact(&input, &output, key.as_deref(), map, &limits),
    }
}

/// `netsnap diff OLD NEW`.
fn diff(args: DiffArgs, limits: &netsnap_schema::ReadLimits) -> anyhow::Result<ExitCode> {
    let open_named = |p: &Path| {
        open(p, limits).with_context(|| format!("{}: not a readable bundle", p.display()))
    };
    let (old_bundle, new_bundle) = (open_named(&args.old)?, open_named(&args.new)?);
    let (old_sources, old_model, _) = report::prepare(&old_bundle);
    let (new_sources, new_model, _) = report::prepare(&new_bundle);
    let (old_origin, new_origin) = (
        args.old.display().to_string(),
        args.new.display().to_string(),
    );
    let d = netsnap_analyzer::diff::diff(
        &DiffInput {
            origin: &old_origin,
            sources: &old_sources,
            model: &old_model,
        },
        &DiffInput {
            origin: &new_origin,
            sources: &new_sources,
            model: &new_model,
        },
        &netsnap_analyzer::diff::Ignore::new(args.ignore),
    );
    write_out(&match args.format {
        Format::Text => render::diff::render_text(&d),
        Format::Json => render::diff::render_json(&d),
        Format::Markdown => render::diff::render_markdown(&d),
    })?;
    Ok(if d.fails(args.fail_on) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `netsnap trace`: one packet through one node.
fn trace(args: TraceArgs, limits: &netsnap_schema::ReadLimits) -> anyhow::Result<ExitCode> {
    use netsnap_analyzer::trace::{packet::Proto, path::Verdict, request::Ask, Prepared};
    let ask = Ask {
        from: args.from,
        to: args.to,
        port: args.port,
        proto: args.proto.map(|p| match p {
            TraceProto::Tcp => Proto::Tcp,
            TraceProto::Udp => Proto::Udp,
            TraceProto::Icmp => Proto::Icmp,
        }),
        size: args.size,
        established: args.established,
    };
    let traces = if let [one] = args.bundles.as_slice() {
        Prepared::new(&open(one, limits)?).trace(&ask)?
    } else {
        trace_cluster(&args.bundles, limits, &ask)?
    };
    write_out(&match args.format {
        TraceFormat::Text => render::trace::render_text(&traces),
        TraceFormat::Json => render::trace::render_json(&traces),
        TraceFormat::Dot => render::trace::render_dot(&traces),
    })?;
    let all_delivered = traces
        .iter()
        .flat_map(|t| &t.verdicts)
        .all(|b| b.verdict == Verdict::Delivered);
    Ok(if all_delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

/// `netsnap trace A B …`: the bundles read and prepared in parallel, then traced as
/// one cluster (`trace::cluster`).
fn trace_cluster(
    paths: &[PathBuf],
    limits: &netsnap_schema::ReadLimits,
    ask: &netsnap_analyzer::trace::request::Ask,
) -> anyhow::Result<Vec<netsnap_analyzer::trace::request::Trace>> {
    use netsnap_analyzer::trace::{cluster, Prepared};
    let prepared: Vec<anyhow::Result<(String, Prepared)>> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .map(|p| {
                s.spawn(move || {
                    let b = open(p, limits)?;
                    Ok((b.manifest.hostname.clone(), Prepared::new(&b)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a reader panicked")))
            })
            .collect()
    });
    let prepared = prepared.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let hostnames: Vec<String> = prepared.iter().map(|(h, _)| h.clone()).collect();
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let names = cluster::node_names(&hostnames, &files);
    let nodes: Vec<(String, &Prepared)> = names
        .into_iter()
        .zip(prepared.iter().map(|(_, p)| p))
        .collect();
    let c = cluster::Cluster::new(&nodes, Default::default());
    Ok(c.trace_ask(ask)?)
}

/// `netsnap analyze`: every bundle analysed and rendered in one report; several
/// bundles are also checked as the nodes of one cluster (unless `--separate`).
fn analyze(args: AnalyzeArgs, limits: &netsnap_schema::ReadLimits) -> anyhow::Result<ExitCode> {
    let AnalyzeArgs {
        bundles,
        format,
        fail_on,
        only,
        skip,
        config,
        threshold,
        color,
        no_reach,
        separate,
        jobs,
    } = args;
    let selection = Selection {
        only,
        skip,
        no_reach,
    };
    let unknown = selection.unknown();
    if !unknown.is_empty() {
        bail!(
            "--only/--skip: unknown check id(s) {} (see `netsnap checks`)",
            unknown.join(", ")
        );
    }
    let thresholds = match &config {
        Some(p) => Thresholds::load(p)?,
        None => Thresholds::default(),
    };
    let thresholds = apply_overrides(thresholds, &threshold)?;
    let (bundles, dumps) = netsnap_analyzer::imported::split(&bundles);
    let nodes_total = bundles.len() + usize::from(!dumps.is_empty());
    let options = netsnap_analyzer::batch::Options {
        limits,
        thresholds: &thresholds,
        selection: &selection,
        jobs,
        summarise: nodes_total > 1 && !separate,
        leak_single: dumps.is_empty(),
        progress: &progress,
    };
    let mut nodes = netsnap_analyzer::batch::analyze_all(&bundles, &options)?;
    if !dumps.is_empty() {
        let (bundle, notes) = netsnap_analyzer::imported::import(&dumps, limits)?;
        for note in notes {
            eprintln!("netsnap: import: {note}");
        }
        nodes.push(netsnap_analyzer::batch::analyze_opened(&bundle, &options));
    }
    let (reports, summaries): (Vec<BundleReport>, Vec<_>) =
        nodes.into_iter().map(|n| (n.report, n.summary)).unzip();
    let summaries: Vec<_> = summaries.into_iter().flatten().collect();
    let origins: Vec<String> = reports.iter().map(|r| r.origin.clone()).collect();
    let mut report = Report::new(reports);
    if summaries.len() > 1 {
        let cluster = netsnap_analyzer::timings::stage("cluster", || {
            ClusterReport::new(origins.iter().map(String::as_str), &summaries, &selection)
        });
        report = report.with_cluster(cluster);
    }
    let text = netsnap_analyzer::timings::stage("render", || match format {
        Format::Text => {
            let colored = match color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            render::text::render(&report, colored)
        }
        Format::Json => render::json::render(&report),
        Format::Markdown => render::markdown::render(&report),
    });
    write_out(&text)?;
    Ok(if report.summary().at_or_above(fail_on) > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `netsnap report`: the pages of `render::page`, written as HTML or Markdown (with
/// its pictures beside it).
fn report_file(args: ReportArgs, limits: &netsnap_schema::ReadLimits) -> anyhow::Result<ExitCode> {
    use netsnap_analyzer::render::{html, page, page_markdown};
    let selection = Selection {
        no_reach: args.no_reach,
        ..Selection::default()
    };
    let pages = page::build(
        &args.bundles,
        &netsnap_analyzer::batch::Options {
            limits,
            thresholds: &Thresholds::default(),
            selection: &selection,
            jobs: netsnap_analyzer::batch::default_jobs(),
            summarise: false,
            leak_single: false,
            progress: &progress,
        },
    )?;
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    match args.format {
        ReportFormat::Html => write(&args.output, &html::render(&pages))?,
        ReportFormat::Markdown => {
            let stem = args
                .output
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            let pictures = page_markdown::pictures(&pages, &stem);
            let dir = args.output.parent().unwrap_or(Path::new(""));
            for (name, svg) in &pictures {
                write(&dir.join(name), svg)?;
            }
            let names: Vec<String> = pictures.into_iter().map(|(n, _)| n).collect();
            write(&args.output, &page_markdown::render(&pages, &names))?;
        }
    }
    eprintln!("netsnap: report written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// `netsnap import`: other tools' output as one bundle.
fn import(args: ImportArgs, limits: &netsnap_schema::ReadLimits) -> anyhow::Result<ExitCode> {
    let draft = netsnap_import::import(&args.inputs, limits)?;
    let notes: Vec<String> = draft.inputs.iter().flat_map(|i| i.notes.clone()).collect();
    let (manifest, target) = match (&args.out, &args.dir) {
        (Some(out), _) => (netsnap_import::write_archive(draft, out)?, out),
        (None, Some(dir)) => (netsnap_import::write_dir(draft, dir)?, dir),
        (None, None) => bail!("give -o FILE or --dir DIR"),
    };
    for note in notes {
        eprintln!("netsnap: import: {note}");
    }
    let ok = manifest.sources.iter().filter(|s| s.path.is_some()).count();
    let missing = manifest.sources.len() - ok;
    eprintln!(
        "netsnap: imported {} input(s) into {}: {ok} source(s), {missing} unavailable",
        args.inputs.len(),
        target.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `netsnap redact`: the file rules (map beside, never inside a bundle; nothing
/// overwritten) live in netsnap-redact, shared with `netsnap-collect --redact`.
fn redact(
    input: &Path,
    output: &Path,
    key: Option<&Path>,
    map: Option<PathBuf>,
    limits: &netsnap_schema::ReadLimits,
) -> anyhow::Result<ExitCode> {
    let bundle = open(input, limits)?;
    let (key, key_note) = match key {
        Some(p) => {
            let (k, created) = netsnap_redact::load_or_create_key(p)?;
            let note = created.then(|| format!("new redaction key written to {}", p.display()));
            (k, note)
        }
        None => (
            netsnap_redact::RedactKey::random()?,
            Some("random key, not saved: pass --key FILE to give other bundles of this cluster the same pseudonyms".to_string()),
        ),
    };
    let map = map.unwrap_or_else(|| netsnap_redact::default_map_path(output));
    let spool_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    progress(&format!("redacting {}", input.display()));
    let (_, m) = netsnap_redact::redact_to_path(&bundle, &key, output, &map, spool_dir)
        .with_context(|| format!("cannot redact {}", input.display()))?;
    eprintln!(
        "netsnap: redacted {} -> {} ({} addresses, {} names, {} MACs pseudonymised)",
        input.display(),
        output.display(),
        m.ips.len(),
        m.names.len(),
        m.macs.len()
    );
    eprintln!(
        "netsnap: map written to {}: keep it private, it reverses the redaction",
        map.display()
    );
    if let Some(note) = key_note {
        eprintln!("netsnap: {note}");
    }
    Ok(ExitCode::SUCCESS)
}
