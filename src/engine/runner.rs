//! The thin engine: owns the loop, the store connection and the wiring of
//! the rooms. A step reads `PRAGMA data_version` and the door parameters
//! when they changed, hands the input to the room it belongs to, then ends
//! the same way every time ([`Engine::finish_step`]): held events, the
//! schedules, timers of every room, the outputs, rtstate, and the session
//! woken. It owns no access logic of its own and NEVER waits on the
//! network: the rooms decide, the engine logs their events (with the
//! linkages they trigger) and drives the outputs in the order of a step.

use super::decide::Decision;
use super::door::code;
use super::doors::{AuxSchedule, Doors};
use super::firstcard::FirstCards;
use super::formats::FormatCache;
use super::handle::{EngineInput, EngineSetup, OutputAction, Outputs};
use super::identify::{Arrival, Keypads, Presented};
use super::linkage::{self, Linkages};
use super::remote_wait::RemoteWaits;
use super::schedule::{ScheduledDoor, Schedules};
use super::{dst, lock, rules};
use crate::protocol::time::format_record_time;
use crate::session::SessionInput;
use crate::store::held_report::flush_held_events;
use crate::store::{Logged, NewEvent, Store};
use crate::watchdog::Liveness;
use chrono::Timelike;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Prepared statements the engine's connection keeps (all of `rules`'s).
const STATEMENT_CACHE: usize = 128;

pub struct Engine {
    pub(super) setup: EngineSetup,
    pub(super) store: Store,
    /// Doors, relays, aux outputs, alarms and rtstate.
    pub(super) doors: Doors,
    /// Keypad entries and combined verifications per reader.
    pub(super) keypads: Keypads,
    /// Decoding tables per reader.
    pub(super) formats: FormatCache,
    /// Punch intervals and multi-card waits.
    pub(super) decision: Decision,
    /// First-card state per door.
    pub(super) first_cards: FirstCards,
    /// Normal-open periods and scheduled outputs.
    pub(super) schedules: Schedules,
    pub(super) linkages: Linkages,
    /// Remote identifications waiting for the server.
    pub(super) remote: RemoteWaits,
    pub(super) settings_version: Option<i64>,
    pub(super) dst: dst::Dst,
    /// `PRAGMA data_version` read at the start of the step (-1 unreadable).
    pub(super) data_version: i64,
    pub(super) hal_handled: Arc<AtomicU64>,
    /// Set when the engine thread ends: HAL events are no longer handled.
    pub(super) stopped: bool,
    /// Where remote-identification threads send their answers.
    pub(super) answers: Option<Sender<EngineInput>>,
    /// When the HAL event of this step was forwarded (benchmark probe).
    pub(super) forwarded_at: Instant,
    /// Until when read frames go to the server as `testdata` (CONTROL 09).
    pub(super) wiegand_test: Option<Instant>,
    /// Events queued during this step, not yet announced to the session.
    pub(super) pending_notify: bool,
}

impl Engine {
    pub fn new(setup: EngineSetup, store: Store, outputs: Outputs) -> Engine {
        // rusqlite keeps 16 prepared statements by default; a decision uses
        // more distinct ones than that, and an evicted one is prepared again
        // on every card (measured: +0.3 ms p50 during a bulk sync).
        store
            .conn()
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let now = setup.monotonic.now();
        let doors = Doors::new(setup.board.doors.iter().map(|d| d.number), outputs, now);
        let count = doors.len();
        Engine {
            setup,
            store,
            doors,
            keypads: Keypads::default(),
            formats: FormatCache::default(),
            decision: Decision::new(count),
            first_cards: FirstCards::new(count),
            schedules: Schedules::new(count),
            linkages: Linkages::default(),
            remote: RemoteWaits::default(),
            settings_version: None,
            dst: dst::Dst::default(),
            data_version: -1,
            hal_handled: Arc::new(AtomicU64::new(0)),
            stopped: false,
            answers: None,
            forwarded_at: now,
            wiegand_test: None,
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
    pub(super) fn start_up(&mut self) {
        self.refresh_settings();
        let now = self.setup.monotonic.now();
        self.log_plain(code::DEVICE_START, 0);
        self.finish_step(now);
    }

    /// The engine thread's loop: waits on the channel until the next
    /// deadline without holding the lock, then steps under it.
    pub(super) fn run_shared(
        engine: &Mutex<Engine>,
        rx: &Receiver<EngineInput>,
        liveness: Option<&Liveness>,
    ) {
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
                    self.doors.set_settings(
                        i,
                        rules::door_settings_from(&params, d.number, d.sensor.is_some()),
                    );
                }
            }
            Err(e) => {
                log::error!("cannot read the door parameters ({e}); keeping the previous ones")
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let entries = self
            .keypads
            .deadlines()
            .chain(self.decision.deadlines())
            .chain(self.remote.deadlines());
        // Wall-clock periods are looked at on each minute while one matters.
        // Time rules have minute resolution: look at the schedules on each
        // minute (normal-open periods, scheduled outputs, first-card periods).
        let minute = {
            let s = self.local_now().second();
            Some(self.setup.monotonic.now() + Duration::from_secs(u64::from(60 - s.min(59))))
        };
        self.doors
            .next_deadline()
            .into_iter()
            .chain(entries)
            .chain(minute)
            .chain(std::iter::once(self.doors.next_periodic()))
            .min()
    }

    /// Timers, outputs, rtstate, session wake-up: the end of every step.
    pub(super) fn finish_step(&mut self, now: Instant) {
        // Events the database could not take earlier go first (in order).
        let clock = &*self.setup.clock;
        if flush_held_events(&mut self.store, None, &|conn| {
            rules::wall_clock(conn, clock)
        }) {
            self.pending_notify = true;
        }
        self.run_schedules();
        self.linkages.expire(now);
        for id in self.remote.expired(now) {
            if let Some(p) = self.remote.take(id) {
                log::warn!("remote identification {id} not answered in time; deciding locally");
                self.remote_fallback(p, now);
            }
        }
        self.end_first_card_periods();
        for i in 0..self.doors.len() {
            if let Some(pin) = self.decision.poll_multi(i, now) {
                // 40: the combination was not completed in time.
                let mut ev = NewEvent::plain(self.time_text(), 40, u32::from(self.doors[i].number));
                ev.pin = pin;
                self.log_event(ev);
            }
        }
        for i in 0..self.doors.len() {
            let events = self.doors.poll(i, now);
            let number = self.doors[i].number;
            for e in events {
                self.log_plain(e, u32::from(number));
            }
        }
        for (reader, p) in self.keypads.expired(now) {
            if let Some(at) = Arrival::at_reader(&self.setup.board, reader) {
                let (pin, presented) = Presented::of_pending(p);
                // 75: combined verification timeout.
                self.log_identification(at, &pin, &presented, 75);
            }
        }
        self.doors.expire_aux(now);
        self.doors.drive(now);
        self.queue_state(now);
        if self.pending_notify {
            self.pending_notify = false;
            if let Some(s) = &self.setup.session {
                let _ = s.send(SessionInput::OutboxChanged);
            }
        }
    }

    fn queue_state(&mut self, now: Instant) {
        let Some(fields) = self.doors.state_due(now) else {
            return;
        };
        let line = format!("time={}\t{fields}", self.time_text());
        match self.store.replace_rtstate(&line) {
            Ok(_) => {
                let next = now + self.setup.rtstate_period;
                self.doors.state_queued(fields, next);
                self.pending_notify = true;
            }
            Err(e) => {
                log::error!("cannot queue the rtstate record: {e}; retrying at the next step");
            }
        }
    }

    pub(super) fn time_text(&self) -> String {
        format_record_time(self.local_now())
    }

    /// Local time as rules and records see it (see [`dst::Dst::wall`]).
    pub(super) fn local_now(&self) -> chrono::NaiveDateTime {
        rules::wall_time(&*self.setup.clock, &self.dst)
    }

    pub(super) fn log_event(&mut self, ev: NewEvent) {
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
        if self.linkages.triggered_by(ev.event) {
            self.run_linkages(&ev);
        }
    }

    pub(super) fn log_plain(&mut self, event: u32, addr: u32) {
        let ev = NewEvent::plain(self.time_text(), event, addr);
        self.log_event(ev);
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
        self.linkages.set_running(true);
        for l in rows {
            if self.linkages.busy(l.index, now) {
                log::info!(
                    "linkage {}: its last action still runs; not repeated",
                    l.index
                );
                continue;
            }
            let (action, _) = linkage::action_of(&l);
            let driven = if l.aux {
                let i = usize::try_from(l.out_addr)
                    .ok()
                    .and_then(|a| a.checked_sub(1));
                i.is_some_and(|i| {
                    !rules::aux_disabled(
                        self.store.conn(),
                        true,
                        u32::try_from(l.out_addr).unwrap_or(0),
                    ) && self.doors.drive_aux(i, action, now)
                })
            } else {
                match u8::try_from(l.out_addr)
                    .ok()
                    .and_then(|d| self.doors.index_of(d))
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
            self.linkages.acted(&l, now);
            self.log_event(linkage::record(&l, ev));
        }
        self.doors.drive(now);
        self.linkages.set_running(false);
    }

    /// Normal-open periods (5 at the start, 204 at the end) and scheduled
    /// aux outputs (229 / 230): the plan of [`Schedules`], applied.
    /// Evaluated once per minute and whenever the rules changed (another
    /// connection committed).
    fn run_schedules(&mut self) {
        let when = self.local_now();
        if !self.schedules.due(when, self.data_version) {
            return;
        }
        let conn = self.store.conn();
        let outputs = match rules::scheduled_outputs(conn) {
            Ok(o) => o,
            Err(e) => {
                log::error!("cannot read the scheduled outputs ({e})");
                Vec::new()
            }
        };
        let covers = |tz: i64| match rules::rule_covers(conn, tz, when) {
            Ok(c) => c,
            Err(e) => {
                log::error!("cannot read time rule {tz} ({e}); it covers nothing");
                false
            }
        };
        let doors = (0..self.doors.len()).map(|i| ScheduledDoor {
            number: self.doors[i].number,
            keep_open_tz: self.doors.settings(i).keep_open_tz,
        });
        let plan = self
            .schedules
            .plan(doors, self.doors.aux_count(), &outputs, when, covers);
        for (i, open) in plan.door_open.into_iter().enumerate() {
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
        for (i, s) in plan.aux.into_iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(0);
            // AuxOut Disable=1: no schedule moves it either.
            let s = if rules::aux_disabled(self.store.conn(), true, n) {
                AuxSchedule::None
            } else {
                s
            };
            let was_on = self.doors.set_aux_schedule(i, s);
            match (was_on, s == AuxSchedule::On) {
                (false, true) => self.log_plain(229, n),
                (true, false) => self.log_plain(230, n),
                _ => {}
            }
        }
    }

    /// Ends first-card states whose period is over (204 for a door that
    /// was held open). Runs at every step and on the minute while one is active.
    fn end_first_card_periods(&mut self) {
        if self.first_cards.all_idle() {
            return;
        }
        let when = self.local_now();
        for i in 0..self.doors.len() {
            if self
                .first_cards
                .end_period(self.store.conn(), i, &mut self.doors[i], when)
            {
                let n = u32::from(self.doors[i].number);
                self.log_plain(code::NORMAL_OPEN_END, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::Bench;
    use crate::engine::Monotonic as _;

    #[test]
    fn start_up_logs_206_and_queues_rtstate_then_waits_at_most_a_minute() {
        let b = Bench::new();
        assert_eq!(b.codes(), vec![code::DEVICE_START]);
        let queued: i64 = b
            .engine
            .store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE channel = 'rtstate'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(queued, 1);
        let now = b.time.now();
        let next = b.engine.next_deadline().expect("the minute at least");
        assert!(next > now && next <= now + Duration::from_secs(60));
    }

    #[test]
    fn a_linkage_drives_its_output_logs_6_and_does_not_fire_again_while_busy() {
        let mut b = Bench::new();
        // Event 202 (exit button) at door 1 drives aux output 1 for 5 s.
        b.engine
            .store
            .conn()
            .execute(
                "INSERT INTO linkages(idx, event_type, in_addr, out_type, out_addr, out_time)
                 VALUES (4, 202, 0, 1, 1, 5)",
                [],
            )
            .unwrap();
        let press = || {
            Some(EngineInput::Hal(
                lintel_hal::InputEvent::Input {
                    kind: lintel_hal::InputKind::ExitButton(1),
                    level: true,
                    at: lintel_hal::Timestamp::now(),
                    initial: false,
                },
                Instant::now(),
            ))
        };
        b.engine.step(press());
        assert!(b.aux_on(1));
        let events = b.events();
        assert_eq!(events[events.len() - 2].0, code::EXIT_BUTTON);
        assert_eq!(events[events.len() - 1].0, linkage::LINKAGE_EVENT);
        b.engine.step(press());
        assert_eq!(
            b.codes().last(),
            Some(&code::EXIT_BUTTON),
            "busy: not again"
        );
        b.advance(Duration::from_secs(5));
        assert!(!b.aux_on(1));
    }
}
