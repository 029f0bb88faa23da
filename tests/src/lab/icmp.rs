//! ICMP echo from inside a netns over a raw socket (the lab needs no `ping`
//! binary): one request, one matching reply, bounded by a timeout.

use super::netns;
use anyhow::{bail, Result};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ping_here(to: Ipv4Addr, timeout: Duration) -> Result<Duration> {
    // SAFETY: plain socket syscalls on an fd we own and close below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            bail!("raw socket: {}", std::io::Error::last_os_error());
        }
        let res = exchange(fd, to, timeout);
        libc::close(fd);
        res
    }
}

unsafe fn exchange(fd: i32, to: Ipv4Addr, timeout: Duration) -> Result<Duration> {
    let id = (std::process::id() as u16) ^ 0x4e53;
    let seq: u16 = 1;
    let mut pkt = vec![8u8, 0, 0, 0];
    pkt.extend(id.to_be_bytes());
    pkt.extend(seq.to_be_bytes());
    pkt.extend(b"netsnap-lab-ping");
    let c = checksum(&pkt);
    pkt[2..4].copy_from_slice(&c.to_be_bytes());
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(to).to_be(),
        },
        sin_zero: [0; 8],
    };
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    libc::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVTIMEO,
        &tv as *const _ as *const libc::c_void,
        std::mem::size_of::<libc::timeval>() as libc::socklen_t,
    );
    let start = Instant::now();
    let sent = libc::sendto(
        fd,
        pkt.as_ptr() as *const libc::c_void,
        pkt.len(),
        0,
        &addr as *const libc::sockaddr_in as *const libc::sockaddr,
        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
    );
    if sent < 0 {
        bail!("sendto {to}: {}", std::io::Error::last_os_error());
    }
    let mut buf = [0u8; 1500];
    while start.elapsed() < timeout {
        let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        if n < ihl + 8 {
            continue;
        }
        let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        let icmp = &buf[ihl..n];
        let (rid, rseq) = (
            u16::from_be_bytes([icmp[4], icmp[5]]),
            u16::from_be_bytes([icmp[6], icmp[7]]),
        );
        if icmp[0] == 0 && src == to && rid == id && rseq == seq {
            return Ok(start.elapsed());
        }
    }
    bail!("no echo reply from {to} within {timeout:?}")
}

/// One ICMP echo from the netns at `ns_path` to `to`; the round-trip time.
pub fn ping(ns_path: &Path, to: Ipv4Addr, timeout: Duration) -> Result<Duration> {
    netns::run_in(ns_path, move || ping_here(to, timeout))
}
