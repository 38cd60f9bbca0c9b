//! SQLite storage: one function opens the database (pragmas, migrations), and
//! typed accessors for options, the event log, the outbox and command results.
//!
//! Every thread opens its own [`Store`]; WAL lets the engine read rules while
//! the session writes. Table and field names never come from outside: all SQL
//! here is fixed text and every value is a bound parameter.

pub mod errorlog;
mod events;
mod held;
pub mod held_report;
mod migrations;
mod outbox;
mod results;

pub use events::{EventRecord, NewEvent, EVENT_LOG_CAP};
pub use held::{HoldReport, Logged, WriteFailure, MAX_HELD_EVENTS};
pub use outbox::{OutboxBatch, ACKED_THROUGH_KEY};
pub use results::StoredResult;

use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "lintel.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database schema version {found} is newer than this firmware knows ({known}); refusing to downgrade")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A connection to the firmware's database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Cached outbox acknowledgement watermark (see `outbox.rs`).
    acked_through: std::cell::Cell<Option<i64>>,
    /// Events the database could not take yet (see `held.rs`).
    held: held::HeldEvents,
    /// The watermark moved in memory and is not written yet.
    ack_unwritten: std::cell::Cell<bool>,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/lintel.db` and brings its schema
    /// up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        // Owner-only: the database holds cards, PINs and the RegistryCode.
        crate::private_files::create_private_dir(data_dir).map_err(|source| {
            StoreError::CreateDir {
                path: data_dir.to_owned(),
                source,
            }
        })?;
        let path = data_dir.join(DB_FILE);
        crate::private_files::ensure_private_file(&path).map_err(|source| {
            StoreError::CreateDir {
                path: path.clone(),
                source,
            }
        })?;
        Self::open_file(&path)
    }

    /// Opens a database file directly (tests, tools).
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // WAL: readers never block the writer. synchronous=FULL: a committed
        // event survives a power cut, which is the point of the event log.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
            acked_through: std::cell::Cell::new(None),
            held: held::HeldEvents::default(),
            ack_unwritten: std::cell::Cell::new(false),
        })
    }

    /// The underlying connection, for modules that own their own tables
    /// (data commands, engine rules). They must bind every value.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ----- options -------------------------------------------------------

    /// A persisted option (set by the server or by the firmware itself).
    pub fn option(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM options WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Whether `key` is the firmware's own bookkeeping kept in the options
    /// table (the upload watermark, the schema mark): never set or shown
    /// through SET/GET OPTIONS, since a server writing one could make the
    /// device skip events or refuse its own database.
    pub fn is_internal_option(key: &str) -> bool {
        INTERNAL_OPTION_KEYS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Runs `write` with this connection's commits not synced on their own
    /// (`synchronous = NORMAL`), then restores `FULL`, whatever happened.
    pub(crate) fn unsynced<T>(
        &self,
        write: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn
            .prepare_cached("PRAGMA synchronous = NORMAL")?
            .execute([])?;
        let result = write(self);
        self.conn
            .prepare_cached("PRAGMA synchronous = FULL")?
            .execute([])?;
        result
    }

    pub fn set_option(&self, key: &str, value: &str) -> Result<(), StoreError> {
        // Cached: the upload watermark is set after every accepted batch,
        // which is every event when they go one per request.
        self.conn
            .prepare_cached(
                "INSERT INTO options(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute([key, value])?;
        Ok(())
    }

    /// Sets several options in one transaction: all or none.
    pub fn set_options<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO options(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?;
            for (k, v) in pairs {
                stmt.execute([k, v])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn all_options(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM options ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The server's zone (`+0800`), kept across restarts (commands::server_time).
pub const SERVER_ZONE_KEY: &str = "~ServerTZ";

/// Option keys only the firmware writes; see [`Store::is_internal_option`].
const INTERNAL_OPTION_KEYS: &[&str] = &[
    outbox::ACKED_THROUGH_KEY,
    migrations::READABLE_BY_KEY,
    SERVER_ZONE_KEY,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_lower_synchronous_only_while_they_run() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let level = |s: &Store| -> i64 {
            s.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(level(&s), 2, "FULL");
        let inside = s.unsynced(|s| Ok(level(s))).unwrap();
        assert_eq!(inside, 1, "NORMAL");
        assert_eq!(level(&s), 2);
        let failed: Result<(), _> =
            s.unsynced(|_| Err(StoreError::SchemaTooNew { found: 0, known: 0 }));
        assert!(failed.is_err());
        assert_eq!(level(&s), 2);
    }

    #[test]
    fn options_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            s.set_option("ErrorDelay", "60").unwrap();
            s.set_options([("A", "1"), ("errordelay", "90")]).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.option("ERRORDELAY").unwrap().as_deref(), Some("90"));
        assert_eq!(s.option("A").unwrap().as_deref(), Some("1"));
        assert_eq!(s.option("missing").unwrap(), None);
        assert_eq!(s.schema_version().unwrap(), migrations::latest_version());
    }
}
