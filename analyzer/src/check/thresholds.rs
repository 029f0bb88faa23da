//! Tunable limits of the checks, with defaults; loaded from `--config` (TOML or JSON)
//! and overridden by command-line flags.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// CT001: conntrack usage (count / max) that is a warning.
    pub conntrack_warning: f64,
    /// CT001: conntrack usage that is critical.
    pub conntrack_critical: f64,
    /// CT006: flows per (SNAT source, destination) as a share of the local port range.
    pub snat_ports_warning: f64,
    /// CT007: only services with at least this many flows are judged.
    pub skew_min_flows: u64,
    /// CT007: busiest endpoint's flows over its fair share that counts as skewed.
    pub skew_ratio: f64,
    /// NB001: neighbour entries as a share of gc_thresh3.
    pub neighbour_warning: f64,
    /// DNS002: search domains / characters old glibc and musl honour.
    pub dns_search_domains: usize,
    pub dns_search_chars: usize,
    /// DNS002: kubelet's limits (critical above these).
    pub dns_search_domains_kubelet: usize,
    pub dns_search_chars_kubelet: usize,
    /// PRS001: unrecognised lines listed as evidence per file.
    pub max_evidence_lines: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            conntrack_warning: 0.80,
            conntrack_critical: 0.95,
            snat_ports_warning: 0.50,
            skew_min_flows: 100,
            skew_ratio: 3.0,
            neighbour_warning: 0.80,
            dns_search_domains: 6,
            dns_search_chars: 256,
            dns_search_domains_kubelet: 32,
            dns_search_chars_kubelet: 2048,
            max_evidence_lines: 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl Thresholds {
    /// Reads thresholds from a `.json` file, else TOML; missing keys keep defaults.
    pub fn load(path: &Path) -> Result<Thresholds, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        let is_json = path.extension().is_some_and(|e| e == "json");
        let t: Thresholds = if is_json {
            serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
                path: p.clone(),
                reason: format!("line {} column {}: {e}", e.line(), e.column()),
            })?
        } else {
            toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                path: p.clone(),
                reason: e.to_string(),
            })?
        };
        t.validate()
            .map_err(|reason| ConfigError::Invalid { path: p, reason })?;
        Ok(t)
    }

    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("conntrack_warning", self.conntrack_warning),
            ("conntrack_critical", self.conntrack_critical),
            ("snat_ports_warning", self.snat_ports_warning),
            ("neighbour_warning", self.neighbour_warning),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} = {v} must be between 0 and 1"));
            }
        }
        if self.conntrack_warning > self.conntrack_critical {
            return Err("conntrack_warning must not exceed conntrack_critical".into());
        }
        if self.skew_ratio < 1.0 {
            return Err(format!(
                "skew_ratio = {} must be at least 1",
                self.skew_ratio
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.toml");
        std::fs::write(&t, "conntrack_warning = 0.5\n").unwrap();
        let got = Thresholds::load(&t).unwrap();
        assert_eq!(got.conntrack_warning, 0.5);
        assert_eq!(got.conntrack_critical, 0.95);
        let j = dir.path().join("t.json");
        std::fs::write(&j, r#"{"skew_min_flows": 7}"#).unwrap();
        assert_eq!(Thresholds::load(&j).unwrap().skew_min_flows, 7);
        std::fs::write(&j, r#"{"nope": 1}"#).unwrap();
        assert!(Thresholds::load(&j)
            .unwrap_err()
            .to_string()
            .contains("nope"));
        std::fs::write(&t, "conntrack_warning = 2.0\n").unwrap();
        assert!(Thresholds::load(&t).is_err());
    }
}
