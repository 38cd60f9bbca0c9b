//! The outbox: uploads waiting for the server's 200, oldest first.

use super::{Store, StoreError};
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
        let acked = self.outbox_acked_through()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, channel, body FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![acked, SCAN_ROWS])?;
        let mut batch: Option<OutboxBatch> = None;
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
            match &mut batch {
                None => {
                    let mut text = String::with_capacity(max_bytes.min(4 << 20));
                    text.push_str(body);
                    batch = Some(OutboxBatch {
                        channel: channel.to_owned(),
                        body: text,
                        first_id: id,
                        last_id: id,
                        count: 1,
                    });
                }
                Some(b) => {
                    if b.channel != channel || b.body.len() + 1 + body.len() > max_bytes {
                        break;
                    }
                    b.body.push('\n');
                    b.body.push_str(body);
                    b.last_id = id;
                    b.count += 1;
                }
            }
        }
        Ok(batch)
    }

    /// Records that the server accepted a batch. Batches are taken oldest
    /// first without gaps, so every row up to its last id has been accepted.
    ///
    /// This commit is not synced to disk on its own: losing it in a power
    /// cut only means the batch is sent again, with the same indexes, which
    /// is harmless; the next synced commit makes it durable anyway (WAL keeps
    /// commits in order). Event inserts stay fully synced.
    pub fn outbox_remove(&self, batch: &OutboxBatch) -> Result<(), StoreError> {
        let last = batch.last_id;
        if last <= self.outbox_acked_through()? {
            return Ok(());
        }
        self.unsynced(|s| s.set_option(ACKED_THROUGH_KEY, &last.to_string()))?;
        self.acked_through.set(Some(last));
        Ok(())
    }

    /// Deletes acknowledged rows when enough have gathered (`force`: any).
    pub fn outbox_compact(&self, force: bool) -> Result<(), StoreError> {
        let acked = self.outbox_acked_through()?;
        if !force {
            let oldest: Option<i64> =
                self.conn
                    .query_row("SELECT MIN(id) FROM outbox", [], |r| r.get(0))?;
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
}
