//! UTC timestamps without a date library: RFC 3339 for the manifest, a compact form
//! for file names.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment as milliseconds since the Unix epoch (the manifest keeps both the
/// seconds and the milliseconds: rates between two captures need the latter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub unix_ms: u64,
}

impl UtcTime {
    pub fn now() -> UtcTime {
        UtcTime {
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        }
    }

    pub fn from_secs(secs: u64) -> UtcTime {
        UtcTime {
            unix_ms: secs.saturating_mul(1000),
        }
    }

    /// Whole seconds since the epoch.
    pub fn secs(self) -> u64 {
        self.unix_ms / 1000
    }

    fn parts(self) -> (i64, u32, u32, u64, u64, u64) {
        let days = (self.secs() / 86_400) as i64;
        let secs = self.secs() % 86_400;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, (secs / 60) % 60, secs % 60)
    }

    /// `2026-11-21T17:41:00Z`
    pub fn rfc3339(self) -> String {
        let (y, mo, d, h, mi, s) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// `20261121T174100Z`, safe in file names.
    pub fn compact(self) -> String {
        let (y, mo, d, h, mi, s) = self.parts();
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(UtcTime::from_secs(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UtcTime::from_secs(1_795_219_200).rfc3339(),
            "2026-11-21T00:00:00Z"
        );
        assert_eq!(
            UtcTime::from_secs(951_782_400).rfc3339(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            UtcTime::from_secs(1_795_282_860).compact(),
            "20261121T174100Z"
        );
        let t = UtcTime {
            unix_ms: 1_795_282_860_999,
        };
        assert_eq!(
            (t.secs(), t.rfc3339().as_str()),
            (1_795_282_860, "2026-11-21T17:41:00Z")
        );
    }
}
