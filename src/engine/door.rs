//! One door as a plain state machine (sans-IO): it is told what happened and
//! when (`now`, a monotonic instant), and answers with the events to log; the
//! engine reads [`Door::lock_wanted`] after every step and drives the relay.
//! [`Door::next_deadline`] says when the door next needs [`Door::poll`].

use super::rtstate::{alarm, DoorReport, SensorReport};
use std::time::{Duration, Instant};

/// Appendix 2 event codes the door logic produces.
pub mod code {
    pub const NORMAL_OPEN_START: u32 = 5;
    pub const ALARM_CANCELLED: u32 = 7;
    pub const REMOTE_OPEN: u32 = 8;
    pub const REMOTE_CLOSE: u32 = 9;
    pub const HELD_OPEN: u32 = 28;
    pub const EXIT_OUTSIDE_PERIOD: u32 = 36;
    pub const TAMPER: u32 = 100;
    pub const FORCED_OPEN: u32 = 102;
    pub const DOOR_OPENED: u32 = 200;
    pub const DOOR_CLOSED: u32 = 201;
    pub const EXIT_BUTTON: u32 = 202;
    pub const NORMAL_OPEN_END: u32 = 204;
    pub const REMOTE_NORMAL_OPEN: u32 = 205;
    pub const DEVICE_START: u32 = 206;
    pub const EXIT_BUTTON_LOCKED: u32 = 209;
    pub const DUAL_ON: u32 = 227;
    pub const DUAL_OFF: u32 = 228;
    pub const REMOTE_LOCK: u32 = 233;
    pub const REMOTE_UNLOCK: u32 = 234;
}

/// The door parameters of Appendix 10 the state machine needs, with the
/// defaults that apply when the server never sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorSettings {
    /// DoorDrivertime: how long a grant releases the lock.
    pub drive_time: Duration,
    /// DoorSensorType: false = 0 (no sensor).
    pub has_sensor: bool,
    /// DoorDetectortime: held-open alarm delay; `None` = no alarm.
    pub held_open_after: Option<Duration>,
    /// DoorCloseAndLock: relock as soon as the door closes.
    pub close_and_lock: bool,
    /// DoorKeepOpenTimeZone: the time rule of the normal-open period.
    pub keep_open_tz: Option<i64>,
    /// DoorValidTZ: the time rule outside which no identification opens
    /// the door; `None` (0 or not sent) = always valid.
    pub valid_tz: Option<i64>,
    /// DoorREXInput: 1 (default) the exit button releases the lock, 0 the
    /// exit button is locked (a press opens nothing and logs 209).
    pub exit_button_opens: bool,
}

impl Default for DoorSettings {
    fn default() -> Self {
        DoorSettings {
            drive_time: Duration::from_secs(5),
            has_sensor: true,
            held_open_after: None,
            close_and_lock: true,
            keep_open_tz: None,
            valid_tz: None,
            exit_button_opens: true,
        }
    }
}

/// What drives the lock relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockDrive {
    Locked,
    /// Released by a grant, exit button or remote open until `until`.
    Pulse {
        until: Instant,
    },
    /// Held released until told otherwise (remote normal open, 0x01 FF).
    NormalOpen,
}

/// The door contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    Unknown,
    Closed,
    Open { since: Instant, alarmed: bool },
}

/// Overrides set by remote commands that win over everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    None,
    /// CONTROL DEVICE 06 …01 (remote lock) or 07 02 (emergency dual-off): no
    /// grant releases the lock.
    LockedShut,
    /// CONTROL DEVICE 07 01 (emergency dual-on): released whatever happens.
    HeldOpen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    pub number: u8,
    pub drive: LockDrive,
    pub contact: Contact,
    pub overrides: Override,
    /// The normal-open time zone (DoorKeepOpenTimeZone) is active now.
    pub schedule_open: bool,
    /// Held open by a first-card user (DoorFirstCardOpenDoor 1) until the
    /// engine sees that user's first-card period end.
    pub first_card_open: bool,
    pub alarms: u8,
}

impl Door {
    pub fn new(number: u8) -> Door {
        Door {
            number,
            drive: LockDrive::Locked,
            contact: Contact::Unknown,
            overrides: Override::None,
            schedule_open: false,
            first_card_open: false,
            alarms: 0,
        }
    }

    /// Whether the lock relay should be energised now.
    pub fn lock_wanted(&self, now: Instant) -> bool {
        match self.overrides {
            Override::LockedShut => false,
            Override::HeldOpen => true,
            Override::None => {
                self.schedule_open
                    || self.first_card_open
                    || match self.drive {
                        LockDrive::Locked => false,
                        LockDrive::Pulse { until } => now < until,
                        LockDrive::NormalOpen => true,
                    }
            }
        }
    }

    /// True while the door is in a normal-open state (schedule or remote).
    pub fn is_normal_open(&self) -> bool {
        self.schedule_open || self.first_card_open || self.drive == LockDrive::NormalOpen
    }

    /// True when a grant cannot open the door (remote lock, dual-off).
    pub fn is_locked_shut(&self) -> bool {
        self.overrides == Override::LockedShut
    }

    /// Releases the lock for `for_` (a grant, the exit button, a remote open).
    /// A longer running pulse or a normal-open state is kept.
    pub fn release(&mut self, now: Instant, for_: Duration) {
        let until = now + for_;
        self.drive = match self.drive {
            LockDrive::NormalOpen => LockDrive::NormalOpen,
            LockDrive::Pulse { until: u } if u > until => LockDrive::Pulse { until: u },
            _ => LockDrive::Pulse { until },
        };
    }

    /// Remote normal open on (true) or back to locked (false).
    pub fn set_normal_open(&mut self, on: bool) {
        self.drive = if on {
            LockDrive::NormalOpen
        } else {
            LockDrive::Locked
        };
    }

    /// Relocks now (remote close, door closed with DoorCloseAndLock).
    pub fn relock(&mut self) {
        if let LockDrive::Pulse { .. } = self.drive {
            self.drive = LockDrive::Locked;
        }
    }

    /// The door contact changed. Returns the events to log.
    pub fn on_contact(&mut self, open: bool, now: Instant, s: &DoorSettings) -> Vec<u32> {
        if !s.has_sensor {
            self.contact = Contact::Unknown;
            return Vec::new();
        }
        let was_open = matches!(self.contact, Contact::Open { .. });
        let mut events = Vec::new();
        if open && !was_open {
            events.push(code::DOOR_OPENED);
            // Opened with the lock not released: forced open (102), unless the
            // contact state was unknown (the first report after start).
            if self.contact != Contact::Unknown && !self.lock_wanted(now) {
                self.alarms |= alarm::FORCED_OPEN;
                events.push(code::FORCED_OPEN);
            }
            self.contact = Contact::Open {
                since: now,
                alarmed: false,
            };
        } else if !open && (was_open || self.contact == Contact::Unknown) {
            if was_open {
                events.push(code::DOOR_CLOSED);
            }
            self.contact = Contact::Closed;
            self.alarms &= !alarm::HELD_OPEN;
            if s.close_and_lock && was_open {
                self.relock();
            }
        }
        events
    }

    /// Time passed: ends pulses, raises the held-open alarm. Returns events.
    pub fn poll(&mut self, now: Instant, s: &DoorSettings) -> Vec<u32> {
        let mut events = Vec::new();
        if let LockDrive::Pulse { until } = self.drive {
            if now >= until {
                self.drive = LockDrive::Locked;
            }
        }
        if let Contact::Open { since, alarmed } = self.contact {
            if let Some(after) = s.held_open_after {
                // A door held open in a normal-open state is not an alarm.
                if !alarmed && now >= since + after && !self.lock_wanted(now) {
                    self.contact = Contact::Open {
                        since,
                        alarmed: true,
                    };
                    self.alarms |= alarm::HELD_OPEN;
                    events.push(code::HELD_OPEN);
                }
            }
        }
        events
    }

    /// When [`Door::poll`] must next run.
    pub fn next_deadline(&self, s: &DoorSettings) -> Option<Instant> {
        let pulse = match self.drive {
            LockDrive::Pulse { until } => Some(until),
            _ => None,
        };
        let held = match (self.contact, s.held_open_after) {
            (
                Contact::Open {
                    since,
                    alarmed: false,
                },
                Some(after),
            ) => Some(since + after),
            _ => None,
        };
        match (pulse, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The door's part of the rtstate record.
    pub fn report(&self, now: Instant, s: &DoorSettings) -> DoorReport {
        DoorReport {
            sensor: match (s.has_sensor, self.contact) {
                (false, _) | (true, Contact::Unknown) => SensorReport::NoSensor,
                (true, Contact::Closed) => SensorReport::Closed,
                (true, Contact::Open { .. }) => SensorReport::Open,
            },
            relay_on: self.lock_wanted(now),
            alarms: self.alarms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DoorSettings {
        DoorSettings {
            drive_time: Duration::from_secs(3),
            has_sensor: true,
            held_open_after: Some(Duration::from_secs(10)),
            close_and_lock: true,
            keep_open_tz: None,
            valid_tz: None,
            exit_button_opens: true,
        }
    }

    #[test]
    fn a_pulse_releases_for_the_drive_time_only() {
        let t0 = Instant::now();
        let s = settings();
        let mut d = Door::new(1);
        d.release(t0, s.drive_time);
        assert!(d.lock_wanted(t0));
        assert_eq!(d.next_deadline(&s), Some(t0 + Duration::from_secs(3)));
        assert!(d.poll(t0 + Duration::from_millis(2999), &s).is_empty());
        assert!(d.lock_wanted(t0 + Duration::from_millis(2999)));
        d.poll(t0 + Duration::from_secs(3), &s);
        assert!(!d.lock_wanted(t0 + Duration::from_secs(3)));
        assert_eq!(d.next_deadline(&s), None);
    }

    #[test]
    fn opening_a_locked_door_is_forced_and_holding_it_raises_28_once() {
        let t0 = Instant::now();
        let s = settings();
        let mut d = Door::new(1);
        assert!(d.on_contact(false, t0, &s).is_empty(), "initial level");
        assert_eq!(
            d.on_contact(true, t0, &s),
            vec![code::DOOR_OPENED, code::FORCED_OPEN]
        );
        assert_eq!(d.next_deadline(&s), Some(t0 + Duration::from_secs(10)));
        assert!(d.poll(t0 + Duration::from_secs(9), &s).is_empty());
        assert_eq!(
            d.poll(t0 + Duration::from_secs(10), &s),
            vec![code::HELD_OPEN]
        );
        assert!(d.poll(t0 + Duration::from_secs(20), &s).is_empty());
        assert_eq!(d.alarms, alarm::FORCED_OPEN | alarm::HELD_OPEN);
        assert_eq!(
            d.on_contact(false, t0 + Duration::from_secs(21), &s),
            vec![code::DOOR_CLOSED]
        );
        assert_eq!(
            d.alarms,
            alarm::FORCED_OPEN,
            "forced open stays until cancelled"
        );
    }

    #[test]
    fn a_granted_opening_is_not_forced_and_closing_relocks() {
        let t0 = Instant::now();
        let s = settings();
        let mut d = Door::new(1);
        d.on_contact(false, t0, &s);
        d.release(t0, s.drive_time);
        assert_eq!(d.on_contact(true, t0, &s), vec![code::DOOR_OPENED]);
        assert_eq!(d.on_contact(false, t0, &s), vec![code::DOOR_CLOSED]);
        assert!(!d.lock_wanted(t0), "DoorCloseAndLock relocks at once");
    }

    #[test]
    fn normal_open_and_overrides() {
        let t0 = Instant::now();
        let s = settings();
        let mut d = Door::new(1);
        d.set_normal_open(true);
        d.release(t0, s.drive_time);
        assert_eq!(d.drive, LockDrive::NormalOpen, "a pulse does not end it");
        d.on_contact(false, t0, &s);
        d.on_contact(true, t0, &s);
        assert!(d.poll(t0 + Duration::from_secs(60), &s).is_empty(), "no 28");
        d.overrides = Override::LockedShut;
        assert!(!d.lock_wanted(t0));
        d.overrides = Override::HeldOpen;
        d.set_normal_open(false);
        assert!(d.lock_wanted(t0));
    }

    #[test]
    fn without_a_sensor_the_contact_is_ignored() {
        let t0 = Instant::now();
        let s = DoorSettings {
            has_sensor: false,
            ..settings()
        };
        let mut d = Door::new(1);
        assert!(d.on_contact(true, t0, &s).is_empty());
        assert_eq!(d.report(t0, &s).sensor, SensorReport::NoSensor);
    }
}
