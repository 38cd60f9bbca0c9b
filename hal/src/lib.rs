//! `lintel-hal`: the door controller's hardware, behind small blocking traits.
//!
//! - outputs (lock relays, aux outputs, reader LEDs and buzzers): [`Output`];
//! - inputs (door sensors, exit buttons, aux inputs, tamper, power-fail) and Wiegand frames
//!   arrive as timestamped [`InputEvent`]s on a channel the firmware hands to [`open`];
//! - Wiegand decoding is the pure [`wiegand::decode`], called by the engine with the
//!   format table in force;
//! - RS-485 ports: [`serial::SerialPort`]; OSDP readers on them are run by [`osdp`]
//!   (one control-panel thread per bus), their card data arriving as the same events.
//!
//! Backends: `linux` (gpio-cdev v1 uAPI + serialport) and `sim` (in memory, driven through
//! `<data_dir>/sim.sock` by `lintel sim`). Both share [`wiring`], so the sim exercises the
//! same debounce and Wiegand capture code as real hardware.
//!
//! Invariant: this crate never touches the network or SQLite (the sim's Unix socket is
//! local IPC).
//!
//! ```no_run
//! use std::path::Path;
//! let board = lintel_hal::board::BoardConfig::load(Path::new("board-configs/sim-4door.toml"))?;
//! let (tx, rx) = std::sync::mpsc::channel();
//! let mut hal = lintel_hal::open(&board, Path::new("/tmp/lintel"), tx)?;
//! hal.locks[0].set(true)?; // release door 1
//! if let Ok(lintel_hal::InputEvent::Wiegand { reader, frame }) = rx.recv() {
//!     let card = lintel_hal::wiegand::decode(&frame, &lintel_hal::wiegand::FormatTable::standard());
//!     println!("reader {reader}: {card:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod board;
pub mod debounce;
pub mod event;
pub mod fault;
pub mod indicator;
pub mod line;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod osdp;
pub mod output;
pub mod realtime;
pub mod serial;
pub mod sim;
pub mod textfile;
pub mod timestamp;
pub mod wiegand;
pub mod wiring;

use std::path::Path;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

pub use board::{Backend, BoardConfig, Capabilities};
pub use event::{InputEvent, InputKind, ReaderStatus, Timestamp};
pub use indicator::{ReaderIndicator, ReaderSignals, RecordingIndicator, Signal};
pub use osdp::ReaderFeedback;
pub use output::Output;

use board::DirectionControl;
use line::{LineError, LineProvider, MemLines};
use serial::{MemSerialPort, SerialError, SerialPort};
use sim::{SimBoard, SimError, SimServer};

/// Errors opening or driving the hardware.
#[derive(Debug, thiserror::Error)]
pub enum HalError {
    #[error("{what}: {source}")]
    Line {
        what: String,
        #[source]
        source: LineError,
    },
    #[error(transparent)]
    Serial(#[from] SerialError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("cannot start a HAL thread: {0}")]
    Thread(String),
    #[error("backend {0} is not available on this platform")]
    Unsupported(Backend),
}

/// Short classification of [`HalError`], in the manner of embedded-hal's `ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalErrorKind {
    /// A chip, line, device or socket the board names is missing or busy.
    Unavailable,
    /// An operation on an open resource failed.
    Io,
    Other,
}

impl HalError {
    pub fn kind(&self) -> HalErrorKind {
        match self {
            HalError::Line { source, .. } => match source.kind() {
                line::LineErrorKind::Unavailable => HalErrorKind::Unavailable,
                _ => HalErrorKind::Io,
            },
            HalError::Serial(e) => match e.kind() {
                serial::SerialErrorKind::Io => HalErrorKind::Io,
                _ => HalErrorKind::Unavailable,
            },
            HalError::Sim(e) => match e.kind() {
                sim::SimErrorKind::Io => HalErrorKind::Io,
                _ => HalErrorKind::Unavailable,
            },
            HalError::Thread(_) | HalError::Unsupported(_) => HalErrorKind::Other,
        }
    }
}

/// A serial bus of the board, by its `[[serial]]` name.
pub struct SerialBus {
    pub name: String,
    pub port: Box<dyn SerialPort>,
}

/// The opened hardware. Dropping it stops the sim socket; input threads blocked in the
/// kernel end with the process.
pub struct Hal {
    /// Door lock relays; index 0 = door 1.
    pub locks: Vec<Box<dyn Output>>,
    /// Aux outputs; index 0 = aux out 1.
    pub aux_out: Vec<Box<dyn Output>>,
    /// Reader LEDs; index 0 = reader 1.
    pub leds: Vec<Box<dyn Output>>,
    /// Reader buzzers; index 0 = reader 1.
    pub buzzers: Vec<Box<dyn Output>>,
    /// LED and buzzer commands to OSDP readers, by reader number.
    pub feedback: ReaderFeedback,
    /// Serial buses without OSDP readers (those are owned by their bus threads).
    pub serial: Vec<SerialBus>,
    pub capabilities: Capabilities,
    /// Reader numbers in board order (the order of `leds` and `buzzers`), each with
    /// whether the board wires an LED or buzzer line to it.
    reader_lines: Vec<(u8, bool)>,
    feedback_timing: board::FeedbackTiming,
    threads: Vec<JoinHandle<()>>,
    sim: Option<SimServer>,
    sim_board: Option<SimBoard>,
}

impl Hal {
    /// The sim board behind a sim HAL (for in-process tests and benchmarks).
    pub fn sim_board(&self) -> Option<&SimBoard> {
        self.sim_board.as_ref()
    }

    /// Path of the sim control socket, if this is a sim HAL.
    pub fn sim_socket(&self) -> Option<&Path> {
        self.sim.as_ref().map(|s| s.path())
    }

    /// Number of running HAL threads (line readers, dispatcher, OSDP buses, indicators).
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Hands the wired reader LED and buzzer lines to the indicator thread (taking them
    /// out of `leds` and `buzzers`) and returns what signals decisions at every reader:
    /// those lines, and OSDP readers through their buses. Call it once.
    pub fn start_indicators(&mut self) -> Result<ReaderSignals, HalError> {
        let mut lines = Vec::new();
        for (i, &(reader, wired)) in self.reader_lines.iter().enumerate() {
            if !wired {
                continue;
            }
            let take = |v: &mut Vec<Box<dyn Output>>| {
                v.get_mut(i)
                    .map(|o| std::mem::replace(o, Box::new(output::UnwiredOutput::default())))
            };
            if let (Some(led), Some(buzzer)) = (take(&mut self.leds), take(&mut self.buzzers)) {
                lines.push(indicator::ReaderLines {
                    reader,
                    led,
                    buzzer,
                });
            }
        }
        let (signals, thread) =
            ReaderSignals::start(self.feedback_timing, lines, self.feedback.clone())
                .map_err(|e| HalError::Thread(e.to_string()))?;
        self.threads.extend(thread);
        Ok(signals)
    }
}

impl Drop for Hal {
    fn drop(&mut self) {
        // Closing the in-memory inputs lets the sim's threads end; kernel reads cannot be
        // interrupted and end with the process.
        if let Some(b) = &self.sim_board {
            b.lines().close_inputs();
        }
    }
}

/// Opens the board's backend: requests every line, starts the input threads (which send
/// to `events`), opens the serial buses, and for the sim starts `<data_dir>/sim.sock`.
pub fn open(
    board: &BoardConfig,
    data_dir: &Path,
    events: Sender<InputEvent>,
) -> Result<Hal, HalError> {
    match board.backend() {
        Backend::Sim => {
            let mut lines = MemLines::new();
            // `device = "sim"` keeps a bus in memory; a path opens that tty for real.
            let mut hal = open_with_lines(board, &mut lines, events, |cfg, lines| {
                if cfg.device.as_os_str() == "sim" {
                    Ok(Box::new(MemSerialPort::default()))
                } else {
                    open_tty(cfg, lines)
                }
            })?;
            let sim_board = SimBoard::new(board.clone(), lines);
            hal.sim = Some(SimServer::start(data_dir, sim_board.clone())?);
            hal.sim_board = Some(sim_board);
            Ok(hal)
        }
        #[cfg(target_os = "linux")]
        Backend::Linux => {
            let mut lines = linux::CdevLines::new();
            open_with_lines(board, &mut lines, events, open_tty)
        }
        #[cfg(not(target_os = "linux"))]
        Backend::Linux => Err(HalError::Unsupported(Backend::Linux)),
    }
}

/// Opens a `[[serial]]` bus's tty with its direction control (a GPIO driver-enable line
/// requested from `lines`).
fn open_tty<L: LineProvider>(
    cfg: &board::SerialConfig,
    lines: &mut L,
) -> Result<Box<dyn SerialPort>, HalError> {
    let driver_enable = match (&cfg.direction, &cfg.direction_line) {
        (DirectionControl::Gpio, Some(spec)) => {
            let line = lines
                .output(
                    spec,
                    output::LineOutput::level_for(false, spec.active_low),
                    wiring::CONSUMER,
                )
                .map_err(|source| HalError::Line {
                    what: format!("serial {} direction", cfg.name),
                    source,
                })?;
            Some(Box::new(output::LineOutput::new(
                format!("serial {} direction", cfg.name),
                line,
                spec.active_low,
            )) as Box<dyn Output>)
        }
        _ => None,
    };
    Ok(Box::new(serial::Rs485Port::open(cfg, driver_enable)?))
}

/// Opens a board on any line provider (the Linux backend's code path; tests pass
/// [`MemLines`] as the fake provider). `open_serial` opens each `[[serial]]` bus.
pub fn open_with_lines<L: LineProvider>(
    board: &BoardConfig,
    lines: &mut L,
    events: Sender<InputEvent>,
    mut open_serial: impl FnMut(&board::SerialConfig, &mut L) -> Result<Box<dyn SerialPort>, HalError>,
) -> Result<Hal, HalError> {
    let outputs = wiring::open_outputs(board, lines)?;
    let mut serial = Vec::new();
    for cfg in &board.serial {
        serial.push(SerialBus {
            name: cfg.name.clone(),
            port: open_serial(cfg, lines)?,
        });
    }
    let (osdp_threads, feedback) = osdp::start(board, &mut serial, &events)?;
    let mut inputs = wiring::start_inputs(board, lines, events)?;
    inputs.threads.extend(osdp_threads);
    Ok(Hal {
        locks: outputs.locks,
        aux_out: outputs.aux_out,
        leds: outputs.leds,
        buzzers: outputs.buzzers,
        feedback,
        serial,
        capabilities: board.capabilities(),
        reader_lines: board
            .readers
            .iter()
            .map(|r| (r.number, r.led.is_some() || r.buzzer.is_some()))
            .collect(),
        feedback_timing: board.feedback,
        threads: inputs.threads,
        sim: None,
        sim_board: None,
    })
}
