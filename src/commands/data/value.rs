//! Checking and normalising field values (12.1.1): card numbers, validity
//! dates, time-zone intervals, base64 payloads. Pure functions: text in,
//! bound SQL values out.

use super::schema::{Field, Kind};
use crate::protocol::time::{format_record_time, old_decode, old_encode, parse_record_time};
use base64::Engine;
use chrono::NaiveDate;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::ToSql;
use std::borrow::Cow;

/// Longest free-text value accepted (names, addresses, parameter values).
pub const MAX_TEXT: usize = 4096;
/// Longest base64 value accepted: Appendix 1's -106 says 4 MB.
pub const MAX_BASE64: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0}")]
    Bad(&'static str),
    #[error("base64 text length is not a multiple of 4")]
    Base64Length,
    #[error("value larger than 4 MB")]
    TooBig,
}

/// A value ready to bind. Text borrows from the command line whenever it
/// is stored as delivered, so a bulk sync does not copy every field.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound<'a> {
    Null,
    Int(i64),
    Text(Cow<'a, str>),
}

impl Bound<'_> {
    /// The owned SQL value, for conditions kept beyond the command line.
    pub fn into_value(self) -> Value {
        match self {
            Bound::Null => Value::Null,
            Bound::Int(i) => Value::Integer(i),
            Bound::Text(t) => Value::Text(t.into_owned()),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Bound::Null => true,
            Bound::Text(t) => t.is_empty(),
            Bound::Int(_) => false,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Bound::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Bound::Null => ValueRef::Null,
            Bound::Int(i) => ValueRef::Integer(*i),
            Bound::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// A value ready to bind, plus the normalised second column some kinds fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized<'a> {
    pub value: Bound<'a>,
    pub derived: Option<(&'static str, Bound<'a>)>,
}

impl<'a> Normalized<'a> {
    fn plain(value: Bound<'a>) -> Self {
        Normalized {
            value,
            derived: None,
        }
    }
}

/// Checks and normalises one value of `field`.
pub fn normalize<'a>(field: &Field, raw: &'a str) -> Result<Normalized<'a>, ValueError> {
    normalize_kind(field.kind, raw)
}

pub fn normalize_kind(kind: Kind, raw: &str) -> Result<Normalized<'_>, ValueError> {
    let v = crate::protocol::record::trim_spaces_and_cr(raw);
    match kind {
        Kind::Int => Ok(Normalized::plain(parse_int(v)?)),
        Kind::Text => {
            if raw.len() > MAX_TEXT {
                return Err(ValueError::Bad("text too long"));
            }
            if raw.contains('\0') {
                return Err(ValueError::Bad("NUL in text"));
            }
            // Text keeps inner and trailing spaces (names), only CR goes.
            Ok(Normalized::plain(Bound::Text(Cow::Borrowed(
                raw.trim_end_matches('\r'),
            ))))
        }
        Kind::Card => Ok(Normalized::plain(Bound::Text(card_text(v)?))),
        Kind::ValidDate { at, end } => {
            let (raw_text, when) = parse_valid_date(v, end)?;
            Ok(Normalized {
                value: Bound::Text(raw_text),
                derived: Some((at, when.map_or(Bound::Null, |t| Bound::Text(t.into())))),
            })
        }
        Kind::Date8 => {
            parse_yyyymmdd(v).ok_or(ValueError::Bad("not a YYYYMMDD date"))?;
            Ok(Normalized::plain(Bound::Text(Cow::Borrowed(v))))
        }
        Kind::Interval => {
            if v.is_empty() {
                return Ok(Normalized::plain(Bound::Int(0)));
            }
            let n: i64 = v.parse().map_err(|_| ValueError::Bad("not an interval"))?;
            decode_interval(n).ok_or(ValueError::Bad("interval halves are not HHMM"))?;
            Ok(Normalized::plain(Bound::Int(n)))
        }
        Kind::Base64 => {
            check_base64(v)?;
            Ok(Normalized::plain(Bound::Text(Cow::Borrowed(v))))
        }
        Kind::RecordTime => Ok(Normalized::plain(Bound::Text(parse_event_time(v)?.into()))),
    }
}

fn parse_int(v: &str) -> Result<Bound<'static>, ValueError> {
    if v.is_empty() {
        return Ok(Bound::Null);
    }
    if v.len() > 20 {
        return Err(ValueError::Bad("number too long"));
    }
    v.parse::<i64>()
        .map(Bound::Int)
        .map_err(|_| ValueError::Bad("not a number"))
}

/// [`parse_card`], borrowing the text when it is already canonical decimal
/// (the common case in a bulk sync).
fn card_text(v: &str) -> Result<Cow<'_, str>, ValueError> {
    let canonical = !v.is_empty()
        && v.len() < 20
        && !v.starts_with('0')
        && v.bytes().all(|b| b.is_ascii_digit());
    if canonical {
        Ok(Cow::Borrowed(v))
    } else {
        parse_card(v).map(Cow::Owned)
    }
}

/// A card number as decimal text; `""` for no card. `[15CD5B07]` lists the
/// bytes least significant first: 0x075BCD15 = 123456789.
pub fn parse_card(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Ok(String::new());
    }
    let n: u64 = if let Some(hex) = v.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 16 {
            return Err(ValueError::Bad("hex card number needs 1 to 8 bytes"));
        }
        let mut n = 0u64;
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| ValueError::Bad("bad hex"))?;
            let byte = u8::from_str_radix(text, 16).map_err(|_| ValueError::Bad("bad hex"))?;
            n |= u64::from(byte) << (8 * i);
        }
        n
    } else {
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::Bad("card number is neither decimal nor [hex]"));
        }
        v.parse()
            .map_err(|_| ValueError::Bad("card number too large"))?
    };
    Ok(if n == 0 { String::new() } else { n.to_string() })
}

fn parse_yyyymmdd(v: &str) -> Option<NaiveDate> {
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i32 = v[..4].parse().ok()?;
    let m: u32 = v[4..6].parse().ok()?;
    let d: u32 = v[6..].parse().ok()?;
    if y < 1900 {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A user validity bound: `(raw as stored, normalised local time or None for
/// no limit)`. The spec lets DateFmtFunOn choose YYYYMMDD or Appendix 5
/// seconds; servers do not always follow the device's flag, so the form is
/// recognised instead: a valid 8-digit date is YYYYMMDD (as seconds it would
/// mean a day in 2000-2003, which no server sends), anything else numeric is
/// seconds.
pub fn parse_valid_date(v: &str, end: bool) -> Result<(Cow<'_, str>, Option<String>), ValueError> {
    if v.is_empty() || v == "0" {
        return Ok((Cow::Borrowed("0"), None));
    }
    if let Some(date) = parse_yyyymmdd(v) {
        let t = if end {
            date.and_hms_opt(23, 59, 59)
        } else {
            date.and_hms_opt(0, 0, 0)
        };
        return Ok((Cow::Borrowed(v), t.map(format_record_time)));
    }
    if v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::Bad("validity is neither YYYYMMDD nor seconds"));
    }
    let secs: u32 = v
        .parse()
        .map_err(|_| ValueError::Bad("validity seconds out of range"))?;
    let t = old_decode(secs).ok_or(ValueError::Bad("validity seconds name no real day"))?;
    Ok((Cow::Borrowed(v), Some(format_record_time(t))))
}

/// The interval encoding is the protocol's (12.1.1.11); the engine reads it too.
pub use crate::protocol::time::decode_interval;

fn check_base64(v: &str) -> Result<(), ValueError> {
    if v.len() > MAX_BASE64 {
        return Err(ValueError::TooBig);
    }
    if v.len() % 4 != 0 {
        return Err(ValueError::Base64Length);
    }
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .map(|_| ())
        .map_err(|_| ValueError::Bad("not base64"))
}

/// An event-log time bound: `YYYY-MM-DD HH:MM:SS` or Appendix 5 seconds, as
/// the stored text form.
pub fn parse_event_time(v: &str) -> Result<String, ValueError> {
    if let Some(t) = parse_record_time(v) {
        return Ok(format_record_time(t));
    }
    let secs: u32 = v
        .parse()
        .map_err(|_| ValueError::Bad("time is neither YYYY-MM-DD HH:MM:SS nor seconds"))?;
    old_decode(secs)
        .map(format_record_time)
        .ok_or(ValueError::Bad("time seconds name no real day"))
}

/// Appendix 5 seconds of a stored event time; empty if it cannot be encoded.
pub fn event_time_seconds(stored: &str) -> String {
    parse_record_time(stored)
        .and_then(old_encode)
        .map_or_else(String::new, |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_in_both_forms() {
        assert_eq!(parse_card("[15CD5B07]").unwrap(), "123456789");
        assert_eq!(parse_card("123456789").unwrap(), "123456789");
        assert_eq!(parse_card("000123").unwrap(), "123");
        assert_eq!(parse_card("0").unwrap(), "");
        assert_eq!(parse_card("").unwrap(), "");
        assert!(parse_card("[15CD5B0]").is_err());
        assert!(parse_card("[zz]").is_err());
        assert!(parse_card("12a").is_err());
        assert!(parse_card("99999999999999999999999").is_err());
        // The borrowing fast path gives what parse_card gives.
        for v in [
            "123456789",
            "000123",
            "0",
            "",
            "[15CD5B07]",
            "18446744073709551615",
        ] {
            assert_eq!(card_text(v).unwrap(), parse_card(v).unwrap(), "{v}");
        }
        assert!(card_text("12a").is_err());
    }

    #[test]
    fn validity_dates() {
        assert_eq!(
            parse_valid_date("0", false).unwrap(),
            (Cow::Borrowed("0"), None)
        );
        assert_eq!(
            parse_valid_date("20240131", true).unwrap().1.as_deref(),
            Some("2024-01-31 23:59:59")
        );
        let secs = old_encode(
            NaiveDate::from_ymd_opt(2018, 6, 30)
                .unwrap()
                .and_hms_opt(8, 0, 0)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            parse_valid_date(&secs.to_string(), false)
                .unwrap()
                .1
                .as_deref(),
            Some("2018-06-30 08:00:00")
        );
        // Day 31 of February does not exist.
        assert!(parse_valid_date(&((31 + 30) * 86_400).to_string(), false).is_err());
        assert!(parse_valid_date("2024-01-01", false).is_err());
    }

    #[test]
    fn intervals_decode_to_hhmm() {
        assert_eq!(decode_interval(0x33e04b0), Some((830, 1200)));
        assert_eq!(decode_interval(65_537_100), Some((1000, 1100)));
        assert_eq!(decode_interval(2359), Some((0, 2359)));
        assert_eq!(decode_interval((2500 << 16) | 100), None);
        assert_eq!(decode_interval(1060), None);
        assert_eq!(decode_interval(-1), None);
    }

    #[test]
    fn base64_checks() {
        assert!(check_base64("QUJD").is_ok());
        assert_eq!(check_base64("QUJ"), Err(ValueError::Base64Length));
        assert!(matches!(check_base64("QU*D"), Err(ValueError::Bad(_))));
    }
}
