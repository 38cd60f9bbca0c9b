//! What the HAL's input threads send to the firmware.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::wiegand::WiegandFrame;

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

/// A named discrete input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    /// Door contact of door N (1-based); level true = open.
    DoorSensor(u8),
    /// Request-to-exit button of door N; level true = pressed.
    ExitButton(u8),
    /// Auxiliary input N (1-based); level true = active.
    AuxIn(u8),
    /// Enclosure tamper; true = tampered.
    Tamper,
    /// Mains failure; true = running on battery.
    PowerFail,
}

/// A change a reader reports about itself, or that its supervision finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderStatus {
    /// Stopped answering (the firmware logs event 110).
    Offline,
    /// Answers again after being reported offline (237).
    Online,
    /// Its tamper switch opened (109).
    Tampered,
    /// Its tamper switch closed again (236).
    TamperCleared,
    /// It reports a power failure (no Appendix 2 code of its own: logged only).
    PowerFailed,
    PowerRestored,
}

/// Everything the HAL reports, one closed enum for the engine's loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// A debounced logical level change (after active-level mapping), timestamped at the
    /// first edge of the new level. At open the HAL sends one event per input with
    /// `initial: true` carrying the level found then.
    Input {
        kind: InputKind,
        level: bool,
        at: Timestamp,
        initial: bool,
    },
    /// A completed Wiegand frame from reader N (1-based); decode with
    /// [`crate::wiegand::decode`]. OSDP readers' osdp_RAW card data arrives as this too
    /// (stamped when the reply was read), so every reader's bits meet the same formats.
    Wiegand { reader: u8, frame: WiegandFrame },
    /// A card number that reader N reported as a number (OSDP osdp_FMT), not as bits.
    CardNumber {
        reader: u8,
        number: u64,
        at: Timestamp,
    },
    /// Keys pressed on reader N's keypad ('0'-'9', '*', '#'), reported as keys (OSDP
    /// osdp_KEYPAD) rather than Wiegand keypad frames.
    Keys {
        reader: u8,
        keys: String,
        at: Timestamp,
    },
    /// Reader N's own state changed (readers that report it: OSDP).
    Reader {
        reader: u8,
        status: ReaderStatus,
        at: Timestamp,
    },
    /// An input source stopped working (its thread ended); the firmware should log it.
    SourceFailed { source: String, error: String },
}
