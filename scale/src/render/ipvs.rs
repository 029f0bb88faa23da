//! `/proc/net/ip_vs` for the plan's services, in the kernel's own format (hex
//! addresses, `ip_vs_ctl.c`'s column widths), as kube-proxy's IPVS mode would program
//! them (rendered by `netsnap_kube_shapes::ipvs`, shared with the lab). Only used as
//! parser input (benches, tests): generated bundles are iptables or nftables nodes
//! and record IPVS as unavailable.

use crate::plan::Plan;
use netsnap_kube_shapes::ipvs::{write_proc_ip_vs, VirtualServer};
use std::io::{self, Write};

pub fn write<W: Write>(plan: &Plan, out: &mut W) -> io::Result<()> {
    let mut r = plan.rng("ipvs");
    let servers = plan.services.iter().map(|s| VirtualServer {
        protocol: s.protocol,
        vip: s.vip,
        real_servers: &s.endpoints,
    });
    write_proc_ip_vs(out, servers, || (r.below(50) as u32, r.below(200) as u32))
}
