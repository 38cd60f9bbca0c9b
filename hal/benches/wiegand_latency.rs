//! Time from the last Wiegand edge to the decoded card at the consumer.
//!
//! Runs a sim board with 8 Wiegand readers through the real HAL path (in-memory lines →
//! line threads → dispatcher with the Wiegand capture → channel → `decode`), plays 10,000
//! H10301 frames (LINTEL_BENCH_FRAMES to change) and prints p50/p99/max. A frame can only
//! end after the frame gap of silence (25 ms, the board default), so the figure is the gap
//! plus the HAL's own overhead; both are printed.
//!
//! cargo bench -p lintel-hal --bench wiegand_latency

use std::time::{Duration, Instant};

use lintel_hal::board::BoardConfig;
use lintel_hal::sim::Pace;
use lintel_hal::wiegand::{decode, Decoded, Format, FormatTable};
use lintel_hal::InputEvent;

const READERS: u8 = 8;

fn board_toml() -> String {
    let mut s = String::from("name = \"bench\"\nbackend = \"sim\"\n");
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: usize = std::env::var("LINTEL_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let board = BoardConfig::from_toml_str(&board_toml())?;
    let gap = Duration::from_millis(u64::from(board.defaults.frame_gap_ms));
    let dir = tempfile::tempdir()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let hal = lintel_hal::open(&board, dir.path(), tx)?;
    let sim = hal.sim_board().ok_or("not a sim HAL")?.clone();
    let format = Format::standard("wiegand26").ok_or("no wiegand26")?;
    let table = FormatTable::standard();

    // Skip the initial input events (none on this board, but be safe).
    while rx.try_recv().is_ok() {}

    let mut latencies = Vec::with_capacity(frames);
    let mut sent = 0usize;
    let started = Instant::now();
    while sent < frames {
        let batch = usize::from(READERS).min(frames - sent);
        let mut expected = Vec::new();
        for r in 0..batch {
            let card = u64::try_from(sent + r)? % 65_536;
            let site = u32::try_from((sent + r) % 256)?;
            let bits = format.encode(card, Some(site))?;
            let reader = u8::try_from(r + 1)?;
            sim.play_bits(reader, &bits, Pace::Immediate)?;
            expected.push((reader, card, site));
        }
        let mut got = 0;
        while got < batch {
            if let InputEvent::Wiegand { reader, frame } =
                rx.recv_timeout(Duration::from_secs(5))?
            {
                {
                    let decoded = decode(&frame, &table);
                    let arrived = Instant::now();
                    let want = expected
                        .iter()
                        .find(|e| e.0 == reader)
                        .ok_or("frame from an unexpected reader")?;
                    match decoded {
                        Decoded::Card {
                            number, site_code, ..
                        } if number == want.1 && site_code == Some(want.2) => {}
                        other => return Err(format!("reader {reader}: {other:?}").into()),
                    }
                    latencies.push(arrived.saturating_duration_since(frame.last_edge.at));
                    got += 1;
                }
            }
        }
        sent += batch;
    }
    let wall = started.elapsed();
    latencies.sort();
    let over = |d: Duration| d.saturating_sub(gap);
    let (p50, p99, max) = (
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "wiegand_latency: {} frames on {READERS} readers in {:.1} s",
        latencies.len(),
        wall.as_secs_f64()
    );
    println!(
        "last edge -> decoded card at consumer: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    println!(
        "of which beyond the {} ms frame gap: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        gap.as_millis(),
        over(p50).as_secs_f64() * 1e3,
        over(p99).as_secs_f64() * 1e3,
        over(max).as_secs_f64() * 1e3
    );
    drop(hal);
    Ok(())
}
