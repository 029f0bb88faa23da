//! Sysctls: the bundle's JSON object (`{"net.ipv4.ip_forward": "1", …}`) and
//! `sysctl -a` text (`net.ipv4.ip_forward = 1`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::coverage::{numbered_lines, Coverage, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Sysctls {
    /// In file order for text; in key order for JSON.
    pub values: Vec<Sysctl>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    /// Dotted name (`net.ipv4.ip_forward`); `/` separators are converted.
    pub name: String,
    /// The value as text; multi-value entries keep their tabs (`32768\t60999`).
    pub value: String,
    /// Line of the entry (for JSON, the line where the key appears).
    pub line: usize,
}

impl Sysctls {
    pub fn get(&self, name: &str) -> Option<&Sysctl> {
        let name = normalise(name);
        self.values.iter().rev().find(|s| s.name == name)
    }

    /// A single integer value.
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.value.trim().parse().ok()
    }

    /// Whitespace-separated integers (e.g. `net.ipv4.ip_local_port_range`).
    pub fn get_list(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name)?
            .value
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect()
    }
}

fn normalise(name: &str) -> String {
    name.trim().replace('/', ".")
}

/// Parse `sysctl -a` text.
pub fn parse_sysctl_text(path: &str, text: &str) -> Parsed<Sysctls> {
    let mut cov = Coverage::new(path);
    let mut s = Sysctls::default();
    for (no, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            cov.ok();
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !k.trim().contains(char::is_whitespace) => {
                s.values.push(Sysctl {
                    name: normalise(k),
                    value: v.trim().to_string(),
                    line: no,
                });
                cov.ok();
            }
            _ => cov.miss(no, raw, "expected `name = value`"),
        }
    }
    Parsed {
        model: s,
        coverage: cov,
    }
}

/// Parse the bundle's JSON object of name → string.
pub fn parse_sysctl_json(path: &str, text: &str) -> Parsed<Sysctls> {
    let mut cov = Coverage::new(path);
    let mut s = Sysctls::default();
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.line().max(1);
            cov.miss(
                line,
                text.lines().nth(line - 1).unwrap_or(""),
                format!("invalid JSON: {e}"),
            );
            return Parsed {
                model: s,
                coverage: cov,
            };
        }
    };
    let Some(obj) = root.as_object() else {
        cov.miss(
            1,
            text.lines().next().unwrap_or(""),
            "expected a JSON object",
        );
        return Parsed {
            model: s,
            coverage: cov,
        };
    };
    for (k, v) in obj {
        let line = key_line(text, k).unwrap_or(1);
        let value = match v {
            Value::String(x) => Some(x.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(u8::from(*b).to_string()),
            _ => None,
        };
        match value {
            Some(value) => {
                s.values.push(Sysctl {
                    name: normalise(k),
                    value,
                    line,
                });
                cov.ok();
            }
            None => cov.miss(
                line,
                &format!("\"{k}\": {v}"),
                "value is not a string or number",
            ),
        }
    }
    Parsed {
        model: s,
        coverage: cov,
    }
}

/// Line where `"key"` appears as an object key.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    for (no, line) in numbered_lines(text) {
        let mut rest = line;
        while let Some(pos) = rest.find(&needle) {
            let after = rest[pos + needle.len()..].trim_start();
            if after.starts_with(':') {
                return Some(no);
            }
            rest = &rest[pos + needle.len()..];
        }
    }
    None
}
