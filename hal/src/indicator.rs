//! Reader feedback: what a person at the door sees and hears after a decision.
//!
//! The engine says only "reader N: granted" or "reader N: denied" ([`ReaderIndicator`]);
//! this module turns that into the reader's own signals:
//!
//! - a Wiegand reader with declared `led` / `buzzer` lines: the LED line on (the reader's
//!   second colour, green on two-colour readers) and one short beep for a grant; the LED
//!   left off (the idle colour, red) and `deny_beeps` short beeps for a denial. The lines
//!   are driven by one `hal indicators` thread that plays a [`LinePattern`] against its
//!   deadlines ([`LinePlayer`], sans-IO), so the engine never waits for a beep;
//! - an OSDP reader: one osdp_LED (a temporary green or red flash) and one osdp_BUZ, sent
//!   on its bus in its next turn (`osdp::ReaderFeedback`);
//! - any other reader (no lines declared, a reader the board lacks): nothing.
//!
//! The timing is the board's `[feedback]` table ([`FeedbackTiming`]). A new signal on a
//! reader replaces the one still playing there. This module never decides anything and
//! never blocks its caller.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::board::FeedbackTiming;
use crate::osdp::{
    BuzzerCommand, BuzzerTone, LedColor, LedCommand, LedFlash, LedPattern, ReaderFeedback,
};
use crate::output::Output;

/// The outcome a reader shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Granted,
    Denied,
}

/// Signals decisions to the person at a reader. Object-safe; never blocks.
pub trait ReaderIndicator: Send + Sync {
    fn signal(&self, reader: u8, signal: Signal);
}

/// The osdp_LED and osdp_BUZ records of a signal.
pub fn osdp_commands(signal: Signal, timing: &FeedbackTiming) -> (LedCommand, BuzzerCommand) {
    let (color, led_ms, beep_ms, gap_ms, beeps) = match signal {
        Signal::Granted => (
            LedColor::Green,
            timing.grant_led_ms,
            timing.grant_beep_ms,
            0,
            u8::from(timing.grant_beep_ms > 0),
        ),
        Signal::Denied => (
            LedColor::Red,
            timing.deny_led_ms,
            timing.deny_beep_ms,
            timing.deny_gap_ms,
            timing.deny_beeps,
        ),
    };
    let led = LedCommand {
        led: 0,
        temporary: (led_ms > 0).then(|| LedFlash {
            pattern: LedPattern::steady(color),
            duration_100ms: units_100ms(led_ms).max(1),
        }),
        permanent: None,
    };
    let buzzer = if beeps == 0 || beep_ms == 0 {
        BuzzerCommand {
            tone: BuzzerTone::Off,
            on_100ms: 0,
            off_100ms: 0,
            count: 1,
        }
    } else {
        BuzzerCommand {
            tone: BuzzerTone::Default,
            on_100ms: u8::try_from(units_100ms(beep_ms).max(1)).unwrap_or(u8::MAX),
            off_100ms: u8::try_from(units_100ms(gap_ms)).unwrap_or(u8::MAX),
            count: beeps,
        }
    };
    (led, buzzer)
}

/// Milliseconds to OSDP's 100 ms units, rounded to the nearest.
fn units_100ms(ms: u32) -> u16 {
    u16::try_from(ms.saturating_add(50) / 100).unwrap_or(u16::MAX)
}

/// One change of a Wiegand reader's lines, `after` the signal began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub after: Duration,
    pub led: Option<bool>,
    pub buzzer: Option<bool>,
}

/// The line changes of one signal, in time order; the last leaves both lines off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePattern(pub Vec<Step>);

impl LinePattern {
    pub fn of(signal: Signal, timing: &FeedbackTiming) -> LinePattern {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        let mut changes: Vec<(Duration, Option<bool>, Option<bool>)> = Vec::new();
        match signal {
            Signal::Granted => {
                changes.push((Duration::ZERO, Some(timing.grant_led_ms > 0), Some(false)));
                if timing.grant_beep_ms > 0 {
                    changes.push((Duration::ZERO, None, Some(true)));
                    changes.push((ms(timing.grant_beep_ms), None, Some(false)));
                }
                changes.push((ms(timing.grant_led_ms), Some(false), None));
            }
            Signal::Denied => {
                changes.push((Duration::ZERO, Some(false), Some(false)));
                if timing.deny_beep_ms > 0 {
                    let period = ms(timing.deny_beep_ms) + ms(timing.deny_gap_ms);
                    for i in 0..u32::from(timing.deny_beeps) {
                        let on = period * i;
                        changes.push((on, None, Some(true)));
                        changes.push((on + ms(timing.deny_beep_ms), None, Some(false)));
                    }
                }
            }
        }
        // One step per moment, later changes at the same moment overriding earlier ones.
        changes.sort_by_key(|c| c.0);
        let mut steps: Vec<Step> = Vec::new();
        for (after, led, buzzer) in changes {
            match steps.last_mut() {
                Some(s) if s.after == after => {
                    s.led = led.or(s.led);
                    s.buzzer = buzzer.or(s.buzzer);
                }
                _ => steps.push(Step { after, led, buzzer }),
            }
        }
        LinePattern(steps)
    }
}

/// A change to drive now: reader `reader`'s LED and/or buzzer line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drive {
    pub reader: u8,
    pub led: Option<bool>,
    pub buzzer: Option<bool>,
}

struct Playing {
    started: Instant,
    steps: Vec<Step>,
    next: usize,
}

/// Plays line patterns, one per reader, against `now` (sans-IO).
#[derive(Default)]
pub struct LinePlayer {
    playing: BTreeMap<u8, Playing>,
}

impl LinePlayer {
    /// Starts `pattern` on `reader` (replacing what plays there) and returns what is due.
    pub fn start(&mut self, reader: u8, pattern: LinePattern, now: Instant) -> Vec<Drive> {
        self.playing.insert(
            reader,
            Playing {
                started: now,
                steps: pattern.0,
                next: 0,
            },
        );
        self.poll(now)
    }

    /// The changes due at `now`, in time order per reader.
    pub fn poll(&mut self, now: Instant) -> Vec<Drive> {
        let mut due = Vec::new();
        for (&reader, p) in self.playing.iter_mut() {
            while let Some(step) = p.steps.get(p.next) {
                if p.started + step.after > now {
                    break;
                }
                due.push(Drive {
                    reader,
                    led: step.led,
                    buzzer: step.buzzer,
                });
                p.next += 1;
            }
        }
        self.playing.retain(|_, p| p.next < p.steps.len());
        due
    }

    /// When the next change is due (None: nothing plays).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.playing
            .values()
            .filter_map(|p| p.steps.get(p.next).map(|s| p.started + s.after))
            .min()
    }
}

/// A Wiegand reader's LED and buzzer outputs.
pub struct ReaderLines {
    pub reader: u8,
    pub led: Box<dyn Output>,
    pub buzzer: Box<dyn Output>,
}

/// The HAL's [`ReaderIndicator`]: Wiegand lines through the indicator thread, OSDP
/// readers through their bus. Cheap to clone.
#[derive(Clone)]
pub struct ReaderSignals {
    timing: FeedbackTiming,
    lines: Option<Sender<(u8, Signal)>>,
    line_readers: Vec<u8>,
    osdp: ReaderFeedback,
}

impl ReaderSignals {
    /// Starts the indicator thread for `lines` (none when no reader has a line).
    pub fn start(
        timing: FeedbackTiming,
        lines: Vec<ReaderLines>,
        osdp: ReaderFeedback,
    ) -> std::io::Result<(ReaderSignals, Option<JoinHandle<()>>)> {
        let line_readers: Vec<u8> = lines.iter().map(|l| l.reader).collect();
        let (tx, thread) = if lines.is_empty() {
            (None, None)
        } else {
            let (tx, rx) = channel();
            let thread = std::thread::Builder::new()
                .name("hal indicators".into())
                .spawn(move || play_lines(timing, lines, rx))?;
            (Some(tx), Some(thread))
        };
        Ok((
            ReaderSignals {
                timing,
                lines: tx,
                line_readers,
                osdp,
            },
            thread,
        ))
    }
}

impl ReaderIndicator for ReaderSignals {
    fn signal(&self, reader: u8, signal: Signal) {
        if self.osdp.handles(reader) {
            let (led, buzzer) = osdp_commands(signal, &self.timing);
            if let Err(e) = self
                .osdp
                .led(reader, led)
                .and(self.osdp.buzzer(reader, buzzer))
            {
                log::debug!("reader {reader} feedback: {e}");
            }
        } else if self.line_readers.contains(&reader) {
            if let Some(tx) = &self.lines {
                if tx.send((reader, signal)).is_err() {
                    log::debug!("reader {reader} feedback: the indicator thread has stopped");
                }
            }
        }
    }
}

/// The indicator thread: plays each signal on its reader's lines until the channel closes.
fn play_lines(timing: FeedbackTiming, mut lines: Vec<ReaderLines>, rx: Receiver<(u8, Signal)>) {
    let mut player = LinePlayer::default();
    let mut failed_logged = false;
    loop {
        let now = Instant::now();
        let request = match player.next_deadline() {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(now)) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(r) => Some(r),
                Err(_) => break,
            },
        };
        let now = Instant::now();
        let mut due = match request {
            Some((reader, signal)) => player.start(reader, LinePattern::of(signal, &timing), now),
            None => Vec::new(),
        };
        due.extend(player.poll(now));
        for d in due {
            let Some(l) = lines.iter_mut().find(|l| l.reader == d.reader) else {
                continue;
            };
            let led = d.led.map(|on| l.led.set(on)).unwrap_or(Ok(()));
            let buzzer = d.buzzer.map(|on| l.buzzer.set(on)).unwrap_or(Ok(()));
            if let Err(e) = led.and(buzzer) {
                if !failed_logged {
                    log::warn!("reader {} feedback line: {e}", d.reader);
                    failed_logged = true;
                }
            }
        }
    }
    // Every handle is gone (the firmware is stopping): no reader is left lit or sounding.
    for l in &mut lines {
        let _ = l.led.set(false);
        let _ = l.buzzer.set(false);
    }
}

/// A [`ReaderIndicator`] that records what it was asked (tests).
#[derive(Debug, Default)]
pub struct RecordingIndicator {
    signals: Mutex<Vec<(u8, Signal)>>,
}

impl RecordingIndicator {
    pub fn taken(&self) -> Vec<(u8, Signal)> {
        std::mem::take(&mut *self.signals.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ReaderIndicator for RecordingIndicator {
    fn signal(&self, reader: u8, signal: Signal) {
        self.signals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((reader, signal));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_grant_lights_the_led_and_beeps_once_then_both_go_off() {
        let t = FeedbackTiming::default();
        let p = LinePattern::of(Signal::Granted, &t);
        assert_eq!(
            p.0,
            vec![
                Step {
                    after: ms(0),
                    led: Some(true),
                    buzzer: Some(true)
                },
                Step {
                    after: ms(200),
                    led: None,
                    buzzer: Some(false)
                },
                Step {
                    after: ms(2000),
                    led: Some(false),
                    buzzer: None
                },
            ]
        );
    }

    #[test]
    fn a_denial_keeps_the_led_at_its_idle_colour_and_beeps_twice() {
        let t = FeedbackTiming::default();
        let p = LinePattern::of(Signal::Denied, &t);
        assert_eq!(
            p.0,
            vec![
                Step {
                    after: ms(0),
                    led: Some(false),
                    buzzer: Some(true)
                },
                Step {
                    after: ms(150),
                    led: None,
                    buzzer: Some(false)
                },
                Step {
                    after: ms(250),
                    led: None,
                    buzzer: Some(true)
                },
                Step {
                    after: ms(400),
                    led: None,
                    buzzer: Some(false)
                },
            ]
        );
    }

    #[test]
    fn silent_timings_make_no_beep() {
        let t = FeedbackTiming {
            grant_beep_ms: 0,
            deny_beeps: 0,
            ..FeedbackTiming::default()
        };
        for s in [Signal::Granted, Signal::Denied] {
            let p = LinePattern::of(s, &t);
            assert!(p.0.iter().all(|s| s.buzzer != Some(true)), "{p:?}");
        }
    }

    #[test]
    fn the_player_drives_each_step_at_its_time_and_a_new_signal_replaces_the_old() {
        let t = FeedbackTiming::default();
        let t0 = Instant::now();
        let mut player = LinePlayer::default();
        let first = player.start(1, LinePattern::of(Signal::Granted, &t), t0);
        assert_eq!(
            first,
            vec![Drive {
                reader: 1,
                led: Some(true),
                buzzer: Some(true)
            }]
        );
        assert_eq!(player.next_deadline(), Some(t0 + ms(200)));
        assert!(player.poll(t0 + ms(199)).is_empty());
        assert_eq!(
            player.poll(t0 + ms(200)),
            vec![Drive {
                reader: 1,
                led: None,
                buzzer: Some(false)
            }]
        );
        // A denial on the same reader before the green LED ends: the LED goes off now
        // and the old pattern's last step never comes.
        let replaced = player.start(1, LinePattern::of(Signal::Denied, &t), t0 + ms(500));
        assert_eq!(replaced[0].led, Some(false));
        let rest = player.poll(t0 + ms(5000));
        assert_eq!(rest.len(), 3, "{rest:?}");
        assert!(rest.iter().all(|d| d.led.is_none()));
        assert_eq!(player.next_deadline(), None);
    }

    #[test]
    fn readers_play_independently() {
        let t = FeedbackTiming::default();
        let t0 = Instant::now();
        let mut player = LinePlayer::default();
        player.start(1, LinePattern::of(Signal::Granted, &t), t0);
        player.start(2, LinePattern::of(Signal::Denied, &t), t0 + ms(10));
        let due = player.poll(t0 + ms(2000));
        assert_eq!(due.iter().filter(|d| d.reader == 1).count(), 2);
        assert_eq!(due.iter().filter(|d| d.reader == 2).count(), 3);
    }

    #[test]
    fn osdp_commands_carry_colour_duration_and_beeps() {
        let t = FeedbackTiming::default();
        let (led, buz) = osdp_commands(Signal::Granted, &t);
        let flash = led.temporary.unwrap();
        assert_eq!(flash.pattern.on_color, LedColor::Green);
        assert_eq!(flash.duration_100ms, 20);
        assert_eq!(
            (buz.tone, buz.on_100ms, buz.count),
            (BuzzerTone::Default, 2, 1)
        );
        let (led, buz) = osdp_commands(Signal::Denied, &t);
        assert_eq!(led.temporary.unwrap().pattern.on_color, LedColor::Red);
        assert_eq!((buz.on_100ms, buz.off_100ms, buz.count), (2, 1, 2));
        let quiet = FeedbackTiming { deny_beeps: 0, ..t };
        assert_eq!(
            osdp_commands(Signal::Denied, &quiet).1.tone,
            BuzzerTone::Off
        );
    }

    #[test]
    fn out_of_range_timings_are_refused_by_key() {
        let t = FeedbackTiming {
            grant_led_ms: 60_001,
            ..FeedbackTiming::default()
        };
        assert_eq!(t.validate().unwrap_err().0, "feedback.grant_led_ms");
        let t = FeedbackTiming {
            deny_beeps: 11,
            ..FeedbackTiming::default()
        };
        assert_eq!(t.validate().unwrap_err().0, "feedback.deny_beeps");
        assert!(FeedbackTiming::default().validate().is_ok());
    }

    struct Shared(
        std::sync::Arc<Mutex<Vec<(&'static str, bool)>>>,
        &'static str,
    );
    impl Output for Shared {
        fn set(&mut self, on: bool) -> Result<(), crate::HalError> {
            self.0.lock().unwrap().push((self.1, on));
            Ok(())
        }
        fn is_on(&self) -> bool {
            false
        }
    }

    #[test]
    fn the_indicator_thread_drives_a_wiegand_readers_lines_and_leaves_them_off() {
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let timing = FeedbackTiming {
            grant_led_ms: 30,
            grant_beep_ms: 10,
            ..FeedbackTiming::default()
        };
        let lines = vec![ReaderLines {
            reader: 3,
            led: Box::new(Shared(log.clone(), "led")),
            buzzer: Box::new(Shared(log.clone(), "buzzer")),
        }];
        let (signals, thread) =
            ReaderSignals::start(timing, lines, ReaderFeedback::default()).unwrap();
        signals.signal(3, Signal::Granted);
        signals.signal(9, Signal::Granted); // no such reader: nothing
        drop(signals);
        thread.unwrap().join().unwrap();
        let log = log.lock().unwrap().clone();
        assert!(log.contains(&("led", true)), "{log:?}");
        assert!(log.contains(&("buzzer", true)), "{log:?}");
        // When the last handle goes, the thread ends and leaves both lines off.
        let last = |name| log.iter().rev().find(|(n, _)| *n == name).map(|e| e.1);
        assert_eq!(
            (last("led"), last("buzzer")),
            (Some(false), Some(false)),
            "{log:?}"
        );
    }
}
