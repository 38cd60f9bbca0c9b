//! The event log (`transaction` in the spec) and its real-time upload record.

use super::{Store, StoreError};
use crate::protocol::Record;
use rusqlite::{params, OptionalExtension};

/// Events the log keeps, announced as ~MaxAttLogCount at registration.
pub const EVENT_LOG_CAP: u64 = 1_000_000;

/// Most event rows one [`Store::prune_event_log_to`] call deletes.
pub const PRUNE_BATCH: i64 = 10_000;

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
    /// being uploaded (design invariant 1). A time earlier than the last
    /// event's is noted in the error log. Returns its `index`.
    pub fn append_event(&mut self, event: &NewEvent) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let index = insert_event(&tx, event)?;
        tx.commit()?;
        Ok(index)
    }

    /// Logs several events, in order, in one transaction: all or none.
    pub fn append_events<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a NewEvent>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for event in events {
            insert_event(&tx, event)?;
        }
        tx.commit()?;
        Ok(())
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

    /// [`Store::prune_event_log_to`] the cap registered as ~MaxAttLogCount.
    pub fn prune_event_log(&self) -> Result<u64, StoreError> {
        let cap = self
            .option("~MaxAttLogCount")?
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(EVENT_LOG_CAP);
        self.prune_event_log_to(cap)
    }

    /// Keeps the event log near `cap` rows by deleting the oldest events
    /// the server has acknowledged, never one still waiting for upload: an
    /// unsent event outlives the cap. Deletes at most [`PRUNE_BATCH`] rows a
    /// call, so an upload is not stalled by one large write. Returns how
    /// many went.
    pub fn prune_event_log_to(&self, cap: u64) -> Result<u64, StoreError> {
        let (min, max): (Option<i64>, Option<i64>) =
            self.conn
                .query_row("SELECT MIN(idx), MAX(idx) FROM event_log", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let (Some(min), Some(max)) = (min, max) else {
            return Ok(0);
        };
        // Indexes only grow and are rarely deleted, so the span bounds the
        // count without counting a million rows.
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        if max - min < cap {
            return Ok(0);
        }
        let keep_from = max.saturating_sub(cap) + 1;
        let first_unsent = self.first_unsent_event()?.unwrap_or(max + 1);
        let below = keep_from.min(first_unsent).min(min + PRUNE_BATCH);
        let n = self.unsynced(|s| {
            Ok(s.conn
                .prepare_cached("DELETE FROM event_log WHERE idx < ?1")?
                .execute([below])?)
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The index of the oldest event whose rtlog record the server has not
    /// acknowledged. Event rows and their outbox rows are written in one
    /// transaction, so outbox order is index order.
    fn first_unsent_event(&self) -> Result<Option<i64>, StoreError> {
        let acked = self.outbox_acked_through()?;
        let body: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT body FROM outbox WHERE id > ?1 AND channel = 'rtlog' ORDER BY id LIMIT 1",
            )?
            .query_row([acked], |r| r.get(0))
            .optional()?;
        Ok(body.and_then(|b| {
            b.rsplit('\t')
                .find_map(|f| f.strip_prefix("index="))
                .and_then(|i| i.parse().ok())
        }))
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM event_log", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// The event row and its rtlog outbox row; the caller commits.
fn insert_event(tx: &rusqlite::Transaction<'_>, event: &NewEvent) -> Result<u64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO event_log(time, pin, cardno, sitecode, linkid, eventaddr, event, inoutstatus, verifytype)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        event.time,
        event.pin,
        event.cardno,
        event.sitecode,
        event.linkid,
        event.eventaddr,
        event.event,
        event.inoutstatus,
        event.verifytype
    ])?;
    let index = u64::try_from(tx.last_insert_rowid()).unwrap_or(0);
    super::errorlog::note_time_order(tx, tx.last_insert_rowid(), &event.time, event.event)?;
    let record = EventRecord {
        index,
        event: event.clone(),
    };
    tx.prepare_cached("INSERT INTO outbox(channel, body) VALUES ('rtlog', ?1)")?
        .execute([record.rtlog_record().to_line()])?;
    Ok(index)
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
    fn the_cap_prunes_acknowledged_events_never_unsent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            s.append_event(&ev(i)).unwrap();
        }
        // The server took the first 6.
        let mut batch = s.outbox_batch(1 << 20).unwrap().unwrap();
        assert_eq!(batch.count, 10);
        batch.last_id = batch.first_id + 5;
        s.outbox_remove(&batch).unwrap();
        // Under the cap: nothing goes.
        assert_eq!(s.prune_event_log_to(10).unwrap(), 0);
        // A cap of 3 would keep 8..10, but 7..10 are unsent: only 1..6 go.
        assert_eq!(s.prune_event_log_to(3).unwrap(), 6);
        let left: Vec<u64> = s
            .events_between(0, u64::MAX, 100)
            .unwrap()
            .iter()
            .map(|e| e.index)
            .collect();
        assert_eq!(left, vec![7, 8, 9, 10]);
        // Everything acknowledged: the cap holds.
        let batch = s.outbox_batch(1 << 20).unwrap().unwrap();
        s.outbox_remove(&batch).unwrap();
        assert_eq!(s.prune_event_log_to(3).unwrap(), 1);
        assert_eq!(s.event_count().unwrap(), 3);
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
