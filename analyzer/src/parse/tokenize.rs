//! A small shell-like tokenizer for iptables-save / iptables-restore lines.
//!
//! It follows iptables-restore's own rules: whitespace separates words; `"…"` quotes,
//! with `\"` and `\\` (any backslashed char) escaped inside; `'…'` quotes literally.
//! Outside quotes a backslash is an ordinary character. Whether a word was quoted is
//! kept, because a quoted `"!"` or `"-x"` is a value, never a negation or an option.

use std::borrow::Cow;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The word with quotes and escapes removed; borrowed from the line unless an
    /// escape or adjacent quoted parts made a new string necessary.
    pub text: Cow<'a, str>,
    /// Some part of the word was quoted.
    pub quoted: bool,
}

impl Token<'_> {
    /// True for an unquoted word that looks like an option (`-x`, `--xyz`).
    pub fn is_option(&self) -> bool {
        !self.quoted && self.text.len() > 1 && self.text.starts_with('-')
    }

    /// True for an unquoted `!`.
    pub fn is_bang(&self) -> bool {
        !self.quoted && self.text == "!"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenizeError {
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
}

/// A word being assembled from its pieces (plain runs and quoted parts).
#[derive(Default)]
struct Word<'a> {
    started: bool,
    quoted: bool,
    /// The only piece so far, when it can be lent out as is.
    single: Option<&'a str>,
    /// The word once it needed joining or unescaping.
    joined: Option<String>,
}

impl<'a> Word<'a> {
    fn piece(&mut self, piece: &'a str) {
        self.started = true;
        match (&mut self.joined, self.single) {
            (Some(s), _) => s.push_str(piece),
            (None, None) => self.single = Some(piece),
            (None, Some(first)) => self.joined = Some([first, piece].concat()),
        }
    }

    /// An escaped character: the word can no longer be a slice of the line.
    fn escaped(&mut self, c: char) {
        self.started = true;
        let single = self.single;
        self.joined
            .get_or_insert_with(|| single.unwrap_or_default().to_string())
            .push(c);
    }

    fn finish(&mut self) -> Option<Token<'a>> {
        let w = std::mem::take(self);
        w.started.then(|| Token {
            text: match w.joined {
                Some(s) => Cow::Owned(s),
                None => Cow::Borrowed(w.single.unwrap_or_default()),
            },
            quoted: w.quoted,
        })
    }
}

/// Split one line into words.
///
/// Words are slices of the line wherever possible (a big node's save has millions of
/// words, and an allocation each was most of the parse time).
pub fn tokenize(line: &str) -> Result<Vec<Token<'_>>, TokenizeError> {
    let mut out = Vec::with_capacity(24);
    let mut word = Word::default();
    let mut rest = line;
    // Bytes, not chars: every byte the rules name is ASCII, and an ASCII byte is never
    // part of a longer UTF-8 sequence; only a non-ASCII byte needs the char's view.
    while let Some(&first) = rest.as_bytes().first() {
        match first {
            b'"' => {
                word.quoted = true;
                word.started = true;
                rest = &rest[1..];
                loop {
                    let Some(i) = memchr::memchr2(b'"', b'\\', rest.as_bytes()) else {
                        return Err(TokenizeError::UnterminatedQuote('"'));
                    };
                    if i > 0 {
                        word.piece(&rest[..i]);
                    }
                    let closing = rest.as_bytes()[i] == b'"';
                    rest = &rest[i + 1..];
                    if closing {
                        break;
                    }
                    // A backslash takes the next character literally.
                    let Some(e) = rest.chars().next() else {
                        return Err(TokenizeError::UnterminatedQuote('"'));
                    };
                    word.escaped(e);
                    rest = &rest[e.len_utf8()..];
                }
            }
            b'\'' => {
                word.quoted = true;
                word.started = true;
                rest = &rest[1..];
                let Some(i) = memchr::memchr(b'\'', rest.as_bytes()) else {
                    return Err(TokenizeError::UnterminatedQuote('\''));
                };
                if i > 0 {
                    word.piece(&rest[..i]);
                }
                rest = &rest[i + 1..];
            }
            _ => match leading_space(rest) {
                Some(len) => {
                    out.extend(word.finish());
                    rest = &rest[len..];
                }
                None => {
                    // The first char is neither a space nor a quote: always a step on.
                    let first = rest.chars().next().map_or(1, char::len_utf8);
                    let end = first + plain_run(&rest[first..]);
                    word.piece(&rest[..end]);
                    rest = &rest[end..];
                }
            },
        }
    }
    out.extend(word.finish());
    Ok(out)
}

/// The ASCII bytes [`char::is_whitespace`] holds for: the one list both scanners
/// below use, so they cannot disagree about where a word ends.
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// The length of the whitespace character `s` starts with, if it does
/// ([`char::is_whitespace`]).
fn leading_space(s: &str) -> Option<usize> {
    match *s.as_bytes().first()? {
        b if is_ascii_space(b) => Some(1),
        b if b.is_ascii() => None,
        _ => s
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map(char::len_utf8),
    }
}

/// The length of the unquoted run `s` starts with: up to whitespace or a quote.
fn plain_run(s: &str) -> usize {
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'"' | b'\'' => return i,
            b if is_ascii_space(b) => return i,
            b if !b.is_ascii() => {
                let rest = &s[i..];
                let end = rest.find(|c: char| c.is_whitespace() || c == '"' || c == '\'');
                return i + end.unwrap_or(rest.len());
            }
            _ => {}
        }
    }
    s.len()
}

/// Quote a word for iptables-restore if it would not survive [`tokenize`] as one plain value.
pub fn quote(s: &str) -> Cow<'_, str> {
    let needs = s.is_empty()
        || s == "!"
        || s.starts_with('-')
        || s.starts_with('[')
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\');
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    Cow::Owned(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rules of the module's doc, one char at a time: what the byte-wise fast
    /// paths of [`tokenize`] must agree with.
    fn reference(line: &str) -> Result<Vec<(String, bool)>, TokenizeError> {
        let (mut out, mut word) = (Vec::new(), None::<(String, bool)>);
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c.is_whitespace() {
                out.extend(word.take());
                continue;
            }
            let w = word.get_or_insert_with(Default::default);
            match c {
                '"' | '\'' => {
                    w.1 = true;
                    loop {
                        match (c, chars.next()) {
                            (_, None) => return Err(TokenizeError::UnterminatedQuote(c)),
                            (_, Some(e)) if e == c => break,
                            ('"', Some('\\')) => match chars.next() {
                                Some(e) => w.0.push(e),
                                None => return Err(TokenizeError::UnterminatedQuote(c)),
                            },
                            (_, Some(e)) => w.0.push(e),
                        }
                    }
                }
                c => w.0.push(c),
            }
        }
        out.extend(word.take());
        Ok(out)
    }

    proptest! {
        /// Lines of words, quotes, escapes, ASCII and Unicode whitespace and other
        /// non-ASCII text split as the char-by-char rules say.
        #[test]
        fn agrees_with_the_char_by_char_rules(
            line in proptest::collection::vec(
                prop::sample::select(vec![
                    "a", "-j", "!", " ", "  ", "\t", "\u{b}", "\r", "\n", "\"", "'", "\\",
                    "\u{a0}", "\u{3000}", "\u{85}", "é", "日本", "KUBE-SVC-X",
                ]),
                0..24,
            )
        ) {
            let line = line.concat();
            let got = tokenize(&line)
                .map(|t| t.into_iter().map(|t| (t.text.into_owned(), t.quoted)).collect());
            prop_assert_eq!(got, reference(&line), "{:?}", line);
        }
    }

    fn words(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.text.into_owned())
            .collect()
    }

    #[test]
    fn splits_and_unquotes() {
        assert_eq!(
            words(r#"-A X -m comment --comment "ns/svc:p cluster IP" -j Y"#),
            vec![
                "-A",
                "X",
                "-m",
                "comment",
                "--comment",
                "ns/svc:p cluster IP",
                "-j",
                "Y"
            ]
        );
        assert_eq!(
            words(r#"--comment "say \"hi\" \\ x""#)[1],
            r#"say "hi" \ x"#
        );
        assert_eq!(words("a  'b c'\t d"), vec!["a", "b c", "d"]);
        assert_eq!(words(r#"a""b"#), vec!["ab"]);
        assert_eq!(words(r#""""#), vec![""]);
    }

    #[test]
    fn quoted_bang_is_a_value() {
        let t = tokenize(r#"! "!""#).unwrap_or_default();
        assert!(t[0].is_bang());
        assert!(!t[1].is_bang());
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            tokenize(r#"--comment "oops"#),
            Err(TokenizeError::UnterminatedQuote('"'))
        );
    }

    #[test]
    fn quote_round_trips() {
        for s in [
            "plain",
            "",
            "two words",
            r#"q"uo\te"#,
            "!",
            "-dash",
            "it's",
            "[x",
        ] {
            let q = quote(s);
            let t = tokenize(&q).unwrap_or_default();
            assert_eq!(t.len(), 1, "{s:?} -> {q}");
            assert_eq!(t[0].text, s);
        }
    }
}
