//! The guest half of the true power-loss proof (scripts/qemu-power-loss.sh):
//! run inside an arm64 VM on an ext4 disk, killed with the VM, so what the
//! guest kernel had not written to the disk is really gone. Ignored on the
//! host; the script runs it in the guest with
//! `--ignored --exact power_loss_guest --nocapture` and these variables:
//!
//! - `LINTEL_POWER_LOSS_DIR`: the data directory (on the guest's ext4 disk);
//! - `LINTEL_POWER_LOSS_MODE`: `write` (append events, acknowledge uploads,
//!   store command results until the VM is killed), `check` (check the
//!   database against what earlier runs printed) or `check-write` (both, in
//!   one boot: the check sees the disk as the power loss left it);
//! - `LINTEL_POWER_LOSS_EXPECT`: the `PL ` lines earlier boots printed, in
//!   order (the host collects them from the console).
//!
//! The writer prints a line only after the call it reports returned:
//! `PL COMMITTED event <index> outbox <id>` for events (synchronous=FULL),
//! `PL ACKING <id>` / `PL ACKED <id>` around each acknowledgement
//! (synchronous=NORMAL through `Store::unsynced`), `PL RESULT <id> synced`
//! / `PL RESULT <id> unsynced` for command results.
//!
//! The check asserts: `PRAGMA integrity_check` is ok; every event printed
//! COMMITTED is in the event log, or still in the outbox, or covered by the
//! durable acknowledged watermark (nothing decided is lost); its outbox row,
//! when there, carries its index; no index was given twice; the durable
//! watermark is one the writer wrote, never ahead of the outbox's sequence
//! (so never ahead of what was committed), and not older than any
//! acknowledgement followed by a synced commit (WAL keeps commits in order); every synced result, and every unsynced one followed
//! by a synced commit, is there. Unsynced acknowledgements and results with
//! no synced commit after them may be lost: they are counted and printed
//! (`rolled_back`), since losing one only means sending again.

use lintel::store::{Logged, NewEvent, Store};
use rusqlite::OptionalExtension;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Events appended (each its own synced commit) per round of traffic.
const EVENTS_PER_ROUND: usize = 4;
/// Of those, acknowledged in the same round: the backlog grows by one a
/// round, so the outbox always holds unacknowledged events.
const ACKS_PER_ROUND: usize = 3;
/// The event log kept when pruning (small, so pruning really deletes).
const PRUNE_CAP: u64 = 40;
/// The writer stops on its own after this long: the host should have
/// killed the VM long before (an exit then fails the proof).
const WRITER_LIMIT: Duration = Duration::from_secs(600);

#[test]
#[ignore = "runs inside the VM of scripts/qemu-power-loss.sh"]
fn power_loss_guest() {
    let dir = PathBuf::from(env("LINTEL_POWER_LOSS_DIR"));
    let mode = env("LINTEL_POWER_LOSS_MODE");
    let expect = std::env::var("LINTEL_POWER_LOSS_EXPECT")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .unwrap_or_default();
    // libtest printed "test power_loss_guest ... " without a newline: the
    // host reads only lines that start with "PL ".
    println!();
    match mode.as_str() {
        "write" => write(&dir),
        "check" => check(&dir, &expect),
        "check-write" => {
            check(&dir, &expect);
            write(&dir);
        }
        other => panic!("LINTEL_POWER_LOSS_MODE={other}: expected write, check or check-write"),
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn write(dir: &std::path::Path) {
    let mut store = Store::open(dir).expect("open the store");
    let start = Instant::now();
    let mut round = 0u64;
    let mut max_index = store.max_event_index().expect("max index");
    // Command IDs unique across boots: every run starts above the last
    // run's synced events (the host kills only after one committed).
    let run = max_index;
    println!(
        "PL WRITER START max_index {max_index} acked {}",
        store.outbox_acked_through().expect("watermark")
    );
    while start.elapsed() < WRITER_LIMIT {
        round += 1;
        // Decided events: the engine's path (log_event), each commit synced.
        for n in 0..EVENTS_PER_ROUND {
            let mut event = NewEvent::plain("2026-01-01 00:00:00".into(), 27, 1);
            event.pin = format!("{round}");
            event.linkid = u32::try_from(n).unwrap_or(0);
            let index = match store.log_event(event) {
                Logged::Written(index) => index,
                other => panic!("event not written: {other:?}"),
            };
            assert!(index > max_index, "index {index} given again");
            max_index = index;
            let outbox: i64 = store
                .conn()
                .query_row(
                    "SELECT id FROM outbox WHERE channel = 'rtlog' ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .expect("the event's outbox row");
            println!("PL COMMITTED event {index} outbox {outbox}");
        }
        // A command that is not idempotent: its result is synced.
        let id = format!("s{run}-{round}");
        store
            .begin_command(&id, "digest", "CONTROL DEVICE", -12, true)
            .expect("begin synced");
        store.finish_command(&id, 0, "", true).expect("finish");
        println!("PL RESULT {id} synced");
        // A DATA command: idempotent, its result is not synced.
        let id = format!("u{run}-{round}");
        store
            .begin_command(&id, "digest", "DATA", -12, false)
            .expect("begin unsynced");
        store.finish_command(&id, 0, "", false).expect("finish");
        println!("PL RESULT {id} unsynced");
        // Uploads, one event per request as the rtlog channel goes: each
        // acknowledgement is an unsynced commit, with a round trip between.
        for _ in 0..ACKS_PER_ROUND {
            let Some(batch) = store
                .outbox_batch_limited(4096, &|_| 1)
                .expect("outbox batch")
            else {
                break;
            };
            println!("PL ACKING {}", batch.last_id);
            store.outbox_remove(&batch).expect("acknowledge");
            println!("PL ACKED {}", batch.last_id);
            // The next request's round trip to the server.
            std::thread::sleep(Duration::from_millis(40));
        }
        // The results reported (unsynced), then, now and then, the
        // acknowledged rows compacted and the event log pruned (unsynced).
        let ids: Vec<String> = store
            .unreported_results(100)
            .expect("unreported")
            .into_iter()
            .map(|r| r.id)
            .collect();
        store.mark_results_reported(&ids).expect("reported");
        if round % 5 == 0 {
            store.outbox_compact(true).expect("compact");
            let pruned = store.prune_event_log_to(PRUNE_CAP).expect("prune");
            println!("PL COMPACTED pruned {pruned}");
        }
        // Waiting for the next swipe: an unsynced commit is the last write
        // for a while, as between uploads on a real controller.
        std::thread::sleep(Duration::from_millis(40));
    }
    panic!("the writer ran {WRITER_LIMIT:?} without being killed");
}

/// What the writer printed, in order.
enum Line {
    Committed { index: u64, outbox: i64 },
    Acking(i64),
    Acked(i64),
    Result { id: String, synced: bool },
    Start,
}

fn parse(expect: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for l in expect.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let num = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("bad line {l:?}")) };
        match w.as_slice() {
            ["PL", "WRITER", "START", ..] => lines.push(Line::Start),
            ["PL", "COMMITTED", "event", i, "outbox", o] => lines.push(Line::Committed {
                index: u64::try_from(num(i)).expect("index"),
                outbox: num(o),
            }),
            ["PL", "ACKING", o] => lines.push(Line::Acking(num(o))),
            ["PL", "ACKED", o] => lines.push(Line::Acked(num(o))),
            ["PL", "RESULT", id, s] => lines.push(Line::Result {
                id: (*id).to_owned(),
                synced: *s == "synced",
            }),
            _ => {}
        }
    }
    lines
}

/// Records a failed check (all are printed before the test fails).
macro_rules! ensure {
    ($failures:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            $failures.push(format!($($msg)+));
        }
    };
}

fn check(dir: &std::path::Path, expect: &str) {
    let lines = parse(expect);
    let store = Store::open(dir).expect("open the store after the power loss");
    let conn = store.conn();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let mut failures: Vec<String> = Vec::new();
    ensure!(failures, integrity == "ok", "integrity_check: {integrity}");
    let durable = store.outbox_acked_through().expect("watermark");

    // The last writer run: what it printed before its last synced commit
    // had to survive with that commit.
    let last_start = lines
        .iter()
        .rposition(|l| matches!(l, Line::Start))
        .unwrap_or(0);
    let last_synced = lines
        .iter()
        .rposition(|l| {
            matches!(
                l,
                Line::Committed { .. } | Line::Result { synced: true, .. }
            )
        })
        .filter(|&p| p >= last_start);
    let mut acking = HashSet::from([0i64]);
    let mut must_have_acked = 0i64;
    let mut last_acked = 0i64;
    let mut must_have_results: Vec<&str> = Vec::new();
    // Unsynced results that may be lost, and whether the last run wrote
    // them (only those count as lost by this power loss).
    let mut unsynced_results: Vec<(&str, bool)> = Vec::new();
    let mut committed: Vec<(u64, i64)> = Vec::new();
    for (at, l) in lines.iter().enumerate() {
        let in_last = at >= last_start;
        let before_sync = last_synced.is_some_and(|s| at < s);
        match l {
            Line::Committed { index, outbox } => committed.push((*index, *outbox)),
            Line::Acking(o) => {
                acking.insert(*o);
            }
            Line::Acked(o) => {
                if in_last {
                    last_acked = last_acked.max(*o);
                    if before_sync {
                        must_have_acked = must_have_acked.max(*o);
                    }
                }
            }
            Line::Result { id, synced } => {
                if *synced || (in_last && before_sync) {
                    must_have_results.push(id);
                } else {
                    unsynced_results.push((id, in_last));
                }
            }
            Line::Start => {}
        }
    }

    // The watermark: one the writer wrote, not ahead of the outbox, not
    // behind an acknowledgement that a synced commit followed.
    let outbox_seq: i64 = conn
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)",
            [],
            |r| r.get(0),
        )
        .expect("outbox sequence");
    // The console lags the guest (a line is printed after its call returned
    // and reaches the host later), so the newest acknowledgements may be
    // missing from `acking`: only a value below the last one seen must be
    // one of them.
    let newest_seen = acking.iter().copied().max().unwrap_or(0);
    ensure!(
        failures,
        durable > newest_seen || acking.contains(&durable),
        "durable watermark {durable} was never written by the writer"
    );
    ensure!(
        failures,
        durable <= outbox_seq,
        "watermark {durable} ahead of the outbox ({outbox_seq})"
    );
    ensure!(
        failures,
        durable >= must_have_acked,
        "watermark {durable} lost acknowledgement {must_have_acked}, which a synced commit followed"
    );

    // Every committed event: in the log, or still queued for upload, or
    // durably acknowledged. Never an index twice.
    let mut seen = HashSet::new();
    let (mut in_log, mut queued_only, mut acked_gone) = (0u64, 0u64, 0u64);
    let max_index = store.max_event_index().expect("max index");
    let mut log_stmt = conn
        .prepare("SELECT 1 FROM event_log WHERE idx = ?1")
        .expect("prepare");
    let mut outbox_stmt = conn
        .prepare("SELECT channel, body FROM outbox WHERE id = ?1")
        .expect("prepare");
    for &(index, outbox) in &committed {
        ensure!(
            failures,
            seen.insert(index),
            "index {index} committed twice"
        );
        ensure!(
            failures,
            index <= max_index,
            "committed index {index} above the log's sequence {max_index}"
        );
        let logged = log_stmt
            .query_row([i64::try_from(index).expect("index")], |_| Ok(()))
            .optional()
            .expect("event_log")
            .is_some();
        let row: Option<(String, String)> = outbox_stmt
            .query_row([outbox], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .expect("outbox");
        if let Some((channel, body)) = &row {
            ensure!(
                failures,
                channel == "rtlog",
                "outbox row {outbox}: channel {channel}"
            );
            ensure!(
                failures,
                body.split('\t').any(|f| f == format!("index={index}")),
                "outbox row {outbox} does not carry index {index}: {body}"
            );
        }
        // In the log but out of the outbox unacknowledged: never uploaded.
        ensure!(
            failures,
            !logged || row.is_some() || outbox <= durable,
            "event {index} is logged, not acknowledged (watermark {durable}), and its outbox row {outbox} is gone"
        );
        if logged {
            in_log += 1;
        } else if row.is_some() {
            queued_only += 1;
        } else if outbox <= durable {
            acked_gone += 1;
        } else {
            failures.push(format!(
                "event {index} is lost: not in the log, its outbox row {outbox} is gone and the watermark is {durable}"
            ));
        }
    }

    // Command results.
    let mut result_stmt = conn
        .prepare("SELECT ret, cmd FROM command_results WHERE id = ?1")
        .expect("prepare");
    let mut result = |id: &str| -> Option<(i64, String)> {
        result_stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .expect("command_results")
    };
    for id in &must_have_results {
        match result(id) {
            Some(r) => ensure!(failures, r.0 == 0 || r.0 == -12, "result {id}: {r:?}"),
            None => failures.push(format!("result {id} lost, though synced")),
        }
    }
    let mut results_lost = 0u64;
    for &(id, in_last) in &unsynced_results {
        match result(id) {
            Some(r) => ensure!(failures, r.0 == 0 || r.0 == -12, "result {id}: {r:?}"),
            None if in_last => results_lost += 1,
            None => {}
        }
    }
    let rolled_back = u64::try_from(last_acked - durable).unwrap_or(0);
    for f in failures.iter().take(40) {
        println!("PL FAILED {f}");
    }
    assert!(
        failures.is_empty(),
        "{} checks failed after the power loss",
        failures.len()
    );
    println!(
        "PL CHECK ok integrity ok events {} in_log {in_log} queued_only {queued_only} acked_and_gone {acked_gone} watermark {durable} last_acked {last_acked} must_have {must_have_acked} rolled_back {rolled_back} results {} unsynced_results_lost {results_lost}",
        committed.len(),
        must_have_results.len() + unsynced_results.len(),
    );
}
