//! The decision: for an identified user at a door, the verification mode
//! the presented factors must satisfy, then the rules in their order
//! (blacklist, validity, door state, super user, door × time rule, punch
//! interval, anti-passback, interlock, normal open, the door's valid
//! period) and multi-card opening, ending in a [`Verdict`] that carries its
//! Appendix 2 event code. Owns the last grant per user and door (the punch
//! interval) and the multi-card waits per door. It reads the rules and the
//! doors' state but NEVER drives an output, never writes an event and never
//! asks the server: the engine carries the verdict out.

use super::doors::Doors;
use super::identify::Arrival;
use super::multicard::{self, MultiWait};
use super::verify::Mode;
use super::{apb, rules};
use crate::protocol::time::format_record_time;
use chrono::NaiveDateTime;
use rusqlite::Connection;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The decision for one identification, before it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Grant(u32),
    Deny(u32),
}

impl Verdict {
    /// The Appendix 2 event code the decision is logged with.
    pub(super) fn event(self) -> u32 {
        match self {
            Verdict::Grant(c) | Verdict::Deny(c) => c,
        }
    }
}

/// The decision's memory: last grants and multi-card waits.
pub(super) struct Decision {
    /// Last grant per (pin, door), for DoorIntertime.
    last_punch: HashMap<(String, u8), Instant>,
    /// Multi-card opening in progress per door (index as the doors').
    multi: Vec<MultiWait>,
}

impl Decision {
    pub(super) fn new(doors: usize) -> Decision {
        Decision {
            last_punch: HashMap::new(),
            multi: vec![MultiWait::Idle; doors],
        }
    }

    /// A grant was carried out for `pin` at `door`.
    pub(super) fn granted(&mut self, pin: &str, door: u8, now: Instant) {
        self.last_punch.insert((pin.to_string(), door), now);
    }

    /// The multi-card wait of door `i` that ran out by `now`: the pin of
    /// its last user (event 40).
    pub(super) fn poll_multi(&mut self, i: usize, now: Instant) -> Option<String> {
        self.multi[i].poll(now)
    }

    pub(super) fn deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.multi.iter().filter_map(|m| m.next_deadline())
    }

    /// [`Self::authorize_rules`], then the door's valid period: outside
    /// DoorValidTZ (Appendix 10, "Valid time period of the door") a user
    /// who would be let in is refused with 22 "Invalid time period". 21 is
    /// the user's own time rule ("verification during the non-valid time
    /// period"); 22 is the one code Appendix 2 has for a period that is not
    /// the user's. Refusals for other reasons keep their own code, and the
    /// period applies to super users too (the door itself is not in
    /// service). A rule that was never delivered covers nothing, as
    /// everywhere: the door then opens for nobody until it arrives.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn authorize(
        &self,
        conn: &Connection,
        doors: &Doors,
        door: u8,
        inout: u32,
        user: &rules::User,
        at: NaiveDateTime,
        now: Instant,
    ) -> rusqlite::Result<Verdict> {
        let verdict = self.authorize_rules(conn, doors, door, inout, user, at, now)?;
        if let Verdict::Grant(_) = verdict {
            let valid_tz = doors
                .index_of(door)
                .and_then(|i| doors.settings(i).valid_tz);
            if let Some(tz) = valid_tz {
                if !rules::rule_covers(conn, tz, at)? {
                    return Ok(Verdict::Deny(22));
                }
            }
        }
        Ok(verdict)
    }

    /// The rules of 2. in order: blacklist, validity, door state, super user,
    /// door × time rule, punch interval, normal open.
    #[allow(clippy::too_many_arguments)]
    fn authorize_rules(
        &self,
        conn: &Connection,
        doors: &Doors,
        door: u8,
        inout: u32,
        user: &rules::User,
        at: NaiveDateTime,
        now: Instant,
    ) -> rusqlite::Result<Verdict> {
        if user.disabled {
            return Ok(Verdict::Deny(39));
        }
        let at_text = format_record_time(at);
        // Both ends are inclusive, to the second.
        if user
            .start_at
            .as_deref()
            .is_some_and(|s| at_text.as_str() < s)
            || user.end_at.as_deref().is_some_and(|e| at_text.as_str() > e)
        {
            return Ok(Verdict::Deny(29));
        }
        let Some(i) = doors.index_of(door) else {
            return Ok(Verdict::Deny(23));
        };
        // DoorDisable is "1: enable, 0: disable"; DoorMaskFlag 1 locks the door;
        // a DoorProperty row with Disable=1 disables it (63, "door locked").
        if rules::door_number(conn, door, "Disable")? == Some(0)
            || rules::door_number(conn, door, "MaskFlag")? == Some(1)
            || rules::door_property_disabled(conn, door)?
            || doors[i].is_locked_shut()
        {
            return Ok(Verdict::Deny(63));
        }
        if rules::is_super_user(conn, &user.pin, door)? {
            return Ok(Verdict::Grant(208));
        }
        let bit = 1i64 << (door.saturating_sub(1).min(62));
        let mut any_door = false;
        let mut in_time = false;
        for (tz, mask) in rules::authorizations(conn, &user.pin)? {
            if mask & bit == 0 {
                continue;
            }
            any_door = true;
            if rules::rule_covers(conn, tz, at)? {
                in_time = true;
                break;
            }
        }
        if !any_door {
            return Ok(Verdict::Deny(23));
        }
        if !in_time {
            return Ok(Verdict::Deny(21));
        }
        // DoorIntertime: Appendix 10's default is 2 s.
        let interval = rules::door_number(conn, door, "Intertime")?.unwrap_or(2);
        if interval > 0 {
            if let Some(last) = self.last_punch.get(&(user.pin.clone(), door)) {
                let gap = Duration::from_secs(u64::try_from(interval).unwrap_or(0));
                // A gap past what Instant holds (a server's value) never ends.
                if last.checked_add(gap).is_none_or(|until| now < until) {
                    return Ok(Verdict::Deny(20));
                }
            }
        }
        // DoorInOutAntiPassback: 1 in, 2 out, 3 both. A second passage in the
        // same direction without the opposite one between is refused (24).
        let apb = rules::door_number(conn, door, "InOutAntiPassback")?.unwrap_or(0);
        if apb > 0 {
            let guarded = if inout == 0 {
                apb & 1 != 0
            } else {
                apb & 2 != 0
            };
            if guarded && rules::apb_last(conn, &user.pin, door)? == Some(inout) {
                return Ok(Verdict::Deny(24));
            }
        }
        // DoorInTimeAPB: no second passage at this door within that many seconds.
        let in_time = rules::door_number(conn, door, "InTimeAPB")?.unwrap_or(0);
        if in_time > 0 {
            let last = rules::apb_last_at(conn, &user.pin, door)?
                .and_then(|t| crate::protocol::time::parse_record_time(&t));
            if let Some(last) = last {
                // A clock set back (last in the future) does not lock anyone out.
                // A duration past chrono's range (a server's value) never ends.
                let until =
                    chrono::Duration::try_seconds(in_time).and_then(|d| last.checked_add_signed(d));
                if at >= last && until.is_none_or(|until| at < until) {
                    return Ok(Verdict::Deny(24));
                }
            }
        }
        // AntiPassback (Appendix 8): alternate between the sides of each zone.
        let device_apb = rules::option_number(conn, "AntiPassback")?.unwrap_or(0);
        for zone in apb::zones(device_apb) {
            if let Some(side) = zone.side(door, inout) {
                if rules::apb_zone_last(conn, &user.pin, zone.id)? == Some(side) {
                    return Ok(Verdict::Deny(24));
                }
            }
        }
        if interlock_blocks(conn, doors, door, now)? {
            return Ok(Verdict::Deny(25));
        }
        if doors[i].is_normal_open() {
            return Ok(Verdict::Grant(1));
        }
        Ok(Verdict::Grant(0))
    }

    /// DoorMultiCardOpenDoor 1 with `multimcard` rows: a grant becomes a
    /// wait (26) until a group combination is complete (3); a user whose
    /// group is in no combination is refused (40). Super users (208),
    /// normal-open (1) and first-card (2, 215) grants are not held.
    pub(super) fn apply_multi_card(
        &mut self,
        conn: &Connection,
        doors: &Doors,
        door: u8,
        user: &rules::User,
        verdict: Verdict,
        now: Instant,
    ) -> rusqlite::Result<Verdict> {
        if verdict != Verdict::Grant(0) {
            return Ok(verdict);
        }
        let Some(i) = doors.index_of(door) else {
            return Ok(verdict);
        };
        if rules::door_number(conn, door, "MultiCardOpenDoor")? != Some(1) {
            return Ok(verdict);
        }
        let combos = rules::multi_card_combinations(conn, door)?;
        if combos.is_empty() {
            log::warn!(
                "door {door}: multi-card opening is on but no combination was delivered; single users open"
            );
            return Ok(verdict);
        }
        let window = rules::door_number(conn, door, "MultiCardInterTime")?
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
            .map_or(multicard::DEFAULT_INTER_TIME, Duration::from_secs);
        Ok(
            match self.multi[i].present(&user.pin, user.group, &combos, now, window) {
                multicard::Outcome::Open => Verdict::Grant(3),
                multicard::Outcome::Wait => Verdict::Deny(26),
                multicard::Outcome::Refused => Verdict::Deny(40),
            },
        )
    }
}

/// InterLock (Appendix 9): whether another door of `door`'s group is
/// open or released now, so `door` must stay shut (25).
pub(super) fn interlock_blocks(
    conn: &Connection,
    doors: &Doors,
    door: u8,
    now: Instant,
) -> rusqlite::Result<bool> {
    let value = rules::option_number(conn, "InterLock")?.unwrap_or(0);
    for group in apb::interlock_groups(value) {
        if !group.contains(&door) {
            continue;
        }
        for other in group.iter().filter(|o| **o != door) {
            if doors.open_or_released(*other, now) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether an input (`in_type` 0 exit button of door `number`, 1 aux
/// input) is inside its `InputIOSetting` period at `at`, or has none.
pub(super) fn input_allowed(
    conn: &Connection,
    number: u8,
    in_type: u8,
    at: NaiveDateTime,
) -> rusqlite::Result<bool> {
    match rules::input_timezone(conn, number, in_type)? {
        Some(tz) => rules::rule_covers(conn, tz, at),
        None => Ok(true),
    }
}

/// The verification mode at this reader for this user (when known),
/// most specific first: the user's period (PersonalVSTimezone), the
/// door's period (DoorVSTimezone), the reader (ReaderProperty.VerifyType,
/// 0 = as the door), the door (DoorVerifyType), else 0 (auto). An
/// unreadable mode is card only, logged.
pub(super) fn verify_mode(
    conn: &Connection,
    at: Arrival,
    pin: Option<&str>,
    when: NaiveDateTime,
) -> Mode {
    match read_verify_mode(conn, at, pin, when) {
        Ok(m) => m,
        Err(e) => {
            log::error!(
                "door {}: cannot read the verification mode ({e}); card only",
                at.door
            );
            Mode::from_code(4).unwrap_or_else(Mode::auto)
        }
    }
}

fn read_verify_mode(
    conn: &Connection,
    at: Arrival,
    pin: Option<&str>,
    when: NaiveDateTime,
) -> rusqlite::Result<Mode> {
    let known = |what: &str, code: i64| {
        let m = Mode::from_code(code);
        if m.is_none() {
            log::warn!(
                "door {}: {what} verification mode {code} is not in Appendix 3; ignored",
                at.door
            );
        }
        m
    };
    if let Some(pin) = pin {
        if let Some(tz) = rules::personal_vs_timezone(conn, pin, at.door)? {
            if let Some(code) = rules::vs_mode(conn, tz, when, rules::VsFor::User)? {
                if let Some(m) = known("personal", code) {
                    return Ok(m);
                }
            }
        }
    }
    if let Some(tz) = rules::door_vs_timezone(conn, at.door)? {
        if let Some(code) = rules::vs_mode(conn, tz, when, rules::VsFor::Door)? {
            if let Some(m) = known("door period", code) {
                return Ok(m);
            }
        }
    }
    if let Some(code) = rules::reader_verify_type(conn, at.door, at.inout)? {
        if code != 0 {
            if let Some(m) = known("reader", code) {
                return Ok(m);
            }
        }
    }
    if let Some(v) = rules::door_param(conn, at.door, "VerifyType")? {
        if !v.trim().is_empty() {
            match Mode::parse(&v) {
                Some(m) => return Ok(m),
                None => log::warn!(
                    "door {}: DoorVerifyType {v:?} is not a mode; ignored",
                    at.door
                ),
            }
        }
    }
    Ok(Mode::auto())
}

/// Persists the passage for the anti-passback rules in use.
pub(super) fn remember_passage(
    conn: &Connection,
    pin: &str,
    door: u8,
    inout: u32,
    at: NaiveDateTime,
) {
    if let Err(e) = try_remember_passage(conn, pin, door, inout, at) {
        log::error!("door {door}: cannot remember user {pin}'s passage for APB: {e}");
    }
}

fn try_remember_passage(
    conn: &Connection,
    pin: &str,
    door: u8,
    inout: u32,
    at: NaiveDateTime,
) -> rusqlite::Result<()> {
    let at = format_record_time(at);
    let in_out = rules::door_number(conn, door, "InOutAntiPassback")?.unwrap_or(0);
    let in_time = rules::door_number(conn, door, "InTimeAPB")?.unwrap_or(0);
    if in_out > 0 || in_time > 0 {
        rules::apb_record(conn, pin, door, inout, &at)?;
    }
    let device_apb = rules::option_number(conn, "AntiPassback")?.unwrap_or(0);
    for zone in apb::zones(device_apb) {
        if let Some(side) = zone.side(door, inout) {
            rules::apb_zone_record(conn, pin, zone.id, side, &at)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::door::Override;
    use crate::engine::handle::Outputs;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn doors(now: Instant) -> Doors {
        let outputs = Outputs {
            locks: Vec::new(),
            aux_out: Vec::new(),
        };
        Doors::new([1, 2], outputs, now)
    }

    fn user(pin: &str) -> rules::User {
        rules::User {
            pin: pin.into(),
            password: String::new(),
            start_at: None,
            end_at: None,
            disabled: false,
            group: None,
        }
    }

    fn monday_nine() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2024, 5, 6)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
    }

    /// User 7 may use door 1 (mask bit 0) under `tz`.
    fn authorize_user_7(s: &Store, tz: i64) {
        s.conn()
            .execute(
                "INSERT INTO user_authorizations(pin, timezone_id, door_mask) VALUES ('7', ?1, 1)",
                [tz],
            )
            .unwrap();
    }

    #[test]
    fn the_rules_refuse_in_their_order_and_grant_inside_the_time_rule() {
        let (_d, s) = store();
        let c = s.conn();
        let now = Instant::now();
        let at = monday_nine();
        let doors = doors(now);
        let d = Decision::new(doors.len());
        let verdict = |u: &rules::User, door| d.authorize(c, &doors, door, 0, u, at, now).unwrap();
        assert_eq!(
            verdict(&user("7"), 1),
            Verdict::Deny(23),
            "no authorization"
        );
        // Rule 99 was never delivered: it covers nothing.
        authorize_user_7(&s, 99);
        assert_eq!(verdict(&user("7"), 1), Verdict::Deny(21));
        // Rule 1 is the factory 24-hour rule.
        authorize_user_7(&s, 1);
        assert_eq!(verdict(&user("7"), 1), Verdict::Grant(0));
        assert_eq!(verdict(&user("7"), 2), Verdict::Deny(23), "not door 2");
        let mut disabled = user("7");
        disabled.disabled = true;
        assert_eq!(verdict(&disabled, 1), Verdict::Deny(39));
        let mut expired = user("7");
        expired.end_at = Some("2024-05-06 08:59:59".into());
        assert_eq!(verdict(&expired, 1), Verdict::Deny(29));
        assert_eq!(verdict(&user("7"), 9), Verdict::Deny(23), "no such door");
        // The door's valid period comes with its settings (DoorValidTZ).
        let mut doors = doors;
        doors.set_settings(
            0,
            crate::engine::door::DoorSettings {
                valid_tz: Some(99),
                ..Default::default()
            },
        );
        assert_eq!(
            d.authorize(c, &doors, 1, 0, &user("7"), at, now).unwrap(),
            Verdict::Deny(22),
            "door out of its period"
        );
    }

    #[test]
    fn door_state_super_users_and_the_punch_interval() {
        let (_d, s) = store();
        let c = s.conn();
        let now = Instant::now();
        let at = monday_nine();
        let mut doors = doors(now);
        let mut d = Decision::new(doors.len());
        authorize_user_7(&s, 1);
        d.granted("7", 1, now);
        assert_eq!(
            d.authorize(
                c,
                &doors,
                1,
                0,
                &user("7"),
                at,
                now + Duration::from_secs(1)
            )
            .unwrap(),
            Verdict::Deny(20),
            "DoorIntertime defaults to 2 s"
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(
            d.authorize(c, &doors, 1, 0, &user("7"), at, later).unwrap(),
            Verdict::Grant(0)
        );
        doors[0].set_normal_open(true);
        assert_eq!(
            d.authorize(c, &doors, 1, 0, &user("7"), at, later).unwrap(),
            Verdict::Grant(1)
        );
        c.execute(
            "INSERT INTO super_authorizations(pin, door_id) VALUES ('5', 0)",
            [],
        )
        .unwrap();
        assert_eq!(
            d.authorize(c, &doors, 1, 0, &user("5"), at, later).unwrap(),
            Verdict::Grant(208)
        );
        doors[0].overrides = Override::LockedShut;
        assert_eq!(
            d.authorize(c, &doors, 1, 0, &user("5"), at, later).unwrap(),
            Verdict::Deny(63),
            "a locked door refuses super users too"
        );
    }

    #[test]
    fn interlock_blocks_while_another_door_of_the_group_is_released() {
        let (_d, s) = store();
        let c = s.conn();
        let now = Instant::now();
        let mut doors = doors(now);
        assert!(!interlock_blocks(c, &doors, 1, now).unwrap());
        doors.release(1, now);
        assert!(
            !interlock_blocks(c, &doors, 1, now).unwrap(),
            "InterLock off"
        );
        s.set_option("InterLock", "1").unwrap();
        assert!(interlock_blocks(c, &doors, 1, now).unwrap());
        assert!(!interlock_blocks(c, &doors, 2, now).unwrap(), "itself");
    }

    #[test]
    fn multi_card_holds_a_plain_grant_until_the_combination_is_complete() {
        let (_d, s) = store();
        let c = s.conn();
        let now = Instant::now();
        let doors = doors(now);
        let mut d = Decision::new(doors.len());
        let mut a = user("1");
        a.group = Some(1);
        let mut b = user("2");
        b.group = Some(2);
        let mut stranger = user("3");
        stranger.group = Some(9);
        assert_eq!(
            d.apply_multi_card(c, &doors, 1, &a, Verdict::Grant(0), now)
                .unwrap(),
            Verdict::Grant(0),
            "multi-card opening is off"
        );
        s.set_option("Door1MultiCardOpenDoor", "1").unwrap();
        c.execute(
            "INSERT INTO multi_card_groups(idx, door_id, group1, group2) VALUES (1, 1, 1, 2)",
            [],
        )
        .unwrap();
        assert_eq!(
            d.apply_multi_card(c, &doors, 1, &stranger, Verdict::Grant(0), now)
                .unwrap(),
            Verdict::Deny(40)
        );
        assert_eq!(
            d.apply_multi_card(c, &doors, 1, &a, Verdict::Grant(208), now)
                .unwrap(),
            Verdict::Grant(208),
            "super users are not held"
        );
        assert_eq!(
            d.apply_multi_card(c, &doors, 1, &a, Verdict::Grant(0), now)
                .unwrap(),
            Verdict::Deny(26)
        );
        assert!(d.deadlines().next().is_some());
        assert_eq!(
            d.apply_multi_card(c, &doors, 1, &b, Verdict::Grant(0), now)
                .unwrap(),
            Verdict::Grant(3)
        );
    }

    #[test]
    fn an_unreadable_or_unknown_mode_falls_back_and_the_door_mode_applies() {
        let (_d, s) = store();
        let c = s.conn();
        let at = Arrival {
            reader: 1,
            door: 1,
            inout: 0,
        };
        assert_eq!(verify_mode(c, at, None, monday_nine()), Mode::auto());
        s.set_option("Door1VerifyType", "not a mode").unwrap();
        assert_eq!(verify_mode(c, at, None, monday_nine()), Mode::auto());
        s.set_option("Door1VerifyType", "4").unwrap();
        assert_eq!(
            verify_mode(c, at, Some("7"), monday_nine()),
            Mode::from_code(4).unwrap()
        );
    }
}
