//! Versioned, forward-only schema migrations. `PRAGMA user_version` holds the
//! number of the last applied step; each step runs in its own transaction.

use super::StoreError;
use rusqlite::Connection;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Append new steps at the end; never edit or reorder a released one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        sql: include_str!("migrations/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "data tables",
        sql: include_str!("migrations/0002_tables.sql"),
    },
    Migration {
        version: 3,
        name: "engine state",
        sql: include_str!("migrations/0003_engine.sql"),
    },
    Migration {
        version: 4,
        name: "engine apb zones",
        sql: include_str!("migrations/0004_engine_apb_zones.sql"),
    },
    Migration {
        version: 5,
        name: "engine indexes",
        sql: include_str!("migrations/0005_engine_indexes.sql"),
    },
];

pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = latest_version();
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let step = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(m.sql)?;
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
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
