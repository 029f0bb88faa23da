//! Words of one `nft list ruleset` line: braces, commas, semicolons and parentheses
//! are words of their own, double-quoted strings are one word (quotes dropped),
//! everything else splits at whitespace. `:` and `.` stay inside words (addresses,
//! `addr:port`); standing alone they are the map separator and the concatenation.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    /// A double-quoted string, without its quotes.
    Quoted(String),
}

impl Tok {
    pub fn is(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x == w)
    }

    /// The text of the word or string.
    pub fn text(&self) -> &str {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => w,
        }
    }
}

/// Splits `line` into words. An unterminated string runs to the end of the line
/// (`Err` with what was read, so the caller can report a cut line).
pub fn words(line: &str) -> Result<Vec<Tok>, Vec<Tok>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    let flush = |cur: &mut String, out: &mut Vec<Tok>| {
        if !cur.is_empty() {
            out.push(Tok::Word(std::mem::take(cur)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                flush(&mut cur, &mut out);
                let mut s = String::new();
                let mut closed = false;
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (true, c) => {
                            s.push(c);
                            escaped = false;
                        }
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            closed = true;
                            break;
                        }
                        (false, c) => s.push(c),
                    }
                }
                out.push(Tok::Quoted(s));
                if !closed {
                    return Err(out);
                }
            }
            '{' | '}' | ',' | ';' | '(' | ')' => {
                flush(&mut cur, &mut out);
                out.push(Tok::Word(c.to_string()));
            }
            c if c.is_whitespace() => flush(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(line: &str) -> Vec<String> {
        words(line)
            .unwrap()
            .iter()
            .map(|t| t.text().to_string())
            .collect()
    }

    #[test]
    fn splits_punctuation_keeps_addresses() {
        assert_eq!(
            w("elements = { ::1, 10.0.0.1:80 . tcp : goto a/b__c }"),
            [
                "elements",
                "=",
                "{",
                "::1",
                ",",
                "10.0.0.1:80",
                ".",
                "tcp",
                ":",
                "goto",
                "a/b__c",
                "}"
            ]
        );
        assert_eq!(w(r#"comment "a \"b\" {""#), ["comment", "a \"b\" {"]);
        assert!(words("log prefix \"cut").is_err());
    }
}
