//! Results of executed commands (design invariant 2: stored before reported;
//! an ID seen again is answered from here, never executed twice).

use super::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    pub id: String,
    pub ret: i64,
    pub cmd: String,
    /// Text appended after `CMD=<cmd>` (ACCOUNT adds `&transaction&...`).
    pub extra: String,
    pub reported: bool,
}

impl StoredResult {
    /// The result line of 10.4: `ID=..&Return=..&CMD=..`.
    pub fn to_line(&self) -> String {
        format!(
            "ID={}&Return={}&CMD={}{}",
            self.id, self.ret, self.cmd, self.extra
        )
    }
}

/// How many reported results are kept for duplicate detection.
const KEEP_REPORTED: i64 = 20_000;

impl Store {
    pub fn command_result(&self, id: &str) -> Result<Option<StoredResult>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, ret, cmd, extra, reported FROM command_results WHERE id = ?1",
            )?
            .query_row([id], row_to_result)
            .optional()?)
    }

    /// Stores a result (unreported). An existing result for the ID is kept.
    pub fn store_command_result(
        &self,
        id: &str,
        ret: i64,
        cmd: &str,
        extra: &str,
    ) -> Result<(), StoreError> {
        self.store_command_result_synced(id, ret, cmd, extra, true)
    }

    /// Stores a result; `synced: false` skips this commit's own fsync, for
    /// idempotent commands (DATA): a power cut that loses the result only
    /// makes the server send the command again, and running it again
    /// changes nothing. The result is still written before it is reported.
    pub fn store_command_result_synced(
        &self,
        id: &str,
        ret: i64,
        cmd: &str,
        extra: &str,
        synced: bool,
    ) -> Result<(), StoreError> {
        if synced {
            self.insert_command_result(id, ret, cmd, extra)
        } else {
            self.unsynced(|s| s.insert_command_result(id, ret, cmd, extra))
        }
    }

    fn insert_command_result(
        &self,
        id: &str,
        ret: i64,
        cmd: &str,
        extra: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO command_results(id, ret, cmd, extra, reported, seq)
                 VALUES (?1, ?2, ?3, ?4, 0, (SELECT COALESCE(MAX(seq), 0) + 1 FROM command_results))",
            )?
            .execute(params![id, ret, cmd, extra])?;
        Ok(())
    }

    /// Records that a command is starting, with the result it gets if the
    /// process dies before [`Store::finish_command`] (a crash, a panic under
    /// `panic = "abort"`, a power cut): that result is then reported after
    /// the restart, so no command is run twice and none blocks the queue.
    pub fn begin_command(
        &self,
        id: &str,
        cmd: &str,
        ret_if_interrupted: i64,
        synced: bool,
    ) -> Result<(), StoreError> {
        self.store_command_result_synced(id, ret_if_interrupted, cmd, "", synced)
    }

    /// Records the real result of a command begun with [`Store::begin_command`].
    pub fn finish_command(
        &self,
        id: &str,
        ret: i64,
        extra: &str,
        synced: bool,
    ) -> Result<(), StoreError> {
        let update = |s: &Store| -> Result<(), StoreError> {
            s.conn
                .prepare_cached("UPDATE command_results SET ret = ?2, extra = ?3 WHERE id = ?1")?
                .execute(params![id, ret, extra])?;
            Ok(())
        };
        if synced {
            update(self)
        } else {
            self.unsynced(update)
        }
    }

    /// Marks a result to be reported again (its command ID was re-sent).
    pub fn mark_result_unreported(&self, id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE command_results SET reported = 0,
                    seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM command_results)
             WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    pub fn unreported_results(&self, limit: usize) -> Result<Vec<StoredResult>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, ret, cmd, extra, reported FROM command_results
             WHERE reported = 0 ORDER BY seq LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], row_to_result)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks results as reported. This commit is not synced on its own: a
    /// power cut that loses it only makes the device report the results
    /// again, which servers take as a repeat.
    pub fn mark_results_reported(&mut self, ids: &[String]) -> Result<(), StoreError> {
        self.unsynced(|s| s.mark_results_reported_inner(ids))
    }

    fn mark_results_reported_inner(&self, ids: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE command_results SET reported = 1 WHERE id = ?1")?;
            for id in ids {
                stmt.execute([id])?;
            }
            // Keep the table bounded: forget the oldest reported results.
            tx.prepare_cached(
                "DELETE FROM command_results WHERE reported = 1 AND seq <
                 (SELECT COALESCE(MAX(seq), 0) FROM command_results) - ?1",
            )?
            .execute([KEEP_REPORTED])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn row_to_result(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResult> {
    Ok(StoredResult {
        id: r.get(0)?,
        ret: r.get(1)?,
        cmd: r.get(2)?,
        extra: r.get(3)?,
        reported: r.get::<_, i64>(4)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_command_keeps_its_fallback_result() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.begin_command("5", "UPGRADE", -12, true).unwrap();
            s.begin_command("6", "DATA", -12, false).unwrap();
            s.finish_command("6", 3, "", false).unwrap();
            // The process dies here, with command 5 still running.
        }
        let s = Store::open(dir.path()).unwrap();
        let lines: Vec<_> = s
            .unreported_results(10)
            .unwrap()
            .iter()
            .map(StoredResult::to_line)
            .collect();
        assert_eq!(
            lines,
            ["ID=5&Return=-12&CMD=UPGRADE", "ID=6&Return=3&CMD=DATA"]
        );
    }

    #[test]
    fn results_are_stored_once_and_reported_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.store_command_result("9", 0, "DATA", "").unwrap();
        s.store_command_result("3", -13, "FOO", "").unwrap();
        s.store_command_result("9", -1, "DATA", "").unwrap(); // ignored: first wins
        let pending = s.unreported_results(10).unwrap();
        let lines: Vec<_> = pending.iter().map(StoredResult::to_line).collect();
        assert_eq!(lines, ["ID=9&Return=0&CMD=DATA", "ID=3&Return=-13&CMD=FOO"]);
        s.mark_results_reported(&["9".into()]).unwrap();
        assert_eq!(s.unreported_results(10).unwrap().len(), 1);
        assert!(s.command_result("9").unwrap().unwrap().reported);
        s.mark_result_unreported("9").unwrap();
        let ids: Vec<_> = s
            .unreported_results(10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["3", "9"]);
    }
}
