//! Bounded real traffic from inside a pod netns (one socket per request, every
//! call with a timeout), so the node's conntrack holds real DNAT entries.

use super::model::Protocol;
use super::netns;
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// One request/response: TCP reads until the server closes, UDP sends `payload`
/// and waits for one datagram.
fn request_here(proto: Protocol, to: SocketAddr, payload: &[u8]) -> Result<Vec<u8>> {
    match proto {
        Protocol::Tcp => {
            let mut s = TcpStream::connect_timeout(&to, REQUEST_TIMEOUT)
                .with_context(|| format!("tcp connect {to}"))?;
            s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            s.set_write_timeout(Some(REQUEST_TIMEOUT))?;
            if !payload.is_empty() {
                s.write_all(payload)?;
                // An echo server answers until it sees our end of stream.
                s.shutdown(Shutdown::Write)?;
            }
            let mut buf = Vec::new();
            s.read_to_end(&mut buf)
                .with_context(|| format!("tcp read from {to}"))?;
            Ok(buf)
        }
        Protocol::Udp => {
            let s = UdpSocket::bind(if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" })?;
            s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            s.send_to(payload, to)
                .with_context(|| format!("udp send to {to}"))?;
            let mut buf = vec![0u8; 2048];
            let n = s
                .recv(&mut buf)
                .with_context(|| format!("udp reply from {to}"))?;
            buf.truncate(n);
            Ok(buf)
        }
    }
}

/// Sends each request (IPv4 or IPv6) from inside the netns at `ns_path`; returns
/// one result per request.
pub fn requests(
    ns_path: &Path,
    reqs: Vec<(Protocol, SocketAddr, Vec<u8>)>,
) -> Result<Vec<Result<Vec<u8>>>> {
    netns::run_in(ns_path, move || {
        Ok(reqs
            .into_iter()
            .map(|(p, to, payload)| request_here(p, to, &payload))
            .collect())
    })
}

/// Sends one UDP datagram from inside the netns and does not wait for a reply
/// (used to make the kernel try to create a conntrack entry).
pub fn udp_send(ns_path: &Path, to: SocketAddrV4, count: usize) -> Result<()> {
    netns::run_in(ns_path, move || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        for _ in 0..count {
            // A full conntrack table drops these; only the attempt matters.
            let _ = s.send_to(b"x", to);
        }
        Ok(())
    })
}
