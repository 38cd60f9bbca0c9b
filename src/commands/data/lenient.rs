//! Lenient records, strict values (issue 10): what DATA UPDATE does with the
//! records deployed servers send beyond the spec.
//!
//! - A field the table does not have is ignored and the record applied.
//!   Servers written for other panels add their own fields (C3/inBio's
//!   user table, ZKTeco's attendance protocol); refusing the whole person
//!   for one of them denied everyone. Each table and field is logged once,
//!   not per record. An invalid value in a known field still refuses the
//!   command, and DELETE conditions stay strict (apply.rs): a condition
//!   ignored would delete more than the server meant.
//! - Names ignored on purpose although servers send them: `CardID` (some
//!   servers mean the card's record number, not the card), `TZ` (the
//!   attendance protocol's per-user time-zone flags, which have no place in
//!   this access model: permissions come from `userauthorize`) and
//!   `ExpiredTime` (its format is nowhere specified; a guessed date would
//!   make validity wrong both ways: the server must send EndTime).
//! - A key field the panel has a default for gets it when left out
//!   ([`KeyDefault`]).

use super::schema::{KeyDefault, Table};
use super::value::Bound;
use crate::store::Store;

/// Distinct ignored `table.field` names remembered for "logged once"; past
/// this, further names are not logged (one line says so), so a server
/// inventing endless field names cannot grow the set.
const MAX_REMEMBERED: usize = 64;

/// Doors a permission without `AuthorizeDoorId` covers when the device's
/// door count is unknown (no registration yet): 12.1.1.5's table ends at
/// four doors, and so do the boards.
const FALLBACK_DOORS: u32 = 4;

/// The unknown fields already logged.
#[derive(Debug, Default)]
pub(crate) struct IgnoredFields {
    seen: Vec<(&'static str, String)>,
    full: bool,
}

impl IgnoredFields {
    /// Notes that `field` of `table` is being ignored; logs the first time.
    pub(crate) fn note(&mut self, table: &'static str, field: &str) {
        if self
            .seen
            .iter()
            .any(|(t, f)| *t == table && f.eq_ignore_ascii_case(field))
        {
            return;
        }
        if self.seen.len() >= MAX_REMEMBERED {
            if !self.full {
                self.full = true;
                log::info!("more unknown DATA fields are ignored; they are no longer logged");
            }
            return;
        }
        let field: String = field.chars().take(40).collect();
        log::info!(
            "table {table} has no field {field:?}: ignoring it in every record (logged once)"
        );
        self.seen.push((table, field));
    }

    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.seen.len()
    }
}

/// The default values of `table`'s defaulted key fields, by field index.
pub(crate) fn key_defaults(
    table: &'static Table,
    store: &Store,
) -> Result<Vec<(usize, Bound<'static>)>, crate::store::StoreError> {
    let mut out = Vec::with_capacity(table.key_defaults.len());
    for (name, default) in table.key_defaults {
        let Some((idx, _)) = table.field(name) else {
            continue;
        };
        let value = match default {
            KeyDefault::AllDoors => Bound::Int(all_doors_mask(store)?),
        };
        out.push((idx, value));
    }
    Ok(out)
}

/// Every door of this device as a door bit mask: the LockCount announced
/// at registration (the board's doors).
fn all_doors_mask(store: &Store) -> Result<i64, crate::store::StoreError> {
    let doors = store
        .option("LockCount")?
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| (1..=32).contains(n))
        .unwrap_or(FALLBACK_DOORS);
    Ok((1i64 << doors) - 1)
}

#[cfg(test)]
mod tests {
    use super::super::schema;
    use super::*;

    #[test]
    fn each_ignored_field_is_remembered_once_and_the_set_is_bounded() {
        let mut ignored = IgnoredFields::default();
        for _ in 0..1000 {
            ignored.note("user", "CardID");
            ignored.note("user", "cardid");
        }
        assert_eq!(ignored.remembered(), 1);
        for i in 0..1000 {
            ignored.note("user", &format!("Invented{i}"));
        }
        assert_eq!(ignored.remembered(), MAX_REMEMBERED);
    }

    #[test]
    fn all_doors_follows_the_registered_lock_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let table = schema::table("userauthorize").unwrap();
        let (idx, _) = table.field("AuthorizeDoorId").unwrap();
        assert_eq!(
            key_defaults(table, &store).unwrap(),
            [(idx, Bound::Int(15))]
        );
        store.set_option("LockCount", "2").unwrap();
        assert_eq!(key_defaults(table, &store).unwrap(), [(idx, Bound::Int(3))]);
        store.set_option("LockCount", "many").unwrap();
        assert_eq!(
            key_defaults(table, &store).unwrap(),
            [(idx, Bound::Int(15))]
        );
        assert!(key_defaults(schema::table("user").unwrap(), &store)
            .unwrap()
            .is_empty());
    }

    /// Runs one command through the DATA executor on a fresh store.
    fn run(store: &mut Store, command: &str) -> i64 {
        use crate::clock::DeviceClock;
        use crate::commands::{CommandContext, CommandExecutor};
        use crate::link::OfflineLink;
        use crate::platform::RecordingPlatform;
        use crate::protocol::command::Command;
        let (lines, _) = crate::protocol::parse_getrequest(&format!("C:1:{command}"));
        let clock = DeviceClock::new(0);
        let platform = RecordingPlatform::new();
        let mut link = OfflineLink { serial: "T".into() };
        let mut ctx = CommandContext {
            store,
            link: &mut link,
            clock: &clock,
            platform: &platform,
        };
        super::super::DataExecutor::new()
            .execute(&Command::classify(&lines[0]), &mut ctx)
            .ret
    }

    fn one_row(store: &Store, sql: &str) -> (String, String, i64, i64) {
        store
            .conn()
            .query_row(sql, [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
    }

    #[test]
    fn unknown_fields_are_ignored_aliases_mapped_and_bad_values_still_refused() {
        use crate::commands::codes;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        // The record of the issue, with C3's SuperAuthorize and names of
        // other servers mixed in.
        assert_eq!(
            run(
                &mut store,
                "DATA UPDATE user CardNo=4660\tPin=1001\tPassword=\tGroup=0\tStartTime=0\tEndTime=0\tName=Alice Smith\tSuperAuthorize=1\tDisable=0\tCardID=77\tTZ=0000000100000000\tExpiredTime=20250101"
            ),
            codes::OK
        );
        assert_eq!(
            one_row(
                &store,
                "SELECT cardno, name, super_authorize, disable FROM users WHERE pin = '1001'"
            ),
            ("4660".into(), "Alice Smith".into(), 1, 0)
        );
        assert_eq!(
            run(
                &mut store,
                "DATA UPDATE user Pin=1002\tCard=[15CD5B07]\tPasswd=234\tGrp=3\tPri=14"
            ),
            codes::OK
        );
        let (card, password, grp, privilege): (String, String, i64, i64) = store
            .conn()
            .query_row(
                "SELECT cardno, password, grp, privilege FROM users WHERE pin = '1002'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            (card.as_str(), password.as_str(), grp, privilege),
            ("123456789", "234", 3, 14)
        );
        // Strict values: a bad value in a known field (also through an
        // alias) refuses the command, and nothing is written.
        for bad in [
            "DATA UPDATE user Pin=1003\tSuperAuthorize=yes",
            "DATA UPDATE user Pin=1003\tPri=admin",
            "DATA UPDATE user Pin=1003\tCard=notacard",
        ] {
            assert_eq!(run(&mut store, bad), codes::BAD_DATA_FORMAT, "{bad}");
        }
        let n: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM users WHERE pin = '1003'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
        // DELETE conditions stay strict.
        assert_eq!(
            run(&mut store, "DATA DELETE user CardID=77"),
            codes::UNKNOWN_FIELD
        );
        assert_eq!(
            run(&mut store, "DATA DELETE user Pin=1001\tTZ=1"),
            codes::UNKNOWN_FIELD
        );
    }

    #[test]
    fn a_permission_without_a_door_is_for_every_door_of_the_device() {
        use crate::commands::codes;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.set_option("LockCount", "4").unwrap();
        assert_eq!(
            run(
                &mut store,
                "DATA UPDATE userauthorize Pin=2001\tAuthorizeTimezoneId=1\nPin=2002\tAuthorizeTimezoneId=1\tAuthorizeDoorId=\nPin=2003\tAuthorizeTimezoneId=1\tAuthorizeDoorId=2\tDevID=1"
            ),
            codes::OK
        );
        let rows: Vec<(String, i64, i64)> = store
            .conn()
            .prepare("SELECT pin, door_mask, dev_id FROM user_authorizations ORDER BY pin")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("2001".into(), 15, 0),
                ("2002".into(), 15, 0),
                ("2003".into(), 2, 1)
            ]
        );
        // The time rule is still required.
        assert_eq!(
            run(&mut store, "DATA UPDATE userauthorize Pin=2004"),
            codes::BAD_DATA_FORMAT
        );
    }
}
