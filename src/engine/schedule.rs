//! Schedules: normal-open periods (DoorKeepOpenTimeZone, door rows of
//! `outrelaysetting`) and scheduled aux outputs (ActionType 1 held on,
//! 2 forced off), evaluated once per minute and whenever the rules changed.
//! Owns when they were last evaluated and the day CONTROL DEVICE 04 turned
//! a door's normal-open period off. Planning is pure: the time rules come
//! in as a `covers` function and the plan says what each door and aux
//! output should be. It NEVER drives an output and never writes an event:
//! the engine applies the plan and logs the changes (5/204, 229/230).

use super::doors::AuxSchedule;
use super::rules::ScheduledOutput;
use chrono::{NaiveDate, NaiveDateTime, Timelike};

/// What the schedules want now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// Per door (index as the doors'): inside a normal-open period.
    pub door_open: Vec<bool>,
    /// Per aux output.
    pub aux: Vec<AuxSchedule>,
}

/// A door as the schedules see it: its number and DoorKeepOpenTimeZone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ScheduledDoor {
    pub number: u8,
    pub keep_open_tz: Option<i64>,
}

#[derive(Debug)]
pub(super) struct Schedules {
    /// The day CONTROL DEVICE 04 disabled a door's normal-open period for.
    keep_open_off_on: Vec<Option<NaiveDate>>,
    /// (minute, data_version) the schedules were last evaluated for.
    evaluated: Option<(NaiveDateTime, i64)>,
}

impl Schedules {
    pub(super) fn new(doors: usize) -> Schedules {
        Schedules {
            keep_open_off_on: vec![None; doors],
            evaluated: None,
        }
    }

    /// Whether the schedules must be evaluated at `when` with the rules at
    /// `version` (-1 unknown: always); marks them evaluated.
    pub(super) fn due(&mut self, when: NaiveDateTime, version: i64) -> bool {
        let minute = when.with_second(0).unwrap_or(when);
        if self.evaluated == Some((minute, version)) && version >= 0 {
            return false;
        }
        self.evaluated = Some((minute, version));
        true
    }

    /// CONTROL DEVICE 04: door `i`'s normal-open period off for `today`, or
    /// on again; the schedules are evaluated again at the next step.
    pub(super) fn set_period_enabled(&mut self, i: usize, enable: bool, today: NaiveDate) {
        self.keep_open_off_on[i] = if enable { None } else { Some(today) };
        self.evaluated = None;
    }

    /// What the doors and `aux_count` aux outputs should be at `when`, from
    /// the scheduled outputs and `covers` (whether a time rule covers `when`).
    pub(super) fn plan(
        &self,
        doors: impl Iterator<Item = ScheduledDoor>,
        aux_count: usize,
        outputs: &[ScheduledOutput],
        when: NaiveDateTime,
        covers: impl Fn(i64) -> bool,
    ) -> Plan {
        let door_open = doors
            .enumerate()
            .map(|(i, d)| {
                let by_param = d.keep_open_tz.is_some_and(&covers);
                let by_output = outputs.iter().any(|o| {
                    !o.aux && o.action == 1 && o.num == i64::from(d.number) && covers(o.timezone)
                });
                (by_param || by_output) && self.keep_open_off_on[i] != Some(when.date())
            })
            .collect();
        let mut aux = vec![AuxSchedule::None; aux_count];
        for o in outputs.iter().filter(|o| o.aux) {
            let Some(i) = usize::try_from(o.num).ok().and_then(|n| n.checked_sub(1)) else {
                continue;
            };
            if i < aux.len() && covers(o.timezone) {
                aux[i] = if o.action == 1 {
                    AuxSchedule::On
                } else {
                    AuxSchedule::ForcedOff
                };
            }
        }
        Plan { door_open, aux }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 5, 6)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    }

    fn output(num: i64, aux: bool, action: i64, timezone: i64) -> ScheduledOutput {
        ScheduledOutput {
            num,
            aux,
            action,
            timezone,
        }
    }

    const DOORS: [ScheduledDoor; 2] = [
        ScheduledDoor {
            number: 1,
            keep_open_tz: Some(5),
        },
        ScheduledDoor {
            number: 2,
            keep_open_tz: None,
        },
    ];

    #[test]
    fn evaluated_once_per_minute_and_version_unless_the_version_is_unknown() {
        let mut s = Schedules::new(2);
        assert!(s.due(at(9, 0, 1), 3));
        assert!(!s.due(at(9, 0, 59), 3));
        assert!(s.due(at(9, 0, 59), 4), "the rules changed");
        assert!(s.due(at(9, 1, 0), 4), "a new minute");
        assert!(s.due(at(9, 1, 0), -1));
        assert!(s.due(at(9, 1, 0), -1), "unknown version: every time");
        s.set_period_enabled(0, true, at(9, 1, 0).date());
        assert!(s.due(at(9, 1, 0), 4), "a command asks for a new look");
    }

    #[test]
    fn the_plan_opens_doors_by_parameter_or_output_and_holds_aux_outputs() {
        let s = Schedules::new(2);
        let outputs = [
            output(2, false, 1, 6),
            output(1, true, 1, 6),
            output(2, true, 2, 6),
            output(3, true, 1, 6),
            output(2, false, 1, 7),
        ];
        let covers = |tz: i64| tz == 5 || tz == 6;
        let plan = s.plan(DOORS.into_iter(), 2, &outputs, at(9, 0, 0), covers);
        assert_eq!(plan.door_open, vec![true, true]);
        assert_eq!(plan.aux, vec![AuxSchedule::On, AuxSchedule::ForcedOff]);
        let nothing = s.plan(DOORS.into_iter(), 2, &outputs, at(9, 0, 0), |_| false);
        assert_eq!(nothing.door_open, vec![false, false]);
        assert_eq!(nothing.aux, vec![AuxSchedule::None, AuxSchedule::None]);
    }

    #[test]
    fn a_period_turned_off_stays_off_for_that_day_only() {
        let mut s = Schedules::new(2);
        let today = at(9, 0, 0);
        s.set_period_enabled(0, false, today.date());
        let covers = |_: i64| true;
        assert_eq!(
            s.plan(DOORS.into_iter(), 0, &[], today, covers).door_open,
            vec![false, false]
        );
        let tomorrow = today + chrono::Duration::days(1);
        assert_eq!(
            s.plan(DOORS.into_iter(), 0, &[], tomorrow, covers)
                .door_open,
            vec![true, false]
        );
        s.set_period_enabled(0, true, today.date());
        assert_eq!(
            s.plan(DOORS.into_iter(), 0, &[], today, covers).door_open,
            vec![true, false]
        );
    }
}
