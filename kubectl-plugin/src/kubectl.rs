//! Running `kubectl`: the one from `PATH` (as kubectl runs its plugins), with the
//! user's `--kubeconfig` / `--context` passed through to every call.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Longest kubectl stderr kept in an error message.
const STDERR_CHARS: usize = 2000;

/// How to call kubectl.
#[derive(Debug, Clone, Default)]
pub struct Kubectl {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl Kubectl {
    /// `kubectl [--kubeconfig F] [--context C] ARGS…`, nothing run yet.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new("kubectl");
        if let Some(k) = &self.kubeconfig {
            c.arg("--kubeconfig").arg(k);
        }
        if let Some(ctx) = &self.context {
            c.arg("--context").arg(ctx);
        }
        c.args(args);
        c
    }

    /// Runs kubectl with `stdin` (if any) and returns its stdout; a non-zero exit is
    /// an error carrying kubectl's stderr.
    pub fn output(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let shown = format!("kubectl {}", args.join(" "));
        let mut c = self.command(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .with_context(|| format!("running {shown} (is kubectl on PATH?)"))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data)
                .with_context(|| format!("writing to {shown}"))?;
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for {shown}"))?;
        if !out.status.success() {
            bail!(
                "{shown} failed ({}): {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), STDERR_CHARS)
            );
        }
        Ok(out.stdout)
    }

    /// Runs a `kubectl get … -o json` and parses its output.
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.output(&all, None)?;
        serde_json::from_slice(&out)
            .with_context(|| format!("kubectl {}: output is not JSON", all.join(" ")))
    }
}

/// The last `max` characters of `text`, trimmed, control characters shown as spaces
/// (kubectl relays whatever the node printed).
pub fn tail(text: &str, max: usize) -> String {
    let clean: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let n = clean.chars().count();
    if n <= max {
        return clean;
    }
    let kept: String = clean.chars().skip(n - max).collect();
    format!("…{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_flags_come_first() {
        let k = Kubectl {
            kubeconfig: Some("/k".into()),
            context: Some("prod".into()),
        };
        let c = k.command(&["get", "nodes"]);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--kubeconfig", "/k", "--context", "prod", "get", "nodes"]
        );
        let plain = Kubectl::default().command(&["version"]);
        assert_eq!(plain.get_args().count(), 1);
    }

    #[test]
    fn tail_keeps_the_end_without_control_characters() {
        assert_eq!(tail("  a\u{1b}[31mb \n", 10), "a [31mb");
        assert_eq!(tail("0123456789", 4), "…6789");
    }
}
