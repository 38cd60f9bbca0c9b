//! Faults on demand and stop/restart on the same port.

mod common;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::time::Duration;

use common::*;
use lintel_refserver::*;

fn open_server() -> RefServer {
    RefServer::start(ServerConfig {
        token_check: false,
        ..ServerConfig::default()
    })
    .unwrap()
}

const RTLOG: &[u8] = b"time=2024-01-02 03:04:05\tpin=1\tevent=0\n";

#[test]
fn status_fault_counts_down_and_targets_one_table() {
    let server = open_server();
    server.set_fault(
        Fault::new(FaultKind::Status(500))
            .on_path("/iclock/cdata")
            .with_query("table", "rtlog")
            .times(2),
    );
    let addr = server.addr();
    let rtstate = send(
        addr,
        "POST",
        "/iclock/cdata?SN=A&table=rtstate",
        None,
        b"time=1\tsensor=00",
    )
    .unwrap();
    assert_eq!(rtstate.status, 200);
    for _ in 0..2 {
        let r = send(addr, "POST", "/iclock/cdata?SN=A&table=rtlog", None, RTLOG).unwrap();
        assert_eq!(r.status, 500);
    }
    assert!(
        server.rtlog("A").is_empty(),
        "a faulted request must not be recorded as an upload"
    );
    assert_eq!(
        send(addr, "POST", "/iclock/cdata?SN=A&table=rtlog", None, RTLOG)
            .unwrap()
            .status,
        200
    );
    assert_eq!(server.rtlog("A").len(), 1);
    let faulted = server
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(faulted, 2);
}

#[test]
fn fault_until_cleared() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::Status(503)).on_method("GET"));
    for _ in 0..3 {
        assert_eq!(
            send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
                .unwrap()
                .status,
            503
        );
    }
    assert_eq!(
        send(
            server.addr(),
            "POST",
            "/iclock/cdata?SN=A&table=rtlog",
            None,
            RTLOG
        )
        .unwrap()
        .status,
        200
    );
    server.clear_faults();
    assert_eq!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .status,
        200
    );
}

#[test]
fn garbage_body() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::GarbageBody).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(std::str::from_utf8(&r.body).is_err());
    assert_eq!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .text(),
        "OK"
    );
}

#[test]
fn truncated_body_announces_more_than_it_sends() {
    let server = open_server();
    server.queue_command("A", "CONTROL DEVICE 01010105");
    server.set_fault(Fault::new(FaultKind::TruncateBody { keep: 5 }).times(1));
    let r = send(server.addr(), "GET", "/iclock/getrequest?SN=A", None, b"").unwrap();
    assert!(!r.complete);
    assert_eq!(r.body, b"C:1:C");
    assert!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 5
    );
    // The server did deliver it as far as its state goes: it is re-sent next poll.
    let again = send(server.addr(), "GET", "/iclock/getrequest?SN=A", None, b"").unwrap();
    assert_eq!(again.text(), "C:1:CONTROL DEVICE 01010105");
    assert_eq!(server.pending_commands("A")[0].deliveries, 2);
}

#[test]
fn reset_mid_body() {
    let server = open_server();
    server.serve_file("/big.bin", vec![7u8; 100_000]);
    server.set_fault(
        Fault::new(FaultKind::ResetMidBody { keep: 1000 })
            .on_path("/big.bin")
            .times(1),
    );
    let mut s = connect(server.addr()).unwrap();
    s.write_all(&request_bytes("GET", "/big.bin", None, b"", &[]))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = loop {
        match s.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    // SO_LINGER 0 turns the close into an RST, which the reader sees after the data.
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::ConnectionReset);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.len() - head_end <= 1000);
    let whole = send(server.addr(), "GET", "/big.bin", None, b"").unwrap();
    assert_eq!(whole.body.len(), 100_000);
}

#[test]
fn close_without_reply_and_delay() {
    let server = open_server();
    server.set_fault(
        Fault::new(FaultKind::CloseWithoutReply)
            .on_path("/iclock/ping")
            .times(1),
    );
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"");
    assert!(r.is_err());
    assert_eq!(server.requests()[0].status, 0);
    server.set_fault(Fault::new(FaultKind::Delay(Duration::from_millis(50))).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.text(), "OK");
    assert!(server.requests()[1]
        .fault
        .as_deref()
        .unwrap()
        .starts_with("Delay"));
}

#[test]
fn refuse_connections_then_recover() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::RefuseConnection).times(2));
    for _ in 0..2 {
        assert!(send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").is_err());
    }
    assert_eq!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(server.with_state(|s| s.refused_connections()), 2);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn stop_and_restart_on_same_port_keeps_state() {
    let server = RefServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    let token = register(&server, SN, CAPS);
    // An open keep-alive connection is cut by the stop, as by a server restart.
    let mut s = connect(addr).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    s.write_all(&request_bytes(
        "GET",
        &format!("/iclock/ping?SN={SN}"),
        Some(&token),
        b"",
        &[],
    ))
    .unwrap();
    assert_eq!(read_reply(&mut reader).unwrap().status, 200);

    server.stop();
    assert!(!server.is_running());
    assert!(std::net::TcpStream::connect(addr).is_err());
    let mut rest = Vec::new();
    assert!(matches!(reader.read_to_end(&mut rest), Ok(0) | Err(_)));

    server.restart().unwrap();
    assert!(server.is_running());
    assert_eq!(server.addr(), addr);
    let r = send(
        addr,
        "GET",
        &format!("/iclock/ping?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "session survives a restart that keeps state");

    // A restarted server that lost its database: OK on init, old token refused.
    server.forget_registrations();
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
fn malformed_request_gets_400() {
    let server = open_server();
    let mut s = connect(server.addr()).unwrap();
    s.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let r = read_reply(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 400);
}

/// Raw bytes of one exchange on a fresh connection, until the server
/// closes (or `wait` passes without more bytes).
fn raw_exchange(server: &RefServer, target: &str, wait: Duration) -> Vec<u8> {
    let mut s = connect(server.addr()).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(&request_bytes(
        "GET",
        target,
        None,
        b"",
        &[("Connection", "close")],
    ))
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

fn body_of(raw: &[u8]) -> &[u8] {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &raw[end..]
}

fn head_of(raw: &[u8]) -> String {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[test]
fn content_length_short_and_long() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::ContentLengthOff(-1)).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.header("Content-Length"), Some("1"));
    assert_eq!(r.body, b"O", "the client reads only what was announced");
    server.set_fault(Fault::new(FaultKind::ContentLengthOff(100)).times(1));
    let started = std::time::Instant::now();
    let raw = raw_exchange(&server, "/iclock/ping?SN=A", Duration::from_millis(500));
    assert!(head_of(&raw).contains("Content-Length: 102"));
    assert_eq!(body_of(&raw), b"OK");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the connection stays open for the bytes that never come"
    );
}

#[test]
fn chunked_valid_and_broken() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::Chunked).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.text(), "OK");
    server.set_fault(Fault::new(FaultKind::BrokenChunked).times(1));
    let raw = raw_exchange(&server, "/iclock/ping?SN=A", Duration::from_secs(5));
    assert!(head_of(&raw).contains("Transfer-Encoding: chunked"));
    assert_eq!(body_of(&raw), b"1\r\nO\r\nzz; not a size\r\nK\r\n");
    assert!(
        send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"")
            .unwrap()
            .text()
            == "OK"
    );
}

#[test]
fn gzip_valid_garbage_and_bomb() {
    use std::io::Read as _;
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::Gzip).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "OK");

    server.set_fault(Fault::new(FaultKind::GzipGarbage).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    let mut out = Vec::new();
    assert!(flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut out)
        .is_err());

    server.set_fault(Fault::new(FaultKind::GzipBomb { inflated: 8 << 20 }).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert!(
        r.body.len() < 64 * 1024,
        "{} bytes on the wire",
        r.body.len()
    );
    let mut inflated = 0u64;
    let mut dec = flate2::read::GzDecoder::new(&r.body[..]);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match dec.read(&mut buf).unwrap() {
            0 => break,
            n => inflated += n as u64,
        }
    }
    assert_eq!(inflated, 8 << 20);
}

#[test]
fn huge_bodies_and_junk_lines_are_streamed() {
    let server = open_server();
    server.set_fault(Fault::new(FaultKind::HugeBody { bytes: 3 << 20 }).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.body.len(), 3 << 20);
    assert!(r.body.starts_with(b"OK\n###"));
    server.set_fault(Fault::new(FaultKind::JunkLines { lines: 1000 }).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1001);
    assert_eq!(lines[0], "OK");
    assert!(lines[1..].iter().all(|l| *l == "x"));
}

#[test]
fn slow_drip_hang_and_non_utf8() {
    let server = open_server();
    server.set_fault(
        Fault::new(FaultKind::SlowDrip {
            chunk: 50,
            pause: Duration::from_millis(5),
        })
        .times(1),
    );
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.text(), "OK", "a dripped reply is still whole");

    server.set_fault(Fault::new(FaultKind::Hang(Duration::from_secs(30))).times(1));
    let started = std::time::Instant::now();
    let raw = raw_exchange(&server, "/iclock/ping?SN=A", Duration::from_millis(300));
    assert!(raw.is_empty(), "no byte of an answer");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.requests().last().unwrap().status, 0);

    server.set_fault(Fault::new(FaultKind::NonUtf8Line).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert!(r.body.starts_with(b"OK\n"));
    assert!(std::str::from_utf8(&r.body).is_err());
}

#[test]
fn bad_dates_replace_or_drop_the_header() {
    let server = open_server();
    server.set_fault(
        Fault::new(FaultKind::BadDate(Some(
            "Thu, 01 Jan 1970 00:00:00 GMT".into(),
        )))
        .times(1),
    );
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert_eq!(r.headers_named("Date"), ["Thu, 01 Jan 1970 00:00:00 GMT"]);
    server.set_fault(Fault::new(FaultKind::BadDate(None)).times(1));
    let r = send(server.addr(), "GET", "/iclock/ping?SN=A", None, b"").unwrap();
    assert!(r.header("Date").is_none());
}

#[test]
fn garbage_config_spoils_only_configuration_answers() {
    let server = RefServer::start(ServerConfig::default()).unwrap();
    server.set_fault(Fault::new(FaultKind::GarbageConfig));
    let token = register(&server, SN, CAPS);
    let push = send(
        server.addr(),
        "POST",
        &format!("/iclock/push?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(push.status, 200);
    let text = push.text();
    assert!(text.contains("ErrorDelay=30"), "real lines first: {text}");
    assert!(text.contains("ErrorDelay=18446744073709551615"));
    let ping = send(
        server.addr(),
        "GET",
        &format!("/iclock/ping?SN={SN}"),
        Some(&token),
        b"",
    )
    .unwrap();
    assert_eq!(ping.text(), "OK");
}
