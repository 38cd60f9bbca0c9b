//! Helpers of the engine scenario tests: a reference server, the firmware on
//! the sim-4door board with a clock and monotonic time the test moves, rule
//! enrolment through real DATA commands, and sim inputs through the sim socket.
//! Test files declare `mod common; mod engine_common;`.
#![allow(dead_code)]

use crate::common::{self, PATIENCE, SN};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use lintel::app::Firmware;
use lintel::clock::zone::SystemZoneSource;
use lintel::clock::{Clock, LocalZone, ManualClock, TimeSource, Verdict};
use lintel::engine::ManualMonotonic;
use lintel::platform::RecordingPlatform;
use lintel_hal::sim::{self, SimRequest, SimState};
use lintel_refserver::{Record, RefServer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The device clock of the tests: moves only when told, and ignores the
/// server's times so a scenario's wall time stays where it was put. The
/// zone follows the server as on the device.
#[derive(Clone)]
pub struct PinnedClock(pub ManualClock);

impl Clock for PinnedClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.0.now_utc()
    }
    fn set_utc(&self, _t: DateTime<Utc>) {}
    fn zone(&self) -> LocalZone {
        self.0.zone()
    }
    fn set_zone(&self, zone: LocalZone) {
        self.0.set_zone(zone)
    }
    fn offer(&self, _t: DateTime<Utc>, _source: TimeSource) -> Verdict {
        Verdict::Unchanged
    }
}

/// Monday 2024-05-06 09:00:00 (UTC, offset 0): inside office hours.
pub fn monday_nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 9, 0, 0).unwrap()
}

/// Time-rule interval `HHMM-HHMM` as the server sends it.
pub fn interval(start: u32, end: u32) -> u32 {
    (start << 16) | end
}

/// `DATA UPDATE timezone` with the same interval on the given weekday slots
/// (0 = Sun … 6 = Sat, 7-9 = holiday types 1-3); every other slot empty.
pub fn timezone_cmd(id: u32, slots: &[usize], value: u32) -> String {
    const NAMES: [&str; 10] = [
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Hol1", "Hol2", "Hol3",
    ];
    let mut fields = vec![format!("TimezoneId={id}")];
    for (i, name) in NAMES.iter().enumerate() {
        for n in 1..=3 {
            let v = if n == 1 && slots.contains(&i) {
                value
            } else {
                0
            };
            fields.push(format!("{name}Time{n}={v}"));
        }
    }
    format!("DATA UPDATE timezone {}", fields.join("\t"))
}

pub fn user_cmd(pin: &str, card: u64, extra: &str) -> String {
    format!("DATA UPDATE user CardNo={card}\tPin={pin}\tPassword=\tGroup=0\tStartTime=0\tEndTime=0\tName=User {pin}\tPrivilege=0{extra}")
}

pub fn authorize_cmd(pin: &str, tz: u32, door_mask: u32) -> String {
    format!("DATA UPDATE userauthorize Pin={pin}\tAuthorizeTimezoneId={tz}\tAuthorizeDoorId={door_mask}\tDevID=1")
}

/// The fields of an rtlog record a scenario asserts (all but `index`).
pub type Expected<'a> = [(&'a str, &'a str)];

pub struct Rig {
    pub server: RefServer,
    pub firmware: Option<Firmware>,
    pub clock: ManualClock,
    pub mono: ManualMonotonic,
    pub platform: RecordingPlatform,
    pub data_dir: PathBuf,
    /// The board file (sim-4door unless the test chose another).
    pub board: PathBuf,
    /// The system zone the firmware sees (none unless a test gives one).
    pub system_zone: SystemZoneSource,
    /// Lines added to the config's `[device]` table.
    pub device_extra: String,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Server and firmware up, device online, the start-up events uploaded.
    pub fn start() -> Rig {
        let server = common::start_server(common::quick_server_config());
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(server, dir, monday_nine())
    }

    pub fn start_in(server: RefServer, dir: tempfile::TempDir, at: DateTime<Utc>) -> Rig {
        Self::start_with(server, dir, at, SystemZoneSource::none(), "")
    }

    /// [`Self::start_in`] on another board file.
    pub fn start_on_board(
        server: RefServer,
        dir: tempfile::TempDir,
        at: DateTime<Utc>,
        board: PathBuf,
    ) -> Rig {
        Self::start_on(server, dir, at, board, SystemZoneSource::none(), "")
    }

    /// As [`Rig::start_in`] with a system zone and `[device]` config lines.
    pub fn start_with(
        server: RefServer,
        dir: tempfile::TempDir,
        at: DateTime<Utc>,
        system_zone: SystemZoneSource,
        device_extra: &str,
    ) -> Rig {
        let board = common::board_path("sim-4door.toml");
        Self::start_on(server, dir, at, board, system_zone, device_extra)
    }

    fn start_on(
        server: RefServer,
        dir: tempfile::TempDir,
        at: DateTime<Utc>,
        board: PathBuf,
        system_zone: SystemZoneSource,
        device_extra: &str,
    ) -> Rig {
        let mut rig = Rig {
            server,
            firmware: None,
            clock: ManualClock::new(at),
            mono: ManualMonotonic::new(),
            platform: RecordingPlatform::new(),
            data_dir: dir.path().to_path_buf(),
            board,
            system_zone,
            device_extra: device_extra.to_owned(),
            _dir: dir,
        };
        rig.firmware = Some(rig.boot());
        assert!(common::wait_online(&rig.server), "device comes online");
        rig
    }

    fn boot(&self) -> Firmware {
        let text = common::config_text(&self.server.url(), &self.data_dir, "").replacen(
            "[server]",
            &format!("{}\n[server]", self.device_extra),
            1,
        );
        let mut cfg =
            lintel::config::Config::from_toml_str(&text, Path::new("test.toml"), &self.data_dir)
                .expect("test config is valid");
        cfg.device.board = self.board.clone();
        let mut opts = common::start_options(&cfg);
        opts.clock = Arc::new(PinnedClock(self.clock.clone()));
        opts.monotonic = Arc::new(self.mono.clone());
        opts.platform = Arc::new(self.platform.clone());
        opts.system_zone = self.system_zone.clone();
        Firmware::start(&cfg, opts).expect("firmware starts")
    }

    /// Stops the firmware and starts it again on the same data (a power cycle).
    pub fn restart_firmware(&mut self) {
        if let Some(f) = self.firmware.take() {
            f.stop();
        }
        self.firmware = Some(self.boot());
    }

    /// Queues commands and waits until each answered; returns their codes.
    pub fn run_commands(&self, commands: &[String]) -> Vec<i64> {
        let ids: Vec<String> = commands
            .iter()
            .map(|c| self.server.queue_command(SN, c).to_string())
            .collect();
        let done = self.server.wait_for(PATIENCE, |s| {
            ids.iter()
                .all(|id| s.results(SN).iter().any(|r| &r.id == id))
        });
        assert!(done, "results for {commands:?}");
        let results = self.server.results(SN);
        ids.iter()
            .map(|id| results.iter().find(|r| &r.id == id).unwrap().ret)
            .collect()
    }

    /// Enrols rules; every command must succeed.
    pub fn enrol(&self, commands: &[String]) {
        let codes = self.run_commands(commands);
        assert!(codes.iter().all(|c| *c == 0), "{commands:?} -> {codes:?}");
    }

    pub fn sim(&self, req: SimRequest) -> Option<SimState> {
        let resp = sim::request(&self.data_dir, &req).expect("sim socket answers");
        assert!(resp.ok, "{req:?}: {:?}", resp.error);
        resp.state
    }

    pub fn swipe(&self, reader: u8, card: u64) {
        self.sim_and_wait(
            SimRequest::Swipe {
                reader,
                card,
                site: None,
            },
            1,
        );
    }

    /// Plays `req` and waits until the engine has handled `events` more
    /// HAL events, so the clock is not moved under a frame still in flight.
    pub fn sim_and_wait(&self, req: SimRequest, events: u64) {
        let engine = self
            .firmware
            .as_ref()
            .and_then(|f| f.engine())
            .expect("engine");
        let before = engine.hal_events_handled();
        self.sim(req);
        let end = Instant::now() + PATIENCE;
        while engine.hal_events_handled() < before + events && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        // A frame ends after at most 25 ms of silence; nobody swipes faster than that.
        std::thread::sleep(Duration::from_millis(30));
    }

    /// Keys on reader N's keypad (4-bit bursts, one per key).
    pub fn keys(&self, reader: u8, keys: &str) {
        let n = u64::try_from(keys.chars().count()).unwrap();
        self.sim_and_wait(
            SimRequest::Keypad {
                reader,
                keys: keys.into(),
                eight_bit: false,
            },
            n,
        );
    }

    pub fn state(&self) -> SimState {
        self.sim(SimRequest::State).expect("state")
    }

    pub fn engine_sync(&self) {
        let fw = self.firmware.as_ref().expect("running");
        assert!(fw.engine().expect("engine").sync(PATIENCE));
    }

    /// Moves wall and monotonic time and lets the engine run its timers.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.mono.advance(by);
        self.engine_sync();
    }

    /// Waits (real time) until the sim shows `pred`; never a speed assertion.
    pub fn wait_state(&self, pred: impl Fn(&SimState) -> bool) -> SimState {
        let end = Instant::now() + PATIENCE;
        loop {
            let s = self.state();
            if pred(&s) || Instant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the server holds `n` rtlog records with event `code`.
    pub fn wait_events(&self, code: &str, n: usize) -> Vec<Record> {
        self.server.wait_for(PATIENCE, |s| {
            s.rtlog(SN)
                .iter()
                .filter(|r| r.get("event") == Some(code))
                .count()
                >= n
        });
        self.events(code)
    }

    pub fn events(&self, code: &str) -> Vec<Record> {
        self.server
            .rtlog(SN)
            .into_iter()
            .filter(|r| r.get("event") == Some(code))
            .collect()
    }

    /// All rtlog records but device start (206) and the session's server
    /// connection events (214, 105), in order.
    pub fn scenario_events(&self) -> Vec<Record> {
        self.server
            .rtlog(SN)
            .into_iter()
            .filter(|r| !matches!(r.get("event"), Some("206" | "214" | "105")))
            .collect()
    }

    /// The last rtstate record the server accepted.
    pub fn last_rtstate(&self) -> Option<Record> {
        self.server
            .with_state(|s| s.table_records(SN, "rtstate"))
            .into_iter()
            .last()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(f) = self.firmware.take() {
            f.stop();
        }
    }
}

/// Asserts a record's fields (every one but `index`, which must be a number).
pub fn assert_record(r: &Record, expected: &Expected<'_>) {
    for (k, v) in expected {
        assert_eq!(r.get(k), Some(*v), "field {k} of {:?}", r.fields);
    }
    assert!(
        r.get("index").and_then(|i| i.parse::<u64>().ok()).is_some(),
        "index of {:?}",
        r.fields
    );
    let keys: Vec<&str> = r.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "time",
            "pin",
            "cardno",
            "sitecode",
            "linkid",
            "eventaddr",
            "event",
            "inoutstatus",
            "verifytype",
            "index"
        ],
        "fields in 10.2's order"
    );
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
