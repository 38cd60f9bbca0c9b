//! systemd integration of the real binary: `READY=1` once started, then
//! `WATCHDOG=1` at half of `WATCHDOG_USEC` while every thread keeps its
//! promise; and the threads a running firmware has under watch.

mod common;

use common::Running;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn the_binary_tells_systemd_it_is_ready_and_feeds_the_watchdog() {
    let server = common::start_server(common::quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_file(&server.url(), dir.path());
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let _fw = Running(
        common::binary(env!("CARGO_BIN_EXE_lintel"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .env_remove("WATCHDOG_PID")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lintel runs"),
    );
    let mut messages = Vec::new();
    let end = Instant::now() + common::PATIENCE;
    let mut buf = [0u8; 256];
    while Instant::now() < end
        && messages
            .iter()
            .filter(|m: &&String| m.as_str() == "WATCHDOG=1")
            .count()
            < 3
    {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert_eq!(messages.first().map(String::as_str), Some("READY=1"));
    assert!(
        messages.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3,
        "{messages:?}"
    );
}

#[test]
fn a_running_firmware_watches_its_session_and_engine_threads() {
    let server = common::start_server(common::quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(&server.url(), dir.path(), "");
    let fw = common::start_firmware(&cfg);
    assert!(common::wait_online(&server));
    let liveness = fw.liveness().clone();
    let end = Instant::now() + common::PATIENCE;
    while liveness.watched().len() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        liveness.watched(),
        vec!["engine", "engine-inputs", "session"]
    );
    assert!(liveness.overdue(Instant::now()).is_empty());
    fw.stop();
    // Threads that ended on purpose are no longer watched (the HAL input
    // forwarder ends shortly after the sim's inputs close; it is not joined).
    let end = Instant::now() + common::PATIENCE;
    while !liveness.watched().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(liveness.watched().is_empty(), "{:?}", liveness.watched());
}
