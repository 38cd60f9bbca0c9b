//! The door commands of CONTROL DEVICE (12.4) and of a remote
//! identification's answer, carried out on the doors and outputs: remote
//! open/close, aux outputs, cancelling alarms, the day's normal-open
//! period, remote lock and emergency overrides, and the Wiegand test mode.
//! Each command is logged with its Appendix 2 event and answered with an
//! Appendix 1 code. Nothing here decides an identification.

use super::door::{code, Override};
use super::handle::{DoorCommand, OutputAction, OutputTarget};
use super::runner::Engine;
use super::{rtstate, rules};
use crate::protocol::codes;
use std::time::Instant;

/// How long a Wiegand test (CONTROL DEVICE 09) runs unless stopped sooner;
/// cards are decided again after it.
pub const WIEGAND_TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

impl Engine {
    pub(super) fn on_command(&mut self, cmd: DoorCommand, now: Instant) -> i64 {
        match cmd {
            DoorCommand::Output {
                target: OutputTarget::Lock,
                index,
                action,
            } => {
                let doors = self.doors.matching(index);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    let n = u32::from(self.doors[i].number);
                    match action {
                        OutputAction::Off => {
                            self.doors[i].set_normal_open(false);
                            self.log_plain(code::REMOTE_CLOSE, n);
                        }
                        OutputAction::For(d) => {
                            self.doors[i].release(now, d);
                            self.doors.drive(now);
                            self.log_plain(code::REMOTE_OPEN, n);
                        }
                        OutputAction::NormalOpen => {
                            self.doors[i].set_normal_open(true);
                            self.doors.drive(now);
                            self.log_plain(code::REMOTE_NORMAL_OPEN, n);
                        }
                    }
                }
                codes::OK
            }
            DoorCommand::Output {
                target: OutputTarget::Aux,
                index,
                action,
            } => {
                let disabled = |i: usize| {
                    rules::aux_disabled(self.store.conn(), true, u32::try_from(i + 1).unwrap_or(0))
                };
                let idx: Vec<usize> = if index == 0 {
                    // Every output but those AuxOut disables.
                    (0..self.doors.aux_count())
                        .filter(|&i| !disabled(i))
                        .collect()
                } else {
                    let i = usize::from(index) - 1;
                    if i >= self.doors.aux_count() {
                        return codes::BAD_PARAMETER;
                    }
                    if disabled(i) {
                        // AuxOut Disable=1: refused, not pretended.
                        return codes::EXECUTION_ERROR;
                    }
                    vec![i]
                };
                for i in idx {
                    let n = u32::try_from(i + 1).unwrap_or(0);
                    self.doors.drive_aux(i, action, now);
                    // 12 / 13: aux output enabled / disabled remotely.
                    self.log_plain(if action == OutputAction::Off { 13 } else { 12 }, n);
                }
                codes::OK
            }
            DoorCommand::CancelAlarm { door } => {
                let doors = self.doors.matching(door);
                for i in doors {
                    self.doors[i].alarms &= !(rtstate::alarm::FORCED_OPEN
                        | rtstate::alarm::HELD_OPEN
                        | rtstate::alarm::DURESS_PASSWORD
                        | rtstate::alarm::DURESS_FINGERPRINT);
                    let n = u32::from(self.doors[i].number);
                    self.log_plain(code::ALARM_CANCELLED, n);
                }
                codes::OK
            }
            DoorCommand::NormalOpen { door, enable } => {
                let doors = self.doors.matching(door);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    let n = u32::from(self.doors[i].number);
                    self.doors[i].set_normal_open(enable);
                    // The day's normal-open period (DoorKeepOpenTimeZone) off or on again.
                    let today = self.local_now().date();
                    self.schedules.set_period_enabled(i, enable, today);
                    if !enable {
                        // "Disable the normal open period of the day" also
                        // ends a first-card normal open.
                        self.doors[i].first_card_open = false;
                        self.first_cards.stop_holding_open(i);
                    }
                    // 11 / 10: the day's normal-open period enabled / disabled.
                    self.log_plain(if enable { 11 } else { 10 }, n);
                }
                codes::OK
            }
            DoorCommand::Lock { door, locked } => {
                let doors = self.doors.matching(door);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    let n = u32::from(self.doors[i].number);
                    self.doors[i].overrides = if locked {
                        Override::LockedShut
                    } else {
                        Override::None
                    };
                    self.log_plain(
                        if locked {
                            code::REMOTE_LOCK
                        } else {
                            code::REMOTE_UNLOCK
                        },
                        n,
                    );
                }
                codes::OK
            }
            DoorCommand::Emergency { all_open } => {
                for i in 0..self.doors.len() {
                    self.doors[i].overrides = if all_open {
                        Override::HeldOpen
                    } else {
                        Override::LockedShut
                    };
                    let n = u32::from(self.doors[i].number);
                    self.log_plain(
                        if all_open {
                            code::DUAL_ON
                        } else {
                            code::DUAL_OFF
                        },
                        n,
                    );
                }
                codes::OK
            }
            DoorCommand::Unlock { door } => {
                let doors = self.doors.matching(door);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    self.doors.release(i, now);
                    self.log_plain(code::REMOTE_OPEN, u32::from(self.doors[i].number));
                }
                self.doors.drive(now);
                codes::OK
            }
            DoorCommand::WiegandTest { start } => {
                // Bounded: a server that never sends 09 02 must not leave the
                // readers deciding nothing.
                self.wiegand_test = start.then(|| now + WIEGAND_TEST_LIMIT);
                codes::OK
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::door::code;
    use crate::engine::handle::{DoorCommand, EngineInput, OutputAction, OutputTarget};
    use crate::engine::testkit::Bench;
    use crate::protocol::codes;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    fn run(b: &mut Bench, cmd: DoorCommand) -> i64 {
        let (tx, rx) = channel();
        b.engine.step(Some(EngineInput::Command(cmd, tx)));
        rx.try_recv().expect("answered within the step")
    }

    fn frame(card: u64) -> Option<EngineInput> {
        let bits = lintel_hal::wiegand::Format::standard("wiegand26")
            .unwrap()
            .encode(card, None)
            .unwrap();
        Some(EngineInput::Hal(
            lintel_hal::InputEvent::Wiegand {
                reader: 1,
                frame: lintel_hal::wiegand::WiegandFrame {
                    bits,
                    first_edge: lintel_hal::Timestamp::now(),
                    last_edge: lintel_hal::Timestamp::now(),
                    noise_pulses: 0,
                },
            },
            std::time::Instant::now(),
        ))
    }

    #[test]
    fn the_wiegand_test_takes_frames_until_stopped_or_until_its_limit() {
        let mut b = Bench::new();
        b.enrol("7", "1234");
        let test = |start| DoorCommand::WiegandTest { start };
        assert_eq!(run(&mut b, test(true)), codes::OK);
        let before = b.codes().len();
        b.engine.step(frame(1234));
        assert!(!b.lock_on(1), "a frame under test is reported, not decided");
        assert_eq!(b.codes().len(), before);
        assert_eq!(run(&mut b, test(false)), codes::OK);
        b.engine.step(frame(1234));
        assert!(b.lock_on(1), "stopped: decided again");
        b.advance(Duration::from_secs(10));
        // Never stopped: it ends by itself after WIEGAND_TEST_LIMIT.
        assert_eq!(run(&mut b, test(true)), codes::OK);
        b.advance(super::WIEGAND_TEST_LIMIT - Duration::from_secs(1));
        b.engine.step(frame(1234));
        assert!(!b.lock_on(1));
        b.advance(Duration::from_secs(2));
        b.engine.step(frame(1234));
        assert!(b.lock_on(1), "the readers are not left dead");
        assert_eq!(b.codes().last(), Some(&0));
    }

    #[test]
    fn remote_open_pulses_the_lock_and_a_missing_output_is_a_bad_parameter() {
        let mut b = Bench::new();
        let open = DoorCommand::Output {
            target: OutputTarget::Lock,
            index: 2,
            action: OutputAction::For(Duration::from_secs(3)),
        };
        assert_eq!(run(&mut b, open), codes::OK);
        assert!(b.lock_on(2) && !b.lock_on(1));
        assert_eq!(b.events().last(), Some(&(code::REMOTE_OPEN, 2, "0".into())));
        b.advance(Duration::from_secs(3));
        assert!(!b.lock_on(2));
        let aux = |index| DoorCommand::Output {
            target: OutputTarget::Aux,
            index,
            action: OutputAction::NormalOpen,
        };
        assert_eq!(run(&mut b, aux(9)), codes::BAD_PARAMETER);
        assert_eq!(run(&mut b, aux(2)), codes::OK);
        assert!(b.aux_on(2) && !b.aux_on(1));
        assert_eq!(b.codes().last(), Some(&12));
        let lock = |door| DoorCommand::Lock { door, locked: true };
        assert_eq!(run(&mut b, lock(9)), codes::BAD_PARAMETER);
    }

    #[test]
    fn a_locked_door_refuses_cards_until_unlocked_and_emergency_opens_every_door() {
        let mut b = Bench::new();
        b.enrol("7", "1234");
        assert_eq!(
            run(
                &mut b,
                DoorCommand::Lock {
                    door: 1,
                    locked: true
                }
            ),
            codes::OK
        );
        assert_eq!(b.codes().last(), Some(&code::REMOTE_LOCK));
        b.engine.step(Some(EngineInput::Hal(
            lintel_hal::InputEvent::CardNumber {
                reader: 1,
                number: 1234,
                at: lintel_hal::Timestamp::now(),
            },
            std::time::Instant::now(),
        )));
        assert_eq!(b.codes().last(), Some(&63));
        assert!(!b.lock_on(1));
        assert_eq!(
            run(&mut b, DoorCommand::Emergency { all_open: true }),
            codes::OK
        );
        assert!((1..=4).all(|d| b.lock_on(d)));
        assert_eq!(b.codes().iter().filter(|c| **c == code::DUAL_ON).count(), 4);
    }
}
