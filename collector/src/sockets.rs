//! Listening TCP and bound UDP sockets of the current thread's netns, from
//! `/proc/thread-self/net/{tcp,tcp6,udp,udp6}`.

use crate::procfs::thread_net;
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

pub fn scan_thread_netns() -> SocketScan {
    let mut scan = SocketScan {
        sockets: Vec::new(),
        errors: Vec::new(),
        unparsed: 0,
    };
    for (file, proto) in [
        ("tcp", SocketProto::Tcp),
        ("tcp6", SocketProto::Tcp6),
        ("udp", SocketProto::Udp),
        ("udp6", SocketProto::Udp6),
    ] {
        let path = thread_net(file);
        match crate::procfs::read_capped(&path, 256 << 20) {
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
}
