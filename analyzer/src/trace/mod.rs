//! The packet-path engine (issue 12), after `model` and before `check`: it simulates one
//! packet at a time through the model, never the bundle files, the way the kernel
//! would. This first stage is the routing decision ([`route`]); netfilter hooks,
//! crossings between netns and sockets follow. Every decision names the rule and route
//! it rests on, so a trace can be checked by hand and against the lab's kernel.

pub mod route;
