//! The device's own table uploads (10.5-10.12): records go to the outbox
//! channel `tabledata/<table>`, from which the session posts them to
//! `/iclock/cdata?table=tabledata&tablename=<table>&count=N` and checks the
//! server's `<table>=N`.

use super::condition::{lookup_table, parse_conditions, CondScope};
use super::query::OutputPlan;
use super::DataError;
use crate::clock::Clock;
use crate::protocol::{ProtocolVersion, Record};
use crate::store::Store;
use base64::Engine;
use rusqlite::params;

/// The outbox channel of a table upload.
pub fn channel(table: &str) -> String {
    format!("tabledata/{table}")
}

/// Tables the device uploads on its own (10.5-10.11).
pub const UPLOAD_TABLES: &[&str] = &[
    "user",
    "identitycard",
    "templatev10",
    "biophoto",
    "userpic",
    "biodata",
    "errorlog",
];

/// Queues the stored rows of `table` matching `conditions` (field names as in
/// DATA commands, e.g. `[("Pin", "5")]`) for upload in the table's record
/// format. Returns how many were queued. Used after a user, card or template
/// is enrolled on the device.
pub fn queue_table_upload(
    store: &mut Store,
    table: &str,
    conditions: &[(&str, &str)],
) -> Result<usize, DataError> {
    let table = lookup_table(table)?;
    if !UPLOAD_TABLES.contains(&table.name) {
        return Err(DataError::BadCommand(
            "this table is not uploaded by the device",
        ));
    }
    let mut record = Record::new();
    for (k, v) in conditions {
        record.push(k, v);
    }
    let conds = parse_conditions(table, &record, CondScope::Filter)?;
    let plan = OutputPlan::new(table, None)?;
    let sql = plan.select_sql(&conds);
    let ch = channel(table.name);
    let tx = store.conn_mut().transaction()?;
    let mut n = 0;
    {
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(conds.iter().map(|c| &c.value)))?;
        let mut insert = tx.prepare_cached("INSERT INTO outbox(channel, body) VALUES (?1, ?2)")?;
        while let Some(row) = rows.next()? {
            insert.execute(params![ch, plan.format_prefixed(row)?])?;
            n += 1;
        }
    }
    tx.commit()?;
    Ok(n)
}

/// Queues a snapshot (10.9). Its record has no table-name prefix, as both
/// the text and the example of 10.9 show: `pin=..\tsn=..\tsize=..\tphoto=..`;
/// `pin` is the photo's name and `size` the original (binary) size.
pub fn queue_attphoto(
    store: &Store,
    name: &str,
    serial: &str,
    jpeg: &[u8],
) -> Result<(), DataError> {
    let line = Record::new()
        .with("pin", name)
        .with("sn", serial)
        .with("size", jpeg.len())
        .with(
            "photo",
            base64::engine::general_purpose::STANDARD.encode(jpeg),
        )
        .to_line();
    store.push_outbox(&channel("ATTPHOTO"), &line)?;
    Ok(())
}

pub use crate::store::errorlog::{ErrorEntry, ERRORLOG_MIN_VERSION};

impl ErrorEntry {
    /// A failed DATA command: module 01 (PUSH communication), the error
    /// value being the Appendix 1 code without its sign (`D01E0620`).
    pub fn for_failed_command(cmdid: &str, ret: i64, error: &DataError) -> Self {
        let value = ret.unsigned_abs() % 10_000;
        let json = serde_json::json!({ "return": ret, "error": error.to_string() }).to_string();
        Self::from_command(&format!("D01E{value:04}"), &error.to_string(), cmdid, &json)
    }
}

pub use crate::store::held_report::held_events_entry;

/// Writes the events the database could not take earlier and, once none
/// waits, logs the episode in the error log so the server hears of it
/// (10.12), stamped with the device's wall clock. See
/// [`crate::store::held_report::flush_held_events`].
pub fn flush_held_events(
    store: &mut Store,
    version: Option<ProtocolVersion>,
    clock: &dyn Clock,
) -> bool {
    crate::store::held_report::flush_held_events(store, version, &|conn| {
        crate::engine::rules::wall_clock(conn, clock)
    })
}

/// Logs an error; queues its upload in the same transaction when the
/// protocol in use is 3.1.2 or later.
pub fn log_error(
    store: &mut Store,
    version: ProtocolVersion,
    clock: &dyn Clock,
    entry: &ErrorEntry,
) -> Result<(), DataError> {
    let now = crate::engine::rules::wall_clock(store.conn(), clock);
    crate::store::held_report::log_error_at(store, version, now, entry)?;
    Ok(())
}
