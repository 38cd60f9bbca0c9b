//! The device clock. The server's `Date` header (7.1) and `SET OPTIONS
//! DateTime` keep it; it is an offset over the host clock so that neither
//! tests nor the simulator ever change the host's time.

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Where the firmware gets the time. Object-safe; shared between threads.
pub trait Clock: Send + Sync {
    /// Current UTC time as the device believes it.
    fn now_utc(&self) -> DateTime<Utc>;
    /// Sets the device's idea of UTC (from the server).
    fn set_utc(&self, t: DateTime<Utc>);
    /// Offset of local time from UTC, in minutes.
    fn utc_offset_minutes(&self) -> i32;
    fn set_utc_offset_minutes(&self, minutes: i32);

    /// Current local time, as records and time zones use it.
    fn now_local(&self) -> NaiveDateTime {
        (self.now_utc() + ChronoDuration::minutes(i64::from(self.utc_offset_minutes()))).naive_utc()
    }
}

/// The real clock: host time plus an offset learnt from the server.
pub struct DeviceClock {
    offset_ms: AtomicI64,
    utc_offset_min: AtomicI64,
}

impl DeviceClock {
    pub fn new(utc_offset_minutes: i32) -> Self {
        DeviceClock {
            offset_ms: AtomicI64::new(0),
            utc_offset_min: AtomicI64::new(i64::from(utc_offset_minutes)),
        }
    }
}

impl Clock for DeviceClock {
    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now() + ChronoDuration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    fn set_utc(&self, t: DateTime<Utc>) {
        let offset = (t - Utc::now()).num_milliseconds();
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    fn utc_offset_minutes(&self) -> i32 {
        i32::try_from(self.utc_offset_min.load(Ordering::Relaxed)).unwrap_or(0)
    }

    fn set_utc_offset_minutes(&self, minutes: i32) {
        self.utc_offset_min
            .store(i64::from(minutes), Ordering::Relaxed);
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(DateTime<Utc>, i32)>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            inner: Arc::new(Mutex::new((start, 0))),
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = ChronoDuration::from_std(by).unwrap_or_else(|_| ChronoDuration::zero());
        if let Ok(mut g) = self.inner.lock() {
            g.0 += by;
        }
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.inner
            .lock()
            .map(|g| g.0)
            .unwrap_or_else(|p| p.into_inner().0)
    }
    fn set_utc(&self, t: DateTime<Utc>) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 = t;
        }
    }
    fn utc_offset_minutes(&self) -> i32 {
        self.inner.lock().map(|g| g.1).unwrap_or(0)
    }
    fn set_utc_offset_minutes(&self, minutes: i32) {
        if let Ok(mut g) = self.inner.lock() {
            g.1 = minutes;
        }
    }
}

/// Parses an HTTP `Date` header (`Fri, 03 Jul 2015 06:53:01 GMT`).
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    Some(DateTime::<Utc>::from(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn device_clock_follows_the_server_without_touching_the_host() {
        let c = DeviceClock::new(120);
        let server = Utc.with_ymd_and_hms(2015, 7, 3, 6, 53, 1).unwrap();
        c.set_utc(server);
        let d = (c.now_utc() - server).num_seconds();
        assert!((0..5).contains(&d), "{d}");
        assert_eq!(
            c.now_local().format("%Y-%m-%d %H").to_string(),
            "2015-07-03 08"
        );
        assert!(Utc::now().timestamp() > server.timestamp() + 1_000_000);
    }

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Fri, 03 Jul 2015 06:53:01 GMT").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2015, 7, 3, 6, 53, 1).unwrap());
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
