//! The device's own table uploads (10.5-10.12): records go to the outbox
//! channel `tabledata/<table>`, from which the session posts them to
//! `/iclock/cdata?table=tabledata&tablename=<table>&count=N` and checks the
//! server's `<table>=N`.

use super::apply::{lookup_table, parse_conditions, CondScope};
use super::query::OutputPlan;
use super::DataError;
use crate::clock::Clock;
use crate::protocol::time::format_record_time;
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

/// One error-log record (10.12, Appendix 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEntry {
    /// Appendix 17 code: source D/S, module, `E`, four-digit value (`D01E0001`).
    pub errcode: String,
    pub errmsg: String,
    /// `dev` (the device's own) or `cmd` (from a server command).
    pub dataorigin: String,
    pub cmdid: String,
    /// JSON, base64-encoded when written.
    pub additional_json: String,
}

impl ErrorEntry {
    pub fn from_command(errcode: &str, errmsg: &str, cmdid: &str, json: &str) -> Self {
        ErrorEntry {
            errcode: errcode.to_owned(),
            errmsg: errmsg.to_owned(),
            dataorigin: "cmd".into(),
            cmdid: cmdid.to_owned(),
            additional_json: json.to_owned(),
        }
    }

    /// A failed DATA command: module 01 (PUSH communication), the error
    /// value being the Appendix 1 code without its sign (`D01E0620`).
    pub fn for_failed_command(cmdid: &str, ret: i64, error: &DataError) -> Self {
        let value = ret.unsigned_abs() % 10_000;
        let json = serde_json::json!({ "return": ret, "error": error.to_string() }).to_string();
        Self::from_command(&format!("D01E{value:04}"), &error.to_string(), cmdid, &json)
    }

    /// The 10.12 record with its table prefix.
    pub fn to_line(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if matches!(c, '\t' | '\n' | '\r') {
                        ' '
                    } else {
                        c
                    }
                })
                .take(200)
                .collect()
        };
        format!(
            "errorlog {}",
            Record::new()
                .with("errcode", clean(&self.errcode))
                .with("errmsg", clean(&self.errmsg))
                .with("dataorigin", clean(&self.dataorigin))
                .with("cmdid", clean(&self.cmdid))
                .with(
                    "additional",
                    base64::engine::general_purpose::STANDARD.encode(&self.additional_json)
                )
                .to_line()
        )
    }
}

/// The version from which the server takes error logs (10.12).
pub const ERRORLOG_MIN_VERSION: ProtocolVersion = ProtocolVersion::new(3, 1, 2);

/// Logs an error; queues its upload in the same transaction when the
/// protocol in use is 3.1.2 or later.
pub fn log_error(
    store: &mut Store,
    version: ProtocolVersion,
    clock: &dyn Clock,
    entry: &ErrorEntry,
) -> Result<(), DataError> {
    let line = entry.to_line();
    let additional = base64::engine::general_purpose::STANDARD.encode(&entry.additional_json);
    let now = format_record_time(crate::engine::rules::wall_clock(store.conn(), clock));
    let tx = store.conn_mut().transaction()?;
    tx.execute(
        "INSERT INTO error_log(errcode, errmsg, dataorigin, cmdid, additional, logged_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            entry.errcode,
            entry.errmsg,
            entry.dataorigin,
            entry.cmdid,
            additional,
            now
        ],
    )?;
    if version >= ERRORLOG_MIN_VERSION {
        tx.execute(
            "INSERT INTO outbox(channel, body) VALUES (?1, ?2)",
            params![channel("errorlog"), line],
        )?;
    }
    tx.commit()?;
    Ok(())
}
