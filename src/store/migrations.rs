//! Versioned, forward-only schema migrations. `PRAGMA user_version` holds the
//! number of the last applied step; each step runs in its own transaction.
//!
//! A rollback (upgrade trial failed) starts the previous firmware on the
//! same database, so a newer schema must not strand it:
//! - an index that only speeds queries up goes in [`INDEXES`], created at
//!   every open without moving the version (SQLite maintains an index the
//!   older firmware does not know about);
//! - a numbered step says in `readable_by` the oldest schema version whose
//!   firmware can still use the database after it: the step's previous
//!   version when it only adds (tables, defaulted columns), its own version
//!   when it changes what older code relies on. The highest `readable_by`
//!   applied is kept in the options table, and a firmware that finds a newer
//!   schema opens it when that mark is within what it knows.

use super::StoreError;
use rusqlite::Connection;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
    /// The oldest schema version that can use the database after this step.
    readable_by: i64,
}

/// Where the highest `readable_by` applied so far is kept.
pub(super) const READABLE_BY_KEY: &str = "~SchemaReadableBy";

/// Indexes created (if missing) at every open; see the module comment.
const INDEXES: &[&str] = &[
    // Each rtstate snapshot replaces the pending one. Without this index
    // that delete scanned the whole outbox: with a 100,000-event backlog, a
    // full scan on every door state change, under the engine's lock. Only
    // rtstate rows are indexed, so logging events pays nothing for it.
    "CREATE INDEX IF NOT EXISTS outbox_rtstate ON outbox(id) WHERE channel = 'rtstate'",
];

/// Append new steps at the end; never edit or reorder a released one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        readable_by: 1,
        name: "core",
        sql: include_str!("migrations/0001_core.sql"),
    },
    Migration {
        version: 2,
        readable_by: 2,
        name: "data tables",
        sql: include_str!("migrations/0002_tables.sql"),
    },
    Migration {
        version: 3,
        readable_by: 3,
        name: "engine state",
        sql: include_str!("migrations/0003_engine.sql"),
    },
    Migration {
        version: 4,
        readable_by: 4,
        name: "engine apb zones",
        sql: include_str!("migrations/0004_engine_apb_zones.sql"),
    },
    Migration {
        version: 5,
        readable_by: 5,
        name: "engine indexes",
        sql: include_str!("migrations/0005_engine_indexes.sql"),
    },
    // Only adds defaulted columns: firmware of schema 5 still runs on it.
    Migration {
        version: 6,
        readable_by: 5,
        name: "command identity and C3 user fields",
        sql: include_str!("migrations/0006_provisioning.sql"),
    },
];

pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = latest_version();
    if current > known {
        let readable_by: Option<i64> = conn
            .query_row(
                "SELECT value FROM options WHERE key = ?1",
                [READABLE_BY_KEY],
                |r| r.get::<_, String>(0),
            )
            .ok()
            .and_then(|v| v.parse().ok());
        if readable_by.is_none_or(|r| r > known) {
            return Err(StoreError::SchemaTooNew {
                found: current,
                known,
            });
        }
        log::warn!(
            "database schema {current} is newer than this firmware's {known} but readable by it \
             (a rollback after an upgrade); using it as it is"
        );
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let step = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO options(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value =
                     MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                rusqlite::params![READABLE_BY_KEY, m.readable_by],
            )?;
            tx.pragma_update(None, "user_version", m.version)?;
            tx.commit()
        };
        step(conn).map_err(|source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        })?;
        log::info!("database migrated to schema {} ({})", m.version, m.name);
    }
    for sql in INDEXES {
        conn.execute_batch(sql)
            .map_err(|source| StoreError::Migration {
                version: current.max(known),
                name: "indexes",
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_schemas_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let mark = |conn: &Connection, v: i64| {
            conn.execute(
                "UPDATE options SET value = ?2 WHERE key = ?1",
                rusqlite::params![READABLE_BY_KEY, v.to_string()],
            )
            .unwrap()
        };
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        // A newer schema that needs the newer firmware is refused...
        mark(&conn, latest_version() + 1);
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
        // ...one that only added to what this firmware knows is used as is.
        mark(&conn, latest_version());
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest_version() + 1);
        // Without the mark (written by firmware before it existed) it is refused.
        conn.execute("DELETE FROM options WHERE key = ?1", [READABLE_BY_KEY])
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }

    #[test]
    fn readable_by_is_the_highest_step_applied_and_indexes_exist() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let mark: String = conn
            .query_row(
                "SELECT value FROM options WHERE key = ?1",
                [READABLE_BY_KEY],
                |r| r.get(0),
            )
            .unwrap();
        let highest = MIGRATIONS.iter().map(|m| m.readable_by).max().unwrap();
        assert_eq!(mark, highest.to_string());
        let has_index: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'outbox_rtstate'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n == 1),
            )
            .unwrap();
        assert!(has_index);
    }
}
