//! The sim backend: the board's lines live in memory ([`MemLines`]) and a control socket at
//! `<data_dir>/sim.sock` drives them. Inputs go through the same wiring as the Linux backend
//! (debounce, Wiegand capture from timed edges), so the firmware above sees the same events.
//!
//! Protocol: one JSON object per line each way. Requests are [`SimRequest`] (tagged by
//! `"verb"`), answers are [`SimResponse`]. `lintel sim` is the client; tests may talk to the
//! socket directly with [`request`].

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::board::{BoardConfig, LineSpec};
use crate::fault::{FaultConfig, FaultInjector};
use crate::line::{LineError, MemLines, RawEdge};
use crate::timestamp::Timestamp;
use crate::wiegand::capture::edges_for_bits;
use crate::wiegand::format::keypad_frame;
use crate::wiegand::{DataLine, WiegandBits};

/// File name of the control socket inside the data directory.
pub const SOCKET_NAME: &str = "sim.sock";

/// Wiegand timing the sim's reader uses: 50 µs pulses, 2 ms apart.
pub const PULSE_NS: u64 = 50_000;
pub const BIT_INTERVAL_NS: u64 = 2_000_000;
/// The shortest bit interval the Wiegand standard allows, used by [`Pace::Immediate`].
pub const FAST_BIT_INTERVAL_NS: u64 = 200_000;

/// Errors of the sim backend and its control socket.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no sim control socket at {0} (is `lintel run` running with a sim board?)")]
    NotRunning(PathBuf),
    #[error("sim control socket {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("sim: {0}")]
    Rejected(String),
    #[error("sim: bad request: {0}")]
    BadRequest(String),
}

/// Short classification of [`SimError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimErrorKind {
    NotRunning,
    Io,
    Rejected,
}

impl SimError {
    pub fn kind(&self) -> SimErrorKind {
        match self {
            SimError::NotRunning(_) => SimErrorKind::NotRunning,
            SimError::Io { .. } => SimErrorKind::Io,
            SimError::Rejected(_) | SimError::BadRequest(_) => SimErrorKind::Rejected,
        }
    }
}

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case", deny_unknown_fields)]
pub enum SimRequest {
    /// A card on reader N, Wiegand-encoded in the reader's board format.
    Swipe {
        reader: u8,
        card: u64,
        #[serde(default)]
        site: Option<u32>,
    },
    /// Keys on reader N's keypad, one burst per key (4-bit, or 8-bit when `eight_bit`).
    Keypad {
        reader: u8,
        keys: String,
        #[serde(default)]
        eight_bit: bool,
    },
    /// A raw frame of '0'/'1' on reader N.
    Wiegand {
        reader: u8,
        bits: String,
    },
    /// Door contact of door N.
    Sensor {
        door: u8,
        open: bool,
    },
    /// Exit button of door N pressed and released.
    Button {
        door: u8,
    },
    /// Aux input N.
    AuxIn {
        index: u8,
        on: bool,
    },
    Tamper {
        on: bool,
    },
    PowerFail {
        on: bool,
    },
    /// Fault injection on Wiegand playback (per-mille rates); all zero turns it off.
    Faults(FaultConfig),
    /// The outputs and inputs, as JSON.
    State,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SimState>,
}

/// Logical states ("on" = relay energised, LED lit, door open, button pressed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SimState {
    pub locks: Vec<bool>,
    pub aux_out: Vec<bool>,
    pub leds: Vec<bool>,
    pub buzzers: Vec<bool>,
    pub sensors: Vec<bool>,
    pub buttons: Vec<bool>,
    pub aux_in: Vec<bool>,
    pub tamper: bool,
    pub power_fail: bool,
}

/// How Wiegand bits are played onto the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// A reader's pace (pulses 2 ms apart): the call takes as long as the frame does, then
    /// hands the frame's edges to the lines at once, stamped when each was due. So the
    /// capture sees the reader's real timing, and a late wake-up of the player thread on a
    /// busy machine cannot put a silence into the frame that the reader never made (the
    /// capture would rightly end the frame there); a line thread that reads its kernel
    /// queue late delivers the same way.
    RealTime,
    /// Edges stamped as if the frame had just been sent with the fastest timing the standard
    /// allows (pulses 200 µs apart), delivered at once (benchmarks).
    Immediate,
}

/// The sim board: lines in memory plus the board map to find them.
#[derive(Clone)]
pub struct SimBoard {
    board: Arc<BoardConfig>,
    lines: MemLines,
    faults: Arc<Mutex<FaultInjector>>,
}

impl SimBoard {
    pub fn new(board: BoardConfig, lines: MemLines) -> SimBoard {
        SimBoard {
            board: Arc::new(board),
            lines,
            faults: Arc::new(Mutex::new(FaultInjector::new(FaultConfig::default()))),
        }
    }

    pub fn lines(&self) -> &MemLines {
        &self.lines
    }

    fn logical(&self, spec: &LineSpec) -> bool {
        self.lines
            .level(&spec.id())
            .map(|high| high != spec.active_low)
            .unwrap_or(false)
    }

    fn opt_logical(&self, spec: Option<&LineSpec>) -> bool {
        spec.map(|s| self.logical(s)).unwrap_or(false)
    }

    /// Current logical state of every output and input.
    pub fn state(&self) -> SimState {
        let b = &self.board;
        SimState {
            locks: b.doors.iter().map(|d| self.logical(&d.lock)).collect(),
            aux_out: b.aux_out.iter().map(|a| self.logical(&a.line)).collect(),
            leds: b
                .readers
                .iter()
                .map(|r| self.opt_logical(r.led.as_ref()))
                .collect(),
            buzzers: b
                .readers
                .iter()
                .map(|r| self.opt_logical(r.buzzer.as_ref()))
                .collect(),
            sensors: b
                .doors
                .iter()
                .map(|d| self.opt_logical(d.sensor.as_ref()))
                .collect(),
            buttons: b
                .doors
                .iter()
                .map(|d| self.opt_logical(d.button.as_ref()))
                .collect(),
            aux_in: b.aux_in.iter().map(|a| self.logical(&a.line)).collect(),
            tamper: self.opt_logical(b.tamper.as_ref()),
            power_fail: self.opt_logical(b.power_fail.as_ref()),
        }
    }

    fn set_input(&self, spec: Option<&LineSpec>, on: bool, what: &str) -> Result<(), SimError> {
        let spec = spec.ok_or_else(|| SimError::Rejected(format!("this board has no {what}")))?;
        self.lines
            .drive(&spec.id(), on != spec.active_low, Timestamp::now())
            .map_err(|e| SimError::Rejected(format!("{what}: {e}")))
    }

    fn wiegand_lines(&self, reader: u8) -> Result<(&LineSpec, &LineSpec), SimError> {
        let r = self
            .board
            .reader(reader)
            .ok_or_else(|| SimError::Rejected(format!("there is no reader {reader}")))?;
        match (&r.d0, &r.d1) {
            (Some(d0), Some(d1)) => Ok((d0, d1)),
            _ => Err(SimError::Rejected(format!(
                "reader {reader} is not a Wiegand reader"
            ))),
        }
    }

    /// Plays a frame onto reader N's D0/D1 lines (through the fault injector).
    pub fn play_bits(&self, reader: u8, bits: &WiegandBits, pace: Pace) -> Result<(), SimError> {
        let (d0, d1) = self.wiegand_lines(reader)?;
        let interval = match pace {
            Pace::RealTime => BIT_INTERVAL_NS,
            Pace::Immediate => FAST_BIT_INTERVAL_NS,
        };
        let mut edges = edges_for_bits(bits, 0, PULSE_NS, interval);
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&mut edges);
        let span = edges.last().map(|e| e.2).unwrap_or(0);
        if pace == Pace::RealTime {
            std::thread::sleep(Duration::from_nanos(span));
        }
        // Stamped with the exact due times: thread sleeps cannot make a 1 µs glitch, but
        // the stamps can, as a kernel's would.
        let base_ns = Timestamp::now().mono_ns.saturating_sub(span);
        let burst: Vec<(String, RawEdge)> = edges
            .into_iter()
            .map(|(line, active, t)| {
                let spec = match line {
                    DataLine::D0 => d0,
                    DataLine::D1 => d1,
                };
                let edge = RawEdge {
                    high: active != spec.active_low,
                    at: Timestamp::from_anchor_ns(base_ns + t),
                };
                (spec.id(), edge)
            })
            .collect();
        self.lines
            .inject_burst(&burst)
            .map_err(|e: LineError| SimError::Rejected(format!("reader {reader}: {e}")))?;
        Ok(())
    }

    /// Carries out one request.
    pub fn handle(&self, req: &SimRequest) -> Result<Option<SimState>, SimError> {
        let b = &self.board;
        match req {
            SimRequest::State => return Ok(Some(self.state())),
            SimRequest::Swipe { reader, card, site } => {
                let r = b
                    .reader(*reader)
                    .ok_or_else(|| SimError::Rejected(format!("there is no reader {reader}")))?;
                let format = b
                    .reader_format(r)
                    .map_err(|e| SimError::Rejected(e.to_string()))?;
                let bits = format
                    .encode(*card, *site)
                    .map_err(|e| SimError::Rejected(format!("{}: {e}", format.name)))?;
                self.play_bits(*reader, &bits, Pace::RealTime)?;
            }
            SimRequest::Keypad {
                reader,
                keys,
                eight_bit,
            } => {
                let frames = keys
                    .chars()
                    .map(|k| {
                        keypad_frame(k, *eight_bit)
                            .ok_or_else(|| SimError::Rejected(format!("`{k}` is not a keypad key")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for bits in frames {
                    self.play_bits(*reader, &bits, Pace::RealTime)?;
                    // Let the frame gap pass so every key is its own frame.
                    std::thread::sleep(Duration::from_millis(
                        u64::from(b.defaults.frame_gap_ms) + 10,
                    ));
                }
            }
            SimRequest::Wiegand { reader, bits } => {
                let bits = WiegandBits::from_bit_str(bits)
                    .ok_or_else(|| SimError::Rejected("bits must be a string of 0 and 1".into()))?;
                if bits.is_empty() {
                    return Err(SimError::Rejected("no bits".into()));
                }
                self.play_bits(*reader, &bits, Pace::RealTime)?;
            }
            SimRequest::Sensor { door, open } => {
                let d = b
                    .door(*door)
                    .ok_or_else(|| SimError::Rejected(format!("there is no door {door}")))?;
                self.set_input(d.sensor.as_ref(), *open, &format!("sensor on door {door}"))?;
            }
            SimRequest::Button { door } => {
                let d = b
                    .door(*door)
                    .ok_or_else(|| SimError::Rejected(format!("there is no door {door}")))?;
                let what = format!("exit button on door {door}");
                self.set_input(d.button.as_ref(), true, &what)?;
                // Held past the debounce window, as a finger does.
                let debounce = d
                    .button
                    .as_ref()
                    .and_then(|l| l.debounce_ms)
                    .unwrap_or(b.defaults.debounce_ms);
                std::thread::sleep(Duration::from_millis(u64::from(debounce) + 80));
                self.set_input(d.button.as_ref(), false, &what)?;
            }
            SimRequest::AuxIn { index, on } => {
                let a =
                    b.aux_in.iter().find(|a| a.index == *index).ok_or_else(|| {
                        SimError::Rejected(format!("there is no aux input {index}"))
                    })?;
                self.set_input(Some(&a.line), *on, &format!("aux input {index}"))?;
            }
            SimRequest::Tamper { on } => self.set_input(b.tamper.as_ref(), *on, "tamper input")?,
            SimRequest::PowerFail { on } => {
                self.set_input(b.power_fail.as_ref(), *on, "power-fail input")?
            }
            SimRequest::Faults(config) => {
                *self.faults.lock().unwrap_or_else(|p| p.into_inner()) =
                    FaultInjector::new(config.clone());
            }
        }
        Ok(None)
    }
}

/// The control socket server (one thread; each connection served in turn).
pub struct SimServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `<data_dir>/sim.sock` (removing a stale socket file) and serves `board`.
    pub fn start(data_dir: &Path, board: SimBoard) -> Result<SimServer, SimError> {
        let path = data_dir.join(SOCKET_NAME);
        let io = |e: std::io::Error| SimError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        match std::fs::remove_file(&path) {
            Ok(()) => log::info!("removed stale sim socket {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(&path).map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hal sim socket".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                    match conn {
                        Ok(stream) => serve(stream, &board),
                        Err(e) => log::warn!("sim socket: accept failed: {e}; still listening"),
                    }
                }
            })
            .map_err(|e| SimError::Io {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(SimServer {
            path,
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(stream: UnixStream, board: &SimBoard) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut out = write_half;
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<SimRequest>(&line) {
            Err(e) => SimResponse {
                ok: false,
                error: Some(SimError::BadRequest(e.to_string()).to_string()),
                state: None,
            },
            Ok(req) => match board.handle(&req) {
                Ok(state) => SimResponse {
                    ok: true,
                    error: None,
                    state,
                },
                Err(e) => SimResponse {
                    ok: false,
                    error: Some(match e {
                        SimError::Rejected(m) => m,
                        other => other.to_string(),
                    }),
                    state: None,
                },
            },
        };
        let Ok(mut text) = serde_json::to_string(&response) else {
            return;
        };
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// Sends one request to the sim socket in `data_dir` and returns its answer
/// (`Err(Rejected)` when the sim refused it).
pub fn request(data_dir: &Path, req: &SimRequest) -> Result<SimResponse, SimError> {
    let path = data_dir.join(SOCKET_NAME);
    let stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            SimError::NotRunning(path.clone())
        }
        _ => SimError::Io {
            path: path.clone(),
            message: e.to_string(),
        },
    })?;
    let io = |e: std::io::Error| SimError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    // Generous: a keypad burst of many keys takes frame gaps per key.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    let mut text = serde_json::to_string(req).map_err(|e| SimError::BadRequest(e.to_string()))?;
    text.push('\n');
    (&stream).write_all(text.as_bytes()).map_err(io)?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).map_err(io)?;
    if line.is_empty() {
        return Err(SimError::Io {
            path,
            message: "connection closed without an answer".into(),
        });
    }
    let response: SimResponse = serde_json::from_str(&line).map_err(|e| SimError::Io {
        path: path.clone(),
        message: format!("bad answer: {e}"),
    })?;
    if !response.ok {
        return Err(SimError::Rejected(
            response.error.unwrap_or_else(|| "refused".into()),
        ));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{InputEvent, InputKind};
    use crate::wiegand::{decode, Decoded, FormatTable};
    use std::sync::mpsc::Receiver;

    fn board() -> BoardConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs/sim-1door.toml");
        BoardConfig::load(&path).unwrap()
    }

    fn skip_initial(rx: &Receiver<InputEvent>) {
        while let Ok(e) = rx.recv_timeout(Duration::from_millis(100)) {
            assert!(
                matches!(e, InputEvent::Input { initial: true, .. }),
                "{e:?}"
            );
        }
    }

    fn next(rx: &Receiver<InputEvent>) -> InputEvent {
        rx.recv_timeout(Duration::from_secs(3)).expect("no event")
    }

    #[test]
    fn control_socket_drives_inputs_and_reports_outputs() {
        let dir = tempfile::tempdir().unwrap();
        // A stale socket file from a crashed run must not stop the sim.
        std::fs::write(dir.path().join(SOCKET_NAME), b"stale").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut hal = crate::open(&board(), dir.path(), tx).unwrap();
        skip_initial(&rx);

        // swipe: encoded in the reader's format (ZK's Wiegand26: 24 card bits), played as
        // timed edges, captured, decoded.
        request(
            dir.path(),
            &SimRequest::Swipe {
                reader: 1,
                card: 123_456,
                site: None,
            },
        )
        .unwrap();
        match next(&rx) {
            InputEvent::Wiegand { reader: 1, frame } => assert_eq!(
                decode(&frame, &FormatTable::standard()),
                Decoded::Card {
                    number: 123_456,
                    site_code: None,
                    format: "wiegand26".into()
                }
            ),
            other => panic!("{other:?}"),
        }
        // Wiegand26 has no site bits: a site code is refused, not dropped silently.
        let err = request(
            dir.path(),
            &SimRequest::Swipe {
                reader: 1,
                card: 4660,
                site: Some(18),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("no site-code bits"), "{err}");
        // Reader 2 is configured for 34 bits.
        request(
            dir.path(),
            &SimRequest::Swipe {
                reader: 2,
                card: 65535,
                site: None,
            },
        )
        .unwrap();
        match next(&rx) {
            InputEvent::Wiegand { reader: 2, frame } => assert_eq!(frame.bits.len(), 34),
            other => panic!("{other:?}"),
        }
        request(
            dir.path(),
            &SimRequest::Keypad {
                reader: 1,
                keys: "12#".into(),
                eight_bit: false,
            },
        )
        .unwrap();
        let keys: String = (0..3)
            .map(|_| match next(&rx) {
                InputEvent::Wiegand { frame, .. } => match decode(&frame, &FormatTable::standard())
                {
                    Decoded::Keys(k) => k,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, "12#");
        request(
            dir.path(),
            &SimRequest::Wiegand {
                reader: 1,
                bits: "10101".into(),
            },
        )
        .unwrap();
        match next(&rx) {
            InputEvent::Wiegand { frame, .. } => assert!(matches!(
                decode(&frame, &FormatTable::standard()),
                Decoded::BadFormat { .. }
            )),
            other => panic!("{other:?}"),
        }

        request(
            dir.path(),
            &SimRequest::Sensor {
                door: 1,
                open: true,
            },
        )
        .unwrap();
        assert!(matches!(
            next(&rx),
            InputEvent::Input {
                kind: InputKind::DoorSensor(1),
                level: true,
                initial: false,
                ..
            }
        ));
        request(dir.path(), &SimRequest::Button { door: 1 }).unwrap();
        for want in [true, false] {
            match next(&rx) {
                InputEvent::Input {
                    kind: InputKind::ExitButton(1),
                    level,
                    ..
                } => assert_eq!(level, want),
                other => panic!("{other:?}"),
            }
        }
        request(dir.path(), &SimRequest::AuxIn { index: 1, on: true }).unwrap();
        assert!(matches!(
            next(&rx),
            InputEvent::Input {
                kind: InputKind::AuxIn(1),
                level: true,
                ..
            }
        ));
        request(dir.path(), &SimRequest::Tamper { on: true }).unwrap();
        assert!(matches!(
            next(&rx),
            InputEvent::Input {
                kind: InputKind::Tamper,
                level: true,
                ..
            }
        ));

        // Outputs set by the firmware show in `state`.
        let state = request(dir.path(), &SimRequest::State)
            .unwrap()
            .state
            .unwrap();
        assert_eq!(state.locks, vec![false]);
        assert_eq!(state.sensors, vec![true]);
        assert!(state.tamper);
        hal.locks[0].set(true).unwrap();
        hal.leds[0].set(true).unwrap();
        hal.aux_out[0].set(true).unwrap();
        let state = request(dir.path(), &SimRequest::State)
            .unwrap()
            .state
            .unwrap();
        assert_eq!(
            (state.locks, state.leds, state.buzzers, state.aux_out),
            (
                vec![true],
                vec![true, false],
                vec![false, false],
                vec![true]
            )
        );

        // Refusals are typed and readable.
        let e = request(
            dir.path(),
            &SimRequest::Sensor {
                door: 9,
                open: true,
            },
        )
        .unwrap_err();
        assert_eq!(e.kind(), SimErrorKind::Rejected);
        assert!(e.to_string().contains("no door 9"), "{e}");
        let e = request(dir.path(), &SimRequest::PowerFail { on: true }).unwrap_err();
        assert!(e.to_string().contains("no power-fail input"), "{e}");
        let e = request(
            dir.path(),
            &SimRequest::Swipe {
                reader: 1,
                card: 1 << 24,
                site: None,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");

        // Dropping the HAL removes the socket; clients then get NotRunning.
        drop(hal);
        assert!(!dir.path().join(SOCKET_NAME).exists());
        let e = request(dir.path(), &SimRequest::State).unwrap_err();
        assert_eq!(e.kind(), SimErrorKind::NotRunning);
        assert!(e
            .to_string()
            .contains("is `lintel run` running with a sim board?"));
    }

    #[test]
    fn faults_reach_the_capture() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let _hal = crate::open(&board(), dir.path(), tx).unwrap();
        skip_initial(&rx);
        // Every bit followed by a glitch: the capture drops them all and still decodes.
        let faults = FaultConfig {
            noise_per_mille: 1000,
            ..Default::default()
        };
        request(dir.path(), &SimRequest::Faults(faults)).unwrap();
        request(
            dir.path(),
            &SimRequest::Swipe {
                reader: 1,
                card: 77,
                site: None,
            },
        )
        .unwrap();
        match next(&rx) {
            InputEvent::Wiegand { frame, .. } => {
                assert_eq!(frame.noise_pulses, 26);
                assert!(matches!(
                    decode(&frame, &FormatTable::standard()),
                    Decoded::Card { number: 77, .. }
                ));
            }
            other => panic!("{other:?}"),
        }
        // Every bit dropped: nothing arrives at all.
        let faults = FaultConfig {
            drop_per_mille: 1000,
            ..Default::default()
        };
        request(dir.path(), &SimRequest::Faults(faults)).unwrap();
        request(
            dir.path(),
            &SimRequest::Swipe {
                reader: 1,
                card: 77,
                site: None,
            },
        )
        .unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(150)).is_err());
    }

    #[test]
    fn request_json_shape() {
        let text = serde_json::to_string(&SimRequest::Sensor {
            door: 2,
            open: false,
        })
        .unwrap();
        assert_eq!(text, r#"{"verb":"sensor","door":2,"open":false}"#);
        let req: SimRequest =
            serde_json::from_str(r#"{"verb":"aux_in","index":3,"on":true}"#).unwrap();
        assert_eq!(req, SimRequest::AuxIn { index: 3, on: true });
        assert!(serde_json::from_str::<SimRequest>(r#"{"verb":"explode"}"#).is_err());
    }
}
