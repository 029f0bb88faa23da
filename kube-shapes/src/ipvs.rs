//! `/proc/net/ip_vs` as the kernel prints it (`ip_vs_ctl.c`, `ip_vs_info_seq_show`)
//! for the virtual servers kube-proxy's IPVS mode programs: one per service port, `rr`
//! scheduler, no flags, each endpoint a `Masq` real server of weight 1.
//!
//! Shared by the lab (whose kernel has no IPVS: the test places this text in the
//! bundle) and the scale generator (parser input).

use crate::Protocol;
use std::io::{self, Write};
use std::net::SocketAddrV4;

/// The three header lines, with the default connection table size (2^12).
pub const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n";

/// One virtual server and its real servers.
#[derive(Debug, Clone, Copy)]
pub struct VirtualServer<'a> {
    pub protocol: Protocol,
    pub vip: SocketAddrV4,
    pub real_servers: &'a [SocketAddrV4],
}

/// Writes the whole file; `counters` gives each real server's (active, inactive)
/// connection counts, in file order.
pub fn write_proc_ip_vs<'a, W: Write>(
    out: &mut W,
    servers: impl IntoIterator<Item = VirtualServer<'a>>,
    mut counters: impl FnMut() -> (u32, u32),
) -> io::Result<()> {
    out.write_all(HEADER.as_bytes())?;
    for vs in servers {
        let proto = match vs.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        };
        // "%s  %08X:%04X %s %s " then '\n' (not persistent), flags empty.
        writeln!(
            out,
            "{proto}  {:08X}:{:04X} rr  ",
            u32::from(*vs.vip.ip()),
            vs.vip.port()
        )?;
        for rs in vs.real_servers {
            let (active, inactive) = counters();
            // "  -> %08X:%04X      %-7s %-6d %-10d %-10d\n"
            writeln!(
                out,
                "  -> {:08X}:{:04X}      {:<7} {:<6} {:<10} {:<10}",
                u32::from(*rs.ip()),
                rs.port(),
                "Masq",
                1,
                active,
                inactive
            )?;
        }
    }
    Ok(())
}

/// The file as a string, every counter 0 (a node no traffic went through).
pub fn proc_ip_vs<'a>(servers: impl IntoIterator<Item = VirtualServer<'a>>) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_proc_ip_vs(&mut out, servers, || (0, 0));
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_layout() {
        let eps = ["10.244.1.11:8080".parse().unwrap()];
        let text = proc_ip_vs([VirtualServer {
            protocol: Protocol::Tcp,
            vip: "10.96.12.34:80".parse().unwrap(),
            real_servers: &eps,
        }]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[3], "TCP  0A600C22:0050 rr  ");
        assert_eq!(
            lines[4],
            "  -> 0AF4010B:1F90      Masq    1      0          0         "
        );
        assert_eq!(lines.len(), 5);
    }
}
