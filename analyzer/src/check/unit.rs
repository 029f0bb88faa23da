//! A check as one unit: a typed id ([`CheckId`]) and what the catalog says about it
//! ([`Check`]). A finding is built from its id, so it always carries the catalog title,
//! remedy and references: an id outside the catalog cannot be written.

use super::catalog::CHECKS;
use super::{Context, Finding, Severity};
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
    pub run: fn(&Context<'_>) -> Vec<Finding>,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

/// Every check id, in catalog order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckId {
    Svc001,
    Svc002,
    Svc003,
    Svc004,
    Svc005,
    Svc006,
    Lnk001,
    Lnk002,
    Lnk003,
    Lnk004,
    Lnk005,
    Lnk006,
    Lnk007,
    Lnk008,
    Nf001,
    Nf002,
    Nf003,
    Nf004,
    Nf005,
    Nf006,
    Ct001,
    Ct002,
    Ct003,
    Ct004,
    Ct005,
    Ct006,
    Ct007,
    Dns001,
    Dns002,
    Dns003,
    Dns004,
    Dns005,
    Nb001,
    Bnd001,
    Prs001,
}

impl CheckId {
    /// Every id, in catalog order.
    pub const ALL: [CheckId; 35] = [
        CheckId::Svc001,
        CheckId::Svc002,
        CheckId::Svc003,
        CheckId::Svc004,
        CheckId::Svc005,
        CheckId::Svc006,
        CheckId::Lnk001,
        CheckId::Lnk002,
        CheckId::Lnk003,
        CheckId::Lnk004,
        CheckId::Lnk005,
        CheckId::Lnk006,
        CheckId::Lnk007,
        CheckId::Lnk008,
        CheckId::Nf001,
        CheckId::Nf002,
        CheckId::Nf003,
        CheckId::Nf004,
        CheckId::Nf005,
        CheckId::Nf006,
        CheckId::Ct001,
        CheckId::Ct002,
        CheckId::Ct003,
        CheckId::Ct004,
        CheckId::Ct005,
        CheckId::Ct006,
        CheckId::Ct007,
        CheckId::Dns001,
        CheckId::Dns002,
        CheckId::Dns003,
        CheckId::Dns004,
        CheckId::Dns005,
        CheckId::Nb001,
        CheckId::Bnd001,
        CheckId::Prs001,
    ];

    /// The stable id as printed and serialised, e.g. `SVC001`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Svc001 => "SVC001",
            CheckId::Svc002 => "SVC002",
            CheckId::Svc003 => "SVC003",
            CheckId::Svc004 => "SVC004",
            CheckId::Svc005 => "SVC005",
            CheckId::Svc006 => "SVC006",
            CheckId::Lnk001 => "LNK001",
            CheckId::Lnk002 => "LNK002",
            CheckId::Lnk003 => "LNK003",
            CheckId::Lnk004 => "LNK004",
            CheckId::Lnk005 => "LNK005",
            CheckId::Lnk006 => "LNK006",
            CheckId::Lnk007 => "LNK007",
            CheckId::Lnk008 => "LNK008",
            CheckId::Nf001 => "NF001",
            CheckId::Nf002 => "NF002",
            CheckId::Nf003 => "NF003",
            CheckId::Nf004 => "NF004",
            CheckId::Nf005 => "NF005",
            CheckId::Nf006 => "NF006",
            CheckId::Ct001 => "CT001",
            CheckId::Ct002 => "CT002",
            CheckId::Ct003 => "CT003",
            CheckId::Ct004 => "CT004",
            CheckId::Ct005 => "CT005",
            CheckId::Ct006 => "CT006",
            CheckId::Ct007 => "CT007",
            CheckId::Dns001 => "DNS001",
            CheckId::Dns002 => "DNS002",
            CheckId::Dns003 => "DNS003",
            CheckId::Dns004 => "DNS004",
            CheckId::Dns005 => "DNS005",
            CheckId::Nb001 => "NB001",
            CheckId::Bnd001 => "BND001",
            CheckId::Prs001 => "PRS001",
        }
    }
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
            .into_iter()
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
