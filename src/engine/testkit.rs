//! A whole engine for the wiring's unit tests: the sim-4door board, a
//! store in a temporary directory, a clock and monotonic time the test
//! moves, and outputs whose levels the test reads.

use super::handle::{EngineSetup, ManualMonotonic, Outputs};
use super::runner::Engine;
use crate::clock::ManualClock;
use crate::store::Store;
use chrono::{TimeZone, Utc};
use lintel_hal::board::BoardConfig;
use lintel_hal::{HalError, Output, RecordingIndicator};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An output whose level the test reads through a shared cell.
struct Probe(Arc<Mutex<bool>>);

impl Output for Probe {
    fn set(&mut self, on: bool) -> Result<(), HalError> {
        *self.0.lock().unwrap() = on;
        Ok(())
    }
    fn is_on(&self) -> bool {
        *self.0.lock().unwrap()
    }
}

pub(super) struct Bench {
    pub engine: Engine,
    pub time: ManualMonotonic,
    pub locks: Vec<Arc<Mutex<bool>>>,
    pub aux: Vec<Arc<Mutex<bool>>>,
    /// What the readers were told to show.
    pub indicator: Arc<RecordingIndicator>,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// An engine on Monday 2024-05-06 09:00 UTC, started (206 logged).
    pub(super) fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let board =
            BoardConfig::from_toml_str(include_str!("../../board-configs/sim-4door.toml")).unwrap();
        let cells = |n: usize| -> Vec<Arc<Mutex<bool>>> {
            (0..n).map(|_| Arc::new(Mutex::new(false))).collect()
        };
        let locks = cells(board.doors.len());
        let aux = cells(board.aux_out.len());
        let boxed = |c: &Vec<Arc<Mutex<bool>>>| -> Vec<Box<dyn Output>> {
            c.iter()
                .map(|c| Box::new(Probe(c.clone())) as Box<dyn Output>)
                .collect()
        };
        let outputs = Outputs {
            locks: boxed(&locks),
            aux_out: boxed(&aux),
        };
        let indicator = Arc::new(RecordingIndicator::default());
        let time = ManualMonotonic::new();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2024, 5, 6, 9, 0, 0).unwrap());
        let setup = EngineSetup {
            board,
            serial: "TESTKIT01".into(),
            clock: Arc::new(clock),
            monotonic: Arc::new(time.clone()),
            session: None,
            rtstate_period: Duration::from_secs(60),
            grant_probe: None,
            remote: None,
            liveness: None,
            indicator: Some(indicator.clone()),
        };
        let mut engine = Engine::new(setup, store, outputs);
        engine.start_up();
        Bench {
            engine,
            time,
            locks,
            aux,
            indicator,
            _dir: dir,
        }
    }

    pub(super) fn lock_on(&self, door: usize) -> bool {
        *self.locks[door - 1].lock().unwrap()
    }

    pub(super) fn aux_on(&self, n: usize) -> bool {
        *self.aux[n - 1].lock().unwrap()
    }

    /// The events logged so far, oldest first: (event, eventaddr, pin).
    pub(super) fn events(&self) -> Vec<(u32, u32, String)> {
        let conn = self.engine.store.conn();
        let mut stmt = conn
            .prepare("SELECT event, eventaddr, pin FROM event_log ORDER BY idx")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// The event codes logged so far, oldest first.
    pub(super) fn codes(&self) -> Vec<u32> {
        self.events().into_iter().map(|(e, _, _)| e).collect()
    }

    /// Moves monotonic time and runs the timers.
    pub(super) fn advance(&mut self, by: Duration) {
        self.time.advance(by);
        self.engine.step(None);
    }

    /// User `pin` with `card` who may use door 1 at any time (rule 1).
    pub(super) fn enrol(&self, pin: &str, card: &str) {
        self.engine
            .store
            .conn()
            .execute_batch(&format!(
                "INSERT INTO users(pin, cardno) VALUES ('{pin}', '{card}');
                 INSERT INTO user_authorizations(pin, timezone_id, door_mask) VALUES ('{pin}', 1, 1);"
            ))
            .unwrap();
    }
}
