//! What local time it is now, as the engine and every record see it: the
//! clock's zone with the server's DST table (`DSTSetting`, `DSTOn`) read
//! from the database. The one answer to "what is local time now"; it never
//! sets a clock.

use super::option_number;
use chrono::NaiveDateTime;
use rusqlite::Connection;

/// The DST rules in force: none unless the device option `DSTOn` is 1;
/// rows that do not parse are skipped and logged.
pub fn dst(conn: &Connection) -> rusqlite::Result<crate::engine::dst::Dst> {
    use crate::engine::dst::{Dst, DstPoint, DstRow};
    if option_number(conn, "DSTOn")? != Some(1) {
        return Ok(Dst::default());
    }
    let mut stmt =
        conn.prepare_cached("SELECT year, start_time, end_time, loop FROM dst_settings")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    let mut out = Dst::default();
    for row in rows {
        let (year, start, end, every) = row?;
        match (
            i32::try_from(year).ok(),
            DstPoint::parse(&start),
            DstPoint::parse(&end),
        ) {
            (Some(year), Some(start), Some(end)) => out.rows.push(DstRow {
                year,
                start,
                end,
                every_year: every == Some(1),
            }),
            _ => log::warn!("DSTSetting {year}: {start:?}-{end:?} is not MMIIWWHH; skipped"),
        }
    }
    Ok(out)
}

/// The device's wall-clock time, as the engine stamps its records: the one
/// answer to "what is local time now", with the local zone of the clock
/// and the DST rules read from `conn`. For the records other threads write
/// (session events 214/105, the error log) and the session's TransTimes. A
/// DST table that cannot be read leaves the zone's own DST, logged.
pub fn wall_clock(conn: &Connection, clock: &dyn crate::clock::Clock) -> NaiveDateTime {
    let rules = dst(conn).unwrap_or_else(|e| {
        log::warn!("cannot read the DST rules ({e}); using the zone's own");
        crate::engine::dst::Dst::default()
    });
    wall_time(clock, &rules)
}

/// [`wall_clock`] with DST rules already read (the engine keeps them).
pub fn wall_time(
    clock: &dyn crate::clock::Clock,
    rules: &crate::engine::dst::Dst,
) -> NaiveDateTime {
    rules.wall(&clock.zone(), clock.now_utc())
}
