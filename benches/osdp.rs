//! OSDP figures over a pseudo-terminal pair, with lintel's real control panel (the sim
//! board opens the pty as its RS-485 bus) and the HAL's fake peripherals on the other
//! end (`lintel_hal::osdp::fake`, answering every address at once).
//!
//! A pty moves bytes at no baud rate at all, so the peripheral holds each reply back for
//! the time the command and the reply would take on a wire at the bus's rate (8N1, ten
//! bits a byte). Printed:
//! - the poll cycle (time between two polls of one reader) for 1, 4 and 8 readers at
//!   9,600 and 115,200 baud, plain and in the Secure Channel, beside the wire time alone;
//! - card presented at the reader → lock relay set, p50/p99, through the engine (rules
//!   from SQLite), one Secure Channel reader, at both rates.
//!
//! `cargo bench --bench osdp` (env `OSDP_BENCH_SWIPES`, default 300;
//! `OSDP_BENCH_CYCLE_SECS`, default 3).

mod common;

use lintel::engine::{DoorCommand, OutputAction, OutputTarget};
use lintel::store::Store;
use lintel_hal::board::BoardConfig;
use lintel_hal::osdp::fake::{serve, FakeBus, FakeReader, PdEvent};
use lintel_hal::wiegand::Format;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: [u8; 16] = [7; 16];
const KEY_HEX: &str = "07070707070707070707070707070707";

/// A pty pair with fake readers on its master side; the slave's path for the board.
struct Peer {
    bus: Arc<Mutex<FakeBus>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: String,
    _slave: serialport::TTYPort,
}

impl Peer {
    fn start(addresses: &[u8], secure: bool, baud: u32) -> Peer {
        let (master, slave) = serialport::TTYPort::pair().expect("pty pair");
        let path = serialport::SerialPort::name(&slave).expect("pty name");
        let readers = addresses
            .iter()
            .map(|&a| {
                let r = FakeReader::new(a);
                if secure {
                    r.with_key(KEY)
                } else {
                    r
                }
            })
            .collect();
        let bus = Arc::new(Mutex::new(FakeBus::new(readers)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = serve(Box::new(master), bus.clone(), Some(baud), stop.clone()).expect("peer");
        Peer {
            bus,
            stop,
            thread: Some(thread),
            path,
            _slave: slave,
        }
    }

    fn polls(&self) -> Vec<u64> {
        self.bus
            .lock()
            .unwrap()
            .readers
            .iter()
            .map(|r| r.polls)
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn board(path: &str, readers: usize, secure: bool, baud: u32) -> BoardConfig {
    let mut text = String::from("name = \"osdp-bench\"\nbackend = \"sim\"\n");
    for n in 1..=readers {
        text += &format!("[[door]]\nnumber = {n}\nlock = {{ chip = \"sim\", line = {n} }}\n");
    }
    for n in 1..=readers {
        text += &format!(
            "[[reader]]\nnumber = {n}\ndoor = {n}\ndirection = \"in\"\nkind = \"osdp\"\nbus = \"rs485-1\"\naddress = {n}\n{}\n",
            if secure { format!("scbk = \"{KEY_HEX}\"") } else { String::new() }
        );
    }
    text += &format!(
        "[[serial]]\nname = \"rs485-1\"\ndevice = \"{path}\"\nbaud = {baud}\nparity = \"none\"\ndirection = \"none\"\n"
    );
    BoardConfig::from_toml_str(&text).expect("board")
}

fn wait_online(hal: &lintel_hal::Hal, readers: usize) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let all = (1..=readers).all(|n| {
            hal.feedback
                .status(u8::try_from(n).unwrap_or(1), Duration::from_secs(1))
                .is_some_and(|s| s.online)
        });
        if all {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("readers did not come online");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn poll_cycle(readers: usize, baud: u32, secure: bool, secs: u64) {
    let addresses: Vec<u8> = (1..=readers)
        .map(|n| u8::try_from(n).unwrap_or(1))
        .collect();
    let peer = Peer::start(&addresses, secure, baud);
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = channel();
    let hal =
        lintel_hal::open(&board(&peer.path, readers, secure, baud), dir.path(), tx).expect("HAL");
    wait_online(&hal, readers);
    let p0 = peer.polls();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let p1 = peer.polls();
    let elapsed = t0.elapsed();
    drop(rx);
    let polls: u64 = p1.iter().zip(&p0).map(|(a, b)| a - b).sum::<u64>() / readers as u64;
    let cycle = elapsed / u32::try_from(polls.max(1)).unwrap_or(1);
    // POLL and ACK on the wire: 8 + 7 bytes plain; with SCB (2) and MAC (4) each, 14 + 13.
    let bytes = if secure { 14 + 13 } else { 8 + 7 } as f64;
    let wire = bytes * 10.0 / f64::from(baud) * 1000.0 * readers as f64;
    println!(
        "poll cycle  {readers} reader(s) {baud:>6} baud {:<14} {:>7.2} ms per reader ({polls} polls each in {:.1} s; wire time alone {wire:.2} ms; floor 10 ms per reader)",
        if secure { "Secure Channel" } else { "plain" },
        ms(cycle),
        elapsed.as_secs_f64()
    );
    drop(hal);
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) * per_mille + 500) / 1000;
    sorted[rank.min(sorted.len() - 1)]
}

fn fill(dir: &std::path::Path, users: u32) {
    let mut store = Store::open(dir).expect("store");
    common::fill_users(&mut store, users);
    store.set_option("Door1Intertime", "0").expect("option");
}

fn card_to_relay(baud: u32, swipes: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path(), 10_000);
    let peer = Peer::start(&[1], true, baud);
    let board = board(&peer.path, 1, true, baud);
    let (input_tx, input_rx) = channel();
    let mut hal = lintel_hal::open(&board, dir.path(), input_tx).expect("HAL");
    wait_online(&hal, 1);
    let (engine, thread, probe_rx) = common::start_engine(&board, dir.path(), &mut hal, input_rx);
    let format = Format::standard("wiegand26").expect("format");
    let mut seed: u32 = 12345;
    let mut total = Vec::new();
    let mut hal_part = Vec::new();
    for k in 0..swipes {
        // Present at a random phase of the poll cycle.
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        std::thread::sleep(Duration::from_micros(u64::from(seed >> 16) % 20_000));
        let bits = format
            .encode(u64::from(k % 9_000 + 1), None)
            .expect("encode");
        let presented = Instant::now();
        peer.bus
            .lock()
            .unwrap()
            .reader(1)
            .events
            .push_back(PdEvent::Raw(bits));
        match probe_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(t) => {
                total.push(t.relay_set.saturating_duration_since(presented));
                hal_part.push(t.last_edge.saturating_duration_since(presented));
            }
            Err(_) => println!("card {k} was not granted"),
        }
        let code = engine.command(
            DoorCommand::Output {
                target: OutputTarget::Lock,
                index: 1,
                action: OutputAction::Off,
            },
            Duration::from_secs(5),
        );
        assert_eq!(code, 0);
    }
    total.sort();
    hal_part.sort();
    println!(
        "card → relay {baud:>6} baud Secure Channel, 1 reader: n={} p50 {:.2} ms p99 {:.2} ms max {:.2} ms | of which presented → reply decoded p50 {:.2} ms p99 {:.2} ms",
        total.len(),
        ms(percentile(&total, 500)),
        ms(percentile(&total, 990)),
        ms(total.last().copied().unwrap_or_default()),
        ms(percentile(&hal_part, 500)),
        ms(percentile(&hal_part, 990)),
    );
    engine.shutdown();
    let _ = thread.join();
}

fn main() {
    let swipes: u32 = std::env::var("OSDP_BENCH_SWIPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let secs: u64 = std::env::var("OSDP_BENCH_CYCLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for secure in [false, true] {
        for baud in [9_600, 115_200] {
            for readers in [1, 4, 8] {
                poll_cycle(readers, baud, secure, secs);
            }
        }
    }
    for baud in [9_600, 115_200] {
        card_to_relay(baud, swipes);
    }
}
