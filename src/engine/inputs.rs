//! The engine's wiring of the HAL's inputs: a frame, card number or keys
//! go to identification ([`super::access`]); door contacts, exit buttons,
//! aux inputs, tamper and mains failure change the doors' state and are
//! logged here, after the rules that gate them (DoorREXInput, the door's
//! valid period, InputIOSetting periods, interlock). Nothing here decides
//! who may pass.

use super::decide::{input_allowed, interlock_blocks};
use super::door::{self, code};
use super::identify::Arrival;
use super::runner::Engine;
use super::{rtstate, rules};
use crate::store::NewEvent;
use lintel_hal::wiegand::Decoded;
use lintel_hal::{InputEvent, InputKind};
use std::time::Instant;

impl Engine {
    pub(super) fn on_hal(&mut self, ev: InputEvent, now: Instant) {
        match ev {
            InputEvent::Input {
                kind,
                level,
                initial,
                ..
            } => self.on_input(kind, level, initial, now),
            InputEvent::Wiegand { reader, frame } => self.on_frame(reader, &frame, now),
            // A reader that reports card numbers or keys (OSDP) takes the same paths as
            // the Wiegand frames that decode to them.
            InputEvent::CardNumber { reader, number, at } => {
                let card = Decoded::Card {
                    number,
                    site_code: None,
                    format: "number".into(),
                };
                if let Some(arrival) = Arrival::of_input(&self.setup.board, reader) {
                    self.on_decoded(arrival, card, now, at.at);
                }
            }
            InputEvent::Keys { reader, keys, at } => {
                if let Some(arrival) = Arrival::of_input(&self.setup.board, reader) {
                    self.on_decoded(arrival, Decoded::Keys(keys), now, at.at);
                }
            }
            InputEvent::Reader { reader, status, .. } => self.on_reader_status(reader, status),
            InputEvent::SourceFailed { source, error } => {
                log::error!("input source {source} failed: {error}; its inputs are no longer seen")
            }
        }
    }

    fn on_input(&mut self, kind: InputKind, level: bool, initial: bool, now: Instant) {
        match kind {
            InputKind::DoorSensor(n) => {
                let Some(i) = self.doors.index_of(n) else {
                    return;
                };
                if initial {
                    // The level found at start is a state, not an event.
                    if self.doors.settings(i).has_sensor {
                        self.doors[i].contact = if level {
                            door::Contact::Open {
                                since: now,
                                alarmed: false,
                            }
                        } else {
                            door::Contact::Closed
                        };
                    }
                    return;
                }
                let events = self.doors.on_contact(i, level, now);
                for e in events {
                    self.log_plain(e, u32::from(n));
                }
            }
            InputKind::ExitButton(n) => {
                if initial || !level {
                    return;
                }
                let Some(i) = self.doors.index_of(n) else {
                    return;
                };
                // DoorREXInput 0 ("Lock"; ~REXInputFunOn is "the exit door
                // locking function"): the button is locked, so a press
                // releases nothing and is logged as 209 "Press the exit
                // button (locked)", as at a remotely locked door.
                // DoorREXTimeOut ("the delay after the button switch event
                // occurs when the door is locked") names a delay but not
                // what it does; it is not applied.
                if self.doors[i].is_locked_shut() || !self.doors.settings(i).exit_button_opens {
                    self.log_plain(code::EXIT_BUTTON_LOCKED, u32::from(n));
                    return;
                }
                // 36 "Press the exit button during the non-valid time
                // period": outside the door's DoorValidTZ the door is out
                // of service for the button as for cards.
                if let Some(tz) = self.doors.settings(i).valid_tz {
                    let at = self.local_now();
                    match rules::rule_covers(self.store.conn(), tz, at) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.log_plain(code::EXIT_OUTSIDE_PERIOD, u32::from(n));
                            return;
                        }
                        Err(e) => log::error!("door {n}: cannot read DoorValidTZ's rule ({e})"),
                    }
                }
                match input_allowed(self.store.conn(), n, 0, self.local_now()) {
                    Ok(true) => {}
                    Ok(false) => {
                        // 64: the exit button is outside its InputIOSetting period.
                        self.log_plain(64, u32::from(n));
                        return;
                    }
                    Err(e) => log::error!("door {n}: cannot read the exit button's period ({e})"),
                }
                match interlock_blocks(self.store.conn(), &self.doors, n, now) {
                    Ok(false) => {}
                    Ok(true) => {
                        // The exit button obeys the interlock as a card does.
                        self.log_plain(25, u32::from(n));
                        return;
                    }
                    Err(e) => log::error!("door {n}: cannot read InterLock ({e}); not applied"),
                }
                self.doors.release(i, now);
                self.doors.drive(now);
                self.log_plain(code::EXIT_BUTTON, u32::from(n));
            }
            InputKind::AuxIn(n) => {
                if initial {
                    return;
                }
                if rules::aux_disabled(self.store.conn(), false, u32::from(n)) {
                    log::debug!("aux input {n} is disabled (AuxIn Disable=1); ignored");
                    return;
                }
                if level {
                    match input_allowed(self.store.conn(), n, 1, self.local_now()) {
                        Ok(true) => {}
                        Ok(false) => {
                            // 65: the aux input is outside its InputIOSetting period.
                            self.log_plain(65, u32::from(n));
                            return;
                        }
                        Err(e) => log::error!("aux input {n}: cannot read its period ({e})"),
                    }
                }
                // 226 "trigger the auxiliary input point", 225 "is normal".
                self.log_plain(if level { 226 } else { 225 }, u32::from(n));
            }
            InputKind::Tamper => {
                self.doors
                    .set_alarm_everywhere(rtstate::alarm::TAMPER, level);
                if level && !initial {
                    self.log_plain(code::TAMPER, 0);
                }
            }
            InputKind::PowerFail => {
                self.doors
                    .set_alarm_everywhere(rtstate::alarm::MAINS_FAILURE, level);
                if level && !initial {
                    // 107: mains power failure.
                    self.log_plain(107, 0);
                }
            }
        }
    }

    /// A reader's own state: 110/237 offline/online, 109/236 tamper (Appendix 2), logged
    /// at the reader's door and side; power reports have no code and are logged only.
    fn on_reader_status(&mut self, reader: u8, status: lintel_hal::ReaderStatus) {
        use lintel_hal::ReaderStatus as S;
        let Some(at) = Arrival::of_input(&self.setup.board, reader) else {
            return;
        };
        let event = match status {
            S::Offline => 110,
            S::Online => 237,
            S::Tampered => 109,
            S::TamperCleared => 236,
            S::PowerFailed => {
                log::warn!("reader {reader} reports a power failure");
                return;
            }
            S::PowerRestored => {
                log::info!("reader {reader} reports its power restored");
                return;
            }
        };
        let mut ev = NewEvent::plain(self.time_text(), event, u32::from(at.door));
        ev.inoutstatus = at.inout;
        self.log_event(ev);
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::door::code;
    use crate::engine::handle::EngineInput;
    use crate::engine::rtstate;
    use crate::engine::testkit::Bench;
    use lintel_hal::{InputEvent, InputKind, Timestamp};

    fn input(kind: InputKind, level: bool, initial: bool) -> Option<EngineInput> {
        Some(EngineInput::Hal(
            InputEvent::Input {
                kind,
                level,
                at: Timestamp::now(),
                initial,
            },
            std::time::Instant::now(),
        ))
    }

    #[test]
    fn the_exit_button_releases_its_door_on_press_only() {
        let mut b = Bench::new();
        b.engine.step(input(InputKind::ExitButton(3), false, false));
        assert!(!b.lock_on(3), "a release of the button does nothing");
        b.engine.step(input(InputKind::ExitButton(3), true, true));
        assert!(!b.lock_on(3), "the level found at start is not a press");
        b.engine.step(input(InputKind::ExitButton(3), true, false));
        assert!(b.lock_on(3));
        assert_eq!(b.events().last(), Some(&(code::EXIT_BUTTON, 3, "0".into())));
    }

    #[test]
    fn tamper_sets_the_alarm_on_every_door_and_logs_only_a_change() {
        let mut b = Bench::new();
        b.engine.step(input(InputKind::Tamper, true, true));
        assert!(!b.codes().contains(&code::TAMPER), "a state at start");
        assert!((0..4).all(|i| b.engine.doors[i].alarms & rtstate::alarm::TAMPER != 0));
        b.engine.step(input(InputKind::Tamper, false, false));
        assert!((0..4).all(|i| b.engine.doors[i].alarms == 0));
        b.engine.step(input(InputKind::Tamper, true, false));
        assert_eq!(b.codes().last(), Some(&code::TAMPER));
        b.engine.step(input(InputKind::AuxIn(2), true, false));
        assert_eq!(b.events().last(), Some(&(226, 2, "0".into())));
    }
}
