//! What the HAL's input threads send to the firmware.

pub use crate::timestamp::{anchor, Timestamp};
use crate::wiegand::WiegandFrame;

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
