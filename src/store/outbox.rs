//! The outbox: uploads waiting for the server's 200, oldest first.

use super::{Store, StoreError};
use rusqlite::params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub body: String,
}

/// Consecutive outbox rows of one channel that go in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBatch {
    pub channel: String,
    pub items: Vec<OutboxItem>,
}

impl OutboxBatch {
    /// The request body: records joined by LF.
    pub fn body(&self) -> String {
        let mut out = String::with_capacity(self.items.iter().map(|i| i.body.len() + 1).sum());
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                out.push('\n');
            }
            out.push_str(&item.body);
        }
        out
    }

    pub fn last_id(&self) -> i64 {
        self.items.last().map_or(0, |i| i.id)
    }
}

/// How many rows one batch query looks at; bounds memory on a huge backlog.
const SCAN_ROWS: i64 = 10_000;

impl Store {
    /// Queues one record for upload on `channel`.
    pub fn push_outbox(&self, channel: &str, body: &str) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO outbox(channel, body) VALUES (?1, ?2)",
            params![channel, body],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Replaces any pending record of `channel` with this one (for state
    /// snapshots such as rtstate, where only the latest matters).
    pub fn replace_outbox(&mut self, channel: &str, body: &str) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM outbox WHERE channel = ?1", [channel])?;
        tx.execute(
            "INSERT INTO outbox(channel, body) VALUES (?1, ?2)",
            params![channel, body],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// The oldest rows, as long as they share the first row's channel and
    /// their bodies fit in `max_bytes` (at least one row is always returned).
    pub fn outbox_batch(&self, max_bytes: usize) -> Result<Option<OutboxBatch>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, channel, body FROM outbox ORDER BY id LIMIT ?1")?;
        let mut rows = stmt.query([SCAN_ROWS])?;
        let mut batch: Option<OutboxBatch> = None;
        let mut size = 0usize;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let channel: String = row.get(1)?;
            let body: String = row.get(2)?;
            match &mut batch {
                None => {
                    size = body.len();
                    batch = Some(OutboxBatch {
                        channel,
                        items: vec![OutboxItem { id, body }],
                    });
                }
                Some(b) => {
                    if b.channel != channel || size + 1 + body.len() > max_bytes {
                        break;
                    }
                    size += 1 + body.len();
                    b.items.push(OutboxItem { id, body });
                }
            }
        }
        Ok(batch)
    }

    /// Removes the rows of an accepted batch.
    ///
    /// This commit is not synced to disk on its own: losing it in a power
    /// cut only means the batch is sent again, with the same indexes, which
    /// is harmless; the next synced commit makes it durable anyway (WAL keeps
    /// commits in order). Event inserts stay fully synced.
    pub fn outbox_remove(&self, batch: &OutboxBatch) -> Result<(), StoreError> {
        let first = batch.items.first().map_or(0, |i| i.id);
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = self.conn.execute(
            "DELETE FROM outbox WHERE id >= ?1 AND id <= ?2 AND channel = ?3",
            params![first, batch.last_id(), batch.channel],
        );
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        result?;
        Ok(())
    }

    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_channel_runs_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.push_outbox("rtlog", "a=1").unwrap();
        s.push_outbox("rtlog", "a=2").unwrap();
        s.push_outbox("rtstate", "s=1").unwrap();
        s.push_outbox("rtlog", "a=3").unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(
            (b.channel.as_str(), b.body()),
            ("rtlog", "a=1\na=2".to_string())
        );
        // A tiny limit still yields one row.
        let b1 = s.outbox_batch(1).unwrap().unwrap();
        assert_eq!(b1.items.len(), 1);
        s.outbox_remove(&b).unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(b.channel, "rtstate");
        s.replace_outbox("rtstate", "s=2").unwrap();
        s.outbox_remove(&s.outbox_batch(1000).unwrap().unwrap())
            .unwrap();
        let b = s.outbox_batch(1000).unwrap().unwrap();
        assert_eq!(b.body(), "s=2");
        s.outbox_remove(&b).unwrap();
        assert_eq!(s.outbox_len().unwrap(), 0);
    }
}
