//! The event log (`transaction` in the spec) and its real-time upload record.

use super::{Store, StoreError};
use crate::protocol::Record;
use rusqlite::params;

/// An event to log. `time` is the device's local time as the record shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub time: String,
    pub pin: String,
    pub cardno: String,
    pub sitecode: String,
    pub linkid: u32,
    pub eventaddr: u32,
    pub event: u32,
    pub inoutstatus: u32,
    pub verifytype: String,
}

impl NewEvent {
    /// An event with no user, card or verification (door, device and alarm events).
    pub fn plain(time: String, event: u32, eventaddr: u32) -> Self {
        NewEvent {
            time,
            pin: "0".into(),
            cardno: "0".into(),
            sitecode: "0".into(),
            linkid: 0,
            eventaddr,
            event,
            inoutstatus: 0,
            verifytype: "200".into(),
        }
    }
}

/// A logged event with its `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub index: u64,
    pub event: NewEvent,
}

impl EventRecord {
    /// The rtlog record of 10.2, fields in the spec's order.
    pub fn rtlog_record(&self) -> Record {
        let e = &self.event;
        Record::new()
            .with("time", &e.time)
            .with("pin", &e.pin)
            .with("cardno", &e.cardno)
            .with("sitecode", &e.sitecode)
            .with("linkid", e.linkid)
            .with("eventaddr", e.eventaddr)
            .with("event", e.event)
            .with("inoutstatus", e.inoutstatus)
            .with("verifytype", &e.verifytype)
            .with("index", self.index)
    }
}

impl Store {
    /// Logs an event and queues its rtlog upload in one transaction, so the
    /// event exists before anything acts on it and cannot be logged without
    /// being uploaded (design invariant 1). Returns its `index`.
    pub fn append_event(&mut self, event: &NewEvent) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO event_log(time, pin, cardno, sitecode, linkid, eventaddr, event, inoutstatus, verifytype)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                event.time,
                event.pin,
                event.cardno,
                event.sitecode,
                event.linkid,
                event.eventaddr,
                event.event,
                event.inoutstatus,
                event.verifytype
            ],
        )?;
        let index = u64::try_from(tx.last_insert_rowid()).unwrap_or(0);
        let record = EventRecord {
            index,
            event: event.clone(),
        };
        tx.execute(
            "INSERT INTO outbox(channel, body) VALUES ('rtlog', ?1)",
            [record.rtlog_record().to_line()],
        )?;
        tx.commit()?;
        Ok(index)
    }

    /// Events with `index` in `[from, to]`, oldest first, at most `limit`.
    pub fn events_between(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx, time, pin, cardno, sitecode, linkid, eventaddr, event, inoutstatus, verifytype
             FROM event_log WHERE idx >= ?1 AND idx <= ?2 ORDER BY idx LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![from, to, limit], |r| {
            Ok(EventRecord {
                index: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                event: NewEvent {
                    time: r.get(1)?,
                    pin: r.get(2)?,
                    cardno: r.get(3)?,
                    sitecode: r.get(4)?,
                    linkid: r.get(5)?,
                    eventaddr: r.get(6)?,
                    event: r.get(7)?,
                    inoutstatus: r.get(8)?,
                    verifytype: r.get(9)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The highest event index ever assigned (0 when none).
    pub fn max_event_index(&self) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'event_log'",
                [],
                |r| r.get(0),
            )
            .ok();
        Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM event_log", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u32) -> NewEvent {
        NewEvent::plain("2024-01-01 00:00:00".into(), event, 1)
    }

    #[test]
    fn index_is_monotonic_across_reopen_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let first;
        {
            let mut s = Store::open(dir.path()).unwrap();
            first = s.append_event(&ev(200)).unwrap();
            s.append_event(&ev(201)).unwrap();
            s.conn().execute("DELETE FROM event_log", []).unwrap();
        }
        let mut s = Store::open(dir.path()).unwrap();
        let third = s.append_event(&ev(202)).unwrap();
        assert_eq!(third, first + 2);
        assert_eq!(s.max_event_index().unwrap(), third);
    }

    #[test]
    fn appending_queues_the_rtlog_record_in_spec_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let idx = s.append_event(&ev(27)).unwrap();
        let batch = s.outbox_batch(1 << 20).unwrap().unwrap();
        assert_eq!(batch.channel, "rtlog");
        assert_eq!(
            batch.records().next().unwrap(),
            format!("time=2024-01-01 00:00:00\tpin=0\tcardno=0\tsitecode=0\tlinkid=0\teventaddr=1\tevent=27\tinoutstatus=0\tverifytype=200\tindex={idx}")
        );
        let back = s.events_between(0, u64::MAX, 10).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].event, ev(27));
    }
}
