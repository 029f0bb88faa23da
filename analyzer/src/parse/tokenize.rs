//! A small shell-like tokenizer for iptables-save / iptables-restore lines.
//!
//! It follows iptables-restore's own rules: whitespace separates words; `"…"` quotes,
//! with `\"` and `\\` (any backslashed char) escaped inside; `'…'` quotes literally.
//! Outside quotes a backslash is an ordinary character. Whether a word was quoted is
//! kept, because a quoted `"!"` or `"-x"` is a value, never a negation or an option.

use std::borrow::Cow;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Some part of the word was quoted.
    pub quoted: bool,
}

impl Token {
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

/// Split one line into words.
///
/// Copies runs of plain characters as slices (one allocation per word) rather than
/// char by char: a big node's save has millions of words.
pub fn tokenize(line: &str) -> Result<Vec<Token>, TokenizeError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        match c {
            '"' => {
                in_word = true;
                quoted = true;
                rest = &rest[1..];
                loop {
                    let Some(i) = rest.find(['"', '\\']) else {
                        return Err(TokenizeError::UnterminatedQuote('"'));
                    };
                    cur.push_str(&rest[..i]);
                    let closing = rest.as_bytes()[i] == b'"';
                    rest = &rest[i + 1..];
                    if closing {
                        break;
                    }
                    // A backslash takes the next character literally.
                    let Some(e) = rest.chars().next() else {
                        return Err(TokenizeError::UnterminatedQuote('"'));
                    };
                    cur.push(e);
                    rest = &rest[e.len_utf8()..];
                }
            }
            '\'' => {
                in_word = true;
                quoted = true;
                rest = &rest[1..];
                let Some(i) = rest.find('\'') else {
                    return Err(TokenizeError::UnterminatedQuote('\''));
                };
                cur.push_str(&rest[..i]);
                rest = &rest[i + 1..];
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(Token {
                        text: std::mem::take(&mut cur),
                        quoted,
                    });
                    in_word = false;
                    quoted = false;
                }
                rest = &rest[c.len_utf8()..];
            }
            _ => {
                in_word = true;
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .unwrap_or(rest.len());
                cur.push_str(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    if in_word {
        out.push(Token { text: cur, quoted });
    }
    Ok(out)
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

    fn words(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.text)
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
