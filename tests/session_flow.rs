//! Whole-session flows against the reference server: connection,
//! registration, token, polling, commands and results.

mod common;

use common::*;
use lintel::app::{Firmware, StartOptions};
use lintel::commands::{CommandContext, CommandExecutor, CommandOutcome};
use lintel::protocol::command::{Command, Verb};
use lintel_refserver::{CmdFormat, CmdFormatChoice, ServerConfig, TokenCheck};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn first_connection_registers_pushes_and_polls_with_the_token() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    fw.stop();

    let reqs: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.sn() == Some(SN))
        .collect();
    let init = &reqs[0];
    assert_eq!(
        (init.method.as_str(), init.path.as_str()),
        ("GET", "/iclock/cdata")
    );
    assert_eq!(init.query_value("options"), Some("all"));
    assert_eq!(init.query_value("pushver"), Some("3.1.2"));
    assert_eq!(reqs[1].path, "/iclock/registry");
    assert_eq!(reqs[2].path, "/iclock/push");
    let reg = server.registration(SN).expect("registered");
    for (k, v) in [
        ("DeviceType", "acc"),
        ("LockCount", "4"),
        ("ReaderCount", "4"),
        ("AuxInCount", "4"),
        ("AuxOutCount", "4"),
    ] {
        assert_eq!(reg.get(k), Some(v), "{k}");
    }
    // Every request after the configuration download carries the valid token.
    for r in &reqs[3..] {
        assert_eq!(r.token, Some(TokenCheck::Valid), "{} {:?}", r.path, r.query);
        let cookies: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .collect();
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].1.starts_with("token="), "{:?}", cookies[0]);
    }
}

#[test]
fn getrequest_is_polled_every_request_delay() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(server.wait_for(PATIENCE, |s| {
        s.requests_from(SN)
            .filter(|r| r.path == "/iclock/getrequest")
            .count()
            >= 3
    }));
    fw.stop();
    let polls: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/iclock/getrequest")
        .collect();
    assert!(polls.len() >= 3);
}

/// Counts how often it runs; answers Return=7.
struct CountingExecutor(Arc<AtomicUsize>);

impl CommandExecutor for CountingExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        *verb == Verb::Other("COUNTME".into())
    }
    fn execute(&mut self, _c: &Command, _ctx: &mut CommandContext<'_>) -> CommandOutcome {
        self.0.fetch_add(1, Ordering::SeqCst);
        CommandOutcome::code(7)
    }
}

fn start_with_counter(
    server_cfg: ServerConfig,
    extra: &str,
) -> (
    lintel_refserver::RefServer,
    tempfile::TempDir,
    Firmware,
    Arc<AtomicUsize>,
) {
    let server = start_server(server_cfg);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server.url(), dir.path(), extra);
    let count = Arc::new(AtomicUsize::new(0));
    let mut opts = StartOptions::for_config(&cfg);
    opts.extra_executors
        .push(Box::new(CountingExecutor(count.clone())));
    let fw = Firmware::start(&cfg, opts).unwrap();
    (server, dir, fw, count)
}

#[test]
fn commands_in_both_formats_unknown_and_known_get_results() {
    for format in [CmdFormat::Plain, CmdFormat::Prefixed] {
        let mut cfg = quick_server_config();
        cfg.cmd_format = CmdFormatChoice::Force(format);
        let (server, _dir, fw, count) = start_with_counter(cfg, "");
        let a = server.queue_command(SN, "COUNTME");
        let b = server.queue_command(SN, "FROBNICATE NOW");
        let c = server.queue_command(SN, "ENROLL_FP PIN=1");
        assert!(
            server.wait_for(PATIENCE, |s| s.results(SN).len() >= 3),
            "{format:?}"
        );
        fw.stop();
        let results = server.results(SN);
        let ret = |id: u64| {
            results
                .iter()
                .find(|r| r.id == id.to_string())
                .map(|r| (r.ret, r.cmd.clone()))
        };
        assert_eq!(ret(a), Some((7, "COUNTME".into())), "{format:?}");
        assert_eq!(ret(b), Some((-13, "FROBNICATE NOW".into())), "{format:?}");
        assert_eq!(ret(c).map(|r| r.0), Some(-708), "{format:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn results_are_posted_one_per_request_by_default_and_batched_when_configured() {
    for (extra, batched) in [("", false), ("batch_results = true", true)] {
        let mut cfg = quick_server_config();
        cfg.request_delay = 30; // the first poll takes all three
        let (server, _dir, fw, _count) = start_with_counter(cfg, extra);
        for _ in 0..3 {
            server.queue_command(SN, "COUNTME");
        }
        assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= 3));
        fw.stop();
        let posts: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/iclock/devicecmd")
            .collect();
        let lines: Vec<usize> = posts
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).lines().count())
            .collect();
        if batched {
            assert!(lines.iter().any(|&n| n > 1), "{lines:?}");
        } else {
            assert!(lines.iter().all(|&n| n == 1), "{lines:?}");
        }
        for line in posts.iter().flat_map(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }) {
            assert!(
                line.starts_with("ID=") && line.contains("&Return=7&CMD=COUNTME"),
                "{line}"
            );
        }
    }
}

#[test]
fn a_command_id_seen_again_is_not_executed_again() {
    let mut cfg = quick_server_config();
    cfg.resend_until_result = false;
    let (server, _dir, fw, count) = start_with_counter(cfg, "");
    server.queue_command_with_id(SN, "900000000000001", "COUNTME");
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() == 1));
    server.queue_command_with_id(SN, "900000000000001", "COUNTME");
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() == 2));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let results = server.results(SN);
    assert_eq!(results[0].raw, results[1].raw);
    // A server that numbers from 1 again: the same ID with another text is
    // a new command and runs.
    server.queue_command_with_id(SN, "900000000000001", "COUNTME a=2");
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() == 3));
    fw.stop();
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn malformed_and_hostile_command_text_gets_defined_answers() {
    let (server, _dir, fw, count) = start_with_counter(quick_server_config(), "");
    let ids = [
        server.queue_command(SN, ""),
        server.queue_command(SN, "DATA"),
        server.queue_command(SN, "&&&===\u{0}\u{7f}"),
        server.queue_command(SN, &"X".repeat(100_000)),
        server.queue_command(SN, "COUNTME"),
    ];
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= ids.len()));
    fw.stop();
    let results = server.results(SN);
    for id in &ids[..4] {
        let r = results
            .iter()
            .find(|r| r.id == id.to_string())
            .expect("answered");
        assert!(r.ret < 0, "{r:?}");
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the queue moved on to the last command"
    );
}

#[test]
fn the_server_date_header_keeps_the_device_clock() {
    // Two minutes ahead: a small correction, applied by the Date header
    // alone (no rtdata on this server). Wild and large steps: time_sync.rs.
    let mut cfg = quick_server_config();
    cfg.clock = lintel_refserver::Clock::OffsetSecs(120);
    cfg.missing_endpoints = vec!["/iclock/rtdata".into()];
    let server = start_server(cfg);
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    assert!(wait_online(&server));
    let ahead = (fw.clock.now_utc() - chrono::Utc::now()).num_seconds();
    fw.stop();
    assert!((110..130).contains(&ahead), "{ahead}");
}

/// Runs `GET OPTIONS <names>` through the session on `platform` (the
/// board's default when `None`); returns the server and the uploaded list.
fn get_options(
    names: &str,
    platform: Option<Arc<dyn lintel::platform::Platform>>,
) -> (lintel_refserver::RefServer, String) {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server.url(), dir.path(), "");
    let mut opts = StartOptions::for_config(&cfg);
    if let Some(platform) = platform {
        opts.platform = platform;
    }
    let fw = Firmware::start(&cfg, opts).unwrap();
    let id = server.queue_command(SN, &format!("GET OPTIONS {names}"));
    assert!(server.wait_for(PATIENCE, |s| s
        .results(SN)
        .iter()
        .any(|r| r.id == id.to_string() && r.ret == 0)));
    fw.stop();
    let upload = server
        .uploads(SN)
        .into_iter()
        .find(|u| u.endpoint == "/iclock/querydata" && u.query_value("type") == Some("options"))
        .expect("options uploaded");
    let body = String::from_utf8_lossy(&upload.raw).into_owned();
    (server, body)
}

#[test]
fn get_options_answers_the_facts_announced_at_registration() {
    let (server, body) = get_options(
        "LockCount,ReaderCount,FirmVer,~DeviceName,MultiBioDataSupport",
        None,
    );
    for part in [
        "LockCount=4",
        "ReaderCount=4",
        "FirmVer=0.1.0",
        "~DeviceName=lintel",
    ] {
        assert!(body.contains(part), "{part} in {body}");
    }
    let reg = server.registration(SN).unwrap();
    assert_eq!(
        reg.get("MultiBioDataSupport"),
        Some(lintel::commands::data::bio::DEVICE_MULTI_BIO_DATA_SUPPORT)
    );
}

#[test]
fn get_options_answers_the_addresses_of_the_interface_that_reaches_the_server() {
    // The simulated board's fixed interface.
    let names = "IPAddress,NetMask,GATEIPAddress,MAC,LockCount";
    let sim = Arc::new(lintel::platform::RecordingPlatform::new());
    let (_, body) = get_options(names, Some(sim));
    assert_eq!(
        body,
        "IPAddress=192.0.2.10,NetMask=255.255.255.0,GATEIPAddress=192.0.2.1,MAC=02:00:00:00:00:01,LockCount=4"
    );
    // The Linux lookup toward the server on 127.0.0.1: the loopback
    // address, and no subnet route, gateway or MAC to tell, so those are
    // left out rather than answered wrong.
    let (_, body) = get_options(
        names,
        Some(Arc::new(lintel::platform::SystemPlatform::default())),
    );
    assert_eq!(body, "IPAddress=127.0.0.1,LockCount=4");
}

#[test]
fn device_parameters_are_pushed_when_configured() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), "push_options = true"));
    assert!(server.wait_for(PATIENCE, |s| s
        .uploads(SN)
        .iter()
        .any(|u| u.table.as_deref() == Some("options"))));
    fw.stop();
    let upload = server
        .uploads(SN)
        .into_iter()
        .find(|u| u.table.as_deref() == Some("options"))
        .unwrap();
    assert!(upload.accepted);
    assert_eq!(upload.token, lintel_refserver::TokenCheck::Valid);
    let body = String::from_utf8_lossy(&upload.raw).into_owned();
    assert!(body.starts_with("~DeviceName=lintel,"), "{body}");
    assert!(body.contains("FWVersion=0.1.0"), "{body}");
}
