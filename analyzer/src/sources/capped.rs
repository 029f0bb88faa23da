//! Reads `netns/index.json` with a bound on how many netns are kept, so a hostile or
//! corrupt index (a million entries) costs memory for at most [`MAX_NETNS`] of them;
//! the rest are skipped without being built and reported as not analyzed.

use netsnap_schema::model::{InaccessibleProcess, NetnsEntry, NetnsIndex};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// Most netns analyzed from one bundle: far above any real node (kubelet's default is
/// 110 pods, large nodes run a few hundred).
pub const MAX_NETNS: usize = 65_536;

/// Most processes not inspected kept from one index (the collector writes 64).
pub const MAX_INACCESSIBLE: usize = 1024;

/// The kept entries and how many the index listed in all.
pub struct CappedIndex {
    pub index: NetnsIndex,
    pub total: usize,
}

/// Parses an index, keeping at most `cap` entries.
pub fn parse_index(text: &str, cap: usize) -> Result<CappedIndex, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = IndexSeed(cap).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct IndexSeed(usize);

impl<'de> DeserializeSeed<'de> for IndexSeed {
    type Value = CappedIndex;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CappedIndex, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IndexSeed {
    type Value = CappedIndex;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a netns index object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CappedIndex, A::Error> {
        let mut found = None;
        let mut inaccessible = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "netns" {
                found = Some(map.next_value_seed(EntriesSeed::<NetnsEntry>::new(self.0))?);
            } else if key == "inaccessible" {
                let seed = EntriesSeed::<InaccessibleProcess>::new(MAX_INACCESSIBLE);
                inaccessible = map.next_value_seed(seed)?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let (netns, total) = found.ok_or_else(|| serde::de::Error::missing_field("netns"))?;
        Ok(CappedIndex {
            index: NetnsIndex {
                netns,
                inaccessible,
            },
            total,
        })
    }
}

/// The first `cap` elements of an array of `T`, and how many it holds.
struct EntriesSeed<T>(usize, PhantomData<T>);

impl<T> EntriesSeed<T> {
    fn new(cap: usize) -> Self {
        EntriesSeed(cap, PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for EntriesSeed<T> {
    type Value = (Vec<T>, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesSeed<T> {
    type Value = (Vec<T>, usize);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        let mut total = 0;
        loop {
            let more = if kept.len() < self.0 {
                seq.next_element::<T>()?.map(|e| kept.push(e)).is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok((kept, total));
            }
            total += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(n: usize) -> String {
        let entries: Vec<String> = (0..n)
            .map(|i| {
                format!(r#"{{"id":"ino-{i}","inode":{i},"dev":4,"is_root":false,"found_by":[]}}"#)
            })
            .collect();
        format!(r#"{{"other":[1,2],"netns":[{}]}}"#, entries.join(","))
    }

    #[test]
    fn keeps_at_most_cap_and_counts_all() {
        let c = parse_index(&index(10), 3).unwrap();
        assert_eq!(c.total, 10);
        let ids: Vec<_> = c.index.netns.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["ino-0", "ino-1", "ino-2"]);
        let c = parse_index(&index(2), 3).unwrap();
        assert_eq!((c.total, c.index.netns.len()), (2, 2));
    }

    #[test]
    fn invalid_entries_and_missing_field_are_errors() {
        assert!(parse_index(r#"{"netns":[{"id":1}]}"#, 5).is_err());
        assert!(parse_index(r#"{"x":[]}"#, 5).is_err());
        assert!(parse_index(r#"{"netns":[]} trailing"#, 5).is_err());
    }
}
