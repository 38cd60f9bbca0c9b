//! Which signal a reader gives for an identification's event: the person at
//! the door sees green and hears one beep when the door opens for them, and
//! red with two beeps when it does not. A pure table from the Appendix 2
//! event code; the HAL's `ReaderIndicator` plays it. Never decides access:
//! the decision is made before its event reaches here.

use lintel_hal::Signal;

/// The signal for an identification logged with `event` (Appendix 2), or
/// None when the reader shows nothing yet:
/// - the door opened for the person: 0-5 (verified, normal-open period,
///   first card, multi-card, emergency password), 14-19 (their
///   fingerprint twins), 101 (duress opens as if all were well, so nothing
///   may look different) and 203 (multi-card);
/// - a wait, not a refusal: 26, 32, 51 (multi-card: the next person must
///   present) and 45 (remote identification timed out; the local decision
///   follows with its own event);
/// - every other error event (20-99) is a refusal.
pub fn signal_for(event: u32) -> Option<Signal> {
    match event {
        0..=5 | 14..=19 | 101 | 203 => Some(Signal::Granted),
        26 | 32 | 45 | 51 => None,
        20..=99 => Some(Signal::Denied),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings_are_green_refusals_red_and_waits_silent() {
        for e in [0, 1, 2, 3, 4, 5, 14, 17, 101, 203] {
            assert_eq!(signal_for(e), Some(Signal::Granted), "{e}");
        }
        for e in [20, 21, 22, 23, 24, 25, 27, 29, 41, 44, 75] {
            assert_eq!(signal_for(e), Some(Signal::Denied), "{e}");
        }
        for e in [26, 32, 45, 51, 102, 200, 206] {
            assert_eq!(signal_for(e), None, "{e}");
        }
    }
}
