//! First-card opening (DoorFirstCardOpenDoor, Appendix 10; users in
//! `firstcard`): inside one of the user's first-card periods, the first
//! grant of a first-card user becomes event 2 (215 when a password was part
//! of it) and either holds the door open until that period ends (mode 1)
//! or lets everyone else in until then (mode 2, "activation"). Before
//! activation, mode 2 refuses ordinary users inside any first-card period
//! of the door with 23 (Appendix 2 has no code of its own for it). Owns the
//! first-card state per door; it reads the rules and sets the door's
//! first-card hold, but NEVER drives an output or writes an event: the
//! engine logs the end of a held-open period (204).

use super::decide::Verdict;
use super::door::Door;
use super::rules;
use chrono::NaiveDateTime;
use rusqlite::Connection;

/// A door's first-card state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstCard {
    Idle,
    /// A first-card user verified inside time rule `tz`; lasts while it covers.
    Active {
        tz: i64,
        holds_open: bool,
    },
}

/// The first-card state of every door (index as the doors').
#[derive(Debug)]
pub(super) struct FirstCards {
    doors: Vec<FirstCard>,
}

impl FirstCards {
    pub(super) fn new(doors: usize) -> FirstCards {
        FirstCards {
            doors: vec![FirstCard::Idle; doors],
        }
    }

    /// Applies first-card opening to `verdict` of user `pin` at door `i`
    /// (`door`, number `number`); `by_password` when a password was part of it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply(
        &mut self,
        conn: &Connection,
        i: usize,
        door: &mut Door,
        pin: &str,
        by_password: bool,
        verdict: Verdict,
        when: NaiveDateTime,
    ) -> rusqlite::Result<Verdict> {
        // Super users (208) and refusals pass unchanged.
        if !matches!(verdict, Verdict::Grant(0) | Verdict::Grant(1)) {
            return Ok(verdict);
        }
        let number = door.number;
        let mode = rules::door_number(conn, number, "FirstCardOpenDoor")?.unwrap_or(0);
        if !(mode == 1 || mode == 2) || self.doors[i] != FirstCard::Idle {
            return Ok(verdict);
        }
        for tz in rules::first_card_timezones(conn, number, pin)? {
            if rules::rule_covers(conn, tz, when)? {
                self.doors[i] = FirstCard::Active {
                    tz,
                    holds_open: mode == 1,
                };
                door.first_card_open = mode == 1;
                return Ok(Verdict::Grant(if by_password { 215 } else { 2 }));
            }
        }
        if mode == 2 {
            for tz in rules::door_first_card_timezones(conn, number)? {
                if rules::rule_covers(conn, tz, when)? {
                    return Ok(Verdict::Deny(23));
                }
            }
        }
        Ok(verdict)
    }

    /// "Disable the normal open period of the day" also ends the hold of
    /// door `i`'s first-card state (it stays active for the others).
    pub(super) fn stop_holding_open(&mut self, i: usize) {
        if let FirstCard::Active { tz, .. } = self.doors[i] {
            self.doors[i] = FirstCard::Active {
                tz,
                holds_open: false,
            };
        }
    }

    /// Ends door `i`'s first-card state if its period is over at `when`,
    /// clearing the door's hold. True when the door was held open (the
    /// engine logs 204). A rule that cannot be read keeps the state,
    /// logged, to be tried again.
    pub(super) fn end_period(
        &mut self,
        conn: &Connection,
        i: usize,
        door: &mut Door,
        when: NaiveDateTime,
    ) -> bool {
        let FirstCard::Active { tz, holds_open } = self.doors[i] else {
            return false;
        };
        match rules::rule_covers(conn, tz, when) {
            Ok(true) => false,
            Ok(false) => {
                self.doors[i] = FirstCard::Idle;
                if holds_open {
                    door.first_card_open = false;
                }
                holds_open
            }
            Err(e) => {
                log::error!(
                    "door {}: cannot read first-card rule {tz} ({e}); trying again",
                    door.number
                );
                false
            }
        }
    }

    /// Whether no door has a first-card state (nothing to end).
    pub(super) fn all_idle(&self) -> bool {
        self.doors.iter().all(|f| *f == FirstCard::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::doors::Doors;
    use crate::engine::handle::Outputs;
    use crate::store::Store;

    fn one_door() -> Doors {
        let outputs = Outputs {
            locks: Vec::new(),
            aux_out: Vec::new(),
        };
        Doors::new([1], outputs, std::time::Instant::now())
    }

    fn monday_nine() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2024, 5, 6)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
    }

    #[test]
    fn mode_1_turns_the_first_grant_into_2_and_holds_the_door_until_the_period_ends() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.conn();
        let when = monday_nine();
        let mut doors = one_door();
        let mut fc = FirstCards::new(1);
        // Without DoorFirstCardOpenDoor nothing changes.
        let v = fc
            .apply(c, 0, &mut doors[0], "7", false, Verdict::Grant(0), when)
            .unwrap();
        assert_eq!(v, Verdict::Grant(0));
        s.set_option("Door1FirstCardOpenDoor", "1").unwrap();
        // Rule 1 (the factory 24-hour rule) covers; rule 99 (never sent) does not.
        c.execute_batch(
            "INSERT INTO first_cards(door_id, timezone_id, pin) VALUES (1, 1, '7'), (1, 99, '8');",
        )
        .unwrap();
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "8", false, Verdict::Grant(0), when)
                .unwrap(),
            Verdict::Grant(0),
            "outside the user's period"
        );
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "7", true, Verdict::Grant(208), when)
                .unwrap(),
            Verdict::Grant(208),
            "super users pass unchanged"
        );
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "7", true, Verdict::Grant(0), when)
                .unwrap(),
            Verdict::Grant(215)
        );
        assert!(doors[0].first_card_open);
        assert!(!fc.all_idle());
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "7", false, Verdict::Grant(0), when)
                .unwrap(),
            Verdict::Grant(0),
            "only the first grant"
        );
        assert!(!fc.end_period(c, 0, &mut doors[0], when));
        // The server delivers its own rule 1, which covers nothing.
        c.execute("INSERT INTO time_zones(timezone_id) VALUES (1)", [])
            .unwrap();
        assert!(fc.end_period(c, 0, &mut doors[0], when));
        assert!(!doors[0].first_card_open);
        assert!(fc.all_idle());
    }

    #[test]
    fn mode_2_refuses_ordinary_users_inside_a_first_card_period_until_activation() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.conn();
        let when = monday_nine();
        let mut doors = one_door();
        let mut fc = FirstCards::new(1);
        s.set_option("Door1FirstCardOpenDoor", "2").unwrap();
        c.execute(
            "INSERT INTO first_cards(door_id, timezone_id, pin) VALUES (1, 1, '7')",
            [],
        )
        .unwrap();
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "5", false, Verdict::Grant(0), when)
                .unwrap(),
            Verdict::Deny(23)
        );
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "7", false, Verdict::Grant(0), when)
                .unwrap(),
            Verdict::Grant(2)
        );
        assert!(!doors[0].first_card_open, "mode 2 does not hold the door");
        assert_eq!(
            fc.apply(c, 0, &mut doors[0], "5", false, Verdict::Grant(0), when)
                .unwrap(),
            Verdict::Grant(0),
            "activated"
        );
        fc.stop_holding_open(0);
        assert!(!fc.all_idle(), "still active for the others");
    }
}
