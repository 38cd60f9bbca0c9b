//! OSDP (IEC 60839-11-5, SIA OSDP 2.2): lintel as the control panel of RS-485 readers.
//!
//! - [`packet`]: framing, CRC-16 and checksum (sans-IO);
//! - [`message`]: typed commands and replies;
//! - [`secure`]: the Secure Channel (AES-128 session keys, MAC chain, encryption);
//! - [`cp`]: the per-bus control panel state machine (sans-IO: `now` and bytes in,
//!   packets to send and input events out);
//! - [`bus`]: the thread that owns a bus's serial port;
//! - [`fake`]: an in-memory peripheral (PD) for tests and benchmarks.
//!
//! Card data reaches the engine as ordinary [`InputEvent`]s tagged with the reader
//! number only: osdp_RAW bits as a Wiegand frame (decoded by the same formats as Wiegand
//! readers), osdp_FMT as a card number, osdp_KEYPAD as keys. Offline/online, tamper and
//! power changes arrive as [`InputEvent::Reader`].

pub mod bus;
pub mod cp;
pub mod fake;
pub mod message;
pub mod packet;
pub mod secure;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use cp::{BusController, Effect, LinkCounters, ReaderSetup, ReaderSnapshot, Timing};
pub use message::{
    BuzzerCommand, BuzzerTone, LedColor, LedCommand, LedFlash, LedPattern, PdIdentity,
};

use crate::board::{BoardConfig, ReaderKind};
use crate::event::InputEvent;
use crate::{HalError, SerialBus};
use bus::BusRequest;

/// Why a feedback command could not be handed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    #[error("reader {0} is not an OSDP reader (no LED/buzzer commands to send)")]
    NotOsdp(u8),
    #[error("the bus thread of reader {0} has stopped")]
    BusStopped(u8),
}

/// Sends LED and buzzer commands to readers by reader number (OSDP readers:
/// osdp_LED / osdp_BUZ on their bus, in their next turn). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ReaderFeedback {
    routes: BTreeMap<u8, Sender<BusRequest>>,
}

impl ReaderFeedback {
    /// Whether reader `number` takes commands through here.
    pub fn handles(&self, number: u8) -> bool {
        self.routes.contains_key(&number)
    }

    fn route(&self, number: u8) -> Result<&Sender<BusRequest>, FeedbackError> {
        self.routes
            .get(&number)
            .ok_or(FeedbackError::NotOsdp(number))
    }

    pub fn led(&self, reader: u8, command: LedCommand) -> Result<(), FeedbackError> {
        self.route(reader)?
            .send(BusRequest::Led { reader, command })
            .map_err(|_| FeedbackError::BusStopped(reader))
    }

    pub fn buzzer(&self, reader: u8, command: BuzzerCommand) -> Result<(), FeedbackError> {
        self.route(reader)?
            .send(BusRequest::Buzzer { reader, command })
            .map_err(|_| FeedbackError::BusStopped(reader))
    }

    /// The reader's link state as its bus thread sees it (waits up to `timeout`).
    pub fn status(&self, reader: u8, timeout: Duration) -> Option<ReaderSnapshot> {
        let (tx, rx) = channel();
        self.route(reader)
            .ok()?
            .send(BusRequest::Snapshot(tx))
            .ok()?;
        rx.recv_timeout(timeout)
            .ok()?
            .into_iter()
            .find(|s| s.number == reader)
    }
}

/// The OS random source for Secure Channel challenges.
pub fn os_random() -> cp::RandomSource {
    Box::new(|buf: &mut [u8]| getrandom::getrandom(buf).map_err(|e| e.to_string()))
}

/// The board's OSDP readers on bus `name`.
pub fn readers_on(board: &BoardConfig, name: &str) -> Vec<ReaderSetup> {
    board
        .readers
        .iter()
        .filter(|r| r.kind == ReaderKind::Osdp && r.bus.as_deref() == Some(name))
        .map(|r| ReaderSetup {
            number: r.number,
            address: r.address.unwrap_or(0),
            scbk: r.scbk_key(),
            install_mode: r.install_mode,
        })
        .collect()
}

/// Starts one control-panel thread per bus that has OSDP readers, taking those buses'
/// ports out of `serial`.
pub fn start(
    board: &BoardConfig,
    serial: &mut Vec<SerialBus>,
    events: &Sender<InputEvent>,
) -> Result<(Vec<JoinHandle<()>>, ReaderFeedback), HalError> {
    let mut threads = Vec::new();
    let mut feedback = ReaderFeedback::default();
    for cfg in &board.serial {
        let readers = readers_on(board, &cfg.name);
        if readers.is_empty() {
            continue;
        }
        let Some(at) = serial.iter().position(|b| b.name == cfg.name) else {
            continue;
        };
        let port = serial.remove(at).port;
        let numbers: Vec<u8> = readers.iter().map(|r| r.number).collect();
        let keyed = readers.iter().filter(|r| r.scbk.is_some()).count();
        let controller = BusController::new(
            &cfg.name,
            cfg.baud,
            readers,
            Timing::default(),
            os_random(),
            Instant::now(),
        );
        let (tx, rx) = channel();
        let handle = bus::spawn(&cfg.name, port, controller, events.clone(), rx)
            .map_err(|e| HalError::Thread(e.to_string()))?;
        log::info!(
            "OSDP {}: control panel for {} reader(s) at {} baud, {keyed} with a Secure Channel key",
            cfg.name,
            numbers.len(),
            cfg.baud
        );
        for n in numbers {
            feedback.routes.insert(n, tx.clone());
        }
        threads.push(handle);
    }
    Ok((threads, feedback))
}
