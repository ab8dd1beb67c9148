//! Date forms of the ROC model: `YYYY-MM-DD`, `YYYYMMDD` (birth dates) and xs:dateTime with
//! an offset. Lexical checks (schema level) are kept apart from calendar validity (R05).

use time::{Date, Month};

fn digits(s: &str) -> Option<u32> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn calendar(y: u32, m: u32, d: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()
}

/// Lexically `YYYY-MM-DD` (4, 2 and 2 digits), whatever the calendar says.
pub fn is_iso_lexical(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(&s[0..4]).is_some()
        && digits(&s[5..7]).is_some()
        && digits(&s[8..10]).is_some()
}

/// A `YYYY-MM-DD` date that exists in the calendar.
pub fn parse_iso(s: &str) -> Option<Date> {
    if !is_iso_lexical(s) {
        return None;
    }
    calendar(digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?)
}

/// A `YYYYMMDD` date that exists in the calendar.
pub fn parse_compact(s: &str) -> Option<Date> {
    if s.len() != 8 || digits(s).is_none() {
        return None;
    }
    calendar(digits(&s[0..4])?, digits(&s[4..6])?, digits(&s[6..8])?)
}

/// `YYYY-MM-DD`.
pub fn format_iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// An xs:dateTime with a mandatory offset: `YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)`, with a date
/// that exists, hours 00–23 (or `24:00:00`), minutes and seconds 00–59 and an offset of at
/// most 14:00.
pub fn is_datetime_with_offset(s: &str) -> bool {
    let Some((date, rest)) = s.split_once('T') else {
        return false;
    };
    if parse_iso(date).is_none() {
        return false;
    }
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, None)
    } else if rest.len() > 6 {
        let (c, o) = rest.split_at(rest.len() - 6);
        (c, Some(o))
    } else {
        return false;
    };
    if let Some(o) = offset {
        let b = o.as_bytes();
        if !(b[0] == b'+' || b[0] == b'-') || b[3] != b':' {
            return false;
        }
        match (digits(&o[1..3]), digits(&o[4..6])) {
            (Some(h), Some(m)) if m <= 59 && (h < 14 || (h == 14 && m == 0)) => {}
            _ => return false,
        }
    }
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let b = hms.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    match (digits(&hms[0..2]), digits(&hms[3..5]), digits(&hms[6..8])) {
        (Some(h), Some(m), Some(sec)) => {
            (h <= 23 && m <= 59 && sec <= 59)
                || (h == 24
                    && m == 0
                    && sec == 0
                    && frac.is_none_or(|f| f.bytes().all(|c| c == b'0')))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn iso_dates() {
        assert_eq!(parse_iso("2026-03-02"), Some(date!(2026 - 03 - 02)));
        assert!(is_iso_lexical("2026-02-30"));
        assert_eq!(parse_iso("2026-02-30"), None);
        assert_eq!(parse_iso("2026-13-01"), None);
        assert_eq!(parse_iso("2028-02-29"), Some(date!(2028 - 02 - 29)));
        assert!(!is_iso_lexical("2026-3-02"));
        assert!(!is_iso_lexical("20260302"));
        assert!(!is_iso_lexical("2026/03/02"));
        assert_eq!(format_iso(date!(2026 - 03 - 02)), "2026-03-02");
    }

    #[test]
    fn compact_dates() {
        assert_eq!(parse_compact("19850712"), Some(date!(1985 - 07 - 12)));
        assert_eq!(parse_compact("19850230"), None);
        assert_eq!(parse_compact("19851300"), None);
        assert_eq!(parse_compact("1985071"), None);
    }

    #[test]
    fn datetimes() {
        assert!(is_datetime_with_offset("2026-03-02T10:15:00+01:00"));
        assert!(is_datetime_with_offset("2026-03-02T10:15:00Z"));
        assert!(is_datetime_with_offset("2026-03-02T10:15:00.123-05:30"));
        assert!(is_datetime_with_offset("2026-03-02T24:00:00Z"));
        assert!(!is_datetime_with_offset("2026-03-02T10:15:00"));
        assert!(!is_datetime_with_offset("2026-03-02 10:15:00+01:00"));
        assert!(!is_datetime_with_offset("2026-03-02T25:15:00+01:00"));
        assert!(!is_datetime_with_offset("2026-02-30T10:15:00+01:00"));
        assert!(!is_datetime_with_offset("2026-03-02T10:15+01:00"));
        assert!(!is_datetime_with_offset("2026-03-02T10:15:00+15:00"));
        assert!(!is_datetime_with_offset("2026-03-02T10:15:00.+01:00"));
        assert!(!is_datetime_with_offset(""));
    }
}
