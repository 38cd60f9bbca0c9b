//! When a time from the server may move the device clock. Sans-IO: the
//! caller gives the server's time and the device's, and applies the verdict.
//!
//! - A time before the firmware's build date, or more than
//!   [`FUTURE_YEARS`] after it, is never believed (`Date: … 1970` or
//!   `… 2100` once made every validity check fail and stamped events so).
//! - The server's own statements of the time (SET OPTIONS DateTime, rtdata
//!   `type=time`) are applied whatever the step.
//! - An HTTP `Date` header corrects the clock at once by up to
//!   [`SMALL_STEP_SECS`]; a larger step only once [`CONFIRMATIONS`]
//!   answers in a row agree on it, so one odd answer (a proxy, a cache, a
//!   broken server) changes nothing. A device clock that is itself before
//!   the build date (a board without a real-time clock) takes the first
//!   believable time.
//!
//! Every large step is logged, and so is the first of a run of ignored times.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

include!(concat!(env!("OUT_DIR"), "/build_epoch.rs"));

/// How far after the build date a time is still believed.
pub const FUTURE_YEARS: i64 = 30;
/// The largest step a `Date` header makes on its own.
pub const SMALL_STEP_SECS: i64 = 5 * 60;
/// `Date` answers in a row that must agree before a larger step.
pub const CONFIRMATIONS: u32 = 3;
/// How closely those answers must agree with each other.
const AGREE_SECS: i64 = 60;

/// Who states the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The `Date` header of any answer (7.1).
    DateHeader,
    /// `SET OPTIONS DateTime` (12.5.1).
    SetOptions,
    /// `GET /iclock/rtdata?type=time` (12.5.1).
    RtData,
}

impl TimeSource {
    fn name(self) -> &'static str {
        match self {
            TimeSource::DateHeader => "the Date header",
            TimeSource::SetOptions => "SET OPTIONS DateTime",
            TimeSource::RtData => "rtdata type=time",
        }
    }
}

/// What a time from the server did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The clock was set; it moved by `step_ms`.
    Applied { step_ms: i64 },
    /// The clock already agrees (within the second a `Date` names).
    Unchanged,
    /// A large step that `seen` answers in a row have asked for so far.
    Pending { seen: u32 },
    /// Before the build date or absurdly far ahead: ignored.
    OutOfBounds,
}

/// The times believed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl Bounds {
    /// From the start of the day before the build date to [`FUTURE_YEARS`] after.
    pub fn of_build() -> Bounds {
        Bounds::around(BUILD_EPOCH)
    }

    pub fn around(build_epoch: i64) -> Bounds {
        let day = build_epoch.div_euclid(86_400) * 86_400;
        let earliest = DateTime::from_timestamp(day - 86_400, 0).unwrap_or(DateTime::UNIX_EPOCH);
        let latest = earliest + ChronoDuration::days(FUTURE_YEARS * 365 + FUTURE_YEARS / 4);
        Bounds { earliest, latest }
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.earliest <= t && t <= self.latest
    }
}

/// The policy's memory between answers.
#[derive(Debug, Clone)]
pub struct TimeSync {
    bounds: Bounds,
    /// The step (ms) the last large `Date` answers asked for, and how many.
    pending: Option<(i64, u32)>,
    /// An out-of-bounds time was logged since the last believable one.
    warned: bool,
}

impl Default for TimeSync {
    fn default() -> Self {
        TimeSync::new(Bounds::of_build())
    }
}

impl TimeSync {
    pub fn new(bounds: Bounds) -> Self {
        TimeSync {
            bounds,
            pending: None,
            warned: false,
        }
    }

    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// Judges `server` against the device's `device` time; `Applied` means
    /// the caller sets the clock to `server`.
    pub fn judge(
        &mut self,
        server: DateTime<Utc>,
        device: DateTime<Utc>,
        source: TimeSource,
    ) -> Verdict {
        if !self.bounds.contains(server) {
            if !std::mem::replace(&mut self.warned, true) {
                log::warn!(
                    "ignoring {server} from {}: outside {} .. {} (the firmware's build date .. {FUTURE_YEARS} years on)",
                    source.name(),
                    self.bounds.earliest.date_naive(),
                    self.bounds.latest.date_naive()
                );
            }
            return Verdict::OutOfBounds;
        }
        self.warned = false;
        let step_ms = (server - device).num_milliseconds();
        let step_s = step_ms / 1000;
        if source != TimeSource::DateHeader || !self.bounds.contains(device) {
            self.pending = None;
            if step_s.abs() > SMALL_STEP_SECS {
                log::warn!(
                    "device clock set from {device} to {server} ({step_s:+} s) by {}",
                    source.name()
                );
            }
            return Verdict::Applied { step_ms };
        }
        // A Date names a whole second: a clock inside it is right.
        if (0..1000).contains(&-step_ms) {
            self.pending = None;
            return Verdict::Unchanged;
        }
        if step_s.abs() <= SMALL_STEP_SECS {
            self.pending = None;
            return Verdict::Applied { step_ms };
        }
        let seen = match self.pending {
            Some((asked, n)) if (asked - step_ms).abs() <= AGREE_SECS * 1000 => n + 1,
            _ => {
                log::warn!(
                    "the server's Date {server} is {step_s:+} s from the device clock; waiting for {CONFIRMATIONS} answers to agree (or rtdata / SET OPTIONS DateTime) before stepping"
                );
                1
            }
        };
        if seen >= CONFIRMATIONS {
            self.pending = None;
            log::warn!(
                "device clock set from {device} to {server} ({step_s:+} s): {seen} Date answers in a row agreed"
            );
            return Verdict::Applied { step_ms };
        }
        self.pending = Some((step_ms, seen));
        Verdict::Pending { seen }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn sync() -> TimeSync {
        TimeSync::new(Bounds::around(t(2025, 6, 1, 12, 0, 0).timestamp()))
    }

    #[test]
    fn the_build_date_is_embedded_and_bounds_the_believable_times() {
        let b = Bounds::of_build();
        // Never older than build.rs's fallback (2025-06-01).
        const { assert!(BUILD_EPOCH >= 1_748_736_000) };
        assert!(!b.contains(t(1970, 1, 1, 0, 0, 0)));
        assert!(!b.contains(t(2100, 1, 1, 0, 0, 0)));
        let b = sync().bounds();
        assert_eq!(b.earliest, t(2025, 5, 31, 0, 0, 0));
        assert!(b.contains(t(2054, 1, 1, 0, 0, 0)));
        assert!(!b.contains(t(2056, 1, 1, 0, 0, 0)));
    }

    #[test]
    fn wild_dates_are_ignored_from_every_source() {
        let mut s = sync();
        let device = t(2026, 3, 1, 10, 0, 0);
        for wild in [t(1970, 1, 1, 0, 0, 5), t(2100, 1, 1, 0, 0, 0)] {
            for source in [
                TimeSource::DateHeader,
                TimeSource::RtData,
                TimeSource::SetOptions,
            ] {
                for _ in 0..5 {
                    assert_eq!(s.judge(wild, device, source), Verdict::OutOfBounds);
                }
            }
        }
    }

    #[test]
    fn small_corrections_apply_at_once_and_a_clock_inside_the_second_stays() {
        let mut s = sync();
        let device = t(2026, 3, 1, 10, 0, 0) + ChronoDuration::milliseconds(400);
        assert_eq!(
            s.judge(t(2026, 3, 1, 10, 0, 0), device, TimeSource::DateHeader),
            Verdict::Unchanged
        );
        assert_eq!(
            s.judge(t(2026, 3, 1, 10, 4, 0), device, TimeSource::DateHeader),
            Verdict::Applied { step_ms: 239_600 }
        );
        assert_eq!(
            s.judge(t(2026, 3, 1, 9, 58, 0), device, TimeSource::DateHeader),
            Verdict::Applied { step_ms: -120_400 }
        );
    }

    #[test]
    fn a_large_date_step_needs_answers_that_agree() {
        let mut s = sync();
        let device = t(2026, 3, 1, 10, 0, 0);
        let ahead = t(2026, 3, 4, 10, 0, 0);
        assert_eq!(
            s.judge(ahead, device, TimeSource::DateHeader),
            Verdict::Pending { seen: 1 }
        );
        // One answer that disagrees starts over.
        assert_eq!(
            s.judge(t(2026, 3, 9, 0, 0, 0), device, TimeSource::DateHeader),
            Verdict::Pending { seen: 1 }
        );
        assert_eq!(
            s.judge(ahead, device, TimeSource::DateHeader),
            Verdict::Pending { seen: 1 }
        );
        let later = device + ChronoDuration::seconds(30);
        assert_eq!(
            s.judge(
                ahead + ChronoDuration::seconds(31),
                later,
                TimeSource::DateHeader
            ),
            Verdict::Pending { seen: 2 }
        );
        assert_eq!(
            s.judge(
                ahead + ChronoDuration::seconds(30),
                later,
                TimeSource::DateHeader
            ),
            Verdict::Applied {
                step_ms: 3 * 86_400_000
            }
        );
        // An answer in agreement with the clock clears a pending step.
        let mut s = sync();
        s.judge(ahead, device, TimeSource::DateHeader);
        s.judge(ahead, device, TimeSource::DateHeader);
        s.judge(device, device, TimeSource::DateHeader);
        assert_eq!(
            s.judge(ahead, device, TimeSource::DateHeader),
            Verdict::Pending { seen: 1 }
        );
    }

    #[test]
    fn the_servers_own_statements_and_an_unset_clock_step_at_once() {
        let mut s = sync();
        let device = t(2026, 3, 1, 10, 0, 0);
        let ahead = t(2026, 3, 4, 10, 0, 0);
        assert_eq!(
            s.judge(ahead, device, TimeSource::RtData),
            Verdict::Applied {
                step_ms: 3 * 86_400_000
            }
        );
        assert!(matches!(
            s.judge(device, ahead, TimeSource::SetOptions),
            Verdict::Applied { .. }
        ));
        // A board without a real-time clock boots in 1970.
        assert!(matches!(
            s.judge(device, t(1970, 1, 1, 0, 1, 0), TimeSource::DateHeader),
            Verdict::Applied { .. }
        ));
    }
}
