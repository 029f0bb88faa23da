//! `netsnap`: analyze node network bundles offline.

use anyhow::Context;
use clap::{Parser, Subcommand};
use netsnap_analyzer::{inspect, load};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for usage and input errors (findings use 1, a clean run 0).
const EXIT_INPUT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "netsnap",
    version,
    about = "Analyze Kubernetes node network bundles offline"
)]
struct Cli {
    #[command(flatten)]
    limits: load::LimitArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a bundle's manifest and the status of every captured source.
    Inspect {
        /// A `.netsnap.tar.zst` file or an unpacked bundle directory.
        bundle: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netsnap: {e:#}");
            ExitCode::from(EXIT_INPUT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let limits = cli.limits.limits();
    match cli.command {
        Command::Inspect { bundle } => {
            let b = load::open(&bundle, &limits)
                .with_context(|| format!("cannot read bundle {}", bundle.display()))?;
            print!("{}", inspect::render(&b));
            Ok(ExitCode::SUCCESS)
        }
    }
}
