//! The device's local zone through the real session and engine: the
//! server's (rtdata ServerTZ, SET OPTIONS / DevParameters MachineTZ), kept
//! across restarts, else the system's (TZ, a TZif localtime file), else
//! `device.utc_offset_minutes`. One scenario reads +08:00 in a time rule,
//! a holiday, a validity date and the record times.

mod common;
mod engine_common;

use chrono::{DateTime, TimeZone, Utc};
use common::{PATIENCE, SN};
use engine_common::{authorize_cmd, interval, timezone_cmd, Rig};
use lintel::clock::zone::SystemZoneSource;
use lintel_refserver::Record;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Mon 2024-05-06 17:00 UTC: Tue 2024-05-07 01:00 at +08:00.
fn monday_17_utc() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 17, 0, 0).unwrap()
}

fn server(tz: Option<&str>) -> lintel_refserver::RefServer {
    let mut cfg = common::quick_server_config();
    cfg.server_tz = tz.map(str::to_owned);
    common::start_server(cfg)
}

fn user(pin: &str, card: u64, start: &str, end: &str) -> String {
    format!("DATA UPDATE user CardNo={card}\tPin={pin}\tPassword=\tGroup=0\tStartTime={start}\tEndTime={end}\tName=\tPrivilege=0")
}

/// Three people each let in only if local time is Tue 2024-05-07 01:00:
/// 7001 by a validity date that starts that day, 7002 by a holiday that
/// day, 7003 by a time rule of 00:30-01:30 (every day and holiday).
fn enrol_plus_eight_people(rig: &Rig) {
    const EVERY_DAY: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    rig.enrol(&[
        timezone_cmd(1, EVERY_DAY, interval(0, 2359)),
        timezone_cmd(2, &[7], interval(0, 2359)),
        timezone_cmd(3, EVERY_DAY, interval(30, 130)),
        "DATA UPDATE holiday Holiday=20240507\tHolidayType=1\tLoop=2".into(),
        user("1", 7001, "20240507", "20301231"),
        user("2", 7002, "0", "0"),
        user("3", 7003, "0", "0"),
        authorize_cmd("1", 1, 1),
        authorize_cmd("2", 2, 1),
        authorize_cmd("3", 3, 1),
    ]);
}

/// Presents `card` on reader 1 and returns its record. Time moves 3 s
/// first (DoorIntertime's default is 2 s). A frame a loaded machine split
/// in two (event 42, another card number) is a harness artefact: the card
/// is presented again.
fn present(rig: &Rig, card: u64) -> Record {
    let card_no = card.to_string();
    for _ in 0..3 {
        rig.advance(Duration::from_secs(3));
        let before = rig.server.rtlog(SN).len();
        rig.swipe(1, card);
        let arrived = rig
            .server
            .wait_for(PATIENCE, |s| s.rtlog(SN).len() > before);
        assert!(arrived, "a record for card {card}");
        // Give a split frame's second half its moment to arrive as well.
        rig.engine_sync();
        if let Some(r) = rig.server.rtlog(SN)[before..]
            .iter()
            .find(|r| r.get("cardno") == Some(card_no.as_str()))
        {
            return r.clone();
        }
    }
    panic!(
        "card {card} was never read whole: {:?}",
        rig.server.rtlog(SN)
    );
}

/// Presents the three cards; returns (pin, event, time) of their records.
fn swipe_the_three(rig: &Rig) -> Vec<(String, String, String)> {
    [7001, 7002, 7003]
        .iter()
        .map(|&card| {
            let r = present(rig, card);
            let f = |k: &str| r.get(k).unwrap_or("").to_owned();
            (f("pin"), f("event"), f("time"))
        })
        .collect()
}

/// All three let in, stamped with the +08:00 wall clock.
fn assert_plus_eight(got: &[(String, String, String)]) {
    assert_eq!(got.len(), 3, "{got:?}");
    for (pin, event, time) in got {
        assert_eq!(event, "0", "pin {pin} is let in at +08:00: {got:?}");
        assert!(
            time.starts_with("2024-05-07 01:0"),
            "pin {pin}'s record time {time} is +08:00 local time"
        );
    }
}

/// The same swipes read in UTC: Monday 17:00, before the validity date,
/// no holiday, outside Tuesday's rule.
fn assert_utc(got: &[(String, String, String)]) {
    let events: Vec<&str> = got.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(events, ["29", "21", "21"], "{got:?}");
    assert!(
        got.iter().all(|(_, _, t)| t.starts_with("2024-05-06 17:0")),
        "{got:?}"
    );
}

#[test]
fn a_server_at_plus_eight_by_rtdata_sets_every_rule_and_record_time_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::start_in(server(Some("+0800")), dir, monday_17_utc());
    enrol_plus_eight_people(&rig);
    assert_plus_eight(&swipe_the_three(&rig));
    assert!(rig
        .server
        .requests()
        .iter()
        .any(|r| r.path == "/iclock/rtdata"
            && r.query.iter().any(|(k, v)| k == "type" && v == "time")));

    // The server stops giving its zone; the device keeps the one it had.
    rig.server.update_config(|c| c.server_tz = None);
    rig.restart_firmware();
    assert!(common::wait_online(&rig.server));
    assert_plus_eight(&swipe_the_three(&rig));
}

#[test]
fn machine_tz_by_set_options_or_devparameters_sets_the_zone_and_non_zones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start_in(server(None), dir, monday_17_utc());
    enrol_plus_eight_people(&rig);
    assert_utc(&swipe_the_three(&rig));

    assert_eq!(
        rig.run_commands(&["SET OPTIONS MachineTZ=+0800".into()]),
        [0]
    );
    assert_plus_eight(&swipe_the_three(&rig));

    // Not zones: refused with -620 and nothing stored.
    let codes = rig.run_commands(&[
        "SET OPTIONS MachineTZ=8".into(),
        "DATA UPDATE DevParameters ID=1\tName=MachineTZ\tValue=Asia/Shanghai".into(),
    ]);
    assert_eq!(codes, [-620, -620]);
    let store = lintel::store::Store::open(&rig.data_dir).unwrap();
    assert_eq!(store.option("MachineTZ").unwrap().as_deref(), Some("+0800"));
    let rows: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM device_parameters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    assert_plus_eight(&swipe_the_three(&rig));

    // The DevParameters table sets it too.
    assert_eq!(
        rig.run_commands(&["DATA UPDATE DevParameters ID=1\tName=MachineTZ\tValue=+0000".into()]),
        [0]
    );
    assert_utc(&swipe_the_three(&rig));
    assert_eq!(
        rig.run_commands(&["DATA UPDATE DevParameters ID=1\tName=MachineTZ\tValue=+08:00".into()]),
        [0]
    );
    assert_plus_eight(&swipe_the_three(&rig));
}

/// TZif files of tzdata 2025b (public domain).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/clock/testdata")
        .join(name)
}

#[test]
fn without_a_server_zone_the_tz_value_then_the_localtime_file_then_the_config_applies() {
    let tz = SystemZoneSource {
        tz: Some("CST-8".into()),
        ..SystemZoneSource::none()
    };
    let localtime = SystemZoneSource {
        localtime: fixture("shanghai.tzif"),
        ..SystemZoneSource::none()
    };
    // TZ wins over the localtime file (Berlin, +02:00 in May).
    let both = SystemZoneSource {
        tz: Some("CST-8".into()),
        localtime: fixture("berlin.tzif"),
        zoneinfo: PathBuf::new(),
    };
    for (system, device) in [
        (tz, ""),
        (localtime, ""),
        (both, ""),
        (SystemZoneSource::none(), "utc_offset_minutes = 480"),
    ] {
        let label = format!("{system:?} {device:?}");
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig::start_with(server(None), dir, monday_17_utc(), system, device);
        enrol_plus_eight_people(&rig);
        let got = swipe_the_three(&rig);
        assert_eq!(got.len(), 3, "{label}");
        assert_plus_eight(&got);
    }
    // A system zone comes before the configured offset.
    let dir = tempfile::tempdir().unwrap();
    let system = SystemZoneSource {
        tz: Some("UTC".into()),
        ..SystemZoneSource::none()
    };
    let rig = Rig::start_with(
        server(None),
        dir,
        monday_17_utc(),
        system,
        "utc_offset_minutes = 480",
    );
    enrol_plus_eight_people(&rig);
    assert_utc(&swipe_the_three(&rig));
}

#[test]
fn a_zone_with_its_own_dst_and_the_servers_dst_table_make_one_hour_not_two() {
    // Mon 2024-05-06 09:00 UTC is 11:00 in Berlin (CEST).
    let at = Utc.with_ymd_and_hms(2024, 5, 6, 9, 0, 0).unwrap();
    let berlin = SystemZoneSource {
        localtime: fixture("berlin.tzif"),
        ..SystemZoneSource::none()
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start_with(server(None), dir, at, berlin, "");
    rig.enrol(&[
        timezone_cmd(1, &[0, 1, 2, 3, 4, 5, 6], interval(0, 2359)),
        user("1", 7001, "0", "0"),
        authorize_cmd("1", 1, 1),
    ]);
    let time_of_swipe = |rig: &Rig| {
        let r = present(rig, 7001);
        assert_eq!(r.get("event"), Some("0"), "{r:?}");
        r.get("time").unwrap().to_owned()
    };
    assert!(time_of_swipe(&rig).starts_with("2024-05-06 11:00"));
    // The server's EU rule on top: still one hour of DST.
    rig.enrol(&[
        "DATA UPDATE DSTSetting Year=2024\tStartTime=03050002\tEndTime=10050003\tLoop=1".into(),
        "SET OPTIONS DSTOn=1".into(),
    ]);
    assert!(time_of_swipe(&rig).starts_with("2024-05-06 11:00"));
    // A fixed server zone of +01:00 with the same table: 11:00 too.
    rig.enrol(&["SET OPTIONS MachineTZ=+0100".into()]);
    assert!(time_of_swipe(&rig).starts_with("2024-05-06 11:00"));
    rig.enrol(&["SET OPTIONS DSTOn=0".into()]);
    assert!(time_of_swipe(&rig).starts_with("2024-05-06 10:00"));
}

#[test]
fn the_lintel_binary_reads_the_tz_environment() {
    let server = server(None);
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_file(&server.url(), dir.path());
    let _fw = common::Running(
        common::binary(env!("CARGO_BIN_EXE_lintel"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("TZ", "CST-8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lintel runs"),
    );
    // Event 214 (connected) is stamped in +08:00.
    assert!(server.wait_for(PATIENCE, |s| s
        .rtlog(SN)
        .iter()
        .any(|r| r.get("event") == Some("214"))));
    let now = Utc::now();
    let record = server
        .rtlog(SN)
        .into_iter()
        .find(|r| r.get("event") == Some("214"))
        .unwrap();
    let time = lintel::protocol::time::parse_record_time(record.get("time").unwrap()).unwrap();
    let ahead = (time - now.naive_utc()).num_minutes();
    assert!(
        (470..=481).contains(&ahead),
        "{time} is {ahead} min from UTC now"
    );
}
