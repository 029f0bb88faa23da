//! The listener that runs inside endpoint pods (`netsnap-lab serve …`, exec'd
//! into the pod's namespaces). socat's UDP `fork` modes lose datagrams that
//! arrive while a child is alive, so UDP (and, for symmetry, TCP) is served by
//! this small std-only server instead; socat is the fallback when the
//! `netsnap-lab` binary cannot be found.

use super::model::Protocol;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

/// What the server answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Writes this text (the pod name) and a newline, then closes: proves
    /// which endpoint answered.
    Text(String),
    /// Echoes what it got (the DNS stub: every query gets a reply).
    Echo,
}

impl Reply {
    fn answer(&self, got: &[u8]) -> Vec<u8> {
        match self {
            Reply::Text(t) => format!("{t}\n").into_bytes(),
            Reply::Echo => got.to_vec(),
        }
    }
}

/// `netsnap-lab serve <tcp|udp> <port> <text TEXT|echo>` argument form.
pub fn args(proto: Protocol, port: u16, reply: &Reply) -> Vec<String> {
    let mut v = vec![
        "serve".to_string(),
        proto.lower().to_string(),
        port.to_string(),
    ];
    match reply {
        Reply::Text(t) => v.extend(["text".to_string(), t.clone()]),
        Reply::Echo => v.push("echo".to_string()),
    }
    v
}

/// Parses what [`args`] produced (without the leading `serve`).
pub fn parse_args(a: &[String]) -> Result<(Protocol, u16, Reply)> {
    let proto = match a.first().map(String::as_str) {
        Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        other => bail!("serve: protocol tcp|udp, not {other:?}"),
    };
    let port = a
        .get(1)
        .context("serve: port")?
        .parse()
        .context("serve: port")?;
    let reply = match (a.get(2).map(String::as_str), a.get(3)) {
        (Some("text"), Some(t)) => Reply::Text(t.clone()),
        (Some("echo"), None) => Reply::Echo,
        _ => bail!("serve: reply `text TEXT` or `echo`"),
    };
    Ok((proto, port, reply))
}

/// Serves forever in the current netns (ended by the lab with SIGKILL).
pub fn serve(proto: Protocol, port: u16, reply: Reply) -> Result<()> {
    match proto {
        Protocol::Udp => {
            let s =
                UdpSocket::bind(("0.0.0.0", port)).with_context(|| format!("bind udp {port}"))?;
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, peer) = s.recv_from(&mut buf)?;
                // A vanished peer is its problem, not the server's.
                let _ = s.send_to(&reply.answer(&buf[..n]), peer);
            }
        }
        Protocol::Tcp => {
            let l =
                TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("bind tcp {port}"))?;
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let reply = reply.clone();
                std::thread::spawn(move || {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                    let mut got = Vec::new();
                    if matches!(reply, Reply::Echo) {
                        let _ = c.read_to_end(&mut got);
                    }
                    let _ = c.write_all(&reply.answer(&got));
                });
            }
            Ok(())
        }
    }
}

/// The `netsnap-lab` binary next to the running executable (integration tests
/// live in `target/<profile>/deps/`, the binary in `target/<profile>/`), or
/// `$NETSNAP_LAB_BIN`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETSNAP_LAB_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("netsnap-lab"))
        .find(|p| p.is_file())
}
