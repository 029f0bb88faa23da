//! `netsnap-collect`: command line, signals, output and the summary. The capture
//! itself lives in the library (`netsnap_collector`).

use anyhow::{Context, Result};
use clap::Parser;
use netsnap_collector::capture::{self, CaptureError};
use netsnap_collector::cli::Cli;
use netsnap_collector::output::{self, PartialOutput};
use netsnap_collector::source::SOURCES;
use netsnap_collector::{summary, time::UtcTime};
use nix::sys::signal::{SigSet, Signal};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code for usage errors (clap uses the same).
const USAGE: u8 = 2;

/// Blocks the termination signals in this (main) thread before any other thread
/// exists, so every thread inherits the mask and only the dedicated signal thread
/// receives them; it then cleans up (children, partial file) and exits.
fn install_signal_thread() -> Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.thread_block().context("blocking signals")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            if let Ok(sig) = set.wait() {
                output::terminate(sig as i32);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

/// `--idle`: the DaemonSet pod's main process waits, capturing nothing, until it is
/// told to stop; a stop is a normal exit (0), not an interrupted capture.
fn idle() -> ExitCode {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    if let Err(e) = set.thread_block() {
        eprintln!("netsnap-collect: blocking signals: {e}");
        return ExitCode::from(1);
    }
    match set.wait() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netsnap-collect: waiting for a signal: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    // Parsing starts no thread, so the signal mask below still reaches every thread.
    let cli = Cli::parse();
    if cli.idle {
        return idle();
    }
    if let Err(e) = install_signal_thread() {
        eprintln!("netsnap-collect: {e:#}");
        return ExitCode::from(1);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("netsnap-collect: {e:#}");
            ExitCode::from(USAGE)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("netsnap-collect: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn list_sources() {
    println!("{:<26} {:<10} path", "source", "group");
    for d in SOURCES.iter() {
        println!("{:<26} {:<10} {}", d.name, d.group, d.path_display());
    }
}

/// Usage errors found before anything runs; whether the bundle goes to stdout.
fn check_usage(cli: &Cli) -> Result<bool, Failure> {
    cli.selection().map_err(|e| Failure::Usage(e.into()))?;
    cli.sampling()
        .map_err(|e| Failure::Usage(anyhow::anyhow!(e)))?;
    if let Some(p) = &cli.node_netns {
        if !p.exists() {
            return Err(Failure::Usage(anyhow::anyhow!(
                "--node-netns {}: no such file",
                p.display()
            )));
        }
    }
    if !cli.host_root.is_dir() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--host-root {}: not a directory",
            cli.host_root.display()
        )));
    }
    let to_stdout = cli.output.as_deref() == Some(Path::new("-"));
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "refusing to write a binary bundle to a terminal (redirect stdout or use -o FILE)"
        )));
    }
    Ok(to_stdout)
}

/// The output: `<out>.partial` created and locked, and where large sources spill.
fn prepare_output(
    cli: &Cli,
    to_stdout: bool,
    redact: Option<&netsnap_redact::RedactKey>,
) -> Result<(Option<PartialOutput>, PathBuf), Failure> {
    // The output file is created first: an unwritable or missing directory fails now,
    // not after the capture. Large sources spill next to it.
    let prepared = if to_stdout {
        if redact.is_some() {
            if cli.redact_map.is_none() {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "--redact with -o -: say where the map goes with --redact-map FILE"
                )));
            }
            check_redaction_map(cli, Path::new("-")).map_err(Failure::Usage)?;
        }
        (None, std::env::temp_dir())
    } else {
        let hostname = netsnap_collector::sources::host::hostname();
        let now = UtcTime::now().compact();
        let default_name = PathBuf::from(match redact {
            Some(key) => netsnap_redact::redacted_file_name(key, &hostname, &now),
            None => netsnap_schema::layout::bundle_file_name(&hostname, &now),
        });
        let out = match &cli.output {
            // `-o DIR`: the default file name inside it.
            Some(p) if p.is_dir() => p.join(default_name),
            Some(p) => p.clone(),
            None => default_name,
        };
        if redact.is_some() {
            check_redaction_map(cli, &out).map_err(Failure::Usage)?;
        }
        let partial = PartialOutput::create(&out).map_err(|e| Failure::Runtime(e.into()))?;
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (Some(partial), dir)
    };
    Ok(prepared)
}

fn run(cli: &Cli) -> Result<(), Failure> {
    if cli.only.iter().any(|o| o == "list") {
        list_sources();
        return Ok(());
    }
    let to_stdout = check_usage(cli)?;

    // With --redact the key and the map's place are settled before the capture, so a
    // bad --redact-map fails now; the default file name carries no real hostname.
    let redact = if cli.redact {
        Some(redaction_key(cli).map_err(Failure::Usage)?)
    } else {
        None
    };

    let (partial, spool_dir) = prepare_output(cli, to_stdout, redact.as_ref())?;

    let redact_spool = spool_dir.clone();
    let cfg = cli
        .config(spool_dir)
        .map_err(|e| Failure::Usage(e.into()))?;
    let cap = capture::capture(cfg).map_err(|e| match e {
        e @ CaptureError::NodeNetns { .. } => Failure::Usage(e.into()),
    })?;
    let (netns, pods) = (cap.netns_count, cap.pod_count);
    let (writer, manifest, map) = match &redact {
        Some(key) => {
            let (w, m, map) =
                netsnap_redact::redact_writer(cap.writer, cap.manifest, key, &redact_spool)
                    .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("--redact")))?;
            (w, m, Some(map))
        }
        None => (cap.writer, cap.manifest, None),
    };
    let map_path = match (&partial, &cli.redact_map) {
        (_, Some(p)) => Some(p.clone()),
        (Some(p), None) => Some(netsnap_redact::default_map_path(p.path())),
        (None, None) => None,
    };
    let written = match partial {
        Some(p) => {
            let path = p.path().to_path_buf();
            let (manifest, size) = p
                .commit(writer, manifest)
                .map_err(|e| Failure::Runtime(e.into()))?;
            (
                manifest,
                format!("wrote {} ({})", path.display(), summary::human_bytes(size)),
            )
        }
        None => {
            let (manifest, size) =
                output::write_stdout(writer, manifest).map_err(|e| Failure::Runtime(e.into()))?;
            (
                manifest,
                format!(
                    "wrote the bundle to stdout ({})",
                    summary::human_bytes(size)
                ),
            )
        }
    };
    if let (Some(map), Some(path)) = (map, map_path) {
        netsnap_redact::files::write_map(&map, &path)
            .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("--redact")))?;
        if !cli.quiet {
            eprintln!(
                "netsnap-collect: redacted; map written to {} (keep it private: it reverses the redaction)",
                path.display()
            );
        }
    }
    if !cli.quiet {
        let line = format!("{}; {}", written.1, peak_rss());
        eprint!("{}", summary::render(&written.0, netns, pods, &line));
    }
    Ok(())
}

/// `peak RSS 52.1 MiB (largest tool 97.8 MiB)`: this process's high-water mark
/// (`VmHWM`: of its own memory since exec; `ru_maxrss` would also count the memory of
/// the process that spawned it) and that of the largest tool it ran, so what a
/// capture costs the node is on screen (`/usr/bin/time` reports the larger of the two).
fn peak_rss() -> String {
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            l.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or("?".into(), |kib| summary::human_bytes(kib * 1024));
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let tools = (unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } == 0)
        .then(|| u64::try_from(u.ru_maxrss).unwrap_or(0) * 1024)
        .filter(|b| *b > 0);
    match tools {
        Some(t) => format!("peak RSS {own} (largest tool {})", summary::human_bytes(t)),
        None => format!("peak RSS {own}"),
    }
}

/// The --redact key: from --redact-key (created when missing), else a random one.
fn redaction_key(cli: &Cli) -> Result<netsnap_redact::RedactKey> {
    match &cli.redact_key {
        Some(p) => {
            let (key, created) = netsnap_redact::load_or_create_key(p)?;
            if created && !cli.quiet {
                eprintln!(
                    "netsnap-collect: new redaction key written to {}",
                    p.display()
                );
            }
            Ok(key)
        }
        None => Ok(netsnap_redact::RedactKey::random()?),
    }
}

/// The map goes beside the output, never inside a bundle, and never over a file.
fn check_redaction_map(cli: &Cli, out: &Path) -> Result<()> {
    let map = match &cli.redact_map {
        Some(p) => p.clone(),
        None => netsnap_redact::default_map_path(out),
    };
    netsnap_redact::files::check_map_path(&map, out)?;
    if map.exists() {
        anyhow::bail!("--redact: the map {} already exists", map.display());
    }
    Ok(())
}
