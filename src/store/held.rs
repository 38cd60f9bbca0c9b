//! Events the database could not take (disk full, a read-only remount, an
//! I/O error): decided, so never dropped. They wait in memory, in decision
//! order, and are written when the database takes writes again, each once
//! (an event leaves the queue only after its transaction committed). The
//! queue is bounded; what did not fit is counted and reported. When the
//! last one is written, a [`HoldReport`] says what happened, for the error
//! log (the caller writes it: see `held_report::flush_held_events`).

use super::{NewEvent, Store, StoreError};
use std::collections::VecDeque;

/// Events kept in memory at most (a few hundred bytes each: under 2 MB).
/// A door controller logs some events a minute; this is hours of them.
pub const MAX_HELD_EVENTS: usize = 4096;

/// Held events written per transaction.
const WRITE_CHUNK: usize = 256;

/// Why the database could not be written, from SQLite's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// `SQLITE_FULL`: the file system (or the database's size cap) is full.
    Full,
    /// `SQLITE_READONLY`, `SQLITE_CANTOPEN`, `SQLITE_PERM`: not writable.
    ReadOnly,
    /// `SQLITE_IOERR` and anything else.
    Other,
}

impl WriteFailure {
    pub fn of(e: &StoreError) -> WriteFailure {
        use rusqlite::ErrorCode;
        let code = match e {
            StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) => Some(f.code),
            StoreError::Open {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            } => Some(f.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::DiskFull) => WriteFailure::Full,
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                WriteFailure::ReadOnly
            }
            _ => WriteFailure::Other,
        }
    }
}

/// A hold that ended: what the error log tells the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldReport {
    pub failure: WriteFailure,
    /// The first error of the episode.
    pub error: String,
    /// Events written late, in their order.
    pub written: u64,
    /// Events that did not fit in memory and are lost.
    pub lost: u64,
    /// Record times of the first and last event held.
    pub first_time: String,
    pub last_time: String,
}

/// What became of an event given to [`Store::log_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// Written with this `index`.
    Written(u64),
    /// Waiting in memory, `waiting` events in all (this one included).
    Held { waiting: usize },
    /// The memory queue was full: counted and reported, not kept.
    Lost,
}

#[derive(Debug, Default)]
pub(crate) struct HeldEvents {
    queue: VecDeque<NewEvent>,
    /// The current episode: first failure and error text, counts.
    episode: Option<Episode>,
    /// The report of the last episode, until the caller has logged it.
    report: Option<HoldReport>,
}

#[derive(Debug)]
struct Episode {
    failure: WriteFailure,
    error: String,
    written: u64,
    lost: u64,
    first_time: String,
    last_time: String,
}

impl Store {
    /// Logs an event and queues its upload ([`Store::append_event`]); when
    /// the database cannot take it, keeps it in memory instead, behind any
    /// already waiting, so the order of decisions is the order of indexes.
    pub fn log_event(&mut self, event: NewEvent) -> Logged {
        if !self.held.queue.is_empty() {
            self.write_held_events();
        }
        if self.held.queue.is_empty() {
            match self.append_event(&event) {
                Ok(index) => return Logged::Written(index),
                Err(e) => self.start_hold(&e, &event.time),
            }
        }
        // An episode is open whenever events wait (start_hold opened it).
        let full = self.held.queue.len() >= MAX_HELD_EVENTS;
        if let Some(episode) = self.held.episode.as_mut() {
            episode.last_time.clone_from(&event.time);
            if full {
                episode.lost += 1;
                if episode.lost == 1 {
                    log::error!(
                        "{MAX_HELD_EVENTS} events wait for the database; further events are counted and lost until it takes writes"
                    );
                }
            }
        }
        if full {
            return Logged::Lost;
        }
        self.held.queue.push_back(event);
        Logged::Held {
            waiting: self.held.queue.len(),
        }
    }

    fn start_hold(&mut self, e: &StoreError, time: &str) {
        if self.held.episode.is_none() {
            let failure = WriteFailure::of(e);
            log::error!(
                "the database cannot take events ({e}); keeping up to {MAX_HELD_EVENTS} in memory until it can"
            );
            self.held.episode = Some(Episode {
                failure,
                error: e.to_string(),
                written: 0,
                lost: 0,
                first_time: time.to_owned(),
                last_time: time.to_owned(),
            });
        }
    }

    /// Writes the events waiting in memory, oldest first, each in its own
    /// transaction; stops at the first that still fails. When none is left
    /// the episode's [`HoldReport`] becomes available. Returns how many
    /// were written.
    pub fn write_held_events(&mut self) -> usize {
        let mut written = 0;
        while !self.held.queue.is_empty() {
            // A few hundred per transaction: one fsync each, not one per event.
            let n = self.held.queue.len().min(WRITE_CHUNK);
            let rest = self.held.queue.split_off(n);
            let mut chunk = std::mem::replace(&mut self.held.queue, rest);
            match self.append_events(&chunk) {
                Ok(()) => written += n,
                Err(e) => {
                    // Back at the front, in order: they stay the oldest.
                    chunk.append(&mut self.held.queue);
                    self.held.queue = chunk;
                    log::debug!("held events still cannot be written: {e}");
                    break;
                }
            }
        }
        if let Some(ep) = &mut self.held.episode {
            ep.written += u64::try_from(written).unwrap_or(u64::MAX);
        }
        if self.held.queue.is_empty() {
            if let Some(ep) = self.held.episode.take() {
                log::info!(
                    "the database takes writes again: {} held event(s) written, {} lost",
                    ep.written,
                    ep.lost
                );
                self.held.report = Some(HoldReport {
                    failure: ep.failure,
                    error: ep.error,
                    written: ep.written,
                    lost: ep.lost,
                    first_time: ep.first_time,
                    last_time: ep.last_time,
                });
            }
        }
        written
    }

    /// Events waiting in memory.
    pub fn held_events(&self) -> usize {
        self.held.queue.len()
    }

    /// The report of a hold that ended, until [`Store::clear_hold_report`].
    pub fn hold_report(&self) -> Option<&HoldReport> {
        self.held.report.as_ref()
    }

    /// The report has been logged.
    pub fn clear_hold_report(&mut self) {
        self.held.report = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u32) -> NewEvent {
        NewEvent::plain(format!("2024-01-01 00:00:{n:02}"), 27, n)
    }

    fn uploaded(s: &Store) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(b) = s.outbox_batch(1 << 20).unwrap() {
            for r in b.records() {
                let addr = r
                    .split('\t')
                    .find_map(|f| f.strip_prefix("eventaddr="))
                    .unwrap();
                out.push(addr.parse().unwrap());
            }
            s.outbox_remove(&b).unwrap();
        }
        out
    }

    #[test]
    fn a_read_only_database_holds_events_and_writes_them_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.log_event(ev(1)), Logged::Written(1));
        // SQLite's own read-only mode: every write fails with SQLITE_READONLY.
        s.conn().pragma_update(None, "query_only", true).unwrap();
        for n in 2..=6 {
            assert!(matches!(s.log_event(ev(n)), Logged::Held { .. }));
        }
        assert_eq!(s.write_held_events(), 0);
        assert_eq!(s.held_events(), 5);
        assert!(s.hold_report().is_none());
        s.conn().pragma_update(None, "query_only", false).unwrap();
        // The next event goes behind the waiting ones.
        assert!(matches!(s.log_event(ev(7)), Logged::Written(_)));
        assert_eq!(s.held_events(), 0);
        assert_eq!(uploaded(&s), vec![1, 2, 3, 4, 5, 6, 7]);
        let report = s.hold_report().unwrap().clone();
        assert_eq!(report.failure, WriteFailure::ReadOnly);
        assert_eq!((report.written, report.lost), (5, 0));
        assert_eq!(report.first_time, "2024-01-01 00:00:02");
        assert_eq!(report.last_time, "2024-01-01 00:00:06");
        s.clear_hold_report();
        assert!(s.hold_report().is_none());
        assert_eq!(s.write_held_events(), 0);
        assert!(s.hold_report().is_none(), "one report per episode");
    }

    #[test]
    fn a_full_database_holds_events_until_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let pages: i64 = s
            .conn()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        // No page more: an event too big for the free space gets SQLITE_FULL.
        s.conn()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let mut big = ev(1);
        big.pin = "9".repeat(64 * 1024);
        assert!(matches!(s.log_event(big), Logged::Held { waiting: 1 }));
        assert!(matches!(s.log_event(ev(2)), Logged::Held { waiting: 2 }));
        s.conn()
            .pragma_update(None, "max_page_count", 1_000_000)
            .unwrap();
        assert_eq!(s.write_held_events(), 2);
        assert_eq!(uploaded(&s), vec![1, 2]);
        assert_eq!(s.hold_report().unwrap().failure, WriteFailure::Full);
    }

    #[test]
    fn the_memory_queue_is_bounded_and_counts_what_it_loses() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.conn().pragma_update(None, "query_only", true).unwrap();
        for n in 0..MAX_HELD_EVENTS + 10 {
            s.log_event(ev(u32::try_from(n % 60).unwrap()));
        }
        assert_eq!(s.held_events(), MAX_HELD_EVENTS);
        s.conn().pragma_update(None, "query_only", false).unwrap();
        assert_eq!(s.write_held_events(), MAX_HELD_EVENTS);
        let report = s.hold_report().unwrap();
        assert_eq!(report.lost, 10);
        assert_eq!(report.written, u64::try_from(MAX_HELD_EVENTS).unwrap());
    }
}
