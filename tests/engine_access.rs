//! Scenario tests of the access-control engine through the sim HAL (its
//! control socket, as `lintel sim` drives it) and the reference server: each
//! asserts the relay over controlled time and the exact rtlog records.

mod common;
mod engine_common;

use engine_common::*;
use lintel_hal::sim::SimRequest;
use std::time::Duration;

const ALWAYS: u32 = 1;
const MONDAY_TEN_TO_ELEVEN: u32 = 2;

/// Users 1 (card 4660, doors 1+2 always), 2 (card 5001, door 2 only),
/// 3 (card 5002, door 1 Monday 10-11), 4 (card 5003, expired), 5 (card
/// 5004, disabled); door 1 drive time 3 s, held-open alarm after 10 s.
fn enrolled() -> Rig {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(ALWAYS, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], interval(0, 2359)),
        timezone_cmd(MONDAY_TEN_TO_ELEVEN, &[1], interval(1000, 1100)),
        user_cmd("1", 4660, ""),
        user_cmd("2", 5001, ""),
        user_cmd("3", 5002, ""),
        // Valid until the day before the scenario's Monday.
        "DATA UPDATE user CardNo=5003\tPin=4\tStartTime=20240101\tEndTime=20240505".into(),
        user_cmd("5", 5004, "\tDisable=1"),
        authorize_cmd("1", ALWAYS, 3),
        authorize_cmd("2", ALWAYS, 2),
        authorize_cmd("3", MONDAY_TEN_TO_ELEVEN, 1),
        authorize_cmd("4", ALWAYS, 15),
        authorize_cmd("5", ALWAYS, 15),
        "SET OPTIONS Door1Drivertime=3,Door1Detectortime=10".into(),
    ]);
    rig
}

fn card_event<'a>(
    pin: &'a str,
    card: &'a str,
    door: &'a str,
    event: &'a str,
) -> [(&'a str, &'a str); 9] {
    [
        ("time", "2024-05-06 09:00:00"),
        ("pin", pin),
        ("cardno", card),
        ("sitecode", "0"),
        ("linkid", "0"),
        ("eventaddr", door),
        ("event", event),
        ("inoutstatus", "0"),
        ("verifytype", "4"),
    ]
}

#[test]
fn a_valid_card_releases_the_lock_for_exactly_the_drive_time() {
    let rig = enrolled();
    assert!(!rig.state().locks[0]);
    rig.swipe(1, 4660);
    let ev = rig.wait_events("0", 1);
    assert_record(&ev[0], &card_event("1", "4660", "1", "0"));
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, false, false]);
    rig.advance(Duration::from_millis(2900));
    assert!(rig.state().locks[0], "still released before DoorDrivertime");
    rig.advance(Duration::from_millis(100));
    assert!(!rig.state().locks[0], "locked again at 3 s");
    // rtstate followed both changes; the last one shows the relay off.
    let st = rig.server.wait_for(common::PATIENCE, |s| {
        s.table_records(common::SN, "rtstate")
            .last()
            .is_some_and(|r| r.get("relay") == Some("00"))
    });
    assert!(st, "rtstate {:?}", rig.last_rtstate());
    let saw_on = rig
        .server
        .with_state(|s| s.table_records(common::SN, "rtstate"))
        .iter()
        .any(|r| r.get("relay") == Some("01") && r.get("sensor") == Some("55"));
    assert!(
        saw_on,
        "an rtstate with door 1's relay on and 4 closed doors (one sensor byte)"
    );
}

#[test]
fn each_refusal_has_its_event_and_leaves_the_lock_shut() {
    let rig = enrolled();
    rig.swipe(1, 999); // nobody's card
    rig.swipe(2, 5002); // user 3 has no right on door 2
    rig.swipe(1, 5002); // user 3 on door 1, but only Monday 10-11
    rig.swipe(1, 5003); // expired yesterday
    rig.swipe(1, 5004); // disabled
    rig.wait_events("39", 1);
    let got = rig.scenario_events();
    let codes: Vec<&str> = got.iter().filter_map(|r| r.get("event")).collect();
    assert_eq!(codes, ["27", "23", "21", "29", "39"]);
    assert_record(&got[0], &card_event("0", "999", "1", "27"));
    assert_record(&got[1], &card_event("3", "5002", "2", "23"));
    assert_record(&got[2], &card_event("3", "5002", "1", "21"));
    assert_record(&got[3], &card_event("4", "5003", "1", "29"));
    assert_record(&got[4], &card_event("5", "5004", "1", "39"));
    rig.engine_sync();
    assert_eq!(rig.state().locks, [false; 4]);
    // An hour later user 3 is inside the rule.
    rig.advance(Duration::from_secs(3600));
    rig.swipe(1, 5002);
    let ev = rig.wait_events("0", 1);
    assert_eq!(ev[0].get("time"), Some("2024-05-06 10:00:00"));
    assert_eq!(ev[0].get("pin"), Some("3"));
}

#[test]
fn a_second_swipe_inside_the_punch_interval_is_refused_with_20() {
    let rig = enrolled();
    rig.swipe(2, 4660);
    rig.wait_events("0", 1);
    rig.swipe(2, 4660);
    rig.wait_events("20", 1);
    rig.advance(Duration::from_secs(2));
    rig.swipe(2, 4660);
    assert_eq!(rig.wait_events("0", 2).len(), 2);
}

#[test]
fn exit_button_sensor_forced_open_and_held_open() {
    let rig = enrolled();
    // Exit button: 202 and a pulse.
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("202", 1);
    rig.engine_sync();
    assert!(rig.state().locks[0]);
    rig.advance(Duration::from_secs(3));
    assert!(!rig.state().locks[0]);
    // Opened while locked: 200 then 102; held 10 s: 28; closed: 201.
    rig.sim(SimRequest::Sensor {
        door: 1,
        open: true,
    });
    rig.wait_events("102", 1);
    rig.advance(Duration::from_millis(9900));
    assert!(rig.events("28").is_empty());
    rig.advance(Duration::from_millis(100));
    rig.wait_events("28", 1);
    rig.sim(SimRequest::Sensor {
        door: 1,
        open: false,
    });
    rig.wait_events("201", 1);
    let codes: Vec<String> = rig
        .scenario_events()
        .iter()
        .filter_map(|r| r.get("event").map(str::to_owned))
        .collect();
    assert_eq!(codes, ["202", "200", "102", "28", "201"]);
    for r in rig.scenario_events() {
        assert_eq!(r.get("eventaddr"), Some("1"));
        assert_eq!(r.get("pin"), Some("0"));
        assert_eq!(r.get("verifytype"), Some("200"));
    }
    // The forced-open alarm stays in rtstate (door 1's byte = 01) until cancelled.
    let alarm_seen = rig.server.wait_for(common::PATIENCE, |s| {
        s.table_records(common::SN, "rtstate")
            .last()
            .is_some_and(|r| r.get("alarm") == Some("0100000000000000"))
    });
    assert!(alarm_seen, "{:?}", rig.last_rtstate());
    rig.enrol(&["CONTROL DEVICE 02010000".into()]);
    rig.wait_events("7", 1);
    let cleared = rig.server.wait_for(common::PATIENCE, |s| {
        s.table_records(common::SN, "rtstate")
            .last()
            .is_some_and(|r| r.get("alarm") == Some("0000000000000000"))
    });
    assert!(cleared);
}

#[test]
fn a_granted_opening_is_not_forced_and_closing_relocks_at_once() {
    let rig = enrolled();
    rig.swipe(1, 4660);
    rig.wait_events("0", 1);
    rig.sim(SimRequest::Sensor {
        door: 1,
        open: true,
    });
    rig.wait_events("200", 1);
    rig.sim(SimRequest::Sensor {
        door: 1,
        open: false,
    });
    rig.wait_events("201", 1);
    rig.engine_sync();
    assert!(!rig.state().locks[0], "DoorCloseAndLock defaults to 1");
    assert!(rig.events("102").is_empty());
}

#[test]
fn decisions_and_events_survive_an_unreachable_server() {
    let rig = enrolled();
    rig.server.stop();
    rig.swipe(1, 4660);
    rig.swipe(1, 999);
    rig.engine_sync();
    // The decision did not wait for anyone.
    let st = rig.wait_state(|s| s.locks[0]);
    assert!(st.locks[0]);
    rig.server.restart().unwrap();
    rig.wait_events("27", 1);
    let codes: Vec<String> = rig
        .scenario_events()
        .iter()
        .filter_map(|r| r.get("event").map(str::to_owned))
        .collect();
    assert_eq!(codes, ["0", "27"], "both events, once each, in order");
    let idx: Vec<u64> = rig
        .scenario_events()
        .iter()
        .filter_map(|r| r.get("index")?.parse().ok())
        .collect();
    assert!(idx[0] < idx[1]);
}

#[test]
fn control_device_drives_doors_and_aux_outputs() {
    let rig = enrolled();
    // 01: door 2 for 4 s (event 8).
    assert_eq!(rig.run_commands(&["CONTROL DEVICE 01020104".into()]), [0]);
    rig.wait_events("8", 1);
    assert!(rig.state().locks[1]);
    rig.advance(Duration::from_secs(4));
    assert!(!rig.state().locks[1]);
    // 01 … FF: normal open until 01 … 00.
    rig.enrol(&["CONTROL DEVICE 010101FF".into()]);
    rig.advance(Duration::from_secs(600));
    assert!(rig.state().locks[0]);
    rig.enrol(&["CONTROL DEVICE 01010100".into()]);
    assert!(!rig.state().locks[0]);
    // Aux output 2 for 2 s.
    rig.enrol(&["CONTROL DEVICE 0102020200".into()]);
    assert_eq!(rig.state().aux_out, [false, true, false, false]);
    rig.advance(Duration::from_secs(2));
    assert_eq!(rig.state().aux_out, [false; 4]);
    // 06: lock door 1; a valid card is then refused with 63; unlock.
    rig.enrol(&["CONTROL DEVICE 06010100".into()]);
    rig.swipe(1, 4660);
    rig.wait_events("63", 1);
    rig.engine_sync();
    assert!(!rig.state().locks[0]);
    rig.enrol(&["CONTROL DEVICE 06010000".into()]);
    // 07: emergency dual-on releases every door.
    rig.enrol(&["CONTROL DEVICE 07010000".into()]);
    assert_eq!(rig.state().locks, [true; 4]);
    rig.enrol(&["CONTROL DEVICE 07020000".into()]);
    assert_eq!(rig.state().locks, [false; 4]);
    // 03: restart through the platform hook, once the result is reported.
    rig.enrol(&["CONTROL DEVICE 03000000".into()]);
    let restarted = || {
        rig.platform
            .actions()
            .contains(&lintel::platform::PlatformAction::Restart)
    };
    let end = std::time::Instant::now() + common::PATIENCE;
    while !restarted() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(restarted());
    // Bad arguments and unsupported codes.
    assert_eq!(
        rig.run_commands(&[
            "CONTROL DEVICE 01090105".into(),
            "CONTROL DEVICE zz".into(),
            "CONTROL DEVICE 05010000".into(),
        ]),
        [-11, -11, -708]
    );
    let codes: Vec<String> = rig
        .scenario_events()
        .iter()
        .filter_map(|r| r.get("event").map(str::to_owned))
        .collect();
    assert_eq!(
        codes,
        [
            "8", "205", "9", "12", "233", "63", "234", "227", "227", "227", "227", "228", "228",
            "228", "228"
        ]
    );
}

#[test]
fn wiegand_test_mode_uploads_frames_as_testdata() {
    let rig = enrolled();
    rig.enrol(&["CONTROL DEVICE 0900000000".into()]);
    rig.swipe(1, 4660);
    let ok = rig.server.wait_for(common::PATIENCE, |s| {
        !s.table_records(common::SN, "testdata").is_empty()
    });
    assert!(ok);
    let rec = rig
        .server
        .with_state(|s| s.table_records(common::SN, "testdata"))
        .remove(0);
    assert_eq!(rec.get("type"), Some("wg"));
    assert_eq!(rec.get("bitscount"), Some("26"));
    assert_eq!(rec.get("sn"), Some(common::SN));
    rig.enrol(&["CONTROL DEVICE 09020000".into()]);
    rig.swipe(1, 4660);
    rig.wait_events("0", 1);
}
