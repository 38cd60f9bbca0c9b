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
//! Identification: cards and keypad entries ([`keypad`]) are checked
//! against the verification mode ([`verify`]), then the rules of
//! [`Engine`]'s `authorize` (blacklist, validity, door state, super user,
//! door × time rule, punch interval, anti-passback ([`apb`]), interlock),
//! then first-card and multi-card opening ([`multicard`]). Time is the
//! device's local time with DST ([`dst`]). Schedules (normal-open periods,
//! scheduled outputs) are evaluated per minute; linkages (`inoutfun`) run
//! after the event that triggers them.
//!
//! Door logic is the sans-IO [`door::Door`]; time rules are the pure
//! [`timezone`]; SQL lives in [`rules`]; the rtstate record in [`rtstate`];
//! `CONTROL DEVICE` parsing and its executor in [`control`].
//!
//! Ordering inside a step: outputs are driven before the event row is
//! committed (an fsync takes milliseconds, a person is waiting at the door);
//! the row is committed before the session is told, so nothing is reported
//! that is not stored.

pub mod apb;
pub mod control;
pub mod door;
pub mod dst;
pub mod keypad;
pub mod multicard;
pub mod remote;
pub mod rtstate;
pub mod rules;
pub mod timezone;
pub mod verify;

use crate::clock::Clock;
use crate::commands::data::uploads;
use crate::protocol::time::format_record_time;
use crate::session::SessionInput;
use crate::store::{Logged, NewEvent, Store};
use crate::watchdog::Liveness;
use chrono::Timelike;
use door::{code, Door, DoorSettings, Override};
use lintel_hal::board::{BoardConfig, ReaderDirection};
use lintel_hal::wiegand::{self, Decoded, FormatTable};
use lintel_hal::{InputEvent, InputKind, Output};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use verify::{factor, Check, KeypadMeaning, Mode};

/// Prepared statements the engine's connection keeps (all of `rules`'s).
const STATEMENT_CACHE: usize = 128;

/// The event of an identification at a disabled reader (ReaderProperty
/// `Disable=1`): Appendix 2 has no code of its own for it, so the card is
/// not looked up and the swipe is logged as 23 "Unauthorized access" with
/// pin 0, which keeps it visible to the server instead of dropping it.
const READER_DISABLED: u32 = 23;

/// Monotonic time for relay and alarm timers. Injected so tests can move it.
pub trait Monotonic: Send + Sync {
    fn now(&self) -> Instant;
}

/// The host's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMonotonic;

impl Monotonic for SystemMonotonic {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Monotonic time that only moves when told (tests). After moving it, wake
/// the engine ([`EngineHandle::wake`]) so it looks at its timers.
#[derive(Debug, Clone)]
pub struct ManualMonotonic {
    base: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl ManualMonotonic {
    pub fn new() -> Self {
        ManualMonotonic {
            base: Instant::now(),
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut o) = self.offset.lock() {
            *o += by;
        }
    }
}

impl Default for ManualMonotonic {
    fn default() -> Self {
        Self::new()
    }
}

impl Monotonic for ManualMonotonic {
    fn now(&self) -> Instant {
        self.base + self.offset.lock().map(|o| *o).unwrap_or_default()
    }
}

/// What the engine's loop consumes.
#[derive(Debug)]
pub enum EngineInput {
    /// A HAL event and when the forwarder took it off the HAL's channel.
    Hal(InputEvent, Instant),
    /// A door command from the session, answered with an Appendix 1 code.
    Command(DoorCommand, Sender<i64>),
    /// Look at the timers now (after a test moved the monotonic clock).
    Tick,
    /// Only recompute the wait: a step on the `engine-inputs` thread may
    /// have moved the next deadline.
    Rearm,
    /// The server's answer to remote identification `id`.
    Remote {
        id: u64,
        verdict: Result<remote::RemoteVerdict, String>,
    },
    /// Like `Tick`, then answer once the step is finished (tests wait on it).
    Sync(Sender<()>),
    Shutdown,
}

/// Which output a CONTROL DEVICE 01 drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputTarget {
    Lock,
    Aux,
}

/// How it is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputAction {
    Off,
    For(Duration),
    NormalOpen,
}

/// Commands the session hands the engine (12.4). `door`/`index` 0 = all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorCommand {
    Output {
        target: OutputTarget,
        index: u8,
        action: OutputAction,
    },
    CancelAlarm {
        door: u8,
    },
    /// 04: enable (true) or disable the normal-open state.
    NormalOpen {
        door: u8,
        enable: bool,
    },
    /// 06: lock (true) or unlock.
    Lock {
        door: u8,
        locked: bool,
    },
    /// 07: emergency dual-on (true) or dual-off.
    Emergency {
        all_open: bool,
    },
    /// 09: start (true) or stop uploading read frames as `testdata`.
    WiegandTest {
        start: bool,
    },
}

/// When a grant drove its relay (benchmarks measure card-to-relay latency).
#[derive(Debug, Clone, Copy)]
pub struct GrantTiming {
    /// The frame's last edge as the HAL stamped it.
    pub last_edge: Instant,
    /// When the `engine-inputs` thread took the frame off the HAL's channel.
    pub forwarded: Instant,
    /// When the engine received the frame.
    pub received: Instant,
    /// When the lock relay was set.
    pub relay_set: Instant,
}

/// How other threads reach the engine.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    tx: Sender<EngineInput>,
    /// HAL events the engine has finished handling.
    hal_handled: Arc<AtomicU64>,
}

impl EngineHandle {
    /// Sends a command and waits for its code; [`crate::commands::codes::WAIT_TIMEOUT`]
    /// when the engine does not answer in time, -12 when it is gone.
    pub fn command(&self, cmd: DoorCommand, timeout: Duration) -> i64 {
        let (reply_tx, reply_rx) = channel();
        if self.tx.send(EngineInput::Command(cmd, reply_tx)).is_err() {
            return crate::commands::codes::EXECUTION_ERROR;
        }
        match reply_rx.recv_timeout(timeout) {
            Ok(code) => code,
            Err(RecvTimeoutError::Timeout) => crate::commands::codes::WAIT_TIMEOUT,
            Err(RecvTimeoutError::Disconnected) => crate::commands::codes::EXECUTION_ERROR,
        }
    }

    /// How many HAL events (frames, input changes) the engine has fully
    /// handled; tests wait on it instead of guessing how long a frame takes.
    pub fn hal_events_handled(&self) -> u64 {
        self.hal_handled.load(Ordering::Acquire)
    }

    pub fn wake(&self) {
        let _ = self.tx.send(EngineInput::Tick);
    }

    /// Wakes the engine and waits until it has handled everything sent
    /// before (tests). False when it did not answer within `timeout`.
    pub fn sync(&self, timeout: Duration) -> bool {
        let (tx, rx) = channel();
        self.tx.send(EngineInput::Sync(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    pub fn shutdown(&self) {
        let _ = self.tx.send(EngineInput::Shutdown);
    }

    /// Feeds a HAL event directly (tests, benchmarks).
    pub fn send_input(&self, ev: InputEvent) {
        let _ = self.tx.send(EngineInput::Hal(ev, Instant::now()));
    }
}

/// The outputs the engine drives (taken from `lintel_hal::Hal`).
pub struct Outputs {
    pub locks: Vec<Box<dyn Output>>,
    pub aux_out: Vec<Box<dyn Output>>,
}

/// Everything the engine needs at start.
pub struct EngineSetup {
    pub board: BoardConfig,
    pub serial: String,
    pub clock: Arc<dyn Clock>,
    pub monotonic: Arc<dyn Monotonic>,
    /// Woken after events or a state change are queued.
    pub session: Option<Sender<SessionInput>>,
    /// rtstate is queued on every change and at least this often.
    pub rtstate_period: Duration,
    pub grant_probe: Option<Sender<GrantTiming>>,
    /// Remote identification (section 13), used while `AutoServerFunOn` is 1.
    pub remote: Option<Arc<dyn remote::RemoteIdentifier>>,
    /// Where the engine's threads promise to report again (the watchdog).
    pub liveness: Option<Liveness>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
}

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

/// An aux output's drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuxDrive {
    Off,
    Until(Instant),
    On,
}

/// What a scheduled output (`outrelaysetting`) does to an aux output now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuxSchedule {
    None,
    /// ActionType 1: held on (229 at the start, 230 at the end).
    On,
    /// ActionType 2: held off whatever else drives it.
    ForcedOff,
}

/// Where an identification arrived: the reader, its door and side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arrival {
    reader: u8,
    door: u8,
    /// 0 = in, 1 = out (rtlog `inoutstatus`).
    inout: u32,
}

/// What a person presented so far (the rtlog card fields and factor bits).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Presented {
    card: String,
    site: String,
    factors: u16,
}

impl Presented {
    /// Something typed, without a card.
    fn typed(factors: u16) -> Presented {
        Presented {
            card: "0".into(),
            site: "0".into(),
            factors,
        }
    }
}

/// A door's first-card state (DoorFirstCardOpenDoor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstCard {
    Idle,
    /// A first-card user verified inside time rule `tz`; lasts while it covers.
    Active {
        tz: i64,
        holds_open: bool,
    },
}

/// A local grant waiting for the server's remote identification.
#[derive(Debug, Clone)]
struct RemotePending {
    at: Arrival,
    pin: String,
    presented: Presented,
    /// The local decision, carried out when the server does not answer.
    local: Verdict,
    until: Instant,
    last_edge: Option<Instant>,
}

/// A door-wide password (Appendix 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DoorPassword {
    Emergency,
    Duress,
}

/// The decision for one identification, before it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Grant(u32),
    Deny(u32),
}

pub struct Engine {
    setup: EngineSetup,
    store: Store,
    outputs: Outputs,
    doors: Vec<Door>,
    settings: Vec<DoorSettings>,
    aux: Vec<AuxDrive>,
    /// Last grant per (pin, door), for DoorIntertime.
    last_punch: HashMap<(String, u8), Instant>,
    /// Keypad entry and combined verification per reader.
    entries: HashMap<u8, keypad::ReaderEntry>,
    /// First-card state per door (index as `doors`).
    first_card: Vec<FirstCard>,
    /// Multi-card opening in progress per door.
    multi: Vec<multicard::MultiWait>,
    /// Scheduled outputs per aux output.
    aux_sched: Vec<AuxSchedule>,
    /// The day CONTROL DEVICE 04 disabled a door's normal-open period for.
    keep_open_off_on: Vec<Option<chrono::NaiveDate>>,
    /// (minute, data_version) the schedules were last evaluated for.
    schedule_key: Option<(chrono::NaiveDateTime, i64)>,
    /// Decoding tables per reader, valid for `format_version`.
    format_cache: HashMap<u8, FormatTable>,
    format_version: Option<i64>,
    settings_version: Option<i64>,
    dst: dst::Dst,
    standard_formats: FormatTable,
    /// `PRAGMA data_version` read at the start of the step (-1 unreadable).
    data_version: i64,
    hal_handled: Arc<AtomicU64>,
    /// Set when the engine thread ends: HAL events are no longer handled.
    stopped: bool,
    /// Where remote-identification threads send their answers.
    answers: Option<Sender<EngineInput>>,
    /// Remote identifications waiting for the server, by id.
    remote_pending: HashMap<u64, RemotePending>,
    next_remote_id: u64,
    /// When the HAL event of this step was forwarded (benchmark probe).
    forwarded_at: Instant,
    /// Set while linkage actions run: their own events trigger nothing.
    in_linkage: bool,
    /// Until when each linkage row's last action runs; it does not fire
    /// again before, so an output wired back to an input cannot spin.
    linkage_busy: HashMap<i64, Instant>,
    last_state: String,
    next_periodic: Instant,
    wiegand_test: bool,
    /// Events queued during this step, not yet announced to the session.
    pending_notify: bool,
}

impl Engine {
    pub fn new(setup: EngineSetup, store: Store, outputs: Outputs) -> Engine {
        // rusqlite keeps 16 prepared statements by default; a decision uses
        // more distinct ones than that, and an evicted one is prepared again
        // on every card (measured: +0.3 ms p50 during a bulk sync).
        store
            .conn()
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let doors: Vec<Door> = setup
            .board
            .doors
            .iter()
            .map(|d| Door::new(d.number))
            .collect();
        let settings = vec![DoorSettings::default(); doors.len()];
        let aux = vec![AuxDrive::Off; outputs.aux_out.len()];
        let first_card = vec![FirstCard::Idle; doors.len()];
        let multi = vec![multicard::MultiWait::Idle; doors.len()];
        let aux_sched = vec![AuxSchedule::None; outputs.aux_out.len()];
        let keep_open_off_on = vec![None; doors.len()];
        let now = setup.monotonic.now();
        Engine {
            setup,
            store,
            outputs,
            doors,
            settings,
            aux,
            last_punch: HashMap::new(),
            entries: HashMap::new(),
            first_card,
            multi,
            aux_sched,
            keep_open_off_on,
            schedule_key: None,
            hal_handled: Arc::new(AtomicU64::new(0)),
            forwarded_at: now,
            stopped: false,
            answers: None,
            remote_pending: HashMap::new(),
            next_remote_id: 1,
            format_cache: HashMap::new(),
            format_version: None,
            settings_version: None,
            dst: dst::Dst::default(),
            standard_formats: FormatTable::standard(),
            data_version: -1,
            in_linkage: false,
            linkage_busy: HashMap::new(),
            last_state: String::new(),
            next_periodic: now,
            wiegand_test: false,
            pending_notify: false,
        }
    }

    /// Runs until [`EngineInput::Shutdown`] or every sender is gone.
    pub fn run(mut self, rx: Receiver<EngineInput>) {
        self.start_up();
        let liveness = self.setup.liveness.clone();
        Self::run_shared(&Mutex::new(self), &rx, liveness.as_ref());
    }

    /// Reads the parameters and logs device start (206).
    fn start_up(&mut self) {
        self.refresh_settings();
        let now = self.setup.monotonic.now();
        self.log_plain(code::DEVICE_START, 0);
        self.finish_step(now);
    }

    /// The engine thread's loop: waits on the channel until the next
    /// deadline without holding the lock, then steps under it.
    fn run_shared(engine: &Mutex<Engine>, rx: &Receiver<EngineInput>, liveness: Option<&Liveness>) {
        loop {
            let wait = {
                let e = lock(engine);
                let now = e.setup.monotonic.now();
                e.next_deadline().map(|d| d.saturating_duration_since(now))
            };
            if let Some(l) = liveness {
                l.promise("engine", wait.unwrap_or(Duration::MAX));
            }
            let input = match wait {
                Some(w) => match rx.recv_timeout(w) {
                    Ok(i) => Some(i),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(i) => Some(i),
                    Err(_) => break,
                },
            };
            match input {
                Some(EngineInput::Shutdown) => break,
                Some(EngineInput::Rearm) => continue,
                input => lock(engine).step(input),
            }
        }
        lock(engine).stopped = true;
        if let Some(l) = liveness {
            l.release("engine");
        }
        log::info!("engine stopped");
    }

    /// Handles one input (or a timer when `None`) completely.
    pub fn step(&mut self, input: Option<EngineInput>) {
        self.data_version = rules::data_version(self.store.conn()).unwrap_or_else(|e| {
            log::error!("cannot read the data version ({e}); caches are rebuilt");
            -1
        });
        self.refresh_settings();
        let now = self.setup.monotonic.now();
        match input {
            Some(EngineInput::Hal(ev, forwarded)) => {
                self.forwarded_at = forwarded;
                self.on_hal(ev, now);
                self.finish_step(now);
                self.hal_handled.fetch_add(1, Ordering::Release);
                return;
            }
            Some(EngineInput::Command(cmd, reply)) => {
                let code = self.on_command(cmd, now);
                // Outputs first, then the reply: the server hears "done" only when it is.
                self.finish_step(now);
                let _ = reply.send(code);
                return;
            }
            Some(EngineInput::Sync(done)) => {
                self.finish_step(now);
                let _ = done.send(());
                return;
            }
            Some(EngineInput::Remote { id, verdict }) => self.on_remote_answer(id, verdict, now),
            Some(EngineInput::Tick)
            | Some(EngineInput::Rearm)
            | Some(EngineInput::Shutdown)
            | None => {}
        }
        self.finish_step(now);
    }

    /// Re-reads the door parameters when another connection changed the
    /// database since the last read (or the version is unknown).
    fn refresh_settings(&mut self) {
        if self.data_version >= 0 && self.settings_version == Some(self.data_version) {
            return;
        }
        self.settings_version = Some(self.data_version);
        match rules::dst(self.store.conn()) {
            Ok(d) => self.dst = d,
            Err(e) => log::error!("cannot read the DST settings ({e}); keeping the previous ones"),
        }
        match rules::DoorParams::load(self.store.conn()) {
            Ok(params) => {
                for (i, d) in self.setup.board.doors.iter().enumerate() {
                    self.settings[i] =
                        rules::door_settings_from(&params, d.number, d.sensor.is_some());
                }
            }
            Err(e) => {
                log::error!("cannot read the door parameters ({e}); keeping the previous ones")
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let doors = self
            .doors
            .iter()
            .zip(&self.settings)
            .filter_map(|(d, s)| d.next_deadline(s));
        let aux = self.aux.iter().filter_map(|a| match a {
            AuxDrive::Until(t) => Some(*t),
            _ => None,
        });
        let entries = self
            .entries
            .values()
            .filter_map(|e| e.next_deadline())
            .chain(self.multi.iter().filter_map(|m| m.next_deadline()))
            .chain(self.remote_pending.values().map(|p| p.until));
        // Wall-clock periods are looked at on each minute while one matters.
        // Time rules have minute resolution: look at the schedules on each
        // minute (normal-open periods, scheduled outputs, first-card periods).
        let minute = {
            let s = self.local_now().second();
            Some(self.setup.monotonic.now() + Duration::from_secs(u64::from(60 - s.min(59))))
        };
        doors
            .chain(aux)
            .chain(entries)
            .chain(minute)
            .chain(std::iter::once(self.next_periodic))
            .min()
    }

    /// Timers, outputs, rtstate, session wake-up: the end of every step.
    fn finish_step(&mut self, now: Instant) {
        // Events the database could not take earlier go first (in order).
        if uploads::flush_held_events(&mut self.store, None, &*self.setup.clock) {
            self.pending_notify = true;
        }
        self.run_schedules();
        self.linkage_busy.retain(|_, until| now < *until);
        let expired: Vec<u64> = self
            .remote_pending
            .iter()
            .filter(|(_, p)| now >= p.until)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.remote_pending.remove(&id) {
                log::warn!("remote identification {id} not answered in time; deciding locally");
                self.remote_fallback(p, now);
            }
        }
        self.end_first_card_periods();
        for i in 0..self.doors.len() {
            if let Some(pin) = self.multi[i].poll(now) {
                // 40: the combination was not completed in time.
                let mut ev = NewEvent::plain(self.time_text(), 40, u32::from(self.doors[i].number));
                ev.pin = pin;
                self.log_event(ev);
            }
        }
        for i in 0..self.doors.len() {
            let events = self.doors[i].poll(now, &self.settings[i]);
            let number = self.doors[i].number;
            for e in events {
                self.log_plain(e, u32::from(number));
            }
        }
        let mut expired = Vec::new();
        for (reader, e) in &mut self.entries {
            if let Some(p) = e.poll(now) {
                expired.push((*reader, p));
            }
        }
        for (reader, p) in expired {
            if let Some(r) = self.setup.board.reader(reader) {
                let at = Arrival {
                    reader,
                    door: r.door,
                    inout: match r.direction {
                        ReaderDirection::In => 0,
                        ReaderDirection::Out => 1,
                    },
                };
                let presented = Presented {
                    card: p.card,
                    site: p.site,
                    factors: p.presented,
                };
                // 75: combined verification timeout.
                self.log_identification(at, &p.pin, &presented, 75);
            }
        }
        for a in &mut self.aux {
            if let AuxDrive::Until(t) = *a {
                if now >= t {
                    *a = AuxDrive::Off;
                }
            }
        }
        self.drive_outputs(now);
        self.queue_state(now);
        if self.pending_notify {
            self.pending_notify = false;
            if let Some(s) = &self.setup.session {
                let _ = s.send(SessionInput::OutboxChanged);
            }
        }
    }

    fn drive_outputs(&mut self, now: Instant) {
        for (i, door) in self.doors.iter().enumerate() {
            let want = door.lock_wanted(now);
            if let Some(out) = self.outputs.locks.get_mut(i) {
                if out.is_on() != want {
                    if let Err(e) = out.set(want) {
                        log::error!("door {}: cannot drive the lock relay: {e}", door.number);
                    }
                }
            }
        }
        for (i, a) in self.aux.iter().enumerate() {
            let want = match self.aux_sched.get(i) {
                Some(AuxSchedule::ForcedOff) => false,
                Some(AuxSchedule::On) => true,
                _ => *a != AuxDrive::Off,
            };
            if let Some(out) = self.outputs.aux_out.get_mut(i) {
                if out.is_on() != want {
                    if let Err(e) = out.set(want) {
                        log::error!("aux output {}: cannot drive it: {e}", i + 1);
                    }
                }
            }
        }
    }

    fn queue_state(&mut self, now: Instant) {
        let reports: Vec<_> = self
            .doors
            .iter()
            .zip(&self.settings)
            .map(|(d, s)| d.report(now, s))
            .collect();
        let fields = rtstate::state_fields(&reports);
        if fields == self.last_state && now < self.next_periodic {
            return;
        }
        let line = format!("time={}\t{fields}", self.time_text());
        match self.store.replace_rtstate(&line) {
            Ok(_) => {
                self.last_state = fields;
                self.next_periodic = now + self.setup.rtstate_period;
                self.pending_notify = true;
            }
            Err(e) => {
                log::error!("cannot queue the rtstate record: {e}; retrying at the next step");
            }
        }
    }

    fn time_text(&self) -> String {
        format_record_time(self.local_now())
    }

    /// Local time as rules and records see it (see [`dst::Dst::wall`]).
    fn local_now(&self) -> chrono::NaiveDateTime {
        rules::wall_time(&*self.setup.clock, &self.dst)
    }

    fn log_event(&mut self, ev: NewEvent) {
        // The decision stands (outputs are already driven); a database that
        // cannot take the row keeps it in memory (store::held).
        match self.store.log_event(ev.clone()) {
            Logged::Written(index) => {
                log::info!(
                    "event {} at {} (pin {}, card {}) index {index}",
                    ev.event,
                    ev.eventaddr,
                    ev.pin,
                    ev.cardno
                );
                self.pending_notify = true;
            }
            Logged::Held { waiting } => log::warn!(
                "event {} at {} (pin {}, card {}) waits in memory for the database ({waiting} waiting)",
                ev.event,
                ev.eventaddr,
                ev.pin,
                ev.cardno
            ),
            Logged::Lost => log::error!(
                "event {} at {} lost: the database cannot take it and the memory queue is full",
                ev.event,
                ev.eventaddr
            ),
        }
        // Event 6 never triggers a linkage, nor does anything a linkage caused.
        if !self.in_linkage && ev.event != 6 {
            self.run_linkages(&ev);
        }
    }

    /// `inoutfun`: drives the outputs the event's linkages name and logs 6
    /// per action (linkid = the row, verifytype = the triggering event).
    fn run_linkages(&mut self, ev: &NewEvent) {
        let rows = match rules::linkages_for(self.store.conn(), ev.event, ev.eventaddr) {
            Ok(rows) => rows,
            Err(e) => {
                log::error!("cannot read the linkages of event {} ({e})", ev.event);
                return;
            }
        };
        if rows.is_empty() {
            return;
        }
        let now = self.setup.monotonic.now();
        self.in_linkage = true;
        for l in rows {
            if self.linkage_busy.get(&l.index).is_some_and(|u| now < *u) {
                log::info!(
                    "linkage {}: its last action still runs; not repeated",
                    l.index
                );
                continue;
            }
            let secs = u64::try_from(l.out_time).unwrap_or(0);
            let action = match l.out_time {
                0 => OutputAction::Off,
                255 => OutputAction::NormalOpen,
                _ => OutputAction::For(Duration::from_secs(secs)),
            };
            let driven = if l.aux {
                let i = usize::try_from(l.out_addr)
                    .ok()
                    .and_then(|a| a.checked_sub(1));
                match i.and_then(|i| self.aux.get_mut(i)) {
                    Some(a) => {
                        *a = match action {
                            OutputAction::Off => AuxDrive::Off,
                            OutputAction::For(d) => AuxDrive::Until(now + d),
                            OutputAction::NormalOpen => AuxDrive::On,
                        };
                        true
                    }
                    None => false,
                }
            } else {
                match u8::try_from(l.out_addr)
                    .ok()
                    .and_then(|d| self.door_index(d))
                {
                    Some(i) => {
                        match action {
                            OutputAction::Off => {
                                self.doors[i].set_normal_open(false);
                                self.doors[i].relock();
                            }
                            OutputAction::For(d) => self.doors[i].release(now, d),
                            OutputAction::NormalOpen => self.doors[i].set_normal_open(true),
                        }
                        true
                    }
                    None => false,
                }
            };
            if !driven {
                log::warn!(
                    "linkage {}: output {} does not exist; skipped",
                    l.index,
                    l.out_addr
                );
                continue;
            }
            // At least a second, so a zero-time action wired back cannot spin either.
            self.linkage_busy
                .insert(l.index, now + Duration::from_secs(secs.clamp(1, 254)));
            self.log_event(NewEvent {
                time: ev.time.clone(),
                pin: ev.pin.clone(),
                cardno: ev.cardno.clone(),
                sitecode: ev.sitecode.clone(),
                linkid: u32::try_from(l.index).unwrap_or(0),
                eventaddr: ev.eventaddr,
                event: 6,
                inoutstatus: ev.inoutstatus,
                // Appendix 2: a linkage record's verification mode is the event type.
                verifytype: ev.event.to_string(),
            });
        }
        self.drive_outputs(now);
        self.in_linkage = false;
    }

    /// Normal-open periods (DoorKeepOpenTimeZone, door rows of
    /// `outrelaysetting`; 5 at the start, 204 at the end) and scheduled aux
    /// outputs (229 / 230). Evaluated once per minute and whenever the
    /// rules changed (another connection committed).
    fn run_schedules(&mut self) {
        let when = self.local_now();
        let minute = when.with_second(0).unwrap_or(when);
        let version = self.data_version;
        if self.schedule_key == Some((minute, version)) && version >= 0 {
            return;
        }
        self.schedule_key = Some((minute, version));
        let outputs = match rules::scheduled_outputs(self.store.conn()) {
            Ok(o) => o,
            Err(e) => {
                log::error!("cannot read the scheduled outputs ({e})");
                Vec::new()
            }
        };
        let covers = |tz: i64| match rules::rule_covers(self.store.conn(), tz, when) {
            Ok(c) => c,
            Err(e) => {
                log::error!("cannot read time rule {tz} ({e}); it covers nothing");
                false
            }
        };
        let mut door_open = vec![false; self.doors.len()];
        for (i, d) in self.doors.iter().enumerate() {
            let by_param = self.settings[i].keep_open_tz.is_some_and(covers);
            let by_output = outputs.iter().any(|o| {
                !o.aux && o.action == 1 && o.num == i64::from(d.number) && covers(o.timezone)
            });
            door_open[i] = (by_param || by_output) && self.keep_open_off_on[i] != Some(when.date());
        }
        let mut aux = vec![AuxSchedule::None; self.aux.len()];
        for o in outputs.iter().filter(|o| o.aux) {
            let Some(i) = usize::try_from(o.num).ok().and_then(|n| n.checked_sub(1)) else {
                continue;
            };
            if i < aux.len() && covers(o.timezone) {
                aux[i] = if o.action == 1 {
                    AuxSchedule::On
                } else {
                    AuxSchedule::ForcedOff
                };
            }
        }
        for (i, open) in door_open.into_iter().enumerate() {
            if self.doors[i].schedule_open != open {
                self.doors[i].schedule_open = open;
                let n = u32::from(self.doors[i].number);
                self.log_plain(
                    if open {
                        code::NORMAL_OPEN_START
                    } else {
                        code::NORMAL_OPEN_END
                    },
                    n,
                );
            }
        }
        for (i, s) in aux.into_iter().enumerate() {
            let was_on = self.aux_sched[i] == AuxSchedule::On;
            self.aux_sched[i] = s;
            let n = u32::try_from(i + 1).unwrap_or(0);
            match (was_on, s == AuxSchedule::On) {
                (false, true) => self.log_plain(229, n),
                (true, false) => self.log_plain(230, n),
                _ => {}
            }
        }
    }

    fn log_plain(&mut self, event: u32, addr: u32) {
        let ev = NewEvent::plain(self.time_text(), event, addr);
        self.log_event(ev);
    }

    fn door_index(&self, number: u8) -> Option<usize> {
        self.doors.iter().position(|d| d.number == number)
    }

    // ----- HAL inputs ------------------------------------------------------

    fn on_hal(&mut self, ev: InputEvent, now: Instant) {
        match ev {
            InputEvent::Input {
                kind,
                level,
                initial,
                ..
            } => self.on_input(kind, level, initial, now),
            InputEvent::Wiegand { reader, frame } => self.on_frame(reader, &frame, now),
            // A reader that reports card numbers or keys (OSDP) takes the same paths as
            // the Wiegand frames that decode to them.
            InputEvent::CardNumber { reader, number, at } => {
                let card = Decoded::Card {
                    number,
                    site_code: None,
                    format: "number".into(),
                };
                if let Some(arrival) = self.arrival(reader) {
                    self.on_decoded(arrival, card, now, at.at);
                }
            }
            InputEvent::Keys { reader, keys, at } => {
                if let Some(arrival) = self.arrival(reader) {
                    self.on_decoded(arrival, Decoded::Keys(keys), now, at.at);
                }
            }
            InputEvent::Reader { reader, status, .. } => self.on_reader_status(reader, status),
            InputEvent::SourceFailed { source, error } => {
                log::error!("input source {source} failed: {error}; its inputs are no longer seen")
            }
        }
    }

    fn on_input(&mut self, kind: InputKind, level: bool, initial: bool, now: Instant) {
        match kind {
            InputKind::DoorSensor(n) => {
                let Some(i) = self.door_index(n) else { return };
                if initial {
                    // The level found at start is a state, not an event.
                    if self.settings[i].has_sensor {
                        self.doors[i].contact = if level {
                            door::Contact::Open {
                                since: now,
                                alarmed: false,
                            }
                        } else {
                            door::Contact::Closed
                        };
                    }
                    return;
                }
                let events = self.doors[i].on_contact(level, now, &self.settings[i]);
                for e in events {
                    self.log_plain(e, u32::from(n));
                }
            }
            InputKind::ExitButton(n) => {
                if initial || !level {
                    return;
                }
                let Some(i) = self.door_index(n) else { return };
                // DoorREXInput 0 ("Lock"; ~REXInputFunOn is "the exit door
                // locking function"): the button is locked, so a press
                // releases nothing and is logged as 209 "Press the exit
                // button (locked)", as at a remotely locked door.
                // DoorREXTimeOut ("the delay after the button switch event
                // occurs when the door is locked") names a delay but not
                // what it does; it is not applied.
                if self.doors[i].is_locked_shut() || !self.settings[i].exit_button_opens {
                    self.log_plain(code::EXIT_BUTTON_LOCKED, u32::from(n));
                    return;
                }
                // 36 "Press the exit button during the non-valid time
                // period": outside the door's DoorValidTZ the door is out
                // of service for the button as for cards.
                if let Some(tz) = self.settings[i].valid_tz {
                    let at = self.local_now();
                    match rules::rule_covers(self.store.conn(), tz, at) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.log_plain(code::EXIT_OUTSIDE_PERIOD, u32::from(n));
                            return;
                        }
                        Err(e) => log::error!("door {n}: cannot read DoorValidTZ's rule ({e})"),
                    }
                }
                match self.input_allowed(n, 0) {
                    Ok(true) => {}
                    Ok(false) => {
                        // 64: the exit button is outside its InputIOSetting period.
                        self.log_plain(64, u32::from(n));
                        return;
                    }
                    Err(e) => log::error!("door {n}: cannot read the exit button's period ({e})"),
                }
                match self.interlock_blocks(n, now) {
                    Ok(false) => {}
                    Ok(true) => {
                        // The exit button obeys the interlock as a card does.
                        self.log_plain(25, u32::from(n));
                        return;
                    }
                    Err(e) => log::error!("door {n}: cannot read InterLock ({e}); not applied"),
                }
                let drive = self.settings[i].drive_time;
                self.doors[i].release(now, drive);
                self.drive_outputs(now);
                self.log_plain(code::EXIT_BUTTON, u32::from(n));
            }
            InputKind::AuxIn(n) => {
                if initial {
                    return;
                }
                if level {
                    match self.input_allowed(n, 1) {
                        Ok(true) => {}
                        Ok(false) => {
                            // 65: the aux input is outside its InputIOSetting period.
                            self.log_plain(65, u32::from(n));
                            return;
                        }
                        Err(e) => log::error!("aux input {n}: cannot read its period ({e})"),
                    }
                }
                // 226 "trigger the auxiliary input point", 225 "is normal".
                self.log_plain(if level { 226 } else { 225 }, u32::from(n));
            }
            InputKind::Tamper => {
                for d in &mut self.doors {
                    if level {
                        d.alarms |= rtstate::alarm::TAMPER;
                    } else {
                        d.alarms &= !rtstate::alarm::TAMPER;
                    }
                }
                if level && !initial {
                    self.log_plain(code::TAMPER, 0);
                }
            }
            InputKind::PowerFail => {
                for d in &mut self.doors {
                    if level {
                        d.alarms |= rtstate::alarm::MAINS_FAILURE;
                    } else {
                        d.alarms &= !rtstate::alarm::MAINS_FAILURE;
                    }
                }
                if level && !initial {
                    // 107: mains power failure.
                    self.log_plain(107, 0);
                }
            }
        }
    }

    /// The formats a reader's frames are decoded with, built once and kept
    /// until another connection changes the database (data_version).
    fn format_table(&mut self, reader: u8) -> &FormatTable {
        if self.format_version != Some(self.data_version) || self.data_version < 0 {
            self.format_cache.clear();
            self.format_version = Some(self.data_version);
        }
        if !self.format_cache.contains_key(&reader) {
            let table = match self.build_format_table(reader) {
                Ok(t) => t,
                Err(e) => {
                    log::error!(
                        "reader {reader}: cannot read the Wiegand formats ({e}); using the board's"
                    );
                    self.board_formats(reader)
                }
            };
            self.format_cache.insert(reader, table);
        }
        match self.format_cache.get(&reader) {
            Some(t) => t,
            None => &self.standard_formats,
        }
    }

    /// The board's format of the reader (the standard ones if it names a bad one).
    fn board_formats(&self, reader: u8) -> FormatTable {
        match self.setup.board.reader(reader) {
            Some(r) => match self.setup.board.reader_format(r) {
                Ok(f) => FormatTable::single(f),
                Err(e) => {
                    log::warn!("reader {reader}: {e}; trying the standard formats");
                    FormatTable::standard()
                }
            },
            None => FormatTable::standard(),
        }
    }

    /// Server-defined formats (12.1.1.22–24): a reader with a
    /// `ReaderWGFormat` row decodes with that `WGFormat` only (with its
    /// parity and reversal settings), unless its door has DoorAutoMatch=1;
    /// other readers (and auto-matching ones after their own) try the
    /// board's format, then every `WGFormat`, then every `DefaultWGFormat`.
    /// Rows that do not make a format are skipped and logged.
    fn build_format_table(&self, reader: u8) -> rusqlite::Result<FormatTable> {
        let conn = self.store.conn();
        let parse = |row: &rules::WgFormatRow| -> Option<wiegand::Format> {
            let bits = row.card_bit.and_then(|b| usize::try_from(b).ok());
            let site = row.site_code.map_or(Some(0), |s| u32::try_from(s).ok());
            let (Some(bits), Some(site)) = (bits, site) else {
                log::warn!(
                    "Wiegand format {}: CardBit/SiteCode out of range; skipped",
                    row.id
                );
                return None;
            };
            match wiegand::Format::from_server_record(bits, site, &row.name, &row.card_format) {
                Ok(f) => Some(f),
                Err(e) => {
                    log::warn!(
                        "Wiegand format {} ({:?}): {e}; skipped",
                        row.id,
                        row.card_format
                    );
                    None
                }
            }
        };
        let server: Vec<(i64, wiegand::Format)> = rules::wiegand_formats(conn)?
            .iter()
            .filter_map(|r| parse(r).map(|f| (r.id, f)))
            .collect();
        let mut table = FormatTable {
            formats: Vec::new(),
            parity_check: true,
            reversal: wiegand::ReversalType::None,
        };
        if let Some(row) = rules::reader_wiegand_format(conn, reader)? {
            let id = row.format_id;
            table.parity_check = !row.parity_off;
            let code = row
                .reversal
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0);
            table.reversal = wiegand::ReversalType::from_code(code).unwrap_or_else(|| {
                log::warn!("reader {reader}: ReversalType {code} is unknown; none");
                wiegand::ReversalType::None
            });
            match server.iter().find(|(fid, _)| Some(*fid) == id) {
                Some((_, f)) => table.formats.push(f.clone()),
                None => log::warn!(
                    "reader {reader}: ReaderWGFormat names format {id:?}, which was not delivered or is unusable"
                ),
            }
        }
        let door = self.setup.board.reader(reader).map(|r| r.door);
        let auto = match door {
            Some(d) => rules::door_number(conn, d, "AutoMatch")? == Some(1),
            None => false,
        };
        if table.formats.is_empty() || auto {
            table.formats.extend(self.board_formats(reader).formats);
            table.formats.extend(server.into_iter().map(|(_, f)| f));
            table.formats.extend(
                rules::default_wiegand_formats(conn)?
                    .iter()
                    .filter_map(parse),
            );
        }
        Ok(table)
    }

    /// Where an input from reader `reader` arrives (None, logged, for a reader the board
    /// does not have).
    fn arrival(&self, reader: u8) -> Option<Arrival> {
        let Some(r) = self.setup.board.reader(reader) else {
            log::warn!("input from reader {reader}, which the board does not have; ignored");
            return None;
        };
        Some(Arrival {
            reader,
            door: r.door,
            inout: match r.direction {
                ReaderDirection::In => 0,
                ReaderDirection::Out => 1,
            },
        })
    }

    /// A reader's own state: 110/237 offline/online, 109/236 tamper (Appendix 2), logged
    /// at the reader's door and side; power reports have no code and are logged only.
    fn on_reader_status(&mut self, reader: u8, status: lintel_hal::ReaderStatus) {
        use lintel_hal::ReaderStatus as S;
        let Some(at) = self.arrival(reader) else {
            return;
        };
        let event = match status {
            S::Offline => 110,
            S::Online => 237,
            S::Tampered => 109,
            S::TamperCleared => 236,
            S::PowerFailed => {
                log::warn!("reader {reader} reports a power failure");
                return;
            }
            S::PowerRestored => {
                log::info!("reader {reader} reports its power restored");
                return;
            }
        };
        let mut ev = NewEvent::plain(self.time_text(), event, u32::from(at.door));
        ev.inoutstatus = at.inout;
        self.log_event(ev);
    }

    fn on_frame(&mut self, reader: u8, frame: &wiegand::WiegandFrame, now: Instant) {
        let Some(at) = self.arrival(reader) else {
            return;
        };
        if self.wiegand_test {
            let line = format!(
                "type=wg\tbitscount={}\tbits={}\tsn={}",
                frame.bits.len(),
                frame.bits,
                self.setup.serial
            );
            if let Err(e) = self.store.push_outbox("testdata", &line) {
                log::error!("cannot queue the Wiegand test record: {e}");
            }
            self.pending_notify = true;
            return;
        }
        let decoded = wiegand::decode(frame, self.format_table(reader));
        self.on_decoded(at, decoded, now, frame.last_edge.at);
    }

    /// A card, keys, or a frame no format matched, from one reader.
    fn on_decoded(&mut self, at: Arrival, decoded: Decoded, now: Instant, last_edge: Instant) {
        let reader = at.reader;
        match decoded {
            Decoded::Card {
                number, site_code, ..
            } => {
                if self.reader_disabled(at) {
                    let presented = Presented {
                        card: number.to_string(),
                        site: site_code.map_or_else(|| "0".into(), |s| s.to_string()),
                        factors: factor::CARD,
                    };
                    self.log_identification(at, "0", &presented, READER_DISABLED);
                    return;
                }
                self.on_card(at, number, site_code, now, last_edge);
            }
            Decoded::Keys(keys) => {
                for k in keys.chars() {
                    let typed = self.entries.entry(reader).or_default().on_key(k, now);
                    if let Some(typed) = typed {
                        self.on_keypad_entry(at, &typed, now);
                    }
                }
            }
            Decoded::BadFormat { bits, reason } => {
                log::info!("reader {reader}: frame {bits} matches no format ({reason:?})");
                // 42: incorrect Wiegand format.
                self.log_plain(42, u32::from(at.door));
            }
        }
    }

    /// Identification by card: who it is, then the verification mode.
    fn on_card(
        &mut self,
        at: Arrival,
        number: u64,
        site: Option<u32>,
        now: Instant,
        last_edge: Instant,
    ) {
        let presented = Presented {
            card: number.to_string(),
            site: site.map_or_else(|| "0".into(), |s| s.to_string()),
            factors: factor::CARD,
        };
        let user = match self.user_of_card(&presented.card, number) {
            Ok(Ok(u)) => u,
            Ok(Err((pin, event))) => {
                self.log_identification(at, &pin, &presented, event);
                return;
            }
            Err(e) => {
                // Without readable rules nothing can be granted; the event says why.
                log::error!(
                    "door {}: cannot read the rules ({e}); card {} denied",
                    at.door,
                    presented.card
                );
                self.log_identification(at, "0", &presented, 23);
                return;
            }
        };
        // A password typed first for the same user completes with the card.
        let entry = self.entries.entry(at.reader).or_default();
        let mut presented = presented;
        if let Some(p) = entry.pending.take() {
            if p.pin == user.pin && p.presented & factor::CARD == 0 {
                presented.factors |= p.presented;
            }
        }
        self.verify_and_decide(at, user, presented, now, Some(last_edge));
    }

    /// A keypad entry ended by `#`: the second factor of a waiting
    /// verification, or an identification by password or user ID.
    fn on_keypad_entry(&mut self, at: Arrival, typed: &str, now: Instant) {
        let when = self.local_now();
        let pending = self.entries.entry(at.reader).or_default().pending.take();
        if self.reader_disabled(at) {
            // Door passwords included: nothing typed at a disabled reader counts.
            let presented = Presented::typed(factor::PASSWORD);
            self.log_identification(at, "0", &presented, READER_DISABLED);
            return;
        }
        match self.door_password(at.door, typed) {
            Ok(Some(kind)) => {
                self.open_by_door_password(at, kind, pending, now);
                return;
            }
            Ok(None) => {}
            Err(e) => log::error!("door {}: cannot read its passwords ({e})", at.door),
        }
        if let Some(p) = pending {
            self.complete_pending(at, p, typed, now);
            return;
        }
        let mode = self.verify_mode(at, None, when);
        let (factors, found) = match mode.keypad_meaning() {
            KeypadMeaning::Password => (
                factor::PASSWORD,
                rules::users_by_password(self.store.conn(), typed).map(|mut users| {
                    if users.len() > 1 {
                        // Passwords that identify must be unique; two users
                        // sharing one cannot be told apart, so neither opens.
                        log::warn!(
                            "door {}: a password shared by several users was typed; refused",
                            at.door
                        );
                        None
                    } else {
                        users.pop()
                    }
                }),
            ),
            KeypadMeaning::UserId => (
                factor::USER_ID,
                rules::user_by_pin(self.store.conn(), typed),
            ),
            KeypadMeaning::Nothing => {
                let presented = Presented::typed(factor::PASSWORD);
                // 41: the door takes nothing from the keypad now.
                self.log_identification(at, "0", &presented, 41);
                return;
            }
        };
        let presented = Presented::typed(factors);
        match found {
            Ok(Some(user)) => self.verify_and_decide(at, user, presented, now, None),
            // 27: the user is not registered (30 "password is incorrect" is merged into it).
            Ok(None) => self.log_identification(at, "0", &presented, 27),
            Err(e) => {
                log::error!(
                    "door {}: cannot read the users ({e}); keypad entry denied",
                    at.door
                );
                self.log_identification(at, "0", &presented, 23);
            }
        }
    }

    /// ReaderProperty `Disable` (AccSupportFunList position 0, "Reader
    /// disabling"): whether the reader `at` arrived at is disabled. An
    /// unreadable table keeps the reader in service (its identifications
    /// still go through every other rule) and is logged.
    fn reader_disabled(&self, at: Arrival) -> bool {
        rules::reader_disabled(self.store.conn(), at.door, at.inout).unwrap_or_else(|e| {
            log::error!("door {}: cannot read the reader properties ({e})", at.door);
            false
        })
    }

    /// Whether `typed` is the door's emergency (DoorSupplierPassWord) or
    /// duress (DoorForcePassWord) password.
    fn door_password(&self, door: u8, typed: &str) -> rusqlite::Result<Option<DoorPassword>> {
        let conn = self.store.conn();
        let is = |name: &str| -> rusqlite::Result<bool> {
            Ok(rules::door_param(conn, door, name)?
                .is_some_and(|p| !p.trim().is_empty() && p.trim() == typed))
        };
        if is("SupplierPassWord")? {
            return Ok(Some(DoorPassword::Emergency));
        }
        if is("ForcePassWord")? {
            return Ok(Some(DoorPassword::Duress));
        }
        Ok(None)
    }

    /// The emergency password opens the door whatever the mode and rules
    /// (event 4). The duress password opens it as if all were well (a
    /// person is being forced) and raises the duress alarm (101, rtstate
    /// alarm bit 2) for the user whose card waited for it, if any.
    fn open_by_door_password(
        &mut self,
        at: Arrival,
        kind: DoorPassword,
        pending: Option<keypad::Pending>,
        now: Instant,
    ) {
        let Some(i) = self.door_index(at.door) else {
            return;
        };
        let drive = self.settings[i].drive_time;
        self.doors[i].release(now, drive);
        self.drive_outputs(now);
        let (pin, mut presented) = match pending {
            Some(p) => (
                p.pin,
                Presented {
                    card: p.card,
                    site: p.site,
                    factors: p.presented,
                },
            ),
            None => ("0".to_string(), Presented::typed(0)),
        };
        presented.factors |= factor::PASSWORD;
        let event = match kind {
            DoorPassword::Emergency => 4,
            DoorPassword::Duress => {
                self.doors[i].alarms |= rtstate::alarm::DURESS_PASSWORD;
                101
            }
        };
        self.log_identification(at, &pin, &presented, event);
    }

    /// The second factor for a waiting verification: the user's password
    /// (or user ID, where the mode asks for it).
    fn complete_pending(&mut self, at: Arrival, p: keypad::Pending, typed: &str, now: Instant) {
        let mut presented = Presented {
            card: p.card,
            site: p.site,
            factors: p.presented,
        };
        let user = match rules::user_by_pin(self.store.conn(), &p.pin) {
            Ok(Some(u)) => u,
            Ok(None) => {
                // Deleted while waiting.
                self.log_identification(at, "0", &presented, 27);
                return;
            }
            Err(e) => {
                log::error!("door {}: cannot read user {} ({e}); denied", at.door, p.pin);
                self.log_identification(at, &p.pin, &presented, 23);
                return;
            }
        };
        let when = self.local_now();
        let mode = self.verify_mode(at, Some(&user.pin), when);
        let wants = |f: u16| {
            presented.factors & f == 0 && mode.check(presented.factors | f) != Check::Wrong
        };
        if wants(factor::PASSWORD) && !user.password.is_empty() && typed == user.password {
            presented.factors |= factor::PASSWORD;
        } else if wants(factor::USER_ID) && typed == user.pin {
            presented.factors |= factor::USER_ID;
        } else {
            // A wrong password: 30 in older firmware, merged into 27 by Appendix 2.
            presented.factors |= factor::PASSWORD;
            self.log_identification(at, &user.pin, &presented, 27);
            return;
        }
        self.verify_and_decide(at, user, presented, now, None);
    }

    /// Checks the presented factors against the verification mode: refuses
    /// (41), waits for the rest, or decides and carries the decision out.
    fn verify_and_decide(
        &mut self,
        at: Arrival,
        user: rules::User,
        presented: Presented,
        now: Instant,
        last_edge: Option<Instant>,
    ) {
        let when = self.local_now();
        let mode = self.verify_mode(at, Some(&user.pin), when);
        match mode.check(presented.factors) {
            Check::Wrong => self.log_identification(at, &user.pin, &presented, 41),
            Check::NeedMore => {
                log::info!(
                    "door {}: user {} waits for the rest of a combined verification",
                    at.door,
                    user.pin
                );
                self.entries.entry(at.reader).or_default().pending = Some(keypad::Pending {
                    pin: user.pin,
                    card: presented.card,
                    site: presented.site,
                    presented: presented.factors,
                    until: now + keypad::COMBINED_TIMEOUT,
                });
            }
            Check::Satisfied => self.decide(at, &user, &presented, now, last_edge),
        }
    }

    /// Authorises an identified, verified user, drives the lock, logs.
    fn decide(
        &mut self,
        at: Arrival,
        user: &rules::User,
        presented: &Presented,
        now: Instant,
        last_edge: Option<Instant>,
    ) {
        let when = self.local_now();
        let verdict = self
            .authorize(at.door, at.inout, user, when, now)
            .and_then(|v| self.apply_first_card(at, user, presented, v, when))
            .and_then(|v| self.apply_multi_card(at, user, v, now));
        let verdict = match verdict {
            Ok(v) => v,
            Err(e) => {
                log::error!(
                    "door {}: cannot read the rules ({e}); user {} denied",
                    at.door,
                    user.pin
                );
                Verdict::Deny(23)
            }
        };
        if let Verdict::Grant(code) = verdict {
            if self.ask_server(at, user, presented, verdict, code, now, last_edge) {
                return;
            }
        }
        self.carry_out(at, &user.pin, presented, verdict, now, last_edge);
    }

    /// Drives the lock for a grant and logs the decision.
    fn carry_out(
        &mut self,
        at: Arrival,
        pin: &str,
        presented: &Presented,
        verdict: Verdict,
        now: Instant,
        last_edge: Option<Instant>,
    ) {
        let when = self.local_now();
        if let Verdict::Grant(_) = verdict {
            if let Some(i) = self.door_index(at.door) {
                let drive = self.settings[i].drive_time;
                self.doors[i].release(now, drive);
                self.last_punch.insert((pin.to_string(), at.door), now);
                self.drive_outputs(now);
                self.remember_passage(pin, at.door, at.inout, when);
                if let (Some(probe), Some(last_edge)) = (&self.setup.grant_probe, last_edge) {
                    let _ = probe.send(GrantTiming {
                        last_edge,
                        forwarded: self.forwarded_at,
                        received: now,
                        relay_set: Instant::now(),
                    });
                }
            }
        }
        let event = match verdict {
            Verdict::Grant(c) | Verdict::Deny(c) => c,
        };
        self.log_identification(at, pin, presented, event);
    }

    /// With `AutoServerFunOn` 1 and a remote identifier, a local grant is
    /// sent to the server on a thread of its own and decided when it
    /// answers (or when [`remote::REMOTE_TIMEOUT`] passes). True when asked.
    #[allow(clippy::too_many_arguments)]
    fn ask_server(
        &mut self,
        at: Arrival,
        user: &rules::User,
        presented: &Presented,
        verdict: Verdict,
        code: u32,
        now: Instant,
        last_edge: Option<Instant>,
    ) -> bool {
        let (Some(remote), Some(tx)) = (self.setup.remote.clone(), self.answers.clone()) else {
            return false;
        };
        match rules::option_number(self.store.conn(), "AutoServerFunOn") {
            Ok(Some(1)) => {}
            Ok(_) => return false,
            Err(e) => {
                log::error!("cannot read AutoServerFunOn ({e}); deciding locally");
                return false;
            }
        }
        let record = format!(
            "time={}\tpin={}\tcardno={}\taddrtype=2\teventaddr={}\tevent={code}\tinoutstatus={}\tverifytype={}",
            self.time_text(),
            user.pin,
            presented.card,
            at.door,
            at.inout,
            verify::verifytype(presented.factors, self.new_vf_styles()),
        );
        let token = self.session_token();
        let id = self.next_remote_id;
        self.next_remote_id += 1;
        let spawned = std::thread::Builder::new()
            .name("engine-remote".into())
            .spawn(move || {
                let verdict = remote.identify(&record, token.as_deref(), remote::REMOTE_TIMEOUT);
                let _ = tx.send(EngineInput::Remote { id, verdict });
            });
        if let Err(e) = spawned {
            log::error!("cannot start a remote identification ({e}); deciding locally");
            return false;
        }
        self.remote_pending.insert(
            id,
            RemotePending {
                at,
                pin: user.pin.clone(),
                presented: presented.clone(),
                local: verdict,
                until: now + remote::REMOTE_TIMEOUT,
                last_edge,
            },
        );
        true
    }

    /// The session's token (RegistryCode, SN, SessionID), if registered.
    fn session_token(&self) -> Option<String> {
        let conn = self.store.conn();
        let code = rules::option_text(conn, "RegistryCode").ok().flatten()?;
        let session = rules::option_text(conn, "SessionID").ok().flatten()?;
        Some(crate::protocol::token::token(
            &code,
            &self.setup.serial,
            &session,
        ))
    }

    /// The server answered remote identification `id`: 222 and open on
    /// SUCCESS (also running its CONTROL DEVICE line), 44 on FAILED, and on
    /// TIMEOUT or a failed request 45 followed by the local decision.
    fn on_remote_answer(
        &mut self,
        id: u64,
        verdict: Result<remote::RemoteVerdict, String>,
        now: Instant,
    ) {
        let Some(p) = self.remote_pending.remove(&id) else {
            log::info!("remote identification {id} answered after its timeout; ignored");
            return;
        };
        match verdict {
            Ok(remote::RemoteVerdict::Success { control }) => {
                self.carry_out(
                    p.at,
                    &p.pin,
                    &p.presented,
                    Verdict::Grant(222),
                    now,
                    p.last_edge,
                );
                if let Some(arg) = control {
                    match control::parse(&arg) {
                        Ok(control::ControlRequest::Door(cmd)) => {
                            let code = self.on_command(cmd, now);
                            if code != 0 {
                                log::warn!("the server's CONTROL DEVICE {arg} failed ({code})");
                            }
                        }
                        Ok(other) => log::warn!(
                            "the server's CONTROL DEVICE {arg} ({other:?}) is not a door command; ignored"
                        ),
                        Err(e) => log::warn!("the server's CONTROL DEVICE {arg}: {e}; ignored"),
                    }
                }
            }
            Ok(remote::RemoteVerdict::Failed) => {
                // 44: remote identification failed.
                self.log_identification(p.at, &p.pin, &p.presented, 44);
            }
            Ok(remote::RemoteVerdict::Timeout) => self.remote_fallback(p, now),
            Err(e) => {
                log::warn!("remote identification {id} failed ({e}); deciding locally");
                self.remote_fallback(p, now);
            }
        }
    }

    /// 45 (remote identification timed out), then the local decision.
    fn remote_fallback(&mut self, p: RemotePending, now: Instant) {
        self.log_identification(p.at, &p.pin, &p.presented, 45);
        self.carry_out(p.at, &p.pin, &p.presented, p.local, now, p.last_edge);
    }

    /// DoorFirstCardOpenDoor (Appendix 10; users in `firstcard`): inside
    /// one of the user's first-card periods, the first grant of a first-card
    /// user becomes event 2 (215 when a password was part of it) and either
    /// holds the door open until that period ends (1) or lets everyone else
    /// in until then (2, "activation"). Before activation, mode 2 refuses
    /// ordinary users inside any first-card period of the door with 23
    /// (Appendix 2 has no code of its own for it).
    fn apply_first_card(
        &mut self,
        at: Arrival,
        user: &rules::User,
        presented: &Presented,
        verdict: Verdict,
        when: chrono::NaiveDateTime,
    ) -> rusqlite::Result<Verdict> {
        // Super users (208) and refusals pass unchanged.
        if !matches!(verdict, Verdict::Grant(0) | Verdict::Grant(1)) {
            return Ok(verdict);
        }
        let Some(i) = self.door_index(at.door) else {
            return Ok(verdict);
        };
        let conn = self.store.conn();
        let mode = rules::door_number(conn, at.door, "FirstCardOpenDoor")?.unwrap_or(0);
        if !(mode == 1 || mode == 2) || self.first_card[i] != FirstCard::Idle {
            return Ok(verdict);
        }
        for tz in rules::first_card_timezones(conn, at.door, &user.pin)? {
            if rules::rule_covers(conn, tz, when)? {
                self.first_card[i] = FirstCard::Active {
                    tz,
                    holds_open: mode == 1,
                };
                self.doors[i].first_card_open = mode == 1;
                let by_password = presented.factors & factor::PASSWORD != 0;
                return Ok(Verdict::Grant(if by_password { 215 } else { 2 }));
            }
        }
        if mode == 2 {
            for tz in rules::door_first_card_timezones(conn, at.door)? {
                if rules::rule_covers(conn, tz, when)? {
                    return Ok(Verdict::Deny(23));
                }
            }
        }
        Ok(verdict)
    }

    /// DoorMultiCardOpenDoor 1 with `multimcard` rows: a grant becomes a
    /// wait (26) until a group combination is complete (3); a user whose
    /// group is in no combination is refused (40). Super users (208),
    /// normal-open (1) and first-card (2, 215) grants are not held.
    fn apply_multi_card(
        &mut self,
        at: Arrival,
        user: &rules::User,
        verdict: Verdict,
        now: Instant,
    ) -> rusqlite::Result<Verdict> {
        if verdict != Verdict::Grant(0) {
            return Ok(verdict);
        }
        let Some(i) = self.door_index(at.door) else {
            return Ok(verdict);
        };
        let conn = self.store.conn();
        if rules::door_number(conn, at.door, "MultiCardOpenDoor")? != Some(1) {
            return Ok(verdict);
        }
        let combos = rules::multi_card_combinations(conn, at.door)?;
        if combos.is_empty() {
            log::warn!(
                "door {}: multi-card opening is on but no combination was delivered; single users open",
                at.door
            );
            return Ok(verdict);
        }
        let window = rules::door_number(conn, at.door, "MultiCardInterTime")?
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
            .map_or(multicard::DEFAULT_INTER_TIME, Duration::from_secs);
        Ok(
            match self.multi[i].present(&user.pin, user.group, &combos, now, window) {
                multicard::Outcome::Open => Verdict::Grant(3),
                multicard::Outcome::Wait => Verdict::Deny(26),
                multicard::Outcome::Refused => Verdict::Deny(40),
            },
        )
    }

    /// Ends first-card states whose period is over (204 for a door that
    /// was held open). Runs at every step and on the minute while one is active.
    fn end_first_card_periods(&mut self) {
        if self.first_card.iter().all(|f| *f == FirstCard::Idle) {
            return;
        }
        let when = self.local_now();
        for i in 0..self.doors.len() {
            let FirstCard::Active { tz, holds_open } = self.first_card[i] else {
                continue;
            };
            match rules::rule_covers(self.store.conn(), tz, when) {
                Ok(true) => {}
                Ok(false) => {
                    self.first_card[i] = FirstCard::Idle;
                    if holds_open {
                        self.doors[i].first_card_open = false;
                        let n = u32::from(self.doors[i].number);
                        self.log_plain(code::NORMAL_OPEN_END, n);
                    }
                }
                Err(e) => log::error!(
                    "door {}: cannot read first-card rule {tz} ({e}); trying again",
                    self.doors[i].number
                ),
            }
        }
    }

    /// The rtlog record of an identification (granted or not).
    fn log_identification(&mut self, at: Arrival, pin: &str, presented: &Presented, event: u32) {
        let new_style = self.new_vf_styles();
        self.log_event(NewEvent {
            time: self.time_text(),
            pin: pin.to_string(),
            cardno: presented.card.clone(),
            sitecode: presented.site.clone(),
            linkid: 0,
            eventaddr: u32::from(at.door),
            event,
            inoutstatus: at.inout,
            // The Appendix 3 code of the factors that were presented.
            verifytype: verify::verifytype(presented.factors, new_style),
        });
    }

    /// Whether the server answered `NewVFStyles` at registration (7.1):
    /// then `verifytype` is the 16-bit string of 10.2, else the Appendix 3 code.
    fn new_vf_styles(&self) -> bool {
        match rules::option_text(self.store.conn(), "NewVFStyles") {
            Ok(Some(v)) => v.trim().bytes().any(|b| b == b'1'),
            Ok(None) => false,
            Err(e) => {
                log::error!("cannot read NewVFStyles ({e}); using Appendix 3 codes");
                false
            }
        }
    }

    /// The verification mode at this reader for this user (when known),
    /// most specific first: the user's period (PersonalVSTimezone), the
    /// door's period (DoorVSTimezone), the reader (ReaderProperty.VerifyType,
    /// 0 = as the door), the door (DoorVerifyType), else 0 (auto).
    fn verify_mode(&self, at: Arrival, pin: Option<&str>, when: chrono::NaiveDateTime) -> Mode {
        match self.read_verify_mode(at, pin, when) {
            Ok(m) => m,
            Err(e) => {
                log::error!(
                    "door {}: cannot read the verification mode ({e}); card only",
                    at.door
                );
                Mode::from_code(4).unwrap_or_else(Mode::auto)
            }
        }
    }

    fn read_verify_mode(
        &self,
        at: Arrival,
        pin: Option<&str>,
        when: chrono::NaiveDateTime,
    ) -> rusqlite::Result<Mode> {
        let conn = self.store.conn();
        let known = |what: &str, code: i64| {
            let m = Mode::from_code(code);
            if m.is_none() {
                log::warn!(
                    "door {}: {what} verification mode {code} is not in Appendix 3; ignored",
                    at.door
                );
            }
            m
        };
        if let Some(pin) = pin {
            if let Some(tz) = rules::personal_vs_timezone(conn, pin, at.door)? {
                if let Some(code) = rules::vs_mode(conn, tz, when, rules::VsFor::User)? {
                    if let Some(m) = known("personal", code) {
                        return Ok(m);
                    }
                }
            }
        }
        if let Some(tz) = rules::door_vs_timezone(conn, at.door)? {
            if let Some(code) = rules::vs_mode(conn, tz, when, rules::VsFor::Door)? {
                if let Some(m) = known("door period", code) {
                    return Ok(m);
                }
            }
        }
        if let Some(code) = rules::reader_verify_type(conn, at.door, at.inout)? {
            if code != 0 {
                if let Some(m) = known("reader", code) {
                    return Ok(m);
                }
            }
        }
        if let Some(v) = rules::door_param(conn, at.door, "VerifyType")? {
            if !v.trim().is_empty() {
                match Mode::parse(&v) {
                    Some(m) => return Ok(m),
                    None => log::warn!(
                        "door {}: DoorVerifyType {v:?} is not a mode; ignored",
                        at.door
                    ),
                }
            }
        }
        Ok(Mode::auto())
    }

    /// Persists the passage for the anti-passback rules in use.
    fn remember_passage(&self, pin: &str, door: u8, inout: u32, at: chrono::NaiveDateTime) {
        if let Err(e) = self.try_remember_passage(pin, door, inout, at) {
            log::error!("door {door}: cannot remember user {pin}'s passage for APB: {e}");
        }
    }

    fn try_remember_passage(
        &self,
        pin: &str,
        door: u8,
        inout: u32,
        at: chrono::NaiveDateTime,
    ) -> rusqlite::Result<()> {
        let conn = self.store.conn();
        let at = format_record_time(at);
        let in_out = rules::door_number(conn, door, "InOutAntiPassback")?.unwrap_or(0);
        let in_time = rules::door_number(conn, door, "InTimeAPB")?.unwrap_or(0);
        if in_out > 0 || in_time > 0 {
            rules::apb_record(conn, pin, door, inout, &at)?;
        }
        let device_apb = rules::option_number(conn, "AntiPassback")?.unwrap_or(0);
        for zone in apb::zones(device_apb) {
            if let Some(side) = zone.side(door, inout) {
                rules::apb_zone_record(conn, pin, zone.id, side, &at)?;
            }
        }
        Ok(())
    }

    /// Whether an input (`in_type` 0 exit button of door `number`, 1 aux
    /// input) is inside its `InputIOSetting` period, or has none.
    fn input_allowed(&self, number: u8, in_type: u8) -> rusqlite::Result<bool> {
        let conn = self.store.conn();
        match rules::input_timezone(conn, number, in_type)? {
            Some(tz) => rules::rule_covers(conn, tz, self.local_now()),
            None => Ok(true),
        }
    }

    /// InterLock (Appendix 9): whether another door of `door`'s group is
    /// open or released now, so `door` must stay shut (25).
    fn interlock_blocks(&self, door: u8, now: Instant) -> rusqlite::Result<bool> {
        let value = rules::option_number(self.store.conn(), "InterLock")?.unwrap_or(0);
        for group in apb::interlock_groups(value) {
            if !group.contains(&door) {
                continue;
            }
            for other in group.iter().filter(|o| **o != door) {
                if let Some(j) = self.door_index(*other) {
                    let d = &self.doors[j];
                    if matches!(d.contact, door::Contact::Open { .. }) || d.lock_wanted(now) {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// The user a card belongs to, or the refusal (pin, event) when none.
    #[allow(clippy::type_complexity)]
    fn user_of_card(
        &self,
        card: &str,
        number: u64,
    ) -> rusqlite::Result<Result<rules::User, (String, u32)>> {
        let conn = self.store.conn();
        if let Some(u) = rules::user_by_card(conn, card)? {
            return Ok(Ok(u));
        }
        Ok(match rules::extra_card(conn, number)? {
            Some(extra) if extra.lost => Err((extra.pin, 38)),
            Some(extra) => match rules::user_by_pin(conn, &extra.pin)? {
                Some(u) => Ok(u),
                None => Err(("0".into(), 27)),
            },
            None => Err(("0".into(), 27)),
        })
    }
    /// [`Self::authorize_rules`], then the door's valid period: outside
    /// DoorValidTZ (Appendix 10, "Valid time period of the door") a user
    /// who would be let in is refused with 22 "Invalid time period". 21 is
    /// the user's own time rule ("verification during the non-valid time
    /// period"); 22 is the one code Appendix 2 has for a period that is not
    /// the user's. Refusals for other reasons keep their own code, and the
    /// period applies to super users too (the door itself is not in
    /// service). A rule that was never delivered covers nothing, as
    /// everywhere: the door then opens for nobody until it arrives.
    fn authorize(
        &self,
        door: u8,
        inout: u32,
        user: &rules::User,
        at: chrono::NaiveDateTime,
        now: Instant,
    ) -> rusqlite::Result<Verdict> {
        let verdict = self.authorize_rules(door, inout, user, at, now)?;
        if let Verdict::Grant(_) = verdict {
            let valid_tz = self
                .door_index(door)
                .and_then(|i| self.settings[i].valid_tz);
            if let Some(tz) = valid_tz {
                if !rules::rule_covers(self.store.conn(), tz, at)? {
                    return Ok(Verdict::Deny(22));
                }
            }
        }
        Ok(verdict)
    }

    /// The rules of 2. in order: blacklist, validity, door state, super user,
    /// door × time rule, punch interval, normal open.
    fn authorize_rules(
        &self,
        door: u8,
        inout: u32,
        user: &rules::User,
        at: chrono::NaiveDateTime,
        now: Instant,
    ) -> rusqlite::Result<Verdict> {
        let conn = self.store.conn();
        if user.disabled {
            return Ok(Verdict::Deny(39));
        }
        let at_text = format_record_time(at);
        // Both ends are inclusive, to the second.
        if user
            .start_at
            .as_deref()
            .is_some_and(|s| at_text.as_str() < s)
            || user.end_at.as_deref().is_some_and(|e| at_text.as_str() > e)
        {
            return Ok(Verdict::Deny(29));
        }
        let Some(i) = self.door_index(door) else {
            return Ok(Verdict::Deny(23));
        };
        // DoorDisable is "1: enable, 0: disable"; DoorMaskFlag 1 locks the door.
        if rules::door_number(conn, door, "Disable")? == Some(0)
            || rules::door_number(conn, door, "MaskFlag")? == Some(1)
            || self.doors[i].is_locked_shut()
        {
            return Ok(Verdict::Deny(63));
        }
        if rules::is_super_user(conn, &user.pin, door)? {
            return Ok(Verdict::Grant(208));
        }
        let bit = 1i64 << (door.saturating_sub(1).min(62));
        let mut any_door = false;
        let mut in_time = false;
        for (tz, mask) in rules::authorizations(conn, &user.pin)? {
            if mask & bit == 0 {
                continue;
            }
            any_door = true;
            if rules::rule_covers(conn, tz, at)? {
                in_time = true;
                break;
            }
        }
        if !any_door {
            return Ok(Verdict::Deny(23));
        }
        if !in_time {
            return Ok(Verdict::Deny(21));
        }
        // DoorIntertime: Appendix 10's default is 2 s.
        let interval = rules::door_number(conn, door, "Intertime")?.unwrap_or(2);
        if interval > 0 {
            if let Some(last) = self.last_punch.get(&(user.pin.clone(), door)) {
                let gap = Duration::from_secs(u64::try_from(interval).unwrap_or(0));
                // A gap past what Instant holds (a server's value) never ends.
                if last.checked_add(gap).is_none_or(|until| now < until) {
                    return Ok(Verdict::Deny(20));
                }
            }
        }
        // DoorInOutAntiPassback: 1 in, 2 out, 3 both. A second passage in the
        // same direction without the opposite one between is refused (24).
        let apb = rules::door_number(conn, door, "InOutAntiPassback")?.unwrap_or(0);
        if apb > 0 {
            let guarded = if inout == 0 {
                apb & 1 != 0
            } else {
                apb & 2 != 0
            };
            if guarded && rules::apb_last(conn, &user.pin, door)? == Some(inout) {
                return Ok(Verdict::Deny(24));
            }
        }
        // DoorInTimeAPB: no second passage at this door within that many seconds.
        let in_time = rules::door_number(conn, door, "InTimeAPB")?.unwrap_or(0);
        if in_time > 0 {
            let last = rules::apb_last_at(conn, &user.pin, door)?
                .and_then(|t| crate::protocol::time::parse_record_time(&t));
            if let Some(last) = last {
                // A clock set back (last in the future) does not lock anyone out.
                // A duration past chrono's range (a server's value) never ends.
                let until =
                    chrono::Duration::try_seconds(in_time).and_then(|d| last.checked_add_signed(d));
                if at >= last && until.is_none_or(|until| at < until) {
                    return Ok(Verdict::Deny(24));
                }
            }
        }
        // AntiPassback (Appendix 8): alternate between the sides of each zone.
        let device_apb = rules::option_number(conn, "AntiPassback")?.unwrap_or(0);
        for zone in apb::zones(device_apb) {
            if let Some(side) = zone.side(door, inout) {
                if rules::apb_zone_last(conn, &user.pin, zone.id)? == Some(side) {
                    return Ok(Verdict::Deny(24));
                }
            }
        }
        if self.interlock_blocks(door, now)? {
            return Ok(Verdict::Deny(25));
        }
        if self.doors[i].is_normal_open() {
            return Ok(Verdict::Grant(1));
        }
        Ok(Verdict::Grant(0))
    }

    // ----- commands ----------------------------------------------------------

    fn doors_matching(&self, door: u8) -> Vec<usize> {
        if door == 0 {
            (0..self.doors.len()).collect()
        } else {
            self.door_index(door).into_iter().collect()
        }
    }

    fn on_command(&mut self, cmd: DoorCommand, now: Instant) -> i64 {
        use crate::commands::codes;
        match cmd {
            DoorCommand::Output {
                target: OutputTarget::Lock,
                index,
                action,
            } => {
                let doors = self.doors_matching(index);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    let n = u32::from(self.doors[i].number);
                    match action {
                        OutputAction::Off => {
                            self.doors[i].set_normal_open(false);
                            self.log_plain(code::REMOTE_CLOSE, n);
                        }
                        OutputAction::For(d) => {
                            self.doors[i].release(now, d);
                            self.drive_outputs(now);
                            self.log_plain(code::REMOTE_OPEN, n);
                        }
                        OutputAction::NormalOpen => {
                            self.doors[i].set_normal_open(true);
                            self.drive_outputs(now);
                            self.log_plain(code::REMOTE_NORMAL_OPEN, n);
                        }
                    }
                }
                codes::OK
            }
            DoorCommand::Output {
                target: OutputTarget::Aux,
                index,
                action,
            } => {
                let idx: Vec<usize> = if index == 0 {
                    (0..self.aux.len()).collect()
                } else {
                    let i = usize::from(index) - 1;
                    if i >= self.aux.len() {
                        return codes::BAD_PARAMETER;
                    }
                    vec![i]
                };
                for i in idx {
                    let n = u32::try_from(i + 1).unwrap_or(0);
                    self.aux[i] = match action {
                        OutputAction::Off => AuxDrive::Off,
                        OutputAction::For(d) => AuxDrive::Until(now + d),
                        OutputAction::NormalOpen => AuxDrive::On,
                    };
                    // 12 / 13: aux output enabled / disabled remotely.
                    self.log_plain(if action == OutputAction::Off { 13 } else { 12 }, n);
                }
                codes::OK
            }
            DoorCommand::CancelAlarm { door } => {
                let doors = self.doors_matching(door);
                for i in doors {
                    self.doors[i].alarms &= !(rtstate::alarm::FORCED_OPEN
                        | rtstate::alarm::HELD_OPEN
                        | rtstate::alarm::DURESS_PASSWORD
                        | rtstate::alarm::DURESS_FINGERPRINT);
                    let n = u32::from(self.doors[i].number);
                    self.log_plain(code::ALARM_CANCELLED, n);
                }
                codes::OK
            }
            DoorCommand::NormalOpen { door, enable } => {
                let doors = self.doors_matching(door);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    let n = u32::from(self.doors[i].number);
                    self.doors[i].set_normal_open(enable);
                    // The day's normal-open period (DoorKeepOpenTimeZone) off or on again.
                    self.keep_open_off_on[i] = if enable {
                        None
                    } else {
                        Some(self.local_now().date())
                    };
                    self.schedule_key = None;
                    if !enable {
                        // "Disable the normal open period of the day" also
                        // ends a first-card normal open.
                        self.doors[i].first_card_open = false;
                        if let FirstCard::Active { tz, .. } = self.first_card[i] {
                            self.first_card[i] = FirstCard::Active {
                                tz,
                                holds_open: false,
                            };
                        }
                    }
                    // 11 / 10: the day's normal-open period enabled / disabled.
                    self.log_plain(if enable { 11 } else { 10 }, n);
                }
                codes::OK
            }
            DoorCommand::Lock { door, locked } => {
                let doors = self.doors_matching(door);
                if doors.is_empty() {
                    return codes::BAD_PARAMETER;
                }
                for i in doors {
                    let n = u32::from(self.doors[i].number);
                    self.doors[i].overrides = if locked {
                        Override::LockedShut
                    } else {
                        Override::None
                    };
                    self.log_plain(
                        if locked {
                            code::REMOTE_LOCK
                        } else {
                            code::REMOTE_UNLOCK
                        },
                        n,
                    );
                }
                codes::OK
            }
            DoorCommand::Emergency { all_open } => {
                for i in 0..self.doors.len() {
                    self.doors[i].overrides = if all_open {
                        Override::HeldOpen
                    } else {
                        Override::LockedShut
                    };
                    let n = u32::from(self.doors[i].number);
                    self.log_plain(
                        if all_open {
                            code::DUAL_ON
                        } else {
                            code::DUAL_OFF
                        },
                        n,
                    );
                }
                codes::OK
            }
            DoorCommand::WiegandTest { start } => {
                self.wiegand_test = start;
                codes::OK
            }
        }
    }
}
