//! iptables-save output (iptables-nft-save and iptables-legacy-save, with `-c` counters)
//! and iptables-restore input (the form kube-proxy writes, as in its test fixtures).
//!
//! The model keeps file order and 1-based lines so findings can cite `file:line`, and
//! [`render_iptables`] writes it back in iptables-save form. After
//! [`Ruleset::renumber`], `parse_iptables(render_iptables(&m)).model == m`.
//!
//! Matches and targets that netsnap reasons about are typed; any other module or
//! target is kept generically ([`GenericMatch`], [`GenericTarget`]) with all its
//! options, so an unknown extension never loses a rule.
//!
//! One folder by stage: `types` (the model), `parse` (lines to rules), `matches/` and
//! `targets` (each extension's type, parser and renderer side by side), `values`
//! (option values they share), `render` (rules back to text).

mod matches;
mod parse;
mod render;
mod scan;
mod targets;
mod types;
mod values;

pub use matches::{
    AddrType, Conntrack, GenericMatch, MarkMatch, Match, Multiport, Physdev, PortDirection,
    PortMatch, PortRange, Recent, RecentAction, RecentSide, SetMatch, Statistic,
};
pub use parse::{parse_iptables, parse_iptables_and_line_starts, parse_iptables_full_parser};
pub use render::{render_iptables, render_rule};
pub use targets::{GenericTarget, MarkOp, MarkTarget, Masquerade, Nat, Target};
pub use types::{
    Chain, ChainCommand, ChainOp, Cidr, CommentLine, Counters, Neg, Opt, ProtocolName, Rule,
    RuleOp, Ruleset, Table,
};
pub use values::{parse_cidr, parse_nat_to};

#[cfg(test)]
mod tests;
