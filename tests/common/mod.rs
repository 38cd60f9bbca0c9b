//! Shared helpers of the integration tests: a reference server, a firmware
//! started in-process against it, and event injection.
#![allow(dead_code)]

use lintel::app::{Firmware, StartOptions};
use lintel::config::Config;
use lintel::store::{NewEvent, Store};
use lintel_refserver::{RefServer, ServerConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SN: &str = "LNT0000001";

/// Generous upper bound for anything a test waits for; never a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `<dir>/lintel.toml` for the server (data in `<dir>/data`) and
/// returns its path, for tests that run the `lintel` binary.
pub fn config_file(url: &str, dir: &Path) -> PathBuf {
    let path = dir.join("lintel.toml");
    seed_device_key(&dir.join("data"));
    std::fs::write(&path, config_text(url, &dir.join("data"), "")).expect("config file");
    path
}

/// A command that runs one of the workspace's binaries (`CARGO_BIN_EXE_*`).
/// Cross-target test runs (scripts/cross-build.sh) set `LINTEL_TEST_RUNNER`
/// to the emulator command line: without binfmt_misc the kernel cannot
/// exec an ARM binary that an emulated test spawns, so it goes through the
/// emulator explicitly.
pub fn binary(path: &str) -> std::process::Command {
    let runner = std::env::var("LINTEL_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut cmd = std::process::Command::new(emulator);
            cmd.args(words).arg(path);
            cmd
        }
        None => std::process::Command::new(path),
    }
}

pub fn board_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("board-configs")
        .join(name)
}

/// A server whose delays suit tests: 1 s reconnect and poll.
pub fn quick_server_config() -> ServerConfig {
    ServerConfig {
        error_delay: 1,
        request_delay: 1,
        timeout_sec: 3,
        ..ServerConfig::default()
    }
}

pub fn start_server(cfg: ServerConfig) -> RefServer {
    RefServer::start(cfg).expect("reference server starts")
}

/// Firmware config text for a server URL and data dir; `extra_server` lines
/// go into the `[server]` table.
pub fn config_text(url: &str, data_dir: &Path, extra_server: &str) -> String {
    format!(
        "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}\"\n[server]\nurl = \"{url}\"\nerror_delay_sec = 1\nrequest_delay_sec = 1\ntimeout_sec = 3\n{extra_server}\n",
        data_dir.display(),
        board_path("sim-4door.toml").display()
    )
}

pub fn config(url: &str, data_dir: &Path, extra_server: &str) -> Config {
    seed_device_key(data_dir);
    Config::from_toml_str(
        &config_text(url, data_dir, extra_server),
        Path::new("test.toml"),
        data_dir,
    )
    .expect("test config is valid")
}

/// The real clock and transport, with no system zone: a test's local time
/// never depends on the machine's TZ or /etc/localtime.
pub fn start_options(config: &Config) -> StartOptions {
    let mut opts = StartOptions::for_config(config);
    opts.system_zone = lintel::clock::zone::SystemZoneSource::none();
    opts
}

pub fn start_firmware(config: &Config) -> Firmware {
    Firmware::start(config, start_options(config)).expect("firmware starts")
}

/// Logs `n` events with codes `first..` directly in the store (as the engine
/// would) and returns their indexes.
pub fn log_events(data_dir: &Path, first_code: u32, n: u32) -> Vec<u64> {
    let mut store = Store::open(data_dir).expect("store opens");
    (0..n)
        .map(|i| {
            let ev = NewEvent {
                time: "2024-05-01 08:00:00".into(),
                pin: format!("{}", 1000 + i),
                cardno: format!("{}", 5000 + i),
                sitecode: "0".into(),
                linkid: 0,
                eventaddr: 1,
                event: first_code,
                inoutstatus: 0,
                verifytype: "4".into(),
            };
            store.append_event(&ev).expect("event logged")
        })
        .collect()
}

/// Indexes of the rtlog records the server accepted whose event code is `code`.
pub fn received_indexes(server: &RefServer, code: &str) -> Vec<u64> {
    server
        .rtlog(SN)
        .iter()
        .filter(|r| r.get("event") == Some(code))
        .filter_map(|r| r.get("index").and_then(|i| i.parse().ok()))
        .collect()
}

/// How many different event indexes with code `code` the server accepted
/// (a batch whose answer was lost arrives twice with the same indexes).
pub fn distinct_indexes(state: &lintel_refserver::State, code: &str) -> usize {
    state
        .rtlog(SN)
        .iter()
        .filter(|r| r.get("event") == Some(code))
        .filter_map(|r| r.get("index").map(|i| i.trim().to_owned()))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Waits until the device is registered and has polled with a valid token.
pub fn wait_online(server: &RefServer) -> bool {
    server.wait_for(PATIENCE, |s| {
        s.requests_from(SN)
            .any(|r| r.path == "/iclock/getrequest" && r.status == 200)
    })
}

/// Puts a fixed test device key into `data_dir` (unless one is there):
/// generating a 2048-bit RSA key per test would cost seconds each under
/// emulation, and a device whose server announces 3.1.2 needs one at every
/// reconnection (a key still being generated would make it reconnect
/// once it is ready).
pub fn seed_device_key(data_dir: &Path) {
    let pem = include_str!("../../src/crypto/testdata/device_key.pem");
    lintel::private_files::create_private_dir(data_dir).expect("data dir");
    let path = data_dir.join(lintel::crypto::keystore::KEY_FILE);
    if !path.exists() {
        lintel::private_files::write_private_file(&path, pem.as_bytes()).expect("key file");
    }
}

/// Every log line of this test process, as the firmware's redacting logger
/// passes it on. Installed on first use, at trace level.
pub struct CapturedLogs(std::sync::Mutex<Vec<String>>);

struct Capture(&'static CapturedLogs);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        self.0
             .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
    fn flush(&self) {}
}

pub fn captured_logs() -> &'static CapturedLogs {
    static LOGS: std::sync::OnceLock<&'static CapturedLogs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static CapturedLogs =
            Box::leak(Box::new(CapturedLogs(std::sync::Mutex::new(Vec::new()))));
        lintel::logging::install(Capture(logs), log::LevelFilter::Trace)
            .expect("no other logger in this test binary");
        logs
    })
}

impl CapturedLogs {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether a line contains every one of `needles`.
    pub fn any_line_with(&self, needles: &[&str]) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    }

    /// Waits until a line contains every one of `needles`.
    pub fn wait_for(&self, needles: &[&str]) -> bool {
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::time::Instant::now() < deadline {
            if self.any_line_with(needles) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
