//! Time encodings of the protocol: the "OldEncodeTime" seconds of Appendix 5/6
//! (31-day months, not Unix time) and the `YYYY-MM-DD HH:MM:SS` text of records.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// Appendix 5: seconds since 2000-01-01 with every month 31 days long.
/// Returns `None` for dates before 2000 (the encoding cannot hold them).
pub fn old_encode(t: NaiveDateTime) -> Option<u32> {
    let year = u32::try_from(t.year().checked_sub(2000)?).ok()?;
    let days = (year * 12 * 31) + (t.month0() * 31) + t.day0();
    let secs = u64::from(days) * 86_400 + u64::from(t.hour() * 3600 + t.minute() * 60 + t.second());
    u32::try_from(secs).ok()
}

/// Appendix 6: the inverse of [`old_encode`]. Returns `None` when the encoded
/// day does not exist (31 February), which a hostile value can produce.
pub fn old_decode(tt: u32) -> Option<NaiveDateTime> {
    let sec = tt % 60;
    let mut rest = tt / 60;
    let min = rest % 60;
    rest /= 60;
    let hour = rest % 24;
    rest /= 24;
    let day = rest % 31 + 1;
    rest /= 31;
    let mon = rest % 12 + 1;
    rest /= 12;
    let year = i32::try_from(rest).ok()? + 2000;
    NaiveDate::from_ymd_opt(year, mon, day)?.and_hms_opt(hour, min, sec)
}

/// The record time format `2017-01-10 11:49:32`.
pub fn format_record_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses the record time format; `None` if malformed.
pub fn parse_record_time(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()
}

/// Splits a time-zone interval `start<<16 | end` into its HHMM halves.
/// `None` when the value is negative, too large, or a half is not a time of
/// day (24:00 is allowed as the end of the day).
pub fn decode_interval(v: i64) -> Option<(u16, u16)> {
    let v = u32::try_from(v).ok()?;
    let start = u16::try_from(v >> 16).ok()?;
    let end = u16::try_from(v & 0xFFFF).ok()?;
    let ok = |hhmm: u16| hhmm % 100 < 60 && (hhmm / 100 < 24 || hhmm == 2400);
    (ok(start) && ok(end)).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn encode_matches_the_appendix_formula() {
        // ((17*12*31 + 2*31 + 14) * 86400) + (10*60+11)*60 + 0
        let expected = ((17 * 12 * 31 + 2 * 31 + 14) * 86_400) + (10 * 60 + 11) * 60;
        assert_eq!(old_encode(dt(2017, 3, 15, 10, 11, 0)), Some(expected));
        assert_eq!(old_encode(dt(2000, 1, 1, 0, 0, 0)), Some(0));
        assert_eq!(old_encode(dt(1999, 12, 31, 0, 0, 0)), None);
    }

    #[test]
    fn decode_inverts_encode_and_rejects_impossible_days() {
        let t = dt(2018, 6, 30, 23, 59, 59);
        assert_eq!(old_decode(old_encode(t).unwrap()), Some(t));
        // Day 31 of February (month index 1, day index 30).
        assert_eq!(old_decode((31 + 30) * 86_400), None);
        // The spec's example value decodes to a real date.
        assert!(old_decode(583_512_660).is_some());
    }

    #[test]
    fn record_time_round_trips() {
        let t = dt(2017, 1, 10, 11, 49, 32);
        assert_eq!(format_record_time(t), "2017-01-10 11:49:32");
        assert_eq!(parse_record_time("2017-01-10 11:49:32"), Some(t));
        assert_eq!(parse_record_time("2017-13-10 11:49:32"), None);
    }
}
