//! One node: stream its bundle out of the DaemonSet pod (`kubectl exec … -o -`) into
//! `DIR/.<node>.netsnap.tar.zst.partial`, check that what arrived is a readable
//! bundle, then rename it to `DIR/<node>.netsnap.tar.zst` (with `--redact`: the
//! stream goes to an unnamed temporary file and only the redacted bundle gets a name).
//! Whatever happens becomes the node's [`NodeRecord`].

use crate::kubectl::{tail, Kubectl};
use crate::record::{NodeRecord, NodeStatus};
use crate::redaction::Redaction;
use crate::stream::{self, End, Limits, Streamed};
use crate::targets::Target;
use crate::{COLLECTOR_CONTAINER, COLLECTOR_PATH, NAMESPACE};
use netsnap_schema::{Bundle, ReadLimits};
use std::io::{BufReader, BufWriter, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Characters of kubectl's stderr kept in a reason.
const REASON_CHARS: usize = 600;

/// Largest bundle accepted from a node: the reader's own total limit (a node
/// streaming garbage forever is cut there, not when the disk is full).
fn max_bundle_bytes(limits: &ReadLimits) -> u64 {
    limits.max_total_bytes
}

/// What every node's fetch shares.
pub struct FetchOptions<'a> {
    pub kubectl: &'a Kubectl,
    pub dir: &'a Path,
    pub timeout: Duration,
    pub redaction: Option<&'a Redaction>,
    pub limits: &'a ReadLimits,
}

/// `kubectl exec -n netsnap POD -c collector -- /netsnap-collect --host-root /host
/// -q -o - --timeout N`: the collector's own deadline is three quarters of ours, so a
/// slow node still sends the bundle it has before it is cut off.
pub fn exec_args(pod: &str, timeout: Duration) -> Vec<String> {
    let collector_deadline = (timeout.as_secs() * 3 / 4).max(1);
    [
        "exec",
        "-n",
        NAMESPACE,
        pod,
        "-c",
        COLLECTOR_CONTAINER,
        "--",
        COLLECTOR_PATH,
        "--host-root",
        "/host",
        "-q",
        "-o",
        "-",
        "--timeout",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([collector_deadline.to_string()])
    .collect()
}

/// Fetches one node (see the module doc).
pub fn fetch(o: &FetchOptions<'_>, target: &Target, counter: &Arc<AtomicU64>) -> NodeRecord {
    let started = Instant::now();
    let mut rec = NodeRecord::new(&target.node, target.pod.as_ref().ok().cloned());
    let pod = match &target.pod {
        Ok(p) => p.clone(),
        Err(why) => return rec.failed(NodeStatus::NoPod, why.clone(), started),
    };
    let result = match o.redaction {
        None => fetch_plain(o, &target.node, &pod, counter),
        Some(r) => fetch_redacted(o, r, &target.node, &pod, counter),
    };
    match result {
        Ok((bundle, bytes, hostname)) => rec.collected(bundle, bytes, hostname, started),
        Err((status, reason, bytes)) => {
            rec.bytes = bytes;
            rec.failed(status, reason, started)
        }
    }
}

/// A failure: its status, the reason, bytes received.
type Failure = (NodeStatus, String, u64);

/// (bundle file name in DIR, bytes received, hostname in its manifest)
type Fetched = (String, u64, String);

fn fetch_plain(
    o: &FetchOptions<'_>,
    node: &str,
    pod: &str,
    counter: &Arc<AtomicU64>,
) -> Result<Fetched, Failure> {
    let name = format!("{node}.netsnap.tar.zst");
    let partial = o.dir.join(format!(".{name}.partial"));
    // 0600 like the collector's own bundles: they hold the node's addresses and rules.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| {
            let why = format!("creating {}: {e}", partial.display());
            (NodeStatus::Failed, why, 0)
        })?;
    let mut sink = BufWriter::new(file);
    let streamed = run_exec(o, pod, &mut sink, counter, Some(partial.clone()));
    drop(sink);
    let outcome = streamed
        .and_then(|s| check_stream(s, o.timeout))
        .and_then(|bytes| {
            let b = Bundle::open(&partial, o.limits).map_err(|e| not_a_bundle(bytes, &e))?;
            std::fs::rename(&partial, o.dir.join(&name)).map_err(|e| {
                (
                    NodeStatus::Failed,
                    format!("renaming {}: {e}", partial.display()),
                    bytes,
                )
            })?;
            Ok((name.clone(), bytes, b.manifest.hostname.clone()))
        });
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    outcome
}

fn fetch_redacted(
    o: &FetchOptions<'_>,
    r: &Redaction,
    node: &str,
    pod: &str,
    counter: &Arc<AtomicU64>,
) -> Result<Fetched, Failure> {
    // Unnamed: nothing unredacted is ever visible in DIR.
    let file = tempfile::tempfile_in(o.dir).map_err(|e| {
        let why = format!("creating a temporary file in {}: {e}", o.dir.display());
        (NodeStatus::Failed, why, 0)
    })?;
    let mut sink = BufWriter::new(file);
    let streamed = run_exec(o, pod, &mut sink, counter, None);
    let bytes = streamed.and_then(|s| check_stream(s, o.timeout))?;
    let mut file = sink
        .into_inner()
        .map_err(|e| (NodeStatus::Failed, format!("spool: {}", e.error()), bytes))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| (NodeStatus::Failed, format!("spool: {e}"), bytes))?;
    let origin = format!("{} (as received)", r.shown(node));
    let b = Bundle::from_archive(BufReader::new(file), &origin, o.limits)
        .map_err(|e| not_a_bundle(bytes, &e))?;
    let (name, hostname) = r
        .write(&b, node, o.dir)
        .map_err(|e| (NodeStatus::Failed, format!("--redact: {e:#}"), bytes))?;
    Ok((name, bytes, hostname))
}

fn run_exec(
    o: &FetchOptions<'_>,
    pod: &str,
    sink: &mut (dyn std::io::Write + Send),
    counter: &Arc<AtomicU64>,
    partial: Option<PathBuf>,
) -> Result<Streamed, Failure> {
    let limits = Limits {
        deadline: o.timeout,
        max_bytes: max_bundle_bytes(o.limits),
    };
    let cmd = o.kubectl.command(&exec_args(pod, o.timeout));
    stream::run(cmd, sink, counter, &limits, partial)
        .map_err(|e| (NodeStatus::Failed, format!("running kubectl exec: {e}"), 0))
}

/// The bytes received, if the stream ended well.
fn check_stream(s: Streamed, timeout: Duration) -> Result<u64, Failure> {
    let stderr = tail(&s.stderr, REASON_CHARS);
    let with_stderr = |msg: String| {
        if stderr.is_empty() {
            msg
        } else {
            format!("{msg}: {stderr}")
        }
    };
    let bytes = match &s.copied {
        Ok(n) => *n,
        Err(e) => {
            return Err((NodeStatus::Failed, format!("writing the bundle: {e}"), 0));
        }
    };
    match s.end {
        End::TimedOut => Err((
            NodeStatus::TimedOut,
            with_stderr(format!(
                "no complete bundle after {}s ({bytes} bytes received); kubectl exec killed",
                timeout.as_secs()
            )),
            bytes,
        )),
        End::TooLarge => Err((
            NodeStatus::Failed,
            format!("more than {bytes} bytes: not a bundle; kubectl exec killed"),
            bytes,
        )),
        End::Exited(st) if !st.success() => Err((
            NodeStatus::Failed,
            with_stderr(format!("kubectl exec exited with {st}")),
            bytes,
        )),
        End::Exited(_) if bytes == 0 => Err((
            NodeStatus::Failed,
            with_stderr("kubectl exec succeeded but sent nothing".into()),
            0,
        )),
        End::Exited(_) => Ok(bytes),
    }
}

fn not_a_bundle(bytes: u64, e: &netsnap_schema::ReadError) -> Failure {
    (
        NodeStatus::Failed,
        format!("{bytes} bytes received, but not a readable bundle: {e}"),
        bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_runs_the_collector_on_the_host_root_to_stdout() {
        let a = exec_args("netsnap-collector-x7", Duration::from_secs(120));
        let s = a.join(" ");
        assert_eq!(
            s,
            "exec -n netsnap netsnap-collector-x7 -c collector -- /netsnap-collect --host-root /host -q -o - --timeout 90"
        );
        assert!(exec_args("p", Duration::from_secs(1)).ends_with(&["1".to_string()]));
    }
}
