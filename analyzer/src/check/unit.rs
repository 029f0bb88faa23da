//! A check as one unit: a typed id ([`CheckId`]) and what the catalog says about it
//! ([`Check`]). A finding is built from its id, so it always carries the catalog title,
//! remedy and references: an id outside the catalog cannot be written.

use super::catalog::CHECKS;
use super::{Context, Facts, Finding, Severity};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// One check: its id, documentation and the function that runs it.
#[derive(Clone, Copy)]
pub struct Check {
    pub id: CheckId,
    /// The title every finding of this id carries.
    pub title: &'static str,
    /// What it detects (the catalog's "what" column).
    pub what: &'static str,
    /// Which bundle facts it reads (the catalog's "evidence" column).
    pub evidence: &'static str,
    /// The severities its findings may have, worst first.
    pub severities: &'static [Severity],
    /// The default remedy (a finding may replace it with a more specific one).
    pub remedy: &'static str,
    pub refs: &'static [&'static str],
    /// Runs the check; every finding it returns has this unit's id.
    pub run: Run,
}

/// A check's function, by what it reads.
#[derive(Clone, Copy)]
pub enum Run {
    /// The model only: it may run while the graph is being built.
    Facts(fn(&Facts<'_>) -> Vec<Finding>),
    /// The graph too (and the reach matrix, earlier findings).
    Graph(fn(&Context<'_>) -> Vec<Finding>),
}

impl Check {
    /// Runs the check on everything an analysis has.
    pub fn run_on(&self, ctx: &Context<'_>) -> Vec<Finding> {
        match self.run {
            Run::Facts(run) => run(&ctx.facts()),
            Run::Graph(run) => run(ctx),
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

/// Declares `CheckId` with `ALL` and `as_str` from one list, so a variant cannot miss
/// either (and the assertion below makes it miss no unit).
macro_rules! check_ids {
    ($($variant:ident => $text:literal,)+) => {
        /// Every check id, in catalog order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CheckId {
            $($variant,)+
        }

        impl CheckId {
            /// Every id, in catalog order.
            pub const ALL: &'static [CheckId] = &[$(CheckId::$variant,)+];

            /// The stable id as printed and serialised, e.g. `SVC001`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckId::$variant => $text,)+
                }
            }
        }
    };
}

check_ids! {
    Svc001 => "SVC001",
    Svc002 => "SVC002",
    Svc003 => "SVC003",
    Svc004 => "SVC004",
    Svc005 => "SVC005",
    Svc006 => "SVC006",
    Lnk001 => "LNK001",
    Lnk002 => "LNK002",
    Lnk003 => "LNK003",
    Lnk004 => "LNK004",
    Lnk005 => "LNK005",
    Lnk006 => "LNK006",
    Lnk007 => "LNK007",
    Lnk008 => "LNK008",
    Nf001 => "NF001",
    Nf002 => "NF002",
    Nf003 => "NF003",
    Nf004 => "NF004",
    Nf005 => "NF005",
    Nf006 => "NF006",
    Nf007 => "NF007",
    Ct001 => "CT001",
    Ct002 => "CT002",
    Ct003 => "CT003",
    Ct004 => "CT004",
    Ct005 => "CT005",
    Ct006 => "CT006",
    Ct007 => "CT007",
    Dns001 => "DNS001",
    Dns002 => "DNS002",
    Dns003 => "DNS003",
    Dns004 => "DNS004",
    Dns005 => "DNS005",
    Nb001 => "NB001",
    Bnd001 => "BND001",
    Bnd002 => "BND002",
    Prs001 => "PRS001",
    Trc001 => "TRC001",
    Cni001 => "CNI001",
    Cni002 => "CNI002",
    Clu001 => "CLU001",
    Clu002 => "CLU002",
    Clu003 => "CLU003",
    Clu004 => "CLU004",
    Clu005 => "CLU005",
    Clu006 => "CLU006",
}

// `CHECKS` holds one unit per id, in the order of `CheckId`, so `unit()` is an index.
const _: () = {
    assert!(CHECKS.len() == CheckId::ALL.len());
    let mut i = 0;
    while i < CHECKS.len() {
        assert!(CHECKS[i].id as usize == i);
        i += 1;
    }
};

impl CheckId {
    /// The unit of this id.
    pub fn unit(self) -> &'static Check {
        &CHECKS[self as usize]
    }

    /// Whether the check runs on several nodes' summaries (`crate::cluster::check`)
    /// rather than on one node.
    pub fn is_cluster(self) -> bool {
        self.family() == "CLU"
    }

    /// The family prefix, e.g. `SVC`.
    pub fn family(self) -> &'static str {
        self.as_str().trim_end_matches(|c: char| c.is_ascii_digit())
    }
}

/// Ids sort as their text (`BND001` < `CT001` < … < `SVC006`), as findings always did.
impl Ord for CheckId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for CheckId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Honours width and alignment (`{:<6}`), as the text report's columns need.
impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// An id that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check id {0:?}")]
pub struct UnknownCheckId(pub String);

impl FromStr for CheckId {
    type Err = UnknownCheckId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCheckId(s.to_string()))
    }
}

impl PartialEq<str> for CheckId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for CheckId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialise_parse_and_sort_as_their_text() {
        for id in CheckId::ALL {
            let json = serde_json::to_string(id).expect("serialise");
            assert_eq!(json, format!("\"{}\"", id.as_str()));
            assert_eq!(serde_json::from_str::<CheckId>(&json).ok(), Some(*id));
            assert_eq!(id.unit().id, *id);
            assert!(id.as_str().starts_with(id.family()));
        }
        assert!(serde_json::from_str::<CheckId>("\"XYZ001\"").is_err());
        assert_eq!("lnk001".parse::<CheckId>(), Ok(CheckId::Lnk001));
        let mut sorted = CheckId::ALL.to_vec();
        sorted.sort();
        let text: Vec<&str> = sorted.iter().map(|i| i.as_str()).collect();
        let mut want = text.clone();
        want.sort();
        assert_eq!(text, want);
        assert_eq!(format!("[{:<6}]", CheckId::Ct001), "[CT001 ]");
    }
}
