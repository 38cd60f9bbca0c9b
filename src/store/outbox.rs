//! The outbox: uploads waiting for the server's 200, oldest first.

use super::{Store, StoreError};
use crate::protocol::Record;
use rusqlite::params;

/// Consecutive outbox rows of one channel that go in one request, already
/// joined: one string, not a row each, since a batch can hold thousands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBatch {
    pub channel: String,
    /// The request body: the records joined by LF.
    pub body: String,
    pub first_id: i64,
    pub last_id: i64,
    pub count: usize,
}

impl OutboxBatch {
    /// The records of the batch.
    pub fn records(&self) -> impl Iterator<Item = &str> {
        self.body.split('\n')
    }
}

/// How many rows one batch query looks at; bounds memory on a huge backlog.
const SCAN_ROWS: i64 = 10_000;

/// The option key holding the highest outbox id the server has accepted.
/// Rows up to it are deleted in bulk later (see [`Store::outbox_compact`]),
/// so acknowledging a batch is one tiny write instead of a large delete.
pub const ACKED_THROUGH_KEY: &str = "~OutboxAckedThrough";

/// Acknowledged rows kept, while an upload is still going, before a
/// compaction is due. Deleting them is a large write (about 50 ms per
/// 50,000 rows on a PC) that would stall the upload, and they take no space
/// the backlog did not already take, so they normally wait until the outbox
/// is drained; this bound only matters when events arrive as fast as they
/// leave and the upload never ends.
const COMPACT_AFTER_ROWS: i64 = 250_000;

impl Store {
    /// Queues one record for upload on `channel`.
    pub fn push_outbox(&self, channel: &str, body: &str) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO outbox(channel, body) VALUES (?1, ?2)",
            params![channel, body],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Replaces any pending rtstate record with this one: only the latest
    /// door state matters. The delete goes through the `outbox_rtstate`
    /// partial index (its WHERE must match the index's literally), so it
    /// costs the same with an empty outbox as with a large backlog.
    pub fn replace_rtstate(&mut self, body: &str) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("DELETE FROM outbox WHERE channel = 'rtstate'")?
            .execute([])?;
        tx.prepare_cached("INSERT INTO outbox(channel, body) VALUES ('rtstate', ?1)")?
            .execute([body])?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// The highest outbox id the server has accepted (0 when none).
    pub fn outbox_acked_through(&self) -> Result<i64, StoreError> {
        if let Some(v) = self.acked_through.get() {
            return Ok(v);
        }
        let v = self
            .option(ACKED_THROUGH_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.acked_through.set(Some(v));
        Ok(v)
    }

    /// The oldest unacknowledged rows, as long as they share the first row's
    /// channel and their bodies fit in `max_bytes` (at least one row is
    /// always returned).
    pub fn outbox_batch(&self, max_bytes: usize) -> Result<Option<OutboxBatch>, StoreError> {
        self.outbox_batch_limited(max_bytes, &|_| usize::MAX)
    }

    /// [`Store::outbox_batch`] with at most `max_records(channel)` rows: one
    /// per request for channels whose servers may read only the first
    /// record of a body.
    pub fn outbox_batch_limited(
        &self,
        max_bytes: usize,
        max_records: &dyn Fn(&str) -> usize,
    ) -> Result<Option<OutboxBatch>, StoreError> {
        Ok(self
            .outbox_batches(max_bytes, max_records, 1)?
            .into_iter()
            .next())
    }

    /// The next `max_batches` batches of [`Store::outbox_batch_limited`] in
    /// one query, as long as all of them together fit in `max_bytes`: at
    /// one event per request, a query per event cost a quarter of its time.
    /// Taking several ahead is safe because rows are only appended; the one
    /// row that can be replaced meanwhile, rtstate, is then sent before its
    /// newer state.
    pub fn outbox_batches(
        &self,
        max_bytes: usize,
        max_records: &dyn Fn(&str) -> usize,
        max_batches: usize,
    ) -> Result<Vec<OutboxBatch>, StoreError> {
        let acked = self.outbox_acked_through()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, channel, body FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![acked, SCAN_ROWS])?;
        let mut batches: Vec<OutboxBatch> = Vec::new();
        let mut limit = usize::MAX;
        let mut total = 0usize;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let text = |i: usize| -> Result<&str, StoreError> {
                row.get_ref(i)?.as_str().map_err(|e| {
                    StoreError::Sql(rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    ))
                })
            };
            let channel = text(1)?;
            let body = text(2)?;
            let joins = batches.last().is_some_and(|b| {
                b.count < limit
                    && b.channel == channel
                    && b.body.len() + 1 + body.len() <= max_bytes
            });
            if !batches.is_empty() && total + 1 + body.len() > max_bytes {
                break;
            }
            if joins {
                let b = batches.last_mut().expect("a batch to join");
                b.body.push('\n');
                b.body.push_str(body);
                b.last_id = id;
                b.count += 1;
                total += 1 + body.len();
                continue;
            }
            if batches.len() == max_batches {
                break;
            }
            limit = max_records(channel).max(1);
            let capacity = if limit == 1 { body.len() } else { max_bytes };
            let mut text = String::with_capacity(capacity.min(4 << 20));
            text.push_str(body);
            total += if batches.is_empty() { 0 } else { 1 } + body.len();
            batches.push(OutboxBatch {
                channel: channel.to_owned(),
                body: text,
                first_id: id,
                last_id: id,
                count: 1,
            });
        }
        Ok(batches)
    }

    /// Records that the server accepted a batch. Batches are taken oldest
    /// first without gaps, so every row up to its last id has been accepted.
    ///
    /// This commit is not synced to disk on its own: losing it in a power
    /// cut only means the batch is sent again, with the same indexes, which
    /// is harmless; the next synced commit makes it durable anyway (WAL keeps
    /// commits in order). Event inserts stay fully synced.
    ///
    /// The acknowledgement is taken in memory before it is written: should
    /// the write fail (disk full, read-only), the error is returned but this
    /// process still never sends the batch again, and the watermark is
    /// written with the next acknowledgement that can be.
    pub fn outbox_remove(&self, batch: &OutboxBatch) -> Result<(), StoreError> {
        self.outbox_ack(batch)?;
        self.outbox_persist_ack()
    }

    /// [`Store::outbox_remove`] in memory only: this connection takes the
    /// batch as accepted at once, and [`Store::outbox_persist_ack`] writes
    /// the watermark later. At one event per request, writing it for every
    /// event was a third of the per-event cost; a crash before the write
    /// only sends the batches since again, with the same indexes, as a
    /// lost unsynced write already could.
    pub fn outbox_ack(&self, batch: &OutboxBatch) -> Result<(), StoreError> {
        if batch.last_id > self.outbox_acked_through()? {
            self.acked_through.set(Some(batch.last_id));
            self.ack_unwritten.set(true);
        }
        Ok(())
    }

    /// Writes the watermark of [`Store::outbox_ack`], if it moved.
    pub fn outbox_persist_ack(&self) -> Result<(), StoreError> {
        if !self.ack_unwritten.get() {
            return Ok(());
        }
        let last = self.outbox_acked_through()?;
        self.unsynced(|s| s.set_option(ACKED_THROUGH_KEY, &last.to_string()))?;
        self.ack_unwritten.set(false);
        Ok(())
    }

    /// Deletes acknowledged rows when enough have gathered (`force`: any).
    /// The watermark is written first, so no row is gone while the written
    /// watermark still says it is due.
    pub fn outbox_compact(&self, force: bool) -> Result<(), StoreError> {
        self.outbox_persist_ack()?;
        let acked = self.outbox_acked_through()?;
        if !force {
            let oldest: Option<i64> = self
                .conn
                .prepare_cached("SELECT MIN(id) FROM outbox")?
                .query_row([], |r| r.get(0))?;
            // Nothing to delete, or too little to be worth a large write.
            let due = oldest.is_some_and(|o| o <= acked - COMPACT_AFTER_ROWS);
            if !due {
                return Ok(());
            }
        }
        self.unsynced(|s| {
            s.conn
                .prepare_cached("DELETE FROM outbox WHERE id <= ?1")?
                .execute([acked])?;
            Ok(())
        })
    }

    /// Deletes the rtlog rows not yet acknowledged whose event index is at
    /// most `last_index`: their records reached the server another way (DATA
    /// QUERY filter=NewRecord), so the upload must not send them again.
    /// Acknowledged rows are left to compaction. Returns the rows deleted.
    pub fn outbox_drop_rtlog_through(&self, last_index: i64) -> Result<usize, StoreError> {
        let acked = self.outbox_acked_through()?;
        let mut ids = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, body FROM outbox WHERE channel = 'rtlog' AND id > ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([acked])?;
            while let Some(row) = rows.next()? {
                let body: String = row.get(1)?;
                let index = Record::parse(&body)
                    .ok()
                    .and_then(|r| r.get("index").and_then(|i| i.trim().parse::<i64>().ok()));
                if index.is_some_and(|i| i <= last_index) {
                    ids.push(row.get::<_, i64>(0)?);
                }
            }
        }
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in &ids {
                del.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(ids.len())
    }

    /// Rows not yet accepted by the server.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let acked = self.outbox_acked_through()?;
        let n: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM outbox WHERE id > ?1", [acked], |r| {
                    r.get(0)
                })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_rows_wait_for_the_end_of_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            s.push_outbox("rtlog", &format!("a={i}")).unwrap();
        }
        let rows = |s: &Store| -> i64 {
            s.conn
                .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
                .unwrap()
        };
        let b = s.outbox_batch(1000).unwrap().unwrap();
        s.outbox_remove(&b).unwrap();
        assert_eq!(s.outbox_len().unwrap(), 0);
        // Mid-upload: a handful of acknowledged rows is not worth a write.
        s.outbox_compact(false).unwrap();
        assert_eq!(rows(&s), 10);
        // Upload finished: they go.
        s.outbox_compact(true).unwrap();
        assert_eq!(rows(&s), 0);
    }

    #[test]
    fn an_acknowledgement_that_cannot_be_written_still_moves_the_upload_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.push_outbox("rtlog", "a=1").unwrap();
        s.push_outbox("rtstate", "s=1").unwrap();
        let first = s.outbox_batch(1000).unwrap().unwrap();
        s.conn.pragma_update(None, "query_only", true).unwrap();
        assert!(s.outbox_remove(&first).is_err());
        // Not offered again: the next batch is the next channel's.
        let next = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(next.channel, "rtstate");
        s.conn.pragma_update(None, "query_only", false).unwrap();
        s.outbox_remove(&next).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.outbox_len().unwrap(), 0, "the later write covers both");
    }

    #[test]
    fn replacing_rtstate_does_not_scan_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let plan: Vec<String> = s
            .conn
            .prepare("EXPLAIN QUERY PLAN DELETE FROM outbox WHERE channel = 'rtstate'")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("outbox_rtstate")),
            "{plan:?}"
        );
    }

    #[test]
    fn batches_follow_channel_runs_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.push_outbox("rtlog", "a=1").unwrap();
        s.push_outbox("rtlog", "a=2").unwrap();
        s.push_outbox("rtstate", "s=1").unwrap();
        s.push_outbox("rtlog", "a=3").unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!((b.channel.as_str(), b.body.as_str()), ("rtlog", "a=1\na=2"));
        // A tiny limit still yields one row.
        let b1 = s.outbox_batch(1).unwrap().unwrap();
        assert_eq!(b1.count, 1);
        s.outbox_remove(&b).unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(b.channel, "rtstate");
        s.replace_rtstate("s=2").unwrap();
        s.outbox_remove(&s.outbox_batch(1000).unwrap().unwrap())
            .unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(b.body, "s=2");
        s.outbox_remove(&b).unwrap();
        assert_eq!(s.outbox_len().unwrap(), 0);
    }

    #[test]
    fn an_ack_in_memory_is_written_later_and_lost_only_to_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            for i in 1..=3 {
                s.push_outbox("rtlog", &format!("a={i}")).unwrap();
            }
            let one = |_: &str| 1;
            let b = s.outbox_batch_limited(1000, &one).unwrap().unwrap();
            s.outbox_ack(&b).unwrap();
            s.outbox_persist_ack().unwrap();
            let b = s.outbox_batch_limited(1000, &one).unwrap().unwrap();
            assert_eq!(b.body, "a=2", "this connection goes on at once");
            s.outbox_ack(&b).unwrap();
            // The process dies before the second ack is written.
        }
        let s = Store::open(dir.path()).unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(b.body, "a=2\na=3", "sent again, never skipped");
    }

    #[test]
    fn several_batches_come_from_one_query_within_the_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 1..=5 {
            s.push_outbox("rtlog", &format!("a={i}")).unwrap();
        }
        s.push_outbox("rtstate", "s=1").unwrap();
        let one = |c: &str| if c == "rtlog" { 1 } else { usize::MAX };
        let bodies = |v: Vec<OutboxBatch>| v.into_iter().map(|b| b.body).collect::<Vec<_>>();
        assert_eq!(
            bodies(s.outbox_batches(1000, &one, 3).unwrap()),
            ["a=1", "a=2", "a=3"]
        );
        // 10 bytes hold "a=1" and "a=2" (with a separator), not a third.
        assert_eq!(
            bodies(s.outbox_batches(10, &one, 10).unwrap()),
            ["a=1", "a=2"]
        );
        assert_eq!(
            bodies(s.outbox_batches(1000, &one, 10).unwrap()),
            ["a=1", "a=2", "a=3", "a=4", "a=5", "s=1"]
        );
        let all = |_: &str| usize::MAX;
        assert_eq!(
            bodies(s.outbox_batches(1000, &all, 10).unwrap()),
            ["a=1\na=2\na=3\na=4\na=5", "s=1"]
        );
    }

    #[test]
    fn a_channel_can_be_limited_to_one_record_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 1..=3 {
            s.push_outbox("rtlog", &format!("a={i}")).unwrap();
        }
        s.push_outbox("tabledata/user", "user pin=1").unwrap();
        s.push_outbox("tabledata/user", "user pin=2").unwrap();
        let one_rtlog = |c: &str| if c == "rtlog" { 1 } else { usize::MAX };
        let mut bodies = Vec::new();
        while let Some(b) = s.outbox_batch_limited(1000, &one_rtlog).unwrap() {
            bodies.push((b.count, b.body.clone()));
            s.outbox_remove(&b).unwrap();
        }
        assert_eq!(
            bodies,
            [
                (1, "a=1".to_string()),
                (1, "a=2".to_string()),
                (1, "a=3".to_string()),
                (2, "user pin=1\nuser pin=2".to_string()),
            ]
        );
    }
}
