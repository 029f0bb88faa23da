//! Command line of `netsnap-collect`.

use crate::capture::Config;
use crate::source::{Selection, UnknownSource};
use crate::sources::samples::Sampling;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Capture a Kubernetes node's network state, read-only, into one bundle.
///
/// Run as root on the node (or in a privileged pod with the host mounted and
/// --host-root). Everything is read-only: no rule, link, sysctl, module or conntrack
/// entry is changed. A source that fails is recorded in the bundle with the reason.
#[derive(Debug, Parser)]
#[command(name = "netsnap-collect", version, about, long_about)]
pub struct Cli {
    /// Output file; `-` streams the bundle to stdout. Default:
    /// `<hostname>-<UTC time>.netsnap.tar.zst` in the current directory.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Treat this netns as the node (e.g. /run/netns/x); only netns with a veth peer
    /// in it are then captured, as its pods. For kind/k3d nodes and labs.
    #[arg(long, value_name = "PATH")]
    pub node_netns: Option<PathBuf>,

    /// Host filesystem mounted here (DaemonSet pod): tools, /run/netns, /var/log/pods,
    /// resolv.conf and the kubelet config are looked up under it.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,

    /// Capture only these sources or groups (repeatable or comma-separated; groups:
    /// host, netns, netfilter, ipvs, conntrack). `--only list` prints the names.
    #[arg(long, value_name = "SOURCE")]
    pub only: Vec<String>,

    /// Skip these sources or groups.
    #[arg(long, value_name = "SOURCE")]
    pub skip: Vec<String>,

    /// Keep at most this many conntrack (and IPVS connection) entries; the true total
    /// is recorded in the manifest.
    #[arg(long, value_name = "N", default_value_t = 1_048_576)]
    pub conntrack_limit: u64,

    /// Global deadline in seconds; every source has its own timeout inside it.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// Read the saturation counters (conntrack stat and count, interface and socket
    /// counters) N times during the capture, --interval apart, so that the analyzer
    /// reports rates ("dropping 130/s now") instead of totals since boot. 2..=3600.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub samples: u32,

    /// Seconds between two --samples readings (0.1 to 3600, decimals allowed).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,

    /// Netns captured in parallel (default: 2 per CPU, 2..8).
    #[arg(long, value_name = "N", hide = true)]
    pub parallel: Option<usize>,

    /// No summary on stderr (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Pseudonymise the bundle before it is written, for tickets that leave the
    /// company: addresses, MACs, hostnames, pod/namespace/service names, UIDs and rule
    /// comments. The map (original → pseudonym) is written beside the output; nothing
    /// unredacted is written anywhere but an unnamed temporary file.
    #[arg(long)]
    pub redact: bool,

    /// Key for --redact (created when missing). Reuse one key for every node of a
    /// cluster and the same original gets the same pseudonym in all bundles; without
    /// it a random key is used.
    #[arg(long, value_name = "FILE", requires = "redact")]
    pub redact_key: Option<PathBuf>,

    /// Where --redact writes the map [default: OUTPUT.map.json]; needed with `-o -`.
    #[arg(long, value_name = "FILE", requires = "redact")]
    pub redact_map: Option<PathBuf>,

    /// Capture nothing: wait until SIGTERM/SIGINT/SIGHUP, then exit 0. The DaemonSet
    /// pod's main process (its image is FROM scratch: no shell, no sleep); captures are
    /// `kubectl exec`'d beside it.
    #[arg(long)]
    pub idle: bool,
}

/// `--interval`: decimal seconds, 0.1 to 3600.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("{s} s is outside 0.1..=3600"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Cli {
    /// The sampling asked for, if it fits in the capture's deadline.
    pub fn sampling(&self) -> Result<Sampling, String> {
        let s = Sampling {
            samples: self.samples,
            interval: self.interval,
        };
        let timeout = Duration::from_secs(self.timeout.max(1));
        if s.span() >= timeout {
            return Err(format!(
                "--samples {} --interval {:?} take {:?}, not less than --timeout {}s: raise --timeout or sample less",
                s.samples,
                s.interval,
                s.span(),
                self.timeout
            ));
        }
        Ok(s)
    }

    pub fn selection(&self) -> Result<Selection, UnknownSource> {
        Selection::new(&self.only, &self.skip)
    }

    pub fn config(&self, spool_dir: PathBuf) -> Result<Config, UnknownSource> {
        Ok(Config {
            host_root: self.host_root.clone(),
            node_netns: self.node_netns.clone(),
            selection: self.selection()?,
            conntrack_limit: self.conntrack_limit,
            timeout: Duration::from_secs(self.timeout.max(1)),
            spool_dir,
            parallelism: self
                .parallel
                .unwrap_or_else(Config::default_parallelism)
                .max(1),
            sampling: Sampling {
                samples: self.samples,
                interval: self.interval,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let c = Cli::try_parse_from([
            "netsnap-collect",
            "-o",
            "-",
            "--node-netns",
            "/run/netns/n",
            "--only",
            "netns,nft",
            "--skip",
            "netns/sockets",
            "--conntrack-limit",
            "10",
            "--timeout",
            "5",
            "-q",
        ])
        .unwrap();
        assert_eq!(c.output.as_deref(), Some(std::path::Path::new("-")));
        let cfg = c.config("/tmp".into()).unwrap();
        assert_eq!(cfg.conntrack_limit, 10);
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        assert!(cfg.selection.wants("nft"));
        assert!(!cfg.selection.wants("netns/sockets"));
        assert!(!cfg.selection.wants("ipset"));
        let bad = Cli::try_parse_from(["netsnap-collect", "--only", "nope"]).unwrap();
        assert!(bad.selection().is_err());
    }

    #[test]
    fn sampling_options() {
        let parse = |args: &[&str]| {
            let mut v = vec!["netsnap-collect"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v)
        };
        let c = parse(&["--samples", "5", "--interval", "0.5"]).unwrap();
        let s = c.sampling().unwrap();
        assert_eq!((s.samples, s.interval), (5, Duration::from_millis(500)));
        assert!(s.wanted());
        assert_eq!(c.config("/tmp".into()).unwrap().sampling, s);
        // One reading by default: no sampling.
        assert!(!parse(&[]).unwrap().sampling().unwrap().wanted());
        for bad in [
            &["--samples", "0"][..],
            &["--samples", "3601"],
            &["--interval", "0.01"],
            &["--interval", "x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // 10 readings 10 s apart do not fit in the default 60 s deadline.
        let e = parse(&["--samples", "10", "--interval", "10"])
            .unwrap()
            .sampling()
            .unwrap_err();
        assert!(e.contains("--timeout"), "{e}");
    }

    #[test]
    fn redact_options_need_redact() {
        let c = Cli::try_parse_from(["netsnap-collect", "--redact", "--redact-key", "k"]).unwrap();
        assert!(c.redact);
        assert_eq!(c.redact_key.as_deref(), Some(std::path::Path::new("k")));
        assert!(Cli::try_parse_from(["netsnap-collect", "--redact-key", "k"]).is_err());
        assert!(Cli::try_parse_from(["netsnap-collect", "--redact-map", "m"]).is_err());
    }

    #[test]
    fn idle_option() {
        assert!(
            Cli::try_parse_from(["netsnap-collect", "--idle"])
                .unwrap()
                .idle
        );
        assert!(!Cli::try_parse_from(["netsnap-collect"]).unwrap().idle);
    }
}
