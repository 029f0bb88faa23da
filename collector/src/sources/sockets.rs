//! Listening TCP and bound UDP sockets of the current thread's netns, from
//! `/proc/thread-self/net/{tcp,tcp6,udp,udp6}`; TCP listeners from a sock_diag dump
//! of LISTEN sockets instead when `inet_diag` and `tcp_diag` are loaded or built in (a
//! request would autoload them otherwise). Reading `/proc/net/tcp{,6}` walks the
//! whole established-connection hash table, which every netns shares (~1.7 ms a read
//! here, 75 % of a 113-netns capture's CPU); the LISTEN-only dump walks the listener
//! hash only.

use crate::sys::procfs::thread_net;
use netsnap_schema::model::{Socket, SocketProto};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

/// TCP_LISTEN in the `st` column.
const TCP_LISTEN: &str = "0A";

/// What was read, and the files that could not be (IPv6 may be disabled).
pub struct SocketScan {
    pub sockets: Vec<Socket>,
    pub errors: Vec<String>,
    /// Lines that did not parse.
    pub unparsed: u64,
}

pub fn scan_thread_netns(sys: &dyn crate::sys::Sys) -> SocketScan {
    let mut scan = SocketScan {
        sockets: Vec::new(),
        errors: Vec::new(),
        unparsed: 0,
    };
    let diag = sys.module_present("inet_diag") && sys.module_present("tcp_diag");
    for (file, proto) in [
        ("tcp", SocketProto::Tcp),
        ("tcp6", SocketProto::Tcp6),
        ("udp", SocketProto::Udp),
        ("udp6", SocketProto::Udp6),
    ] {
        if diag && matches!(proto, SocketProto::Tcp | SocketProto::Tcp6) {
            // Falls back to the file on any error (the file says the same, slower).
            if let Ok(mut s) = diag_tcp_listeners(proto) {
                scan.sockets.append(&mut s);
                continue;
            }
        }
        let path = thread_net(file);
        match crate::sys::procfs::read_capped(&path, 256 << 20) {
            Ok(text) => {
                let (mut s, bad) = parse_table(&text, proto);
                scan.sockets.append(&mut s);
                scan.unparsed += bad;
            }
            // No IPv6 in this kernel/netns: not an error worth a partial.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => scan
                .errors
                .push(crate::source::io_reason(&path.display().to_string(), &e)),
        }
    }
    scan.sockets.sort_by(|a, b| {
        (a.proto, a.port, &a.local, a.inode).cmp(&(b.proto, b.port, &b.local, b.inode))
    });
    scan
}

/// TCP sockets in LISTEN of the calling thread's netns, from one sock_diag dump
/// (`SOCK_DIAG_BY_FAMILY`, `idiag_states` = LISTEN only).
pub fn diag_tcp_listeners(
    proto: SocketProto,
) -> Result<Vec<Socket>, crate::sys::nldump::DumpError> {
    use crate::sys::nldump::{self, DumpError};
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const TCP_LISTEN_STATE: u32 = 10;
    let v6 = proto == SocketProto::Tcp6;
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zero
    // inet_diag_sockid (48 bytes): every socket.
    let mut req = vec![family, libc::IPPROTO_TCP as u8, 0, 0];
    req.extend((1u32 << TCP_LISTEN_STATE).to_ne_bytes());
    req.extend([0u8; 48]);
    let req = nldump::request(SOCK_DIAG_BY_FAMILY, &req);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for _attempt in 0..3 {
        let mut out = Vec::new();
        let r = nldump::dump(
            netlink_sys::protocols::NETLINK_SOCK_DIAG,
            &req,
            until,
            |_, body| out.extend(parse_diag_msg(body, proto)),
        );
        match r {
            Ok(()) => return Ok(out),
            Err(DumpError::Interrupted) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(DumpError::Interrupted)
}

/// One `struct inet_diag_msg` of a LISTEN dump as a [`Socket`] (the same fields the
/// `/proc` table gives: local address and port, uid, inode).
pub fn parse_diag_msg(m: &[u8], proto: SocketProto) -> Option<Socket> {
    const TCP_LISTEN_STATE: u8 = 10;
    // family, state, timer, retrans; id: sport(be16) dport(be16) src[16] dst[16] if
    // cookie[8]; expires, rqueue, wqueue, uid, inode (u32 each).
    if m.len() < 72 || m[1] != TCP_LISTEN_STATE {
        return None;
    }
    let port = u16::from_be_bytes([m[4], m[5]]);
    let local = match m[0] as i32 {
        libc::AF_INET => Ipv4Addr::new(m[8], m[9], m[10], m[11]).to_string(),
        libc::AF_INET6 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&m[8..24]);
            Ipv6Addr::from(b).to_string()
        }
        _ => return None,
    };
    let word = |o: usize| u32::from_ne_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
    if port == 0 {
        return None;
    }
    Some(Socket {
        proto,
        local,
        port,
        inode: u64::from(word(68)),
        uid: word(64),
    })
}

/// Parses one `/proc/net/{tcp,udp}[6]` table: TCP sockets in LISTEN, UDP sockets
/// bound to a port. Returns the sockets and the number of unparsable lines.
pub fn parse_table(text: &str, proto: SocketProto) -> (Vec<Socket>, u64) {
    let tcp = matches!(proto, SocketProto::Tcp | SocketProto::Tcp6);
    let v6 = matches!(proto, SocketProto::Tcp6 | SocketProto::Udp6);
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, v6) {
            Some((local, port, state, uid, inode)) => {
                if (tcp && state != TCP_LISTEN) || port == 0 {
                    continue;
                }
                out.push(Socket {
                    proto,
                    local,
                    port,
                    inode,
                    uid,
                });
            }
            None => bad += 1,
        }
    }
    (out, bad)
}

fn parse_line(line: &str, v6: bool) -> Option<(String, u16, &str, u32, u64)> {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let (addr, port) = f[1].split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let local = if v6 {
        hex_v6(addr)?.to_string()
    } else {
        hex_v4(addr)?.to_string()
    };
    let uid = f[7].parse().ok()?;
    let inode = f[9].parse().ok()?;
    Some((local, port, f[3], uid, inode))
}

/// The kernel prints each 32-bit word of the address in host byte order (`%08X`).
fn hex_v4(s: &str) -> Option<Ipv4Addr> {
    if s.len() != 8 {
        return None;
    }
    let w = u32::from_str_radix(s, 16).ok()?;
    Some(Ipv4Addr::from(w.to_le_bytes()))
}

fn hex_v6(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for i in 0..4 {
        let w = u32::from_str_radix(s.get(i * 8..i * 8 + 8)?, 16).ok()?;
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    Some(Ipv6Addr::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 777 1 0000000000000000 100 0 0 10 0
   2: 050AF40A:1F90 060AF40A:D431 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn tcp_listeners_only() {
        let (s, bad) = parse_table(TCP, SocketProto::Tcp);
        assert_eq!(bad, 0);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].local.as_str(), s[0].port, s[0].inode),
            ("0.0.0.0", 8080, 12345)
        );
        assert_eq!(
            (s[1].local.as_str(), s[1].port, s[1].uid),
            ("127.0.0.1", 53, 101)
        );
    }

    #[test]
    fn udp_and_v6() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0A0060A0:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0
";
        let (s, _) = parse_table(udp, SocketProto::Udp);
        assert_eq!((s[0].local.as_str(), s[0].port), ("160.96.0.10", 53));
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 32 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 33 1 0000000000000000 100 0 0 10 0
";
        let (s, bad) = parse_table(tcp6, SocketProto::Tcp6);
        assert_eq!(bad, 0);
        assert_eq!(s[0].local, "::");
        assert_eq!(s[1].local, "::1");
        assert_eq!(s[2].local, "::ffff:127.0.0.1");
    }

    #[test]
    fn garbage_is_counted() {
        let (s, bad) = parse_table("header\nnot a socket line\n", SocketProto::Tcp);
        assert!(s.is_empty());
        assert_eq!(bad, 1);
    }

    fn diag_msg(family: i32, state: u8, port: u16, addr: &[u8], uid: u32, inode: u32) -> Vec<u8> {
        let mut m = vec![family as u8, state, 0, 0];
        m.extend(port.to_be_bytes());
        m.extend([0, 0]);
        let mut src = [0u8; 16];
        src[..addr.len()].copy_from_slice(addr);
        m.extend(src);
        m.extend([0u8; 16 + 4 + 8 + 12]);
        m.extend(uid.to_ne_bytes());
        m.extend(inode.to_ne_bytes());
        m
    }

    #[test]
    fn sock_diag_listeners_match_the_proc_table() {
        // The same sockets as the first two lines of TCP above.
        let a = diag_msg(libc::AF_INET, 10, 8080, &[0, 0, 0, 0], 0, 12345);
        let b = diag_msg(libc::AF_INET, 10, 53, &[127, 0, 0, 1], 101, 777);
        let (proc_view, _) = parse_table(TCP, SocketProto::Tcp);
        let diag: Vec<Socket> = [a, b]
            .iter()
            .filter_map(|m| parse_diag_msg(m, SocketProto::Tcp))
            .collect();
        assert_eq!(diag, proc_view);
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let m = diag_msg(libc::AF_INET6, 10, 8081, &v6, 0, 32);
        let s = parse_diag_msg(&m, SocketProto::Tcp6).unwrap();
        assert_eq!((s.local.as_str(), s.port, s.inode), ("::1", 8081, 32));
        // Not LISTEN, or short: skipped.
        assert!(parse_diag_msg(
            &diag_msg(libc::AF_INET, 1, 80, &[1, 2, 3, 4], 0, 1),
            SocketProto::Tcp
        )
        .is_none());
        assert!(parse_diag_msg(&[2, 10, 0], SocketProto::Tcp).is_none());
    }
}
