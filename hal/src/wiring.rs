//! Board → lines: requests every line a board names from a [`LineProvider`], wraps outputs
//! with their active level, and runs the input threads (one blocking reader per line plus
//! one dispatcher that debounces discrete inputs and captures Wiegand frames).
//!
//! This is the whole Linux backend except the gpio-cdev calls, so tests run it on
//! [`crate::line::MemLines`] as the fake line provider.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::board::{BoardConfig, LineSpec};
use crate::debounce::Debouncer;
use crate::event::{InputEvent, InputKind, Timestamp};
use crate::line::{Backlog, EdgeSource, LineErrorKind, LineProvider, RawEdge};
use crate::output::{LineOutput, Output, UnwiredOutput};
use crate::wiegand::{CaptureConfig, DataLine, WiegandCapture};
use crate::{realtime, HalError};

/// Consumer label on every requested line (what `gpioinfo` shows).
pub const CONSUMER: &str = "lintel";

/// The outputs of a board, in server numbering (index 0 = door/reader/aux 1).
pub struct Outputs {
    pub locks: Vec<Box<dyn Output>>,
    pub aux_out: Vec<Box<dyn Output>>,
    /// One per reader; [`UnwiredOutput`] where the board has no LED line.
    pub leds: Vec<Box<dyn Output>>,
    /// One per reader; [`UnwiredOutput`] where the board has no buzzer line.
    pub buzzers: Vec<Box<dyn Output>>,
}

/// Where an edge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceId {
    Discrete(usize),
    Wiegand(usize, DataLine),
}

struct DiscreteInput {
    kind: InputKind,
    active_low: bool,
    debouncer: Debouncer,
    last_edge: Option<Received>,
}

struct ReaderInput {
    number: u8,
    active_low: [bool; 2],
    capture: WiegandCapture,
    last_edge: Option<Received>,
    /// D0's and D1's edges on their way to the dispatcher, where the provider knows.
    backlogs: [Option<Arc<dyn Backlog>>; 2],
}

impl ReaderInput {
    /// True while an edge of this reader is known to be on its way: its frame waits.
    fn pending(&self) -> bool {
        self.backlogs.iter().flatten().any(|b| b.pending())
    }
}

/// How soon the dispatcher looks again at a frame whose end waits for edges on their way.
const PENDING_RECHECK_NS: u64 = 200_000;

/// The last edge a state machine was given: its timestamp (ns on its source's scale) and
/// when the dispatcher received it.
#[derive(Debug, Clone, Copy)]
struct Received {
    edge_ns: u64,
    at: Instant,
}

/// The running input side.
pub struct Inputs {
    pub threads: Vec<JoinHandle<()>>,
}

/// One discrete input of the board with its kind, in a fixed order.
pub fn discrete_inputs(board: &BoardConfig) -> Vec<(InputKind, &LineSpec)> {
    let mut out = Vec::new();
    for d in &board.doors {
        if let Some(l) = &d.sensor {
            out.push((InputKind::DoorSensor(d.number), l));
        }
        if let Some(l) = &d.button {
            out.push((InputKind::ExitButton(d.number), l));
        }
    }
    for a in &board.aux_in {
        out.push((InputKind::AuxIn(a.index), &a.line));
    }
    if let Some(l) = &board.tamper {
        out.push((InputKind::Tamper, l));
    }
    if let Some(l) = &board.power_fail {
        out.push((InputKind::PowerFail, l));
    }
    out
}

fn request_output(
    lines: &mut dyn LineProvider,
    what: String,
    spec: &LineSpec,
) -> Result<Box<dyn Output>, HalError> {
    // Outputs start off: the lock stays locked across a restart until the engine decides.
    let line = lines
        .output(
            spec,
            LineOutput::level_for(false, spec.active_low),
            CONSUMER,
        )
        .map_err(|source| HalError::Line {
            what: what.clone(),
            source,
        })?;
    Ok(Box::new(LineOutput::new(what, line, spec.active_low)))
}

/// Requests every output line of the board.
pub fn open_outputs(
    board: &BoardConfig,
    lines: &mut dyn LineProvider,
) -> Result<Outputs, HalError> {
    let mut locks = Vec::new();
    for d in &board.doors {
        locks.push(request_output(
            lines,
            format!("door {} lock", d.number),
            &d.lock,
        )?);
    }
    let mut aux_out = Vec::new();
    for a in &board.aux_out {
        aux_out.push(request_output(
            lines,
            format!("aux out {}", a.index),
            &a.line,
        )?);
    }
    let mut leds: Vec<Box<dyn Output>> = Vec::new();
    let mut buzzers: Vec<Box<dyn Output>> = Vec::new();
    for r in &board.readers {
        leds.push(match &r.led {
            Some(l) => request_output(lines, format!("reader {} LED", r.number), l)?,
            None => Box::new(UnwiredOutput::default()),
        });
        buzzers.push(match &r.buzzer {
            Some(l) => request_output(lines, format!("reader {} buzzer", r.number), l)?,
            None => Box::new(UnwiredOutput::default()),
        });
    }
    Ok(Outputs {
        locks,
        aux_out,
        leds,
        buzzers,
    })
}

/// Requests every input line, sends one `initial` event per discrete input, and starts the
/// reader threads and the dispatcher.
pub fn start_inputs(
    board: &BoardConfig,
    lines: &mut dyn LineProvider,
    events: Sender<InputEvent>,
) -> Result<Inputs, HalError> {
    let (edge_tx, edge_rx) = mpsc::channel::<(SourceId, RawEdge)>();
    let mut sources: Vec<(String, SourceId, Box<dyn EdgeSource>)> = Vec::new();
    let mut discrete = Vec::new();
    let now = Timestamp::now();
    for (i, (kind, spec)) in discrete_inputs(board).into_iter().enumerate() {
        let name = format!("{kind:?}");
        let mut src = lines
            .input(spec, CONSUMER)
            .map_err(|source| HalError::Line {
                what: name.clone(),
                source,
            })?;
        let level = src.level().map_err(|source| HalError::Line {
            what: name.clone(),
            source,
        })? != spec.active_low;
        let window_ms = spec.debounce_ms.unwrap_or(board.defaults.debounce_ms);
        discrete.push(DiscreteInput {
            kind,
            active_low: spec.active_low,
            debouncer: Debouncer::new(level, u64::from(window_ms) * 1_000_000),
            last_edge: None,
        });
        // The receiver lives until open() returns, so this cannot fail here.
        let _ = events.send(InputEvent::Input {
            kind,
            level,
            at: now,
            initial: true,
        });
        sources.push((name, SourceId::Discrete(i), src));
    }
    let mut readers = Vec::new();
    for r in &board.readers {
        let (Some(d0), Some(d1)) = (&r.d0, &r.d1) else {
            continue; // RS-485 readers have no data lines.
        };
        let idx = readers.len();
        let mut backlogs: [Option<Arc<dyn Backlog>>; 2] = [None, None];
        for (line, spec) in [(DataLine::D0, d0), (DataLine::D1, d1)] {
            let name = format!("reader {} {line:?}", r.number);
            let mut src = lines
                .input(spec, CONSUMER)
                .map_err(|source| HalError::Line {
                    what: name.clone(),
                    source,
                })?;
            backlogs[line_index(line)] = src.backlog();
            sources.push((name, SourceId::Wiegand(idx, line), src));
        }
        readers.push(ReaderInput {
            number: r.number,
            active_low: [d0.active_low, d1.active_low],
            capture: WiegandCapture::new(
                CaptureConfig::with_frame_gap_ms(board.defaults.frame_gap_ms)
                    .with_end_bit_periods(board.defaults.frame_end_bit_periods),
            ),
            last_edge: None,
            backlogs,
        });
    }

    let priority = board.defaults.realtime_priority;
    let mut threads = Vec::new();
    for (name, id, src) in sources {
        let tx = edge_tx.clone();
        let failures = events.clone();
        let handle = std::thread::Builder::new()
            .name(format!("hal {name}"))
            .spawn(move || {
                realtime::enter_for_input_thread(priority);
                read_edges(name, id, src, tx, failures)
            })
            .map_err(|e| HalError::Thread(e.to_string()))?;
        threads.push(handle);
    }
    drop(edge_tx);
    let handle = std::thread::Builder::new()
        .name("hal inputs".into())
        .spawn(move || {
            realtime::enter_for_input_thread(priority);
            dispatch(edge_rx, discrete, readers, events)
        })
        .map_err(|e| HalError::Thread(e.to_string()))?;
    threads.push(handle);
    Ok(Inputs { threads })
}

fn line_index(line: DataLine) -> usize {
    match line {
        DataLine::D0 => 0,
        DataLine::D1 => 1,
    }
}

/// One line's thread: blocking reads, forwarded in arrival order.
fn read_edges(
    name: String,
    id: SourceId,
    mut src: Box<dyn EdgeSource>,
    tx: Sender<(SourceId, RawEdge)>,
    failures: Sender<InputEvent>,
) {
    loop {
        match src.next_edge() {
            Ok(edge) => {
                if tx.send((id, edge)).is_err() {
                    return; // dispatcher gone: shutting down
                }
            }
            Err(e) if e.kind() == LineErrorKind::Closed => return,
            Err(e) => {
                log::error!("input {name}: {e}; this input is no longer watched");
                let _ = failures.send(InputEvent::SourceFailed {
                    source: name,
                    error: e.to_string(),
                });
                return;
            }
        }
    }
}

/// "Now" on the scale of a source's last edge, counted from when that edge was *received*.
///
/// Deadlines (frame gap, debounce) therefore run from receipt, never from the edge's own
/// stamp: if a thread was late delivering edges (a loaded CPU, a kernel queue read late),
/// the frame is extended rather than cut in two. The consumer still gets the true edge
/// times in the events.
fn now_ns_for(last: Option<Received>) -> u64 {
    match last {
        Some(r) => {
            let since = Instant::now().saturating_duration_since(r.at).as_nanos();
            r.edge_ns
                .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
        }
        None => Timestamp::now().mono_ns,
    }
}

fn dispatch(
    rx: Receiver<(SourceId, RawEdge)>,
    mut discrete: Vec<DiscreteInput>,
    mut readers: Vec<ReaderInput>,
    events: Sender<InputEvent>,
) {
    loop {
        // The nearest deadline over all inputs, as a wait from now.
        let mut wait: Option<u64> = None;
        for d in &discrete {
            if let Some(dl) = d.debouncer.deadline_ns() {
                let left = dl.saturating_sub(now_ns_for(d.last_edge));
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        for r in &readers {
            if let Some(dl) = r.capture.deadline_ns() {
                let now = now_ns_for(r.last_edge);
                let mut left = dl.saturating_sub(now);
                if left == 0 && r.pending() {
                    // The frame's end waits for edges still on their way (they wake us
                    // when they arrive); look again soon, at the latest at the frame gap.
                    let latest = r.capture.latest_deadline_ns().unwrap_or(dl);
                    left = latest.saturating_sub(now).min(PENDING_RECHECK_NS);
                }
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        let received = match wait {
            Some(ns) => match rx.recv_timeout(Duration::from_nanos(ns)) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
        };
        if let Some((id, edge)) = received {
            match id {
                SourceId::Discrete(i) => {
                    if let Some(d) = discrete.get_mut(i) {
                        d.last_edge = Some(Received {
                            edge_ns: edge.at.mono_ns,
                            at: Instant::now(),
                        });
                        d.debouncer.on_edge(edge.high != d.active_low, edge.at);
                    }
                }
                SourceId::Wiegand(i, line) => {
                    if let Some(r) = readers.get_mut(i) {
                        let active_low = match line {
                            DataLine::D0 => r.active_low[0],
                            DataLine::D1 => r.active_low[1],
                        };
                        r.last_edge = Some(Received {
                            edge_ns: edge.at.mono_ns,
                            at: Instant::now(),
                        });
                        if let Some(b) = &r.backlogs[line_index(line)] {
                            b.delivered();
                        }
                        r.capture.on_edge(line, edge.high != active_low, edge.at);
                    }
                }
            }
        }
        for d in &mut discrete {
            if let Some((level, at)) = d.debouncer.poll(now_ns_for(d.last_edge)) {
                if events
                    .send(InputEvent::Input {
                        kind: d.kind,
                        level,
                        at,
                        initial: false,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
        for r in &mut readers {
            let now = now_ns_for(r.last_edge);
            // Asked only once the frame could end: a kernel backlog is a poll(2) per line.
            let due = r.capture.deadline_ns().is_some_and(|d| now >= d);
            let pending = due && r.pending();
            if let Some(frame) = r.capture.poll_unless_pending(now, pending) {
                if events
                    .send(InputEvent::Wiegand {
                        reader: r.number,
                        frame,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::BoardConfig;
    use crate::line::MemLines;
    use crate::wiegand::capture::edges_for_bits;
    use crate::wiegand::{decode, Decoded, Format, FormatTable, WiegandBits};
    use std::collections::BTreeSet;

    /// A board with both active levels and every kind of line (backend "linux": the line
    /// provider decides what hardware means, here the fake one).
    const BOARD: &str = r#"
name = "fake"
backend = "linux"
[defaults]
debounce_ms = 10
frame_gap_ms = 20
[[door]]
number = 1
lock = { chip = "gpiochip0", line = 0, active_low = true }
sensor = { chip = "gpiochip0", line = 1, active_low = true }
button = { chip = "gpiochip0", line = 2, active_low = true, debounce_ms = 0 }
[[door]]
number = 2
lock = { chip = "gpiochip0", line = 3 }
[[reader]]
number = 1
door = 1
direction = "in"
kind = "wiegand"
d0 = { chip = "gpiochip1", line = 0, active_low = true }
d1 = { chip = "gpiochip1", line = 1, active_low = true }
led = { chip = "gpiochip1", line = 2 }
[[aux_in]]
index = 1
line = { chip = "gpiochip2", line = 0 }
[[aux_out]]
index = 1
line = { chip = "gpiochip2", line = 1, active_low = true }
[tamper]
chip = "gpiochip2"
line = 2
"#;

    /// Reader 1's edges for `bits` (active low: a pulse is a low level), bits `interval_ns`
    /// apart from `base`, as one burst: the test thread being preempted while it sends them
    /// cannot put a silence into the frame.
    fn reader_1_burst(bits: &WiegandBits, base: u64, interval_ns: u64) -> Vec<(String, RawEdge)> {
        edges_for_bits(bits, base, 50_000, interval_ns)
            .into_iter()
            .map(|(line, active, t)| {
                let id = match line {
                    DataLine::D0 => "gpiochip1:0",
                    DataLine::D1 => "gpiochip1:1",
                };
                let edge = RawEdge {
                    high: !active,
                    at: Timestamp::from_anchor_ns(t),
                };
                (id.to_string(), edge)
            })
            .collect()
    }

    /// ZK's Wiegand26a (8-bit site + 16-bit card), so the tests' site codes travel.
    fn w26a() -> FormatTable {
        FormatTable::single(Format::standard("wiegand26a").unwrap())
    }

    fn open_fake() -> (crate::Hal, MemLines, std::sync::mpsc::Receiver<InputEvent>) {
        let board = BoardConfig::from_toml_str(BOARD).unwrap();
        let mut lines = MemLines::new();
        let (tx, rx) = mpsc::channel();
        let hal = crate::open_with_lines(&board, &mut lines, tx, |_, _| unreachable!()).unwrap();
        (hal, lines, rx)
    }

    fn next_event(rx: &Receiver<InputEvent>) -> InputEvent {
        rx.recv_timeout(Duration::from_secs(2)).expect("no event")
    }

    #[test]
    fn every_board_line_is_requested_with_the_right_idle_level() {
        let (mut hal, lines, rx) = open_fake();
        let want: BTreeSet<String> = [
            "gpiochip0:0",
            "gpiochip0:1",
            "gpiochip0:2",
            "gpiochip0:3",
            "gpiochip1:0",
            "gpiochip1:1",
            "gpiochip1:2",
            "gpiochip2:0",
            "gpiochip2:1",
            "gpiochip2:2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(lines.requested().into_iter().collect::<BTreeSet<_>>(), want);
        assert_eq!(lines.consumer("gpiochip0:0").as_deref(), Some(CONSUMER));
        assert_eq!(
            (
                hal.locks.len(),
                hal.aux_out.len(),
                hal.leds.len(),
                hal.buzzers.len()
            ),
            (2, 1, 1, 1)
        );
        // Outputs start off: active-low lines high, active-high lines low.
        assert_eq!(lines.level("gpiochip0:0"), Some(true));
        assert_eq!(lines.level("gpiochip0:3"), Some(false));
        assert_eq!(lines.level("gpiochip2:1"), Some(true));
        hal.locks[0].set(true).unwrap();
        hal.locks[1].set(true).unwrap();
        hal.aux_out[0].set(true).unwrap();
        hal.leds[0].set(true).unwrap();
        hal.buzzers[0].set(true).unwrap(); // unwired: remembered only
        assert_eq!(lines.level("gpiochip0:0"), Some(false));
        assert_eq!(lines.level("gpiochip0:3"), Some(true));
        assert_eq!(lines.level("gpiochip2:1"), Some(false));
        assert_eq!(lines.level("gpiochip1:2"), Some(true));
        assert!(hal.locks[0].is_on() && hal.buzzers[0].is_on());
        // One initial event per discrete input, all inactive at idle.
        let mut initial = Vec::new();
        for _ in 0..4 {
            match next_event(&rx) {
                InputEvent::Input {
                    kind,
                    level,
                    initial: true,
                    ..
                } => initial.push((kind, level)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            initial,
            vec![
                (InputKind::DoorSensor(1), false),
                (InputKind::ExitButton(1), false),
                (InputKind::AuxIn(1), false),
                (InputKind::Tamper, false)
            ]
        );
        assert_eq!(hal.capabilities.lock_count, 2);
    }

    #[test]
    fn inputs_are_mapped_debounced_and_timestamped_at_the_first_edge() {
        let (_hal, lines, rx) = open_fake();
        for _ in 0..4 {
            next_event(&rx);
        }
        // The door opens: the active-low contact goes high→low and bounces twice.
        let t0 = Timestamp::now();
        let at = |us: u64| Timestamp::from_anchor_ns(t0.mono_ns + us * 1000);
        lines
            .inject(
                "gpiochip0:1",
                RawEdge {
                    high: false,
                    at: at(0),
                },
            )
            .unwrap();
        lines
            .inject(
                "gpiochip0:1",
                RawEdge {
                    high: true,
                    at: at(300),
                },
            )
            .unwrap();
        lines
            .inject(
                "gpiochip0:1",
                RawEdge {
                    high: false,
                    at: at(900),
                },
            )
            .unwrap();
        match next_event(&rx) {
            InputEvent::Input {
                kind,
                level,
                at: when,
                initial,
            } => {
                assert_eq!(
                    (kind, level, initial),
                    (InputKind::DoorSensor(1), true, false)
                );
                assert_eq!(when.mono_ns, t0.mono_ns);
            }
            other => panic!("{other:?}"),
        }
        // A 2 ms glitch on the aux input (10 ms debounce) reports nothing; tamper reports.
        // Its edges carry their own stamps 2 ms apart, so a test thread that a busy machine
        // wakes late cannot stretch the glitch past the window.
        let glitch = Timestamp::now().mono_ns;
        lines
            .inject_burst(&[
                (
                    "gpiochip2:0".to_string(),
                    RawEdge {
                        high: true,
                        at: Timestamp::from_anchor_ns(glitch),
                    },
                ),
                (
                    "gpiochip2:0".to_string(),
                    RawEdge {
                        high: false,
                        at: Timestamp::from_anchor_ns(glitch + 2_000_000),
                    },
                ),
            ])
            .unwrap();
        lines.drive("gpiochip2:2", true, Timestamp::now()).unwrap();
        match next_event(&rx) {
            InputEvent::Input { kind, level, .. } => {
                assert_eq!((kind, level), (InputKind::Tamper, true))
            }
            other => panic!("{other:?}"),
        }
        // Exit button with debounce_ms = 0: press and release both reported.
        lines.drive("gpiochip0:2", false, Timestamp::now()).unwrap();
        lines.drive("gpiochip0:2", true, Timestamp::now()).unwrap();
        let got: Vec<bool> = (0..2)
            .map(|_| match next_event(&rx) {
                InputEvent::Input {
                    kind: InputKind::ExitButton(1),
                    level,
                    ..
                } => level,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, vec![true, false]);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn wiegand_edges_become_a_frame_for_the_right_reader() {
        let (_hal, lines, rx) = open_fake();
        for _ in 0..4 {
            next_event(&rx);
        }
        let bits = Format::standard("wiegand26a")
            .unwrap()
            .encode(31337, Some(42))
            .unwrap();
        let base = Timestamp::now().mono_ns;
        lines
            .inject_burst(&reader_1_burst(&bits, base, 1_000_000))
            .unwrap();
        match next_event(&rx) {
            InputEvent::Wiegand { reader, frame } => {
                assert_eq!(reader, 1);
                assert_eq!(frame.noise_pulses, 0);
                assert_eq!(frame.last_edge.mono_ns, base + 25 * 1_000_000 + 50_000);
                assert_eq!(
                    decode(&frame, &w26a()),
                    Decoded::Card {
                        number: 31337,
                        site_code: Some(42),
                        format: "wiegand26a".into()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Lines whose D1 thread (reader 1, `gpiochip1:1`) is late by `delay` before it hands
    /// over its first edge, as a line thread waiting for a busy CPU would be; `backlog`
    /// false hides the line's backlog from the dispatcher.
    struct LateLines {
        inner: MemLines,
        delay: Duration,
        backlog: bool,
    }

    struct LateInput {
        inner: Box<dyn EdgeSource>,
        delay: Option<Duration>,
        backlog: bool,
    }

    impl EdgeSource for LateInput {
        fn level(&mut self) -> Result<bool, crate::line::LineError> {
            self.inner.level()
        }
        fn next_edge(&mut self) -> Result<RawEdge, crate::line::LineError> {
            let edge = self.inner.next_edge()?;
            if let Some(d) = self.delay.take() {
                std::thread::sleep(d);
            }
            Ok(edge)
        }
        fn backlog(&mut self) -> Option<Arc<dyn Backlog>> {
            if self.backlog {
                self.inner.backlog()
            } else {
                None
            }
        }
    }

    impl LineProvider for LateLines {
        fn output(
            &mut self,
            line: &LineSpec,
            initial_high: bool,
            consumer: &str,
        ) -> Result<Box<dyn crate::line::OutputLine>, crate::line::LineError> {
            self.inner.output(line, initial_high, consumer)
        }
        fn input(
            &mut self,
            line: &LineSpec,
            consumer: &str,
        ) -> Result<Box<dyn EdgeSource>, crate::line::LineError> {
            let late = line.id() == "gpiochip1:1";
            Ok(Box::new(LateInput {
                inner: self.inner.input(line, consumer)?,
                delay: late.then_some(self.delay),
                backlog: self.backlog,
            }))
        }
    }

    /// The frames reader 1 produces for one 26-bit card at the 200 µs pace, its D1 thread
    /// 10 ms late (five times the 2 ms gap such a frame ends with, half the board's 20 ms
    /// frame gap).
    fn frames_with_a_late_d1_thread(backlog: bool) -> Vec<String> {
        let board = BoardConfig::from_toml_str(BOARD).unwrap();
        let mem = MemLines::new();
        let mut lines = LateLines {
            inner: mem.clone(),
            delay: Duration::from_millis(10),
            backlog,
        };
        let (tx, rx) = mpsc::channel();
        let _hal = crate::open_with_lines(&board, &mut lines, tx, |_, _| unreachable!()).unwrap();
        for _ in 0..4 {
            next_event(&rx);
        }
        let bits = Format::standard("wiegand26")
            .unwrap()
            .encode(0x5a_5a5a, None)
            .unwrap();
        let base = Timestamp::now().mono_ns;
        mem.inject_burst(&reader_1_burst(&bits, base, 200_000))
            .unwrap();
        let mut frames = Vec::new();
        while let Ok(InputEvent::Wiegand { frame, .. }) =
            rx.recv_timeout(Duration::from_millis(300))
        {
            frames.push(frame.bits.to_string());
        }
        frames
    }

    #[test]
    fn a_late_line_thread_does_not_cut_a_frame_whose_edges_are_queued() {
        let bits = Format::standard("wiegand26")
            .unwrap()
            .encode(0x5a_5a5a, None)
            .unwrap()
            .to_string();
        assert_eq!(frames_with_a_late_d1_thread(true), vec![bits.clone()]);
        // Without the backlog the same lateness cuts the frame (the D0 bits end it alone):
        // what the backlog is for.
        assert_ne!(frames_with_a_late_d1_thread(false), vec![bits]);
    }

    #[test]
    fn late_delivered_edges_still_join_their_frame() {
        let (_hal, lines, rx) = open_fake();
        for _ in 0..4 {
            next_event(&rx);
        }
        // The frame's edges are stamped 40 ms in the past (twice the 20 ms frame gap), as
        // when a loaded system reads a kernel queue late, then delivered back to back: the
        // frame gap runs from receipt, so the frame is not cut after its first edge.
        let bits = Format::standard("wiegand26a")
            .unwrap()
            .encode(555, Some(5))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50)); // so "40 ms ago" is after the anchor
        let base = Timestamp::now().mono_ns - 40_000_000;
        lines
            .inject_burst(&reader_1_burst(&bits, base, 200_000))
            .unwrap();
        match next_event(&rx) {
            InputEvent::Wiegand { frame, .. } => assert!(matches!(
                decode(&frame, &w26a()),
                Decoded::Card { number: 555, .. }
            )),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn board_configs_in_repo_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let board = BoardConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            for r in &board.readers {
                board.reader_format(r).unwrap();
            }
            seen += 1;
        }
        assert!(seen >= 4, "expected the four shipped boards, saw {seen}");
        let b = BoardConfig::load(&dir.join("sim-4door.toml")).unwrap();
        assert_eq!(
            (
                b.lock_count(),
                b.reader_count(),
                b.aux_in_count(),
                b.aux_out_count(),
                b.serial.len()
            ),
            (4, 4, 4, 4, 1)
        );
    }
}
