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

fn main() -> ExitCode {
    if let Err(e) = install_signal_thread() {
        eprintln!("netsnap-collect: {e:#}");
        return ExitCode::from(1);
    }
    let cli = Cli::parse();
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
    for d in SOURCES {
        let path = match d.path {
            Some(p) => p.to_string(),
            None => "netns/<id>/…".to_string(),
        };
        println!("{:<26} {:<10} {path}", d.name, d.group);
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    if cli.only.iter().any(|o| o == "list") {
        list_sources();
        return Ok(());
    }
    cli.selection().map_err(|e| Failure::Usage(e.into()))?;
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

    // The output file is created first: an unwritable or missing directory fails now,
    // not after the capture. Large sources spill next to it.
    let (partial, spool_dir) = if to_stdout {
        (None, std::env::temp_dir())
    } else {
        let default_name = PathBuf::from(netsnap_schema::layout::bundle_file_name(
            &netsnap_collector::host::hostname(),
            &UtcTime::now().compact(),
        ));
        let out = match &cli.output {
            // `-o DIR`: the default file name inside it.
            Some(p) if p.is_dir() => p.join(default_name),
            Some(p) => p.clone(),
            None => default_name,
        };
        let partial = PartialOutput::create(&out).map_err(|e| Failure::Runtime(e.into()))?;
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (Some(partial), dir)
    };

    let cfg = cli
        .config(spool_dir)
        .map_err(|e| Failure::Usage(e.into()))?;
    let cap = capture::capture(cfg).map_err(|e| match e {
        e @ CaptureError::NodeNetns { .. } => Failure::Usage(e.into()),
    })?;
    let (netns, pods) = (cap.netns_count, cap.pod_count);
    let written = match partial {
        Some(p) => {
            let path = p.path().to_path_buf();
            let (manifest, size) = p
                .commit(cap.writer, cap.manifest)
                .map_err(|e| Failure::Runtime(e.into()))?;
            (
                manifest,
                format!("wrote {} ({})", path.display(), summary::human_bytes(size)),
            )
        }
        None => {
            let (manifest, size) = output::write_stdout(cap.writer, cap.manifest)
                .map_err(|e| Failure::Runtime(e.into()))?;
            (
                manifest,
                format!(
                    "wrote the bundle to stdout ({})",
                    summary::human_bytes(size)
                ),
            )
        }
    };
    if !cli.quiet {
        eprint!("{}", summary::render(&written.0, netns, pods, &written.1));
    }
    Ok(())
}
