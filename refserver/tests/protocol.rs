//! The strict server's protocol behaviour over real sockets.

mod common;

use std::io::{BufReader, Write};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use lintel_refserver::*;

fn start() -> RefServer {
    RefServer::start(ServerConfig::default()).unwrap()
}

#[test]
fn registration_flow_and_tokens() {
    let server = start();
    let addr = server.addr();
    let init = send(
        addr,
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all&pushver=3.1.2"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!((init.status, init.text().as_str()), (200, "OK"));
    assert!(httpdate::parse_http_date(init.header("Date").unwrap()).is_ok());

    let push_early = send(addr, "POST", &format!("/iclock/push?SN={SN}"), None, b"").unwrap();
    assert_eq!(push_early.status, 406);
    assert!(push_early.text().contains("<html>"));

    let reg = send(
        addr,
        "POST",
        &format!("/iclock/registry?SN={SN}"),
        None,
        CAPS.as_bytes(),
    )
    .unwrap();
    assert_eq!(reg.status, 200);
    let code = reg.value("RegistryCode").unwrap();
    let registration = server.registration(SN).unwrap();
    assert_eq!(registration.registry_code, code);
    assert_eq!(registration.get("DeviceName"), Some("lintel"));
    assert_eq!(registration.get("LockCount"), Some("2"));
    let session = server.session(SN).unwrap();
    assert!(reg
        .headers_named("Set-Cookie")
        .iter()
        .any(|c| c.contains(&session.session_id)));

    let bad_push = send(
        addr,
        "POST",
        &format!("/iclock/push?SN={SN}"),
        Some("0123"),
        b"",
    )
    .unwrap();
    assert_eq!(bad_push.status, 401);
    let push = send(
        addr,
        "POST",
        &format!("/iclock/push?SN={SN}"),
        Some(&md5_hex(&format!("{code}{SN}"))),
        b"",
    )
    .unwrap();
    assert_eq!(push.status, 200);
    for key in [
        "ServerVersion",
        "ServerName",
        "PushProtVer",
        "ErrorDelay",
        "RequestDelay",
        "TransTimes",
        "TransInterval",
        "TransTables",
        "Realtime",
        "SessionID",
        "TimeoutSec",
        "BioPhotoFun",
        "BioDataFun",
        "MultiBioDataSupport",
        "MultiBioPhotoSupport",
    ] {
        assert!(
            push.value(key).is_some(),
            "push reply lacks {key}: {}",
            push.text()
        );
    }
    let sid = push.value("SessionID").unwrap();
    let token = md5_hex(&format!("{code}{SN}{sid}"));
    assert_eq!(server.expected_token(SN).as_deref(), Some(token.as_str()));

    // Registered now: init answers the registry=ok block with the same values.
    let init = send(
        addr,
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all"),
        None,
        b"",
    )
    .unwrap();
    assert!(init.text().starts_with("registry=ok\n"));
    assert_eq!(init.value("RegistryCode").as_deref(), Some(code.as_str()));
    assert_eq!(init.value("SessionID").as_deref(), Some(sid.as_str()));

    let ok = send(
        addr,
        "GET",
        &format!("/iclock/getrequest?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!((ok.status, ok.text().as_str()), (200, "OK"));
    let wrong = send(
        addr,
        "GET",
        &format!("/iclock/getrequest?SN={SN}"),
        Some("deadbeef"),
        b"",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    let missing = send(addr, "GET", &format!("/iclock/ping?SN={SN}"), None, b"").unwrap();
    assert_eq!(missing.status, 401);
    let ping = send(
        addr,
        "GET",
        &format!("/iclock/ping?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!((ping.status, ping.text().as_str()), (200, "OK"));

    let log = server.requests();
    let tokens: Vec<Option<TokenCheck>> = log
        .iter()
        .filter(|r| r.path != "/iclock/cdata")
        .skip(4)
        .map(|r| r.token)
        .collect();
    assert_eq!(
        tokens,
        vec![
            Some(TokenCheck::Valid),
            Some(TokenCheck::Invalid),
            Some(TokenCheck::Missing),
            Some(TokenCheck::Valid)
        ]
    );
    assert!(log.last().unwrap().token_ok());
}

#[test]
fn token_check_off_accepts_anything_but_records_it() {
    let server = RefServer::start(ServerConfig {
        token_check: false,
        ..ServerConfig::default()
    })
    .unwrap();
    let r = send(server.addr(), "GET", "/iclock/ping?SN=X", None, b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(server.requests()[0].token, Some(TokenCheck::Missing));
}

#[test]
fn registry_validation_and_manual_approval() {
    let server = RefServer::start(ServerConfig {
        approval: Approval::Manual,
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let refused = send(
        addr,
        "POST",
        &format!("/iclock/registry?SN={SN}"),
        None,
        CAPS.as_bytes(),
    )
    .unwrap();
    assert_eq!(refused.status, 406);
    assert!(refused.text().contains(&format!("approve serial {SN}")));
    server.approve_serial(SN);
    let short = send(
        addr,
        "POST",
        &format!("/iclock/registry?SN={SN}"),
        None,
        b"DeviceType=acc,LockCount=1",
    )
    .unwrap();
    assert_eq!(short.status, 406);
    assert!(short.text().contains("ReaderCount"));
    assert!(server.registration(SN).is_none());
    let ok = send(
        addr,
        "POST",
        &format!("/iclock/registry?SN={SN}"),
        None,
        CAPS.as_bytes(),
    )
    .unwrap();
    assert_eq!(ok.status, 200);
    assert!(server.registration(SN).is_some());
}

#[test]
fn commands_plain_format_results_and_resend() {
    let server = start();
    let token = register(&server, SN, CAPS);
    let a = server.queue_command(SN, "CONTROL DEVICE 01010105");
    server.queue_command_with_id(SN, "1700000000123", "DATA UPDATE user\tPin=1");
    let poll = || {
        send(
            server.addr(),
            "GET",
            &format!("/iclock/getrequest?SN={SN}"),
            Some(&token),
            b"",
        )
        .unwrap()
        .text()
    };
    let expected =
        format!("C:{a}:CONTROL DEVICE 01010105\nC:1700000000123:DATA UPDATE user\tPin=1");
    assert_eq!(poll(), expected);
    // Not answered yet: sent again.
    assert_eq!(poll(), expected);
    let body = format!(
        "ID={a}&Return=0&CMD=CONTROL DEVICE\nID=1700000000123&Return=-1002&CMD=DATA UPDATE"
    );
    let r = send(
        server.addr(),
        "POST",
        &format!("/iclock/devicecmd?SN={SN}"),
        Some(&token),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    let results = server.results(SN);
    assert_eq!(results.len(), 2);
    assert_eq!(
        (
            results[0].id.as_str(),
            results[0].ret,
            results[0].cmd.as_str()
        ),
        (a.to_string().as_str(), 0, "CONTROL DEVICE")
    );
    assert_eq!(results[1].ret, -1002);
    assert!(results.iter().all(|r| r.was_queued));
    assert_eq!(poll(), "OK");
}

#[test]
fn one_per_poll_and_no_resend() {
    let server = RefServer::start(ServerConfig {
        max_commands_per_poll: Some(1),
        resend_until_result: false,
        ..ServerConfig::default()
    })
    .unwrap();
    let token = register(&server, SN, CAPS);
    let a = server.queue_command(SN, "A");
    let b = server.queue_command(SN, "B");
    let poll = || {
        send(
            server.addr(),
            "GET",
            &format!("/iclock/getrequest?SN={SN}"),
            Some(&token),
            b"",
        )
        .unwrap()
        .text()
    };
    assert_eq!(poll(), format!("C:{a}:A"));
    assert_eq!(poll(), format!("C:{b}:B"));
    assert_eq!(poll(), "OK");
    assert_eq!(server.pending_commands(SN).len(), 2);
}

#[test]
fn prefixed_format_when_registered_with_cmdformat_1() {
    let server = RefServer::start(ServerConfig {
        line_ending: LineEnding::CrLf,
        final_newline: true,
        ..ServerConfig::default()
    })
    .unwrap();
    let token = register(&server, SN, &format!("{CAPS},CmdFormat=1"));
    let a = server.queue_command(SN, "DATA COUNT user");
    let b = server.queue_command(SN, "GET OPTIONS LockCount");
    let r = send(
        server.addr(),
        "GET",
        &format!("/iclock/getrequest?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(
        r.text(),
        format!(
            "DataType=1,SN={SN},Priority=0,CmdID={a},CmdDesc=C:{a}:DATA COUNT user\r\nDataType=1,SN={SN},Priority=0,CmdID={b},CmdDesc=C:{b}:GET OPTIONS LockCount\r\n"
        )
    );
}

#[test]
fn first_result_only_mode() {
    let server = RefServer::start(ServerConfig {
        devicecmd_first_result_only: true,
        ..ServerConfig::default()
    })
    .unwrap();
    let token = register(&server, SN, CAPS);
    let body = b"ID=1&Return=0&CMD=DATA\nID=2&Return=0&CMD=DATA";
    send(
        server.addr(),
        "POST",
        &format!("/iclock/devicecmd?SN={SN}"),
        Some(&token),
        body,
    )
    .unwrap();
    let ids: Vec<String> = server.results(SN).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["1"]);
    let bad = send(
        server.addr(),
        "POST",
        &format!("/iclock/devicecmd?SN={SN}"),
        Some(&token),
        b"ID=3&Return=oops",
    )
    .unwrap();
    assert_eq!(bad.status, 400);
}

const RTLOG: &str = "time=2024-01-02 03:04:05\tpin=1\tcardno=123\tsitecode=0\tlinkid=0\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=4\tindex=1\n\
time=2024-01-02 03:04:06\tpin=0\tcardno=999\tsitecode=0\tlinkid=0\teventaddr=1\tevent=27\tinoutstatus=0\tverifytype=4\tindex=2\n";

#[test]
fn uploads_are_parsed_and_acked_per_mode() {
    let server = start();
    let token = register(&server, SN, CAPS);
    let post = |target: &str, body: &str| {
        send(
            server.addr(),
            "POST",
            &format!("{target}&SN={SN}"),
            Some(&token),
            body.as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(post("/iclock/cdata?table=rtlog", RTLOG).text(), "OK");
    let rt = server.rtlog(SN);
    assert_eq!(rt.len(), 2);
    assert_eq!(rt[1].get("event"), Some("27"));
    assert_eq!(rt[0].get("pin"), Some("1"));

    let users = "user uid=1\tcardno=\tpin=1\tname=Ann B\nuser\tuid=2\tcardno=\tpin=2\tname=\n";
    assert_eq!(
        post(
            "/iclock/cdata?table=tabledata&tablename=user&count=2",
            users
        )
        .text(),
        "user=2"
    );
    let up = server.uploads(SN).pop().unwrap();
    assert_eq!(up.records[0].get("name"), Some("Ann B"));
    assert_eq!(up.count_matches, Some(true));

    let mismatch = post(
        "/iclock/cdata?table=tabledata&tablename=user&count=3",
        users,
    );
    assert_eq!(mismatch.status, 400);
    assert!(!server.uploads(SN).pop().unwrap().accepted);
    let no_prefix = post(
        "/iclock/cdata?table=tabledata&tablename=user&count=1",
        "uid=1\tpin=1",
    );
    assert_eq!(no_prefix.status, 400);
    // ATTPHOTO records have no table-name prefix (10.9).
    let photo = post(
        "/iclock/cdata?table=tabledata&tablename=ATTPHOTO&count=1",
        "pin=snap1.jpg\tsn=X\tsize=3\tphoto=QUJD",
    );
    assert_eq!(photo.status, 200);
    assert_eq!(
        server.uploads(SN).pop().unwrap().records[0].get("photo"),
        Some("QUJD")
    );

    let opts = post(
        "/iclock/cdata?table=options",
        "~DeviceName=x,LockCount=2,IPAddress=1.2.3.4",
    );
    assert_eq!(opts.text(), "OK");
    assert_eq!(
        server.uploads(SN).pop().unwrap().records[0].get("LockCount"),
        Some("2")
    );

    for (mode, expected) in [
        (AckMode::Ok, "OK".to_string()),
        (AckMode::OkCount, "OK: 2".to_string()),
        (AckMode::TableCount, "rtlog=2".to_string()),
        (
            AckMode::ErrorText("ERROR: db".into()),
            "ERROR: db".to_string(),
        ),
    ] {
        server.update_config(|c| c.ack_mode = mode.clone());
        assert_eq!(post("/iclock/cdata?table=rtlog", RTLOG).text(), expected);
    }
    assert!(!server.uploads(SN).pop().unwrap().accepted);
    server.update_config(|c| {
        c.ack_mode = AckMode::EchoQueryCount;
        c.reject_count_mismatch = false;
    });
    assert_eq!(
        post(
            "/iclock/cdata?table=tabledata&tablename=user&count=7",
            users
        )
        .text(),
        "user=7"
    );
    // rtlog records from the ErrorText upload are not counted as accepted.
    assert_eq!(server.rtlog(SN).len(), 2 + 3 * 2);
}

#[test]
fn querydata_count_tabledata_options_and_account() {
    let server = start();
    let token = register(&server, SN, CAPS);
    let post = |q: &str, body: &[u8]| {
        send(
            server.addr(),
            "POST",
            &format!("/iclock/querydata?SN={SN}&{q}"),
            Some(&token),
            body,
        )
        .unwrap()
    };
    assert_eq!(
        post(
            "type=count&cmdid=288&tablename=user&count=1&packcnt=1&packidx=1",
            b"user=5"
        )
        .text(),
        "OK"
    );
    let q = post(
        "type=tabledata&cmdid=415&tablename=user&count=2&packcnt=1&packidx=1",
        b"user uid=1\tpin=1\nuser uid=2\tpin=2",
    );
    assert_eq!(q.text(), "user=2");
    assert_eq!(
        post(
            "type=options&cmdid=408&tablename=options&count=1&packcnt=1&packidx=1",
            b"LockCount=2,ReaderCount=4"
        )
        .text(),
        "OK"
    );
    let account = post(
        "type=tabledata&cmdid=291&tablename=transaction&count=41&datafmt=3&Stamp=9999",
        b"name=transaction.tgz\nsize=636\ndatacode=base64\ndatatype=tgz\0SGVsbG8=",
    );
    assert_eq!(account.text(), "transaction=41");
    let ups = server.uploads(SN);
    assert_eq!(ups[0].records[0].get("user"), Some("5"));
    assert_eq!(ups[1].records.len(), 2);
    assert_eq!(ups[2].records[0].get("ReaderCount"), Some("4"));
    assert_eq!(ups[3].records[0].get("size"), Some("636"));
    assert!(ups[3].raw.ends_with(b"SGVsbG8="));
    assert_eq!(ups[3].query_value("cmdid"), Some("291"));

    let file = send(
        server.addr(),
        "POST",
        &format!(
            "/iclock/file?SN={SN}&cmdid=5&fileseq=1&contenttype=tgz&table=transaction&count=3"
        ),
        Some(&token),
        b"\x1f\x8bTGZ",
    )
    .unwrap();
    assert_eq!(file.status, 200);
    let last = server.uploads(SN).pop().unwrap();
    assert_eq!(
        (last.endpoint.as_str(), last.raw.as_slice()),
        ("/iclock/file", b"\x1f\x8bTGZ".as_slice())
    );
}

#[test]
fn init_variants_rotation_and_forgetting() {
    let server = RefServer::start(ServerConfig {
        init_reply: InitReply::AlwaysBlock,
        version_key: VersionKey::PushVersion,
        extra_config: vec![("FooBar".into(), "1".into())],
        extra_set_cookies: vec!["csrftoken=abc; Path=/".into()],
        clock: Clock::Fixed(UNIX_EPOCH + Duration::from_secs(1_500_000_000)),
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let init = send(
        addr,
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(init.value("registry").as_deref(), Some("ok"));
    assert!(init.value("PushVersion").is_some() && init.value("PushProtVer").is_none());
    assert_eq!(init.value("FooBar").as_deref(), Some("1"));
    assert_eq!(init.header("Set-Cookie"), Some("csrftoken=abc; Path=/"));
    assert_eq!(init.header("Date"), Some("Fri, 14 Jul 2017 02:40:00 GMT"));
    let code = init.value("RegistryCode").unwrap();
    let sid = init.value("SessionID").unwrap();
    let token = md5_hex(&format!("{code}{SN}{sid}"));
    assert_eq!(
        send(
            addr,
            "GET",
            &format!("/iclock/ping?SN={SN}"),
            Some(&token),
            b""
        )
        .unwrap()
        .status,
        200
    );

    let new_sid = server.rotate_session(SN).unwrap();
    assert_ne!(new_sid, sid);
    assert_eq!(
        send(
            addr,
            "GET",
            &format!("/iclock/ping?SN={SN}"),
            Some(&token),
            b""
        )
        .unwrap()
        .status,
        401
    );

    server.update_config(|c| {
        c.rotate_session_on_push = true;
        c.init_reply = InitReply::Spec;
    });
    let p1 = send(addr, "POST", &format!("/iclock/push?SN={SN}"), None, b"")
        .unwrap()
        .value("SessionID");
    let p2 = send(addr, "POST", &format!("/iclock/push?SN={SN}"), None, b"")
        .unwrap()
        .value("SessionID");
    assert_ne!(p1, p2);

    server.forget_registrations();
    let init = send(
        addr,
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(init.text(), "OK");
}

#[test]
fn unknown_serial_missing_endpoint_and_rtdata() {
    let server = RefServer::start(ServerConfig {
        known_serials: Some(vec![SN.to_string()]),
        missing_endpoints: vec!["/iclock/ping".into()],
        clock: Clock::Fixed(UNIX_EPOCH + Duration::from_secs(946_684_800 + 61)),
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let other = send(addr, "GET", "/iclock/cdata?SN=OTHER&options=all", None, b"").unwrap();
    assert_eq!(other.status, 401);
    let token = register(&server, SN, CAPS);
    assert_eq!(
        send(
            addr,
            "GET",
            &format!("/iclock/ping?SN={SN}"),
            Some(&token),
            b""
        )
        .unwrap()
        .status,
        404
    );
    assert_eq!(
        send(
            addr,
            "GET",
            &format!("/iclock/nothing?SN={SN}"),
            Some(&token),
            b""
        )
        .unwrap()
        .status,
        404
    );
    let rt = send(
        addr,
        "GET",
        &format!("/iclock/rtdata?SN={SN}&type=time"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(rt.text(), "DateTime=61,ServerTZ=+0000");
}

#[test]
fn framing_variants_keep_alive_and_chunked_requests() {
    let server = RefServer::start(ServerConfig {
        token_check: false,
        ..ServerConfig::default()
    })
    .unwrap();
    // Keep-alive: two requests on one connection, the second with a chunked body.
    let mut s = connect(server.addr()).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    s.write_all(&request_bytes("GET", "/iclock/ping?SN=A", None, b"", &[]))
        .unwrap();
    assert_eq!(read_reply(&mut reader).unwrap().text(), "OK");
    s.write_all(b"POST /iclock/cdata?SN=A&table=rtlog HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ntime\r\n5\r\n=1\tx=\r\n0\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut reader).unwrap().text(), "OK");
    assert_eq!(server.rtlog("A")[0].get("time"), Some("1"));

    server.update_config(|c| c.framing = Framing::CloseDelimited);
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert!(r.header("Content-Length").is_none());
    assert_eq!(
        (r.header("Connection"), r.text().as_str()),
        (Some("close"), "OK")
    );
    server.update_config(|c| c.framing = Framing::Chunked);
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(
        (r.header("Transfer-Encoding"), r.text().as_str()),
        (Some("chunked"), "OK")
    );
}

#[test]
fn range_serving_for_upgrade() {
    let server = start();
    let token = register(&server, SN, CAPS);
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    server.serve_file("/fw/emfw.cfg", data.clone());
    let addr = server.addr();
    let whole = send(addr, "GET", "/fw/emfw.cfg", None, b"").unwrap();
    assert_eq!((whole.status, whole.body.len()), (200, 3000));
    let part = send_with(
        addr,
        "GET",
        "/fw/emfw.cfg",
        None,
        b"",
        &[("Range", "bytes=1000-1999")],
    )
    .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.header("Content-Range"), Some("bytes 1000-1999/3000"));
    assert_eq!(part.body, data[1000..2000]);
    let tail = send_with(
        addr,
        "GET",
        "/fw/emfw.cfg",
        None,
        b"",
        &[("Range", "bytes=2500-")],
    )
    .unwrap();
    assert_eq!(tail.body, data[2500..]);
    let bad = send_with(
        addr,
        "GET",
        "/fw/emfw.cfg",
        None,
        b"",
        &[("Range", "bytes=5000-")],
    )
    .unwrap();
    assert_eq!(
        (bad.status, bad.header("Content-Range")),
        (416, Some("bytes */3000"))
    );
    let via = send(
        addr,
        "GET",
        &format!("/iclock/file?SN={SN}&url=http://10.0.0.1:8088/fw/emfw.cfg"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(via.body, data);
    let absent = send(
        addr,
        "GET",
        &format!("/iclock/file?SN={SN}&url=http://h/none"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(absent.status, 404);
}

#[test]
fn initial_commands_and_admin_endpoints() {
    let server = RefServer::start(ServerConfig {
        admin: true,
        initial_commands: vec!["DATA UPDATE user Pin=1\tCardNo=123".into()],
        ..ServerConfig::default()
    })
    .unwrap();
    let token = register(&server, SN, CAPS);
    let addr = server.addr();
    let q = send(
        addr,
        "POST",
        &format!("/admin/queue?SN={SN}"),
        None,
        b"CONTROL DEVICE 01010105\nDATA UPDATE user Pin=2\\tCardNo=5",
    )
    .unwrap();
    assert_eq!(q.text().lines().count(), 2);
    let pending: Vec<String> = server
        .pending_commands(SN)
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(
        pending,
        vec![
            "DATA UPDATE user Pin=1\tCardNo=123",
            "CONTROL DEVICE 01010105",
            "DATA UPDATE user Pin=2\tCardNo=5"
        ]
    );
    send(
        addr,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=rtlog"),
        Some(&token),
        RTLOG.as_bytes(),
    )
    .unwrap();
    let ups = send(addr, "GET", &format!("/admin/uploads?SN={SN}"), None, b"").unwrap();
    assert!(ups.text().contains("pin=1\tcardno=123"));
    let serials = send(addr, "GET", "/admin/serials", None, b"").unwrap();
    assert_eq!(serials.text(), format!("{SN} registered\n"));
}

#[test]
fn wait_for_sees_requests_from_other_threads() {
    let server = start();
    let addr = server.addr();
    let t = std::thread::spawn(move || {
        send(addr, "GET", "/iclock/cdata?SN=W&options=all", None, b"").unwrap()
    });
    assert!(
        server.wait_for(Duration::from_secs(20), |s| s.requests_from("W").count()
            == 1)
    );
    t.join().unwrap();
    assert!(!server.wait_for(Duration::from_millis(1), |s| s.requests().len() > 1));
}

#[test]
fn odd_charset_time_ids_and_mixed_line_endings() {
    let server = RefServer::start(ServerConfig {
        content_type: "text/plain;charset=GB2312".into(),
        id_style: IdStyle::TimeBased,
        line_ending: LineEnding::Mixed,
        final_newline: true,
        ..ServerConfig::default()
    })
    .unwrap();
    let token = register(&server, SN, CAPS);
    let ids: Vec<u64> = (0..3)
        .map(|i| server.queue_command(SN, &format!("CMD{i}")))
        .collect();
    assert!(ids.iter().all(|&id| id > 1_000_000_000_000));
    let r = send(
        server.addr(),
        "GET",
        &format!("/iclock/getrequest?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(r.header("Content-Type"), Some("text/plain;charset=GB2312"));
    assert_eq!(
        r.text(),
        format!(
            "C:{}:CMD0\r\nC:{}:CMD1\nC:{}:CMD2\r\n",
            ids[0], ids[1], ids[2]
        )
    );
    server.update_config(|c| c.init_reply = InitReply::AlwaysOk);
    let init = send(
        server.addr(),
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(init.text(), "OK\r\n");
}

#[test]
fn deployed_server_behaviours_of_issue_10() {
    let server = RefServer::start(ServerConfig {
        rtlog_first_line_only: true,
        server_tz: Some("+0800".into()),
        extra_user_fields: vec![("SuperAuthorize".into(), "0".into())],
        clock: Clock::Fixed(UNIX_EPOCH + Duration::from_secs(946_684_800 + 61)),
        ..ServerConfig::default()
    })
    .unwrap();
    let token = register(&server, SN, CAPS);
    let addr = server.addr();

    // Only the first line of an rtlog POST is taken, whatever count= says.
    let r = send(
        addr,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=rtlog&count=2"),
        Some(&token),
        RTLOG.as_bytes(),
    )
    .unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    assert_eq!(server.rtlog(SN).len(), 1);
    assert_eq!(server.uploads(SN)[0].count_matches, None);

    // rtdata: GMT in Appendix 5 seconds and the configured zone.
    let rt = send(
        addr,
        "GET",
        &format!("/iclock/rtdata?SN={SN}&type=time"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(rt.text(), "DateTime=61,ServerTZ=+0800");
    let other = send(
        addr,
        "GET",
        &format!("/iclock/rtdata?SN={SN}&type=other"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(other.status, 400);

    // User records get the C3 fields on delivery; IDs start at 1 again
    // after a renumbering, with the old queue gone.
    let poll = || {
        send(
            addr,
            "GET",
            &format!("/iclock/getrequest?SN={SN}"),
            Some(&token),
            b"",
        )
        .unwrap()
        .text()
    };
    assert_eq!(server.queue_command(SN, "DATA UPDATE user Pin=1"), 1);
    assert_eq!(
        server.queue_command(SN, "DATA UPDATE userauthorize Pin=1"),
        2
    );
    assert_eq!(
        poll(),
        "C:1:DATA UPDATE user Pin=1\tSuperAuthorize=0\nC:2:DATA UPDATE userauthorize Pin=1"
    );
    server.renumber_commands();
    assert!(server.pending_commands(SN).is_empty());
    assert_eq!(
        server.queue_command(SN, "DATA DELETE userauthorize Pin=1"),
        1
    );
    assert_eq!(poll(), "C:1:DATA DELETE userauthorize Pin=1");
}
