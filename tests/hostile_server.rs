//! A hostile server: the real `lintel` binary on the simulated board, under
//! steady swipes, cycled through every fault kind of the reference server's
//! fault-injecting mode (`lintel_refserver::hostile_catalogue`). For each
//! kind: the process survives, it recovers once the fault is gone, every
//! event it committed reaches the server exactly once, its peak RSS
//! (`VmHWM`, reset before each kind) stays under 32 MiB, its log grows by a
//! bounded amount, and no record gets a time the server's wild `Date` made
//! up.
//!
//! Run by the proof stage (scripts/proof.sh faults); `LINTEL_HOSTILE_TIMES`
//! sets how often each fault fires (default 3), `LINTEL_HOSTILE_ONLY` runs
//! only the cases whose name contains it. The figures print (with
//! `--nocapture`) whether or not a check fails.

mod common;
mod proof_common;

use common::{quick_server_config, start_server, Running, SN};
use lintel_refserver::{hostile_catalogue, HostileCase, RefServer};
use proof_common::*;
use std::time::{Duration, Instant};

/// Issue 11's target: peak RSS under 32 MB whatever the server sends.
const RSS_LIMIT_KIB: u64 = 32 * 1024;
/// Log growth allowed while one kind of fault is on and recovered from
/// (a few hundred lines; the swipes alone log one line each).
const LOG_LIMIT_BYTES: u64 = 128 * 1024;
/// How long one case may take to fire all its faults.
const FIRE_PATIENCE: Duration = Duration::from_secs(25);
/// How long recovery may take once a fault is cleared (the device waits
/// ErrorDelay, 1 s here, and its timeouts are 3 s).
const RECOVER_PATIENCE: Duration = Duration::from_secs(60);
/// How far a record's time may be from the host's clock.
const CLOCK_SLACK_SECS: i64 = 2 * 86_400;
/// A case whose log grows past this is stopped (the firmware killed and
/// started again): a runaway log must fail the case, not fill CI's disk.
const LOG_RUNAWAY_BYTES: u64 = 16 << 20;
/// Likewise for memory.
const RSS_RUNAWAY_KIB: u64 = 512 << 10;
/// A firmware whose RSS stayed this far above its resting RSS after a case
/// is started afresh, so the next case's peak is its own (the allocator
/// keeps what a bad answer made it take).
const RSS_CARRY_OVER_KIB: u64 = 4 * 1024;

struct Outcome {
    name: String,
    fired: u64,
    expected: u64,
    peak_rss_kib: Option<u64>,
    log_bytes: u64,
    took: Duration,
    problems: Vec<String>,
}

#[test]
#[ignore = "the proof stage runs it: scripts/proof.sh faults"]
fn every_hostile_answer_is_survived_with_events_once_and_bounded_memory_and_log() {
    let times = u32::try_from(env_number("LINTEL_HOSTILE_TIMES", 3)).unwrap_or(3);
    let only = std::env::var("LINTEL_HOSTILE_ONLY").unwrap_or_default();
    let started = Instant::now();
    let server = start_server(quick_server_config());
    for text in demo_enrolment() {
        server.queue_command(SN, &text);
    }
    let device = Device::new(&server, "");
    let mut fw = device.spawn();
    let mut failures: Vec<String> = Vec::new();
    if !server.wait_for(Duration::from_secs(60), |s| {
        s.pending_commands(SN).is_empty()
    }) {
        failures.push("the device never took its enrolment".into());
    }
    let baseline_rss = rss_kib(fw.0.id());
    let resting = baseline_rss.unwrap_or(0);
    let mut swiper = Swiper::start(&device.data, Duration::from_millis(200));
    let cases: Vec<HostileCase> = hostile_catalogue(times)
        .into_iter()
        .filter(|c| c.name.contains(&only))
        .collect();
    let mut outcomes = Vec::new();
    for case in &cases {
        outcomes.push(run_case(&server, &device, &mut fw, case, resting));
    }
    swiper.stop();
    // The last swipe's decision comes after its frame's end gap.
    std::thread::sleep(Duration::from_secs(1));

    // Whatever happened on the way: every committed event, exactly once.
    let mut fw_alive = alive(&mut fw);
    if !fw_alive {
        fw = device.spawn();
        fw_alive = true;
    }
    let delivered = wait_delivered(&server, &device.db(), RECOVER_PATIENCE);
    let answered = server.wait_for(RECOVER_PATIENCE, |s| s.pending_commands(SN).is_empty());
    kill(&mut fw);
    let events = check_events(&server, &device.db()).unwrap_or_else(|e| {
        failures.push(format!("cannot read the event log: {e}"));
        EventCheck::default()
    });
    if !delivered {
        failures.push("events still undelivered at the end".into());
    }
    if !answered {
        failures.push("commands still unanswered at the end".into());
    }
    failures.extend(events.problems());
    let verdict = integrity_check(&device.db());
    if verdict != "ok" {
        failures.push(format!("integrity_check: {verdict}"));
    }

    let kinds: std::collections::BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.faults.iter().map(|f| f.kind.name()))
        .collect();
    println!(
        "hostile-server: {:<34} {:>6} {:>10} {:>9} {:>6}",
        "case", "fired", "peak RSS", "log", "time"
    );
    for o in &outcomes {
        println!(
            "hostile-server: {:<34} {:>2}/{:<3} {:>7} KiB {:>7} B {:>5}s{}",
            o.name,
            o.fired,
            o.expected,
            o.peak_rss_kib.map_or("?".into(), |k| k.to_string()),
            o.log_bytes,
            secs(o.took),
            if o.problems.is_empty() {
                ""
            } else {
                "  FAILED"
            }
        );
        for p in &o.problems {
            failures.push(format!("{}: {p}", o.name));
        }
    }
    println!(
        "hostile-server: fault kinds tried: {} ({}) in {} cases",
        kinds.len(),
        kinds.iter().copied().collect::<Vec<_>>().join(", "),
        cases.len()
    );
    if let Some(worst) = outcomes.iter().max_by_key(|o| o.peak_rss_kib.unwrap_or(0)) {
        println!(
            "hostile-server: peak RSS under the worst answer: {} KiB ({}); at rest {} KiB; limit {RSS_LIMIT_KIB} KiB",
            worst.peak_rss_kib.map_or("?".into(), |k| k.to_string()),
            worst.name,
            baseline_rss.map_or("?".into(), |k| k.to_string()),
        );
    }
    if let Some(worst) = outcomes.iter().max_by_key(|o| o.log_bytes) {
        println!(
            "hostile-server: log {} bytes in all; most in one case {} bytes ({}); limit {LOG_LIMIT_BYTES} per case",
            device.log_bytes(),
            worst.log_bytes,
            worst.name
        );
    }
    println!(
        "hostile-server: events checked {} (received {}, repeats {}); total {} s",
        events.checked,
        events.received,
        events.repeats,
        secs(started.elapsed())
    );
    for f in &failures {
        println!("hostile-server: FAILED CHECK: {f}");
    }
    if !failures.is_empty() {
        let kept = keep_for_inspection(device);
        println!(
            "hostile-server: the device's data dir and log are kept in {}",
            kept.display()
        );
    }
    assert!(fw_alive);
    assert!(
        failures.is_empty(),
        "{} hostile-server checks failed: {failures:#?}",
        failures.len()
    );
}

fn alive(fw: &mut Running) -> bool {
    matches!(fw.0.try_wait(), Ok(None))
}

/// How often the faults of the server fired since request `from` (refused
/// connections counted from `refused_from`).
fn fired_since(server: &RefServer, from: usize, refused_from: u64) -> u64 {
    server.with_state(|s| {
        let requests = s.requests()[from.min(s.requests().len())..]
            .iter()
            .filter(|r| r.fault.is_some())
            .count();
        u64::try_from(requests).unwrap_or(0) + (s.refused_connections() - refused_from)
    })
}

/// Watches a case's firmware: false (and a problem noted) once its log or
/// memory runs away.
struct Guard {
    pid: u32,
    log_before: u64,
    tripped: Option<String>,
}

impl Guard {
    fn ok(&mut self, device: &Device) -> bool {
        if self.tripped.is_some() {
            return false;
        }
        let grown = device.log_bytes().saturating_sub(self.log_before);
        let rss = rss_kib(self.pid).unwrap_or(0);
        if grown > LOG_RUNAWAY_BYTES {
            self.tripped = Some(format!("log ran away ({grown} bytes): case stopped"));
        } else if rss > RSS_RUNAWAY_KIB {
            self.tripped = Some(format!("RSS ran away ({rss} KiB): case stopped"));
        }
        self.tripped.is_none()
    }
}

/// Starts the firmware again (a fresh process) and waits for its first poll.
fn respawn(server: &RefServer, device: &Device, fw: &mut Running) {
    kill(fw);
    let from = server.requests().len();
    *fw = device.spawn();
    server.wait_for(RECOVER_PATIENCE, |s| {
        s.requests()[from.min(s.requests().len())..]
            .iter()
            .any(|r| r.path == "/iclock/getrequest" && r.status == 200)
    });
}

fn run_case(
    server: &RefServer,
    device: &Device,
    fw: &mut Running,
    case: &HostileCase,
    resting_kib: u64,
) -> Outcome {
    let t0 = Instant::now();
    let mut problems = Vec::new();
    if rss_kib(fw.0.id()).unwrap_or(0) > resting_kib + RSS_CARRY_OVER_KIB {
        respawn(server, device, fw);
    }
    let pid = fw.0.id();
    let peak_resettable = reset_peak_rss(pid);
    if !peak_resettable {
        problems
            .push("the kernel refused to reset VmHWM; the peak is the process's whole life".into());
    }
    let log_before = device.log_bytes();
    let last_event_before = last_event_index(device);
    let from = server.requests().len();
    let refused_from = server.with_state(|s| s.refused_connections());
    let expected: u64 = case
        .faults
        .iter()
        .map(|f| u64::from(f.remaining.unwrap_or(1)))
        .sum();
    if case
        .faults
        .iter()
        .any(|f| f.kind == lintel_refserver::FaultKind::RefuseConnection)
    {
        // Refusals bite on new connections: cut the device's keep-alive one.
        server.stop();
        let _ = server.restart();
    }
    for f in &case.faults {
        server.set_fault(f.clone());
    }
    let mut guard = Guard {
        pid,
        log_before,
        tripped: None,
    };
    let fire_end = Instant::now() + FIRE_PATIENCE;
    while fired_since(server, from, refused_from) < expected && Instant::now() < fire_end {
        if !alive(fw) || !guard.ok(device) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let fired = fired_since(server, from, refused_from);
    server.clear_faults();
    if fired == 0 {
        problems.push("no fault fired: the case proved nothing".into());
    }
    // Recovery: a poll answered after the fault was cleared, and every event delivered.
    let cleared_at = server.requests().len();
    let recover_end = Instant::now() + RECOVER_PATIENCE;
    let polled = |s: &lintel_refserver::State| {
        s.requests()[cleared_at.min(s.requests().len())..]
            .iter()
            .any(|r| r.path == "/iclock/getrequest" && r.status == 200)
    };
    let mut recovered = false;
    while Instant::now() < recover_end && alive(fw) && guard.ok(device) {
        if server.with_state(polled) && wait_delivered(server, &device.db(), Duration::ZERO) {
            recovered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let peak = peak_rss_kib(pid);
    if let Some(why) = guard.tripped.take() {
        problems.push(why);
        respawn(server, device, fw);
    } else if !alive(fw) {
        let status = fw.0.try_wait().ok().flatten();
        problems.push(format!(
            "the firmware died ({status:?}); restarted for the next case"
        ));
        respawn(server, device, fw);
    } else if !recovered {
        problems.push(format!(
            "no recovery within {RECOVER_PATIENCE:?} after the fault was cleared"
        ));
    }
    if let Some(kib) = peak {
        if kib > RSS_LIMIT_KIB {
            problems.push(format!("peak RSS {kib} KiB over {RSS_LIMIT_KIB} KiB"));
        }
    }
    let log_bytes = device.log_bytes().saturating_sub(log_before);
    if log_bytes > LOG_LIMIT_BYTES {
        problems.push(format!(
            "log grew {log_bytes} bytes (limit {LOG_LIMIT_BYTES})"
        ));
    }
    problems.extend(wild_times(device, last_event_before));
    Outcome {
        name: case.name.clone(),
        fired,
        expected,
        peak_rss_kib: peak,
        log_bytes,
        took: t0.elapsed(),
        problems,
    }
}

fn last_event_index(device: &Device) -> u64 {
    committed_events(&device.db())
        .ok()
        .and_then(|e| e.keys().next_back().copied())
        .unwrap_or(0)
}

/// Events logged after `after` whose time is far from the host's clock (a
/// `Date` the device should not have believed).
fn wild_times(device: &Device, after: u64) -> Vec<String> {
    let Ok(events) = committed_events(&device.db()) else {
        return Vec::new();
    };
    let now = chrono::Utc::now().naive_utc();
    let wild: Vec<String> = events
        .range(after + 1..)
        .filter_map(|(idx, f)| {
            let t = f.get("time")?;
            let ok = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .is_ok_and(|t| (t - now).num_seconds().abs() <= CLOCK_SLACK_SECS);
            (!ok).then(|| format!("{idx}@{t}"))
        })
        .collect();
    if wild.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} events logged with a time far from the clock (first: {:?})",
            wild.len(),
            &wild[..wild.len().min(5)]
        )]
    }
}
