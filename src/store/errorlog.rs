//! The device error log (10.12, Appendix 17): rows of `error_log`, each
//! queued for upload on the `tabledata/errorlog` channel when the server
//! takes error logs; and the one error the store itself writes, a record
//! time going back past the event already stored.

use super::{Store, StoreError};
use crate::protocol::{ProtocolVersion, Record};
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};

/// The version from which the server takes error logs (10.12).
pub const ERRORLOG_MIN_VERSION: ProtocolVersion = ProtocolVersion::new(3, 1, 2);

/// The outbox channel of error-log uploads (`uploads::channel("errorlog")`).
const ERRORLOG_CHANNEL: &str = "tabledata/errorlog";

/// Appendix 17 code of a record time earlier than the last one stored:
/// device (D), module 03 (hardware interaction: the clock), error 0001.
/// The spec leaves the values of a module to the device.
pub const RECORD_TIME_WENT_BACK: &str = "D03E0001";

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

    /// An error of the device's own (`dataorigin=dev`, no command).
    pub fn device(errcode: &str, errmsg: &str, json: &str) -> Self {
        ErrorEntry {
            dataorigin: "dev".into(),
            ..Self::from_command(errcode, errmsg, "", json)
        }
    }

    fn additional(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.additional_json)
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
                .with("additional", self.additional())
                .to_line()
        )
    }
}

/// Writes the row and, when `upload`, its outbox record, on `conn` (the
/// caller's transaction).
fn insert(
    conn: &Connection,
    entry: &ErrorEntry,
    logged_at: &str,
    upload: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO error_log(errcode, errmsg, dataorigin, cmdid, additional, logged_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        entry.errcode,
        entry.errmsg,
        entry.dataorigin,
        entry.cmdid,
        entry.additional(),
        logged_at
    ])?;
    if upload {
        conn.prepare_cached("INSERT INTO outbox(channel, body) VALUES (?1, ?2)")?
            .execute(params![ERRORLOG_CHANNEL, entry.to_line()])?;
    }
    Ok(())
}

/// Whether the server the options describe takes error logs: the protocol
/// in use, the lower of its PushProtVer (3.0.1 when none) and the device's.
fn server_takes_error_logs(conn: &Connection) -> rusqlite::Result<bool> {
    let server: Option<String> = conn
        .prepare_cached("SELECT value FROM options WHERE key = 'PushProtVer'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let server = server
        .as_deref()
        .and_then(ProtocolVersion::parse)
        .unwrap_or(ProtocolVersion::DEFAULT_SERVER);
    Ok(server.min(crate::protocol::DEVICE_PUSH_VERSION) >= ERRORLOG_MIN_VERSION)
}

/// Inside an event's transaction, after its row `idx` (so the write lock
/// is already held): when `time` (the record time format, which sorts as
/// text) is earlier than the event before it, the error log says so, once
/// per step back (the next event compares with this one). A clock set
/// back, a smaller zone offset, the end of DST or a board started without
/// its real-time clock all show here.
pub(super) fn note_time_order(
    conn: &Connection,
    idx: i64,
    time: &str,
    event: u32,
) -> rusqlite::Result<()> {
    let last: Option<String> = conn
        .prepare_cached("SELECT time FROM event_log WHERE idx < ?1 ORDER BY idx DESC LIMIT 1")?
        .query_row([idx], |r| r.get(0))
        .optional()?;
    let Some(last) = last.filter(|last| time < last.as_str()) else {
        return Ok(());
    };
    log::warn!(
        "record time goes back from {last} to {time} (event {event}); noted in the error log"
    );
    let json = serde_json::json!({ "last": last, "time": time, "event": event }).to_string();
    let entry = ErrorEntry::device(
        RECORD_TIME_WENT_BACK,
        &format!("record time went back from {last} to {time}"),
        &json,
    );
    insert(conn, &entry, time, server_takes_error_logs(conn)?)
}

impl Store {
    /// Logs an error at `logged_at` (record time) and, when `upload`,
    /// queues its upload in the same transaction.
    pub fn log_error_entry(
        &mut self,
        entry: &ErrorEntry,
        logged_at: &str,
        upload: bool,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        insert(&tx, entry, logged_at, upload)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEvent;

    fn ev(time: &str) -> NewEvent {
        NewEvent::plain(time.into(), 206, 0)
    }

    fn error_rows(s: &Store) -> Vec<(String, String, String)> {
        let mut stmt = s
            .conn()
            .prepare("SELECT errcode, errmsg, logged_at FROM error_log ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_record_time_going_back_is_logged_once_per_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_option("PushProtVer", "3.1.2").unwrap();
        s.append_event(&ev("2026-05-09 10:00:00")).unwrap();
        s.append_event(&ev("2026-05-09 10:00:00")).unwrap();
        assert!(error_rows(&s).is_empty(), "equal times are in order");
        s.append_event(&ev("1970-01-01 00:00:05")).unwrap();
        s.append_event(&ev("1970-01-01 00:00:06")).unwrap();
        let rows = error_rows(&s);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, RECORD_TIME_WENT_BACK);
        assert_eq!(
            rows[0].1,
            "record time went back from 2026-05-09 10:00:00 to 1970-01-01 00:00:05"
        );
        assert_eq!(rows[0].2, "1970-01-01 00:00:05");
        let mut channels = Vec::new();
        while let Some(batch) = s.outbox_batch(1 << 20).unwrap() {
            channels.push(batch.channel.clone());
            s.outbox_remove(&batch).unwrap();
        }
        assert!(
            channels.contains(&ERRORLOG_CHANNEL.to_owned()),
            "{channels:?}"
        );
    }

    #[test]
    fn an_older_server_gets_no_error_log_upload() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.append_event(&ev("2026-05-09 10:00:00")).unwrap();
        s.append_event(&ev("2026-05-09 09:00:00")).unwrap();
        assert_eq!(error_rows(&s).len(), 1);
        let mut channels = Vec::new();
        while let Some(batch) = s.outbox_batch(1 << 20).unwrap() {
            channels.push(batch.channel.clone());
            s.outbox_remove(&batch).unwrap();
        }
        assert_eq!(channels, ["rtlog"]);
    }
}
