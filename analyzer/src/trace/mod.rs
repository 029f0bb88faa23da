//! The packet-path engine (issue 12), after `model` and before `check`: it simulates one
//! packet at a time through the model, never the bundle files, the way the kernel
//! would. Stages: the routing decision ([`route`]); the packet and what netfilter makes
//! of it ([`packet`]); the rulesets ([`firewall`]): the iptables saves, run as x_tables
//! would ([`iptables`]), and the native nft ruleset ([`nft`]). Every decision names the
//! rule and route it rests on, so a trace can be checked by hand and against the lab's
//! kernel.

pub mod firewall;
pub mod iptables;
pub mod nft;
pub mod packet;
pub mod route;
