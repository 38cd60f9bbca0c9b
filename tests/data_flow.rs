//! The whole flow against the reference server: commands fetched over
//! getrequest, applied, answered through querydata and devicecmd; the
//! device's own table uploads acknowledged with `<table>=N`.

use lintel::app::{Firmware, StartOptions};
use lintel::commands::data::uploads;
use lintel::config::Config;
use lintel::store::{NewEvent, Store};
use lintel_refserver::{RefServer, ServerConfig};
use std::path::Path;
use std::time::Duration;

const SN: &str = "DATAFLOW01";
const PATIENCE: Duration = Duration::from_secs(30);

fn start(server: &RefServer, data_dir: &Path) -> Firmware {
    let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs/sim-4door.toml");
    let text = format!(
        "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}\"\n[server]\nurl = \"{}\"\nerror_delay_sec = 1\nrequest_delay_sec = 1\ntimeout_sec = 3\n",
        data_dir.display(),
        board.display(),
        server.url()
    );
    let config = Config::from_toml_str(&text, Path::new("test.toml"), data_dir).unwrap();
    Firmware::start(&config, StartOptions::for_config(&config)).unwrap()
}

#[test]
fn data_commands_and_uploads_end_to_end() {
    let server = RefServer::start(ServerConfig {
        error_delay: 1,
        request_delay: 1,
        timeout_sec: 3,
        ..ServerConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let update = server.queue_command(
        SN,
        "DATA UPDATE user CardNo=[15CD5B07]\tPin=1\tName=Ann\nCardNo=\tPin=2\tName=Bob\nCardNo=\tPin=3\tName=Cy",
    );
    let auth = server.queue_command(
        SN,
        "DATA UPDATE userauthorize Pin=1\tAuthorizeTimezoneId=1\tAuthorizeDoorId=3\tDevID=1",
    );
    // An unknown field is ignored, a bad value in a known one refuses.
    let bad = server.queue_command(SN, "DATA UPDATE user Pin=4\tBogus=1\tGroup=x");
    let count = server.queue_command(SN, "DATA COUNT user");
    let query = server.queue_command(SN, "DATA QUERY tablename=user,fielddesc=*,filter=*");
    let firmware = start(&server, dir.path());
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= 5));
    let results = server.results(SN);
    let ret = |id: u64| {
        results
            .iter()
            .find(|r| r.id == id.to_string())
            .map(|r| (r.ret, r.cmd.clone()))
            .unwrap()
    };
    assert_eq!(ret(update), (0, "DATA".into()));
    assert_eq!(ret(auth), (0, "DATA".into()));
    assert_eq!(ret(bad), (-620, "DATA".into()));
    assert_eq!(ret(count), (0, "DATA COUNT".into()));
    assert_eq!(ret(query), (3, "DATA QUERY".into()));
    let uploads = server.uploads(SN);
    let counted = uploads
        .iter()
        .find(|u| u.query_value("type") == Some("count"))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&counted.raw), "user=3");
    let queried = uploads
        .iter()
        .find(|u| u.query_value("type") == Some("tabledata") && u.endpoint == "/iclock/querydata")
        .unwrap();
    assert!(queried.accepted);
    assert_eq!(queried.count_matches, Some(true));
    assert_eq!(
        String::from_utf8_lossy(&queried.raw).lines().next(),
        Some("user uid=1\tcardno=123456789\tpin=1\tpassword=\tgroup=1\tstarttime=0\tendtime=0\tname=Ann\tprivilege=0\tdisable=0\tverify=0")
    );
    // The failed command's error log reached the server (3.1.2).
    assert!(server.wait_for(PATIENCE, |s| {
        s.uploads(SN)
            .iter()
            .any(|u| u.tablename.as_deref() == Some("errorlog") && u.accepted)
    }));

    // A device-side upload: the user enrolled on the device goes up as 10.5 says.
    {
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            uploads::queue_table_upload(&mut store, "user", &[("Pin", "2")]).unwrap(),
            1
        );
        store
            .append_event(&NewEvent::plain("2024-01-01 10:00:00".into(), 8, 1))
            .unwrap();
    }
    firmware.notify_outbox();
    assert!(server.wait_for(PATIENCE, |s| {
        s.uploads(SN)
            .iter()
            .any(|u| u.tablename.as_deref() == Some("user") && u.endpoint == "/iclock/cdata")
    }));
    let up = server
        .uploads(SN)
        .into_iter()
        .find(|u| u.tablename.as_deref() == Some("user") && u.endpoint == "/iclock/cdata")
        .unwrap();
    assert!(up.accepted);
    assert_eq!(up.query_value("count"), Some("1"));
    assert_eq!(up.count_matches, Some(true));
    assert_eq!(up.records[0].get("pin"), Some("2"));
    assert_eq!(up.records[0].get("name"), Some("Bob"));

    // ACCOUNT through the same server: the tgz arrives and is acknowledged.
    let account = server.queue_command(SN, "ACCOUNT transaction ContentType=tgz MaxIndex=0");
    assert!(server.wait_for(PATIENCE, |s| s
        .results(SN)
        .iter()
        .any(|r| r.id == account.to_string())));
    let r = server
        .results(SN)
        .into_iter()
        .find(|r| r.id == account.to_string())
        .unwrap();
    assert!(r.ret >= 2, "{r:?}");
    assert!(
        r.raw
            .contains("&transaction&StartTime=&EndTime=&RecordSum="),
        "{}",
        r.raw
    );
    firmware.stop();
}
