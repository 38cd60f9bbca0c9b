//! Reading the server-fed rules (12.1.1 tables, door options) from SQLite.
//!
//! Every query is fixed text with bound values, prepared once per connection
//! (`prepare_cached`) and served by an index (users.cardno, the leading `pin`
//! of the UNIQUE keys, primary keys). A row that does not parse is skipped
//! with a log line: bad rule data never stops a decision.

use super::timezone::{day_kind, Holiday, TimeRule};
use chrono::NaiveDateTime;
use rusqlite::{params, Connection, OptionalExtension};

/// A user as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub pin: String,
    pub password: String,
    /// 'YYYY-MM-DD HH:MM:SS' local time; `None` = no limit.
    pub start_at: Option<String>,
    pub end_at: Option<String>,
    pub disabled: bool,
    /// The access group (`Group`), for multi-card opening.
    pub group: Option<i64>,
}

/// A card that identified nobody directly but is a multi-card user's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCard {
    pub pin: String,
    pub lost: bool,
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        pin: r.get(0)?,
        password: r.get(1)?,
        start_at: r.get(2)?,
        end_at: r.get(3)?,
        disabled: r.get::<_, Option<i64>>(4)?.unwrap_or(0) != 0,
        group: r.get::<_, Option<i64>>(5)?,
    })
}

/// The user whose card this is (`users.cardno`, decimal text).
pub fn user_by_card(conn: &Connection, card: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(
        "SELECT pin, password, start_at, end_at, disable, grp FROM users WHERE cardno = ?1 LIMIT 1",
    )?
    .query_row([card], user_from_row)
    .optional()
}

pub fn user_by_pin(conn: &Connection, pin: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(
        "SELECT pin, password, start_at, end_at, disable, grp FROM users WHERE pin = ?1",
    )?
    .query_row([pin], user_from_row)
    .optional()
}

/// A card of `mulcarduser` (12.1.1.3). The table keeps CardNo as delivered
/// (hexadecimal text), so both the decimal and the hex spelling are tried.
pub fn extra_card(conn: &Connection, card: u64) -> rusqlite::Result<Option<ExtraCard>> {
    let dec = card.to_string();
    let hex = format!("{card:X}");
    conn.prepare_cached(
        "SELECT pin, loss_card_flag FROM multi_card_users
         WHERE cardno = ?1 OR cardno = ?2 COLLATE NOCASE LIMIT 1",
    )?
    .query_row(params![dec, hex], |r| {
        Ok(ExtraCard {
            pin: r.get(0)?,
            lost: r.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0,
        })
    })
    .optional()
}

/// The user's (time rule, door mask) pairs.
pub fn authorizations(conn: &Connection, pin: &str) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn
        .prepare_cached("SELECT timezone_id, door_mask FROM user_authorizations WHERE pin = ?1")?;
    let rows = stmt.query_map([pin], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Whether the user is a super user on this door (12.1.1.29; door 0 = all),
/// or on every door by the C3 user record's `SuperAuthorize=1`.
pub fn is_super_user(conn: &Connection, pin: &str, door: u8) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM super_authorizations WHERE pin = ?1 AND (door_id = ?2 OR door_id = 0)
             UNION ALL SELECT 1 FROM users WHERE pin = ?1 AND super_authorize = 1 LIMIT 1",
        )?
        .query_row(params![pin, door], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The panel's factory time rule: until the server delivers its own rule 1,
/// rule 1 is "accessible 24 hours" (00:00-23:59 every day and holiday
/// type), as on ZKTeco panels, where it is built in and cannot be deleted.
/// Servers provision `AuthorizeTimezoneId=1` and never send it; deleting
/// the server's rule 1 brings the factory rule back.
pub const FACTORY_RULE: i64 = 1;

/// A time rule by id; `None` when the server never sent it (rule 1: the
/// factory rule).
pub fn time_rule(conn: &Connection, id: i64) -> rusqlite::Result<Option<TimeRule>> {
    let delivered = delivered_time_rule(conn, id)?;
    Ok(match delivered {
        None if id == FACTORY_RULE => Some(TimeRule::always()),
        other => other,
    })
}

fn delivered_time_rule(conn: &Connection, id: i64) -> rusqlite::Result<Option<TimeRule>> {
    conn.prepare_cached(
        "SELECT sun_time1, sun_time2, sun_time3, mon_time1, mon_time2, mon_time3,
                tue_time1, tue_time2, tue_time3, wed_time1, wed_time2, wed_time3,
                thu_time1, thu_time2, thu_time3, fri_time1, fri_time2, fri_time3,
                sat_time1, sat_time2, sat_time3, hol1_time1, hol1_time2, hol1_time3,
                hol2_time1, hol2_time2, hol2_time3, hol3_time1, hol3_time2, hol3_time3
         FROM time_zones WHERE timezone_id = ?1",
    )?
    .query_row([id], |r| {
        let mut raw = [0i64; 30];
        for (i, v) in raw.iter_mut().enumerate() {
            *v = r.get::<_, Option<i64>>(i)?.unwrap_or(0);
        }
        Ok(TimeRule::from_raw(&raw))
    })
    .optional()
}

/// Holiday rows that can match `date` (exact, or the same month and day).
pub fn holidays_for(conn: &Connection, date: chrono::NaiveDate) -> rusqlite::Result<Vec<Holiday>> {
    let ymd = date.format("%Y%m%d").to_string();
    let md = date.format("%m%d").to_string();
    let mut stmt = conn.prepare_cached(
        "SELECT holiday, holiday_type, loop FROM holidays
         WHERE holiday = ?1 OR (loop = 1 AND substr(holiday, 5, 4) = ?2)",
    )?;
    let rows = stmt.query_map(params![ymd, md], |r| {
        let kind: Option<i64> = r.get(1)?;
        Ok(Holiday {
            date: r.get(0)?,
            kind: kind.and_then(|k| u8::try_from(k).ok()).unwrap_or(0),
            every_year: r.get::<_, Option<i64>>(2)? == Some(1),
        })
    })?;
    rows.collect()
}

/// Whether time rule `id` covers `at`. A rule the server never sent covers
/// nothing (and is logged), so a missing rule denies rather than opens.
pub fn rule_covers(conn: &Connection, id: i64, at: NaiveDateTime) -> rusqlite::Result<bool> {
    let Some(rule) = time_rule(conn, id)? else {
        log::warn!("time rule {id} is referenced but was never delivered; it covers nothing");
        return Ok(false);
    };
    let today = at.date();
    let yesterday = today.pred_opt().unwrap_or(today);
    let kt = day_kind(today, &holidays_for(conn, today)?);
    let ky = day_kind(yesterday, &holidays_for(conn, yesterday)?);
    Ok(rule.covers(at, kt, ky))
}

/// A door parameter: `Door<n><Name>` from SET OPTIONS, else `DoorParameters`
/// (12.1.1.17) row `ID=n Name=Door<Name>`.
pub fn door_param(conn: &Connection, door: u8, name: &str) -> rusqlite::Result<Option<String>> {
    let key = format!("Door{door}{name}");
    // Servers vary the case (`door1drivertime`); the exact spelling wins.
    let from_options: Option<String> = conn
        .prepare_cached(
            "SELECT value FROM options WHERE key = ?1 COLLATE NOCASE ORDER BY key = ?1 DESC LIMIT 1",
        )?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    if from_options.is_some() {
        return Ok(from_options);
    }
    conn.prepare_cached(
        "SELECT value FROM door_parameters WHERE id = ?1 AND (name = ?2 COLLATE NOCASE OR name = ?3 COLLATE NOCASE) LIMIT 1",
    )?
    .query_row(params![door, format!("Door{name}"), key], |r| r.get(0))
    .optional()
}

/// A door parameter as a number; an unparsable value is logged and ignored.
pub fn door_number(conn: &Connection, door: u8, name: &str) -> rusqlite::Result<Option<i64>> {
    Ok(
        door_param(conn, door, name)?.and_then(|v| match v.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) if v.trim().is_empty() => None,
            Err(_) => {
                log::warn!("door {door} parameter {name}={v:?} is not a number; using the default");
                None
            }
        }),
    )
}

/// A device option as a number (`AntiPassback`, `InterLock`, …).
pub fn option_number(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM options WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.trim().parse().ok()))
}

/// The direction of the user's last granted passage at this door (APB).
pub fn apb_last(conn: &Connection, pin: &str, door: u8) -> rusqlite::Result<Option<u32>> {
    conn.prepare_cached("SELECT direction FROM engine_apb WHERE pin = ?1 AND door = ?2")?
        .query_row(params![pin, door], |r| r.get(0))
        .optional()
}

/// Remembers a granted passage (persisted: APB holds across restarts).
pub fn apb_record(
    conn: &Connection,
    pin: &str,
    door: u8,
    direction: u32,
    at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO engine_apb(pin, door, direction, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(pin, door) DO UPDATE SET direction = excluded.direction, at = excluded.at",
    )?
    .execute(params![pin, door, direction, at])?;
    Ok(())
}

/// A device option as text (`NewVFStyles`, …); `None` when never set.
pub fn option_text(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM options WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// Users whose (non-empty) password is `password`; at most two, which is
/// enough to tell a unique match from an ambiguous one.
pub fn users_by_password(conn: &Connection, password: &str) -> rusqlite::Result<Vec<User>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pin, password, start_at, end_at, disable, grp FROM users
         WHERE password = ?1 AND password != '' LIMIT 2",
    )?;
    let rows = stmt.query_map([password], user_from_row)?;
    rows.collect()
}

/// The user's `PersonalVSTimezone` for this door (a row for door 0 applies
/// to every door; the door's own row wins).
pub fn personal_vs_timezone(
    conn: &Connection,
    pin: &str,
    door: u8,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT timezone_id FROM personal_verify_time_zones
             WHERE pin = ?1 AND (door_id = ?2 OR door_id = 0) AND timezone_id IS NOT NULL
             ORDER BY door_id DESC LIMIT 1",
    )?
    .query_row(params![pin, door], |r| r.get(0))
    .optional()
}

/// The door's `DoorVSTimezone`.
pub fn door_vs_timezone(conn: &Connection, door: u8) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT timezone_id FROM door_verify_time_zones
         WHERE door_id = ?1 AND timezone_id IS NOT NULL LIMIT 1",
    )?
    .query_row([door], |r| r.get(0))
    .optional()
}

/// `ReaderProperty.VerifyType` of the door's reader on that side (InOut 0 in, 1 out).
pub fn reader_verify_type(
    conn: &Connection,
    door: u8,
    inout: u32,
) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT verify_type FROM reader_properties WHERE door_id = ?1 AND in_out = ?2
             AND (disable IS NULL OR disable = 0) LIMIT 1",
        )?
        .query_row(params![door, inout], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// Whether the door is disabled by its DoorProperty row (12.1.1.15:
/// "Disable: 0: Enable. 1: Disable"); a door without a row is enabled.
pub fn door_property_disabled(conn: &Connection, door: u8) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM door_properties WHERE id = ?1 AND disable IS NOT NULL AND disable != 0",
        )?
        .query_row([door], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether aux input (`output` false) or aux output `n` is disabled by its
/// AuxIn / AuxOut row (12.1.1.20/21: `Disable=1`); without a row it is enabled.
/// A database error counts as enabled, with a log line: an input must still be
/// seen and an output the server drives must still move.
pub fn aux_disabled(conn: &Connection, output: bool, n: u32) -> bool {
    let sql = if output {
        "SELECT 1 FROM aux_outputs WHERE id = ?1 AND disable IS NOT NULL AND disable != 0"
    } else {
        "SELECT 1 FROM aux_inputs WHERE id = ?1 AND disable IS NOT NULL AND disable != 0"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([n], |_| Ok(())).optional())
        .map(|r| r.is_some())
        .unwrap_or_else(|e| {
            log::error!("aux {n}: cannot read whether it is disabled ({e})");
            false
        })
}

/// Whether the door's reader on that side is disabled (ReaderProperty
/// `Disable=1`, or `Type=0`, which 12.1.1.18 also lists as "Disable").
/// Readers are matched by door and side, as for `VerifyType`; a reader
/// without a row is enabled.
pub fn reader_disabled(conn: &Connection, door: u8, inout: u32) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM reader_properties WHERE door_id = ?1 AND in_out = ?2
             AND ((disable IS NOT NULL AND disable != 0) OR type = 0) LIMIT 1",
        )?
        .query_row(params![door, inout], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The time rules under which `pin` is a first-card user of `door`
/// (`firstcard`, 12.1.1.x); empty when the user is none.
pub fn first_card_timezones(conn: &Connection, door: u8, pin: &str) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT timezone_id FROM first_cards WHERE door_id = ?1 AND pin = ?2")?;
    let rows = stmt.query_map(params![door, pin], |r| r.get(0))?;
    rows.collect()
}

/// Every first-card time rule of `door` (whoever the user).
pub fn door_first_card_timezones(conn: &Connection, door: u8) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT timezone_id FROM first_cards WHERE door_id = ?1")?;
    let rows = stmt.query_map([door], |r| r.get(0))?;
    rows.collect()
}

/// The multi-card combinations of `door` (`multimcard`): each a multiset
/// of group ids, one person of each listed group (a group listed twice
/// needs two). Rows without any group are skipped.
pub fn multi_card_combinations(conn: &Connection, door: u8) -> rusqlite::Result<Vec<Vec<i64>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT group1, group2, group3, group4, group5 FROM multi_card_groups
         WHERE door_id = ?1 ORDER BY idx",
    )?;
    let rows = stmt.query_map([door], |r| {
        let mut groups = Vec::new();
        for c in 0..5 {
            if let Some(g) = r.get::<_, Option<i64>>(c)? {
                if g > 0 {
                    groups.push(g);
                }
            }
        }
        Ok(groups)
    })?;
    let mut out = Vec::new();
    for groups in rows {
        let groups = groups?;
        if groups.is_empty() {
            log::warn!("door {door}: a multimcard row names no group; skipped");
        } else {
            out.push(groups);
        }
    }
    Ok(out)
}

/// Which of the two verification-mode columns of `DiffTimezoneVS` to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VsFor {
    User,
    Door,
}

const VS_DAYS: [&str; 10] = [
    "sun", "mon", "tue", "wed", "thu", "fri", "sat", "hol1", "hol2", "hol3",
];

fn vs_select() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let mut cols = Vec::new();
        for d in VS_DAYS {
            for n in 1..=3 {
                cols.push(format!(
                    "{d}_time{n}, {d}_time{n}_vs_user, {d}_time{n}_vs_door"
                ));
            }
        }
        format!(
            "SELECT {} FROM verify_mode_time_zones WHERE timezone_id = ?1",
            cols.join(", ")
        )
    })
}

/// The verification-mode code `DiffTimezoneVS` row `id` sets for `at`:
/// the value attached to the interval covering `at` (255 = none set).
/// `None` when the row is missing, no interval covers `at`, or it sets none.
pub fn vs_mode(
    conn: &Connection,
    id: i64,
    at: NaiveDateTime,
    which: VsFor,
) -> rusqlite::Result<Option<i64>> {
    let row = conn
        .prepare_cached(vs_select())?
        .query_row([id], |r| {
            let mut raw = [0i64; 30];
            let mut modes = [[None; 2]; 30];
            for (i, v) in raw.iter_mut().enumerate() {
                *v = r.get::<_, Option<i64>>(i * 3)?.unwrap_or(0);
                modes[i] = [
                    r.get::<_, Option<i64>>(i * 3 + 1)?,
                    r.get::<_, Option<i64>>(i * 3 + 2)?,
                ];
            }
            Ok((TimeRule::from_raw(&raw), modes))
        })
        .optional()?;
    let Some((rule, modes)) = row else {
        log::warn!("DiffTimezoneVS {id} is referenced but was never delivered; ignored");
        return Ok(None);
    };
    let today = at.date();
    let yesterday = today.pred_opt().unwrap_or(today);
    let kt = day_kind(today, &holidays_for(conn, today)?);
    let ky = day_kind(yesterday, &holidays_for(conn, yesterday)?);
    let Some((day, n)) = rule.covering(at, kt, ky) else {
        return Ok(None);
    };
    let col = match which {
        VsFor::User => 0,
        VsFor::Door => 1,
    };
    Ok(modes[day * 3 + n][col].filter(|m| *m != 255))
}

/// When the user last passed this door (record time text), for timed APB.
pub fn apb_last_at(conn: &Connection, pin: &str, door: u8) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT at FROM engine_apb WHERE pin = ?1 AND door = ?2")?
        .query_row(params![pin, door], |r| r.get(0))
        .optional()
}

/// The side of device-APB zone `zone` the user last passed.
pub fn apb_zone_last(conn: &Connection, pin: &str, zone: u8) -> rusqlite::Result<Option<u32>> {
    conn.prepare_cached("SELECT side FROM engine_apb_zones WHERE pin = ?1 AND zone = ?2")?
        .query_row(params![pin, zone], |r| r.get(0))
        .optional()
}

pub fn apb_zone_record(
    conn: &Connection,
    pin: &str,
    zone: u8,
    side: u32,
    at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO engine_apb_zones(pin, zone, side, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(pin, zone) DO UPDATE SET side = excluded.side, at = excluded.at",
    )?
    .execute(params![pin, zone, side, at])?;
    Ok(())
}

/// SQLite's `PRAGMA data_version`: changes whenever another connection
/// (the session applying DATA and OPTIONS) commits. Caches of rule data
/// compare it to know when to reload.
pub fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}

/// A scheduled output row (`outrelaysetting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledOutput {
    /// Door number (out_type 0) or aux output number (1).
    pub num: i64,
    pub aux: bool,
    /// 1 normal open, 2 normally closed, 0 none.
    pub action: i64,
    pub timezone: i64,
}

pub fn scheduled_outputs(conn: &Connection) -> rusqlite::Result<Vec<ScheduledOutput>> {
    let mut stmt = conn.prepare_cached(
        "SELECT num, out_type, action_type, timezone_id FROM scheduled_outputs
         WHERE action_type IN (1, 2) AND timezone_id IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ScheduledOutput {
            num: r.get(0)?,
            aux: r.get::<_, i64>(1)? == 1,
            action: r.get(2)?,
            timezone: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// The `InputIOSetting` time rule of an exit button (`in_type` 0, number =
/// door) or aux input (1, number = aux input); `None` = no restriction.
pub fn input_timezone(conn: &Connection, number: u8, in_type: u8) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT timezone_id FROM input_io_settings WHERE number = ?1 AND in_type = ?2",
        )?
        .query_row(params![number, in_type], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten()
        .filter(|tz| *tz > 0))
}

/// A linkage row (`inoutfun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linkage {
    pub index: i64,
    /// false = a door's lock, true = an aux output.
    pub aux: bool,
    pub out_addr: i64,
    /// 0 off/close, 1–254 seconds, 255 normal open.
    pub out_time: i64,
}

/// The linkages an event at `addr` triggers (`InAddr` 0 = any position).
pub fn linkages_for(conn: &Connection, event: u32, addr: u32) -> rusqlite::Result<Vec<Linkage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, out_type, out_addr, out_time FROM linkages
         WHERE event_type = ?1 AND (in_addr = ?2 OR in_addr = 0 OR in_addr IS NULL)
         ORDER BY idx",
    )?;
    let rows = stmt.query_map(params![event, addr], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (index, out_type, out_addr, out_time) = row?;
        match (out_type, out_addr, out_time) {
            (Some(t @ (0 | 1)), Some(a), Some(time)) if a >= 0 && (0..=255).contains(&time) => {
                out.push(Linkage {
                    index,
                    aux: t == 1,
                    out_addr: a,
                    out_time: time,
                })
            }
            _ => log::warn!("linkage {index}: output {out_type:?}/{out_addr:?}/{out_time:?} is not usable; skipped"),
        }
    }
    Ok(out)
}

mod door_params;
mod wall_clock;
mod wiegand;

pub use door_params::{door_settings, door_settings_from, DoorParams};
pub use wall_clock::{dst, wall_clock, wall_time};
pub use wiegand::{
    default_wiegand_formats, reader_wiegand_format, wiegand_formats, ReaderWgFormat, WgFormatRow,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::door::DoorSettings;
    use crate::store::Store;
    use std::time::Duration;

    #[test]
    fn door_parameters_come_from_options_then_door_table_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.conn();
        assert_eq!(door_settings(c, 1, true).unwrap(), DoorSettings::default());
        c.execute(
            "INSERT INTO door_parameters(id, name, value) VALUES (1, 'DoorDrivertime', '7'), (1, 'DoorDetectortime', 'x')",
            [],
        )
        .unwrap();
        s.set_option("Door1SensorType", "0").unwrap();
        let d = door_settings(c, 1, true).unwrap();
        assert_eq!(d.drive_time, Duration::from_secs(7));
        assert!(!d.has_sensor);
        assert_eq!(d.held_open_after, None, "unparsable is ignored");
        s.set_option("Door1Drivertime", "2").unwrap();
        assert_eq!(
            door_settings(c, 1, true).unwrap().drive_time,
            Duration::from_secs(2)
        );
        assert_eq!(
            door_settings(c, 2, true).unwrap().drive_time,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn rule_1_is_the_factory_24_hour_rule_until_the_server_sends_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let sunday_midnight = chrono::NaiveDate::from_ymd_opt(2024, 5, 5)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let monday_late = chrono::NaiveDate::from_ymd_opt(2024, 5, 6)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap();
        s.conn()
            .execute(
                "INSERT INTO holidays(holiday, holiday_type, loop) VALUES ('20240506', 2, 0)",
                [],
            )
            .unwrap();
        for at in [sunday_midnight, monday_late] {
            assert!(rule_covers(s.conn(), 1, at).unwrap(), "{at}");
            assert!(!rule_covers(s.conn(), 2, at).unwrap(), "{at}");
        }
        // The server's own rule 1 replaces it...
        s.conn()
            .execute(
                "INSERT INTO time_zones(timezone_id, mon_time1) VALUES (1, 2359)",
                [],
            )
            .unwrap();
        assert!(!rule_covers(s.conn(), 1, sunday_midnight).unwrap());
        // ...and deleting it restores it.
        s.conn()
            .execute("DELETE FROM time_zones WHERE timezone_id = 1", [])
            .unwrap();
        assert!(rule_covers(s.conn(), 1, sunday_midnight).unwrap());
    }

    #[test]
    fn superauthorize_in_the_user_record_makes_a_super_user_on_every_door() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s.conn();
        c.execute(
            "INSERT INTO users(pin, super_authorize) VALUES ('1', 1), ('2', 0)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO super_authorizations(pin, door_id) VALUES ('3', 2)",
            [],
        )
        .unwrap();
        for door in 1..=4 {
            assert!(is_super_user(c, "1", door).unwrap());
            assert!(!is_super_user(c, "2", door).unwrap());
            assert_eq!(is_super_user(c, "3", door).unwrap(), door == 2);
        }
    }

    #[test]
    fn a_missing_rule_covers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let at = chrono::NaiveDate::from_ymd_opt(2024, 5, 6)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        assert!(!rule_covers(s.conn(), 9, at).unwrap());
        s.conn()
            .execute(
                "INSERT INTO time_zones(timezone_id, mon_time1) VALUES (9, 2359)",
                [],
            )
            .unwrap();
        assert!(rule_covers(s.conn(), 9, at).unwrap());
    }
}
