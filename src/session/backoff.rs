//! Reconnect pacing after failures the server cannot cure: the device's own
//! database refusing writes (disk full, a read-only remount, I/O errors).
//!
//! Reconnecting every ErrorDelay would only repeat the same requests: a
//! read-only data dir once cost 72 POSTs for 17 events in 20 s. So while
//! the database keeps failing the delay doubles, up to [`MAX_DELAY`] (or
//! ErrorDelay when that is longer), and the condition is logged once when
//! it starts and once when it ends. Sans-IO: the session passes `now`.

use std::time::{Duration, Instant};

/// The longest wait between attempts while the database fails.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// An episode of local failures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Episode {
    since: Instant,
    failures: u32,
}

/// What [`LocalFailures::on_failure`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Wait this long before the next attempt.
    pub delay: Duration,
    /// The first failure of an episode: log it (later ones are not).
    pub first: bool,
}

/// The episode that ended at [`LocalFailures::on_success`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub lasted: Duration,
    pub failures: u32,
}

#[derive(Debug, Clone, Default)]
pub struct LocalFailures {
    episode: Option<Episode>,
}

impl LocalFailures {
    /// A database failure at `now`; `error_delay` is the server's ErrorDelay.
    pub fn on_failure(&mut self, now: Instant, error_delay: Duration) -> Retry {
        let first = self.episode.is_none();
        let episode = self.episode.get_or_insert(Episode {
            since: now,
            failures: 0,
        });
        let doublings = episode.failures.min(16);
        episode.failures = episode.failures.saturating_add(1);
        let cap = MAX_DELAY.max(error_delay);
        let delay = error_delay
            .checked_mul(1u32 << doublings)
            .map_or(cap, |d| d.min(cap));
        Retry { delay, first }
    }

    /// A round that went through without a database failure.
    pub fn on_success(&mut self, now: Instant) -> Option<Recovered> {
        self.episode.take().map(|e| Recovered {
            lasted: now.saturating_duration_since(e.since),
            failures: e.failures,
        })
    }

    pub fn failing(&self) -> bool {
        self.episode.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_to_a_cap_and_the_start_is_reported_once() {
        let mut f = LocalFailures::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let delays: Vec<(u64, bool)> = (0..12)
            .map(|i| {
                let r = f.on_failure(t0 + s(i), s(1));
                (r.delay.as_secs(), r.first)
            })
            .collect();
        assert_eq!(
            delays,
            [
                (1, true),
                (2, false),
                (4, false),
                (8, false),
                (16, false),
                (32, false),
                (64, false),
                (128, false),
                (256, false),
                (300, false),
                (300, false),
                (300, false)
            ]
        );
        let back = f.on_success(t0 + s(20)).unwrap();
        assert_eq!((back.lasted, back.failures), (s(20), 12));
        assert_eq!(f.on_success(t0 + s(21)), None, "reported once");
        assert!(f.on_failure(t0 + s(30), s(1)).first, "a new episode");
    }

    #[test]
    fn a_long_error_delay_is_never_shortened() {
        let mut f = LocalFailures::default();
        let r = f.on_failure(Instant::now(), Duration::from_secs(3600));
        assert_eq!(r.delay, Duration::from_secs(3600));
        let r = f.on_failure(Instant::now(), Duration::from_secs(3600));
        assert_eq!(r.delay, Duration::from_secs(3600));
    }
}
