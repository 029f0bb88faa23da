//! Evidence: where in the bundle a fact comes from (path, line, excerpt). It sits below
//! the model and the checks so that both can cite it without depending on each other.

use serde::{Deserialize, Serialize};

/// Where in the bundle a finding comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Evidence {
    /// Bundle path, e.g. `netfilter/iptables-nft-save.txt`.
    pub path: String,
    /// 1-based line in that file, when the evidence is one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The line itself, or a one-line summary of the JSON object it points at.
    pub excerpt: String,
}

impl Evidence {
    pub fn new(path: impl Into<String>, line: Option<usize>, excerpt: impl Into<String>) -> Self {
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
