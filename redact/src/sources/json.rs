//! JSON sources (the bundle's netlink JSON, facts, sysctls, the netns index, and nft's
//! JSON ruleset): every string, keys included, is rewritten as text, and everything
//! else is copied byte for byte, so formatting and key order stay exactly as the
//! writer (or `nft -j`) left them. Strings are decoded and re-encoded through
//! serde_json, so escapes cannot hide a name from the rewrite.
//!
//! One structural rule: nft writes a network as `{"prefix": {"addr": A, "len": N}}`;
//! `A` becomes the mapped *network* (host bits cleared), as in `A/N` text.

use crate::pseudonyms::Pseudonyms;
use crate::text::{network_addr, rewrite_str};
use serde_json::Value;
use std::net::IpAddr;

struct Frame {
    object: bool,
    /// The key whose value is being read (objects only).
    key: Option<String>,
    /// Set inside an nft `prefix` object: its `len`.
    prefix_len: Option<u8>,
}

/// Calls `f(key, string)` for every string value of a JSON document, with the key of
/// the nearest enclosing object member (array items inherit it). Unparseable JSON
/// yields nothing: it is rewritten as text, with nothing structured to collect.
pub(crate) fn for_each_string(json: &[u8], mut f: impl FnMut(Option<&str>, &str)) {
    fn walk(v: &serde_json::Value, key: Option<&str>, f: &mut impl FnMut(Option<&str>, &str)) {
        match v {
            serde_json::Value::String(s) => f(key, s),
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, key, f)),
            serde_json::Value::Object(map) => map.iter().for_each(|(k, x)| walk(x, Some(k), f)),
            _ => {}
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) {
        walk(&value, None, &mut f);
    }
}

/// Rewrites a JSON document into `out`; `false` (and `out` untouched) when `input` is
/// not valid JSON, so the caller can fall back to rewriting it as text.
pub(crate) fn rewrite(p: &mut Pseudonyms, input: &[u8], out: &mut Vec<u8>) -> bool {
    if serde_json::from_slice::<serde::de::IgnoredAny>(input).is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(input.len() + input.len() / 8);
    match rewrite_valid(p, input, &mut buf) {
        Some(()) => {
            out.extend_from_slice(&buf);
            true
        }
        None => false,
    }
}

fn rewrite_valid(p: &mut Pseudonyms, input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'"' => {
                let end = string_end(input, i)?;
                let raw = &input[i..end];
                let decoded: String = serde_json::from_slice(raw).ok()?;
                let top = stack.last();
                let is_key = top.is_some_and(|f| f.object) && next_is_colon(input, end);
                let rewritten = match top {
                    Some(f)
                        if !is_key
                            && f.key.as_deref() == Some("addr")
                            && f.prefix_len.is_some() =>
                    {
                        match (decoded.parse::<IpAddr>(), f.prefix_len) {
                            (Ok(ip), Some(len)) => network_addr(p, ip, len),
                            _ => rewrite_str(p, &decoded),
                        }
                    }
                    _ => rewrite_str(p, &decoded),
                };
                if rewritten == decoded {
                    out.extend_from_slice(raw);
                } else {
                    out.extend_from_slice(serde_json::to_string(&rewritten).ok()?.as_bytes());
                }
                if is_key {
                    if let Some(f) = stack.last_mut() {
                        f.key = Some(decoded);
                    }
                }
                i = end;
            }
            b'{' => {
                let in_prefix = stack
                    .last()
                    .is_some_and(|f| f.object && f.key.as_deref() == Some("prefix"));
                let prefix_len = if in_prefix {
                    nft_prefix_len(&input[i..])
                } else {
                    None
                };
                stack.push(Frame {
                    object: true,
                    key: None,
                    prefix_len,
                });
                out.push(b'{');
                i += 1;
            }
            b'[' => {
                stack.push(Frame {
                    object: false,
                    key: None,
                    prefix_len: None,
                });
                out.push(b'[');
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                out.push(input[i]);
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(())
}

/// Index just past the closing quote of the string starting at `i`.
fn string_end(s: &[u8], i: usize) -> Option<usize> {
    let mut k = i + 1;
    while k < s.len() {
        match s[k] {
            b'\\' => k += 2,
            b'"' => return Some(k + 1),
            _ => k += 1,
        }
    }
    None
}

fn next_is_colon(s: &[u8], mut k: usize) -> bool {
    while k < s.len() && s[k].is_ascii_whitespace() {
        k += 1;
    }
    s.get(k) == Some(&b':')
}

/// `len` of the object starting at the front of `s`, if it is `{"addr": …, "len": N}`.
fn nft_prefix_len(s: &[u8]) -> Option<u8> {
    let mut de = serde_json::Deserializer::from_slice(s).into_iter::<Value>();
    let value = de.next()?.ok()?;
    let obj = value.as_object()?;
    obj.get("addr")?.as_str()?;
    u8::try_from(obj.get("len")?.as_u64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::RedactKey;

    #[test]
    fn keeps_layout_and_rewrites_strings() {
        let mut p = Pseudonyms::new(&RedactKey::from_bytes([2u8; 32]));
        p.names.insert("web-0");
        let input = b"{\n  \"hostname\": \"web-0\",\n  \"n\": 4,\n  \"a\": [\"10.244.1.5\", \"x\\\"y\"]\n}\n";
        let mut out = Vec::new();
        assert!(rewrite(&mut p, input, &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("{\n  \"hostname\": \""), "{text}");
        assert!(!text.contains("web-0"), "{text}");
        assert!(text.contains("\"n\": 4,"));
        assert!(text.contains("\"x\\\"y\""));
        assert!(!text.contains("10.244.1.5"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["a"][0].as_str().unwrap().starts_with("10."));
    }

    #[test]
    fn nft_prefix_stays_a_network() {
        let mut p = Pseudonyms::new(&RedactKey::from_bytes([2u8; 32]));
        let input = br#"{"match": {"right": {"prefix": {"addr": "10.96.0.0", "len": 16}}}}"#;
        let mut out = Vec::new();
        assert!(rewrite(&mut p, input, &mut out));
        let v: Value = serde_json::from_slice(&out).unwrap();
        let addr = v["match"]["right"]["prefix"]["addr"].as_str().unwrap();
        assert!(addr.ends_with(".0.0"), "{addr}");
    }

    #[test]
    fn invalid_json_is_refused() {
        let mut p = Pseudonyms::new(&RedactKey::from_bytes([2u8; 32]));
        let mut out = Vec::new();
        assert!(!rewrite(&mut p, b"{\"a\": ", &mut out));
        assert!(out.is_empty());
    }
}
