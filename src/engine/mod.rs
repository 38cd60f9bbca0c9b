//! The access-control engine: owns the doors.
//!
//! The engine is one [`Engine`] behind a lock. The `engine` thread loops
//! over one closed enum, [`EngineInput`], received with a deadline (the
//! next timer of any door, reader entry, aux output, the minute of the
//! schedules, or the periodic rtstate); the `engine-inputs` thread runs the
//! steps of HAL events itself as they come off the HAL's channel (one
//! thread wake-up less between a card and its relay). For each input it
//! reads the rules from SQLite through its own connection, decides, drives
//! the outputs and writes the event rows in the same step, then wakes the
//! session to upload. Nothing here waits on the network.
//!
//! The engine is split into rooms, each owning its state:
//! - `identify` (with `formats` and [`keypad`]): who presented
//!   themselves, where and how (card, keypad, user ID, door passwords);
//! - `decide` (with [`verify`], [`apb`], [`multicard`]): the verification
//!   mode and the rules, ending in a verdict with its event code;
//!   `firstcard` turns a verdict into a first-card opening;
//! - `doors` (with [`door`], [`rtstate`]): door machines, relays, aux
//!   outputs, alarms and the rtstate record;
//! - `schedule` and `linkage`: normal-open periods, scheduled outputs
//!   and linkages; `remote_wait` (with [`remote`]): remote identification;
//! - the thin engine: `runner` (the loop, a step, logging), wired to the
//!   rooms by `access` (an identification's path), `inputs` (the HAL's
//!   other inputs) and `door_commands` (CONTROL DEVICE door commands).
//!
//! Time is the device's local time with DST ([`dst`]); time rules are the
//! pure [`timezone`]; SQL lives in [`rules`]; `CONTROL DEVICE` parsing in
//! [`control`] (its executor is `commands::control_device`).
//!
//! Ordering inside a step: outputs are driven before the event row is
//! committed (an fsync takes milliseconds, a person is waiting at the door);
//! the row is committed before the session is told, so nothing is reported
//! that is not stored.

mod access;
pub mod apb;
pub mod control;
mod decide;
pub mod door;
mod door_commands;
mod doors;
pub mod dst;
pub mod feedback;
mod firstcard;
mod formats;
mod handle;
mod identify;
mod inputs;
pub mod keypad;
mod linkage;
pub mod multicard;
pub mod remote;
mod remote_wait;
pub mod rtstate;
pub mod rules;
mod runner;
mod schedule;
#[cfg(test)]
mod testkit;
pub mod timezone;
pub mod verify;

pub use handle::{
    DoorCommand, EngineError, EngineHandle, EngineInput, EngineSetup, GrantTiming, ManualMonotonic,
    Monotonic, OutputAction, OutputTarget, Outputs, SystemMonotonic,
};
pub use runner::Engine;

use lintel_hal::InputEvent;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::store::Store;

/// Locks the shared engine; a poisoned lock (a panic in a step, which the
/// code avoids) still yields the engine, whose state is consistent per step.
fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the engine: the `engine` thread runs commands and timers from the
/// engine channel; the `engine-inputs` thread takes HAL events off the
/// HAL's channel and runs their step itself, under the same lock, so a
/// card's decision does not wait for a second thread to be scheduled (on a
/// loaded 2-core board that hop cost up to 2.4 ms at p99). It then wakes the
/// engine thread, whose timers the step may have changed.
pub fn start(
    setup: EngineSetup,
    store: Store,
    outputs: Outputs,
    hal_events: Receiver<InputEvent>,
) -> Result<(EngineHandle, JoinHandle<()>), EngineError> {
    let (tx, rx) = channel();
    let handle = EngineHandle {
        tx: tx.clone(),
        hal_handled: Arc::new(AtomicU64::new(0)),
    };
    let liveness = setup.liveness.clone();
    // One below the HAL's input threads, so a card's frame is captured first.
    let inputs_priority = setup.board.defaults.realtime_priority.saturating_sub(1);
    let mut engine = Engine::new(setup, store, outputs);
    engine.hal_handled = handle.hal_handled.clone();
    engine.answers = Some(tx.clone());
    // Device start (206) is logged before any HAL event is looked at.
    engine.start_up();
    let engine = Arc::new(Mutex::new(engine));
    let shared = engine.clone();
    let inputs_liveness = liveness.clone();
    std::thread::Builder::new()
        .name("engine-inputs".into())
        .spawn(move || {
            // A card's decision must not wait behind a bulk sync for a CPU:
            // this thread runs under SCHED_FIFO where the HAL's do (its work
            // per HAL event is bounded: one decision, its outputs and row).
            if inputs_priority > 0 {
                if let Err(e) = lintel_hal::realtime::try_enter(inputs_priority) {
                    log::debug!("engine-inputs stays at normal priority: {e}");
                }
            }
            // Waiting for the hardware may last forever; a step may not.
            let promise = |wait| {
                if let Some(l) = &inputs_liveness {
                    l.promise("engine-inputs", wait);
                }
            };
            promise(Duration::MAX);
            for ev in hal_events {
                let forwarded = Instant::now();
                promise(Duration::ZERO);
                {
                    let mut e = lock(&shared);
                    if e.stopped {
                        break;
                    }
                    e.step(Some(EngineInput::Hal(ev, forwarded)));
                }
                promise(Duration::MAX);
                if tx.send(EngineInput::Rearm).is_err() {
                    break;
                }
            }
            if let Some(l) = &inputs_liveness {
                l.release("engine-inputs");
            }
        })
        .map_err(EngineError::Thread)?;
    let join = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || Engine::run_shared(&engine, &rx, liveness.as_ref()))
        .map_err(EngineError::Thread)?;
    Ok((handle, join))
}
