//! Device commands and reader feedback through the real session, engine and
//! sim HAL against the reference server: `Test Host` (12.3) opens a TCP
//! connection and answers 0 or -730; `REBOOT` and CONTROL DEVICE 03 report
//! their result before the restart; a grant lights reader 1's LED and beeps,
//! a denial beeps at the reader with its LED left at the idle colour.

mod common;
mod engine_common;

use engine_common::*;
use lintel::platform::PlatformAction;
use std::time::{Duration, Instant};

#[test]
fn test_host_connects_to_the_given_address_and_answers_0_or_minus_730() {
    let rig = Rig::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cmd = format!("Test Host Address=127.0.0.1:{port}");
    assert_eq!(rig.run_commands(std::slice::from_ref(&cmd)), [0]);
    drop(listener);
    assert_eq!(rig.run_commands(&[cmd]), [-730]);
    assert_eq!(
        rig.run_commands(&[
            "Test Host Address=127.0.0.1".into(),
            "Test Host Address=$(reboot):80".into(),
            "Test Host".into(),
        ]),
        [-620, -620, -619]
    );
    let results = rig.server.results(common::SN);
    assert!(
        results.iter().all(|r| r.cmd == "Test Host"),
        "CMD=Test Host: {:?}",
        results.iter().map(|r| &r.cmd).collect::<Vec<_>>()
    );
}

fn restarts(rig: &Rig) -> usize {
    rig.platform
        .actions()
        .iter()
        .filter(|a| **a == PlatformAction::Restart)
        .count()
}

fn wait_restarts(rig: &Rig, n: usize) -> usize {
    let end = Instant::now() + common::PATIENCE;
    while restarts(rig) < n && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    restarts(rig)
}

#[test]
fn reboot_and_control_03_are_reported_as_done_then_the_device_restarts() {
    let rig = Rig::start();
    assert_eq!(restarts(&rig), 0);
    assert_eq!(rig.run_commands(&["REBOOT".into()]), [0]);
    assert_eq!(wait_restarts(&rig, 1), 1);
    assert_eq!(rig.run_commands(&["CONTROL DEVICE 03000000".into()]), [0]);
    assert_eq!(wait_restarts(&rig, 2), 2);
    // Another device's restart (BB != 0) is not this one's.
    assert_eq!(rig.run_commands(&["CONTROL DEVICE 03010000".into()]), [-11]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(restarts(&rig), 2);
}

/// sim-4door with feedback long enough to be seen through the sim socket.
fn slow_feedback_board(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::board_path("sim-4door.toml")).unwrap();
    let text = text
        .replace("grant_led_ms = 2000", "grant_led_ms = 1500")
        .replace("grant_beep_ms = 200", "grant_beep_ms = 1000")
        .replace("deny_beep_ms = 150", "deny_beep_ms = 1000")
        .replace("deny_gap_ms = 100", "deny_gap_ms = 500");
    let path = dir.join("slow-feedback.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_grant_lights_the_readers_led_and_beeps_and_a_denial_beeps_with_the_led_off() {
    let server = common::start_server(common::quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let board = slow_feedback_board(dir.path());
    let rig = Rig::start_on_board(server, dir, monday_nine(), board);
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("1", 4660, ""),
        authorize_cmd("1", 1, 0b1111),
    ]);
    let s = rig.state();
    assert!(!s.leds[0] && !s.buzzers[0], "quiet before any card: {s:?}");
    rig.swipe(1, 4660);
    let s = rig.wait_state(|s| s.leds[0] && s.buzzers[0]);
    assert!(s.leds[0] && s.buzzers[0], "green and a beep: {s:?}");
    assert!(s.locks[0]);
    let s = rig.wait_state(|s| !s.leds[0] && !s.buzzers[0]);
    assert!(!s.leds[0] && !s.buzzers[0], "both end by themselves: {s:?}");
    // An unknown card at reader 2: a beep, the LED stays at its idle colour.
    rig.swipe(2, 999);
    let s = rig.wait_state(|s| s.buzzers[1]);
    assert!(s.buzzers[1] && !s.leds[1], "{s:?}");
    rig.wait_events("27", 1);
    let s = rig.wait_state(|s| !s.buzzers[1]);
    assert!(!s.buzzers[1], "{s:?}");
}

#[test]
fn ac_unlock_opens_door_1_for_its_drive_time_and_ac_unalarm_cancels_every_alarm() {
    let rig = Rig::start();
    rig.enrol(&["SET OPTIONS Door1Drivertime=4".into()]);
    assert_eq!(rig.run_commands(&["AC_UNLOCK".into()]), [0]);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, false, false]);
    let opened = rig.wait_events("8", 1);
    assert_eq!(opened[0].get("eventaddr"), Some("1"));
    rig.advance(Duration::from_secs(3));
    assert!(rig.state().locks[0], "DoorDrivertime is 4 s");
    rig.advance(Duration::from_secs(2));
    assert!(!rig.state().locks[0]);
    assert_eq!(rig.run_commands(&["AC_UNALARM".into()]), [0]);
    let cancelled = rig.wait_events("7", 4);
    let mut doors: Vec<_> = cancelled
        .iter()
        .filter_map(|r| r.get("eventaddr").map(str::to_owned))
        .collect();
    doors.sort();
    assert_eq!(doors, ["1", "2", "3", "4"]);
    let results = rig.server.results(common::SN);
    assert!(results.iter().any(|r| r.cmd == "AC_UNLOCK"));
}
