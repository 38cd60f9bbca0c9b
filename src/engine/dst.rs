//! Daylight saving time (12.1.1.13 `DSTSetting`, device option `DSTOn`):
//! the engine evaluates time rules and stamps records in local time with
//! DST applied. Pure: standard local time in, DST-adjusted local time out.
//!
//! DST is applied once: while the server's table is in force (DSTOn=1 and
//! a row that parses) it is the only DST, on the zone's standard time; a
//! system zone's own DST rules apply only when it is not ([`Dst::wall`]).
//!
//! A row's StartTime/EndTime are `MMIIWWHH`: month, the II-th (1–4; 5 =
//! the last) weekday WW (0 = Sunday … 6 = Saturday; 7 is read as Sunday)
//! of that month, at hour HH. The start is given in standard time and the
//! clock jumps forward one hour there; the end is given in DST (local
//! clock) time and the clock falls back one hour there. Choices where the
//! spec is silent: the shift is one hour; a row applies to its Year, and a
//! row with Loop=1 also to every later year without a row of its own.

use crate::clock::LocalZone;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc, Weekday};

/// One transition point of a DST row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DstPoint {
    pub month: u32,
    /// 1–4, or 5 for the last such weekday of the month.
    pub week: u32,
    /// 0 = Sunday … 6 = Saturday.
    pub weekday: u32,
    pub hour: u32,
}

impl DstPoint {
    /// `MMIIWWHH`; `None` when a part is out of range.
    pub fn parse(text: &str) -> Option<DstPoint> {
        let t = text.trim();
        if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let part = |i: usize| t.get(i..i + 2).and_then(|p| p.parse::<u32>().ok());
        let p = DstPoint {
            month: part(0)?,
            week: part(2)?,
            weekday: part(4)? % 7,
            hour: part(6)?,
        };
        ((1..=12).contains(&p.month) && (1..=5).contains(&p.week) && p.hour < 24).then_some(p)
    }

    /// The moment in `year` (as a wall clock reading).
    pub fn in_year(&self, year: i32) -> Option<NaiveDateTime> {
        let weekday = match self.weekday {
            0 => Weekday::Sun,
            1 => Weekday::Mon,
            2 => Weekday::Tue,
            3 => Weekday::Wed,
            4 => Weekday::Thu,
            5 => Weekday::Fri,
            _ => Weekday::Sat,
        };
        let month = self.month;
        let date = if self.week == 5 {
            let next = if month == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            let mut d = next.pred_opt()?;
            while d.weekday() != weekday {
                d = d.pred_opt()?;
            }
            d
        } else {
            let u8w = u8::try_from(self.week).ok()?;
            NaiveDate::from_weekday_of_month_opt(year, month, weekday, u8w)?
        };
        date.and_hms_opt(self.hour, 0, 0)
    }
}

/// A `DSTSetting` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DstRow {
    pub year: i32,
    pub start: DstPoint,
    pub end: DstPoint,
    pub every_year: bool,
}

/// The rows in force, or none when DST is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dst {
    pub rows: Vec<DstRow>,
}

impl Dst {
    fn row_for(&self, year: i32) -> Option<&DstRow> {
        self.rows.iter().find(|r| r.year == year).or_else(|| {
            self.rows
                .iter()
                .filter(|r| r.every_year && r.year <= year)
                .max_by_key(|r| r.year)
        })
    }

    /// Whether DST is in force at standard local time `std`.
    pub fn active(&self, std: NaiveDateTime) -> bool {
        let Some(row) = self.row_for(std.year()) else {
            return false;
        };
        let (Some(start), Some(end_local)) =
            (row.start.in_year(std.year()), row.end.in_year(std.year()))
        else {
            return false;
        };
        // The end is read on the DST clock: one hour earlier in standard time.
        let end = end_local - Duration::hours(1);
        if start <= end {
            start <= std && std < end
        } else {
            // Southern hemisphere: DST spans the new year.
            std >= start || std < end
        }
    }

    /// Whether the server's DST table decides DST (else the zone's own rules).
    pub fn in_force(&self) -> bool {
        !self.rows.is_empty()
    }

    /// The wall clock at `utc` in `zone`: what every rule, holiday,
    /// validity date and record time is read in.
    pub fn wall(&self, zone: &LocalZone, utc: DateTime<Utc>) -> NaiveDateTime {
        if self.in_force() {
            self.local(zone.standard(utc))
        } else {
            zone.local(utc)
        }
    }

    /// Local time with DST applied.
    pub fn local(&self, std: NaiveDateTime) -> NaiveDateTime {
        if self.active(std) {
            std + Duration::hours(1)
        } else {
            std
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    fn eu() -> Dst {
        // Last Sunday of March 02:00 → last Sunday of October 03:00 (DST clock).
        Dst {
            rows: vec![DstRow {
                year: 2020,
                start: DstPoint::parse("03050002").unwrap(),
                end: DstPoint::parse("10050003").unwrap(),
                every_year: true,
            }],
        }
    }

    #[test]
    fn the_spec_example_parses() {
        let p = DstPoint::parse("03020517").unwrap();
        assert_eq!((p.month, p.week, p.weekday, p.hour), (3, 2, 5, 17));
        // The second Friday of March 2018 is the 9th.
        assert_eq!(p.in_year(2018), Some(t(2018, 3, 9, 17, 0, 0)));
        assert_eq!(DstPoint::parse("13020517"), None);
        assert_eq!(DstPoint::parse("0302051"), None);
        assert_eq!(DstPoint::parse("03060517"), None);
    }

    #[test]
    fn spring_forward_and_fall_back_at_the_second() {
        let dst = eu();
        // 2024: 31 March and 27 October are the last Sundays.
        assert_eq!(
            dst.local(t(2024, 3, 31, 1, 59, 59)),
            t(2024, 3, 31, 1, 59, 59)
        );
        assert_eq!(dst.local(t(2024, 3, 31, 2, 0, 0)), t(2024, 3, 31, 3, 0, 0));
        assert_eq!(
            dst.local(t(2024, 10, 27, 1, 59, 59)),
            t(2024, 10, 27, 2, 59, 59)
        );
        assert_eq!(
            dst.local(t(2024, 10, 27, 2, 0, 0)),
            t(2024, 10, 27, 2, 0, 0)
        );
        assert!(!dst.active(t(2024, 12, 1, 12, 0, 0)));
        assert!(
            !dst.active(t(2019, 7, 1, 12, 0, 0)),
            "before the looping row's year"
        );
        let once = Dst {
            rows: vec![DstRow {
                every_year: false,
                ..eu().rows[0]
            }],
        };
        assert!(once.active(t(2020, 7, 1, 12, 0, 0)));
        assert!(!once.active(t(2021, 7, 1, 12, 0, 0)), "no loop");
    }

    #[test]
    fn dst_is_never_applied_twice() {
        use chrono::TimeZone;
        let summer = Utc.with_ymd_and_hms(2024, 7, 1, 10, 0, 0).unwrap();
        let zone = crate::clock::zone::SystemZoneSource {
            tz: Some("CET-1CEST,M3.5.0,M10.5.0/3".into()),
            ..crate::clock::zone::SystemZoneSource::none()
        }
        .lookup()
        .map(LocalZone::System)
        .unwrap();
        // The zone's own DST without a server table: 12:00.
        assert_eq!(Dst::default().wall(&zone, summer), t(2024, 7, 1, 12, 0, 0));
        // The server's table on the zone's standard time: still 12:00.
        assert_eq!(eu().wall(&zone, summer), t(2024, 7, 1, 12, 0, 0));
        // A fixed offset has no DST of its own; the table adds it.
        let fixed = LocalZone::Configured(60);
        assert_eq!(Dst::default().wall(&fixed, summer), t(2024, 7, 1, 11, 0, 0));
        assert_eq!(eu().wall(&fixed, summer), t(2024, 7, 1, 12, 0, 0));
    }

    #[test]
    fn southern_dst_spans_the_new_year() {
        // First Sunday of October 02:00 → first Sunday of April 03:00.
        let dst = Dst {
            rows: vec![DstRow {
                year: 2024,
                start: DstPoint::parse("10010002").unwrap(),
                end: DstPoint::parse("04010003").unwrap(),
                every_year: true,
            }],
        };
        assert!(dst.active(t(2024, 1, 15, 12, 0, 0)));
        assert!(!dst.active(t(2024, 4, 7, 2, 0, 0)), "ended at 03:00 DST");
        assert!(!dst.active(t(2024, 6, 1, 12, 0, 0)));
        assert!(dst.active(t(2024, 10, 6, 2, 0, 0)));
    }
}
