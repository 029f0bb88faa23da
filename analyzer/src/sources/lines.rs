//! Finding lines again: excerpts of raw text sources by line number, and the line on
//! which each item of a pretty-printed JSON source starts.

use crate::parse::coverage::excerpt;
use std::collections::BTreeMap;
use std::ops::Range;

/// Start offsets of every line of a text, for O(1) excerpts.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        // memchr: a byte-by-byte walk of a 50 MB ruleset showed in the profile.
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// The index of a text whose line starts were found by its parser (as
    /// [`LineIndex::new`] finds them).
    pub fn from_starts(starts: Vec<usize>) -> LineIndex {
        LineIndex { starts }
    }

    /// The 1-based line `line` of `text` (without its line ending).
    pub fn line<'t>(&self, text: &'t str, line: usize) -> Option<&'t str> {
        let l = text.get(self.span(text.len(), line)?)?;
        Some(l.strip_suffix('\r').unwrap_or(l))
    }

    /// Where the 1-based line `line` of a text of `len` bytes is, up to its `\n` (a
    /// `\r` before it included), found without reading the text.
    pub fn span(&self, len: usize, line: usize) -> Option<Range<usize>> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        if start > len {
            return None;
        }
        let end = self.starts.get(line).map(|e| e - 1).unwrap_or(len).min(len);
        Some(start..end)
    }

    /// A display excerpt of line `line` (empty when out of range).
    pub fn excerpt(&self, text: &str, line: usize) -> String {
        self.line(text, line).map(excerpt).unwrap_or_default()
    }

    /// Number of lines (a final newline does not start a new line).
    pub fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            0
        } else if text.ends_with('\n') {
            self.starts.len() - 1
        } else {
            self.starts.len()
        }
    }
}

/// The excerpt of the line starting at byte `at` of raw `data`, as
/// [`LineIndex::excerpt`] gives it on the lossily decoded text (no index needed for
/// a file of a million lines when only a few of them are cited).
pub fn excerpt_at(data: &[u8], at: usize) -> String {
    let Some(rest) = data.get(at..) else {
        return String::new();
    };
    let line = memchr::memchr(b'\n', rest).map_or(rest, |end| &rest[..end]);
    let text = super::decode(line);
    excerpt(text.strip_suffix('\r').unwrap_or(&text))
}

/// 1-based lines of the items of the JSON arrays in a pretty-printed document
/// (serde_json `to_vec_pretty`, two-space indent): every line that is exactly
/// `indent` spaces and `{`. Arrays nested at the same depth appear in field order.
pub fn item_lines(text: &str, indent: usize) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            l.len() == indent + 1 && l.ends_with('{') && l.bytes().take(indent).all(|b| b == b' ')
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Lines of the keys of a pretty-printed flat JSON object (`  "key": …`).
pub fn key_lines(text: &str) -> BTreeMap<String, usize> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let rest = l.strip_prefix("  \"")?;
            let end = rest.find("\":")?;
            Some((rest[..end].to_string(), i + 1))
        })
        .collect()
}

/// Assigns `lines` to `n` items when the counts agree, else leaves every line unknown
/// (a hand-written file may be laid out differently; evidence then names only the file).
pub fn align(lines: &[usize], n: usize) -> Vec<Option<usize>> {
    if lines.len() == n {
        lines.iter().copied().map(Some).collect()
    } else {
        vec![None; n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_excerpts() {
        let t = "a\nbb\r\n\nccc";
        let ix = LineIndex::new(t);
        assert_eq!(ix.line(t, 1), Some("a"));
        assert_eq!(ix.line(t, 2), Some("bb"));
        assert_eq!(ix.line(t, 3), Some(""));
        assert_eq!(ix.line(t, 4), Some("ccc"));
        assert_eq!(ix.line(t, 5), None);
        assert_eq!(ix.line(t, 0), None);
        assert_eq!(ix.count(t), 4);
        assert_eq!(LineIndex::new("x\n").count("x\n"), 1);
    }

    #[test]
    fn json_item_and_key_lines() {
        let v = serde_json::json!([{"a": 1}, {"a": 2}]);
        let t = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(item_lines(&t, 2), vec![2, 5]);
        let o = serde_json::json!({"net.ipv4.ip_forward": "1", "x": "2"});
        let t = serde_json::to_string_pretty(&o).unwrap();
        let k = key_lines(&t);
        assert_eq!(k.get("net.ipv4.ip_forward"), Some(&2));
        assert_eq!(k.get("x"), Some(&3));
    }

    #[test]
    fn excerpt_at_matches_the_line_index() {
        let raw: &[u8] = b"a\nb\xffb\r\n\nccc";
        let text = String::from_utf8_lossy(raw);
        let ix = LineIndex::new(&text);
        for (line, at) in [(1, 0), (2, 2), (3, 7), (4, 8)] {
            assert_eq!(excerpt_at(raw, at), ix.excerpt(&text, line));
        }
        assert_eq!(excerpt_at(raw, 99), "");
    }
}
