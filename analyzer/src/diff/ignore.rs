//! `--ignore PATTERN`: leaves out changes whose `category`, `category:subject` or
//! `category:subject:field` matches PATTERN, a glob where `*` stands for any text
//! (`:` and spaces included) and everything else for itself, case-sensitively:
//! `sysctl`, `link:node veth*:state`, `chain:*:rules`, `rate:conntrack:invalid`.

/// The patterns given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<String>,
}

impl Ignore {
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Ignore {
        Ignore {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether any pattern matches any of `keys` as a whole.
    pub fn matches(&self, keys: &[String]) -> bool {
        self.patterns
            .iter()
            .any(|p| keys.iter().any(|k| glob(p, k)))
    }
}

/// `*` matches any run of characters; the whole text must match.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("sysctl", "sysctl"));
        assert!(!glob("sysctl", "sysctl:node"));
        assert!(glob("sysctl:*", "sysctl:node"));
        assert!(glob("link:node veth*:state", "link:node veth1a2b:state"));
        assert!(!glob("link:node veth*:state", "link:node veth1a2b:mtu"));
        assert!(glob(
            "*:rules",
            "chain:iptables-nft ipv4 nat KUBE-SERVICES:rules"
        ));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
        assert!(glob("ab*b", "abb"));
        assert!(!glob("ab*ab", "ab"));
        assert!(glob("*", ""));
    }

    #[test]
    fn any_key_matches() {
        let keys: Vec<String> = ["link", "link:node eth0", "link:node eth0:mtu"]
            .map(String::from)
            .into();
        assert!(Ignore::new(["link:*:mtu"]).matches(&keys));
        assert!(Ignore::new(["link"]).matches(&keys));
        assert!(!Ignore::new(["route", "link:*:state"]).matches(&keys));
    }
}
