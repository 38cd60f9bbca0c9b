//! Each behaviour of shared/interop.md, reproduced by the reference server:
//! the device connects, runs a command, reports its result and uploads its
//! events all the same.

mod common;

use common::*;
use lintel::app::{Firmware, StartOptions};
use lintel::commands::{CommandContext, CommandExecutor, CommandOutcome};
use lintel::protocol::command::{Command, Verb};
use lintel_refserver::{
    AckMode, Approval, Framing, IdStyle, InitReply, LineEnding, RefServer, ServerConfig,
    TokenCheck, VersionKey,
};

/// Answers `ECHO` commands with Return = number of records in the command.
struct Echo;

impl CommandExecutor for Echo {
    fn handles(&self, verb: &Verb) -> bool {
        *verb == Verb::Other("ECHO".into()) || *verb == Verb::DataUpdate
    }
    fn execute(&mut self, c: &Command, _ctx: &mut CommandContext<'_>) -> CommandOutcome {
        let records = c.rest.split('\n').filter(|l| !l.trim().is_empty()).count();
        CommandOutcome::code(i64::try_from(records).unwrap_or(-1))
    }
}

fn start_device(server: &RefServer, extra: &str) -> (tempfile::TempDir, Firmware) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server.url(), dir.path(), extra);
    let mut opts = StartOptions::for_config(&cfg);
    opts.extra_executors.push(Box::new(Echo));
    (dir, Firmware::start(&cfg, opts).unwrap())
}

/// Runs a command and an event through a server configured by `tweak`.
fn round_trip(tweak: impl FnOnce(&mut ServerConfig)) -> RefServer {
    let mut cfg = quick_server_config();
    tweak(&mut cfg);
    let server = start_server(cfg);
    let (dir, fw) = start_device(&server, "");
    let id = server.queue_command(SN, "ECHO a=1\nb=2\nc=3");
    let expected = log_events(dir.path(), 27, 3);
    fw.notify_outbox();
    let ok = server.wait_for(PATIENCE, |s| {
        s.results(SN).iter().any(|r| r.id == id.to_string())
            && s.rtlog(SN)
                .iter()
                .filter(|r| r.get("event") == Some("27"))
                .count()
                >= 3
    });
    fw.stop();
    assert!(ok, "round trip through {:?}", server.config());
    let r = server
        .results(SN)
        .into_iter()
        .find(|r| r.id == id.to_string())
        .unwrap();
    assert_eq!(r.ret, 3, "all three records reached the executor");
    assert_eq!(received_indexes(&server, "27")[..3], expected[..]);
    server
}

#[test]
fn line_endings_of_every_kind() {
    for ending in [
        LineEnding::Lf,
        LineEnding::CrLf,
        LineEnding::CrLfLf,
        LineEnding::Mixed,
    ] {
        for final_newline in [false, true] {
            round_trip(|c| {
                c.line_ending = ending;
                c.final_newline = final_newline;
            });
        }
    }
}

#[test]
fn close_delimited_and_chunked_bodies_and_odd_charsets() {
    round_trip(|c| c.framing = Framing::CloseDelimited);
    round_trip(|c| c.framing = Framing::Chunked);
    round_trip(|c| c.content_type = "text/plain;charset=ISO-8859-1".into());
}

#[test]
fn init_reply_block_without_registry_or_push_endpoints() {
    let server = round_trip(|c| {
        c.init_reply = InitReply::AlwaysBlock;
        c.missing_endpoints = vec!["/iclock/registry".into(), "/iclock/push".into()];
    });
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path == "/iclock/registry" && r.status == 404));
}

#[test]
fn init_always_ok_and_a_restarted_server_that_forgot_the_device() {
    round_trip(|c| c.init_reply = InitReply::AlwaysOk);
    let server = start_server(quick_server_config());
    let (_dir, fw) = start_device(&server, "");
    assert!(wait_online(&server));
    server.forget_registrations();
    let before = server
        .requests()
        .iter()
        .filter(|r| r.path == "/iclock/registry")
        .count();
    assert!(server.wait_for(PATIENCE, |s| {
        s.requests()
            .iter()
            .filter(|r| r.path == "/iclock/registry")
            .count()
            > before
            && s.requests()
                .last()
                .is_some_and(|r| r.path == "/iclock/getrequest" && r.status == 200)
    }));
    fw.stop();
}

#[test]
fn rotating_session_ids_and_registry_codes() {
    let server = round_trip(|c| {
        c.rotate_session_on_push = true;
        c.rotate_session_on_init = true;
    });
    let after_push: Vec<_> = server
        .requests()
        .into_iter()
        .skip_while(|r| r.path != "/iclock/push")
        .skip(1)
        .filter(|r| {
            r.path.starts_with("/iclock/") && r.path != "/iclock/cdata"
                || r.query_value("table").is_some()
        })
        .collect();
    assert!(after_push
        .iter()
        .all(|r| r.token == Some(TokenCheck::Valid)));
}

#[test]
fn servers_that_check_no_token() {
    round_trip(|c| c.token_check = false);
}

#[test]
fn unknown_serial_401_then_known() {
    let mut cfg = quick_server_config();
    cfg.known_serials = Some(vec!["OTHER".into()]);
    let server = start_server(cfg);
    let (_dir, fw) = start_device(&server, "");
    assert!(server.wait_for(PATIENCE, |s| s
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .count()
        >= 2));
    server.update_config(|c| c.known_serials = None);
    assert!(wait_online(&server));
    fw.stop();
}

#[test]
fn refused_registration_406_until_approved() {
    let mut cfg = quick_server_config();
    cfg.approval = Approval::Manual;
    let server = start_server(cfg);
    let (_dir, fw) = start_device(&server, "");
    assert!(server.wait_for(PATIENCE, |s| s
        .requests()
        .iter()
        .filter(|r| r.status == 406)
        .count()
        >= 2));
    server.approve_serial(SN);
    assert!(wait_online(&server));
    fw.stop();
}

#[test]
fn missing_ping_endpoint_does_not_stop_uploads() {
    round_trip(|c| c.missing_endpoints = vec!["/iclock/ping".into()]);
}

#[test]
fn push_version_key_extra_keys_and_cookies() {
    round_trip(|c| {
        c.version_key = VersionKey::PushVersion;
        c.push_prot_ver = "3.0.1".into();
        c.extra_config = vec![
            ("FancyNewKey".into(), "1".into()),
            ("AnotherOne".into(), "x=y".into()),
        ];
        c.extra_set_cookies = vec!["JSESSIONID=abc; Path=/".into(), "lb=7".into()];
    });
}

#[test]
fn only_the_token_cookie_is_sent_even_when_servers_set_others() {
    let server = round_trip(|c| c.extra_set_cookies = vec!["lb=7; Path=/".into()]);
    for r in server.requests() {
        for (k, v) in &r.headers {
            if k.eq_ignore_ascii_case("cookie") {
                assert!(v.starts_with("token=") && !v.contains(';'), "{v}");
            }
        }
    }
}

#[test]
fn time_based_ids_and_one_command_per_poll() {
    let mut cfg = quick_server_config();
    cfg.id_style = IdStyle::TimeBased;
    cfg.max_commands_per_poll = Some(1);
    let server = start_server(cfg);
    let (_dir, fw) = start_device(&server, "");
    let ids: Vec<u64> = (0..3)
        .map(|_| server.queue_command(SN, "ECHO x=1"))
        .collect();
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= 3));
    fw.stop();
    let got: Vec<String> = server.results(SN).into_iter().map(|r| r.id).collect();
    for id in ids {
        assert!(got.contains(&id.to_string()));
    }
}

#[test]
fn tab_after_table_name_and_spaces_between_fields() {
    let server = start_server(quick_server_config());
    let (_dir, fw) = start_device(&server, "");
    let a = server.queue_command(SN, "DATA UPDATE\tuser\tPin=1\tName=Ann Lee\nPin=2\tName=Bo");
    let b = server.queue_command(SN, "DATA UPDATE user Pin=1 Name=Ann Lee Privilege=0");
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= 2));
    fw.stop();
    let results = server.results(SN);
    let ret = |id: u64| results.iter().find(|r| r.id == id.to_string()).unwrap().ret;
    assert_eq!((ret(a), ret(b)), (2, 1));
}

#[test]
fn devicecmd_first_result_only_servers_get_one_result_per_post() {
    let mut cfg = quick_server_config();
    cfg.devicecmd_first_result_only = true;
    cfg.request_delay = 30;
    let server = start_server(cfg);
    let (_dir, fw) = start_device(&server, "");
    for _ in 0..4 {
        server.queue_command(SN, "ECHO x=1");
    }
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= 4));
    fw.stop();
}

#[test]
fn every_upload_acknowledgement_form() {
    for mode in [
        AckMode::Spec,
        AckMode::Ok,
        AckMode::OkCount,
        AckMode::TableCount,
        AckMode::EchoQueryCount,
    ] {
        round_trip(|c| c.ack_mode = mode.clone());
    }
}

#[test]
fn a_2xx_with_an_error_text_is_not_accepted_and_is_retried() {
    let server = start_server(quick_server_config());
    let (dir, fw) = start_device(&server, "");
    assert!(wait_online(&server));
    server.update_config(|c| c.ack_mode = AckMode::ErrorText("ERROR: database busy".into()));
    let expected = log_events(dir.path(), 27, 2);
    fw.notify_outbox();
    assert!(server.wait_for(PATIENCE, |s| s
        .uploads(SN)
        .iter()
        .filter(|u| !u.accepted)
        .count()
        >= 2));
    server.update_config(|c| c.ack_mode = AckMode::Spec);
    assert!(server.wait_for(PATIENCE, |s| {
        s.rtlog(SN)
            .iter()
            .filter(|r| r.get("event") == Some("27"))
            .count()
            >= 2
    }));
    fw.stop();
    assert_eq!(received_indexes(&server, "27"), expected);
}
