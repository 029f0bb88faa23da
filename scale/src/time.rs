//! The fixed capture time of generated bundles, in the forms the sources print it.

/// 2026-11-21T18:00:00Z: every generated bundle claims this capture time, so the
/// same seed gives the same bytes.
pub const CAPTURED_AT_UNIX: u64 = 1_795_284_000;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn split(unix: u64) -> (i64, u32, u32, u64, u64, u64, usize) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil(days);
    // 1970-01-01 was a Thursday.
    let wday = ((days + 4).rem_euclid(7)) as usize;
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, wday)
}

/// RFC 3339 UTC: `2026-11-21T18:00:00Z`.
pub fn rfc3339(unix: u64) -> String {
    let (y, m, d, h, mi, s, _) = split(unix);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// File-name form: `20261121T180000Z`.
pub fn compact(unix: u64) -> String {
    let (y, m, d, h, mi, s, _) = split(unix);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// ctime(3) form, as `iptables-save` prints it: `Sat Nov 21 18:00:00 2026`.
pub fn ctime(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, h, mi, s, w) = split(unix);
    format!(
        "{} {} {d:2} {h:02}:{mi:02}:{s:02} {y}",
        DAYS[w],
        MONTHS[(m - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(CAPTURED_AT_UNIX), "2026-11-21T18:00:00Z");
        assert_eq!(compact(CAPTURED_AT_UNIX), "20261121T180000Z");
        assert_eq!(ctime(CAPTURED_AT_UNIX), "Sat Nov 21 18:00:00 2026");
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
    }
}
