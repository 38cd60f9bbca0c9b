//! Door parameters (Appendix 10): `Door<n><Name>` options over the
//! `DoorParameters` table, read in two queries, and the [`DoorSettings`]
//! the door machines run with, with Appendix 10's defaults.

use crate::engine::door::DoorSettings;
use rusqlite::Connection;
use std::time::Duration;

/// Every door parameter, read in two queries (the `Door…` options and the
/// `DoorParameters` table), looked up with [`door_param`]'s precedence.
/// The engine re-reads it whenever the rules changed, which during a bulk
/// sync is every step: two queries instead of two per parameter and door.
#[derive(Debug, Clone, Default)]
pub struct DoorParams {
    options: std::collections::HashMap<String, String>,
    /// The same by lower-case key: servers vary the case (`door1drivertime`).
    options_nocase: std::collections::HashMap<String, String>,
    /// (door id, lower-case name) → value.
    table: std::collections::HashMap<(i64, String), String>,
}

impl DoorParams {
    pub fn load(conn: &Connection) -> rusqlite::Result<DoorParams> {
        let mut p = DoorParams::default();
        let mut stmt =
            conn.prepare_cached("SELECT key, value FROM options WHERE key LIKE 'Door%'")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (k, v): (String, String) = row?;
            p.options_nocase.insert(k.to_ascii_lowercase(), v.clone());
            p.options.insert(k, v);
        }
        let mut stmt = conn.prepare_cached("SELECT id, name, value FROM door_parameters")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
            let (id, name, value): (i64, String, String) = row?;
            p.table.insert((id, name.to_ascii_lowercase()), value);
        }
        Ok(p)
    }

    /// As [`door_param`].
    pub fn get(&self, door: u8, name: &str) -> Option<&str> {
        let key = format!("Door{door}{name}");
        if let Some(v) = self
            .options
            .get(&key)
            .or_else(|| self.options_nocase.get(&key.to_ascii_lowercase()))
        {
            return Some(v);
        }
        let id = i64::from(door);
        self.table
            .get(&(id, format!("door{name}").to_ascii_lowercase()))
            .or_else(|| self.table.get(&(id, key.to_ascii_lowercase())))
            .map(String::as_str)
    }

    /// As [`door_number`].
    pub fn number(&self, door: u8, name: &str) -> Option<i64> {
        let v = self.get(door, name)?.trim();
        match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) if v.is_empty() => None,
            Err(_) => {
                log::warn!("door {door} parameter {name}={v:?} is not a number; using the default");
                None
            }
        }
    }
}

/// The door's settings, with Appendix 10's defaults.
pub fn door_settings(
    conn: &Connection,
    door: u8,
    board_has_sensor: bool,
) -> rusqlite::Result<DoorSettings> {
    Ok(door_settings_from(
        &DoorParams::load(conn)?,
        door,
        board_has_sensor,
    ))
}

/// [`door_settings`] from parameters already read.
pub fn door_settings_from(p: &DoorParams, door: u8, board_has_sensor: bool) -> DoorSettings {
    let secs = |n: i64| Duration::from_secs(u64::try_from(n.clamp(0, 254)).unwrap_or(0));
    let d = DoorSettings::default();
    DoorSettings {
        drive_time: p
            .number(door, "Drivertime")
            .map(secs)
            .unwrap_or(d.drive_time),
        // Without DoorSensorType, a door whose board wires a contact uses it.
        has_sensor: board_has_sensor && p.number(door, "SensorType") != Some(0),
        held_open_after: p.number(door, "Detectortime").filter(|n| *n > 0).map(secs),
        close_and_lock: p
            .number(door, "CloseAndLock")
            .map_or(d.close_and_lock, |v| v != 0),
        keep_open_tz: p.number(door, "KeepOpenTimeZone").filter(|tz| *tz > 0),
        valid_tz: p.number(door, "ValidTZ").filter(|tz| *tz > 0),
        // Appendix 10: "Exit button status. 1: Do not lock (default). 0: Lock".
        exit_button_opens: p.number(door, "REXInput") != Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn option_keys_match_in_any_case_and_the_exact_spelling_wins() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.set_option("door1drivertime", "7").unwrap();
        s.set_option("DOOR2DRIVERTIME", "9").unwrap();
        s.set_option("door2Drivertime", "3").unwrap();
        s.set_option("Door2Drivertime", "4").unwrap();
        let p = DoorParams::load(s.conn()).unwrap();
        assert_eq!(p.number(1, "Drivertime"), Some(7));
        assert_eq!(p.number(2, "Drivertime"), Some(4));
        let conn = s.conn();
        assert_eq!(
            crate::engine::rules::door_param(conn, 1, "Drivertime").unwrap(),
            Some("7".into())
        );
        assert_eq!(
            crate::engine::rules::door_param(conn, 2, "Drivertime").unwrap(),
            Some("4".into())
        );
        assert_eq!(
            door_settings_from(&p, 1, true).drive_time,
            Duration::from_secs(7)
        );
    }
}
