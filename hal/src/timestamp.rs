//! When an edge happened: the timestamps of every input the HAL reports,
//! on the kernel's monotonic scale or the process's own ([`anchor`]). A
//! leaf of the crate: the events, the Wiegand capture and the line readers
//! all stamp with it, and it depends on none of them.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// When an edge happened.
///
/// `mono_ns` is the edge time in one monotonic nanosecond scale per source: the kernel's
/// line-event timestamp (CLOCK_MONOTONIC on Linux 5.7+) when `from_kernel`, otherwise
/// nanoseconds since the process's [`anchor`]. `at` is the same moment as an `Instant`
/// for the consumer (for kernel edges: when user space read the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub at: Instant,
    pub mono_ns: u64,
    pub from_kernel: bool,
}

impl Timestamp {
    /// Now, on the process anchor scale.
    pub fn now() -> Timestamp {
        Timestamp::from_instant(Instant::now())
    }

    /// An `Instant` on the process anchor scale.
    pub fn from_instant(at: Instant) -> Timestamp {
        let ns = at.saturating_duration_since(anchor()).as_nanos();
        Timestamp {
            at,
            mono_ns: u64::try_from(ns).unwrap_or(u64::MAX),
            from_kernel: false,
        }
    }

    /// A point on the process anchor scale given in nanoseconds.
    pub fn from_anchor_ns(ns: u64) -> Timestamp {
        Timestamp {
            at: anchor() + Duration::from_nanos(ns),
            mono_ns: ns,
            from_kernel: false,
        }
    }
}

/// The process-wide zero of non-kernel timestamps (first use of the HAL clock).
pub fn anchor() -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_scale_round_trips_between_instants_and_nanoseconds() {
        let t = Timestamp::from_anchor_ns(1_500_000);
        assert_eq!(t.at, anchor() + Duration::from_nanos(1_500_000));
        assert!(!t.from_kernel);
        assert_eq!(Timestamp::from_instant(t.at), t);
        // An instant before the anchor saturates at its zero.
        let before = anchor().checked_sub(Duration::from_secs(1));
        if let Some(before) = before {
            assert_eq!(Timestamp::from_instant(before).mono_ns, 0);
        }
    }
}
