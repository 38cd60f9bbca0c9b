//! Card-read-to-relay latency of the access-control engine on the sim HAL,
//! with 100,000 users and 100,000 authorisations stored: idle, and while a
//! bulk DATA sync (1,000-record DATA UPDATE user commands through the real
//! executor, on its own connection, back to back) writes to the same
//! database. Then the idle CPU of the running `lintel` binary over 60 s.
//!
//! Frames are played onto the sim's D0/D1 lines at the fastest standard pace
//! (200 µs bits; the real capture code ends such a frame 2 ms after its last
//! edge). Figures per run:
//! - last edge → relay: the card's last Wiegand edge → the lock relay set;
//!   split into last edge → frame delivered (the `engine-inputs` thread took
//!   it off the HAL's channel: the end-of-frame silence, the capture's poll,
//!   the channel hop) and the engine's part;
//! - decision: the engine receiving the frame → the lock relay set (rules
//!   read from SQLite, decision, output driven);
//! - card read → relay: from the frame's end (last edge + the 2 ms of
//!   silence that end it), the figure earlier runs printed with a 25 ms gap.
//!
//! The HAL's input threads and `engine-inputs` run under SCHED_FIFO where the
//! OS allows it (board `realtime_priority`, 20 in sim-4door);
//! `ENGINE_BENCH_RT_PRIORITY=0` runs them at normal priority for comparison.
//!
//! Prints figures only. `cargo bench --bench engine_latency`
//! (env `ENGINE_BENCH_SWIPES`, default 2000; `ENGINE_BENCH_CPU_SECS`, default 60).

mod common;

use lintel::clock::DeviceClock;
use lintel::commands::executors::{install, ExecutorEnv};
use lintel::commands::{CommandContext, Dispatcher};
use lintel::engine::{self, DoorCommand, GrantTiming, OutputAction, OutputTarget};
use lintel::platform::RecordingPlatform;
use lintel::protocol::parse_getrequest;
use lintel::session::link::OfflineLink;
use lintel::store::Store;
use lintel_hal::board::BoardConfig;
use lintel_hal::sim::Pace;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORDS: u32 = 100_000;
/// The silence that ends a frame of 200 µs bits (4 bit periods, at least 2 ms).
const FRAME_END: Duration = Duration::from_millis(2);

fn board() -> BoardConfig {
    let mut board = BoardConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs/sim-4door.toml"),
    )
    .expect("board");
    if let Some(p) = std::env::var("ENGINE_BENCH_RT_PRIORITY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        board.defaults.realtime_priority = p;
    }
    board
}

/// DATA UPDATE user commands of 1,000 records, rewriting the stored users,
/// until `stop`. Returns how many commands were applied.
fn data_sync(dir: &Path, stop: Arc<AtomicBool>) -> usize {
    let mut store = Store::open(dir).expect("store");
    let mut dispatcher = Dispatcher::new();
    install(
        &mut dispatcher,
        &ExecutorEnv {
            data_dir: dir.to_owned(),
            serial: "BENCH".into(),
            ..Default::default()
        },
    );
    let clock = DeviceClock::new(0);
    let platform = RecordingPlatform::new();
    let mut link = OfflineLink {
        serial: "BENCH".into(),
    };
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let start = (n % 100) * 1000 + 1;
        let body: Vec<String> = (start..start + 1000)
            .map(|i| format!("CardNo={i}\tPin={i}\tPassword=\tGroup=1\tStartTime=0\tEndTime=0\tName=Synced {n}\tPrivilege=0"))
            .collect();
        let (lines, _) = parse_getrequest(&format!("C:{n}:DATA UPDATE user {}", body.join("\n")));
        let command = lintel::protocol::command::Command::classify(&lines[0]);
        let mut ctx = CommandContext {
            store: &mut store,
            link: &mut link,
            clock: &clock,
            platform: &platform,
        };
        let out = dispatcher.execute(&command, &mut ctx);
        assert_eq!(out.ret, 0, "DATA UPDATE applies");
        n += 1;
    }
    n
}

/// The `per_mille`-th value of a sorted list (nearest rank).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) * per_mille + 500) / 1000;
    sorted[rank.min(sorted.len() - 1)]
}

/// Per swipe: last edge → relay and → delivered, decision, card read→relay,
/// and the two legs before the decision (HAL capture → delivered, delivered
/// → decision starts).
#[derive(Default)]
struct Legs {
    edge_relay: Vec<Duration>,
    edge_delivered: Vec<Duration>,
    decision: Vec<Duration>,
    card: Vec<Duration>,
    capture: Vec<Duration>,
    hop: Vec<Duration>,
}

fn report(label: &str, legs: Legs) {
    let Legs {
        mut edge_relay,
        mut edge_delivered,
        mut decision,
        mut card,
        mut capture,
        mut hop,
    } = legs;
    edge_relay.sort();
    edge_delivered.sort();
    decision.sort();
    card.sort();
    capture.sort();
    hop.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<28} n={:<5} last edge→relay p50 {:.3} ms p99 {:.3} ms max {:.3} ms | last edge→frame delivered to the engine p50 {:.3} ms p99 {:.3} ms",
        edge_relay.len(),
        ms(percentile(&edge_relay, 500)),
        ms(percentile(&edge_relay, 990)),
        ms(edge_relay.last().copied().unwrap_or_default()),
        ms(percentile(&edge_delivered, 500)),
        ms(percentile(&edge_delivered, 990)),
    );
    println!(
        "{:<28} decision p50 {:.3} ms p99 {:.3} ms max {:.3} ms | card read (frame end)→relay p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        "",
        ms(percentile(&decision, 500)),
        ms(percentile(&decision, 990)),
        ms(decision.last().copied().unwrap_or_default()),
        ms(percentile(&card, 500)),
        ms(percentile(&card, 990)),
        ms(card.last().copied().unwrap_or_default()),
    );
    println!(
        "{:<28} where the time goes: frame end→HAL delivers it p50 {:.3} ms p99 {:.3} ms | delivered→decision starts (lock, rule refresh) p50 {:.3} ms p99 {:.3} ms",
        "",
        ms(percentile(&capture, 500)),
        ms(percentile(&capture, 990)),
        ms(percentile(&hop, 500)),
        ms(percentile(&hop, 990)),
    );
}

fn run_swipes(
    hal: &lintel_hal::Hal,
    board: &BoardConfig,
    engine: &engine::EngineHandle,
    probe: &std::sync::mpsc::Receiver<GrantTiming>,
    swipes: u32,
    first_card: u32,
) -> Legs {
    let sim = hal.sim_board().expect("sim board");
    let mut legs = Legs::default();
    for k in 0..swipes {
        let reader = u8::try_from(k % 4 + 1).unwrap_or(1);
        let r = board.reader(reader).expect("reader");
        let format = board.reader_format(r).expect("format");
        // Each swipe is a different user (wiegand26 holds 24 card bits).
        let number = (first_card + k) % 65_000 + 1;
        let bits = format.encode(u64::from(number), None).expect("encode");
        sim.play_bits(reader, &bits, Pace::Immediate).expect("play");
        match probe.recv_timeout(Duration::from_secs(5)) {
            Ok(t) => {
                let frame_end = t.last_edge + FRAME_END;
                legs.edge_relay
                    .push(t.relay_set.saturating_duration_since(t.last_edge));
                legs.edge_delivered
                    .push(t.forwarded.saturating_duration_since(t.last_edge));
                legs.decision
                    .push(t.relay_set.saturating_duration_since(t.received));
                legs.card
                    .push(t.relay_set.saturating_duration_since(frame_end));
                legs.capture
                    .push(t.forwarded.saturating_duration_since(frame_end));
                legs.hop
                    .push(t.received.saturating_duration_since(t.forwarded));
            }
            Err(_) => println!("swipe {k} (card {number}, reader {reader}) was not granted"),
        }
        // Relock so the next grant drives the relay again.
        let code = engine.command(
            DoorCommand::Output {
                target: OutputTarget::Lock,
                index: r.door,
                action: OutputAction::Off,
            },
            Duration::from_secs(5),
        );
        assert_eq!(code, 0);
    }
    legs
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn idle_cpu(secs: u64) {
    let server = lintel_refserver::RefServer::start(lintel_refserver::ServerConfig::default())
        .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lintel.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nserial = \"BENCHCPU01\"\ndata_dir = \"{}\"\nboard = \"{}\"\n[server]\nurl = \"{}\"\n",
            dir.path().join("data").display(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("board-configs/sim-4door.toml")
                .display(),
            server.url()
        ),
    )
    .expect("config");
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/lintel");
    let exe = if exe.exists() {
        exe
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/lintel")
    };
    let mut child = std::process::Command::new(&exe)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lintel runs");
    // Let it connect and settle before measuring.
    std::thread::sleep(Duration::from_secs(5));
    let hz = 100.0; // USER_HZ on Linux
    let t0 = cpu_ticks(child.id());
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let t1 = cpu_ticks(child.id());
    let wall = w0.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    match (t0, t1) {
        (Some(a), Some(b)) => println!(
            "idle CPU of {} over {wall:.0} s (server polls every RequestDelay): {:.2}% of one core",
            exe.display(),
            (b - a) as f64 / hz / wall * 100.0
        ),
        _ => println!("idle CPU: /proc not readable"),
    }
}

fn main() {
    let swipes: u32 = std::env::var("ENGINE_BENCH_SWIPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let cpu_secs: u64 = std::env::var("ENGINE_BENCH_CPU_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("store");
    let t = Instant::now();
    common::fill_users(&mut store, RECORDS);
    println!(
        "stored {RECORDS} users and {RECORDS} authorisations in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Relays only: one long punch interval per user would refuse repeats.
    for door in 1..=4 {
        store
            .set_option(&format!("Door{door}Intertime"), "0")
            .expect("option");
    }
    drop(store);

    let board = board();
    let (input_tx, input_rx) = channel();
    let mut hal = lintel_hal::open(&board, dir.path(), input_tx).expect("sim HAL");
    let (engine, thread, probe_rx) = common::start_engine(&board, dir.path(), &mut hal, input_rx);

    // Warm-up (page cache, prepared statements).
    run_swipes(&hal, &board, &engine, &probe_rx, 50, 60_000);
    let legs = run_swipes(&hal, &board, &engine, &probe_rx, swipes, 1);
    report("idle", legs);

    let stop = Arc::new(AtomicBool::new(false));
    let sync = {
        let stop = stop.clone();
        let dir = dir.path().to_owned();
        std::thread::spawn(move || data_sync(&dir, stop))
    };
    std::thread::sleep(Duration::from_millis(200));
    let legs = run_swipes(&hal, &board, &engine, &probe_rx, swipes, 20_000);
    stop.store(true, Ordering::Relaxed);
    let applied = sync.join().expect("sync thread");
    report("during bulk DATA sync", legs);
    println!("  (the sync applied {applied} DATA UPDATE user commands of 1,000 records meanwhile)");

    engine.shutdown();
    let _ = thread.join();
    drop(hal);
    idle_cpu(cpu_secs);
}
