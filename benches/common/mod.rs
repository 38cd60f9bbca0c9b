//! Helpers the benchmarks share (`mod common;` in a bench file).
#![allow(dead_code)] // each benchmark uses only some of them

use rusqlite::params;

/// Peak resident memory of a process (VmHWM, kB): one reading at the end
/// of a run is its high-water mark. `None` where /proc is not readable.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `users` users (card = pin = i) with their authorisations for every door
/// of a 4-door board under time rule 1, which covers every day: the store
/// the latency benchmarks decide against.
pub fn fill_users(store: &mut lintel::store::Store, users: u32) {
    let conn = store.conn_mut();
    let tx = conn.transaction().expect("tx");
    {
        let mut u = tx
            .prepare("INSERT INTO users(pin, cardno, name) VALUES (?1, ?2, ?3)")
            .expect("prepare");
        let mut a = tx
            .prepare("INSERT INTO user_authorizations(pin, timezone_id, door_mask, dev_id) VALUES (?1, 1, 15, 1)")
            .expect("prepare");
        for i in 1..=users {
            u.execute(params![i.to_string(), i.to_string(), format!("User {i}")])
                .expect("user");
            a.execute(params![i.to_string()]).expect("authorisation");
        }
        tx.execute(
            "INSERT INTO time_zones(timezone_id, sun_time1, mon_time1, tue_time1, wed_time1, thu_time1, fri_time1, sat_time1)
             VALUES (1, 2359, 2359, 2359, 2359, 2359, 2359, 2359)",
            [],
        )
        .expect("time rule");
    }
    tx.commit().expect("commit");
}

/// The engine as the firmware runs it, on `hal` (opened on `board` in `dir`,
/// whose store it opens), with a probe that reports each grant's timing.
/// Every decision also signals its reader, as in the firmware.
pub fn start_engine(
    board: &lintel_hal::board::BoardConfig,
    dir: &std::path::Path,
    hal: &mut lintel_hal::Hal,
    hal_events: std::sync::mpsc::Receiver<lintel_hal::InputEvent>,
) -> (
    lintel::engine::EngineHandle,
    std::thread::JoinHandle<()>,
    std::sync::mpsc::Receiver<lintel::engine::GrantTiming>,
) {
    use lintel::engine::{self, EngineSetup, SystemMonotonic};
    use std::sync::Arc;
    let (probe_tx, probe_rx) = std::sync::mpsc::channel();
    let (engine, thread) = engine::start(
        EngineSetup {
            board: board.clone(),
            serial: "BENCH".into(),
            clock: Arc::new(lintel::clock::DeviceClock::new(0)),
            monotonic: Arc::new(SystemMonotonic),
            session: None,
            rtstate_period: std::time::Duration::from_secs(60),
            grant_probe: Some(probe_tx),
            remote: None,
            liveness: None,
            indicator: Some(Arc::new(hal.start_indicators().expect("indicators"))),
        },
        lintel::store::Store::open(dir).expect("store"),
        engine::Outputs {
            locks: std::mem::take(&mut hal.locks),
            aux_out: std::mem::take(&mut hal.aux_out),
        },
        hal_events,
    )
    .expect("engine");
    (engine, thread, probe_rx)
}
