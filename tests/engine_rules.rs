//! Scenario tests of the stateful rules: anti-passback held across a restart.

mod common;
mod engine_common;

use engine_common::*;
use lintel_hal::sim::SimRequest;
use std::time::Duration;

#[test]
fn in_apb_refuses_a_second_entry_also_after_a_restart() {
    let mut rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("7", 4242, ""),
        authorize_cmd("7", 1, 1),
        "SET OPTIONS Door1InOutAntiPassback=1".into(),
    ]);
    rig.swipe(1, 4242); // reader 1 is door 1's entry reader
    rig.wait_events("0", 1);
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 4242);
    let refused = rig.wait_events("24", 1);
    assert_record(
        &refused[0],
        &[
            ("time", "2024-05-06 09:00:05"),
            ("pin", "7"),
            ("cardno", "4242"),
            ("sitecode", "0"),
            ("linkid", "0"),
            ("eventaddr", "1"),
            ("event", "24"),
            ("inoutstatus", "0"),
            ("verifytype", "4"),
        ],
    );
    rig.engine_sync();
    rig.advance(Duration::from_secs(5));
    assert!(!rig.state().locks[0], "the refused entry did not open");

    // A power cycle keeps the user "inside".
    rig.restart_firmware();
    assert!(common::wait_online(&rig.server));
    rig.swipe(1, 4242);
    assert_eq!(rig.wait_events("24", 2).len(), 2);
    rig.engine_sync();
    assert!(!rig.state().locks[0]);
    assert_eq!(rig.events("0").len(), 1);
}

/// A user with a card and a keypad password.
fn user_with_password(pin: &str, card: u64, password: &str) -> String {
    format!("DATA UPDATE user CardNo={card}\tPin={pin}\tPassword={password}\tGroup=0\tStartTime=0\tEndTime=0\tName=User {pin}\tPrivilege=0")
}

/// An identification record at 2024-05-06 `hms` on a door's entry reader.
fn id_event<'a>(
    hms: &'a str,
    pin: &'a str,
    card: &'a str,
    door: &'a str,
    event: &'a str,
    verifytype: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("time", hms),
        ("pin", pin),
        ("cardno", card),
        ("sitecode", "0"),
        ("linkid", "0"),
        ("eventaddr", door),
        ("event", event),
        ("inoutstatus", "0"),
        ("verifytype", verifytype),
    ]
}

fn codes(rig: &Rig) -> Vec<String> {
    rig.scenario_events()
        .iter()
        .filter_map(|r| r.get("event").map(str::to_string))
        .collect()
}

#[test]
fn card_and_password_waits_for_the_password_and_times_out_with_75() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_with_password("1", 4660, "1234"),
        authorize_cmd("1", 1, 15),
        // Appendix 3 code 11: card and password.
        "SET OPTIONS Door1VerifyType=11".into(),
    ]);
    rig.swipe(1, 4660);
    rig.engine_sync();
    assert!(codes(&rig).is_empty(), "the card alone decides nothing");
    assert!(!rig.state().locks[0]);
    rig.keys(1, "1234#");
    let ev = rig.wait_events("0", 1);
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:00", "1", "4660", "1", "0", "11"),
    );
    rig.engine_sync();
    assert!(rig.state().locks[0], "card and password open");

    // A wrong password: 30 is merged into 27 (Appendix 2).
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 4660);
    rig.keys(1, "12*9999#");
    let ev = rig.wait_events("27", 1);
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:05", "1", "4660", "1", "27", "11"),
    );
    rig.engine_sync();
    assert!(!rig.state().locks[0]);

    // No password within the combined-verification timeout: 75, once.
    rig.swipe(1, 4660);
    rig.advance(lintel::engine::keypad::COMBINED_TIMEOUT - Duration::from_secs(1));
    assert!(rig.events("75").is_empty());
    rig.advance(Duration::from_secs(1));
    let ev = rig.wait_events("75", 1);
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:20", "1", "4660", "1", "75", "4"),
    );
    // The password typed after the timeout no longer belongs to that card:
    // it starts a new verification (password first), which the card completes.
    rig.keys(1, "1234#");
    rig.engine_sync();
    assert_eq!(codes(&rig), ["0", "27", "75"]);
    rig.swipe(1, 4660);
    let ev = rig.wait_events("0", 2);
    assert_record(
        &ev[1],
        &id_event("2024-05-06 09:00:20", "1", "4660", "1", "0", "11"),
    );
    rig.engine_sync();
    assert!(rig.state().locks[0]);
    assert_eq!(codes(&rig), ["0", "27", "75", "0"]);
}

#[test]
fn keypad_modes_per_door_reader_and_time_period() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_with_password("1", 4660, "1234"),
        user_cmd("2", 5001, ""),
        authorize_cmd("1", 1, 15),
        authorize_cmd("2", 1, 15),
        // Door 1 card or password; door 2's reader card only (it wins over
        // the door's 7); door 3 user ID.
        "SET OPTIONS Door1VerifyType=7,Door2VerifyType=7,Door3VerifyType=2".into(),
        "DATA UPDATE ReaderProperty ID=2\tDoorID=2\tType=2\tAddress=2\tIPAddress=\tPort=4376\tMAC=\tInOut=0\tDisable=0\tVerifyType=4\tMulticast=\tDevID=1\tOfflineRefuse=0".into(),
        // Door 4 by period: card and password 09:00-09:59, card only after;
        // user 2's own period rule: card or password all day.
        format!("DATA UPDATE DiffTimezoneVS TimezoneID=5\tMonTime1={}\tMonTime1VSUser=255\tMonTime1VSDoor=11\tMonTime2={}\tMonTime2VSUser=255\tMonTime2VSDoor=4", interval(900, 959), interval(1000, 2359)),
        format!("DATA UPDATE DiffTimezoneVS TimezoneID=6\tMonTime1={}\tMonTime1VSUser=7\tMonTime1VSDoor=255", interval(0, 2359)),
        "DATA UPDATE DoorVSTimezone DoorID=4\tTimezoneID=5\tDevID=1".into(),
        "DATA UPDATE PersonalVSTimezone PIN=2\tDoorID=4\tTimezoneID=6\tDevID=1".into(),
    ]);
    let t = "2024-05-06 09:00:00";
    rig.keys(1, "1234#"); // password alone at door 1
    rig.keys(2, "1234#"); // door 2's reader takes no keypad entry
    rig.swipe(2, 5001);
    rig.keys(3, "2#"); // user ID 2 at door 3
    rig.keys(3, "77#"); // nobody's ID
    rig.swipe(3, 4660); // a card at a user-ID door
    rig.swipe(4, 4660); // card and password period: waits…
    rig.keys(4, "1234#"); // …and opens
    rig.swipe(4, 5001); // user 2's own mode: card or password
    rig.wait_events("0", 5);
    let got = rig.scenario_events();
    let want = [
        id_event(t, "1", "0", "1", "0", "3"),
        id_event(t, "0", "0", "2", "41", "3"),
        id_event(t, "2", "5001", "2", "0", "4"),
        id_event(t, "2", "0", "3", "0", "2"),
        id_event(t, "0", "0", "3", "27", "2"),
        id_event(t, "1", "4660", "3", "41", "4"),
        id_event(t, "1", "4660", "4", "0", "11"),
        id_event(t, "2", "5001", "4", "0", "4"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (r, w) in got.iter().zip(&want) {
        assert_record(r, w);
    }
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, true, true, true]);

    // At 10:00 door 4 is card only.
    rig.advance(Duration::from_secs(3600));
    rig.swipe(4, 4660);
    let ev = rig.wait_events("0", 6);
    assert_record(
        &ev[5],
        &id_event("2024-05-06 10:00:00", "1", "4660", "4", "0", "4"),
    );
}

#[test]
fn verifytype_is_the_16_bit_string_when_the_server_answered_new_vf_styles() {
    let mut cfg = common::quick_server_config();
    cfg.extra_config = vec![("NewVFStyles".into(), "0000101000000000".into())];
    let server = common::start_server(cfg);
    let rig = Rig::start_in(server, tempfile::tempdir().unwrap(), monday_nine());
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_with_password("1", 4660, "1234"),
        authorize_cmd("1", 1, 15),
        "SET OPTIONS Door1VerifyType=11".into(),
    ]);
    rig.swipe(2, 4660);
    rig.swipe(1, 4660);
    rig.keys(1, "1234#");
    let ev = rig.wait_events("0", 2);
    let t = "2024-05-06 09:00:00";
    assert_record(
        &ev[0],
        &id_event(t, "1", "4660", "2", "0", "0000100000000000"),
    );
    assert_record(
        &ev[1],
        &id_event(t, "1", "4660", "1", "0", "0000101000000001"),
    );
}

#[test]
fn emergency_password_opens_with_4_and_duress_opens_with_101_and_an_alarm() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_with_password("1", 4660, "1234"),
        authorize_cmd("1", 1, 15),
        "SET OPTIONS Door1VerifyType=11,Door1SupplierPassWord=88888888,Door1ForcePassWord=999999"
            .into(),
    ]);
    rig.keys(2, "88888888#"); // door 2 has no emergency password
    rig.keys(1, "88888888#");
    let ev = rig.wait_events("4", 1);
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:00", "0", "0", "1", "4", "3"),
    );
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, false, false]);
    assert_eq!(codes(&rig), ["27", "4"], "door 2 knows no such password");

    // Forced at the door: card, then the duress password instead of 1234.
    rig.advance(Duration::from_secs(5));
    assert!(!rig.state().locks[0]);
    rig.swipe(1, 4660);
    rig.keys(1, "999999#");
    let ev = rig.wait_events("101", 1);
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:05", "1", "4660", "1", "101", "11"),
    );
    rig.engine_sync();
    assert!(rig.state().locks[0], "the door opens as if all were well");
    let alarm = |want: &'static str| {
        rig.server.wait_for(common::PATIENCE, |s| {
            s.table_records(common::SN, "rtstate")
                .last()
                .is_some_and(|r| r.get("alarm") == Some(want))
        })
    };
    assert!(alarm("0400000000000000"), "{:?}", rig.last_rtstate());
    rig.enrol(&["CONTROL DEVICE 02010000".into()]);
    assert!(alarm("0000000000000000"), "{:?}", rig.last_rtstate());
}

#[test]
fn first_card_normal_open_and_first_card_activation() {
    const NINE_TO_TEN: u32 = 2;
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        timezone_cmd(NINE_TO_TEN, &[1], interval(900, 959)),
        user_with_password("1", 4660, "1234"),
        user_cmd("2", 5001, ""),
        authorize_cmd("1", 1, 15),
        authorize_cmd("2", 1, 15),
        "SET OPTIONS Door1FirstCardOpenDoor=1,Door2FirstCardOpenDoor=2".into(),
        format!("DATA UPDATE firstcard DoorID=1\tTimezoneID={NINE_TO_TEN}\tPin=1\tDevID=1"),
        format!("DATA UPDATE firstcard DoorID=2\tTimezoneID={NINE_TO_TEN}\tPin=1\tDevID=1"),
    ]);
    // Door 1 (normal open): ordinary users pass as usual before the first card.
    rig.swipe(1, 5001);
    // Door 2 (activation): nobody but a first-card user before activation.
    rig.swipe(2, 5001);
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 4660);
    rig.keys(2, "1234#"); // the first-card user by password: 215
    rig.swipe(2, 5001); // activated
    rig.wait_events("0", 2);
    let t0 = "2024-05-06 09:00:00";
    let t5 = "2024-05-06 09:00:05";
    let want = [
        id_event(t0, "2", "5001", "1", "0", "4"),
        id_event(t0, "2", "5001", "2", "23", "4"),
        id_event(t5, "1", "4660", "1", "2", "4"),
        id_event(t5, "1", "0", "2", "215", "3"),
        id_event(t5, "2", "5001", "2", "0", "4"),
    ];
    let got = rig.scenario_events();
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (r, w) in got.iter().zip(&want) {
        assert_record(r, w);
    }
    // Door 1 stays open until the first-card period ends; users there punch
    // in a normal-open state (1).
    rig.advance(Duration::from_secs(600));
    assert_eq!(rig.state().locks, [true, false, false, false]);
    rig.swipe(1, 5001);
    assert_record(
        &rig.wait_events("1", 1)[0],
        &id_event("2024-05-06 09:10:05", "2", "5001", "1", "1", "4"),
    );
    rig.advance(Duration::from_secs(2994));
    assert!(rig.state().locks[0], "09:59:59 is inside the period");
    assert!(rig.events("204").is_empty());
    rig.advance(Duration::from_secs(1));
    let end = rig.wait_events("204", 1);
    assert_eq!(end[0].get("time"), Some("2024-05-06 10:00:00"));
    assert_eq!(end[0].get("eventaddr"), Some("1"));
    rig.engine_sync();
    assert!(!rig.state().locks[0], "locked at the end of the period");
    // Outside the period door 2 needs no activation.
    rig.swipe(2, 5001);
    rig.wait_events("0", 3);
    assert_eq!(rig.events("204").len(), 1, "door 2 was never held open");
}

#[test]
fn multi_card_opens_when_a_group_combination_is_complete() {
    let rig = Rig::start();
    let in_group = |pin: &str, card: u64, group: u32| {
        format!("DATA UPDATE user CardNo={card}\tPin={pin}\tPassword=\tGroup={group}\tStartTime=0\tEndTime=0\tName=\tPrivilege=0")
    };
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        in_group("1", 1001, 1),
        in_group("2", 1002, 2),
        in_group("3", 1003, 1),
        in_group("4", 1004, 3),
        authorize_cmd("1", 1, 15),
        authorize_cmd("2", 1, 15),
        authorize_cmd("3", 1, 15),
        authorize_cmd("4", 1, 15),
        "SET OPTIONS Door1MultiCardOpenDoor=1,Door1MultiCardInterTime=10".into(),
        "DATA UPDATE multimcard Index=1\tDoorId=1\tGroup1=1\tGroup2=2\tGroup3=\tGroup4=\tGroup5=\tDevID=1".into(),
    ]);
    rig.swipe(1, 1001);
    rig.engine_sync();
    assert!(!rig.state().locks[0], "one of two waits");
    rig.swipe(1, 1002);
    rig.wait_events("3", 1);
    rig.engine_sync();
    assert!(rig.state().locks[0], "group 1 + group 2 open");
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 1004); // group 3 is in no combination
    rig.swipe(1, 1003); // group 1 waits …
    rig.advance(Duration::from_secs(9));
    rig.swipe(1, 1003); // … the same person again counts once and restarts the 10 s
    rig.advance(Duration::from_secs(10));
    let ev = rig.wait_events("40", 2);
    assert_eq!(ev[1].get("time"), Some("2024-05-06 09:00:24"));
    assert_eq!(ev[1].get("pin"), Some("3"));
    rig.engine_sync();
    assert!(!rig.state().locks[0]);
    let t0 = "2024-05-06 09:00:00";
    let t5 = "2024-05-06 09:00:05";
    let want = [
        id_event(t0, "1", "1001", "1", "26", "4"),
        id_event(t0, "2", "1002", "1", "3", "4"),
        id_event(t5, "4", "1004", "1", "40", "4"),
        id_event(t5, "3", "1003", "1", "26", "4"),
        id_event("2024-05-06 09:00:14", "3", "1003", "1", "26", "4"),
    ];
    let got = rig.scenario_events();
    assert_eq!(got.len(), want.len() + 1, "{got:?}");
    for (r, w) in got.iter().zip(&want) {
        assert_record(r, w);
    }
    // A user arriving after the timeout starts a new combination.
    rig.swipe(1, 1002);
    rig.swipe(1, 1003);
    assert_eq!(rig.wait_events("3", 2)[1].get("pin"), Some("3"));
}

#[test]
fn device_apb_zones_and_timed_apb() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("1", 4660, ""),
        authorize_cmd("1", 1, 15),
        // Appendix 8 value 1: alternate between door 1 and door 2.
        "SET OPTIONS AntiPassback=1,Door4InTimeAPB=60".into(),
    ]);
    let step = || rig.advance(Duration::from_secs(3));
    rig.swipe(1, 4660); // 09:00:00 in at door 1
    step();
    rig.swipe(1, 4660); // 09:00:03 door 1 again: 24
    step();
    rig.swipe(2, 4660); // 09:00:06 door 2: the other side
    step();
    rig.swipe(2, 4660); // 09:00:09 door 2 again: 24
    step();
    rig.swipe(1, 4660); // 09:00:12 back at door 1
    rig.swipe(3, 4660); // 09:00:12 door 3 is in no zone
    rig.swipe(4, 4660); // 09:00:12 door 4: timed APB starts
    step();
    rig.swipe(4, 4660); // 09:00:15 inside the 60 s: 24
    rig.advance(Duration::from_secs(57));
    rig.swipe(4, 4660); // 09:01:12 60 s later: open
    rig.wait_events("0", 6);
    let got = rig.scenario_events();
    let want: Vec<(&str, &str, &str)> = vec![
        ("09:00:00", "1", "0"),
        ("09:00:03", "1", "24"),
        ("09:00:06", "2", "0"),
        ("09:00:09", "2", "24"),
        ("09:00:12", "1", "0"),
        ("09:00:12", "3", "0"),
        ("09:00:12", "4", "0"),
        ("09:00:15", "4", "24"),
        ("09:01:12", "4", "0"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (r, (hms, door, ev)) in got.iter().zip(&want) {
        let time = format!("2024-05-06 {hms}");
        assert_record(r, &id_event(&time, "1", "4660", door, ev, "4"));
    }
}

#[test]
fn interlock_keeps_a_door_shut_while_its_partner_is_released_or_held_open() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("1", 4660, ""),
        user_cmd("2", 5001, ""),
        authorize_cmd("1", 1, 15),
        authorize_cmd("2", 1, 15),
        // Appendix 9 value 1: doors 1 and 2.
        "SET OPTIONS InterLock=1".into(),
    ]);
    rig.swipe(1, 4660); // door 1 released for 5 s
    rig.swipe(2, 5001); // door 2 must wait: 25
    rig.swipe(3, 5001); // door 3 is not interlocked
    rig.wait_events("25", 1);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, true, false]);
    rig.advance(Duration::from_secs(5));
    assert_eq!(rig.state().locks, [false; 4]);
    // Door 1 held open (here: forced) also keeps door 2 shut, for a card
    // and for the exit button.
    rig.sim(SimRequest::Sensor {
        door: 1,
        open: true,
    });
    rig.wait_events("102", 1);
    rig.swipe(2, 5001);
    rig.sim(SimRequest::Button { door: 2 });
    rig.wait_events("25", 3);
    rig.engine_sync();
    assert!(!rig.state().locks[1]);
    rig.sim(SimRequest::Sensor {
        door: 1,
        open: false,
    });
    rig.wait_events("201", 1);
    rig.swipe(2, 5001);
    rig.wait_events("0", 3);
    rig.engine_sync();
    assert!(rig.state().locks[1], "door 1 closed: door 2 opens");
    let codes = codes(&rig);
    assert_eq!(
        codes,
        ["0", "25", "0", "200", "102", "25", "25", "201", "0"],
        "{:?}",
        rig.scenario_events()
    );
    let ev = rig.events("25");
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:00", "2", "5001", "2", "25", "4"),
    );
    assert_eq!(ev[2].get("eventaddr"), Some("2"), "the exit button's 25");
    assert_eq!(ev[2].get("pin"), Some("0"));
}

/// Events of the schedule tests: (time, event, eventaddr).
fn plain_events(rig: &Rig) -> Vec<(String, String, String)> {
    rig.scenario_events()
        .iter()
        .map(|r| {
            let f = |k| r.get(k).unwrap_or("").to_string();
            (f("time"), f("event"), f("eventaddr"))
        })
        .collect()
}

fn at(hms: &str, event: &str, addr: &str) -> (String, String, String) {
    (format!("2024-05-06 {hms}"), event.into(), addr.into())
}

#[test]
fn normal_open_periods_start_and_end_on_schedule_and_04_disables_the_day() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        timezone_cmd(2, &[1], interval(901, 902)),
        timezone_cmd(3, &[1], interval(910, 920)),
        user_cmd("1", 4660, ""),
        authorize_cmd("1", 1, 15),
        "SET OPTIONS Door1KeepOpenTimeZone=2,Door2KeepOpenTimeZone=3".into(),
    ]);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [false; 4]);
    rig.advance(Duration::from_secs(59));
    assert!(!rig.state().locks[0], "09:00:59 is before the period");
    rig.advance(Duration::from_secs(1));
    assert!(rig.state().locks[0], "09:01:00 normal open");
    rig.swipe(1, 4660); // a punch inside the period: 1
    rig.advance(Duration::from_secs(119));
    assert!(rig.state().locks[0], "09:02:59 is still inside");
    rig.advance(Duration::from_secs(1));
    assert!(!rig.state().locks[0], "09:03:00 locked again");
    rig.advance(Duration::from_secs(7 * 60));
    assert!(rig.state().locks[1], "door 2's period started at 09:10");
    rig.enrol(&["CONTROL DEVICE 04020000".into()]);
    rig.engine_sync();
    assert!(!rig.state().locks[1], "disabled for the day");
    rig.advance(Duration::from_secs(60));
    assert!(!rig.state().locks[1], "and stays so at 09:11");
    rig.wait_events("204", 2);
    assert_eq!(
        plain_events(&rig),
        [
            at("09:01:00", "5", "1"),
            at("09:01:00", "1", "1"),
            at("09:03:00", "204", "1"),
            at("09:10:00", "5", "2"),
            at("09:10:00", "10", "2"),
            at("09:10:00", "204", "2"),
        ]
    );
}

#[test]
fn exit_button_and_aux_input_periods_and_scheduled_aux_outputs() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(2, &[1], interval(1000, 1100)),
        timezone_cmd(3, &[1], interval(901, 901)),
        timezone_cmd(4, &[1], interval(900, 1200)),
        "DATA UPDATE InputIOSetting Number=1\tInType=0\tTimeZoneld=2\tDevID=1".into(),
        "DATA UPDATE InputIOSetting Number=1\tInType=1\tTimeZoneld=2\tDevID=1".into(),
        "DATA UPDATE outrelaysetting Num=1\tOutType=1\tActionType=1\tTimezoneId=2\tDevID=1".into(),
        "DATA UPDATE outrelaysetting Num=2\tOutType=1\tActionType=2\tTimezoneId=4\tDevID=1".into(),
    ]);
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("64", 1);
    aux_in(&rig, 1, true);
    rig.wait_events("65", 1);
    aux_in(&rig, 1, false);
    rig.wait_events("225", 1);
    rig.sim(SimRequest::Button { door: 2 }); // door 2's button has no period
    rig.wait_events("202", 1);
    // Aux output 2 is held off by its schedule, a remote "on" included.
    rig.enrol(&["CONTROL DEVICE 010202FF".into()]);
    rig.engine_sync();
    let s = rig.state();
    assert_eq!(s.locks, [false, true, false, false]);
    assert_eq!(s.aux_out, [false; 4]);
    rig.advance(Duration::from_secs(3600));
    let s = rig.state();
    assert_eq!(s.aux_out, [true, false, false, false], "229 at 10:00");
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("202", 2);
    aux_in(&rig, 1, true);
    rig.wait_events("226", 1);
    rig.engine_sync();
    assert!(rig.state().locks[0]);
    rig.advance(Duration::from_secs(3660));
    assert_eq!(rig.state().aux_out, [false; 4], "230 at 11:01");
    rig.advance(Duration::from_secs(3600));
    assert_eq!(
        rig.state().aux_out,
        [false, true, false, false],
        "12:01: the remote on holds again"
    );
    rig.wait_events("230", 1);
    assert_eq!(
        plain_events(&rig),
        [
            at("09:00:00", "64", "1"),
            at("09:00:00", "65", "1"),
            at("09:00:00", "225", "1"),
            at("09:00:00", "202", "2"),
            at("09:00:00", "12", "2"),
            at("10:00:00", "229", "1"),
            at("10:00:00", "202", "1"),
            at("10:00:00", "226", "1"),
            at("11:01:00", "230", "1"),
        ]
    );
}

/// An aux input level held past the 20 ms debounce.
fn aux_in(rig: &Rig, index: u8, on: bool) {
    rig.sim_and_wait(SimRequest::AuxIn { index, on }, 1);
}

#[test]
fn linkage_drives_outputs_once_and_an_output_wired_back_does_not_spin() {
    let rig = Rig::start();
    rig.enrol(&[
        // Aux input 1 → aux output 1 for 3 s.
        "DATA UPDATE inoutfun Index=1\tEventType=226\tInAddr=1\tOutType=1\tOutAddr=1\tOutTime=3\tReserved=0\tInDevID=1\tOutDevID=1".into(),
        // Any exit button → door 3 normal open.
        "DATA UPDATE inoutfun Index=2\tEventType=202\tInAddr=0\tOutType=0\tOutAddr=3\tOutTime=255\tReserved=0\tInDevID=1\tOutDevID=1".into(),
        // A linkage on the linkage event itself never fires.
        "DATA UPDATE inoutfun Index=3\tEventType=6\tInAddr=0\tOutType=1\tOutAddr=2\tOutTime=5\tReserved=0\tInDevID=1\tOutDevID=1".into(),
    ]);
    aux_in(&rig, 1, true);
    rig.wait_events("6", 1);
    rig.engine_sync();
    assert_eq!(rig.state().aux_out, [true, false, false, false]);
    // Aux output 1 wired back to aux input 1: the input follows the output.
    // While the linkage's 3 s run, it does not fire again.
    for _ in 0..3 {
        aux_in(&rig, 1, false);
        aux_in(&rig, 1, true);
    }
    rig.wait_events("226", 4);
    rig.advance(Duration::from_secs(3));
    assert_eq!(rig.state().aux_out, [false; 4], "off after OutTime");
    aux_in(&rig, 1, false);
    aux_in(&rig, 1, true);
    rig.wait_events("6", 2);
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("6", 3);
    rig.engine_sync();
    let s = rig.state();
    assert_eq!(
        s.locks,
        [true, false, true, false],
        "door 1 by its button, door 3 by the linkage"
    );
    assert_eq!(
        s.aux_out,
        [true, false, false, false],
        "linkage 3 never fired; {:?}",
        plain_events(&rig)
    );
    let six = rig.events("6");
    assert_eq!(six.len(), 3, "{six:?}");
    assert_record(
        &six[0],
        &[
            ("time", "2024-05-06 09:00:00"),
            ("pin", "0"),
            ("cardno", "0"),
            ("sitecode", "0"),
            ("linkid", "1"),
            ("eventaddr", "1"),
            ("event", "6"),
            ("inoutstatus", "0"),
            ("verifytype", "226"),
        ],
    );
    assert_eq!(six[1].get("time"), Some("2024-05-06 09:00:03"));
    assert_eq!(
        (six[2].get("linkid"), six[2].get("verifytype")),
        (Some("2"), Some("202"))
    );
    assert_eq!(rig.events("226").len(), 5);
}

/// A 32-bit frame of the test's `Corp32` format: even parity over the
/// first 16 bits, 30 card bits, odd parity over the last 16.
fn corp32(card: u32, good_parity: bool) -> String {
    let data: Vec<u8> = (0..30)
        .rev()
        .map(|i| u8::from(card >> i & 1 == 1))
        .collect();
    let ones = |b: &[u8]| b.iter().filter(|x| **x == 1).count();
    let even = u8::from(ones(&data[..15]) % 2 == 1);
    let odd = u8::from(ones(&data[15..]) % 2 == 0);
    let mut bits = vec![even];
    bits.extend(&data);
    bits.push(if good_parity { odd } else { 1 - odd });
    bits.iter().map(|b| char::from(b'0' + b)).collect()
}

fn play(rig: &Rig, reader: u8, bits: String) {
    rig.sim_and_wait(SimRequest::Wiegand { reader, bits }, 1);
}

#[test]
fn server_wiegand_formats_decode_and_follow_table_changes() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("9", 123_456, ""),
        user_cmd("1", 4660, ""),
        authorize_cmd("9", 1, 15),
        authorize_cmd("1", 1, 15),
    ]);
    play(&rig, 1, corp32(123_456, true)); // the board knows 26 bits only: 42
    rig.wait_events("42", 1);
    let fields = format!("p{}p:{}{}", "c".repeat(30), "e".repeat(16), "o".repeat(16));
    rig.enrol(&[format!(
        "DATA UPDATE WGFormat ID=7\tCardBit=32\tSiteCode=0\tFormatName=Corp32\tCardFormat={fields}"
    )]);
    play(&rig, 1, corp32(123_456, true)); // decoded by the server's format
    rig.swipe(1, 4660); // the board's 26 bits still work beside it
    play(&rig, 1, corp32(123_456, false)); // bad parity: 42
    rig.wait_events("42", 2);
    // Reader 1 now uses format 7 only, parity check off; reader 2 is unchanged.
    rig.advance(Duration::from_secs(3));
    rig.enrol(&["DATA UPDATE ReaderWGFormat ReaderID=1\tDevID=1\tWGFormatID=7\tParityVerifyDisable=1\tReversalType=0".into()]);
    rig.swipe(1, 4660);
    rig.swipe(2, 4660);
    play(&rig, 1, corp32(123_456, false));
    rig.wait_events("0", 4);
    let got: Vec<(String, String, String, String)> = rig
        .scenario_events()
        .iter()
        .map(|r| {
            let f = |k| r.get(k).unwrap_or("").to_string();
            (
                f("time")[11..].to_string(),
                f("event"),
                f("cardno"),
                f("eventaddr"),
            )
        })
        .collect();
    let row = |t: &str, e: &str, c: &str, a: &str| {
        (t.to_string(), e.to_string(), c.to_string(), a.to_string())
    };
    assert_eq!(
        got,
        [
            row("09:00:00", "42", "0", "1"),
            row("09:00:00", "0", "123456", "1"),
            row("09:00:00", "0", "4660", "1"),
            row("09:00:00", "42", "0", "1"),
            row("09:00:03", "42", "0", "1"),
            row("09:00:03", "0", "4660", "2"),
            row("09:00:03", "0", "123456", "1"),
        ]
    );
}

/// (time, pin, door, event) of every identification so far.
fn decisions(rig: &Rig) -> Vec<(String, String, String, String)> {
    rig.scenario_events()
        .iter()
        .map(|r| {
            let f = |k| r.get(k).unwrap_or("").to_string();
            (f("time"), f("pin"), f("eventaddr"), f("event"))
        })
        .collect()
}

fn decision(time: &str, pin: &str, door: &str, event: &str) -> (String, String, String, String) {
    (time.into(), pin.into(), door.into(), event.into())
}

#[test]
fn dst_moves_rule_evaluation_and_record_times_at_the_transitions() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(2, &[1], interval(1000, 1059)),
        timezone_cmd(3, &[1], interval(1100, 1159)),
        user_cmd("1", 4660, ""),
        user_cmd("2", 5001, ""),
        authorize_cmd("1", 2, 1),
        authorize_cmd("2", 3, 3),
        // From the first Monday of May 10:00 (standard) to 12:00 (DST clock).
        "DATA UPDATE DSTSetting Year=2024\tStartTime=05010110\tEndTime=05010112\tLoop=0".into(),
        "SET OPTIONS DSTOn=1".into(),
    ]);
    rig.advance(Duration::from_secs(3599));
    rig.swipe(1, 4660); // 09:59:59 standard time: before 10:00
    rig.swipe(1, 5001);
    rig.advance(Duration::from_secs(1));
    rig.swipe(1, 4660); // 10:00:00 standard is 11:00:00 DST: outside 10:00-10:59
    rig.swipe(1, 5001); // inside 11:00-11:59
    rig.advance(Duration::from_secs(3599));
    rig.swipe(1, 5001); // 11:59:59 DST
    rig.advance(Duration::from_secs(1));
    rig.swipe(2, 5001); // 12:00 DST is 11:00 standard again
    rig.wait_events("0", 3);
    assert_eq!(
        decisions(&rig),
        [
            decision("2024-05-06 09:59:59", "1", "1", "21"),
            decision("2024-05-06 09:59:59", "2", "1", "21"),
            decision("2024-05-06 11:00:00", "1", "1", "21"),
            decision("2024-05-06 11:00:00", "2", "1", "0"),
            decision("2024-05-06 11:59:59", "2", "1", "0"),
            decision("2024-05-06 11:00:00", "2", "2", "0"),
        ]
    );
}

#[test]
fn the_sessions_own_events_carry_the_same_dst_time_as_the_engines() {
    let mut rig = Rig::start();
    rig.enrol(&[
        // DST from the first Monday of May 08:00 standard: in force now.
        "DATA UPDATE DSTSetting Year=2024\tStartTime=05010108\tEndTime=10050103\tLoop=0".into(),
        "SET OPTIONS DSTOn=1".into(),
    ]);
    // A power cycle: the engine logs 206 (device start), the session 214
    // (connected), both at 09:00 standard = 10:00 on the DST clock.
    rig.restart_firmware();
    let starts = rig.wait_events("206", 2);
    let connects = rig.wait_events("214", 2);
    assert_eq!(starts[0].get("time"), Some("2024-05-06 09:00:00"));
    assert_eq!(connects[0].get("time"), Some("2024-05-06 09:00:00"));
    assert_eq!(starts[1].get("time"), Some("2024-05-06 10:00:00"));
    assert_eq!(connects[1].get("time"), Some("2024-05-06 10:00:00"));
}

/// Appendix 5 seconds of a moment.
fn old_encode(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> u32 {
    ((y - 2000) * 12 * 31 + (mo - 1) * 31 + d - 1) * 86_400 + (h * 60 + mi) * 60 + s
}

#[test]
fn validity_ends_are_inclusive_to_the_second_in_both_formats() {
    let rig = Rig::start();
    let user = |pin: &str, card: u64, start: String, end: String| {
        format!("DATA UPDATE user CardNo={card}\tPin={pin}\tPassword=\tGroup=0\tStartTime={start}\tEndTime={end}\tName=\tPrivilege=0")
    };
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user(
            "4",
            6001,
            "20240506".into(),
            old_encode(2024, 5, 6, 9, 0, 10).to_string(),
        ),
        user(
            "5",
            6002,
            old_encode(2024, 5, 6, 9, 0, 5).to_string(),
            "20240506".into(),
        ),
        authorize_cmd("4", 1, 1),
        authorize_cmd("5", 1, 1),
    ]);
    rig.swipe(1, 6002); // 09:00:00: from 09:00:05 only
    rig.swipe(1, 6001);
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 6002); // 09:00:05: its first second
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 6001); // 09:00:10: its last second
    rig.advance(Duration::from_secs(1));
    rig.swipe(1, 6001); // 09:00:11
    rig.advance(Duration::from_secs(53_988));
    rig.swipe(1, 6002); // 23:59:59: the end date's last second
    rig.advance(Duration::from_secs(1));
    rig.swipe(1, 6002); // the next day
    rig.wait_events("29", 3);
    assert_eq!(
        decisions(&rig),
        [
            decision("2024-05-06 09:00:00", "5", "1", "29"),
            decision("2024-05-06 09:00:00", "4", "1", "0"),
            decision("2024-05-06 09:00:05", "5", "1", "0"),
            decision("2024-05-06 09:00:10", "4", "1", "0"),
            decision("2024-05-06 09:00:11", "4", "1", "29"),
            decision("2024-05-06 23:59:59", "5", "1", "0"),
            decision("2024-05-07 00:00:00", "5", "1", "29"),
        ]
    );
}

#[test]
fn holidays_of_each_type_replace_the_weekday_exactly_or_every_year() {
    let rig = Rig::start();
    let weekdays = interval(800, 1800);
    let mut fields = vec!["TimezoneId=4".to_string()];
    for day in ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] {
        let v = if matches!(day, "Sun" | "Sat") {
            0
        } else {
            weekdays
        };
        fields.push(format!("{day}Time1={v}\t{day}Time2=0\t{day}Time3=0"));
    }
    fields.push(format!(
        "Hol1Time1={}\tHol1Time2=0\tHol1Time3=0",
        interval(900, 1000)
    ));
    fields.push("Hol2Time1=0\tHol2Time2=0\tHol2Time3=0".into());
    fields.push(format!(
        "Hol3Time1={}\tHol3Time2=0\tHol3Time3=0",
        interval(0, 2359)
    ));
    rig.enrol(&[
        format!("DATA UPDATE timezone {}", fields.join("\t")),
        user_cmd("1", 4660, ""),
        authorize_cmd("1", 4, 1),
        // Loop 2: that date only; Loop 1: that month and day every year.
        "DATA UPDATE holiday Holiday=20240506\tHolidayType=1\tLoop=2".into(),
        "DATA UPDATE holiday Holiday=20200507\tHolidayType=2\tLoop=1".into(),
        "DATA UPDATE holiday Holiday=20230508\tHolidayType=3\tLoop=2".into(),
        "DATA UPDATE holiday Holiday=20240509\tHolidayType=3\tLoop=2".into(),
        "DATA UPDATE holiday Holiday=20220511\tHolidayType=1\tLoop=1".into(),
    ]);
    let h = |n: u64| Duration::from_secs(n);
    rig.swipe(1, 4660); // Mon 09:00, type 1: 09:00-10:00
    rig.advance(h(3660));
    rig.swipe(1, 4660); // Mon 10:01: the holiday replaced 08:00-18:00
    rig.advance(h(82_740));
    rig.swipe(1, 4660); // Tue 09:00, type 2 every year: nothing
    rig.advance(h(86_400));
    rig.swipe(1, 4660); // Wed 09:00: 2023's holiday only, a weekday
    rig.advance(h(126_000));
    rig.swipe(1, 4660); // Thu 20:00, type 3: all day
    rig.advance(h(135_000));
    rig.swipe(1, 4660); // Sat 09:30, type 1 every year
    rig.advance(h(1860));
    rig.swipe(1, 4660); // Sat 10:01
    rig.wait_events("21", 3);
    assert_eq!(
        decisions(&rig),
        [
            decision("2024-05-06 09:00:00", "1", "1", "0"),
            decision("2024-05-06 10:01:00", "1", "1", "21"),
            decision("2024-05-07 09:00:00", "1", "1", "21"),
            decision("2024-05-08 09:00:00", "1", "1", "0"),
            decision("2024-05-09 20:00:00", "1", "1", "0"),
            decision("2024-05-11 09:30:00", "1", "1", "0"),
            decision("2024-05-11 10:01:00", "1", "1", "21"),
        ]
    );
}

#[test]
fn remote_identification_falls_back_to_the_local_decision_when_the_server_cannot_answer() {
    // The reference server does not implement section 13: the request
    // fails, 45 is logged and the local grant holds.
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("1", 4660, ""),
        authorize_cmd("1", 1, 15),
        "SET OPTIONS AutoServerFunOn=1".into(),
    ]);
    rig.swipe(1, 4660);
    let ev = rig.wait_events("0", 1);
    assert_record(
        &ev[0],
        &id_event("2024-05-06 09:00:00", "1", "4660", "1", "0", "4"),
    );
    assert_eq!(codes(&rig), ["45", "0"]);
    rig.engine_sync();
    assert!(rig.state().locks[0]);
}

mod remote_fake {
    use lintel::engine::remote::{RemoteIdentifier, RemoteVerdict};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Answers from a script, one per request, after an optional delay;
    /// keeps the records it was sent.
    pub struct Scripted {
        pub answers: Mutex<Vec<(Duration, Result<RemoteVerdict, String>)>>,
        pub seen: Arc<Mutex<Vec<String>>>,
    }

    impl RemoteIdentifier for Scripted {
        fn identify(
            &self,
            record: &str,
            _token: Option<&str>,
            _timeout: Duration,
        ) -> Result<RemoteVerdict, String> {
            self.seen.lock().unwrap().push(record.to_string());
            let (delay, answer) = self.answers.lock().unwrap().remove(0);
            std::thread::sleep(delay);
            answer
        }
    }
}

#[test]
fn remote_identification_success_failure_and_a_slow_server_through_the_sim_hal() {
    use lintel::engine::remote::{RemoteVerdict, REMOTE_TIMEOUT};
    use lintel::engine::{self, EngineSetup, ManualMonotonic};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    {
        let store = lintel::store::Store::open(dir.path()).unwrap();
        store.conn().execute_batch(
            "INSERT INTO users(pin, cardno) VALUES ('1', '4660'), ('2', '5001');
             INSERT INTO user_authorizations(pin, timezone_id, door_mask) VALUES ('1', 1, 15), ('2', 1, 15);
             INSERT INTO time_zones(timezone_id, mon_time1) VALUES (1, 2359);",
        ).unwrap();
        store.set_option("AutoServerFunOn", "1").unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let remote = remote_fake::Scripted {
        answers: Mutex::new(vec![
            (
                Duration::ZERO,
                Ok(RemoteVerdict::Success {
                    control: Some("01020108".into()),
                }),
            ),
            (Duration::ZERO, Ok(RemoteVerdict::Failed)),
            // Longer than any test: only the engine's deadline ends it.
            (Duration::from_secs(30), Ok(RemoteVerdict::Failed)),
        ]),
        seen: seen.clone(),
    };
    let board = lintel_hal::board::BoardConfig::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs/sim-4door.toml"),
    )
    .unwrap();
    let (input_tx, input_rx) = std::sync::mpsc::channel();
    let mut hal = lintel_hal::open(&board, dir.path(), input_tx).unwrap();
    let mono = ManualMonotonic::new();
    let clock = lintel::clock::ManualClock::new(monday_nine());
    let (handle, thread) = engine::start(
        EngineSetup {
            board: board.clone(),
            serial: "REMOTE1".into(),
            clock: Arc::new(PinnedClock(clock.clone())),
            monotonic: Arc::new(mono.clone()),
            session: None,
            rtstate_period: Duration::from_secs(60),
            grant_probe: None,
            remote: Some(Arc::new(remote)),
            liveness: None,
            indicator: None,
        },
        lintel::store::Store::open(dir.path()).unwrap(),
        engine::Outputs {
            locks: std::mem::take(&mut hal.locks),
            aux_out: std::mem::take(&mut hal.aux_out),
        },
        input_rx,
    )
    .unwrap();
    let sim = hal.sim_board().unwrap();
    let swipe = |reader: u8, card: u64| {
        let before = handle.hal_events_handled();
        sim.handle(&SimRequest::Swipe {
            reader,
            card,
            site: None,
        })
        .unwrap();
        let end = std::time::Instant::now() + common::PATIENCE;
        while handle.hal_events_handled() == before && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let events = || -> Vec<(i64, String, i64)> {
        let s = lintel::store::Store::open(dir.path()).unwrap();
        let mut st = s
            .conn()
            .prepare("SELECT event, pin, eventaddr FROM event_log WHERE event != 206 ORDER BY idx")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    let wait_count = |n: usize| {
        let end = std::time::Instant::now() + common::PATIENCE;
        while events().len() < n && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    // SUCCESS: 222, door 1 opens, and the server's CONTROL DEVICE opens door 2 for 8 s.
    swipe(1, 4660);
    wait_count(2);
    assert!(handle.sync(common::PATIENCE));
    assert_eq!(sim.state().locks, [true, true, false, false]);
    // FAILED: 44, door 3 stays shut.
    swipe(3, 5001);
    wait_count(3);
    // A server that does not answer: nothing until the deadline, and door 4
    // is decided by nobody meanwhile; door 1 keeps working for others.
    swipe(4, 5001);
    assert!(handle.sync(common::PATIENCE));
    assert_eq!(events().len(), 3, "waiting for the server");
    mono.advance(REMOTE_TIMEOUT);
    assert!(handle.sync(common::PATIENCE));
    wait_count(5);
    let got = events();
    assert_eq!(
        got,
        [
            (222, "1".to_string(), 1),
            (8, "0".to_string(), 2),
            (44, "2".to_string(), 3),
            (45, "2".to_string(), 4),
            (0, "2".to_string(), 4),
        ]
    );
    let s = sim.state();
    assert!(!s.locks[2], "the refused door stayed shut");
    assert!(
        s.locks[3],
        "the local decision opened door 4 after the timeout"
    );
    let records = seen.lock().unwrap().clone();
    assert_eq!(
        records[0],
        "time=2024-05-06 09:00:00\tpin=1\tcardno=4660\taddrtype=2\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=4"
    );
    assert_eq!(records.len(), 3);
    handle.shutdown();
    thread.join().unwrap();
}

/// A plain (non-identification) record at 2024-05-06 `hms`.
fn plain_record<'a>(hms: &'a str, door: &'a str, event: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("time", hms),
        ("pin", "0"),
        ("cardno", "0"),
        ("sitecode", "0"),
        ("linkid", "0"),
        ("eventaddr", door),
        ("event", event),
        ("inoutstatus", "0"),
        ("verifytype", "200"),
    ]
}

fn assert_records(rig: &Rig, want: &[Vec<(&str, &str)>]) {
    let got = rig.scenario_events();
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (r, w) in got.iter().zip(want) {
        assert_record(r, w);
    }
}

#[test]
fn door_valid_period_refuses_grants_outside_it_with_22_and_changes_nothing_inside() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        timezone_cmd(2, &[1], interval(1000, 1100)),
        user_cmd("1", 4660, ""),
        user_cmd("2", 5001, ""),
        authorize_cmd("1", 1, 15),
        authorize_cmd("2", 1, 2), // door 2 only
        // Door 1 valid 10:00-11:00 by option, door 3 by the DoorParameters
        // table; door 2's 0 means always valid, door 4 has none.
        "SET OPTIONS Door1ValidTZ=2,Door2ValidTZ=0".into(),
        "DATA UPDATE DoorParameters ID=3\tName=DoorValidTZ\tValue=2\tDevID=1".into(),
    ]);
    rig.swipe(1, 4660); // outside door 1's period: 22
    rig.swipe(1, 5001); // not authorised for door 1: still 23
    rig.swipe(2, 4660);
    rig.swipe(3, 4660);
    rig.swipe(4, 4660);
    rig.wait_events("0", 2);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [false, true, false, true]);
    let t = "2024-05-06 09:00:00";
    assert_records(
        &rig,
        &[
            id_event(t, "1", "4660", "1", "22", "4"),
            id_event(t, "2", "5001", "1", "23", "4"),
            id_event(t, "1", "4660", "2", "0", "4"),
            id_event(t, "1", "4660", "3", "22", "4"),
            id_event(t, "1", "4660", "4", "0", "4"),
        ],
    );

    // 10:00: inside the period doors 1 and 3 open as usual.
    rig.advance(Duration::from_secs(3600));
    assert_eq!(rig.state().locks, [false; 4]);
    rig.swipe(1, 4660);
    rig.swipe(3, 4660);
    rig.wait_events("0", 4);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, true, false]);
    let ev = rig.events("0");
    assert_record(
        &ev[2],
        &id_event("2024-05-06 10:00:00", "1", "4660", "1", "0", "4"),
    );
    assert_record(
        &ev[3],
        &id_event("2024-05-06 10:00:00", "1", "4660", "3", "0", "4"),
    );
    assert_eq!(rig.events("22").len(), 2);
}

#[test]
fn rex_input_0_locks_the_exit_button_with_209_and_1_or_none_opens() {
    let rig = Rig::start();
    rig.enrol(&["SET OPTIONS Door1REXInput=0,Door2REXInput=1".into()]);
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("209", 1);
    rig.sim(SimRequest::Button { door: 2 });
    rig.sim(SimRequest::Button { door: 3 }); // no DoorREXInput: opens
    rig.wait_events("202", 2);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [false, true, true, false]);
    let t = "2024-05-06 09:00:00";
    assert_records(
        &rig,
        &[
            plain_record(t, "1", "209"),
            plain_record(t, "2", "202"),
            plain_record(t, "3", "202"),
        ],
    );

    // Unlocked again from the server: door 1's button opens.
    rig.advance(Duration::from_secs(5));
    rig.enrol(&["SET OPTIONS Door1REXInput=1".into()]);
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("202", 3);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, false, false]);
    assert_record(
        &rig.events("202")[2],
        &plain_record("2024-05-06 09:00:05", "1", "202"),
    );
    assert_eq!(rig.events("209").len(), 1);
}

#[test]
fn the_exit_button_outside_the_door_valid_period_logs_36_and_opens_nothing() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(2, &[1], interval(1000, 1100)),
        "SET OPTIONS Door1ValidTZ=2".into(),
    ]);
    rig.sim(SimRequest::Button { door: 1 }); // 09:00: outside
    rig.sim(SimRequest::Button { door: 2 }); // no valid period: opens
    rig.wait_events("36", 1);
    rig.wait_events("202", 1);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [false, true, false, false]);
    let t = "2024-05-06 09:00:00";
    assert_records(
        &rig,
        &[plain_record(t, "1", "36"), plain_record(t, "2", "202")],
    );

    // 10:00: inside the period the button opens door 1.
    rig.advance(Duration::from_secs(3600));
    rig.sim(SimRequest::Button { door: 1 });
    rig.wait_events("202", 2);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, false, false]);
    assert_eq!(rig.events("36").len(), 1);
}

fn reader_property(id: u8, door: u8, disable: u8) -> String {
    format!("DATA UPDATE ReaderProperty ID={id}\tDoorID={door}\tType=2\tAddress={id}\tIPAddress=\tPort=4376\tMAC=\tInOut=0\tDisable={disable}\tVerifyType=0\tMulticast=\tDevID=1\tOfflineRefuse=0")
}

#[test]
fn a_disabled_reader_ignores_cards_and_keypad_entries_with_23() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_with_password("1", 4660, "1234"),
        authorize_cmd("1", 1, 15),
        // Card or password, and an emergency password, at doors 1 and 2.
        "SET OPTIONS Door1VerifyType=7,Door2VerifyType=7,Door1SupplierPassWord=8888".into(),
        reader_property(1, 1, 1),
        reader_property(2, 2, 0),
    ]);
    rig.swipe(1, 4660);
    rig.keys(1, "1234#");
    rig.keys(1, "8888#"); // not even the emergency password
    rig.swipe(2, 4660);
    rig.wait_events("0", 1);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [false, true, false, false]);
    let t = "2024-05-06 09:00:00";
    assert_records(
        &rig,
        &[
            id_event(t, "0", "4660", "1", "23", "4"),
            id_event(t, "0", "0", "1", "23", "3"),
            id_event(t, "0", "0", "1", "23", "3"),
            id_event(t, "1", "4660", "2", "0", "4"),
        ],
    );

    // Enabled again: the same card opens door 1.
    rig.advance(Duration::from_secs(5));
    rig.enrol(&[reader_property(1, 1, 0)]);
    rig.swipe(1, 4660);
    rig.wait_events("0", 2);
    rig.engine_sync();
    assert_eq!(rig.state().locks, [true, false, false, false]);
    assert_record(
        &rig.events("0")[1],
        &id_event("2024-05-06 09:00:05", "1", "4660", "1", "0", "4"),
    );
    assert_eq!(rig.events("23").len(), 3);
}

#[test]
fn door_times_beyond_any_clock_decide_without_a_panic() {
    let rig = Rig::start();
    let max = i64::MAX;
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("1", 4660, ""),
        authorize_cmd("1", 1, 15),
        "DATA UPDATE user CardNo=1001\tPin=2\tPassword=\tGroup=1\tStartTime=0\tEndTime=0\tName=\tPrivilege=0".into(),
        authorize_cmd("2", 1, 15),
        // Through the DoorParameters table, which SET OPTIONS' checks do not see.
        format!("DATA UPDATE DoorParameters ID=1\tName=DoorIntertime\tValue={max}\tDevID=1"),
        format!("DATA UPDATE DoorParameters ID=2\tName=DoorInTimeAPB\tValue={max}\tDevID=1"),
        "DATA UPDATE DoorParameters ID=3\tName=DoorMultiCardOpenDoor\tValue=1\tDevID=1".into(),
        format!("DATA UPDATE DoorParameters ID=3\tName=DoorMultiCardInterTime\tValue={max}\tDevID=1"),
        "DATA UPDATE multimcard Index=1\tDoorId=3\tGroup1=1\tGroup2=2\tGroup3=\tGroup4=\tGroup5=\tDevID=1".into(),
    ]);
    rig.swipe(1, 4660);
    rig.advance(Duration::from_secs(3));
    rig.swipe(1, 4660); // within "for ever" of the last punch: 20
    rig.swipe(2, 4660);
    rig.advance(Duration::from_secs(3));
    rig.swipe(2, 4660); // timed APB "for ever": 24
    rig.swipe(3, 1001); // group 1 waits "for ever" for group 2: 26
    rig.swipe(4, 4660); // the engine still decides
    rig.wait_events("0", 3);
    assert_eq!(codes(&rig), ["0", "20", "0", "24", "26", "0"]);
}

#[test]
fn a_door_disabled_by_its_door_property_refuses_cards_with_63_until_enabled() {
    let rig = Rig::start();
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user_cmd("7", 4242, ""),
        authorize_cmd("7", 1, 0b11),
        "DATA UPDATE DoorProperty ID=1\tDevID=1\tAddress=1\tDisable=1".into(),
    ]);
    rig.swipe(1, 4242);
    let refused = rig.wait_events("63", 1);
    assert_eq!(refused[0].get("eventaddr"), Some("1"));
    rig.engine_sync();
    assert!(!rig.state().locks[0], "a disabled door stays shut");
    // Door 2 has no DoorProperty row: enabled.
    rig.swipe(2, 4242);
    rig.wait_events("0", 1);
    rig.enrol(&["DATA UPDATE DoorProperty ID=1\tDevID=1\tAddress=1\tDisable=0".into()]);
    rig.advance(Duration::from_secs(5));
    rig.swipe(1, 4242);
    rig.wait_events("0", 2);
    rig.engine_sync();
    assert!(rig.state().locks[0]);
}

#[test]
fn disabled_aux_inputs_are_ignored_and_disabled_aux_outputs_refuse_to_move() {
    let rig = Rig::start();
    rig.enrol(&[
        "DATA UPDATE AuxIn ID=1\tDevID=1\tAddress=1\tDisable=1".into(),
        "DATA UPDATE AuxOut ID=2\tDevID=1\tAddress=2\tDisable=1".into(),
    ]);
    // Aux input 1 is disabled: its trigger is not an event. Aux input 2 is.
    aux_in(&rig, 1, true);
    aux_in(&rig, 2, true);
    let triggered = rig.wait_events("226", 1);
    assert_eq!(triggered[0].get("eventaddr"), Some("2"));
    rig.engine_sync();
    assert_eq!(
        rig.events("226").len(),
        1,
        "aux input 1 is disabled: no 226 for it"
    );
    // Aux output 2 is disabled: driving it alone is refused (-12), driving
    // every output leaves it off.
    assert_eq!(
        rig.run_commands(&["CONTROL DEVICE 0102020300".into()]),
        [-12]
    );
    assert_eq!(rig.run_commands(&["CONTROL DEVICE 0100020300".into()]), [0]);
    rig.engine_sync();
    assert_eq!(rig.state().aux_out, [true, false, true, true]);
    // Enabled again, it moves.
    rig.enrol(&[
        "DATA UPDATE AuxOut ID=2\tDevID=1\tAddress=2\tDisable=0".into(),
        "CONTROL DEVICE 0102020300".into(),
    ]);
    rig.engine_sync();
    assert!(rig.state().aux_out[1]);
}
