//! Software debounce for discrete inputs (the v1 GPIO uAPI has none). Pure: edges carry
//! their time and the caller polls with `now`.
//!
//! A new level is reported once the raw level has held it for the debounce window; the
//! report carries the time of the first edge that left the old level, which is when the
//! door really moved. Bounces that return to the old level inside the window report nothing.

use crate::timestamp::Timestamp;

#[derive(Debug, Clone)]
pub struct Debouncer {
    window_ns: u64,
    stable: bool,
    raw: bool,
    last_change_ns: u64,
    departure: Option<Timestamp>,
}

impl Debouncer {
    /// Starts stable at `level`.
    pub fn new(level: bool, window_ns: u64) -> Debouncer {
        Debouncer {
            window_ns,
            stable: level,
            raw: level,
            last_change_ns: 0,
            departure: None,
        }
    }

    pub fn stable(&self) -> bool {
        self.stable
    }

    /// A raw (logical) level change at `at`.
    pub fn on_edge(&mut self, level: bool, at: Timestamp) {
        if level == self.raw {
            return;
        }
        self.raw = level;
        self.last_change_ns = at.mono_ns;
        // The first edge away from the stable level is when the contact really moved; it
        // stays the candidate through the bounces until the raw level settles.
        if level != self.stable && self.departure.is_none() {
            self.departure = Some(at);
        }
    }

    /// When to poll next.
    pub fn deadline_ns(&self) -> Option<u64> {
        if self.departure.is_some() {
            Some(self.last_change_ns.saturating_add(self.window_ns))
        } else {
            None
        }
    }

    /// The new stable level and when it began, once it has held for the window.
    pub fn poll(&mut self, now_ns: u64) -> Option<(bool, Timestamp)> {
        let deadline = self.deadline_ns()?;
        if now_ns < deadline {
            return None;
        }
        let at = self.departure.take()?;
        if self.raw == self.stable {
            return None; // bounced back and settled: nothing happened
        }
        self.stable = self.raw;
        Some((self.stable, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn t(ns: u64) -> Timestamp {
        Timestamp::from_anchor_ns(ns)
    }

    #[test]
    fn bouncy_open_reports_once_at_first_edge() {
        let mut d = Debouncer::new(false, 20 * MS);
        for (i, level) in [true, false, true, false, true].into_iter().enumerate() {
            let now = 100 * MS + u64::try_from(i).unwrap() * MS;
            assert_eq!(d.poll(now), None);
            d.on_edge(level, t(now));
        }
        assert_eq!(d.poll(104 * MS + 19 * MS), None);
        let (level, at) = d.poll(124 * MS).unwrap();
        assert!(level);
        assert_eq!(at.mono_ns, 100 * MS);
        assert_eq!(d.poll(200 * MS), None);
        assert!(d.stable());
    }

    #[test]
    fn glitch_shorter_than_window_is_ignored() {
        let mut d = Debouncer::new(false, 20 * MS);
        d.on_edge(true, t(10 * MS));
        d.on_edge(false, t(12 * MS));
        assert_eq!(d.deadline_ns(), Some(32 * MS));
        assert_eq!(d.poll(100 * MS), None);
        assert_eq!(d.deadline_ns(), None);
        assert!(!d.stable());
    }

    #[test]
    fn zero_window_reports_at_the_edge() {
        let mut d = Debouncer::new(true, 0);
        d.on_edge(false, t(5));
        assert_eq!(d.poll(5).map(|(l, a)| (l, a.mono_ns)), Some((false, 5)));
    }
}
