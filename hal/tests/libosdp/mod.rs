//! Runs LibOSDP's Python binding as an OSDP peripheral on a pseudo-terminal (`pd.py`
//! beside this file) and talks to it; shared by the HAL's and the firmware's interop
//! tests (`#[path]`-included).
//!
//! When `libosdp` (pip) or python3 is missing, [`LibOsdpPd::spawn`] prints why and returns
//! `None`, and the test returns early, reported as a skip on stderr; with
//! `LINTEL_REQUIRE_LIBOSDP=1` (CI, which installs the package) it fails instead.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct LibOsdpPd {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<serde_json::Value>,
    commands: Arc<Mutex<Vec<serde_json::Value>>>,
    /// The pty the control panel opens.
    pub device: PathBuf,
}

/// pd.py, from the HAL's tests or from the workspace root's.
fn script() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hal = root.join("tests/libosdp/pd.py");
    if hal.exists() {
        hal
    } else {
        root.join("hal/tests/libosdp/pd.py")
    }
}

fn skip(why: &str) -> Option<LibOsdpPd> {
    if std::env::var("LINTEL_REQUIRE_LIBOSDP").as_deref() == Ok("1") {
        panic!("LibOSDP interop test cannot run: {why} (LINTEL_REQUIRE_LIBOSDP=1)");
    }
    eprintln!("SKIPPED (LibOSDP interop): {why}; install it with `pip install libosdp`");
    None
}

impl LibOsdpPd {
    /// Starts a PD at `address`; `scbk` (32 hex) gives it a key, else it is in install
    /// mode. `extra` are more arguments of pd.py.
    pub fn spawn(address: u8, scbk: Option<&str>, extra: &[&str]) -> Option<LibOsdpPd> {
        let mut cmd = Command::new("python3");
        cmd.arg(script()).arg("--address").arg(address.to_string());
        if let Some(k) = scbk {
            cmd.arg("--scbk").arg(k);
        }
        cmd.args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return skip(&format!("python3 cannot be started ({e})")),
        };
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, answers) = channel();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = commands.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(c) = v.get("command") {
                    seen.lock().unwrap().push(c.clone());
                } else if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[libosdp pd] {line}");
                log2.lock().unwrap().push_str(&line);
            }
        });
        let ready = answers.recv_timeout(Duration::from_secs(30));
        let device = match ready
            .as_ref()
            .ok()
            .and_then(|v| v.get("ready"))
            .and_then(|p| p.as_str())
        {
            Some(p) => PathBuf::from(p),
            None => {
                let status = child.wait().ok().and_then(|s| s.code());
                if status == Some(77) {
                    return skip("the Python package libosdp is not importable");
                }
                panic!(
                    "pd.py did not start (exit {status:?}): {}",
                    log.lock().unwrap()
                );
            }
        };
        Some(LibOsdpPd {
            child,
            stdin,
            answers,
            commands,
            device,
        })
    }

    /// Sends one request and returns its answer.
    pub fn request(&mut self, req: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{req}").expect("pd.py stdin");
        self.stdin.flush().expect("flush");
        self.answers
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("pd.py did not answer {req}"))
    }

    pub fn card(&mut self, bits: &str) {
        self.request(serde_json::json!({"op": "card", "bits": bits}));
    }

    pub fn keys(&mut self, keys: &str) {
        self.request(serde_json::json!({"op": "keys", "keys": keys}));
    }

    pub fn set(&mut self, op: &str, value: serde_json::Value) {
        let key = if value.is_boolean() { "on" } else { "count" };
        self.request(serde_json::json!({"op": op, key: value}));
    }

    /// Whether LibOSDP has its Secure Channel up.
    pub fn sc_active(&mut self) -> bool {
        self.request(serde_json::json!({"op": "status"}))["sc_active"]
            .as_bool()
            .unwrap_or(false)
    }

    /// Commands the PD received so far (LibOSDP's dicts).
    pub fn commands(&self) -> Vec<serde_json::Value> {
        self.commands.lock().unwrap().clone()
    }

    /// Waits until a received command satisfies `pred`.
    pub fn wait_command(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(c) = self.commands().into_iter().find(|c| pred(c)) {
                return Some(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for LibOsdpPd {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{{\"op\": \"quit\"}}");
        let _ = self.stdin.flush();
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
