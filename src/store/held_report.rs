//! The report of an episode of held events (see [`super::held`]): once the
//! events the database could not take are written, the episode becomes one
//! error-log record (10.12, Appendix 17 module 01) so the server hears of
//! it. Owns the record's wording and when it is written; it NEVER decides
//! the local time (the caller passes how to read it, read only when a
//! report is due) and never talks to the server.

use super::errorlog::{ErrorEntry, ERRORLOG_MIN_VERSION};
use super::{HoldReport, Store, StoreError, WriteFailure};
use crate::protocol::codes;
use crate::protocol::time::format_record_time;
use crate::protocol::ProtocolVersion;
use chrono::NaiveDateTime;
use rusqlite::Connection;

/// The error-log record of events the database could not take for a while:
/// Appendix 17 module 01, value -18 (insufficient space) when it was full,
/// -15 (failed to write the file) otherwise, as for failed commands;
/// `dataorigin=dev`.
pub fn held_events_entry(report: &HoldReport) -> ErrorEntry {
    let value = match report.failure {
        WriteFailure::Full => codes::NO_SPACE,
        WriteFailure::ReadOnly | WriteFailure::Other => codes::WRITE_FILE_FAILED,
    }
    .unsigned_abs();
    // Built by hand: record times need no escaping, the error text does.
    let json = format!(
        "{{\"written_late\":{},\"lost\":{},\"first\":{:?},\"last\":{:?},\"error\":{}}}",
        report.written,
        report.lost,
        report.first_time,
        report.last_time,
        serde_json::Value::from(report.error.as_str())
    );
    ErrorEntry {
        errcode: format!("D01E{value:04}"),
        errmsg: format!(
            "the database could not be written ({}): {} event(s) from {} to {} were kept in memory and logged late, {} lost",
            report.error, report.written, report.first_time, report.last_time, report.lost
        ),
        dataorigin: "dev".into(),
        cmdid: String::new(),
        additional_json: json,
    }
}

/// The protocol version in use as the last session persisted it
/// (`PushProtVer`, else the default server's), never above the device's:
/// for threads without a session of their own (the engine's error log).
pub fn persisted_protocol(store: &Store) -> ProtocolVersion {
    let server = store
        .option("PushProtVer")
        .ok()
        .flatten()
        .and_then(|v| ProtocolVersion::parse(&v))
        .unwrap_or(ProtocolVersion::DEFAULT_SERVER);
    server.min(crate::protocol::DEVICE_PUSH_VERSION)
}

/// Logs an error at local time `now`; queues its upload in the same
/// transaction when the protocol in use is 3.1.2 or later.
pub fn log_error_at(
    store: &mut Store,
    version: ProtocolVersion,
    now: NaiveDateTime,
    entry: &ErrorEntry,
) -> Result<(), StoreError> {
    let now = format_record_time(now);
    store.log_error_entry(entry, &now, version >= ERRORLOG_MIN_VERSION)
}

/// Writes the events the database could not take earlier and, once none
/// waits, logs the episode in the error log. Cheap when nothing waits.
/// Returns whether anything was written. `version` is the protocol in use;
/// `None` (a thread without a session): [`persisted_protocol`], read only
/// when there is a report, as is `wall_now` (the local time of the record).
pub fn flush_held_events(
    store: &mut Store,
    version: Option<ProtocolVersion>,
    wall_now: &dyn Fn(&Connection) -> NaiveDateTime,
) -> bool {
    let written = store.held_events() > 0 && store.write_held_events() > 0;
    let Some(report) = store.hold_report() else {
        return written;
    };
    let entry = held_events_entry(report);
    let version = version.unwrap_or_else(|| persisted_protocol(store));
    let now = wall_now(store.conn());
    match log_error_at(store, version, now, &entry) {
        Ok(()) => {
            store.clear_hold_report();
            true
        }
        // Kept for the next step: the database failed again already.
        Err(e) => {
            log::debug!("cannot log the held-events report yet: {e}");
            written
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(failure: WriteFailure) -> HoldReport {
        HoldReport {
            failure,
            error: "disk \"full\"".into(),
            written: 3,
            lost: 1,
            first_time: "2024-05-06 09:00:00".into(),
            last_time: "2024-05-06 09:05:00".into(),
        }
    }

    #[test]
    fn a_full_database_is_reported_as_no_space_and_others_as_a_failed_write() {
        let full = held_events_entry(&report(WriteFailure::Full));
        assert_eq!(full.errcode, "D01E0018");
        assert_eq!(full.dataorigin, "dev");
        assert!(full.errmsg.contains("3 event(s)"), "{}", full.errmsg);
        let json: serde_json::Value = serde_json::from_str(&full.additional_json).unwrap();
        assert_eq!(json["written_late"], 3);
        assert_eq!(json["lost"], 1);
        assert_eq!(json["error"], "disk \"full\"", "the error text is escaped");
        assert_eq!(
            held_events_entry(&report(WriteFailure::ReadOnly)).errcode,
            "D01E0015"
        );
        assert_eq!(
            held_events_entry(&report(WriteFailure::Other)).errcode,
            "D01E0015"
        );
    }

    #[test]
    fn the_persisted_protocol_is_the_servers_but_never_above_the_devices() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(persisted_protocol(&s), ProtocolVersion::DEFAULT_SERVER);
        s.set_option("PushProtVer", "3.1.1").unwrap();
        assert_eq!(persisted_protocol(&s), ProtocolVersion::new(3, 1, 1));
        s.set_option("PushProtVer", "9.9.9").unwrap();
        assert_eq!(persisted_protocol(&s), crate::protocol::DEVICE_PUSH_VERSION);
    }

    #[test]
    fn nothing_held_writes_nothing_and_never_reads_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let wall = |_: &Connection| -> NaiveDateTime { panic!("time read without a report") };
        assert!(!flush_held_events(&mut s, None, &wall));
    }
}
