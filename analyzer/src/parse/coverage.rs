//! Parse coverage: how many lines a parser understood and which it did not.
//!
//! Every parser returns a [`Coverage`] next to its model so that nothing it could not
//! understand is dropped silently (finding PRS001 lists these lines as evidence).

use serde::{Deserialize, Serialize};

/// Longest excerpt of an unrecognised line that is kept, in bytes (cut on a char boundary).
pub const MAX_EXCERPT: usize = 200;

/// What one parser understood of one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Bundle path of the source, e.g. `netfilter/iptables-nft-save.txt`.
    pub path: String,
    /// Lines (or JSON objects) that were understood, including comments and blanks.
    pub recognised: usize,
    /// Lines that were not understood, in source order.
    pub unrecognised: Vec<Unrecognised>,
}

/// One line a parser did not understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrecognised {
    /// 1-based line number (for JSON sources: 1-based index of the object).
    pub line: usize,
    /// The line, capped to [`MAX_EXCERPT`] bytes.
    pub text: String,
    /// Why it was not understood.
    pub reason: String,
}

/// A parser's result: the typed model plus what was (not) understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsed<T> {
    pub model: T,
    pub coverage: Coverage,
}

impl Coverage {
    pub fn new(path: &str) -> Coverage {
        Coverage {
            path: path.to_string(),
            recognised: 0,
            unrecognised: Vec::new(),
        }
    }

    /// Count one more understood line.
    pub fn ok(&mut self) {
        self.recognised += 1;
    }

    /// Record a line that was not understood.
    pub fn miss(&mut self, line: usize, text: &str, reason: impl Into<String>) {
        self.unrecognised.push(Unrecognised {
            line,
            text: excerpt(text),
            reason: reason.into(),
        });
    }

    /// Total lines seen (recognised + unrecognised).
    pub fn total(&self) -> usize {
        self.recognised + self.unrecognised.len()
    }

    /// True when every line was understood.
    pub fn is_complete(&self) -> bool {
        self.unrecognised.is_empty()
    }

    /// Fold the coverage of another chunk of the same file into this one
    /// (used when a large file is parsed in parallel chunks).
    pub fn merge(&mut self, other: Coverage) {
        self.recognised += other.recognised;
        self.unrecognised.extend(other.unrecognised);
        self.unrecognised.sort_by_key(|u| u.line);
    }
}

/// Cap a line to [`MAX_EXCERPT`] bytes without splitting a UTF-8 character.
pub fn excerpt(text: &str) -> String {
    if text.len() <= MAX_EXCERPT {
        return text.to_string();
    }
    let mut end = MAX_EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = text[..end].to_string();
    s.push('…');
    s
}

/// Iterate over lines with their 1-based numbers, tolerating `\r\n` endings: the
/// lines `str::lines` gives, each without one more trailing `\r`. Line ends are found
/// with the `memchr` crate's vector search; `str::lines`' own search was most of the
/// serial step before a 50 MB ruleset's rules are parsed in parallel.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut starts = memchr::memchr_iter(b'\n', text.as_bytes());
    let mut at = 0;
    std::iter::from_fn(move || {
        let line = match starts.next() {
            Some(end) => {
                let line = &text[at..end];
                at = end + 1;
                line.strip_suffix('\r').unwrap_or(line)
            }
            None if at < text.len() => {
                let line = &text[at..];
                at = text.len();
                line
            }
            None => return None,
        };
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
    .enumerate()
    .map(|(i, l)| (i + 1, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_lines_are_str_lines_without_one_more_cr() {
        let reference = |text: &str| -> Vec<(usize, String)> {
            text.lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l).to_string()))
                .collect()
        };
        let ours = |text: &str| -> Vec<(usize, String)> {
            numbered_lines(text)
                .map(|(n, l)| (n, l.to_string()))
                .collect()
        };
        // Every string of up to seven of these characters, then longer mixed ones.
        let alphabet = ['a', '\r', '\n', 'é'];
        let mut texts = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..7 {
            last = last
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(last.iter().cloned());
        }
        texts.push("*nat\r\n:A - [0:0]\r\r\n-A A -j RETURN\nCOMMIT\r".into());
        texts.push("x\n".repeat(1000) + "tail");
        for text in &texts {
            assert_eq!(ours(text), reference(text), "{text:?}");
        }
    }

    #[test]
    fn excerpt_is_capped_on_char_boundary() {
        let long = "é".repeat(150); // 300 bytes
        let e = excerpt(&long);
        assert!(e.len() <= MAX_EXCERPT + '…'.len_utf8());
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn merge_keeps_line_order() {
        let mut a = Coverage::new("x");
        a.ok();
        a.miss(10, "ten", "r");
        let mut b = Coverage::new("x");
        b.ok();
        b.miss(3, "three", "r");
        a.merge(b);
        assert_eq!(a.recognised, 2);
        assert_eq!(
            a.unrecognised.iter().map(|u| u.line).collect::<Vec<_>>(),
            vec![3, 10]
        );
        assert_eq!(a.total(), 4);
    }
}
