//! The listener that runs inside endpoint pods (`netsnap-lab serve …`, exec'd
//! into the pod's namespaces). socat's UDP `fork` modes lose datagrams that
//! arrive while a child is alive, so UDP (and, for symmetry, TCP) is served by
//! this small std-only server instead; socat is the fallback when the
//! `netsnap-lab` binary cannot be found.

use super::model::Protocol;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

/// The last argument that makes the server answer on IPv6 too (dual-stack pods).
const DUAL_STACK_FLAG: &str = "--dual-stack";

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

/// `netsnap-lab serve <tcp|udp> <port> <text TEXT|echo> [--dual-stack]` argument form.
pub fn args(proto: Protocol, port: u16, reply: &Reply, dual_stack: bool) -> Vec<String> {
    let mut v = vec![
        "serve".to_string(),
        proto.lower().to_string(),
        port.to_string(),
    ];
    match reply {
        Reply::Text(t) => v.extend(["text".to_string(), t.clone()]),
        Reply::Echo => v.push("echo".to_string()),
    }
    if dual_stack {
        v.push(DUAL_STACK_FLAG.to_string());
    }
    v
}

/// Parses what [`args`] produced (without the leading `serve`): protocol, port,
/// reply, and whether to answer on IPv6 too.
pub fn parse_args(a: &[String]) -> Result<(Protocol, u16, Reply, bool)> {
    let dual_stack = a.last().is_some_and(|l| l == DUAL_STACK_FLAG);
    let a = if dual_stack { &a[..a.len() - 1] } else { a };
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
    Ok((proto, port, reply, dual_stack))
}

/// Serves forever in the current netns (ended by the lab with SIGKILL): on IPv4,
/// and with `dual_stack` also on an IPv6-only socket of the same port (bound first,
/// so the lab's wait for the IPv4 port also covers it). Two sockets, not one
/// dual-stack `[::]` socket, so the pod's IPv4 socket table stays what it was.
pub fn serve(proto: Protocol, port: u16, reply: Reply, dual_stack: bool) -> Result<()> {
    let v6 = if dual_stack {
        Some(bind_v6_only(proto, port).with_context(|| format!("bind [::]:{port}"))?)
    } else {
        None
    };
    match proto {
        Protocol::Udp => {
            let s =
                UdpSocket::bind(("0.0.0.0", port)).with_context(|| format!("bind udp {port}"))?;
            if let Some(fd) = v6 {
                let (s6, reply) = (UdpSocket::from(fd), reply.clone());
                std::thread::spawn(move || serve_udp(&s6, &reply));
            }
            serve_udp(&s, &reply)
        }
        Protocol::Tcp => {
            let l =
                TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("bind tcp {port}"))?;
            if let Some(fd) = v6 {
                let (l6, reply) = (TcpListener::from(fd), reply.clone());
                std::thread::spawn(move || serve_tcp(&l6, &reply));
            }
            serve_tcp(&l, &reply)
        }
    }
}

fn serve_udp(s: &UdpSocket, reply: &Reply) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = s.recv_from(&mut buf)?;
        // A vanished peer is its problem, not the server's.
        let _ = s.send_to(&reply.answer(&buf[..n]), peer);
    }
}

/// An `[::]:port` socket with IPV6_V6ONLY (listening, for TCP).
fn bind_v6_only(proto: Protocol, port: u16) -> std::io::Result<OwnedFd> {
    let ty = match proto {
        Protocol::Tcp => libc::SOCK_STREAM,
        Protocol::Udp => libc::SOCK_DGRAM,
    };
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // SAFETY: plain socket syscalls on an fd this function owns from the start.
    unsafe {
        let fd = check(libc::socket(libc::AF_INET6, ty | libc::SOCK_CLOEXEC, 0))?;
        let owned = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let one_ptr = (&one as *const libc::c_int).cast();
        check(libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            one_ptr,
            len,
        ))?;
        check(libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            one_ptr,
            len,
        ))?;
        let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sa.sin6_port = port.to_be();
        let sa_len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        check(libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in6).cast(),
            sa_len,
        ))?;
        if proto == Protocol::Tcp {
            check(libc::listen(fd, 128))?;
        }
        Ok(owned)
    }
}

fn serve_tcp(l: &TcpListener, reply: &Reply) -> Result<()> {
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
