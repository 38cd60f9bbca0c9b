//! The project's own proof (issue 11, item 11): the real `lintel` binary on
//! the simulated board, driven through its sim control socket, against the
//! reference server; and the checks that must hold whatever happened to it.
//!
//! Every check collects what it found instead of panicking at the first
//! miss, so a run prints all its figures before it fails.
#![allow(dead_code)]

use crate::common::{self, Running, SN};
use lintel_hal::sim::{self, SimRequest};
use lintel_refserver::RefServer;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A seeded generator (SplitMix64): the same seed gives the same run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }
}

/// A seed from the environment variable `var`, else from the clock; the
/// caller prints it so a failing run can be repeated.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()) << 20)
        })
}

/// A number from the environment, else `default`.
pub fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A device: its directory, config file and data dir, and the log file its
/// runs append to.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Device {
    /// A device for `server`; `extra` is appended to the config file.
    pub fn new(server: &RefServer, extra: &str) -> Device {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let config = dir.path().join("lintel.toml");
        let text = format!("{}{extra}\n", common::config_text(&server.url(), &data, ""));
        std::fs::write(&config, text).expect("config file");
        let log = dir.path().join("lintel.log");
        Device {
            dir,
            config,
            data,
            log,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.data.join(lintel::store::DB_FILE)
    }

    /// Starts `lintel run`; its stderr (the log) is appended to `self.log`.
    pub fn spawn(&self) -> Running {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        Running(
            common::binary(env!("CARGO_BIN_EXE_lintel"))
                .arg("run")
                .arg("--config")
                .arg(&self.config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("lintel runs"),
        )
    }

    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }
}

/// Keeps a device's directory (database, log) after a failed run, so the
/// evidence can be read; returns where it is.
pub fn keep_for_inspection(device: Device) -> PathBuf {
    device.dir.keep()
}

/// Kills the process now (SIGKILL: no handler, no flush, no goodbye).
pub fn kill(run: &mut Running) {
    let _ = run.0.kill();
    let _ = run.0.wait();
}

/// Cards presented by [`Swiper`]: Alice (pin 1, doors 1 and 2, any time),
/// Bob (pin 2), Carol (pin 3, expired) of the demo enrolment, and a card
/// nobody has.
pub const CARDS: &[u64] = &[4660, 4661, 4662, 9999];

/// Presents cards on the sim readers at a steady pace from a thread, for
/// as long as it lives. Swipes while the firmware is down fail and are
/// counted apart.
pub struct Swiper {
    stop: Arc<AtomicBool>,
    pub sent: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swiper {
    pub fn start(data_dir: &Path, every: Duration) -> Swiper {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (s, n, f) = (stop.clone(), sent.clone(), failed.clone());
        let dir = data_dir.to_owned();
        let thread = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                let reader = u8::try_from(i % 4).unwrap_or(0) + 1;
                let card = CARDS[usize::try_from(i / 4 % 4).unwrap_or(0)];
                let req = SimRequest::Swipe {
                    reader,
                    card,
                    site: None,
                };
                match sim::request(&dir, &req) {
                    Ok(_) => n.fetch_add(1, Ordering::SeqCst),
                    Err(_) => f.fetch_add(1, Ordering::SeqCst),
                };
                i += 1;
                std::thread::sleep(every);
            }
        });
        Swiper {
            stop,
            sent,
            failed,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Swiper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `PRAGMA integrity_check` of the database (run while no firmware runs).
pub fn integrity_check(db: &Path) -> String {
    match rusqlite::Connection::open(db) {
        Ok(conn) => conn
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap_or_else(|e| format!("integrity_check failed: {e}")),
        Err(e) => format!("cannot open {}: {e}", db.display()),
    }
}

/// The rtlog fields of an event_log row, by name, as the firmware uploads
/// them (10.2).
pub type Fields = BTreeMap<String, String>;

const EVENT_FIELDS: &[&str] = &[
    "time",
    "pin",
    "cardno",
    "sitecode",
    "linkid",
    "eventaddr",
    "event",
    "inoutstatus",
    "verifytype",
];

/// Every committed event of the database, by index.
pub fn committed_events(db: &Path) -> Result<BTreeMap<u64, Fields>, String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(
            "SELECT idx, time, pin, cardno, sitecode, CAST(linkid AS TEXT), CAST(eventaddr AS TEXT),
                    CAST(event AS TEXT), CAST(inoutstatus AS TEXT), verifytype FROM event_log",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            let idx: i64 = r.get(0)?;
            let mut fields = Fields::new();
            for (i, name) in EVENT_FIELDS.iter().enumerate() {
                fields.insert((*name).to_string(), r.get::<_, String>(i + 1)?);
            }
            Ok((u64::try_from(idx).unwrap_or(0), fields))
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// What the comparison of the event log with the server's records found.
#[derive(Debug, Default)]
pub struct EventCheck {
    /// Committed events compared.
    pub checked: usize,
    /// Records the server took in all (repeats included).
    pub received: usize,
    /// Records that arrived again with the same index and content.
    pub repeats: usize,
    /// Committed events the server never got.
    pub missing: Vec<u64>,
    /// Indexes the server got in two different versions.
    pub conflicting: Vec<u64>,
    /// Indexes whose record at the server differs from the event log.
    pub altered: Vec<u64>,
    /// Indexes the server got that the event log does not hold.
    pub unknown: Vec<u64>,
    /// Records without a usable index.
    pub unindexed: usize,
}

impl EventCheck {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut say = |what: &str, v: &[u64]| {
            if !v.is_empty() {
                out.push(format!(
                    "{} {what} (first: {:?})",
                    v.len(),
                    &v[..v.len().min(10)]
                ));
            }
        };
        say("committed events never delivered", &self.missing);
        say(
            "indexes delivered with two different records",
            &self.conflicting,
        );
        say(
            "indexes whose delivered record differs from the event log",
            &self.altered,
        );
        say(
            "delivered indexes the event log does not hold",
            &self.unknown,
        );
        if self.unindexed > 0 {
            out.push(format!(
                "{} delivered records without an index",
                self.unindexed
            ));
        }
        out
    }
}

/// Compares every committed event with what the server received: each
/// index delivered, never in two versions, exactly as logged.
pub fn check_events(server: &RefServer, db: &Path) -> Result<EventCheck, String> {
    let committed = committed_events(db)?;
    let received = server.rtlog(SN);
    let mut check = EventCheck {
        checked: committed.len(),
        received: received.len(),
        ..EventCheck::default()
    };
    let mut by_index: HashMap<u64, Vec<Fields>> = HashMap::new();
    for rec in &received {
        let Some(idx) = rec.get("index").and_then(|i| i.trim().parse::<u64>().ok()) else {
            check.unindexed += 1;
            continue;
        };
        let fields: Fields = EVENT_FIELDS
            .iter()
            .map(|k| ((*k).to_string(), rec.get(k).unwrap_or("").to_string()))
            .collect();
        by_index.entry(idx).or_default().push(fields);
    }
    for (idx, versions) in &by_index {
        check.repeats += versions.len() - 1;
        if versions.iter().any(|v| v != &versions[0]) {
            check.conflicting.push(*idx);
        }
        match committed.get(idx) {
            None => check.unknown.push(*idx),
            Some(logged) if logged != &versions[0] => check.altered.push(*idx),
            Some(_) => {}
        }
    }
    check.missing = committed
        .keys()
        .filter(|i| !by_index.contains_key(i))
        .copied()
        .collect();
    check.conflicting.sort_unstable();
    check.altered.sort_unstable();
    check.unknown.sort_unstable();
    Ok(check)
}

/// Waits until every committed event reached the server (read while the
/// firmware runs; WAL lets a reader in). False when `patience` ran out.
pub fn wait_delivered(server: &RefServer, db: &Path, patience: Duration) -> bool {
    let end = Instant::now() + patience;
    loop {
        if let Ok(check) = check_events(server, db) {
            if check.missing.is_empty() {
                return true;
            }
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The answers the server got for a command ID: `(Return, CMD)` of each.
pub fn answers(server: &RefServer, id: &str) -> Vec<(i64, String)> {
    server
        .results(SN)
        .iter()
        .filter(|r| r.id == id)
        .map(|r| (r.ret, r.cmd.clone()))
        .collect()
}

/// Peak resident set size of a process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

/// Current resident set size (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets the peak RSS of a process to its current RSS (Linux >= 4.0:
/// `5` to `clear_refs`), so `VmHWM` then measures one phase. False when
/// the kernel refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The demo's enrolment (users with cards and doors), for the swipes.
pub fn demo_enrolment() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-enrol.txt"),
    )
    .expect("scripts/demo-enrol.txt");
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.replace("\\t", "\t").replace("\\n", "\n"))
        .collect()
}

/// Seconds with one decimal, for figures.
pub fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}
