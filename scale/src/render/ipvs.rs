//! `/proc/net/ip_vs` for the plan's services, in the kernel's own format (hex
//! addresses, `ip_vs_ctl.c`'s column widths), as kube-proxy's IPVS mode would program
//! them. Only used as parser input (benches, tests): generated bundles are iptables or
//! nftables nodes and record IPVS as unavailable.

use crate::plan::Plan;
use std::io::{self, Write};

pub fn write<W: Write>(plan: &Plan, out: &mut W) -> io::Result<()> {
    let mut r = plan.rng("ipvs");
    out.write_all(
        b"IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n",
    )?;
    for s in &plan.services {
        let proto = match s.protocol {
            netsnap_kube_shapes::Protocol::Tcp => "TCP",
            netsnap_kube_shapes::Protocol::Udp => "UDP",
        };
        // "%s  %08X:%04X %s %s \n" with empty flags.
        writeln!(
            out,
            "{proto}  {:08X}:{:04X} rr  ",
            u32::from(*s.vip.ip()),
            s.vip.port()
        )?;
        for ep in &s.endpoints {
            // "  -> %08X:%04X      %-7s %-6d %-10d %-10d\n"
            writeln!(
                out,
                "  -> {:08X}:{:04X}      {:<7} {:<6} {:<10} {:<10}",
                u32::from(*ep.ip()),
                ep.port(),
                "Masq",
                1,
                r.below(50),
                r.below(200)
            )?;
        }
    }
    Ok(())
}
