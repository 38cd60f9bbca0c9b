//! Linkage (`inoutfun`): which outputs an event drives and the event 6 it
//! logs per action (linkid = the row, verifytype = the triggering event).
//! Owns whether a linkage is running (its own events trigger nothing,
//! event 6 never does) and until when each row's last action runs (it does
//! not fire again before, so an output wired back to an input cannot
//! spin). Pure and time passed in: it NEVER reads the rules, drives an
//! output or writes an event itself; the engine does, in its order.

use super::handle::OutputAction;
use super::rules::Linkage;
use crate::store::NewEvent;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The event a linkage action logs.
pub(super) const LINKAGE_EVENT: u32 = 6;

#[derive(Debug, Default)]
pub(super) struct Linkages {
    /// Set while linkage actions run: their own events trigger nothing.
    running: bool,
    /// Until when each linkage row's last action runs.
    busy: HashMap<i64, Instant>,
}

impl Linkages {
    /// Whether logging `event` looks for linkages.
    pub(super) fn triggered_by(&self, event: u32) -> bool {
        !self.running && event != LINKAGE_EVENT
    }

    /// Linkage actions start (`true`) or end.
    pub(super) fn set_running(&mut self, running: bool) {
        self.running = running;
    }

    /// Whether row `index`'s last action still runs at `now`.
    pub(super) fn busy(&self, index: i64, now: Instant) -> bool {
        self.busy.get(&index).is_some_and(|u| now < *u)
    }

    /// Row `l` acted at `now`: busy for its output time, at least a second
    /// (so a zero-time action wired back cannot spin either).
    pub(super) fn acted(&mut self, l: &Linkage, now: Instant) {
        let (_, secs) = action_of(l);
        self.busy
            .insert(l.index, now + Duration::from_secs(secs.clamp(1, 254)));
    }

    /// Forgets the actions that are over.
    pub(super) fn expire(&mut self, now: Instant) {
        self.busy.retain(|_, until| now < *until);
    }
}

/// What row `l` does to its output, and its time in seconds: 0 off, 255
/// normal open, else a pulse of that many seconds.
pub(super) fn action_of(l: &Linkage) -> (OutputAction, u64) {
    let secs = u64::try_from(l.out_time).unwrap_or(0);
    let action = match l.out_time {
        0 => OutputAction::Off,
        255 => OutputAction::NormalOpen,
        _ => OutputAction::For(Duration::from_secs(secs)),
    };
    (action, secs)
}

/// The event 6 of row `l`, triggered by `ev`.
pub(super) fn record(l: &Linkage, ev: &NewEvent) -> NewEvent {
    NewEvent {
        time: ev.time.clone(),
        pin: ev.pin.clone(),
        cardno: ev.cardno.clone(),
        sitecode: ev.sitecode.clone(),
        linkid: u32::try_from(l.index).unwrap_or(0),
        eventaddr: ev.eventaddr,
        event: LINKAGE_EVENT,
        inoutstatus: ev.inoutstatus,
        // Appendix 2: a linkage record's verification mode is the event type.
        verifytype: ev.event.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: i64, out_time: i64) -> Linkage {
        Linkage {
            index,
            aux: false,
            out_addr: 1,
            out_time,
        }
    }

    #[test]
    fn output_times_map_to_actions() {
        assert_eq!(action_of(&row(1, 0)), (OutputAction::Off, 0));
        assert_eq!(action_of(&row(1, 255)), (OutputAction::NormalOpen, 255));
        assert_eq!(
            action_of(&row(1, 7)),
            (OutputAction::For(Duration::from_secs(7)), 7)
        );
    }

    #[test]
    fn a_row_is_busy_for_its_time_and_at_least_a_second() {
        let t0 = Instant::now();
        let mut l = Linkages::default();
        l.acted(&row(1, 0), t0);
        l.acted(&row(2, 255), t0);
        assert!(l.busy(1, t0));
        assert!(!l.busy(1, t0 + Duration::from_secs(1)), "at least a second");
        assert!(
            l.busy(2, t0 + Duration::from_secs(253)),
            "255 counts as 254"
        );
        assert!(!l.busy(2, t0 + Duration::from_secs(254)));
        assert!(!l.busy(3, t0), "never acted");
        l.expire(t0 + Duration::from_secs(1));
        assert!(!l.busy.contains_key(&1) && l.busy.contains_key(&2));
    }

    #[test]
    fn its_own_events_and_event_6_trigger_nothing() {
        let mut l = Linkages::default();
        assert!(l.triggered_by(200));
        assert!(!l.triggered_by(LINKAGE_EVENT));
        l.set_running(true);
        assert!(!l.triggered_by(200));
        l.set_running(false);
        assert!(l.triggered_by(200));
    }

    #[test]
    fn the_record_carries_the_trigger_as_its_verifytype() {
        let mut ev = NewEvent::plain("2024-05-06 09:00:00".into(), 220, 2);
        ev.pin = "7".into();
        ev.inoutstatus = 1;
        let r = record(&row(9, 5), &ev);
        assert_eq!(r.event, 6);
        assert_eq!(r.linkid, 9);
        assert_eq!(r.verifytype, "220");
        assert_eq!((r.eventaddr, r.inoutstatus), (2, 1));
        assert_eq!((r.pin.as_str(), r.time.as_str()), ("7", ev.time.as_str()));
    }
}
