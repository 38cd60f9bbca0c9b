//! The device clock against the server's times, through the real session
//! and engine with the real clock: wild `Date`s move neither decisions nor
//! record times (issue 11, defect 7), a large step waits for the server's
//! word or for answers that agree, and a record time going back is said in
//! the error log.

mod common;

use chrono::{DateTime, Utc};
use common::{PATIENCE, SN};
use lintel_hal::sim::{self, SimRequest};
use lintel_refserver::RefServer;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

fn enrol(server: &RefServer, commands: &[&str]) {
    let ids: Vec<String> = commands
        .iter()
        .map(|c| server.queue_command(SN, c).to_string())
        .collect();
    let done = server.wait_for(PATIENCE, |s| {
        ids.iter()
            .all(|id| s.results(SN).iter().any(|r| &r.id == id))
    });
    assert!(done, "results for {commands:?}");
    for r in server.results(SN) {
        if ids.contains(&r.id) {
            assert_eq!(r.ret, 0, "{r:?}");
        }
    }
}

fn swipe(data_dir: &Path, card: u64) {
    let resp = sim::request(
        data_dir,
        &SimRequest::Swipe {
            reader: 1,
            card,
            site: None,
        },
    )
    .expect("sim socket answers");
    assert!(resp.ok, "{:?}", resp.error);
}

/// A server whose every `Date` (and rtdata) says `at`; a user valid
/// 2020-2030 swipes: let in, stamped with the real date.
fn wild_date_changes_nothing(at: std::time::SystemTime) {
    let mut cfg = common::quick_server_config();
    cfg.clock = lintel_refserver::Clock::Fixed(at);
    let server = common::start_server(cfg);
    let dir = tempfile::tempdir().unwrap();
    let fw = common::start_firmware(&common::config(&server.url(), dir.path(), ""));
    assert!(common::wait_online(&server));
    enrol(
        &server,
        &[
            "DATA UPDATE timezone TimezoneId=1\tSunTime1=2359\tMonTime1=2359\tTueTime1=2359\tWedTime1=2359\tThuTime1=2359\tFriTime1=2359\tSatTime1=2359",
            "DATA UPDATE user CardNo=4660\tPin=1\tPassword=\tGroup=0\tStartTime=20200101\tEndTime=20301231\tName=Alice\tPrivilege=0",
            "DATA UPDATE userauthorize Pin=1\tAuthorizeTimezoneId=1\tAuthorizeDoorId=1\tDevID=1",
        ],
    );
    swipe(dir.path(), 4660);
    let got = server.wait_for(PATIENCE, |s| {
        s.rtlog(SN).iter().any(|r| r.get("pin") == Some("1"))
    });
    assert!(got, "{:?}", server.rtlog(SN));
    let device_now = fw.clock.now_utc();
    fw.stop();
    let record = server
        .rtlog(SN)
        .into_iter()
        .find(|r| r.get("pin") == Some("1"))
        .unwrap();
    assert_eq!(record.get("event"), Some("0"), "{record:?}");
    let now = Utc::now();
    for r in server.rtlog(SN) {
        let time = lintel::protocol::time::parse_record_time(r.get("time").unwrap()).unwrap();
        let off = (time - now.naive_utc()).num_minutes().abs();
        assert!(off < 24 * 60, "event stamped {time}: {r:?}");
    }
    assert!((device_now - now).num_minutes().abs() < 5, "{device_now}");
}

#[test]
fn a_date_of_1970_neither_refuses_a_valid_user_nor_stamps_events_1970() {
    wild_date_changes_nothing(UNIX_EPOCH + Duration::from_secs(5));
}

#[test]
fn a_date_of_2100_neither_refuses_a_valid_user_nor_stamps_events_2100() {
    // 2100-01-01 00:00:00 UTC.
    wild_date_changes_nothing(UNIX_EPOCH + Duration::from_secs(4_102_444_800));
}

fn wait_for_clock(fw: &lintel::app::Firmware, want: DateTime<Utc>) -> i64 {
    let end = Instant::now() + PATIENCE;
    loop {
        let off = (fw.clock.now_utc() - want).num_seconds().abs();
        if off < 60 || Instant::now() > end {
            return off;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_large_step_follows_rtdata_at_once_and_agreeing_dates_without_it() {
    const AHEAD: i64 = 2 * 86_400;
    for missing_rtdata in [false, true] {
        let mut cfg = common::quick_server_config();
        cfg.clock = lintel_refserver::Clock::OffsetSecs(AHEAD);
        if missing_rtdata {
            cfg.missing_endpoints = vec!["/iclock/rtdata".into()];
        }
        let server = common::start_server(cfg);
        let dir = tempfile::tempdir().unwrap();
        let fw = common::start_firmware(&common::config(&server.url(), dir.path(), ""));
        assert!(common::wait_online(&server));
        let off = wait_for_clock(&fw, Utc::now() + chrono::Duration::seconds(AHEAD));
        fw.stop();
        assert!(off < 60, "rtdata missing: {missing_rtdata}; {off} s off");
        let rtdata = server
            .requests()
            .iter()
            .filter(|r| r.path == "/iclock/rtdata")
            .count();
        assert!(rtdata >= 1, "asked after connecting");
    }
}

#[test]
fn record_times_going_back_are_reported_in_the_error_log() {
    let server = common::start_server(common::quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(&server.url(), dir.path(), "");
    let fw = common::start_firmware(&cfg);
    assert!(server.wait_for(PATIENCE, |s| s
        .rtlog(SN)
        .iter()
        .any(|r| r.get("event") == Some("214"))));
    fw.stop();
    // The server's time is three hours behind the device's; its rtdata
    // steps the clock back, and the next record is earlier than the last.
    server.update_config(|c| c.clock = lintel_refserver::Clock::OffsetSecs(-3 * 3600));
    let fw = common::start_firmware(&cfg);
    let reported = server.wait_for(PATIENCE, |s| {
        s.uploads(SN).iter().any(|u| {
            u.tablename.as_deref() == Some("errorlog")
                && String::from_utf8_lossy(&u.raw).contains("errcode=D03E0001")
        })
    });
    fw.stop();
    assert!(reported, "{:?}", server.uploads(SN));
    let store = lintel::store::Store::open(dir.path()).unwrap();
    let msg: String = store
        .conn()
        .query_row(
            "SELECT errmsg FROM error_log WHERE errcode = 'D03E0001'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(msg.starts_with("record time went back from "), "{msg}");
}
