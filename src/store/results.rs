//! Results of executed commands (design invariant 2: stored before reported;
//! a command seen again is answered from here, never executed twice).
//!
//! A command is the same command only when its ID *and* its text are: each
//! result keeps the digest of the text it answers (`CommandLine::text_digest`),
//! and a command whose ID comes back with another text replaces the stored
//! result for that ID.

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
    /// Digest of the command text this result answers
    /// (`CommandLine::text_digest`); empty for results stored by firmware
    /// that kept none (they match no text).
    pub digest: String,
}

impl StoredResult {
    /// The result line of 10.4: `ID=..&Return=..&CMD=..`.
    pub fn to_line(&self) -> String {
        format!(
            "ID={}&Return={}&CMD={}{}",
            self.id, self.ret, self.cmd, self.extra
        )
    }

    /// Whether this result answers exactly this command text.
    pub fn answers(&self, digest: &str) -> bool {
        !self.digest.is_empty() && self.digest == digest
    }
}

/// How many reported results are kept for duplicate detection. Unreported
/// ones are never dropped: they still have to reach the server.
const KEEP_REPORTED: i64 = 20_000;

impl Store {
    pub fn command_result(&self, id: &str) -> Result<Option<StoredResult>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, ret, cmd, extra, reported, digest FROM command_results WHERE id = ?1",
            )?
            .query_row([id], row_to_result)
            .optional()?)
    }

    /// Records that a command is starting, with the result it gets if the
    /// process dies before [`Store::finish_command`] (a crash, a panic under
    /// `panic = "abort"`, a power cut): that result is then reported after
    /// the restart, so no command is run twice and none blocks the queue.
    ///
    /// A result stored for the same ID (a command with another text, or a
    /// revocation applied again) is replaced and will be reported anew.
    /// `synced: false` skips this commit's own fsync, for idempotent
    /// commands (DATA): a power cut that loses the result only makes the
    /// server send the command again, and running it again changes
    /// nothing. The result is still written before it is reported.
    pub fn begin_command(
        &self,
        id: &str,
        digest: &str,
        cmd: &str,
        ret_if_interrupted: i64,
        synced: bool,
    ) -> Result<(), StoreError> {
        let insert = |s: &Store| -> Result<(), StoreError> {
            s.conn
                .prepare_cached(
                    "INSERT INTO command_results(id, ret, cmd, extra, reported, seq, digest)
                     VALUES (?1, ?2, ?3, '', 0,
                             (SELECT COALESCE(MAX(seq), 0) + 1 FROM command_results), ?4)
                     ON CONFLICT(id) DO UPDATE SET ret = excluded.ret, cmd = excluded.cmd,
                         extra = '', reported = 0, seq = excluded.seq, digest = excluded.digest",
                )?
                .execute(params![id, ret_if_interrupted, cmd, digest])?;
            Ok(())
        };
        if synced {
            insert(self)
        } else {
            self.unsynced(insert)
        }
    }

    /// Stores `ret` as the result of command `id` inside `tx`, the
    /// transaction that carries out the command's effect (DATA UPDATE and
    /// DELETE): a process killed after that commit and before
    /// [`Store::finish_command`] reports what took effect, not the fallback
    /// of [`Store::begin_command`]. Nothing happens for an ID without a row.
    pub fn settle_command_in(
        tx: &rusqlite::Transaction<'_>,
        id: &str,
        ret: i64,
    ) -> Result<(), StoreError> {
        tx.prepare_cached("UPDATE command_results SET ret = ?2, extra = '' WHERE id = ?1")?
            .execute(params![id, ret])?;
        Ok(())
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
            "SELECT id, ret, cmd, extra, reported, digest FROM command_results
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
        digest: r.get(5)?,
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
            s.begin_command("5", "d5", "UPGRADE", -12, true).unwrap();
            s.begin_command("6", "d6", "DATA", -12, false).unwrap();
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
    fn results_are_reported_in_order_and_again_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.begin_command("9", "a", "DATA", 0, true).unwrap();
        s.begin_command("3", "b", "FOO", -13, true).unwrap();
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

    #[test]
    fn an_id_with_another_text_replaces_the_stored_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let (old, new) = ("0f3a", "9c1e");
        s.begin_command("2", old, "DATA", -12, false).unwrap();
        s.finish_command("2", 0, "", false).unwrap();
        s.mark_results_reported(&["2".into()]).unwrap();
        let stored = s.command_result("2").unwrap().unwrap();
        assert!(stored.answers(old) && !stored.answers(new));

        s.begin_command("2", new, "DATA", -12, false).unwrap();
        s.finish_command("2", -1003, "", false).unwrap();
        let stored = s.command_result("2").unwrap().unwrap();
        assert!(stored.answers(new) && !stored.answers(old));
        assert!(!stored.reported, "the new result is reported");
        assert_eq!(stored.to_line(), "ID=2&Return=-1003&CMD=DATA");
        assert_eq!(s.unreported_results(10).unwrap().len(), 1);
    }

    #[test]
    fn a_result_without_a_digest_answers_no_text() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        // As firmware before schema 6 stored it.
        s.conn
            .execute(
                "INSERT INTO command_results(id, ret, cmd, extra, reported, seq)
                 VALUES ('7', 0, 'DATA', '', 1, 1)",
                [],
            )
            .unwrap();
        let stored = s.command_result("7").unwrap().unwrap();
        assert_eq!(stored.digest, "");
        assert!(!stored.answers(""));
    }

    #[test]
    fn reported_results_are_bounded_and_unreported_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.begin_command("kept", "k", "DATA", 0, false).unwrap();
        let total = KEEP_REPORTED + 50;
        let tx = s.conn.unchecked_transaction().unwrap();
        for i in 0..total {
            tx.execute(
                "INSERT INTO command_results(id, ret, cmd, reported, seq, digest)
                 VALUES (?1, 0, 'DATA', 1, ?2, 'x')",
                params![format!("r{i}"), i + 2],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        s.mark_results_reported(&[]).unwrap();
        let count: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM command_results", [], |r| r.get(0))
            .unwrap();
        assert!(count <= KEEP_REPORTED + 2, "{count}");
        assert!(s.command_result("kept").unwrap().is_some());
        assert!(
            s.command_result("r0").unwrap().is_none(),
            "oldest forgotten"
        );
        assert!(s
            .command_result(&format!("r{}", total - 1))
            .unwrap()
            .is_some());
    }
}
