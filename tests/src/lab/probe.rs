//! What the kernel does with one request, classified the way the trace engine's
//! verdicts are compared with it: answered (and by whom), refused, unreachable (an
//! errno from the sender's stack or an ICMP error), or nothing within the timeout.
//! Many probes run at once, one thread each, so a set of timeouts costs one timeout.

use super::model::Protocol;
use super::netns;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A reply (its text, trimmed: the lab's listeners answer with their pod name).
    Answered(String),
    /// The TCP handshake completed but no reply came in time (the server waits for
    /// something else): the kernel delivered the connection, the endpoint is unknown.
    Connected,
    /// ECONNREFUSED: a TCP reset or an ICMP port unreachable.
    Refused,
    /// EHOSTUNREACH, ENETUNREACH, EACCES, EINVAL (blackhole) … (the errno's name).
    Unreachable(String),
    /// Nothing came back in time.
    TimedOut,
    /// Anything else (the error's text).
    Other(String),
}

/// One request from a netns.
#[derive(Debug, Clone)]
pub struct Probe {
    pub netns: PathBuf,
    pub proto: Protocol,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

fn classify(e: &std::io::Error) -> Observed {
    match e.kind() {
        ErrorKind::ConnectionRefused => Observed::Refused,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Observed::TimedOut,
        ErrorKind::HostUnreachable => Observed::Unreachable("EHOSTUNREACH".into()),
        ErrorKind::NetworkUnreachable => Observed::Unreachable("ENETUNREACH".into()),
        ErrorKind::PermissionDenied => Observed::Unreachable("EACCES".into()),
        ErrorKind::InvalidInput => Observed::Unreachable("EINVAL".into()),
        _ => Observed::Other(e.to_string()),
    }
}

fn run_here(p: &Probe, timeout: Duration) -> Observed {
    let result = match p.proto {
        Protocol::Tcp => {
            let mut s = match TcpStream::connect_timeout(&p.to, timeout) {
                Ok(s) => s,
                Err(e) => return classify(&e),
            };
            match exchange(&mut s, p, timeout) {
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                    return Observed::Connected
                }
                r => r,
            }
        }
        Protocol::Udp => udp(p, timeout),
    };
    match result {
        Ok(reply) => Observed::Answered(String::from_utf8_lossy(&reply).trim().to_string()),
        Err(e) => classify(&e),
    }
}

fn exchange(s: &mut TcpStream, p: &Probe, timeout: Duration) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    if !p.payload.is_empty() {
        s.write_all(&p.payload)?;
        s.shutdown(Shutdown::Write)?;
    }
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf)
}

fn udp(p: &Probe, timeout: Duration) -> std::io::Result<Vec<u8>> {
    // Unconnected, as the lab's other traffic: ICMP errors are not reported to it.
    let bind: SocketAddr = if p.to.is_ipv6() {
        "[::]:0".parse().expect("literal")
    } else {
        "0.0.0.0:0".parse().expect("literal")
    };
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(timeout))?;
    s.send_to(&p.payload, p.to)?;
    let mut buf = vec![0u8; 2048];
    let n = s.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Runs every probe at once (one thread each, in its netns); results in order.
pub fn run_all(probes: &[Probe], timeout: Duration) -> Vec<Observed> {
    let handles: Vec<_> = probes
        .iter()
        .cloned()
        .map(|p| {
            std::thread::spawn(move || {
                netns::run_in(&p.netns.clone(), move || Ok(run_here(&p, timeout)))
                    .unwrap_or_else(|e| Observed::Other(format!("{e:#}")))
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Observed::Other("probe thread panicked".into()))
        })
        .collect()
}
