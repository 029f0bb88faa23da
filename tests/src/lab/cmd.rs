//! Running external tools (`ip`, `iptables-restore`, `nft`, `conntrack` …) with
//! a deadline and with their stderr in the error, so a failing lab step says why.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Every tool the lab runs finishes in well under this; a hang is a bug we want
/// reported, not a test that never ends.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A printable form of a command for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if s.len() > 300 {
        s.truncate(300);
        s.push('…');
    }
    s
}

/// Runs `cmd` with optional stdin, waits at most `timeout`, returns its output
/// whatever the exit status.
pub fn output_with(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{what}`"))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(thread::spawn(move || {
                // A tool that exits early closes the pipe; its exit status tells why.
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let mut out_pipe = child.stdout.take().context("stdout pipe")?;
    let mut err_pipe = child.stderr.take().context("stderr pipe")?;
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .with_context(|| format!("waiting for `{what}`"))?
        {
            break st;
        }
        if Instant::now() >= deadline {
            // Our own child, ended by its PID.
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{what}` did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(2));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Runs `cmd` and returns its output whatever the exit status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    output_with(cmd, None, DEFAULT_TIMEOUT)
}

/// Runs `cmd`, failing with its stderr unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<Output> {
    run_stdin(cmd, None)
}

/// Runs `cmd` feeding `stdin`, failing with its stderr unless it exits 0.
pub fn run_stdin(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output> {
    let what = describe(cmd);
    let out = output_with(cmd, stdin, DEFAULT_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Stdout of a successful run, as text.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&run(cmd)?.stdout).into_owned())
}

/// Where `tool` lives on `PATH` (plus the sbin dirs, which a non-login root
/// shell may lack).
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(std::path::PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Polls `f` until it returns `Some`, at most until `timeout`; never a fixed sleep.
pub fn poll<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Stdout of a finished command, asserting it succeeded (for tests).
pub fn ok_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stdout of a finished `ip -j …`-style command as JSON, asserting success (for tests).
pub fn ok_json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok_stdout(o)).expect("command output is JSON")
}
