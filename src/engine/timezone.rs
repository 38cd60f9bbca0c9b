//! Time rules (12.1.1.7 `timezone`) and holidays (12.1.1.6): pure evaluation
//! of "is this moment inside the rule", no clock and no SQL.
//!
//! Each day has three intervals `start<<16 | end`, both halves HHMM. Choices
//! the spec leaves open, made here and pinned by tests:
//! - the end minute is included (`0000-2359` is the whole day, as servers send it);
//! - `0` and any interval whose start equals its end are empty;
//! - an interval whose start is after its end spans midnight: it belongs to the
//!   day it starts on and runs into the first hours of the next day;
//! - a holiday (of type 1–3) replaces the weekday's intervals with that type's,
//!   also when it falls on a weekend.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// One interval in minutes of the day, `end` inclusive. `None` = empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: u16,
    pub end: u16,
}

impl Interval {
    /// Decodes the delivered integer; `None` for empty or malformed values
    /// (a malformed value cannot reach the table, but a rule must never panic).
    pub fn decode(raw: i64) -> Option<Interval> {
        let (start, end) = crate::protocol::time::decode_interval(raw)?;
        let minutes = |hhmm: u16| (hhmm / 100) * 60 + hhmm % 100;
        let (start, end) = (minutes(start), minutes(end).min(24 * 60 - 1));
        (start != end).then_some(Interval { start, end })
    }

    fn spans_midnight(self) -> bool {
        self.start > self.end
    }

    /// Whether minute `m` of the interval's own day is inside it.
    fn covers_same_day(self, m: u16) -> bool {
        if self.spans_midnight() {
            m >= self.start
        } else {
            self.start <= m && m <= self.end
        }
    }

    /// Whether minute `m` of the following day is inside it.
    fn covers_next_day(self, m: u16) -> bool {
        self.spans_midnight() && m <= self.end
    }
}

/// Which intervals apply to a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// 0 = Sunday … 6 = Saturday.
    Weekday(u8),
    /// Holiday type 1, 2 or 3.
    Holiday(u8),
}

/// A decoded time rule: seven weekdays then three holiday types, three
/// intervals each (the column order of the `time_zones` table).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeRule {
    pub days: [[Option<Interval>; 3]; 10],
}

impl TimeRule {
    /// From the 30 delivered integers in table order (sun1..sat3, hol1_1..hol3_3).
    pub fn from_raw(raw: &[i64; 30]) -> TimeRule {
        let mut days = [[None; 3]; 10];
        for (i, v) in raw.iter().enumerate() {
            days[i / 3][i % 3] = Interval::decode(*v);
        }
        TimeRule { days }
    }

    /// A rule open all day every day (tests, and the demo's 24 h rule).
    pub fn always() -> TimeRule {
        let all = Some(Interval {
            start: 0,
            end: 24 * 60 - 1,
        });
        TimeRule {
            days: [[all, None, None]; 10],
        }
    }

    fn slot(kind: DayKind) -> usize {
        match kind {
            DayKind::Weekday(d) => usize::from(d.min(6)),
            DayKind::Holiday(t) => 6 + usize::from(t.clamp(1, 3)),
        }
    }

    /// Whether `at` is inside the rule, given what kind of day `at`'s date
    /// and the day before are (holiday lookup is the caller's).
    pub fn covers(&self, at: NaiveDateTime, today: DayKind, yesterday: DayKind) -> bool {
        self.covering(at, today, yesterday).is_some()
    }

    /// Which interval covers `at`: (day slot 0–9, interval 0–2) of the first
    /// match, today's intervals before the previous day's midnight spans.
    /// Tables that attach a value to each interval (`DiffTimezoneVS`) use it.
    pub fn covering(
        &self,
        at: NaiveDateTime,
        today: DayKind,
        yesterday: DayKind,
    ) -> Option<(usize, usize)> {
        let m = u16::try_from(at.hour() * 60 + at.minute()).unwrap_or(0);
        let (t, y) = (Self::slot(today), Self::slot(yesterday));
        let same = self.days[t]
            .iter()
            .position(|i| i.is_some_and(|i| i.covers_same_day(m)));
        if let Some(n) = same {
            return Some((t, n));
        }
        self.days[y]
            .iter()
            .position(|i| i.is_some_and(|i| i.covers_next_day(m)))
            .map(|n| (y, n))
    }
}

/// The weekday slot of a date (Sunday = 0).
pub fn weekday_of(date: NaiveDate) -> DayKind {
    DayKind::Weekday(u8::try_from(date.weekday().num_days_from_sunday()).unwrap_or(0))
}

/// A holiday row: `YYYYMMDD`, type, loop (1 = every year on that day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub date: String,
    pub kind: u8,
    pub every_year: bool,
}

/// The kind of day `date` is, given the holiday rows that may match it.
pub fn day_kind(date: NaiveDate, holidays: &[Holiday]) -> DayKind {
    let ymd = date.format("%Y%m%d").to_string();
    for h in holidays {
        let hit = h.date == ymd || (h.every_year && h.date.get(4..) == ymd.get(4..));
        if hit && (1..=3).contains(&h.kind) {
            return DayKind::Holiday(h.kind);
        }
    }
    weekday_of(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 59)
            .unwrap()
    }

    fn raw(v: u32, v2: u32) -> i64 {
        i64::from((v << 16) | v2)
    }

    fn rule_with(slot: usize, interval: i64) -> TimeRule {
        let mut r = [0i64; 30];
        r[slot * 3] = interval;
        TimeRule::from_raw(&r)
    }

    fn check(rule: &TimeRule, t: NaiveDateTime, holidays: &[Holiday]) -> bool {
        let today = day_kind(t.date(), holidays);
        let yesterday = day_kind(t.date().pred_opt().unwrap(), holidays);
        rule.covers(t, today, yesterday)
    }

    #[test]
    fn office_hours_include_both_end_minutes() {
        // Monday (slot 1) 08:30-17:00; 2024-05-06 is a Monday.
        let r = rule_with(1, raw(830, 1700));
        assert!(!check(&r, at(2024, 5, 6, 8, 29), &[]));
        assert!(check(&r, at(2024, 5, 6, 8, 30), &[]));
        assert!(check(&r, at(2024, 5, 6, 17, 0), &[]));
        assert!(!check(&r, at(2024, 5, 6, 17, 1), &[]));
        assert!(
            !check(&r, at(2024, 5, 7, 9, 0), &[]),
            "Tuesday has no interval"
        );
    }

    #[test]
    fn the_spec_example_value_decodes() {
        // 8:30-12:00 is 0x33e04b0 (12.1.1.7).
        assert_eq!(
            Interval::decode(0x33e04b0),
            Some(Interval {
                start: 510,
                end: 720
            })
        );
    }

    #[test]
    fn empty_and_malformed_intervals_cover_nothing() {
        assert_eq!(Interval::decode(0), None);
        assert_eq!(Interval::decode(raw(1000, 1000)), None);
        assert_eq!(Interval::decode(raw(961, 1000)), None, "61 minutes");
        assert_eq!(Interval::decode(-5), None);
        let r = rule_with(1, 0);
        assert!(!check(&r, at(2024, 5, 6, 0, 0), &[]));
    }

    #[test]
    fn a_midnight_spanning_interval_runs_into_the_next_day() {
        // Monday 22:00-06:00.
        let r = rule_with(1, raw(2200, 600));
        assert!(check(&r, at(2024, 5, 6, 23, 0), &[]));
        assert!(check(&r, at(2024, 5, 7, 5, 59), &[]), "Tuesday morning");
        assert!(!check(&r, at(2024, 5, 7, 6, 1), &[]));
        assert!(!check(&r, at(2024, 5, 6, 5, 0), &[]), "not Monday morning");
        assert!(!check(&r, at(2024, 5, 7, 23, 0), &[]), "not Tuesday night");
    }

    #[test]
    fn holidays_replace_the_weekday_also_on_weekends() {
        // Saturday 2024-05-04 is a type-2 holiday that repeats every year.
        let hol = [Holiday {
            date: "20200504".into(),
            kind: 2,
            every_year: true,
        }];
        let mut raw30 = [0i64; 30];
        raw30[6 * 3] = raw(0, 2359); // Saturday all day
        raw30[8 * 3] = raw(900, 1000); // holiday type 2: 09:00-10:00
        let r = TimeRule::from_raw(&raw30);
        assert!(
            check(&r, at(2024, 5, 11, 8, 0), &[]),
            "an ordinary Saturday"
        );
        assert!(!check(&r, at(2024, 5, 4, 8, 0), &hol), "holiday Saturday");
        assert!(check(&r, at(2024, 5, 4, 9, 30), &hol));
        let once = [Holiday {
            date: "20200504".into(),
            kind: 2,
            every_year: false,
        }];
        assert!(
            check(&r, at(2024, 5, 4, 8, 0), &once),
            "not looping: 2020 only"
        );
    }
}
