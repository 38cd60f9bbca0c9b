//! Doors and outputs: every door's sans-IO machine ([`Door`]) with its
//! settings, the lock relays and aux outputs they drive, what drives each
//! aux output (a pulse, a hold, a scheduled output) and the rtstate record
//! last queued. It owns that state and the relays; it NEVER reads the rules,
//! never decides who may pass and never writes an event: it returns the
//! events its machines raise for the engine to log, and takes time as `now`.

use super::door::{Door, DoorSettings};
use super::handle::{OutputAction, Outputs};
use super::rtstate;
use std::ops::{Index, IndexMut};
use std::time::Instant;

/// An aux output's drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuxDrive {
    Off,
    Until(Instant),
    On,
}

impl AuxDrive {
    /// The drive an [`OutputAction`] asks for, from `now`.
    pub(super) fn from_action(action: OutputAction, now: Instant) -> AuxDrive {
        match action {
            OutputAction::Off => AuxDrive::Off,
            OutputAction::For(d) => AuxDrive::Until(now + d),
            OutputAction::NormalOpen => AuxDrive::On,
        }
    }
}

/// What a scheduled output (`outrelaysetting`) does to an aux output now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuxSchedule {
    None,
    /// ActionType 1: held on (229 at the start, 230 at the end).
    On,
    /// ActionType 2: held off whatever else drives it.
    ForcedOff,
}

/// The doors, relays and aux outputs of the board.
pub(super) struct Doors {
    machines: Vec<Door>,
    settings: Vec<DoorSettings>,
    aux: Vec<AuxDrive>,
    aux_schedule: Vec<AuxSchedule>,
    outputs: Outputs,
    /// The rtstate fields last queued, and when they are due again anyway.
    last_state: String,
    next_periodic: Instant,
}

impl Index<usize> for Doors {
    type Output = Door;
    fn index(&self, i: usize) -> &Door {
        &self.machines[i]
    }
}

impl IndexMut<usize> for Doors {
    fn index_mut(&mut self, i: usize) -> &mut Door {
        &mut self.machines[i]
    }
}

impl Doors {
    /// Doors numbered `numbers` (index order = the board's), with default
    /// settings until the parameters are read; rtstate is due at `now`.
    pub(super) fn new(
        numbers: impl IntoIterator<Item = u8>,
        outputs: Outputs,
        now: Instant,
    ) -> Doors {
        let machines: Vec<Door> = numbers.into_iter().map(Door::new).collect();
        let settings = vec![DoorSettings::default(); machines.len()];
        let aux = vec![AuxDrive::Off; outputs.aux_out.len()];
        let aux_schedule = vec![AuxSchedule::None; outputs.aux_out.len()];
        Doors {
            machines,
            settings,
            aux,
            aux_schedule,
            outputs,
            last_state: String::new(),
            next_periodic: now,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.machines.len()
    }

    pub(super) fn settings(&self, i: usize) -> &DoorSettings {
        &self.settings[i]
    }

    pub(super) fn set_settings(&mut self, i: usize, settings: DoorSettings) {
        self.settings[i] = settings;
    }

    /// The index of door `number`.
    pub(super) fn index_of(&self, number: u8) -> Option<usize> {
        self.machines.iter().position(|d| d.number == number)
    }

    /// The indexes a command's door names: 0 = every door.
    pub(super) fn matching(&self, door: u8) -> Vec<usize> {
        if door == 0 {
            (0..self.machines.len()).collect()
        } else {
            self.index_of(door).into_iter().collect()
        }
    }

    /// Releases door `i` for its DoorDrivertime.
    pub(super) fn release(&mut self, i: usize, now: Instant) {
        let drive = self.settings[i].drive_time;
        self.machines[i].release(now, drive);
    }

    /// A contact change of door `i`: the events it raises.
    pub(super) fn on_contact(&mut self, i: usize, open: bool, now: Instant) -> Vec<u32> {
        self.machines[i].on_contact(open, now, &self.settings[i])
    }

    /// The timers of door `i`: the events they raise.
    pub(super) fn poll(&mut self, i: usize, now: Instant) -> Vec<u32> {
        self.machines[i].poll(now, &self.settings[i])
    }

    pub(super) fn aux_count(&self) -> usize {
        self.aux.len()
    }

    /// Drives aux output `i` (0-based); false when there is none.
    pub(super) fn drive_aux(&mut self, i: usize, action: OutputAction, now: Instant) -> bool {
        match self.aux.get_mut(i) {
            Some(a) => {
                *a = AuxDrive::from_action(action, now);
                true
            }
            None => false,
        }
    }

    /// Ends the aux pulses that are over.
    pub(super) fn expire_aux(&mut self, now: Instant) {
        for a in &mut self.aux {
            if let AuxDrive::Until(t) = *a {
                if now >= t {
                    *a = AuxDrive::Off;
                }
            }
        }
    }

    /// Sets what the schedules do to aux output `i`; whether it was held on before.
    pub(super) fn set_aux_schedule(&mut self, i: usize, s: AuxSchedule) -> bool {
        let was_on = self.aux_schedule[i] == AuxSchedule::On;
        self.aux_schedule[i] = s;
        was_on
    }

    /// Sets or clears an rtstate alarm bit on every door.
    pub(super) fn set_alarm_everywhere(&mut self, bit: u8, on: bool) {
        for d in &mut self.machines {
            if on {
                d.alarms |= bit;
            } else {
                d.alarms &= !bit;
            }
        }
    }

    /// Whether door `number` is open or its lock released now (InterLock).
    pub(super) fn open_or_released(&self, number: u8, now: Instant) -> bool {
        self.index_of(number).is_some_and(|j| {
            let d = &self.machines[j];
            matches!(d.contact, super::door::Contact::Open { .. }) || d.lock_wanted(now)
        })
    }

    /// Sets every relay and aux output to what its state wants now.
    pub(super) fn drive(&mut self, now: Instant) {
        for (i, door) in self.machines.iter().enumerate() {
            let want = door.lock_wanted(now);
            if let Some(out) = self.outputs.locks.get_mut(i) {
                if out.is_on() != want {
                    if let Err(e) = out.set(want) {
                        log::error!("door {}: cannot drive the lock relay: {e}", door.number);
                    }
                }
            }
        }
        for (i, a) in self.aux.iter().enumerate() {
            let want = match self.aux_schedule.get(i) {
                Some(AuxSchedule::ForcedOff) => false,
                Some(AuxSchedule::On) => true,
                _ => *a != AuxDrive::Off,
            };
            if let Some(out) = self.outputs.aux_out.get_mut(i) {
                if out.is_on() != want {
                    if let Err(e) = out.set(want) {
                        log::error!("aux output {}: cannot drive it: {e}", i + 1);
                    }
                }
            }
        }
    }

    /// The earliest timer of a door or an aux pulse.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let doors = self
            .machines
            .iter()
            .zip(&self.settings)
            .filter_map(|(d, s)| d.next_deadline(s));
        let aux = self.aux.iter().filter_map(|a| match a {
            AuxDrive::Until(t) => Some(*t),
            _ => None,
        });
        doors.chain(aux).min()
    }

    /// When the rtstate record is due even without a change.
    pub(super) fn next_periodic(&self) -> Instant {
        self.next_periodic
    }

    /// The rtstate fields to queue now: `None` when they did not change and
    /// the periodic record is not due yet.
    pub(super) fn state_due(&self, now: Instant) -> Option<String> {
        let reports: Vec<_> = self
            .machines
            .iter()
            .zip(&self.settings)
            .map(|(d, s)| d.report(now, s))
            .collect();
        let fields = rtstate::state_fields(&reports);
        if fields == self.last_state && now < self.next_periodic {
            return None;
        }
        Some(fields)
    }

    /// The record of `fields` was queued; the next is due at `next` anyway.
    pub(super) fn state_queued(&mut self, fields: String, next: Instant) {
        self.last_state = fields;
        self.next_periodic = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lintel_hal::{HalError, Output};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// An output whose level the test reads through a shared cell.
    struct Probe(Arc<Mutex<bool>>);

    impl Output for Probe {
        fn set(&mut self, on: bool) -> Result<(), HalError> {
            *self.0.lock().unwrap() = on;
            Ok(())
        }
        fn is_on(&self) -> bool {
            *self.0.lock().unwrap()
        }
    }

    fn probe() -> (Box<dyn Output>, Arc<Mutex<bool>>) {
        let cell = Arc::new(Mutex::new(false));
        (Box::new(Probe(cell.clone())), cell)
    }

    fn two_doors_one_aux(now: Instant) -> (Doors, [Arc<Mutex<bool>>; 3]) {
        let (l1, c1) = probe();
        let (l2, c2) = probe();
        let (a1, c3) = probe();
        let outputs = Outputs {
            locks: vec![l1, l2],
            aux_out: vec![a1],
        };
        (Doors::new([1, 2], outputs, now), [c1, c2, c3])
    }

    #[test]
    fn a_release_drives_only_its_relay_for_the_drive_time() {
        let t0 = Instant::now();
        let (mut doors, [lock1, lock2, _]) = two_doors_one_aux(t0);
        let i = doors.index_of(2).unwrap();
        assert_eq!(i, 1);
        doors.release(i, t0);
        doors.drive(t0);
        assert!(!*lock1.lock().unwrap());
        assert!(*lock2.lock().unwrap());
        let drive = doors.settings(i).drive_time;
        assert_eq!(doors.next_deadline(), Some(t0 + drive));
        doors.poll(i, t0 + drive);
        doors.drive(t0 + drive);
        assert!(!*lock2.lock().unwrap(), "the pulse ended");
    }

    #[test]
    fn a_forced_off_schedule_overrides_the_aux_drive_and_pulses_expire() {
        let t0 = Instant::now();
        let (mut doors, [_, _, aux]) = two_doors_one_aux(t0);
        assert!(doors.drive_aux(0, OutputAction::For(Duration::from_secs(3)), t0));
        assert!(
            !doors.drive_aux(1, OutputAction::NormalOpen, t0),
            "no aux 2"
        );
        doors.drive(t0);
        assert!(*aux.lock().unwrap());
        assert!(!doors.set_aux_schedule(0, AuxSchedule::ForcedOff));
        doors.drive(t0);
        assert!(!*aux.lock().unwrap(), "forced off wins");
        doors.set_aux_schedule(0, AuxSchedule::None);
        doors.expire_aux(t0 + Duration::from_secs(3));
        doors.drive(t0 + Duration::from_secs(3));
        assert!(!*aux.lock().unwrap(), "the pulse is over");
        assert_eq!(doors.next_deadline(), None);
    }

    #[test]
    fn rtstate_is_due_on_a_change_or_when_the_period_passed() {
        let t0 = Instant::now();
        let (mut doors, _) = two_doors_one_aux(t0);
        let first = doors.state_due(t0).expect("due at start");
        let period = Duration::from_secs(60);
        doors.state_queued(first.clone(), t0 + period);
        assert_eq!(doors.state_due(t0), None, "unchanged and not due");
        doors[0].alarms |= rtstate::alarm::TAMPER;
        let changed = doors.state_due(t0).expect("an alarm is a change");
        assert_ne!(changed, first);
        doors.state_queued(changed.clone(), t0 + period);
        assert_eq!(doors.state_due(t0 + period), Some(changed));
    }

    #[test]
    fn alarms_and_matching_cover_every_door() {
        let t0 = Instant::now();
        let (mut doors, _) = two_doors_one_aux(t0);
        doors.set_alarm_everywhere(rtstate::alarm::MAINS_FAILURE, true);
        assert!((0..doors.len()).all(|i| doors[i].alarms & rtstate::alarm::MAINS_FAILURE != 0));
        doors.set_alarm_everywhere(rtstate::alarm::MAINS_FAILURE, false);
        assert!((0..doors.len()).all(|i| doors[i].alarms == 0));
        assert_eq!(doors.matching(0), vec![0, 1]);
        assert_eq!(doors.matching(2), vec![1]);
        assert!(doors.matching(9).is_empty());
        assert!(!doors.open_or_released(1, t0));
        doors.release(0, t0);
        assert!(doors.open_or_released(1, t0));
    }
}
