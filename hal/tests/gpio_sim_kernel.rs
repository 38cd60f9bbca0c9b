//! The Linux backend (`linux::CdevLines` under `open_with_lines`) against a real kernel's
//! GPIO character device, with gpio-sim standing in for the board's wiring.
//!
//! Runs for real only inside the guest that `scripts/qemu-gpio-test.sh` boots (Debian's
//! arm64 kernel under qemu with gpio-sim), where `scripts/qemu-gpio/run.sh` exports
//! `GPIO_CHIP` (the simulated chip's /dev node) and `GPIO_SIM_SYSFS` (its sysfs directory,
//! holding `sim_gpioN/pull` to drive an input and `sim_gpioN/value` to read an output).
//! Anywhere else every test prints why it skipped and passes.
//!
//! Timing: the guest runs under TCG (emulated CPU), so the board below uses debounce
//! windows and a frame gap far longer than real hardware needs; the Wiegand test explains
//! its own constraints (one guest CPU, resending frames the HAL reported as noisy).
#![cfg(target_os = "linux")]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use lintel_hal::board::BoardConfig;
use lintel_hal::linux::CdevLines;
use lintel_hal::wiegand::format::keypad_frame;
use lintel_hal::wiegand::{decode, Decoded, Format, FormatTable, WiegandBits};
use lintel_hal::{Backend, Hal, HalError, InputEvent, InputKind};

/// Events can take a while under an emulated CPU; a healthy run sees them in milliseconds.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// The simulated chip, when running in the guest.
struct SimChip {
    /// `/dev/gpiochipN`.
    chip: String,
    /// `/sys/devices/platform/gpio-sim.0/gpiochipN`.
    sysfs: PathBuf,
}

/// Tests share one simulated chip; running them one at a time keeps the guest's two
/// emulated CPUs free for the edge timing of the test that runs.
static SERIAL: Mutex<()> = Mutex::new(());

fn sim_chip(test: &str) -> Option<(SimChip, MutexGuard<'static, ()>)> {
    match (std::env::var("GPIO_CHIP"), std::env::var("GPIO_SIM_SYSFS")) {
        (Ok(chip), Ok(sysfs)) if !chip.is_empty() && !sysfs.is_empty() => {
            let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
            Some((
                SimChip {
                    chip,
                    sysfs: PathBuf::from(sysfs),
                },
                guard,
            ))
        }
        _ => {
            println!(
                "skipping {test}: GPIO_CHIP and GPIO_SIM_SYSFS are not set \
                 (this test runs in the gpio-sim guest: scripts/qemu-gpio-test.sh)"
            );
            None
        }
    }
}

impl SimChip {
    fn board(&self, template: &str) -> BoardConfig {
        // TOML basic strings: a /dev path needs no escaping.
        BoardConfig::from_toml_str(&template.replace("@CHIP@", &self.chip)).unwrap()
    }

    /// What the simulator sees on line `n` (for outputs: the level the consumer drives).
    fn value(&self, n: u32) -> String {
        let path = self.sysfs.join(format!("sim_gpio{n}/value"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn pull(&self, n: u32) -> String {
        let path = self.sysfs.join(format!("sim_gpio{n}/pull"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// An open `pull` attribute of line `n`: writing it moves an input like a wire would.
    fn puller(&self, n: u32) -> Puller {
        let path = self.sysfs.join(format!("sim_gpio{n}/pull"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Puller { file, path }
    }
}

/// Kept open so a Wiegand pulse is two `pwrite`s, not two open/write/close rounds.
struct Puller {
    file: File,
    path: PathBuf,
}

impl Puller {
    fn set(&self, high: bool) {
        let text: &[u8] = if high { b"pull-up" } else { b"pull-down" };
        self.file
            .write_at(text, 0)
            .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
    }
}

/// Runs the calling thread at a real-time priority until dropped (then back to normal).
///
/// Why: on the guest's single CPU (see [`wiegand_pulses_on_d0_d1_decode_to_cards`]) the
/// sender would otherwise share the CPU with the HAL's reader threads that its own edges
/// wake, and their turns would land inside the pulses. The kernel's interrupt threads
/// (SCHED_FIFO 50) still preempt the sender, so every edge is handled before the next
/// write. The sender only ever sleeps or writes, so it cannot starve the HAL.
struct RealTime;

impl RealTime {
    #[allow(unsafe_code)]
    fn enter() -> RealTime {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: sched_setscheduler reads one sched_param through a valid pointer;
        // pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
        assert_eq!(
            rc,
            0,
            "sched_setscheduler(SCHED_FIFO): {}",
            std::io::Error::last_os_error()
        );
        RealTime
    }
}

impl Drop for RealTime {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: as in `enter`.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    }
}

/// CLOCK_MONOTONIC now, the clock the kernel stamps v1 line events with (Linux 5.7+).
#[allow(unsafe_code)]
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid, exclusive pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    u64::try_from(ts.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap()
}

fn open(board: &BoardConfig) -> (Hal, Receiver<InputEvent>) {
    let (tx, rx) = mpsc::channel();
    let mut lines = CdevLines::new();
    let hal = lintel_hal::open_with_lines(board, &mut lines, tx, |_, _| {
        Err(HalError::Unsupported(Backend::Linux)) // the test boards have no serial bus
    })
    .unwrap();
    (hal, rx)
}

fn next_event(rx: &Receiver<InputEvent>, waiting_for: &str) -> InputEvent {
    match rx.recv_timeout(EVENT_WAIT) {
        Ok(e) => e,
        Err(RecvTimeoutError::Timeout) => panic!("no event within {EVENT_WAIT:?} ({waiting_for})"),
        Err(RecvTimeoutError::Disconnected) => panic!("HAL event channel closed ({waiting_for})"),
    }
}

/// The next event must be a non-initial level change of `kind`; returns (level, edge ns).
fn next_input(rx: &Receiver<InputEvent>, kind: InputKind) -> (bool, u64) {
    match next_event(rx, &format!("{kind:?}")) {
        InputEvent::Input {
            kind: k,
            level,
            at,
            initial: false,
        } if k == kind => {
            assert!(at.from_kernel, "{kind:?}: edge time is not the kernel's");
            (level, at.mono_ns)
        }
        other => panic!("expected a change of {kind:?}, got {other:?}"),
    }
}

fn assert_quiet(rx: &Receiver<InputEvent>, for_how_long: Duration, after: &str) {
    match rx.recv_timeout(for_how_long) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok(e) => panic!("unexpected event after {after}: {e:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("HAL event channel closed after {after}"),
    }
}

/// Discrete inputs and outputs on lines 0..=5.
const DISCRETE_BOARD: &str = r#"
name = "gpio-sim discrete"
backend = "linux"
[defaults]
debounce_ms = 150
[[door]]
number = 1
lock = { chip = "@CHIP@", line = 0 }
sensor = { chip = "@CHIP@", line = 1, active_low = true, bias = "pull-up" }
button = { chip = "@CHIP@", line = 2, active_low = true, bias = "pull-up", debounce_ms = 0 }
[[aux_in]]
index = 1
line = { chip = "@CHIP@", line = 3, bias = "pull-down" }
[[aux_out]]
index = 1
line = { chip = "@CHIP@", line = 4, active_low = true }
[tamper]
chip = "@CHIP@"
line = 5
"#;

/// Outputs on lines 12..=14 (inputs and their threads hold their lines until the process
/// ends, so every test has lines of its own).
const OUTPUT_BOARD: &str = r#"
name = "gpio-sim outputs"
backend = "linux"
[[door]]
number = 1
lock = { chip = "@CHIP@", line = 12 }
sensor = { chip = "@CHIP@", line = 14, active_low = true, bias = "pull-up" }
[[aux_out]]
index = 1
line = { chip = "@CHIP@", line = 13, active_low = true }
"#;

#[test]
fn outputs_drive_the_lines_with_their_active_level() {
    let Some((sim, _serial)) = sim_chip("outputs_drive_the_lines_with_their_active_level") else {
        return;
    };
    let board = sim.board(OUTPUT_BOARD);
    let (mut hal, _rx) = open(&board);

    // Requested off: active-high lock low, active-low aux output high.
    assert_eq!(sim.value(12), "0", "lock 1 starts locked");
    assert_eq!(sim.value(13), "1", "active-low aux out 1 starts off (high)");

    hal.locks[0].set(true).unwrap();
    assert_eq!(sim.value(12), "1");
    assert!(hal.locks[0].is_on());
    hal.aux_out[0].set(true).unwrap();
    assert_eq!(sim.value(13), "0");
    hal.locks[0].set(false).unwrap();
    assert_eq!(sim.value(12), "0");
    hal.aux_out[0].set(false).unwrap();
    assert_eq!(sim.value(13), "1");

    // The kernel knows who holds the lines and which way they point.
    let mut chip = gpio_cdev::Chip::new(&sim.chip).unwrap();
    for (n, output) in [(12, true), (13, true), (14, false)] {
        let info = chip.get_line(n).unwrap().info().unwrap();
        assert_eq!(
            info.consumer(),
            Some(lintel_hal::wiring::CONSUMER),
            "line {n}"
        );
        let want = if output {
            gpio_cdev::LineDirection::Out
        } else {
            gpio_cdev::LineDirection::In
        };
        assert_eq!(info.direction(), want, "line {n}");
    }
    // A second request of a held line is refused by the kernel, and the HAL says so.
    let (tx, _rx2) = mpsc::channel();
    let err = lintel_hal::open_with_lines(&board, &mut CdevLines::new(), tx, |_, _| {
        Err(HalError::Unsupported(Backend::Linux))
    })
    .err()
    .expect("lines already held must not be granted twice");
    assert_eq!(err.kind(), lintel_hal::HalErrorKind::Unavailable, "{err}");
}

#[test]
fn input_edges_arrive_debounced_with_kernel_timestamps() {
    let Some((sim, _serial)) = sim_chip("input_edges_arrive_debounced_with_kernel_timestamps")
    else {
        return;
    };
    let board = sim.board(DISCRETE_BOARD);
    // Before the request the sensor and button lines are pulled low ("active"); the
    // board's bias = "pull-up" must reach the kernel and bring them back high.
    sim.puller(1).set(false);
    sim.puller(2).set(false);
    sim.puller(5).set(false);
    let (_hal, rx) = open(&board);
    assert_eq!(sim.pull(1), "pull-up", "sensor bias applied by the request");
    assert_eq!(sim.pull(2), "pull-up", "button bias applied by the request");
    assert_eq!(
        sim.pull(3),
        "pull-down",
        "aux in bias applied by the request"
    );

    let mut initial = Vec::new();
    for _ in 0..4 {
        match next_event(&rx, "initial levels") {
            InputEvent::Input {
                kind,
                level,
                initial: true,
                ..
            } => initial.push((kind, level)),
            other => panic!("expected initial levels first, got {other:?}"),
        }
    }
    initial.sort();
    assert_eq!(
        initial,
        vec![
            (InputKind::DoorSensor(1), false),
            (InputKind::ExitButton(1), false),
            (InputKind::AuxIn(1), false),
            (InputKind::Tamper, false),
        ]
    );

    // Exit button (active low, no debounce): pressing pulls the line low.
    let button = sim.puller(2);
    let before = mono_ns();
    button.set(false);
    let after = mono_ns();
    let (level, at) = next_input(&rx, InputKind::ExitButton(1));
    assert!(level, "pulling an active-low button low presses it");
    assert!(
        (before..=after).contains(&at),
        "edge stamped {at} ns, outside the write's {before}..={after} ns"
    );
    button.set(true);
    let (level, _) = next_input(&rx, InputKind::ExitButton(1));
    assert!(!level);

    // Aux in (active high, pull-down bias): a pull-up activates it.
    let aux = sim.puller(3);
    aux.set(true);
    assert!(next_input(&rx, InputKind::AuxIn(1)).0);
    aux.set(false);
    assert!(!next_input(&rx, InputKind::AuxIn(1)).0);

    // Door sensor with a 150 ms window: a glitch much shorter than that is swallowed.
    let sensor = sim.puller(1);
    sensor.set(false);
    sensor.set(true);
    assert_quiet(&rx, Duration::from_millis(600), "a sensor glitch");

    // A bouncy opening reports once, stamped at the first edge that left "closed".
    let first_before = mono_ns();
    sensor.set(false);
    let first_after = mono_ns();
    for high in [true, false, true, false] {
        sleep(Duration::from_millis(5));
        sensor.set(high);
    }
    let settled = Instant::now();
    let (level, at) = next_input(&rx, InputKind::DoorSensor(1));
    assert!(level, "door open after the bounces settle low");
    assert!(
        (first_before..=first_after).contains(&at),
        "debounced edge stamped {at} ns; the first bounce was written in \
         {first_before}..={first_after} ns"
    );
    assert!(
        settled.elapsed() >= Duration::from_millis(140),
        "reported {:?} after the last bounce, inside the 150 ms window",
        settled.elapsed()
    );
    assert_quiet(&rx, Duration::from_millis(400), "the debounced opening");

    let close_before = mono_ns();
    sensor.set(true);
    let (level, at) = next_input(&rx, InputKind::DoorSensor(1));
    assert!(!level, "door closed");
    assert!(at >= close_before, "closing stamped before it was written");

    // Tamper (active high, no bias in the board): the line follows the simulated pull.
    sim.puller(5).set(true);
    assert!(next_input(&rx, InputKind::Tamper).0);
    assert_quiet(&rx, Duration::from_millis(300), "the tamper change");
}

/// A Wiegand reader on lines 8 (D0) and 9 (D1), LED on 10.
const WIEGAND_BOARD: &str = r#"
name = "gpio-sim wiegand"
backend = "linux"
[defaults]
# The emulated CPU stalls for milliseconds mid-frame (see send_until_clean): a frame ends
# after the fixed 250 ms gap here, not after a few of its bit periods.
frame_gap_ms = 250
frame_end_bit_periods = 0
# The sender (RealTime, SCHED_FIFO 10) must outrank the HAL's line threads on the one CPU.
realtime_priority = 0
[[door]]
number = 1
lock = { chip = "@CHIP@", line = 11 }
[[reader]]
number = 1
door = 1
direction = "in"
kind = "wiegand"
d0 = { chip = "@CHIP@", line = 8, active_low = true, bias = "pull-up" }
d1 = { chip = "@CHIP@", line = 9, active_low = true, bias = "pull-up" }
led = { chip = "@CHIP@", line = 10 }
"#;

/// Sends `bits` as a reader would: each bit a low pulse on D0 (0) or D1 (1) made by two
/// back-to-back writes (0.5-1 ms apart under emulation, inside the capture's 5 µs..2 ms),
/// bits 3 ms apart (readers: 1-2 ms). Returns CLOCK_MONOTONIC just before the first write
/// and just after the last.
fn send_frame(d0: &Puller, d1: &Puller, bits: &WiegandBits) -> (u64, u64) {
    let _rt = RealTime::enter();
    let start = mono_ns();
    for bit in bits.iter() {
        let line = if bit { d1 } else { d0 };
        line.set(false);
        line.set(true);
        sleep(Duration::from_millis(3));
    }
    (start, mono_ns())
}

/// How often one frame may be sent again when the HAL reported noise in it.
const NOISY_FRAME_RETRIES: usize = 8;

/// Sends `bits` until a frame arrives that the HAL captured without noise, and returns it.
///
/// Why retries: the emulated CPU sometimes stalls for several milliseconds (host load),
/// and a stall inside a pulse makes it longer than the capture's 2 ms limit. The HAL then
/// drops that pulse and counts it in `noise_pulses` (or drops a frame of pure noise), which
/// is the correct behaviour for a stuck line, so such an attempt says nothing about
/// decoding and is repeated. A frame without reported noise is returned and judged.
fn send_until_clean(
    rx: &Receiver<InputEvent>,
    d0: &Puller,
    d1: &Puller,
    bits: &WiegandBits,
) -> (lintel_hal::wiegand::WiegandFrame, u64, u64) {
    for attempt in 1..=NOISY_FRAME_RETRIES + 1 {
        let (from, to) = send_frame(d0, d1, bits);
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(InputEvent::Wiegand { reader: 1, frame }) if frame.noise_pulses == 0 => {
                println!(
                    "noise-free frame of {} bits on attempt {attempt}",
                    frame.bits.len()
                );
                return (frame, from, to);
            }
            Ok(InputEvent::Wiegand { reader: 1, frame }) => println!(
                "attempt {attempt}: HAL reported {} noise pulses (got {}, sent {bits}); resending",
                frame.noise_pulses, frame.bits
            ),
            Ok(other) => panic!("expected a Wiegand frame from reader 1, got {other:?}"),
            Err(RecvTimeoutError::Timeout) => {
                println!("attempt {attempt}: no frame (every pulse was noise); resending")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("HAL event channel closed"),
        }
        // Let a late frame of the failed attempt drain before the next one.
        while rx.recv_timeout(Duration::from_millis(400)).is_ok() {}
    }
    panic!(
        "no noise-free capture of {bits} in {} attempts",
        NOISY_FRAME_RETRIES + 1
    );
}

/// Runs in a guest with one CPU (scripts/qemu-gpio-test.sh boots it so). Why: gpio-sim
/// raises edges through irq_sim, and the v1 uAPI's interrupt thread types an edge
/// (rising/falling) by reading the line level when it runs; with two emulated CPUs that
/// thread often runs after the pulse's second write and reports two rising edges. On one
/// CPU the interrupt thread preempts the writer, so each edge is typed before the next.
#[test]
fn wiegand_pulses_on_d0_d1_decode_to_cards() {
    let Some((sim, _serial)) = sim_chip("wiegand_pulses_on_d0_d1_decode_to_cards") else {
        return;
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        cpus, 1,
        "the Wiegand edges need a one-CPU guest (QEMU_SMP=1), see above"
    );
    let board = sim.board(WIEGAND_BOARD);
    let (mut hal, rx) = open(&board);
    let (d0, d1) = (sim.puller(8), sim.puller(9));
    assert_eq!((sim.value(8).as_str(), sim.value(9).as_str()), ("1", "1"));

    // ZK's Wiegand26a (8-bit site + 16-bit card), so the site codes travel too.
    let w26 = Format::standard("wiegand26a").unwrap();
    let table = FormatTable::single(w26.clone());
    let cards = [
        (
            w26.encode(45_678, Some(123)).unwrap(),
            Decoded::Card {
                number: 45_678,
                site_code: Some(123),
                format: "wiegand26a".into(),
            },
        ),
        (
            w26.encode(1_234, Some(56)).unwrap(),
            Decoded::Card {
                number: 1_234,
                site_code: Some(56),
                format: "wiegand26a".into(),
            },
        ),
        (keypad_frame('7', true).unwrap(), Decoded::Keys("7".into())),
    ];
    for (bits, want) in cards {
        let (frame, sent_from, sent_to) = send_until_clean(&rx, &d0, &d1, &bits);
        assert_eq!(
            frame.bits, bits,
            "bits received {}, sent {bits}",
            frame.bits
        );
        assert_eq!(decode(&frame, &table), want);
        assert!(frame.first_edge.from_kernel && frame.last_edge.from_kernel);
        assert!(
            sent_from <= frame.first_edge.mono_ns
                && frame.first_edge.mono_ns < frame.last_edge.mono_ns
                && frame.last_edge.mono_ns <= sent_to,
            "frame edges {}..{} ns outside the sending window {sent_from}..{sent_to} ns",
            frame.first_edge.mono_ns,
            frame.last_edge.mono_ns
        );
        assert_quiet(&rx, Duration::from_millis(400), "a complete frame");
    }

    // The reader LED output reaches its line too.
    assert_eq!(sim.value(10), "0");
    hal.leds[0].set(true).unwrap();
    assert_eq!(sim.value(10), "1");
}
