//! Outputs: lock relays, aux outputs, reader LEDs and buzzers.

use crate::line::{LineError, OutputLine};
use crate::HalError;

/// One on/off output. "On" is the logical state (relay energised, LED lit, buzzer sounding);
/// the board's active level decides the electrical one.
pub trait Output: Send {
    fn set(&mut self, on: bool) -> Result<(), HalError>;
    fn is_on(&self) -> bool;
}

/// An [`Output`] on a GPIO line with an active level.
pub struct LineOutput {
    name: String,
    line: Box<dyn OutputLine>,
    active_low: bool,
    on: bool,
}

impl LineOutput {
    /// Wraps a line that was requested at the "off" electrical level.
    pub fn new(name: String, line: Box<dyn OutputLine>, active_low: bool) -> LineOutput {
        LineOutput {
            name,
            line,
            active_low,
            on: false,
        }
    }

    /// The electrical level for a logical state.
    pub fn level_for(on: bool, active_low: bool) -> bool {
        on != active_low
    }
}

impl Output for LineOutput {
    fn set(&mut self, on: bool) -> Result<(), HalError> {
        self.line
            .set_high(LineOutput::level_for(on, self.active_low))
            .map_err(|e: LineError| HalError::Line {
                what: self.name.clone(),
                source: e,
            })?;
        self.on = on;
        Ok(())
    }

    fn is_on(&self) -> bool {
        self.on
    }
}

/// Stands in for a reader LED or buzzer the board does not wire: remembers the state so
/// callers need no special case, drives nothing.
#[derive(Debug, Default)]
pub struct UnwiredOutput {
    on: bool,
}

impl Output for UnwiredOutput {
    fn set(&mut self, on: bool) -> Result<(), HalError> {
        self.on = on;
        Ok(())
    }
    fn is_on(&self) -> bool {
        self.on
    }
}
