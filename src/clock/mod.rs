//! The device clock. The server's `Date` header (7.1), `SET OPTIONS
//! DateTime` and rtdata `type=time` keep it, as far as [`sync`] believes
//! them; it is an offset over the host clock so that neither tests nor the
//! simulator ever change the host's time. [`zone`] is the local zone every
//! rule and record is read in.

pub mod sync;
pub mod zone;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
pub use sync::{TimeSource, TimeSync, Verdict};
pub use zone::{LocalZone, ZoneOffset};

/// Where the firmware gets the time. Object-safe; shared between threads.
pub trait Clock: Send + Sync {
    /// Current UTC time as the device believes it.
    fn now_utc(&self) -> DateTime<Utc>;
    /// Sets the device's idea of UTC unconditionally. Times from the server
    /// go through [`Clock::offer`].
    fn set_utc(&self, t: DateTime<Utc>);
    /// The local zone in force.
    fn zone(&self) -> LocalZone;
    fn set_zone(&self, zone: LocalZone);
    /// A time stated by the server: applied as far as [`sync`]'s policy
    /// believes it.
    fn offer(&self, t: DateTime<Utc>, source: TimeSource) -> Verdict;

    /// Current local time with the zone's own DST only. Rules and records
    /// use `engine::rules::wall_clock`, which also applies the server's
    /// DST table.
    fn now_local(&self) -> NaiveDateTime {
        self.zone().local(self.now_utc())
    }

    /// Offset of local time from UTC now, in minutes.
    fn utc_offset_minutes(&self) -> i32 {
        self.zone().offset_seconds(self.now_utc()) / 60
    }

    /// Makes local time a fixed offset, as `device.utc_offset_minutes` does.
    fn set_utc_offset_minutes(&self, minutes: i32) {
        self.set_zone(LocalZone::Configured(minutes));
    }
}

/// Judges `t` with `sync` against `clock` and applies it when believed:
/// the one implementation of [`Clock::offer`].
pub fn offer_with(
    clock: &dyn Clock,
    sync: &Mutex<TimeSync>,
    t: DateTime<Utc>,
    source: TimeSource,
) -> Verdict {
    let mut sync = sync.lock().unwrap_or_else(|p| p.into_inner());
    let verdict = sync.judge(t, clock.now_utc(), source);
    if let Verdict::Applied { .. } = verdict {
        clock.set_utc(t);
    }
    verdict
}

/// The real clock: host time plus an offset learnt from the server.
pub struct DeviceClock {
    offset_ms: AtomicI64,
    zone: RwLock<LocalZone>,
    sync: Mutex<TimeSync>,
}

impl DeviceClock {
    /// A clock whose local zone is the configured offset until
    /// `app::Firmware::start` chooses the zone.
    pub fn new(utc_offset_minutes: i32) -> Self {
        DeviceClock {
            offset_ms: AtomicI64::new(0),
            zone: RwLock::new(LocalZone::Configured(utc_offset_minutes)),
            sync: Mutex::new(TimeSync::default()),
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

    fn zone(&self) -> LocalZone {
        self.zone.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_zone(&self, zone: LocalZone) {
        *self.zone.write().unwrap_or_else(|p| p.into_inner()) = zone;
    }

    fn offer(&self, t: DateTime<Utc>, source: TimeSource) -> Verdict {
        offer_with(self, &self.sync, t, source)
    }
}

/// A clock that only moves when told to. For tests. Times from the server
/// pass the same policy as on the device.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(DateTime<Utc>, LocalZone)>>,
    sync: Arc<Mutex<TimeSync>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            inner: Arc::new(Mutex::new((start, LocalZone::Configured(0)))),
            sync: Arc::new(Mutex::new(TimeSync::default())),
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = ChronoDuration::from_std(by).unwrap_or_else(|_| ChronoDuration::zero());
        self.lock().0 += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (DateTime<Utc>, LocalZone)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.lock().0
    }
    fn set_utc(&self, t: DateTime<Utc>) {
        self.lock().0 = t;
    }
    fn zone(&self) -> LocalZone {
        self.lock().1.clone()
    }
    fn set_zone(&self, zone: LocalZone) {
        self.lock().1 = zone;
    }
    fn offer(&self, t: DateTime<Utc>, source: TimeSource) -> Verdict {
        offer_with(self, &self.sync, t, source)
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
    fn server_times_pass_the_policy() {
        let c = DeviceClock::new(0);
        let before = c.now_utc();
        let wild = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(c.offer(wild, TimeSource::RtData), Verdict::OutOfBounds);
        assert!((c.now_utc() - before).num_seconds() < 5);
        let ahead = before + ChronoDuration::days(2);
        assert_eq!(
            c.offer(ahead, TimeSource::DateHeader),
            Verdict::Pending { seen: 1 }
        );
        assert!(matches!(
            c.offer(ahead, TimeSource::RtData),
            Verdict::Applied { .. }
        ));
        assert!((c.now_utc() - ahead).num_seconds() < 5);
    }

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Fri, 03 Jul 2015 06:53:01 GMT").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2015, 7, 3, 6, 53, 1).unwrap());
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
