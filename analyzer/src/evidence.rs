//! Evidence: where in the bundle a fact comes from (path, line, excerpt). It sits below
//! the model and the checks so that both can cite it without depending on each other.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Where in the bundle a finding comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Evidence {
    /// Bundle path, e.g. `netfilter/iptables-nft-save.txt`.
    pub path: String,
    /// 1-based line in that file, when the evidence is one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The line itself, or a one-line summary of the JSON object it points at.
    pub excerpt: Excerpt,
}

impl Evidence {
    pub fn new(path: impl Into<String>, line: Option<usize>, excerpt: impl Into<Excerpt>) -> Self {
        Evidence {
            path: path.into(),
            line,
            excerpt: excerpt.into(),
        }
    }

    /// `path:line` or just `path`.
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.path),
            None => self.path.clone(),
        }
    }
}

/// An evidence's text: its own string, or a line of a source the model cites by the
/// hundred thousand (a big node's endpoint and frontend rules), left where it lies in
/// the bundle's copy of the source until it is read.
///
/// Copying each cited line into a string of its own (its allocation, its cache
/// misses on the 50 MB text, its fresh pages) was ~4 % of a big node's analysis,
/// while only the few lines findings cite are ever shown. A clone is always a string
/// of its own, so nothing that outlives the analysis of its bundle (findings, a
/// cluster's node summaries) keeps the bundle's text alive.
pub enum Excerpt {
    Text(String),
    Line(SourceLine),
}

/// A line of a source's bytes, checked as UTF-8 when it is read (a line of a valid
/// text is valid: it is cut at line ends).
pub struct SourceLine {
    source: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl Excerpt {
    /// The bytes `range` of `source`, a whole line (up to its `\n`), shown without a
    /// last `\r`.
    pub fn line(source: Arc<Vec<u8>>, range: Range<usize>) -> Excerpt {
        Excerpt::Line(SourceLine { source, range })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Excerpt::Text(s) => s,
            Excerpt::Line(l) => {
                let bytes = l.source.get(l.range.clone()).unwrap_or_default();
                let line = std::str::from_utf8(bytes).unwrap_or_default();
                line.strip_suffix('\r').unwrap_or(line)
            }
        }
    }
}

impl Default for Excerpt {
    fn default() -> Self {
        Excerpt::Text(String::new())
    }
}

impl Deref for Excerpt {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Clone for Excerpt {
    fn clone(&self) -> Self {
        Excerpt::Text(self.as_str().to_string())
    }
}

impl From<String> for Excerpt {
    fn from(s: String) -> Self {
        Excerpt::Text(s)
    }
}

impl From<&str> for Excerpt {
    fn from(s: &str) -> Self {
        Excerpt::Text(s.to_string())
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Excerpt {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Excerpt {}

impl PartialEq<&str> for Excerpt {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Excerpt {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Excerpt {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Excerpt {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Serialize for Excerpt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Excerpt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Excerpt::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line read where it lies shows, compares, hashes and serializes as the same
    /// text in a string of its own, and a clone no longer holds the source.
    #[test]
    fn a_source_line_is_its_text() {
        let source = Arc::new(b"first\n-A KUBE-SEP-X -j DNAT\r\nlast".to_vec());
        let line = Excerpt::line(source.clone(), 6..28);
        let text = Excerpt::from("-A KUBE-SEP-X -j DNAT");
        assert_eq!(line.as_str(), "-A KUBE-SEP-X -j DNAT");
        assert_eq!(line, text);
        assert_eq!(line.cmp(&text), Ordering::Equal);
        let hash = |e: &Excerpt| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&line), hash(&text));
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            serde_json::to_string(&text).unwrap()
        );
        assert_eq!(format!("{line} {line:?}"), format!("{text} {text:?}"));
        let copy = line.clone();
        assert!(matches!(copy, Excerpt::Text(_)));
        drop(line);
        assert_eq!(Arc::strong_count(&source), 1);
        assert_eq!(copy, text);
    }
}
