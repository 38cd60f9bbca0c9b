//! The thread that owns one OSDP bus: it moves bytes between the serial port and the
//! bus's [`BusController`], hands its input events to the engine, and takes LED/buzzer
//! requests from [`super::ReaderFeedback`].

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cp::{BusController, Effect, ReaderSnapshot};
use super::message::{BuzzerCommand, LedCommand};
use crate::event::InputEvent;
use crate::serial::SerialPort;

/// What other threads ask of a bus thread.
#[derive(Debug)]
pub enum BusRequest {
    Led { reader: u8, command: LedCommand },
    Buzzer { reader: u8, command: BuzzerCommand },
    Snapshot(Sender<Vec<ReaderSnapshot>>),
}

/// The longest the thread waits in a read, so requests are taken up promptly.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// Starts the thread of bus `name`. It ends when every [`BusRequest`] sender is gone
/// (the HAL was dropped) or the engine stopped taking events.
pub fn spawn(
    name: &str,
    port: Box<dyn SerialPort>,
    controller: BusController,
    events: Sender<InputEvent>,
    requests: Receiver<BusRequest>,
) -> std::io::Result<JoinHandle<()>> {
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("hal osdp {name}"))
        .spawn(move || run(&name, port, controller, &events, &requests))
}

fn run(
    name: &str,
    mut port: Box<dyn SerialPort>,
    mut cp: BusController,
    events: &Sender<InputEvent>,
    requests: &Receiver<BusRequest>,
) {
    let mut buf = [0u8; 512];
    let mut port_failing = false;
    loop {
        loop {
            match requests.try_recv() {
                Ok(BusRequest::Led { reader, command }) => {
                    cp.led(reader, command);
                }
                Ok(BusRequest::Buzzer { reader, command }) => {
                    cp.buzzer(reader, command);
                }
                Ok(BusRequest::Snapshot(reply)) => {
                    let _ = reply.send(cp.snapshot());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let effects = cp.poll(Instant::now());
        if !apply(name, effects, port.as_mut(), events, &mut port_failing) {
            return;
        }
        let wait = cp
            .next_deadline()
            .map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()))
            .clamp(Duration::from_millis(1), MAX_WAIT);
        match port.receive(&mut buf, wait) {
            Ok(0) => {}
            Ok(n) => {
                port_failing = false;
                let effects = cp.on_bytes(Instant::now(), &buf[..n]);
                if !apply(name, effects, port.as_mut(), events, &mut port_failing) {
                    return;
                }
            }
            Err(e) => {
                if !port_failing {
                    log::error!("OSDP {name}: cannot read the bus ({e}); trying again every second, its readers will go offline");
                }
                port_failing = true;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Carries out effects; false when the engine is gone.
fn apply(
    name: &str,
    effects: Vec<Effect>,
    port: &mut dyn SerialPort,
    events: &Sender<InputEvent>,
    port_failing: &mut bool,
) -> bool {
    for effect in effects {
        match effect {
            Effect::Send(bytes) => {
                if let Err(e) = port.send(&bytes) {
                    if !*port_failing {
                        log::error!("OSDP {name}: cannot write to the bus ({e}); its readers will go offline");
                    }
                    *port_failing = true;
                }
            }
            Effect::Input(ev) => {
                if events.send(ev).is_err() {
                    return false;
                }
            }
        }
    }
    true
}
