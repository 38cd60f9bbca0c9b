//! SET/GET OPTIONS (12.5) and both ACCOUNT forms (12.2), with the uploaded
//! tgz unpacked and compared.

mod data_common;

use base64::Engine;
use data_common::Harness;
use lintel::clock::Clock;
use lintel::commands::codes;
use lintel::platform::{NetworkSettings, PlatformAction};
use lintel::protocol::time::{old_decode, old_encode, parse_record_time};
use lintel::store::NewEvent;
use std::io::Read;
use std::net::Ipv4Addr;

#[test]
fn set_options_persists_configures_the_network_and_sets_the_clock() {
    let mut h = Harness::new();
    assert_eq!(
        h.ret("C:403:SET OPTIONS IPAddress=192.168.213.221,GATEIPAddress=192.168.213.1,NetMask=255.255.255.0"),
        0
    );
    assert_eq!(
        h.platform.actions(),
        vec![PlatformAction::ConfigureNetwork(NetworkSettings {
            ip_address: Some(Ipv4Addr::new(192, 168, 213, 221)),
            gateway: Some(Ipv4Addr::new(192, 168, 213, 1)),
            net_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            ..NetworkSettings::default()
        })]
    );
    assert_eq!(
        h.store.option("ipaddress").unwrap().as_deref(),
        Some("192.168.213.221")
    );
    // The spec's example arrives with a line break after the verb.
    assert_eq!(
        h.ret("C:405:SET OPTIONS\nDoor1Drivertime=5,Door1KeepOpenTimeZone=0,Door1ValidTZ=1,Door1SupperPassWord=,Door1Intertime=0,Door1VerifyType=0,Door1SensorType=1,Door1Detectortime=15,Door1CloseAndLock=0,Door1ForcePassWord=,Reader1IOState=0,WiegandIDIn=1,WiegandID=1"),
        0
    );
    assert_eq!(
        h.store.option("Door1Drivertime").unwrap().as_deref(),
        Some("5")
    );
    assert_eq!(
        h.store.option("Door1SupperPassWord").unwrap().as_deref(),
        Some("")
    );
    assert_eq!(
        h.ret("C:402:SET OPTIONS QRCodeDecryptType=2,QRCodeDecryptKey=abc=="),
        0
    );
    assert_eq!(
        h.store.option("QRCodeDecryptKey").unwrap().as_deref(),
        Some("abc==")
    );
    // DateTime: Appendix 5 seconds of the server's (local) time; then the
    // device asks rtdata for GMT and the zone.
    h.clock.set_utc_offset_minutes(120);
    let server_local = chrono::Utc::now().naive_utc() + chrono::Duration::hours(2);
    let secs = old_encode(server_local).unwrap();
    assert_eq!(h.ret(&format!("C:401:SET OPTIONS DateTime={secs}")), 0);
    let local = old_decode(secs).unwrap();
    assert_eq!(h.clock.now_local(), local);
    assert_eq!(h.link.gets, ["/iclock/rtdata?SN=SN1&type=time"]);
    // A time before the firmware's build date is refused, the clock kept.
    assert_eq!(
        h.ret("C:402:SET OPTIONS DateTime=583080894"),
        codes::BAD_DATA_FORMAT
    );
    assert_eq!(h.clock.now_local(), local);
    assert_eq!(
        h.store.option("DateTime").unwrap(),
        None,
        "an action, not a setting"
    );
}

#[test]
fn bad_option_lists_change_nothing() {
    let mut h = Harness::new();
    h.store.set_option("Door1Drivertime", "3").unwrap();
    let before = h.store.all_options().unwrap();
    let now = h.clock.now_utc();
    for (cmd, code) in [
        (
            "C:1:SET OPTIONS Door1Drivertime=9,IPAddress=999.1.1.1",
            codes::BAD_DATA_FORMAT,
        ),
        (
            "C:2:SET OPTIONS Door1Drivertime=nine",
            codes::BAD_DATA_FORMAT,
        ),
        (
            "C:3:SET OPTIONS Door1Drivertime=9,DateTime=abc",
            codes::BAD_DATA_FORMAT,
        ),
        (
            "C:4:SET OPTIONS Door1Drivertime=9,LockCount=8",
            codes::INVALID_OPTIONS,
        ),
        (
            "C:5:SET OPTIONS Door1Drivertime=9,Bad Key;=1",
            codes::INVALID_OPTIONS,
        ),
        // The firmware's own bookkeeping: a server moving the upload
        // watermark would make the device skip events.
        (
            "C:8:SET OPTIONS ~OutboxAckedThrough=99999999",
            codes::INVALID_OPTIONS,
        ),
        (
            "C:9:SET OPTIONS Door1Drivertime=9,~schemareadableby=1",
            codes::INVALID_OPTIONS,
        ),
        ("C:6:SET OPTIONS", codes::BAD_PARAMETER),
        ("C:7:GET OPTIONS", codes::BAD_PARAMETER),
    ] {
        assert_eq!(h.ret(cmd), code, "{cmd}");
        assert_eq!(h.store.all_options().unwrap(), before, "{cmd}");
    }
    assert_eq!(h.clock.now_utc(), now);
    assert!(h.platform.actions().is_empty());
}

#[test]
fn set_options_values_are_checked_per_key() {
    let mut h = Harness::new();
    let before = h.store.all_options().unwrap();
    for (cmd, code) in [
        // Parses as nothing the key can hold: the format is wrong.
        ("C:1:SET OPTIONS WebServerPort=http", codes::BAD_DATA_FORMAT),
        ("C:2:SET OPTIONS DHCP=yes", codes::BAD_DATA_FORMAT),
        (
            "C:3:SET OPTIONS WebServerIP=server;rm -rf /",
            codes::BAD_DATA_FORMAT,
        ),
        ("C:4:SET OPTIONS DNS=8.8.8", codes::BAD_DATA_FORMAT),
        // A number the key cannot take: the parameter is wrong.
        ("C:5:SET OPTIONS WebServerPort=99999", codes::BAD_PARAMETER),
        ("C:6:SET OPTIONS WebServerPort=0", codes::BAD_PARAMETER),
        ("C:7:SET OPTIONS DHCP=2", codes::BAD_PARAMETER),
        ("C:8:SET OPTIONS Door1SensorType=7", codes::BAD_PARAMETER),
        (
            "C:9:SET OPTIONS Door2Intertime=9223372036854775807",
            codes::BAD_PARAMETER,
        ),
        ("C:10:SET OPTIONS NetMask=255.0.255.0", codes::BAD_PARAMETER),
        ("C:11:SET OPTIONS IPAddress=224.0.0.1", codes::BAD_PARAMETER),
        (
            "C:12:SET OPTIONS IPAddress=10.0.0.9,DHCP=1,Door1Drivertime=-1",
            codes::BAD_PARAMETER,
        ),
    ] {
        assert_eq!(h.ret(cmd), code, "{cmd}");
        assert_eq!(
            h.store.all_options().unwrap(),
            before,
            "{cmd}: nothing stored"
        );
    }
    assert!(
        h.platform.actions().is_empty(),
        "nothing reached the platform"
    );
    assert_eq!(
        h.ret("C:20:SET OPTIONS WebServerIP=192.168.213.221,WebServerPort=8088"),
        0
    );
    assert_eq!(
        h.store.option("WebServerPort").unwrap().as_deref(),
        Some("8088")
    );
    assert_eq!(h.ret("C:21:SET OPTIONS DHCP=1,DNS=10.0.0.53"), 0);
    assert_eq!(
        h.platform.actions(),
        vec![PlatformAction::ConfigureNetwork(NetworkSettings {
            dhcp: Some(true),
            dns: Some(Ipv4Addr::new(10, 0, 0, 53)),
            ..NetworkSettings::default()
        })]
    );
}

#[test]
fn get_options_answers_through_querydata() {
    let mut h = Harness::new();
    assert_eq!(h.ret("C:1:SET OPTIONS NetMask=255.255.255.0,ComPwd=1"), 0);
    h.link.posts.clear();
    assert_eq!(
        h.ret("C:408:GET OPTIONS ~SerialNumber,FirmVer,NetMask,ComPwd,Unknown,~SchemaReadableBy"),
        0
    );
    let p = &h.link.posts[0];
    assert_eq!(
        p.path_and_query,
        "/iclock/querydata?SN=SN1&type=options&cmdid=408&tablename=options&count=1&packcnt=1&packidx=1"
    );
    assert_eq!(
        p.text(),
        format!(
            "~SerialNumber=SN1,FirmVer={},NetMask=255.255.255.0,ComPwd=1",
            env!("CARGO_PKG_VERSION")
        )
    );
    h.link.answer = data_common::Answer::Status(500);
    assert_eq!(
        h.ret("C:409:GET OPTIONS ComPwd"),
        codes::UPLOAD_OPTIONS_FAILED
    );
}

/// Events 1..=n, one minute apart from 2024-01-01 10:00.
fn log_events(h: &mut Harness, n: u32) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..n {
        let t = format!("2024-01-01 {:02}:{:02}:00", 10 + i / 60, i % 60);
        let mut e = NewEvent::plain(t.clone(), 100 + (i % 3), 1 + i % 4);
        e.pin = (i % 7).to_string();
        let idx = h.store.append_event(&e).unwrap();
        let secs = old_encode(parse_record_time(&t).unwrap()).unwrap();
        lines.push(format!(
            "cardno=0\tpin={}\tverified=200\tdoorid={}\teventtype={}\tinoutstate=0\ttime_second={secs}\tindex={idx}\tsitecode=0\tdevid=1",
            i % 7,
            1 + i % 4,
            100 + (i % 3)
        ));
    }
    lines
}

/// Unpacks a tgz and returns the text of its single `transaction.txt`.
fn untgz(bytes: &[u8]) -> String {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("transaction.txt"));
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    assert!(entries.next().is_none(), "one file per tgz");
    text
}

#[test]
fn account_pull_sdk_form_uploads_one_base64_tgz() {
    let mut h = Harness::new();
    let lines = log_events(&mut h, 41);
    let outcome = h.run("C:291:ACCOUNT transaction ContentType=tgz MaxIndex=0");
    assert_eq!(outcome.ret, 41);
    assert_eq!(
        outcome.extra,
        "&transaction&StartTime=&EndTime=&RecordSum=41"
    );
    assert_eq!(h.link.posts.len(), 1);
    let p = &h.link.posts[0];
    assert_eq!(
        p.path_and_query,
        "/iclock/querydata?SN=SN1&type=tabledata&cmdid=291&tablename=transaction&count=41&datafmt=3&Stamp=9999"
    );
    let nul = p.body.iter().position(|&b| b == 0).unwrap();
    let head = String::from_utf8(p.body[..nul].to_vec()).unwrap();
    let packed = base64::engine::general_purpose::STANDARD
        .decode(&p.body[nul + 1..])
        .unwrap();
    assert_eq!(
        head,
        format!(
            "name=transaction.tgz\nsize={}\ndatacode=base64\ndatatype=tgz",
            packed.len()
        )
    );
    assert_eq!(untgz(&packed), lines.join("\n") + "\n");
    // MaxIndex: only the records after it.
    h.link.posts.clear();
    assert_eq!(
        h.ret("C:292:ACCOUNT transaction ContentType=tgz MaxIndex=40"),
        1
    );
    let p = &h.link.posts[0];
    let nul = p.body.iter().position(|&b| b == 0).unwrap();
    let packed = base64::engine::general_purpose::STANDARD
        .decode(&p.body[nul + 1..])
        .unwrap();
    assert_eq!(untgz(&packed), lines[40].clone() + "\n");
    // No temporary file is left behind.
    let tmp = h.dir.path().join("tmp");
    assert!(std::fs::read_dir(&tmp).map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn account_controller_form_sends_an_overview_then_tgz_parts() {
    let mut h = Harness::new();
    let lines = log_events(&mut h, 120);
    h.link.max_package_size = 2048;
    assert_eq!(h.ret("C:300:ACCOUNT transaction MaxIndex=0"), 120);
    let posts = h.link.posts.clone();
    let overview = &posts[0];
    assert_eq!(
        overview.path_and_query,
        "/iclock/cdata?SN=SN1&cmdid=300&desc=overview"
    );
    let files = &posts[1..];
    assert!(files.len() >= 3, "{} parts", files.len());
    assert_eq!(
        overview.text(),
        format!(
            "SumCount=120\nFileName=transaction.tgz\nContentType=tgz\nFileCount={}",
            files.len()
        )
    );
    let mut all = String::new();
    for (i, f) in files.iter().enumerate() {
        let text = untgz(&f.body);
        assert!(text.len() <= 2048);
        assert_eq!(
            f.path_and_query,
            format!(
                "/iclock/file?SN=SN1&cmdid=300&fileseq={}&contenttype=tgz&table=transaction&count={}",
                i + 1,
                text.lines().count()
            )
        );
        all.push_str(&text);
    }
    assert_eq!(all, lines.join("\n") + "\n");

    // Index and time ranges.
    h.link.posts.clear();
    h.link.max_package_size = 1 << 20;
    assert_eq!(
        h.ret("C:301:ACCOUNT transaction StartIndex=5\tEndIndex=9"),
        5
    );
    assert_eq!(untgz(&h.link.posts[1].body), lines[4..9].join("\n") + "\n");
    h.link.posts.clear();
    assert_eq!(
        h.ret(
            "C:302:ACCOUNT transaction StartTime=2024-01-01 10:10:00\tEndTime=2024-01-01 10:19:59"
        ),
        10
    );
    assert_eq!(
        untgz(&h.link.posts[1].body),
        lines[10..20].join("\n") + "\n"
    );
    // Nothing selected: an overview saying so and no file.
    h.link.posts.clear();
    assert_eq!(h.ret("C:303:ACCOUNT transaction MaxIndex=1000"), 0);
    assert_eq!(h.link.posts.len(), 1);
    assert!(h.link.posts[0].text().starts_with("SumCount=0\n"));
    // Errors.
    assert_eq!(h.ret("C:304:ACCOUNT user MaxIndex=0"), codes::UNKNOWN_TABLE);
    assert_eq!(h.ret("C:305:ACCOUNT transaction"), codes::BAD_PARAMETER);
    assert_eq!(
        h.ret("C:306:ACCOUNT transaction StartTime=yesterday\tEndTime=today"),
        codes::BAD_DATA_FORMAT
    );
    h.link.answer = data_common::Answer::NoResponse;
    assert_eq!(
        h.ret("C:307:ACCOUNT transaction MaxIndex=0"),
        codes::NO_SERVER_RESPONSE
    );
}
