//! UTC timestamps of a manifest without a date library, for producers other than
//! the collector (`netsnap import`): RFC 3339 and the compact file-name form.

/// `(2026-12-05T05:20:00Z, 20261205T052000Z)` for seconds since the epoch.
pub fn utc_forms(unix: u64) -> (String, String) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    // Howard Hinnant's days-to-civil (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(super::utc_forms(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_forms(1_795_000_000).0, "2026-11-18T11:06:40Z");
        assert_eq!(super::utc_forms(951_782_400).1, "20000229T000000Z");
    }
}
