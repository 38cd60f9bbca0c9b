//! Time from the last Wiegand edge to the decoded card at the consumer.
//!
//! Runs a sim board with 8 Wiegand readers through the real HAL path (in-memory lines →
//! line threads → dispatcher with the Wiegand capture → channel → `decode`) and prints
//! last edge → decoded p50/p99/max for three cases:
//! - 10,000 frames (LINTEL_BENCH_FRAMES) at the fastest standard pace, 200 µs bits: the
//!   frame ends after its bit timing's 2 ms floor;
//! - 200 frames at a typical reader's 2 ms bits (`Pace::RealTime`): 4 bit periods, 8 ms;
//! - 2,000 frames at 200 µs with `frame_end_bit_periods = 0`: the fixed 25 ms gap, the
//!   behaviour before frames ended by their bit timing.
//!
//! The HAL's own share (beyond the silence that ends the frame) is printed beside each.
//! The input threads run under SCHED_FIFO where the OS allows it (board default).
//!
//! cargo bench -p lintel-hal --bench wiegand_latency

use std::time::{Duration, Instant};

use lintel_hal::board::BoardConfig;
use lintel_hal::sim::{Pace, BIT_INTERVAL_NS, FAST_BIT_INTERVAL_NS};
use lintel_hal::wiegand::{decode, CaptureConfig, Decoded, Format, FormatTable};
use lintel_hal::InputEvent;

const READERS: u8 = 8;

fn board_toml(end_bit_periods: u32) -> String {
    let mut s = format!(
        "name = \"bench\"\nbackend = \"sim\"\n[defaults]\nframe_end_bit_periods = {end_bit_periods}\n"
    );
    for d in 1..=READERS / 2 {
        s += &format!(
            "[[door]]\nnumber = {d}\nlock = {{ chip = \"sim\", line = {} }}\n",
            100 + u32::from(d)
        );
    }
    for r in 1..=READERS {
        let door = r.div_ceil(2);
        let dir = if r % 2 == 1 { "in" } else { "out" };
        let base = u32::from(r) * 2;
        s += &format!(
            "[[reader]]\nnumber = {r}\ndoor = {door}\ndirection = \"{dir}\"\nkind = \"wiegand\"\n\
             d0 = {{ chip = \"sim\", line = {base}, active_low = true }}\n\
             d1 = {{ chip = \"sim\", line = {}, active_low = true }}\n",
            base + 1
        );
    }
    s
}

/// Nearest-rank percentile, `p` in whole percent.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * (sorted.len() - 1) + 50) / 100;
    sorted[rank.min(sorted.len() - 1)]
}

/// Plays `frames` frames round-robin on the readers and returns last edge → decoded,
/// taken by a consumer thread of its own (as the engine's is), so the player's work does
/// not count. A reader's pace (`Pace::RealTime`) plays one frame at a time: each call
/// takes as long as its frame.
fn measure(
    end_bit_periods: u32,
    pace: Pace,
    frames: usize,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let board = BoardConfig::from_toml_str(&board_toml(end_bit_periods))?;
    let dir = tempfile::tempdir()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let hal = lintel_hal::open(&board, dir.path(), tx)?;
    let sim = hal.sim_board().ok_or("not a sim HAL")?.clone();
    // ZK's Wiegand26a (H10301), so each frame's site code is checked too.
    let format = Format::standard("wiegand26a").ok_or("no wiegand26a")?;
    let table = FormatTable::single(format.clone());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<Duration, String>>();
    let consumer = std::thread::spawn(move || {
        while let Ok(ev) = rx.recv() {
            if let InputEvent::Wiegand { reader, frame } = ev {
                let decoded = decode(&frame, &table);
                let arrived = Instant::now();
                // Every frame's site is its card number modulo 256 (see below).
                let result = match decoded {
                    Decoded::Card {
                        number, site_code, ..
                    } if site_code == u32::try_from(number % 256).ok() => {
                        Ok(arrived.saturating_duration_since(frame.last_edge.at))
                    }
                    other => Err(format!("reader {reader}: {other:?}")),
                };
                if done_tx.send(result).is_err() {
                    return;
                }
            }
        }
    });
    let per_batch = match pace {
        Pace::Immediate => usize::from(READERS),
        Pace::RealTime => 1,
    };
    let mut latencies = Vec::with_capacity(frames);
    let mut sent = 0usize;
    while sent < frames {
        let batch = per_batch.min(frames - sent);
        for r in 0..batch {
            let n = sent + r;
            let bits = format.encode(u64::try_from(n % 65_536)?, Some(u32::try_from(n % 256)?))?;
            let reader = u8::try_from(n % usize::from(READERS) + 1)?;
            sim.play_bits(reader, &bits, pace)?;
        }
        for _ in 0..batch {
            latencies.push(done_rx.recv_timeout(Duration::from_secs(5))??);
        }
        sent += batch;
    }
    drop(hal);
    let _ = consumer.join();
    latencies.sort();
    Ok(latencies)
}

fn print(label: &str, latencies: &[Duration], gap: Duration) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let over = |d: Duration| d.saturating_sub(gap);
    let (p50, p99, max) = (
        percentile(latencies, 50),
        percentile(latencies, 99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!("{label} ({} frames)", latencies.len());
    println!(
        "  last edge -> decoded card at consumer: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(p50),
        ms(p99),
        ms(max)
    );
    println!(
        "  of which beyond the {:.1} ms of silence that ends the frame: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(gap),
        ms(over(p50)),
        ms(over(p99)),
        ms(over(max))
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: usize = std::env::var("LINTEL_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let started = Instant::now();
    let config = CaptureConfig::default();
    let fast = measure(4, Pace::Immediate, frames)?;
    print(
        "200 us bits, frame ends after 4 bit periods (2 ms floor)",
        &fast,
        Duration::from_nanos(config.gap_ns(FAST_BIT_INTERVAL_NS)),
    );
    let reader_pace = measure(4, Pace::RealTime, 200)?;
    print(
        "2 ms bits (a typical reader), frame ends after 4 bit periods",
        &reader_pace,
        Duration::from_nanos(config.gap_ns(BIT_INTERVAL_NS)),
    );
    let fixed = measure(0, Pace::Immediate, frames.min(2_000))?;
    print(
        "200 us bits, fixed 25 ms gap (frame_end_bit_periods = 0, as before)",
        &fixed,
        Duration::from_nanos(config.frame_gap_ns),
    );
    println!(
        "wiegand_latency: {READERS} readers, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
